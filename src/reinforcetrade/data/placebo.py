"""Destroyed markets: the same bars in a random order, so nothing in their sequence is learnable.

A placebo for validation. Each bar's shape — its gap from the previous close, its body, its
wicks and its volume — is kept and the bars are dealt out in a seeded random order, prices
rebuilt from the first open. The return distribution is unchanged; any pattern that lived in
the order of the returns (momentum, mean reversion, regimes) is gone. A model trained on it has
nothing real to learn, so a validation that promotes one is broken.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reinforcetrade.data.schema import index_ns, make_ohlcv, symbol_of, timeframe_of


def destroy_order(frame: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    """Return the bars' shapes in a random order (seeded) on the same timestamps.

    >>> from reinforcetrade.data import DataLoader
    >>> bars = DataLoader().load_synthetic("BTC/USDT", bars=500, seed=1)
    >>> shuffled = destroy_order(bars, seed=2)
    >>> bool((shuffled.index == bars.index).all()), len(shuffled) == len(bars)
    (True, True)
    >>> body = lambda f: np.sort((f["close"] / f["open"]).to_numpy())
    >>> bool(np.allclose(body(bars), body(shuffled)))  # the same bars, in another order
    True
    """
    columns = ("open", "high", "low", "close", "volume")
    o, h, lo, c, v = (frame[k].to_numpy(dtype=np.float64) for k in columns)
    previous = np.r_[o[0], c[:-1]]
    gap, body = o / previous, c / o
    top, bottom = h / np.maximum(o, c), lo / np.minimum(o, c)
    order = np.random.default_rng(seed).permutation(len(frame))
    gap, body, top, bottom, volume = gap[order], body[order], top[order], bottom[order], v[order]
    gap[0] = 1.0  # the first bar opens where the market did
    close = o[0] * np.cumprod(gap * body)
    open_ = close / body
    high = np.maximum(open_, close) * top
    low = np.minimum(open_, close) * bottom
    tf = timeframe_of(frame)
    return make_ohlcv(index_ns(frame), open_, high, low, close, volume, symbol=symbol_of(frame),
                      timeframe=tf)  # fmt: skip
