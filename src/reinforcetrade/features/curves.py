"""Curves over an equity series for charts and reports.

Rolling Sharpe, monthly returns, buy-and-hold. Pure functions of arrays, consistent with
`performance` (same return convention, same zero-volatility rule: NaN, never inf).
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.features import stats
from reinforcetrade.features.performance import ROUNDING_NOISE, returns_from_equity

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]


def rolling_sharpe(equity: npt.ArrayLike, window: int, periods_per_year: float) -> F8:
    """Return the Sharpe ratio of the last `window` returns at each bar (NaN until then).

    Bar i's value uses the returns up to bar i: causal. Annualised by sqrt(periods_per_year).

    >>> e = 100.0 * np.cumprod(np.r_[1.0, np.tile([1.01, 0.995], 10)])
    >>> s = rolling_sharpe(e, 4, periods_per_year=1.0)
    >>> bool(np.isnan(s[:4]).all()), round(float(s[-1]), 4)
    (True, 0.2887)
    """
    e = np.asarray(equity, dtype=np.float64)
    if window < 2:
        raise ValueError(f"window must be at least 2 returns, got {window}")
    out = np.full(e.size, np.nan)
    if e.size <= window:
        return out
    r = returns_from_equity(e)
    mean = stats.rolling_mean(r, window)
    std = stats.rolling_std(r, window, ddof=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.where(std > ROUNDING_NOISE, mean / std, np.nan) * math.sqrt(periods_per_year)
    out[1:] = ratio
    return out


def monthly_returns(equity: npt.ArrayLike, timestamps: npt.ArrayLike) -> pd.DataFrame:
    """Return each calendar month's return (UTC) as a years × 12 table (NaN: no data).

    A month's return runs from the last equity of the month before (or the first value) to
    the month's last equity.

    >>> ts = pd.date_range("2024-02-01", periods=3, freq="MS").as_unit("ns").asi8  # Feb–Apr
    >>> monthly_returns([100.0, 110.0, 99.0], ts).loc[2024, [2, 3, 4]].round(4).tolist()
    [0.0, 0.1, -0.1]
    """
    e = np.asarray(equity, dtype=np.float64)
    index = pd.DatetimeIndex(np.asarray(timestamps, dtype=np.int64), tz="UTC")
    if e.size == 0:
        return pd.DataFrame(columns=range(1, 13), dtype=np.float64)
    series = pd.Series(e, index=index)
    month_end = series.groupby([index.year, index.month]).last()
    start = np.r_[e[0], month_end.to_numpy()[:-1]]
    values = month_end.to_numpy() / start - 1.0
    table = pd.Series(values, index=month_end.index).unstack()
    table = table.reindex(columns=range(1, 13))
    table.index.name, table.columns.name = "year", "month"
    return table


def buy_and_hold(close: npt.ArrayLike, initial: float) -> F8:
    """Return the equity of holding every symbol equally from its first price, marked per bar.

    `close` is (symbols, bars) with NaN before a symbol starts trading and on missing bars (the
    last known price carries). Equal weights at the start, never rebalanced, no costs.

    >>> buy_and_hold(np.array([[10.0, 11.0, 12.0], [5.0, 5.0, 4.0]]), 100.0).tolist()
    [100.0, 105.0, 100.0]
    """
    c = np.atleast_2d(np.asarray(close, dtype=np.float64))
    frame = pd.DataFrame(c.T).ffill()
    first = frame.bfill().iloc[0].to_numpy()
    held = frame.to_numpy() / first
    held = np.where(np.isnan(held), 1.0, held)  # before a symbol starts: its cash waits
    curve: npt.NDArray[np.float64] = initial * held.mean(axis=1)
    return curve
