"""Performance metrics of a backtest as pure functions of its arrays.

Inputs are numpy arrays: `equity` (account value per bar, marked to market), bar `timestamps`
(int64 epoch ns), per-trade results (pnl or returns, entry/exit ns), and per-bar `exposure` and
traded notional. `compute_metrics` returns all of them in one dict; each is also a function.

Conventions (where empyrical-reloaded and quantstats agree, we agree with both; each docstring
says which oracle a metric matches and where we differ on purpose):

* Returns are simple per-bar returns: `returns_from_equity(equity)[i]` is the return from bar i
  to bar i + 1, so n bars give n - 1 returns (the first bar is the starting capital).
* Annualisation always takes `periods_per_year` (see `periods_per_year()`): no default of 252,
  the classic mistake on 24/7 markets. Volatility scales by its square root; CAGR compounds
  over periods, not calendar time (the number of returns / periods_per_year years), as both
  oracles do.
* NaN returns or trade results are skipped, as both oracles do (returns after the equity has
  hit zero are NaN). Equity itself must be finite and start positive.
* A ratio whose denominator is zero is NaN, never ±inf (Sharpe at zero volatility, Sortino with
  no downside, Calmar with no drawdown, profit factor with no losses): NaN sorts last and
  serialises, where inf would win every optimisation. A spread below 64 ulps of 1 counts as
  zero: it is the rounding noise of `e1 / e0` (e.g. equity compounding at a fixed rate), and
  dividing by it gives the arbitrary 1e14 ratios the oracles report there.
* `max_drawdown` is ≤ 0 (−0.25 = 25% below the peak), like both oracles — the opposite sign to
  `reinforcetrade.features.stats.max_drawdown`, which it wraps.
"""

from __future__ import annotations

import math
from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.features import stats

__all__ = [
    "METRIC_KEYS", "DrawdownDuration", "annual_volatility", "average_loss", "average_win", "cagr",
    "calmar_ratio", "compute_metrics", "conditional_value_at_risk", "expectancy", "exposure_time",
    "kurtosis", "max_drawdown", "max_drawdown_duration", "payoff_ratio", "periods_per_year",
    "profit_factor", "returns_from_equity", "sharpe_ratio", "skew", "sortino_ratio",
    "total_return", "turnover", "value_at_risk", "win_rate",
]  # fmt: skip

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]
Moments = tuple[int, float, float, float, float, float, float, bool]

METRIC_KEYS: Final[tuple[str, ...]] = (
    "total_return", "cagr", "annual_volatility", "sharpe_ratio", "sortino_ratio", "calmar_ratio",
    "max_drawdown", "max_drawdown_duration_bars", "max_drawdown_duration_ns", "value_at_risk",
    "conditional_value_at_risk", "skew", "kurtosis", "exposure_time", "turnover", "trade_count",
    "win_rate", "profit_factor", "average_win", "average_loss", "payoff_ratio", "expectancy",
    "average_trade_duration_ns", "max_trade_duration_ns",
)  # fmt: skip
_DAY_NS: Final[int] = 86_400 * 10**9
_HOUR_NS: Final[int] = 3_600 * 10**9
# trading days a year, and whether a day is a session (equities) or 24 h of continuous trading
_CALENDARS: Final[dict[str, tuple[float, bool]]] = {
    "24/7": (365.0, False),
    "weekdays": (252.0, True),
    "equities": (252.0, True),
    "fx": (260.0, False),
}
#: a spread below this (relative) is rounding noise: the zero-volatility rule of every ratio
ROUNDING_NOISE: Final[float] = 64.0 * float(np.finfo(np.float64).eps)
_SNAP: Final[float] = 1e-9


class DrawdownDuration(NamedTuple):
    """The longest time under water: in bars, and in ns (`pd.Timedelta(d.ns)` reads it)."""

    bars: int
    ns: int


def periods_per_year(
    timeframe: str | Timeframe, calendar: str = "24/7", session_hours: float = 6.5
) -> float:
    """Return how many bars of `timeframe` a year holds on a market's `calendar`.

    Calendars: "24/7" (crypto: 365 days of 24 h), "weekdays" or "equities" (252 sessions of
    `session_hours`, 6.5 h by default as NYSE/Nasdaq 9:30–16:00), "fx" (260 weekdays of 24 h,
    trading continuously from Sunday evening to Friday evening). On a session calendar each
    session holds ceil(session / bar) bars, because its last bar is cut short by the close yet
    still printed: 1h bars give 7 a session (9:30, 10:30, … 15:30), 1764 a year, not 1638.
    Weekly bars count 52 a year on weekday calendars (a week with a holiday still has its bar),
    365 / 7 on 24/7; calendar months count 12 a year everywhere.

    >>> periods_per_year("1h"), periods_per_year("1d", "equities"), periods_per_year("1h", "fx")
    (8760.0, 252.0, 6240.0)
    >>> periods_per_year("1h", "equities"), periods_per_year("5m", "equities")
    (1764.0, 19656.0)
    """
    tf = parse_timeframe(timeframe)
    key = calendar.strip().lower() if isinstance(calendar, str) else calendar
    if key not in _CALENDARS:
        raise UserInputError(
            f"calendar {calendar!r} is not known; use '24/7' (crypto), 'weekdays' or "
            "'equities' (252 sessions a year), or 'fx' (260 days of 24 h)"
        )
    if not 0.0 < session_hours <= 24.0:
        raise UserInputError(f"session_hours must be in (0, 24], got {session_hours!r}")
    days, sessions = _CALENDARS[key]
    if tf.is_monthly:
        return 12.0 / tf.count
    if tf.unit == "w" and key != "24/7":
        return 52.0 / tf.count
    if tf.nanos >= _DAY_NS or not sessions:
        return days * _DAY_NS / tf.nanos
    session_ns = round(session_hours * _HOUR_NS)
    return days * -(-session_ns // tf.nanos)


def returns_from_equity(equity: npt.ArrayLike) -> F8:
    """Return the n - 1 simple returns of n equity values: (e[i+1] - e[i]) / e[i].

    Computed as a difference over the level (exact to one rounding, where e[i+1] / e[i] - 1
    loses the digits of small returns). A return after the equity has reached zero is NaN.

    >>> returns_from_equity([100.0, 110.0, 99.0])
    array([ 0.1, -0.1])
    """
    return _returns(_equity(equity))


def total_return(equity: npt.ArrayLike) -> float:
    """Return the growth over the whole curve, e[-1] / e[0] - 1 (NaN for no bars).

    Matches empyrical's `cum_returns_final` and quantstats' `comp` of the returns.

    >>> total_return([100.0, 120.0, 90.0])
    -0.1
    """
    e = _equity(equity)
    return float((e[-1] - e[0]) / e[0]) if e.size else math.nan


def cagr(equity: npt.ArrayLike, periods_per_year: float) -> float:
    """Return the compound annual growth rate over (n - 1) / periods_per_year years.

    Periods, not calendar time, set the years, as in empyrical's `cagr` (`annualization`) and
    quantstats' `cagr` (`periods`), so gaps in the data do not count as time. NaN with fewer
    than two bars; -1 once the equity has been wiped out (final value ≤ 0); inf on overflow.

    >>> round(cagr([100.0, 110.0, 121.0], periods_per_year=1), 12)
    0.1
    """
    e = _equity(equity)
    ppy = _ppy(periods_per_year)
    return _cagr(e, ppy)


def annual_volatility(returns: npt.ArrayLike, periods_per_year: float) -> float:
    """Return the sample standard deviation (ddof 1) of returns × sqrt(periods_per_year).

    As empyrical's `annual_volatility` (alpha 2) and quantstats' `volatility`; NaN with fewer
    than two returns.

    >>> round(annual_volatility([0.01, -0.01, 0.01, -0.01], periods_per_year=252), 6)
    0.183303
    """
    m = _moments(_returns_arg(returns), 0.0)
    return _volatility(m, _ppy(periods_per_year))


def sharpe_ratio(returns: npt.ArrayLike, periods_per_year: float, risk_free: float = 0.0) -> float:
    """Return mean(returns - risk_free) / std(returns, ddof 1) × sqrt(periods_per_year).

    `risk_free` is a rate per period (a bar), as empyrical's `risk_free`; quantstats' `rf` is
    an annual rate that it converts with (1 + rf) ** (1 / periods) - 1. NaN with fewer than two
    returns or zero volatility (empyrical and quantstats give ±inf there).

    >>> round(sharpe_ratio([0.02, -0.01, 0.03, 0.0], periods_per_year=365), 4)
    10.4642
    """
    m = _moments(_returns_arg(returns), 0.0)
    return _sharpe(m, _ppy(periods_per_year), _finite(risk_free, "risk_free"))


def sortino_ratio(
    returns: npt.ArrayLike, periods_per_year: float, required_return: float = 0.0
) -> float:
    """Return mean(r - required) / downside deviation × sqrt(periods_per_year).

    Downside deviation as empyrical's `downside_risk`: sqrt(mean(min(r - required, 0) ** 2))
    over all returns (not only the losing ones), which quantstats' `sortino` also uses. NaN
    with fewer than two returns or none below `required_return` (empyrical gives inf).

    >>> round(sortino_ratio([0.02, -0.01, 0.03, 0.0], periods_per_year=365), 4)
    38.2099
    """
    m = _moments(_returns_arg(returns), _finite(required_return, "required_return"))
    return _sortino(m, _ppy(periods_per_year), required_return)


def max_drawdown(equity: npt.ArrayLike) -> float:
    """Return the deepest fall below a running peak, ≤ 0 (-0.25 = 25% down; NaN for no bars).

    The negative of `features.stats.max_drawdown`; equal to empyrical's and quantstats'
    `max_drawdown` of the returns, whose peak also starts at the first equity value.

    >>> max_drawdown([100.0, 120.0, 90.0, 130.0])
    -0.25
    """
    return 0.0 - stats.max_drawdown(_equity(equity))


def calmar_ratio(equity: npt.ArrayLike, periods_per_year: float) -> float:
    """Return cagr / |max_drawdown|; NaN without a drawdown, or if the CAGR or ratio is inf.

    As empyrical's `calmar_ratio`; quantstats' `calmar` is the same ratio but keeps inf, and
    raises ZeroDivisionError without a drawdown.

    >>> round(calmar_ratio([100.0, 80.0, 120.0], periods_per_year=2), 12)
    1.0
    """
    e = _equity(equity)
    return _calmar(_cagr(e, _ppy(periods_per_year)), max_drawdown(e))


def max_drawdown_duration(equity: npt.ArrayLike, timestamps: npt.ArrayLike) -> DrawdownDuration:
    """Return the longest time under water, from a peak to the bar that regains it.

    A drawdown still open at the last bar lasts until that bar. `bars` and `ns` are each the
    maximum over drawdowns: with gaps in the timestamps they may come from different ones.
    (0, 0) when the curve never falls below a peak, or has no bars. Neither oracle computes it;
    backtesting.py measures "Max. Drawdown Duration" the same way (peak to recovery).

    >>> max_drawdown_duration([1.0, 2.0, 1.5, 1.8, 2.0, 3.0], [0, 10, 20, 30, 40, 50])
    DrawdownDuration(bars=3, ns=30)
    """
    e = _equity(equity)
    bars, ns = _underwater(e, _timestamps(timestamps, e.size))
    return DrawdownDuration(bars, ns)


def value_at_risk(returns: npt.ArrayLike, confidence: float = 0.95) -> float:
    """Return the historical VaR: the (1 - confidence) quantile of returns (a loss is < 0).

    Linear interpolation between order statistics, as numpy's percentile in empyrical's
    `value_at_risk(returns, cutoff=1 - confidence)`; quantstats' `value_at_risk` is parametric
    (normal) instead, so we do not match it. NaN for no returns.

    >>> value_at_risk([-0.05, -0.02, 0.0, 0.01, 0.03], confidence=0.75)
    -0.02
    """
    return _tail(_returns_arg(returns), _confidence(confidence))[0]


def conditional_value_at_risk(returns: npt.ArrayLike, confidence: float = 0.95) -> float:
    """Return the historical CVaR (expected shortfall): the mean of the worst returns.

    The worst floor((n - 1) × (1 - confidence)) + 1 returns, as empyrical's
    `conditional_value_at_risk`; quantstats' (method="historical") averages the returns at or
    below the VaR, the same set unless returns tie at the cut. NaN for no returns.

    >>> conditional_value_at_risk([-0.05, -0.02, 0.0, 0.01, 0.03], confidence=0.75)
    -0.035
    """
    return _tail(_returns_arg(returns), _confidence(confidence))[1]


def skew(returns: npt.ArrayLike) -> float:
    """Return the bias-corrected sample skewness G1 (pandas' and so quantstats' `skew`).

    NaN with fewer than three returns or zero spread.

    >>> round(skew([0.01, 0.02, 0.04, 0.01]), 6)
    1.414214
    """
    return _skew(_moments(_returns_arg(returns), 0.0))


def kurtosis(returns: npt.ArrayLike) -> float:
    """Return the bias-corrected sample excess kurtosis G2 (pandas' and quantstats').

    A normal sample gives about 0. NaN with fewer than four returns or zero spread.

    >>> round(kurtosis([0.01, 0.02, 0.04, 0.01, 0.03]), 6)
    -1.487889
    """
    return _kurtosis(_moments(_returns_arg(returns), 0.0))


def exposure_time(exposure: npt.ArrayLike) -> float:
    """Return the share of bars holding a position (exposure ≠ 0); NaN for no bars.

    quantstats' `exposure` instead counts non-zero returns and rounds up to a whole percent.

    >>> exposure_time([0.0, 0.5, 1.0, 0.0])
    0.5
    """
    x = _values(exposure, "exposure", allow_nan=False)
    return float(np.count_nonzero(x)) / x.size if x.size else math.nan


def turnover(
    traded_notional: npt.ArrayLike, equity: npt.ArrayLike, periods_per_year: float
) -> float:
    """Return the annualised traded notional over the average equity.

    mean(traded notional per bar) × periods_per_year / mean(equity): buys and sells both count,
    so putting the whole account into a position and closing it again is a turnover of 2.
    NaN for no bars. (Neither oracle computes it.)

    >>> turnover([0.0, 100.0, 0.0, 100.0], [100.0, 100.0, 100.0, 100.0], periods_per_year=4)
    2.0
    """
    e = _equity(equity)
    return _turnover(
        _values(traded_notional, "traded_notional", allow_nan=False, size=e.size),
        e,
        _ppy(periods_per_year),
    )


def win_rate(results: npt.ArrayLike) -> float:
    """Return the share of trades that made money (result > 0); NaN for no trades.

    A breakeven trade counts as a trade that did not win, as backtesting.py, vectorbt and
    freqtrade count it; quantstats' `win_rate` (on period returns) leaves zeros out.

    >>> win_rate([10.0, -5.0, 0.0, 2.5])
    0.5
    """
    x = _results(results)
    return float(np.count_nonzero(x > 0.0)) / x.size if x.size else math.nan


def profit_factor(results: npt.ArrayLike) -> float:
    """Return gross profit / gross loss; NaN without a losing trade (quantstats: inf or 0).

    >>> profit_factor([10.0, -5.0, 5.0, -10.0])
    1.0
    """
    x = _results(results)
    loss = -float(x[x < 0.0].sum())
    return float(x[x > 0.0].sum()) / loss if loss > 0.0 else math.nan


def average_win(results: npt.ArrayLike) -> float:
    """Return the mean result of the winning trades (quantstats' `avg_win`); NaN if none.

    >>> average_win([0.02, -0.01, 0.04])
    0.03
    """
    x = _results(results)
    return _mean(x[x > 0.0])


def average_loss(results: npt.ArrayLike) -> float:
    """Return the mean result of the losing trades, < 0 (quantstats' `avg_loss`); NaN if none.

    >>> average_loss([0.02, -0.01, -0.03])
    -0.02
    """
    x = _results(results)
    return _mean(x[x < 0.0])


def payoff_ratio(results: npt.ArrayLike) -> float:
    """Return average_win / |average_loss| (quantstats' `payoff_ratio`); NaN without both.

    >>> payoff_ratio([0.02, -0.01, 0.04, -0.03])
    1.5
    """
    x = _results(results)
    return _payoff(x)


def expectancy(results: npt.ArrayLike) -> float:
    """Return the mean result per trade: win_rate × average_win + loss_rate × average_loss.

    >>> expectancy([0.02, -0.01, 0.04, -0.03])
    0.005
    """
    return _mean(_results(results))


def compute_metrics(
    equity: npt.ArrayLike,
    timestamps: npt.ArrayLike,
    trade_pnl: npt.ArrayLike,
    trade_returns: npt.ArrayLike,
    trade_entry_ns: npt.ArrayLike,
    trade_exit_ns: npt.ArrayLike,
    periods_per_year: float,
    exposure: npt.ArrayLike | None = None,
    traded_notional: npt.ArrayLike | None = None,
    *,
    risk_free: float = 0.0,
    confidence: float = 0.95,
) -> dict[str, float]:
    """Return every metric of a backtest under the keys of `METRIC_KEYS`, in that order.

    Bar metrics come from `equity` (one value per bar, at `timestamps`): total_return, cagr,
    annual_volatility, sharpe_ratio and sortino_ratio (both against `risk_free` per bar),
    calmar_ratio, max_drawdown, max_drawdown_duration_bars / _ns, value_at_risk and
    conditional_value_at_risk (at `confidence`), skew, kurtosis; exposure_time and turnover
    need `exposure` and `traded_notional` (per bar), else they are NaN. Trade metrics come
    from the closed trades: trade_count, win_rate and expectancy, average_win, average_loss
    and payoff_ratio from `trade_returns`; profit_factor from `trade_pnl` (money); the average
    and longest holding time (exit - entry ns). A metric that is undefined (no trades, one bar,
    no volatility) is NaN: this never raises for want of data, only for malformed input.

    >>> m = compute_metrics([100.0, 110.0, 99.0, 120.0], [0, 1, 2, 3], [10.0, -11.0],
    ...                     [0.1, -0.1], [0, 1], [1, 2], periods_per_year=365)
    >>> m["total_return"], m["max_drawdown"], m["win_rate"], m["profit_factor"]
    (0.2, -0.1, 0.5, 0.909...)
    """
    e = _equity(equity)
    ts = _timestamps(timestamps, e.size)
    ppy = _ppy(periods_per_year)
    rf = _finite(risk_free, "risk_free")
    r = _returns(e)
    m = _moments(r, rf)
    var, cvar = _tail(r, _confidence(confidence))
    mdd = max_drawdown(e)
    growth = _cagr(e, ppy)
    dd_bars, dd_ns = _underwater(e, ts)
    pnl, rets, held = _trades(trade_pnl, trade_returns, trade_entry_ns, trade_exit_ns)
    lost = -float(pnl[pnl < 0.0].sum())
    values = {
        "total_return": total_return(e),
        "cagr": growth,
        "annual_volatility": _volatility(m, ppy),
        "sharpe_ratio": _sharpe(m, ppy, rf),
        "sortino_ratio": _sortino(m, ppy, rf),
        "calmar_ratio": _calmar(growth, mdd),
        "max_drawdown": mdd,
        "max_drawdown_duration_bars": float(dd_bars) if e.size else math.nan,
        "max_drawdown_duration_ns": float(dd_ns) if e.size else math.nan,
        "value_at_risk": var,
        "conditional_value_at_risk": cvar,
        "skew": _skew(m),
        "kurtosis": _kurtosis(m),
        "exposure_time": math.nan
        if exposure is None
        else exposure_time(_values(exposure, "exposure", allow_nan=False, size=e.size)),
        "turnover": math.nan
        if traded_notional is None
        else _turnover(
            _values(traded_notional, "traded_notional", allow_nan=False, size=e.size), e, ppy
        ),
        "trade_count": float(pnl.size),
        "win_rate": float(np.count_nonzero(rets > 0.0)) / rets.size if rets.size else math.nan,
        "profit_factor": float(pnl[pnl > 0.0].sum()) / lost if lost > 0.0 else math.nan,
        "average_win": _mean(rets[rets > 0.0]),
        "average_loss": _mean(rets[rets < 0.0]),
        "payoff_ratio": _payoff(rets),
        "expectancy": _mean(rets),
        "average_trade_duration_ns": _mean(held),
        "max_trade_duration_ns": float(held.max()) if held.size else math.nan,
    }
    return {key: values[key] for key in METRIC_KEYS}


# --- the arithmetic, shared by the public functions and compute_metrics ------------------------


def _cagr(e: F8, ppy: float) -> float:
    """Return the CAGR of a validated curve (see `cagr`)."""
    if e.size < 2:
        return math.nan
    if not e[-1] > 0.0:
        return -1.0
    growth = (e[-1] - e[0]) / e[0]
    # log1p keeps the digits of a small growth, log those of a near-total loss
    log_growth = np.log1p(growth) if abs(growth) < 0.5 else np.log(e[-1] / e[0])
    with np.errstate(over="ignore"):
        return float(np.expm1(log_growth * (ppy / (e.size - 1))))


def _volatility(m: Moments, ppy: float) -> float:
    """Return the annualised sample standard deviation from the moments."""
    return _std(m) * math.sqrt(ppy)


def _sharpe(m: Moments, ppy: float, rf: float) -> float:
    """Return the Sharpe ratio from the moments, NaN at zero (noise-level) volatility."""
    std = _std(m)
    if not std > _noise(m):
        return math.nan
    return (m[1] - rf) / std * math.sqrt(ppy)


def _sortino(m: Moments, ppy: float, required: float) -> float:
    """Return the Sortino ratio from the moments, NaN with no (noise-level) downside."""
    n = m[0]
    if n < 2:
        return math.nan
    downside = math.sqrt(m[5] / n)
    # constant losses have a downside; noise has not
    if not downside > ROUNDING_NOISE * (1.0 + m[6]):
        return math.nan
    return (m[1] - required) / downside * math.sqrt(ppy)


def _calmar(growth: float, mdd: float) -> float:
    """Return CAGR / |max drawdown|, NaN without a drawdown or a finite CAGR or ratio."""
    ratio = growth / -mdd if mdd < 0.0 else math.nan
    return ratio if math.isfinite(ratio) else math.nan


def _skew(m: Moments) -> float:
    """Return the adjusted Fisher-Pearson skewness G1 from the moments."""
    n, s2, s3 = m[0], m[2], m[3]
    if n < 3 or not _std(m) > _noise(m):
        return math.nan
    m2, m3 = s2 / n, s3 / n
    return math.sqrt(n * (n - 1.0)) / (n - 2.0) * m3 / (m2 * math.sqrt(m2))


def _kurtosis(m: Moments) -> float:
    """Return the adjusted excess kurtosis G2 from the moments (pandas' formula)."""
    n, s2, s4 = m[0], m[2], m[4]
    if n < 4 or not _std(m) > _noise(m):
        return math.nan
    ratio = n * s4 / (s2 * s2)  # m4 / m2 ** 2
    return (n - 1.0) / ((n - 2.0) * (n - 3.0)) * ((n + 1.0) * ratio - 3.0 * (n - 1.0))


def _std(m: Moments) -> float:
    """Return the sample standard deviation (ddof 1), NaN below two values."""
    return math.sqrt(max(m[2], 0.0) / (m[0] - 1)) if m[0] >= 2 else math.nan


def _noise(m: Moments) -> float:
    """Return the spread that is rounding noise for these returns (inf if they never vary)."""
    return ROUNDING_NOISE * (1.0 + m[6]) if m[7] else math.inf


def _tail(r: F8, confidence: float) -> tuple[float, float]:
    """Return historical VaR and CVaR of the non-NaN returns at `confidence`."""
    x = r[~np.isnan(r)]
    if x.size == 0:
        return math.nan, math.nan
    position = (x.size - 1) * (1.0 - confidence)
    # 1 - 0.9 is 0.09999999999999998: a position this close to a whole number is that number
    nearest = round(position)
    if abs(position - nearest) <= _SNAP * max(1.0, position):
        position = float(nearest)
    k = int(position)
    x.partition([k, k + 1] if k + 1 < x.size else [k])
    lo = float(x[k])
    frac = position - k
    var = lo
    if frac > 0.0:
        hi = float(x[k + 1])
        var = lo + (hi - lo) * frac if frac < 0.5 else hi - (hi - lo) * (1.0 - frac)
    return var, float(x[: k + 1].mean())


def _turnover(notional: F8, e: F8, ppy: float) -> float:
    """Return annualised traded notional / mean equity (see `turnover`)."""
    if e.size == 0:
        return math.nan
    return float(notional.mean()) * ppy / float(e.mean())


def _payoff(x: F8) -> float:
    """Return mean win / |mean loss|, NaN without both a win and a loss."""
    win, loss = _mean(x[x > 0.0]), _mean(x[x < 0.0])
    return win / -loss if win == win and loss == loss else math.nan


def _mean(x: npt.NDArray[np.float64] | npt.NDArray[np.int64]) -> float:
    """Return the mean, NaN for an empty array."""
    return float(x.mean()) if x.size else math.nan


@njit
def _moments(r: F8, threshold: float) -> Moments:
    """Return (n, mean, Σd², Σd³, Σd⁴, Σ min(r - threshold, 0)², max |r|, varies) of non-NaN r.

    d is the deviation from the mean. Two passes; the second corrects the mean and Σd² for the
    rounding of the first (the corrected two-pass algorithm), so a tiny spread keeps its digits.
    """
    n = 0
    total = 0.0
    first = np.nan
    for x in r:
        if not np.isnan(x):
            if n == 0:
                first = x
            n += 1
            total += x
    if n == 0:
        return 0, np.nan, np.nan, np.nan, np.nan, np.nan, np.nan, False
    mean = total / n
    s1 = s2 = s3 = s4 = down = big = 0.0
    varies = False
    for x in r:
        if np.isnan(x):
            continue
        d = x - mean
        d2 = d * d
        s1 += d
        s2 += d2
        s3 += d2 * d
        s4 += d2 * d2
        below = x - threshold
        if below < 0.0:
            down += below * below
        big = max(big, abs(x))
        varies = varies or x != first
    return n, mean + s1 / n, s2 - s1 * s1 / n, s3, s4, down, big, varies


@njit
def _underwater(e: F8, ts: I8) -> tuple[int, int]:
    """Return the most bars and the most ns from a peak to its recovery (or the last bar)."""
    n = e.size
    bars = 0
    ns = 0
    if n == 0:
        return 0, 0
    peak = e[0]
    at = 0
    for i in range(1, n):
        if e[i] >= peak:
            if i - at > 1:
                bars = max(bars, i - at)
                ns = max(ns, ts[i] - ts[at])
            peak = e[i]
            at = i
    if at < n - 1:
        bars = max(bars, n - 1 - at)
        ns = max(ns, ts[n - 1] - ts[at])
    return bars, ns


# --- input checks ------------------------------------------------------------------------------


def _returns(e: F8) -> F8:
    """Return the simple returns of a validated curve, NaN after a non-positive value."""
    out = np.diff(e)
    prev = e[:-1]
    with np.errstate(all="ignore"):
        np.divide(out, prev, out=out)
    if e.size > 1 and float(prev.min()) <= 0.0:
        out[prev <= 0.0] = np.nan
    return out


def _equity(equity: npt.ArrayLike) -> F8:
    """Return equity as a 1-d float64 array, finite and positive at the start."""
    e = _values(equity, "equity", allow_nan=False)
    if e.size and not e[0] > 0.0:
        raise UserInputError(
            f"equity must start positive (the starting capital), got {float(e[0])!r}; pass the "
            "account value (cash + positions marked to market), not the cumulative profit"
        )
    return e


def _values(
    values: npt.ArrayLike, name: str, *, allow_nan: bool = True, size: int | None = None
) -> F8:
    """Return values as a contiguous 1-d float64 array, checked for NaN/inf and length."""
    try:
        a = np.ascontiguousarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise UserInputError(f"{name} must be an array of numbers: {exc}") from exc
    if a.ndim != 1:
        raise UserInputError(f"{name} must be one-dimensional, got shape {a.shape}")
    if size is not None and a.size != size:
        raise UserInputError(f"{name} has {a.size} values but equity has {size} bars")
    bad = np.isinf(a) if allow_nan else ~np.isfinite(a)
    if bad.any():
        i = int(np.argmax(bad))
        raise UserInputError(f"{name} must be finite, but value {i} is {float(a[i])!r}")
    return a


def _returns_arg(returns: npt.ArrayLike) -> F8:
    """Return returns as a 1-d float64 array (NaN allowed: skipped)."""
    return _values(returns, "returns")


def _results(results: npt.ArrayLike) -> F8:
    """Return trade results without NaN."""
    x = _values(results, "results")
    return x[~np.isnan(x)]


def _ns(values: npt.ArrayLike, name: str) -> I8:
    """Return epoch-ns times (int64 or datetime64) as a 1-d int64 array."""
    a = np.asarray(values)
    if a.dtype.kind == "M":
        a = a.astype("datetime64[ns]").view(np.int64)
    elif a.size == 0:
        a = a.astype(np.int64)
    elif a.dtype.kind not in "iu":
        raise UserInputError(f"{name} must be int64 epoch nanoseconds or datetime64, got {a.dtype}")
    if a.ndim != 1:
        raise UserInputError(f"{name} must be one-dimensional, got shape {a.shape}")
    return np.ascontiguousarray(a, dtype=np.int64)


def _timestamps(timestamps: npt.ArrayLike, size: int) -> I8:
    """Return bar times as int64 ns, one per equity bar and strictly increasing."""
    ts = _ns(timestamps, "timestamps")
    if ts.size != size:
        raise UserInputError(f"timestamps has {ts.size} values but equity has {size} bars")
    steps = np.diff(ts)
    if steps.size and not bool((steps > 0).all()):
        i = int(np.argmin(steps > 0)) + 1
        raise UserInputError(
            f"timestamps must increase strictly, but bar {i} is not after bar {i - 1}"
        )
    return ts


def _trades(
    pnl: npt.ArrayLike, rets: npt.ArrayLike, entry: npt.ArrayLike, exit_: npt.ArrayLike
) -> tuple[F8, F8, F8]:
    """Return trade pnl, returns and holding times (ns, float), checked for equal lengths."""
    p = _values(pnl, "trade_pnl", allow_nan=False)
    r = _values(rets, "trade_returns", allow_nan=False, size=None)
    t0, t1 = _ns(entry, "trade_entry_ns"), _ns(exit_, "trade_exit_ns")
    if not p.size == r.size == t0.size == t1.size:
        raise UserInputError(
            "trade arrays must have one value per trade, got "
            f"{p.size} pnl, {r.size} returns, {t0.size} entries, {t1.size} exits"
        )
    held = (t1 - t0).astype(np.float64)
    if held.size and float(held.min()) < 0.0:
        raise UserInputError(f"trade {int(np.argmin(held))} exits before it enters")
    return p, r, held


def _ppy(periods_per_year: float) -> float:
    """Return periods_per_year if it is a finite positive number."""
    if not (
        isinstance(periods_per_year, int | float | np.number) and 0.0 < periods_per_year < math.inf
    ):
        raise UserInputError(
            f"periods_per_year must be positive, got {periods_per_year!r}; "
            "see periods_per_year('1h', '24/7') = 8760"
        )
    return float(periods_per_year)


def _finite(value: float, name: str) -> float:
    """Return value as a float if it is finite."""
    if not (isinstance(value, int | float | np.number) and math.isfinite(value)):
        raise UserInputError(f"{name} must be a finite number (a rate per bar), got {value!r}")
    return float(value)


def _confidence(confidence: float) -> float:
    """Return confidence if it lies strictly between 0 and 1."""
    if not (isinstance(confidence, int | float | np.number) and 0.0 < confidence < 1.0):
        raise UserInputError(f"confidence must be between 0 and 1 (e.g. 0.95), got {confidence!r}")
    return float(confidence)
