"""Synthetic bars for the ML tests: random walks, and markets with a planted factor."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from reinforcetrade.data.bars import Bars
from reinforcetrade.features.indicators import sma

F8 = npt.NDArray[np.float64]
CLV_WINDOW = 10  # the registered close_location factor's window
HOUR_NS = 3_600_000_000_000


def random_bars(seed: int, n: int = 1_000) -> Bars:
    """A random walk at a random price level with random wicks, volumes and a few flat bars."""
    rng = np.random.default_rng(seed)
    r = rng.normal(0.0, rng.uniform(0.002, 0.03), n) * rng.uniform(0.5, 1.5, n)
    r[rng.random(n) < 0.03] = 0.0
    close = rng.uniform(0.01, 50_000.0) * np.exp(np.cumsum(r))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) * (1.0 + np.abs(rng.normal(0.0, 0.004, n)))
    low = np.minimum(open_, close) * (1.0 - np.abs(rng.normal(0.0, 0.004, n)))
    flat = (r == 0.0) & (open_ == close)
    high[flat] = low[flat] = close[flat]
    volume = rng.lognormal(5.0, 0.8, n)
    return _bars(open_, high, low, close, volume)


def scaled(bars: Bars, factor: float) -> Bars:
    """The same bars with every price multiplied by `factor` (volume unchanged)."""
    return Bars(
        bars.ts,
        bars.open * factor,
        bars.high * factor,
        bars.low * factor,
        bars.close * factor,
        bars.volume,
    )


def planted_bars(
    seed: int, n: int = 4_000, strength: float = 0.3, flip_by_volatility: bool = False
) -> Bars:
    """Bars whose next returns drift with the sign of the smoothed close location value.

    Each bar's close location value is drawn first (uniform in [-0.9, 0.9]) and its high and low
    are placed to give it exactly; the return of bar s drifts by strength × σ × sign(f[s-1]),
    f being the 10-bar mean close location (the registered `close_location` factor). With
    `flip_by_volatility`, σ switches between calm and wild stretches and the drift's sign is
    reversed in the wild ones. `strength=0` gives pure noise (i.i.d. returns).
    """
    rng = np.random.default_rng(seed)
    location = rng.uniform(-0.9, 0.9, n)
    signal = np.nan_to_num(np.sign(sma(location, CLV_WINDOW)))
    sigma, sign = _volatility(rng, n, flip_by_volatility)
    drift = np.zeros(n)
    drift[1:] = strength * sigma[1:] * sign[1:] * signal[:-1]
    r = drift + sigma * rng.standard_normal(n)
    close = 100.0 * np.exp(np.cumsum(r))
    open_ = np.r_[100.0, close[:-1]]
    high, low = _place(open_, close, location, rng)
    return _bars(open_, high, low, close, rng.lognormal(5.0, 0.5, n))


def _volatility(rng: np.random.Generator, n: int, flip: bool) -> tuple[F8, F8]:
    """Per-bar σ and drift sign: constant, or alternating calm (+) and wild (-) stretches."""
    if not flip:
        return np.full(n, 0.01), np.ones(n)
    sigma, sign = np.empty(n), np.empty(n)
    t, wild = 0, False
    while t < n:
        length = int(rng.integers(40, 80))
        sigma[t : t + length] = 0.02 if wild else 0.005
        sign[t : t + length] = -1.0 if wild else 1.0
        t, wild = t + length, not wild
    return sigma, sign


def _place(open_: F8, close: F8, location: F8, rng: np.random.Generator) -> tuple[F8, F8]:
    """High and low giving each bar its close location value and containing open and close."""
    up, down = np.maximum(close - open_, 0.0), np.maximum(open_ - close, 0.0)
    width = np.maximum.reduce(
        [
            close * rng.uniform(0.004, 0.012, close.size),
            2.0 * up / (1.0 + location),
            2.0 * down / (1.0 - location),
        ]
    )
    low = close - width * (1.0 + location) / 2.0
    high = close + width * (1.0 - location) / 2.0
    return np.maximum(high, np.maximum(open_, close)), np.minimum(low, np.minimum(open_, close))


def _bars(open_: F8, high: F8, low: F8, close: F8, volume: F8) -> Bars:
    """Hourly Bars from the arrays."""
    ts = np.arange(close.size, dtype=np.int64) * HOUR_NS
    return Bars(ts, open_, high, low, close, volume)
