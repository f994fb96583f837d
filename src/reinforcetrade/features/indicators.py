"""Causal technical indicators on float64 arrays: moving averages, RSI, MACD, bands, ATR, ADX.

Every function is causal: the value at bar t depends on inputs at bars ≤ t only, and computing
on the first t + 1 bars gives exactly (bit for bit) the value at t that computing on the whole
series gives. The kernels are compiled forward passes, O(len) whatever the period, and every
output has the input's length.

Warm-up positions are NaN. The first defined value sits at (0-based index):

================================  ===========================================================
``sma``, ``ema``, ``wilder``      ``n - 1`` (EMA and Wilder are seeded with the SMA of the
                                  first ``n`` values, the TA-Lib convention)
``bollinger``, ``rolling_max``,   ``n - 1``
``rolling_min``, ``rolling_slope``
``rsi``, ``atr``, ``roc``         ``n`` (RSI and ATR as TA-Lib)
``donchian_position``             ``n`` (the channel is bars t-n .. t-1)
``true_range``                    ``1`` (it needs the previous close; TA-Lib too)
``macd``                          line at ``slow - 1``; signal and histogram at
                                  ``slow + signal - 2`` (33 for 12/26/9, as TA-Lib)
``adx``                           +DI and -DI at ``n``; ADX at ``2n - 1`` (27 for 14, as TA-Lib)
================================  ===========================================================

Missing values: NaN and ±inf are both "missing". A window (``sma``, ``bollinger``,
``rolling_*``, ``rolling_slope``, ``donchian_position``) holding one is NaN; ``roc`` is NaN
when x[t] or x[t-n] is. A recursive indicator (``ema``, ``wilder``, ``rsi``, ``macd``, ``atr``,
``adx``) restarts after one: it is NaN while the missing value is in its input, then warms up
again as on a new series, with the same warm-up length (its later values match those computed
on the bars after the gap alone, to rounding). An OHLC indicator reads at bar t: true range
and ATR high[t], low[t] and close[t-1]; ADX also high[t-1] and low[t-1]; ``donchian_position``
high and low of bars t-n .. t-1 and close[t].

Flat series give exact answers: ``sma``, ``ema``, ``wilder`` and the Bollinger middle return the
constant itself; the MACD lines, the Bollinger band width, ``rolling_slope`` and the true range
of a bar with high == low == previous close are exactly 0. Without any movement RSI is 50
(TA-Lib gives 0), +DI, -DI and DX are 0 so ADX falls to 0 (TA-Lib keeps its last ADX), and
Bollinger %b, which divides by the band width, is NaN.

Conventions against TA-Lib: the recursions are TA-Lib's (``prev + (x - prev) * alpha``) but
advance four bars at a time in closed form, so EMA, RSI and ATR agree with TA-Lib to about
1e-15 relative rather than bit for bit. MACD's fast line is ``ema(close, fast)``, seeded from
the first ``fast`` closes, where TA-Lib seeds it from the ``fast`` closes ending at bar
``slow - 1``; the two agree once that start has decayed (after about 200 bars for 12/26/9).
ADX follows Wilder's book (each smoothed sum starts as the sum of the first n values); TA-Lib
sums n - 1 values and smooths in the n-th, a difference that also fades within a few hundred
bars. Zero tests are exact (TA-Lib treats values below 1e-14 as 0).

Rolling sums (``sma``, ``bollinger``, ``rolling_slope``) are sums of deviations from a shift,
summed again from scratch on a fixed grid of bars (and whenever a variance would cancel), so
rounding never builds up: results stay within about 1e-12 relative of exact even on
60,000 ± 0.001 data.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.features.stats import rolling_mean, rolling_std

__all__ = [
    "BollingerBands",
    "DirectionalIndex",
    "MacdLines",
    "adx",
    "atr",
    "bollinger",
    "donchian_position",
    "ema",
    "macd",
    "roc",
    "rolling_max",
    "rolling_min",
    "rolling_slope",
    "rsi",
    "sma",
    "true_range",
    "wilder",
]

F8 = npt.NDArray[np.float64]

# Rolling sums are summed again from scratch at least every this many bars (and every n bars
# for longer windows): rounding then never accumulates over more than a few dozen updates.
_REANCHOR: Final[int] = 64
# Re-sum a window when its sum of squared deviations falls below this fraction of the sum of
# squares about the shift: beyond that, the subtraction would lose digits.
_COLLAPSE: Final[float] = 1e-4


class MacdLines(NamedTuple):
    """MACD line (fast EMA - slow EMA), its signal line (EMA of the line) and their difference."""

    macd: F8
    signal: F8
    hist: F8


class BollingerBands(NamedTuple):
    """Bollinger bands: SMA ± k population standard deviations, %b and band width."""

    middle: F8
    upper: F8
    lower: F8
    percent_b: F8
    bandwidth: F8


class DirectionalIndex(NamedTuple):
    """Wilder's average directional index with the two directional indicators (0 to 100)."""

    adx: F8
    plus_di: F8
    minus_di: F8


# --- moving averages ---------------------------------------------------------------------------


def sma(x: npt.ArrayLike, n: int) -> F8:
    """Return the simple moving average of the last n values (NaN in warm-up or over a gap).

    >>> sma([1.0, 2.0, 3.0, 4.0], 2)
    array([nan, 1.5, 2.5, 3.5])
    """
    a, w = _series(x, "x"), _period(n, "n")
    return rolling_mean(a, w)  # one rolling-mean implementation: features.stats


def ema(x: npt.ArrayLike, n: int) -> F8:
    """Return the exponential moving average, alpha = 2/(n+1), seeded with the SMA of n values.

    >>> ema([1.0, 2.0, 3.0, 4.0, 5.0], 3)
    array([nan, nan,  2.,  3.,  4.])
    """
    a, w = _series(x, "x"), _period(n, "n")
    out = np.empty(a.size)
    _smooth_kernel(a, w, 2.0 / (w + 1), out)
    return out


def wilder(x: npt.ArrayLike, n: int) -> F8:
    """Return Wilder's smoothing (an EMA with alpha = 1/n) seeded with the SMA of n values.

    >>> wilder([1.0, 2.0, 3.0, 4.0, 5.0], 2)
    array([   nan, 1.5   , 2.25  , 3.125 , 4.0625])
    """
    a, w = _series(x, "x"), _period(n, "n")
    out = np.empty(a.size)
    _smooth_kernel(a, w, 1.0 / w, out)
    return out


# --- momentum ----------------------------------------------------------------------------------


def rsi(close: npt.ArrayLike, n: int = 14) -> F8:
    """Return Wilder's relative strength index (0 to 100; 50 when nothing moved), first at n.

    >>> rsi([1.0, 2.0, 1.0, 2.0, 3.0], 2)
    array([ nan,  nan,  50. ,  75. ,  87.5])
    """
    a, w = _series(close, "close"), _period(n, "n")
    out = np.empty(a.size)
    _rsi_kernel(a, w, 1.0 / w, out)
    return out


def roc(x: npt.ArrayLike, n: int) -> F8:
    """Return the rate of change x[t] / x[t-n] - 1 (NaN when x[t-n] is 0).

    >>> roc([100.0, 110.0, 121.0], 1).round(12)
    array([nan, 0.1, 0.1])
    """
    a, w = _series(x, "x"), _period(n, "n")
    out = np.empty(a.size)
    _roc_kernel(a, w, out)
    return out


def macd(close: npt.ArrayLike, fast: int = 12, slow: int = 26, signal: int = 9) -> MacdLines:
    """Return the MACD line ema(fast) - ema(slow), its signal EMA and the histogram.

    >>> line, sig, hist = macd(np.arange(1.0, 8.0), fast=2, slow=3, signal=2)
    >>> line
    array([nan, nan, 0.5, 0.5, 0.5, 0.5, 0.5])
    >>> hist
    array([nan, nan, nan, 0., 0., 0., 0.])
    """
    a = _series(close, "close")
    f, s, g = _period(fast, "fast"), _period(slow, "slow"), _period(signal, "signal")
    if f >= s:
        raise UserInputError(
            f"macd needs fast < slow (e.g. fast=12, slow=26), got fast={f}, slow={s}"
        )
    lines = MacdLines(np.empty(a.size), np.empty(a.size), np.empty(a.size))
    _macd_kernel(a, f, s, g, *lines)
    return lines


# --- volatility --------------------------------------------------------------------------------


def bollinger(close: npt.ArrayLike, n: int = 20, k: float = 2.0) -> BollingerBands:
    """Return Bollinger bands: SMA(n) ± k population std, %b and (upper - lower) / middle.

    %b = (close - lower) / (upper - lower) is 0 on the lower band, 1 on the upper band and
    NaN when the bands coincide (a flat window); the band width is NaN when the middle is 0.

    >>> bb = bollinger([1.0, 3.0, 1.0, 3.0], n=2, k=1.0)
    >>> bb.upper
    array([nan,  3.,  3.,  3.])
    >>> bb.percent_b
    array([nan,  1.,  0.,  1.])
    """
    a, w = _series(close, "close"), _period(n, "n")
    if isinstance(k, bool) or not isinstance(k, int | float | np.integer | np.floating):
        raise UserInputError(f"k must be a number of standard deviations, got {k!r}")
    if not (math.isfinite(k) and k > 0):
        raise UserInputError(f"k must be a positive number of standard deviations, got {k!r}")
    bands = BollingerBands(rolling_mean(a, w), *(np.empty(a.size) for _ in range(4)))
    np.square(rolling_std(a, w, ddof=0), out=bands.bandwidth)  # variance, for now
    _bands_kernel(a, float(k), *bands)
    return bands


def true_range(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> F8:
    """Return max(high - low, |high - prev close|, |low - prev close|); NaN at bar 0 (as TA-Lib).

    >>> true_range([10.0, 12.0, 11.0], [9.0, 11.0, 8.0], [9.5, 11.5, 9.0])
    array([nan, 2.5, 3.5])
    """
    h, lo, c = _ohlc(high, low, close)
    out = np.empty(h.size)
    _true_range_kernel(h, lo, c, out)
    return out


def atr(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14) -> F8:
    """Return the average true range: Wilder's smoothing of the true range, first at bar n.

    >>> atr([10.0, 12.0, 11.0, 11.0], [9.0, 11.0, 8.0, 10.0], [9.5, 11.5, 9.0, 10.0], 2)
    array([nan, nan, 3. , 2.5])
    """
    h, lo, c = _ohlc(high, low, close)
    w = _period(n, "n")
    out = np.empty(h.size)
    _true_range_kernel(h, lo, c, out)
    _smooth_kernel(out, w, 1.0 / w, out)  # in place: exactly wilder(true_range(...), n)
    return out


# --- trend -------------------------------------------------------------------------------------


def adx(
    high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int = 14
) -> DirectionalIndex:
    """Return Wilder's ADX (first at bar 2n - 1) with +DI and -DI (first at bar n).

    +DM is the rise of the high when it beats the fall of the low (else 0), -DM the reverse;
    both and the true range get Wilder's smoothing; DI = 100 × smoothed DM / smoothed TR (0 when
    there was no range), DX = 100 × |+DM - -DM| / (+DM + -DM) (0 without directional movement)
    and ADX is Wilder's smoothing of DX.

    >>> up = np.arange(10.0)
    >>> d = adx(up + 1, up, up + 0.5, n=2)
    >>> d.adx
    array([ nan,  nan,  nan, 100., 100., 100., 100., 100., 100., 100.])
    >>> d.plus_di[2], d.minus_di[2]
    (np.float64(66.66666666666667), np.float64(0.0))
    """
    h, lo, c = _ohlc(high, low, close)
    w = _period(n, "n")
    out = DirectionalIndex(np.empty(h.size), np.empty(h.size), np.empty(h.size))
    _movement_kernel(h, lo, c, *out)  # true range, +DM and -DM, for now
    _direction_kernel(w, 1.0 / w, *out)  # DX, +DI and -DI, in place
    _smooth_kernel(out.adx, w, 1.0 / w, out.adx)  # in place: ADX = wilder(DX, n)
    return out


def rolling_max(x: npt.ArrayLike, n: int) -> F8:
    """Return the largest of the last n values (NaN in warm-up or when any of them is missing).

    >>> rolling_max([1.0, 3.0, 2.0, 1.0, 0.0], 2)
    array([nan,  3.,  3.,  2.,  1.])
    """
    a, w = _series(x, "x"), _period(n, "n")
    out = np.empty(a.size)
    _extreme_kernel(a, w, 1.0, out)
    return out


def rolling_min(x: npt.ArrayLike, n: int) -> F8:
    """Return the smallest of the last n values (NaN in warm-up or when any of them is missing).

    >>> rolling_min([1.0, 3.0, 2.0, 1.0, 0.0], 2)
    array([nan,  1.,  2.,  1.,  0.])
    """
    a, w = _series(x, "x"), _period(n, "n")
    out = np.empty(a.size)
    _extreme_kernel(a, w, -1.0, out)
    return out


def donchian_position(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike, n: int) -> F8:
    """Return where close[t] sits in the channel of bars t-n .. t-1: 0 at its low, 1 at its high.

    The channel excludes bar t, so the value is not clipped: above 1 is a close above the
    previous n-bar high (a breakout), below 0 one under the n-bar low. NaN when the channel has
    no width (high == low over all n bars), in warm-up (t < n) or when an input is missing.

    >>> donchian_position([2.0, 3.0, 3.0, 5.0], [1.0, 1.0, 2.0, 2.0], [1.5, 2.0, 4.0, 2.5], 2)
    array([ nan,  nan, 1.5 , 0.75])
    """
    h, lo, c = _ohlc(high, low, close)
    w = _period(n, "n")
    out = np.empty(h.size)
    _donchian_kernel(h, lo, c, w, out)
    return out


def rolling_slope(x: npt.ArrayLike, n: int) -> F8:
    """Return the least-squares slope of the last n values against time, in units per bar.

    >>> rolling_slope([1.0, 3.0, 5.0, 6.0, 6.0], 3)
    array([nan, nan, 2. , 1.5, 0.5])
    """
    a = _series(x, "x")
    w = _period(n, "n")
    if w < 2:
        raise UserInputError(f"a slope needs at least n=2 points, got n={w}")
    out = np.empty(a.size)
    _slope_kernel(a, w, out)
    return out


# --- argument checks ---------------------------------------------------------------------------


def _series(x: npt.ArrayLike, name: str) -> F8:
    """Return x as a contiguous one-dimensional float64 array."""
    try:
        a = np.ascontiguousarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{name} must be an array of numbers: {exc}") from None
    if a.ndim != 1:
        raise UserInputError(f"{name} must be one-dimensional, got shape {a.shape}")
    return a


def _ohlc(high: npt.ArrayLike, low: npt.ArrayLike, close: npt.ArrayLike) -> tuple[F8, F8, F8]:
    """Return high, low and close as float64 arrays of one length."""
    h, lo, c = _series(high, "high"), _series(low, "low"), _series(close, "close")
    if not h.size == lo.size == c.size:
        raise UserInputError(
            f"high, low and close must have the same length, got {h.size}, {lo.size}, {c.size}"
        )
    return h, lo, c


def _period(n: int, name: str) -> int:
    """Return n if it is a positive integer number of bars, else raise UserInputError."""
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise UserInputError(f"{name} must be a positive integer number of bars, got {n!r}")
    return int(n)


# --- kernels -----------------------------------------------------------------------------------
#
# The recursive kernels walk the series in blocks of four bars on a fixed grid (0-3, 4-7, ...).
# A smoothing that is warmed up takes a block of four finite values in closed form (`_quad`),
# which shortens the bar-to-bar dependency chain (about twice as fast as one step per bar);
# anything else (warm-up, restarts, blocks holding a missing value, the last block) goes
# through `_block`, which takes the leading finite values the same way (`_lead`) and the rest
# one bar at a time (`_smooth_step`). The grid is fixed and each output only uses its block's
# bars up to its own, so a prefix of the series takes exactly the same arithmetic, and a
# smoothing gives the same bits in every indicator that uses it (the MACD line is exactly
# `ema(fast) - ema(slow)`).

_Coef = tuple[float, float, float, float, float]
_State = tuple[int, float, float, float]
_START: Final[_State] = (0, 0.0, 0.0, math.nan)  # a smoother before any value


@njit
def _ok(v: float) -> bool:
    """Return True if v is finite (v - v is NaN for NaN and ±inf)."""
    return v - v == 0.0


@njit
def _ok4(a: float, b: float, c: float, d: float) -> bool:
    """Return True if all four values are finite."""
    return (a - a) + (b - b) + (c - c) + (d - d) == 0.0


@njit
def _coef(alpha: float) -> _Coef:
    """Return (alpha, 1 - b², 1 - b⁴, b / (1 + b), b² / (1 + b²)) for b = 1 - alpha."""
    b = 1.0 - alpha
    b2 = b * b
    c2 = alpha * (1.0 + b)  # 1 - b², without the cancellation
    return alpha, c2, c2 * (1.0 + b2), b / (1.0 + b), b2 / (1.0 + b2)


@njit
def _quad(
    v: float, x1: float, x2: float, x3: float, x4: float, k: _Coef
) -> tuple[float, float, float, float]:
    """Return the smoothing after each of x1 .. x4, starting from value v, in closed form.

    Two steps of weight a (b = 1 - a) are one step of weight 1 - b² towards
    w12 = x2 + (x1 - x2) b/(1+b); four are one step of weight 1 - b⁴ towards the weighted
    mean of w12 and w34. Steps through equal values are exact, so a constant stays constant.
    """
    a, c2, c4, r2, r4 = k
    y1 = v + (x1 - v) * a
    w12 = x2 + (x1 - x2) * r2
    y2 = v + (w12 - v) * c2
    y3 = y2 + (x3 - y2) * a
    w34 = x4 + (x3 - x4) * r2
    w = w34 + (w12 - w34) * r4
    return y1, y2, y3, v + (w - v) * c4


@njit
def _lead(
    v: float, x1: float, x2: float, x3: float, g: int, k: _Coef
) -> tuple[float, float, float]:
    """Return the first g (1 to 3) outputs of `_quad`, by the same arithmetic; NaN after them."""
    a, c2 = k[0], k[1]
    if a == 1.0:
        return x1, x2, x3
    y1 = v + (x1 - v) * a
    if g == 1:
        return y1, math.nan, math.nan
    y2 = v + ((x2 + (x1 - x2) * k[3]) - v) * c2
    if g == 2:
        return y1, y2, math.nan
    return y1, y2, y2 + (x3 - y2) * a


@njit
def _smooth_step(v: float, n: int, alpha: float, state: _State) -> _State:
    """Advance an SMA-seeded exponential smoother by one value v.

    The state is (count, first, acc, value): count values since the last restart (capped at
    n), the first of them, the sum of deviations from it (exact for a constant run) and the
    smoothed value, NaN until n values have arrived. A missing v restarts everything.
    """
    count, first, acc, value = state
    if not _ok(v):
        return _START
    if count >= n:
        return count, first, acc, v if alpha == 1.0 else value + (v - value) * alpha
    if count == 0:
        first = v
    acc += v - first
    count += 1
    if count < n:
        return count, first, acc, math.nan
    return count, first, acc, first + acc / n


@njit
def _block(
    x1: float, x2: float, x3: float, x4: float, size: int, n: int, k: _Coef, state: _State
) -> tuple[float, float, float, float, _State]:
    """Advance a smoother over a block of `size` (<= 4) values; return its outputs and state.

    A warmed-up smoother takes the block's leading finite values as `_quad` would (all four by
    `_quad` itself); the rest (from the first missing value on, or all during warm-up) go one
    value at a time.
    """
    y1 = y2 = y3 = y4 = math.nan
    g = 0
    if state[0] >= n and _ok(x1):
        g = 1
        if size > 1 and _ok(x2):
            g = 2
            if size > 2 and _ok(x3):
                g = 4 if size > 3 and _ok(x4) else 3
        if g == 4 and k[0] != 1.0:
            y1, y2, y3, y4 = _quad(state[3], x1, x2, x3, x4, k)
            return y1, y2, y3, y4, (state[0], state[1], state[2], y4)
        if g == 4:
            return x1, x2, x3, x4, (state[0], state[1], state[2], x4)
        y1, y2, y3 = _lead(state[3], x1, x2, x3, g, k)
        state = (state[0], state[1], state[2], y1 if g == 1 else y2 if g == 2 else y3)
    a = k[0]
    if g < 1:
        state = _smooth_step(x1, n, a, state)
        y1 = state[3]
    if g < 2 and size > 1:
        state = _smooth_step(x2, n, a, state)
        y2 = state[3]
    if g < 3 and size > 2:
        state = _smooth_step(x3, n, a, state)
        y3 = state[3]
    if size > 3:
        state = _smooth_step(x4, n, a, state)
        y4 = state[3]
    return y1, y2, y3, y4, state


@njit
def _load(x: F8, p: int, size: int) -> tuple[float, float, float, float]:
    """Return x[p : p + size] as four values, NaN beyond size."""
    x2 = x[p + 1] if size > 1 else math.nan
    x3 = x[p + 2] if size > 2 else math.nan
    x4 = x[p + 3] if size > 3 else math.nan
    return x[p], x2, x3, x4


@njit
def _store(out: F8, p: int, size: int, y1: float, y2: float, y3: float, y4: float) -> None:
    """Write the first `size` of y1 .. y4 to out[p:]."""
    out[p] = y1
    if size > 1:
        out[p + 1] = y2
    if size > 2:
        out[p + 2] = y3
    if size > 3:
        out[p + 3] = y4


@njit
def _smooth_kernel(x: F8, n: int, alpha: float, out: F8) -> None:
    """Fill out with the SMA-seeded exponential smoothing of x (EMA or Wilder)."""
    k = _coef(alpha)
    quick = alpha != 1.0
    state = _START
    for p in range(0, x.size, 4):
        size = min(4, x.size - p)
        if quick and size == 4 and state[0] >= n:
            x1, x2, x3, x4 = x[p], x[p + 1], x[p + 2], x[p + 3]
            if _ok4(x1, x2, x3, x4):
                y1, y2, y3, y4 = _quad(state[3], x1, x2, x3, x4, k)
                out[p], out[p + 1], out[p + 2], out[p + 3] = y1, y2, y3, y4
                state = (state[0], state[1], state[2], y4)
                continue
        x1, x2, x3, x4 = _load(x, p, size)
        y1, y2, y3, y4, state = _block(x1, x2, x3, x4, size, n, k, state)
        _store(out, p, size, y1, y2, y3, y4)


@njit
def _diff(x: F8, i: int) -> float:
    """Return x[i] - x[i-1], NaN at i = 0 or past the end."""
    return x[i] - x[i - 1] if 0 < i < x.size else math.nan


@njit
def _up(d: float) -> float:
    """Return the gain in a change d, NaN if d is missing."""
    return max(d, 0.0) if _ok(d) else math.nan


@njit
def _down(d: float) -> float:
    """Return the loss in a change d as a positive number, NaN if d is missing."""
    return max(-d, 0.0) if _ok(d) else math.nan


@njit
def _rsi_value(gain: float, loss: float) -> float:
    """Return 100 gain / (gain + loss), 50 when both are 0, NaN when either is NaN."""
    total = gain + loss
    if total > 0.0:
        return 100.0 * (gain / total)
    return 50.0 if total == 0.0 else math.nan


@njit
def _rsi_kernel(x: F8, n: int, alpha: float, out: F8) -> None:
    """Fill out with RSI: Wilder-smoothed gains over Wilder-smoothed gains plus losses."""
    k = _coef(alpha)
    quick = alpha != 1.0
    gains = losses = _START
    for p in range(0, x.size, 4):
        size = min(4, x.size - p)
        if p > 0 and size == 4:
            x0, x1, x2, x3, x4 = x[p - 1], x[p], x[p + 1], x[p + 2], x[p + 3]
            d1, d2, d3, d4 = x1 - x0, x2 - x1, x3 - x2, x4 - x3
        else:
            d1, d2, d3, d4 = _diff(x, p), _diff(x, p + 1), _diff(x, p + 2), _diff(x, p + 3)
        if quick and size == 4 and gains[0] >= n and _ok4(d1, d2, d3, d4):
            g1, g2, g3, g4 = _quad(gains[3], _up(d1), _up(d2), _up(d3), _up(d4), k)
            m1, m2, m3, m4 = _quad(losses[3], _down(d1), _down(d2), _down(d3), _down(d4), k)
            gains = (gains[0], gains[1], gains[2], g4)
            losses = (losses[0], losses[1], losses[2], m4)
        else:
            g1, g2, g3, g4, gains = _block(_up(d1), _up(d2), _up(d3), _up(d4), size, n, k, gains)
            m1, m2, m3, m4, losses = _block(
                _down(d1), _down(d2), _down(d3), _down(d4), size, n, k, losses
            )
        _store(
            out,
            p,
            size,
            _rsi_value(g1, m1),
            _rsi_value(g2, m2),
            _rsi_value(g3, m3),
            _rsi_value(g4, m4),
        )


@njit
def _roc_kernel(x: F8, n: int, out: F8) -> None:
    """Fill out with x[t] / x[t-n] - 1, NaN when either is missing or x[t-n] is 0."""
    for i in range(min(n, x.size)):
        out[i] = math.nan
    for i in range(n, x.size):
        v, base = x[i], x[i - n]
        out[i] = v / base - 1.0 if base != 0.0 and _ok(v) and _ok(base) else math.nan


@njit
def _macd_kernel(x: F8, fast: int, slow: int, signal: int, line: F8, sig: F8, hist: F8) -> None:
    """Fill the MACD line, signal and histogram; the signal restarts whenever the line is NaN."""
    kf, ks, kg = _coef(2.0 / (fast + 1)), _coef(2.0 / (slow + 1)), _coef(2.0 / (signal + 1))
    quick = fast > 1 and signal > 1  # slow > fast
    sf = ss = sg = _START
    for p in range(0, x.size, 4):
        size = min(4, x.size - p)
        x1, x2, x3, x4 = _load(x, p, size)
        if quick and size == 4 and sg[0] >= signal and _ok4(x1, x2, x3, x4):
            f1, f2, f3, f4 = _quad(sf[3], x1, x2, x3, x4, kf)
            s1, s2, s3, s4 = _quad(ss[3], x1, x2, x3, x4, ks)
            m1, m2, m3, m4 = f1 - s1, f2 - s2, f3 - s3, f4 - s4
            g1, g2, g3, g4 = _quad(sg[3], m1, m2, m3, m4, kg)
            sf, ss = (sf[0], sf[1], sf[2], f4), (ss[0], ss[1], ss[2], s4)
            sg = (sg[0], sg[1], sg[2], g4)
        else:
            f1, f2, f3, f4, sf = _block(x1, x2, x3, x4, size, fast, kf, sf)
            s1, s2, s3, s4, ss = _block(x1, x2, x3, x4, size, slow, ks, ss)
            m1, m2, m3, m4 = f1 - s1, f2 - s2, f3 - s3, f4 - s4
            g1, g2, g3, g4, sg = _block(m1, m2, m3, m4, size, signal, kg, sg)
        _store(line, p, size, m1, m2, m3, m4)
        _store(sig, p, size, g1, g2, g3, g4)
        _store(hist, p, size, m1 - g1, m2 - g2, m3 - g3, m4 - g4)


@njit
def _tr(hi: float, low: float, prev_close: float) -> float:
    """Return the true range of one bar, NaN if an input is missing."""
    if (hi - hi) + (low - low) + (prev_close - prev_close) != 0.0:
        return math.nan
    return max(hi - low, abs(hi - prev_close), abs(low - prev_close))


@njit
def _true_range_kernel(h: F8, lo: F8, c: F8, out: F8) -> None:
    """Fill out with the true range; bar 0 has no previous close and is NaN."""
    if h.size:
        out[0] = math.nan
    for i in range(1, h.size):
        out[i] = _tr(h[i], lo[i], c[i - 1])


@njit
def _dm(
    hi: float, low: float, prev_high: float, prev_low: float, prev_close: float
) -> tuple[float, float, float]:
    """Return a bar's (true range, +DM, -DM), all NaN if any input is missing."""
    tr = _tr(hi, low, prev_close)
    rise, fall = hi - prev_high, prev_low - low
    if (tr - tr) + (rise - rise) + (fall - fall) != 0.0:
        return math.nan, math.nan, math.nan
    plus = rise if rise > fall and rise > 0.0 else 0.0
    minus = fall if fall > rise and fall > 0.0 else 0.0
    return tr, plus, minus


@njit
def _movement_kernel(h: F8, lo: F8, c: F8, tr: F8, plus: F8, minus: F8) -> None:
    """Fill each bar's true range, +DM and -DM (all NaN at bar 0 or if any input is missing)."""
    if h.size:
        tr[0] = plus[0] = minus[0] = math.nan
    for i in range(1, h.size):
        tr[i], plus[i], minus[i] = _dm(h[i], lo[i], h[i - 1], lo[i - 1], c[i - 1])


@njit
def _direction(tr: float, plus: float, minus: float) -> tuple[float, float, float]:
    """Return (DX, +DI, -DI) from smoothed TR and DMs: 0 without range or movement.

    DI = 100 DM / TR and DX = 100 |+DM - -DM| / (+DM + -DM); usually one division serves both.
    """
    moved = plus + minus
    both = tr * moved
    if 1e-290 < both < 1e290:
        r = 100.0 / both
        scale = r * moved
        return r * tr * abs(plus - minus), plus * scale, minus * scale
    scale = 100.0 / tr if tr > 0.0 else 0.0 if tr == 0.0 else math.nan
    if moved > 0.0:
        return 100.0 * (abs(plus - minus) / moved), plus * scale, minus * scale
    return 0.0 if moved == 0.0 else math.nan, plus * scale, minus * scale


@njit
def _direction_kernel(n: int, alpha: float, tr: F8, plus: F8, minus: F8) -> None:
    """Replace true range, +DM and -DM by DX, +DI and -DI: Wilder-smooth all three, divide.

    Works in place, one block at a time: a block's inputs are read before its outputs are
    written. The three smoothings share their missing values, so they stay in step.
    """
    k = _coef(alpha)
    quick = alpha != 1.0
    st = sp = sm = _START
    for p in range(0, tr.size, 4):
        size = min(4, tr.size - p)
        t1, t2, t3, t4 = _load(tr, p, size)
        p1, p2, p3, p4 = _load(plus, p, size)
        m1, m2, m3, m4 = _load(minus, p, size)
        if quick and size == 4 and st[0] >= n and _ok4(t1, t2, t3, t4):
            t1, t2, t3, t4 = _quad(st[3], t1, t2, t3, t4, k)
            p1, p2, p3, p4 = _quad(sp[3], p1, p2, p3, p4, k)
            m1, m2, m3, m4 = _quad(sm[3], m1, m2, m3, m4, k)
            st, sp = (st[0], st[1], st[2], t4), (sp[0], sp[1], sp[2], p4)
            sm = (sm[0], sm[1], sm[2], m4)
        else:
            t1, t2, t3, t4, st = _block(t1, t2, t3, t4, size, n, k, st)
            p1, p2, p3, p4, sp = _block(p1, p2, p3, p4, size, n, k, sp)
            m1, m2, m3, m4, sm = _block(m1, m2, m3, m4, size, n, k, sm)
        d1, a1, b1 = _direction(t1, p1, m1)
        d2, a2, b2 = _direction(t2, p2, m2)
        d3, a3, b3 = _direction(t3, p3, m3)
        d4, a4, b4 = _direction(t4, p4, m4)
        _store(tr, p, size, d1, d2, d3, d4)
        _store(plus, p, size, a1, a2, a3, a4)
        _store(minus, p, size, b1, b2, b3, b4)


@njit
def _anchor(x: F8, a: int, b: int) -> tuple[float, float, float]:
    """Return a shift (the mean of x[a:b]) and the sums of deviations from it and their squares.

    The mean is taken about the last value, so a constant window gives it exactly and then
    deviations that are exactly 0.
    """
    last = x[b - 1]
    total = 0.0
    for j in range(a, b):
        total += x[j] - last
    shift = last + total / (b - a)
    s1 = s2 = 0.0
    for j in range(a, b):
        d = x[j] - shift
        s1 += d
        s2 += d * d
    return shift, s1, s2


@njit
def _stale(s1: float, s2: float, peak: float, inv_n: float) -> bool:
    """Return True if sliding sums have lost digits and must be summed again.

    That is when the sum of squares fell far below its peak since the last summing (a large
    value left the window, taking the digits of the rest with it) or the variance is tiny next
    to the sum of squares about the shift (the mean moved far from the shift).
    """
    return s2 < _COLLAPSE * peak or (s2 - s1 * s1 * inv_n <= _COLLAPSE * s2 and s2 > 0.0)


@njit
def _bands_kernel(x: F8, k: float, mid: F8, upper: F8, lower: F8, pct_b: F8, width: F8) -> None:
    """Turn mean (in mid) and variance (in width) into the Bollinger outputs, in place.

    %b and the band width come from the spread itself, not from the rounded bands, so they
    keep their digits when the bands are narrow next to the price.
    """
    for i in range(x.size):
        m = mid[i]
        spread = k * math.sqrt(width[i])
        band = 2.0 * spread
        upper[i] = m + spread
        lower[i] = m - spread
        pct_b[i] = ((x[i] - m) + spread) / band if band > 0.0 else math.nan
        width[i] = band / m if m != 0.0 else math.nan


@njit
def _extreme_kernel(x: F8, n: int, sign: float, out: F8) -> None:
    """Fill out with the rolling max of n values of x (sign 1) or the min (sign -1).

    Van Herk / Gil-Werman: on blocks of n bars, the window t-n+1 .. t is the tail of the
    previous block (its suffix maxima, kept in `tail`) plus the head of the current block (a
    running maximum), so each bar costs a few branch-free comparisons. Every value read lies
    at or before t, and a maximum is exact, so prefixes agree bit for bit. Missing values
    count as -inf here and the windows holding them are set to NaN.
    """
    tail = np.full(n + 1, -np.inf)
    last_missing = -1  # so that t - last_missing >= n also covers the warm-up
    for b in range(0, x.size, n):
        e = min(b + n, x.size)
        head = -np.inf
        for t in range(b, e):
            v = sign * x[t]
            if not _ok(v):
                last_missing, v = t, -np.inf
            head = max(head, v)
            j = t - b + 1
            m = head if j == n else max(tail[j], head)
            out[t] = sign * m if t - last_missing >= n else math.nan
        _suffix_max(x, b, e, sign, tail)


@njit
def _suffix_max(x: F8, b: int, e: int, sign: float, tail: F8) -> None:
    """Set tail[j] to the max of sign * x[b + j : e] (missing values as -inf)."""
    acc = -np.inf
    for j in range(e - b - 1, -1, -1):
        v = sign * x[b + j]
        acc = max(acc, v if _ok(v) else -np.inf)
        tail[j] = acc


@njit
def _donchian_kernel(h: F8, lo: F8, c: F8, n: int, out: F8) -> None:
    """Fill out with (close - channel low) / (channel high - channel low) over bars t-n .. t-1.

    The channel is the rolling max of high and min of low (as in `_extreme_kernel`) of the
    previous bar, so each close is placed before its own bar joins the channel.
    """
    tail_h, tail_l = np.full(n + 1, -np.inf), np.full(n + 1, -np.inf)
    last_missing = -1
    top = bottom = math.nan  # the channel of bars t-n .. t-1
    for b in range(0, h.size, n):
        e = min(b + n, h.size)
        head_h = head_l = -np.inf
        for t in range(b, e):
            v = c[t]
            out[t] = (v - bottom) / (top - bottom) if top > bottom and _ok(v) else math.nan
            hv, lv = h[t], -lo[t]
            if not (_ok(hv) and _ok(lv)):
                last_missing, hv, lv = t, -np.inf, -np.inf
            head_h, head_l = max(head_h, hv), max(head_l, lv)
            j = t - b + 1
            if t - last_missing < n:
                top = bottom = math.nan
            elif j == n:
                top, bottom = head_h, -head_l
            else:
                top, bottom = max(tail_h[j], head_h), -max(tail_l[j], head_l)
        _suffix_max(h, b, e, 1.0, tail_h)
        _suffix_max(lo, b, e, -1.0, tail_l)


@njit
def _slope_anchor(x: F8, a: int, b: int) -> tuple[float, float, float, float]:
    """Return a shift (the mean of x[a:b]) and Σd, Σ(k - kbar)d and Σd² for d = x - shift."""
    shift = _anchor(x, a, b)[0]
    kbar = 0.5 * (b - a - 1)
    s = u = s2 = 0.0
    for j in range(a, b):
        d = x[j] - shift
        s += d
        u += (j - a - kbar) * d
        s2 += d * d
    return shift, s, u, s2


@njit
def _slope_kernel(x: F8, n: int, out: F8) -> None:
    """Fill out with the OLS slope of the last n values, from running centred sums.

    With d = x - shift and k = 0 .. n-1 the position in the window, the slope is
    U / Σ(k - kbar)² where U = Σ(k - kbar) d_k; sliding by one bar adds
    (kbar + 1) d_old + kbar d_new - S to U, S being Σd before the slide. The sums are made
    afresh at every multiple of `grid` and when they go stale (the scheme `features.stats` uses
    for rolling moments), so rounding never accumulates, prefixes agree bit for bit and a
    constant window has slope 0.
    """
    grid = max(n, _REANCHOR)
    inv_n = 1.0 / n
    kbar = 0.5 * (n - 1)
    inv_skk = 12.0 / (n * (n * n - 1.0))
    run = next_grid = 0  # the same scheme as features.stats
    shift = s = u = s2 = peak = 0.0
    for i in range(x.size):
        v = x[i]
        steady = i < next_grid and _ok(v)
        if steady:
            new, old = v - shift, x[i - n] - shift
            u += (kbar + 1.0) * old + kbar * new - s
            s += new - old
            s2 += new * new - old * old
            peak = max(peak, s2)
            steady = not _stale(s, s2, peak, inv_n)
        if not steady:
            run = run + 1 if _ok(v) else 0
            if run < n:
                next_grid = 0
                out[i] = math.nan
                continue
            shift, s, u, s2 = _slope_anchor(x, i + 1 - n, i + 1)
            peak = s2
            next_grid = (i // grid + 1) * grid
        out[i] = u * inv_skk
