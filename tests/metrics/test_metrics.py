"""Backtest metrics against empyrical-reloaded and quantstats, by hand, and by their properties.

Oracles get exactly our returns (`returns_from_equity(equity)`), as numpy arrays (empyrical) or
Series on a daily DatetimeIndex (quantstats: its `max_drawdown`/`calmar` fail on a RangeIndex).
Both import and run cleanly on pandas 3.1 / numpy 2.4; their calls sit in `np.errstate` because
they legitimately overflow to inf (a CAGR over a few bars) where we compare inf with inf.
Tolerances are 1e-9 relative, plus an absolute floor only where the two sides round
differently by construction (the oracles rebuild equity as a product of returns, which carries
n roundings, so a drawdown differs by about n ulps; an annualised growth by ppy ulps).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import empyrical as ep  # type: ignore[import-untyped]  # no stubs, no py.typed
import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
import quantstats as qs
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reinforcetrade.backtesting.metrics import (
    METRIC_KEYS,
    DrawdownDuration,
    annual_volatility,
    average_loss,
    average_win,
    cagr,
    calmar_ratio,
    compute_metrics,
    conditional_value_at_risk,
    expectancy,
    exposure_time,
    kurtosis,
    max_drawdown,
    max_drawdown_duration,
    payoff_ratio,
    periods_per_year,
    profit_factor,
    returns_from_equity,
    sharpe_ratio,
    skew,
    sortino_ratio,
    total_return,
    turnover,
    value_at_risk,
    win_rate,
)
from reinforcetrade.core.errors import TimeframeError, UserInputError

F8 = npt.NDArray[np.float64]
SETTINGS = settings(max_examples=100, deadline=None)
PPY = st.sampled_from([12.0, 52.0, 252.0, 365.0, 8760.0])
CUTOFF = {0.5: 0.5, 0.75: 0.25, 0.9: 0.1, 0.95: 0.05, 0.99: 0.01}  # confidence -> 1 - it, as typed
DAY = 86_400 * 10**9
NO_TRADES: tuple[list[float], list[float], list[int], list[int]] = ([], [], [], [])


def close(ours: float, ref: Any, rel: float = 1e-9, abs_: float = 0.0) -> bool:
    """Equal within rel (and abs_), NaN equal to NaN, inf equal to the same inf."""
    want = float(ref)
    if math.isnan(want) or math.isnan(ours) or math.isinf(want) or math.isinf(ours):
        return ours == want or (math.isnan(ours) and math.isnan(want))
    return abs(ours - want) <= max(rel * abs(want), abs_)


def series(x: F8) -> pd.Series:
    return pd.Series(x, index=pd.date_range("2020-01-01", periods=x.size, freq="D"))


def oracle(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> float:
    with np.errstate(all="ignore"):  # oracles overflow to inf where we do (see module docstring)
        return float(fn(*args, **kwargs))


@st.composite
def equity_curves(draw: st.DrawFn, min_bars: int = 2, max_bars: int = 200) -> F8:
    """Account values from a start capital and returns in ±20% (no magnitude below 1e-4)."""
    n = draw(st.integers(min_bars - 1, max_bars - 1))
    r = draw(arrays(np.float64, n, elements=st.floats(-0.2, 0.2)))
    r[np.abs(r) < 1e-4] = 0.0  # a map, not a filter: filtering elements is 15x slower
    start = draw(st.floats(1.0, 1e7))
    return np.asarray(start * np.cumprod(np.r_[1.0, 1.0 + r]), dtype=np.float64)


def well_spread(r: F8) -> bool:
    """A spread far above rounding noise, so ratios over it are well conditioned."""
    return r.size >= 2 and float(np.std(r, ddof=1)) > 1e-6 * float(np.abs(r).max())


# --- against empyrical-reloaded and quantstats -------------------------------------------------


@SETTINGS
@given(e=equity_curves(), ppy=PPY)
def test_growth_and_drawdown_agree_with_the_oracles(e: F8, ppy: float) -> None:
    r = returns_from_equity(e)
    s, n = series(r), r.size
    tr = total_return(e)
    assert close(tr, oracle(ep.cum_returns_final, r), abs_=1e-13 * n * (1 + abs(tr)))
    assert close(tr, oracle(qs.stats.comp, s), abs_=1e-13 * n * (1 + abs(tr)))
    growth = cagr(e, ppy)
    floor = 1e-13 * ppy * (1 + abs(growth))  # ppy / n powers of an n-ulp product
    assert close(growth, oracle(ep.cagr, r, annualization=ppy), abs_=floor)
    # quantstats forms 1 + (prod - 1), keeping only the absolute digits of the final wealth
    wealth = e[-1] / e[0]
    lost = (1 + abs(growth)) * ppy / n * 1e-15 / wealth
    assert close(growth, oracle(qs.stats.cagr, s, periods=ppy), abs_=floor + lost)
    mdd = max_drawdown(e)
    assert close(mdd, oracle(ep.max_drawdown, r), abs_=1e-13 * n)
    assert close(mdd, oracle(qs.stats.max_drawdown, s), abs_=1e-13 * n)
    calmar = calmar_ratio(e, ppy)
    ref = oracle(ep.calmar_ratio, r, annualization=ppy)
    if mdd < 0.0:  # the drawdown's n ulps, relative to its size, carry into the ratio
        rel = max(1e-9, 2e-13 * n / -mdd)
        assert close(calmar, ref, rel=rel, abs_=floor / -mdd)
        if math.isfinite(ref):  # quantstats keeps an infinite CAGR's inf; empyrical and we: NaN
            ref = oracle(qs.stats.calmar, s, periods=ppy)
            assert close(calmar, ref, rel=rel, abs_=(floor + lost) / -mdd)
    else:  # no drawdown: NaN here and in empyrical; quantstats divides by zero (raises)
        assert math.isnan(calmar)
        assert math.isnan(ref)


@SETTINGS
@given(e=equity_curves(), ppy=PPY, rf=st.sampled_from([0.0, 1e-4, -2e-4, 0.003]))
def test_risk_ratios_agree_with_the_oracles(e: F8, ppy: float, rf: float) -> None:
    r = returns_from_equity(e)
    s = series(r)
    vol = annual_volatility(r, ppy)
    noise = 1e-14 * math.sqrt(ppy) * float(np.abs(r).max())  # a spread of rounding noise
    assert close(vol, oracle(ep.annual_volatility, r, annualization=ppy), abs_=noise)
    assert close(vol, oracle(qs.stats.volatility, s, periods=ppy), abs_=noise)
    sharpe, sortino = sharpe_ratio(r, ppy, rf), sortino_ratio(r, ppy, required_return=rf)
    if not well_spread(r):
        return  # zero spread (or its rounding noise): see test_zero_volatility_gives_nan
    ulp = 1e-13 * math.sqrt(ppy)  # a mean of ~0 is known to a few ulps of the returns
    assert close(sharpe, oracle(ep.sharpe_ratio, r, risk_free=rf, annualization=ppy), abs_=ulp)
    ref = oracle(ep.sortino_ratio, r, required_return=rf, annualization=ppy)
    if (r < rf).any():
        assert close(sortino, ref, abs_=ulp)
    else:  # no return below the target: NaN here, inf in empyrical
        assert math.isnan(sortino)
        assert math.isinf(ref)
    # quantstats takes an annual rf and de-annualises it: (1 + rf) ** (1 / ppy) - 1 per bar
    # (and ignores a negative one: it subtracts rf only when rf > 0)
    if rf >= 0.0:
        ref_qs = oracle(qs.stats.sharpe, s, rf=(1.0 + rf) ** ppy - 1.0, periods=ppy)
        assert close(sharpe, ref_qs, rel=1e-8, abs_=1e-9 * math.sqrt(ppy))
    if rf == 0.0:
        ref = oracle(qs.stats.sortino, s, periods=ppy)
        assert close(sortino, ref, abs_=ulp) if (r < 0).any() else math.isnan(ref)


@SETTINGS
@given(e=equity_curves(), confidence=st.sampled_from(sorted(CUTOFF)))
def test_tail_risk_agrees_with_the_oracles(e: F8, confidence: float) -> None:
    r = returns_from_equity(e)
    var, cvar = value_at_risk(r, confidence), conditional_value_at_risk(r, confidence)
    cutoff = CUTOFF[confidence]
    assert close(var, oracle(ep.value_at_risk, r, cutoff=cutoff), abs_=1e-15)
    assert close(cvar, oracle(ep.conditional_value_at_risk, r, cutoff=cutoff), abs_=1e-15)
    # quantstats' historical CVaR averages the returns <= its VaR: the same set of returns when
    # no two tie at the cut and (n - 1)(1 - confidence) does not round below a whole number
    # (1 - 0.9 = 0.09999999999999998 does; 0.95 and 0.99 round up)
    if confidence in (0.95, 0.99) and np.unique(r).size == r.size:
        ref = oracle(
            qs.stats.conditional_value_at_risk,
            series(r),
            confidence=confidence,
            method="historical",
        )
        assert close(cvar, ref, abs_=1e-15)


@SETTINGS
@given(e=equity_curves(min_bars=1))
def test_skew_and_kurtosis_agree_with_pandas_via_quantstats(e: F8) -> None:
    r = returns_from_equity(e)
    if r.size < 3:
        assert math.isnan(skew(r))
        assert math.isnan(kurtosis(r))
        return
    if not well_spread(r):
        return  # see test_zero_volatility_gives_nan
    assert close(skew(r), oracle(qs.stats.skew, series(r)), abs_=1e-10)
    if r.size >= 4:
        assert close(kurtosis(r), oracle(qs.stats.kurtosis, series(r)), abs_=1e-10)
    else:
        assert math.isnan(kurtosis(r))


@st.composite
def trade_results(draw: st.DrawFn, zeros: bool = False) -> F8:
    x = draw(arrays(np.float64, st.integers(1, 60), elements=st.floats(-0.9, 0.9)))
    x[np.abs(x) < 1e-6] = 0.0 if zeros else 1e-3
    return x


@SETTINGS
@given(x=trade_results())
def test_trade_metrics_agree_with_quantstats(x: F8) -> None:
    s = series(x)
    assert close(win_rate(x), oracle(qs.stats.win_rate, s))
    assert close(average_win(x), oracle(qs.stats.avg_win, s))
    assert close(average_loss(x), oracle(qs.stats.avg_loss, s))
    assert close(payoff_ratio(x), oracle(qs.stats.payoff_ratio, s))
    ref = oracle(qs.stats.profit_factor, s)
    if (x < 0).any():
        assert close(profit_factor(x), ref)
    else:  # no loss: quantstats says inf, we say undefined
        assert math.isnan(profit_factor(x))
        assert ref == math.inf


@SETTINGS
@given(x=trade_results(zeros=True))
def test_breakeven_trades_count_as_trades_not_wins(x: F8) -> None:
    # quantstats drops zero returns from win_rate's denominator (flat periods); a breakeven
    # trade is still a trade, so we keep it, as backtesting.py, vectorbt and freqtrade do
    nonzero = x[x != 0.0]
    assert win_rate(x) == pytest.approx(np.count_nonzero(x > 0) / x.size, rel=1e-15)
    if nonzero.size:
        assert close(win_rate(x) * x.size / nonzero.size, oracle(qs.stats.win_rate, series(x)))
    expected = win_rate(x) * average_win(x) if (x > 0).any() else 0.0
    if (x < 0).any():
        expected += np.count_nonzero(x < 0) / x.size * average_loss(x)
    assert expectancy(x) == pytest.approx(expected, rel=1e-9, abs=1e-15)


@SETTINGS
@given(r=arrays(np.float64, st.integers(1, 80), elements=st.sampled_from([0.0, 0.01, -0.02])))
def test_exposure_time_is_quantstats_exposure_before_its_rounding(r: F8) -> None:
    ours = exposure_time((r != 0).astype(np.float64))
    assert math.ceil(ours * 100) / 100 == oracle(qs.stats.exposure, series(r))


def test_a_realistic_year_of_minute_bars_matches_every_oracle() -> None:
    rng = np.random.default_rng(11)
    e = 1e4 * np.cumprod(np.r_[1.0, 1.0 + rng.standard_t(4, 20_000) * 1e-3 + 2e-6])
    r, s, ppy = returns_from_equity(e), series(returns_from_equity(e)), periods_per_year("1m")
    o = oracle
    cases = [
        (cagr(e, ppy), [o(ep.cagr, r, annualization=ppy), o(qs.stats.cagr, s, periods=ppy)]),
        (annual_volatility(r, ppy), [o(ep.annual_volatility, r, annualization=ppy), o(qs.stats.volatility, s, periods=ppy)]),
        (sharpe_ratio(r, ppy), [o(ep.sharpe_ratio, r, annualization=ppy), o(qs.stats.sharpe, s, periods=ppy)]),
        (sortino_ratio(r, ppy), [o(ep.sortino_ratio, r, annualization=ppy), o(qs.stats.sortino, s, periods=ppy)]),
        (calmar_ratio(e, ppy), [o(ep.calmar_ratio, r, annualization=ppy), o(qs.stats.calmar, s, periods=ppy)]),
        (max_drawdown(e), [o(ep.max_drawdown, r), o(qs.stats.max_drawdown, s)]),
        (value_at_risk(r), [o(ep.value_at_risk, r, 0.05)]),
        (conditional_value_at_risk(r), [o(ep.conditional_value_at_risk, r, 0.05), o(qs.stats.cvar, s, method="historical")]),
        (skew(r), [o(qs.stats.skew, s)]),
        (kurtosis(r), [o(qs.stats.kurtosis, s)]),
        (profit_factor(r), [o(qs.stats.profit_factor, s)]),
        (payoff_ratio(r), [o(qs.stats.payoff_ratio, s)]),
        (win_rate(r), [o(qs.stats.win_rate, s)]),
        (average_win(r), [o(qs.stats.avg_win, s)]),
        (average_loss(r), [o(qs.stats.avg_loss, s)]),
    ]  # fmt: skip
    for ours, refs in cases:
        for ref in refs:
            assert close(ours, ref), (ours, refs)


# --- by hand -----------------------------------------------------------------------------------

HAND_EQUITY = [100.0, 110.0, 99.0, 108.9, 130.68]  # returns 0.1, -0.1, 0.1, 0.2; one year at ppy 4


def test_hand_computed_bar_metrics() -> None:
    e, ppy = HAND_EQUITY, 4.0
    r = returns_from_equity(e)
    np.testing.assert_allclose(r, [0.1, -0.1, 0.1, 0.2], rtol=1e-14)
    std = math.sqrt((0.025**2 + 0.175**2 + 0.025**2 + 0.125**2) / 3)  # mean 0.075
    assert total_return(e) == pytest.approx(0.3068, rel=1e-14)
    assert cagr(e, ppy) == pytest.approx(0.3068, rel=1e-14)  # exactly one year
    assert cagr(e, 2.0) == pytest.approx(1.3068**0.5 - 1, rel=1e-14)  # two years
    assert annual_volatility(r, ppy) == pytest.approx(std * 2, rel=1e-14)
    assert sharpe_ratio(r, ppy) == pytest.approx(0.075 / std * 2, rel=1e-14)
    assert sharpe_ratio(r, ppy, risk_free=0.025) == pytest.approx(0.05 / std * 2, rel=1e-14)
    assert sortino_ratio(r, ppy) == pytest.approx(0.075 / math.sqrt(0.01 / 4) * 2, rel=1e-14)
    assert max_drawdown(e) == pytest.approx(-0.1, rel=1e-14)
    assert calmar_ratio(e, ppy) == pytest.approx(3.068, rel=1e-14)
    # under water from the peak at bar 1 (110) until bar 4 regains it (108.9 is still below)
    assert max_drawdown_duration(e, [0, DAY, 2 * DAY, 5 * DAY, 6 * DAY]) == DrawdownDuration(
        3, 5 * DAY
    )
    assert value_at_risk(r, 0.75) == pytest.approx(-0.1 + 0.2 * 0.75, rel=1e-14)  # position 0.75
    assert conditional_value_at_risk(r, 0.75) == pytest.approx(-0.1, rel=1e-14)


@pytest.mark.parametrize(
    ("confidence", "var", "cvar"),
    [
        (0.75, -0.02, -0.035),  # position 4 × 0.25 = 1: the second worst; the two worst
        (0.9, -0.05 + 0.03 * 0.4, -0.05),  # position 0.4 between the two worst; the worst
        (0.5, 0.0, (-0.05 - 0.02 + 0.0) / 3),  # the median
        (0.95, -0.05 + 0.03 * 0.2, -0.05),
    ],
)
def test_hand_computed_tail_risk(confidence: float, var: float, cvar: float) -> None:
    r = [0.03, -0.02, 0.01, -0.05, 0.0]
    assert value_at_risk(r, confidence) == pytest.approx(var, rel=1e-13, abs=1e-17)
    assert conditional_value_at_risk(r, confidence) == pytest.approx(cvar, rel=1e-13)


def test_tail_position_snaps_to_the_intended_whole_number() -> None:
    # (11 - 1) × (1 - 0.9) is 0.9999999999999998 in binary: still the second worst return
    r = np.arange(11, dtype=np.float64) / 100
    assert value_at_risk(r, 0.9) == 0.01
    assert conditional_value_at_risk(r, 0.9) == pytest.approx(0.005, rel=1e-15)


def test_hand_computed_skew_and_kurtosis() -> None:
    x = [1.0, 2.0, 4.0, 1.0, 3.0]  # mean 2.2; deviations -1.2, -0.2, 1.8, -1.2, 0.8
    d = np.array(x) - 2.2
    m2, m3, m4 = (d**2).mean(), (d**3).mean(), (d**4).mean()
    g1 = math.sqrt(5 * 4) / 3 * m3 / m2**1.5
    g2 = 4 / (3 * 2) * (6 * m4 / m2**2 - 3 * 4)
    assert skew(x) == pytest.approx(g1, rel=1e-13)
    assert kurtosis(x) == pytest.approx(g2, rel=1e-13)
    assert skew([0.1, 0.2]) != skew([0.1, 0.2])  # NaN below three values
    assert math.isnan(kurtosis([0.1, 0.2, 0.4]))  # and below four


def test_hand_computed_trade_metrics() -> None:
    pnl = [10.0, -5.0, 0.0, 20.0, -15.0]
    rets = [0.01, -0.005, 0.0, 0.02, -0.015]
    entry = [0, 10, 20, 30, 40]
    exit_ = [5, 30, 21, 31, 100]
    m = compute_metrics([100.0, 101.0], [0, 100], pnl, rets, entry, exit_, 365.0)
    assert m["trade_count"] == 5
    assert m["win_rate"] == 0.4  # the breakeven trade is a trade, not a win
    assert m["profit_factor"] == 1.5  # 30 / 20
    assert m["average_win"] == pytest.approx(0.015)
    assert m["average_loss"] == pytest.approx(-0.01)
    assert m["payoff_ratio"] == pytest.approx(1.5)
    assert m["expectancy"] == pytest.approx(0.002)
    assert m["average_trade_duration_ns"] == pytest.approx((5 + 20 + 1 + 1 + 60) / 5)
    assert m["max_trade_duration_ns"] == 60
    assert profit_factor(pnl) == 1.5
    assert win_rate(pnl) == 0.4


def test_exposure_and_turnover_by_hand() -> None:
    e = [100.0, 100.0, 100.0, 100.0]
    assert exposure_time([0.0, 0.5, -1.0, 0.0]) == 0.5  # short positions are positions
    # 50 traded per bar on average × 365 bars a year / 100 average equity
    assert turnover([0.0, 100.0, 0.0, 100.0], e, 365.0) == pytest.approx(182.5)
    m = compute_metrics(
        e, [0, 1, 2, 3], *NO_TRADES, 365.0, [0.0, 1.0, 1.0, 0.0], [0.0, 100.0, 0.0, 100.0]
    )
    assert m["exposure_time"] == 0.5
    assert m["turnover"] == pytest.approx(182.5)


@pytest.mark.parametrize(
    ("timeframe", "calendar", "expected"),
    [
        ("1d", "24/7", 365.0),
        ("1h", "24/7", 8760.0),
        ("1m", "24/7", 525_600.0),
        ("15s", "24/7", 365 * 86_400 / 15),
        ("4h", "24/7", 2190.0),
        ("1w", "24/7", 365 / 7),
        ("1M", "24/7", 12.0),
        ("3M", "equities", 4.0),
        ("1d", "weekdays", 252.0),
        ("2d", "equities", 126.0),
        ("1w", "equities", 52.0),
        ("1m", "equities", 252 * 390.0),
        ("30m", "equities", 252 * 13.0),
        ("1h", "equities", 252 * 7.0),  # 9:30, 10:30, ... 15:30 (a half bar at the close)
        ("4h", "equities", 252 * 2.0),
        ("12h", "equities", 252.0),
        ("1d", "fx", 260.0),
        ("1h", "fx", 260 * 24.0),
        ("5h", "fx", 260 * 24 / 5),  # continuous trading: no bar is cut short
        ("1w", "fx", 52.0),
        ("1M", "fx", 12.0),
    ],
)
def test_periods_per_year(timeframe: str, calendar: str, expected: float) -> None:
    assert periods_per_year(timeframe, calendar) == pytest.approx(expected, rel=1e-15)


def test_periods_per_year_session_length_and_errors() -> None:
    assert periods_per_year("1h", "weekdays", session_hours=24) == 252 * 24
    assert periods_per_year("1h", "Equities", session_hours=8) == 252 * 8
    with pytest.raises(UserInputError, match="calendar"):
        periods_per_year("1h", "nyse")
    with pytest.raises(UserInputError, match="session_hours"):
        periods_per_year("1h", "equities", session_hours=0)
    with pytest.raises(TimeframeError):
        periods_per_year("1 hour")


# --- properties --------------------------------------------------------------------------------


def same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def run(e: F8, scale: float = 1.0) -> dict[str, float]:
    n = e.size
    exposure = np.where(np.arange(n) % 3 == 0, 0.0, 0.8)
    notional = np.where(np.arange(n) % 4 == 1, e * 0.5, 0.0)
    ts = np.arange(n, dtype=np.int64) * 3_600 * 10**9
    return compute_metrics(e * scale, ts, *NO_TRADES, 8760.0, exposure, notional * scale)


@SETTINGS
@given(e=equity_curves(min_bars=1), k=st.integers(-30, 30))
def test_scaling_the_account_by_a_power_of_two_changes_nothing(e: F8, k: int) -> None:
    base, scaled = run(e), run(e, 2.0**k)  # powers of two scale without rounding: bit for bit
    assert all(same(base[key], scaled[key]) for key in METRIC_KEYS), (base, scaled)


@SETTINGS
@given(e=equity_curves(), c=st.floats(1e-3, 1e3))
def test_scaling_the_account_by_any_factor_changes_nothing_much(e: F8, c: float) -> None:
    base, scaled = run(e), run(e, c)
    for key in METRIC_KEYS:
        if key in ("sharpe_ratio", "sortino_ratio", "skew", "kurtosis") and not well_spread(
            returns_from_equity(e)
        ):
            continue  # rounding noise that becomes (or stops being) zero spread when rescaled
        assert close(
            scaled[key], base[key], rel=1e-9, abs_=1e-12 * e.size * (1 + abs(base[key]))
        ), key


@SETTINGS
@given(e=equity_curves(), ppy=PPY)
def test_signs_and_bounds(e: F8, ppy: float) -> None:
    r = returns_from_equity(e)
    m = run(e)
    assert -1.0 <= max_drawdown(e) <= 0.0
    under = e < np.maximum.accumulate(e)
    assert (max_drawdown(e) == 0.0) == (not under.any()) == (m["max_drawdown_duration_bars"] == 0)
    assert 0 <= m["max_drawdown_duration_bars"] <= e.size - 1
    gain = np.sign(e[-1] - e[0])
    assert np.sign(total_return(e)) == gain
    assert np.sign(cagr(e, ppy)) == gain
    assert np.isnan(calmar_ratio(e, ppy)) or np.sign(calmar_ratio(e, ppy)) == gain
    if well_spread(r) and abs(r.mean()) > 1e-9:
        assert np.sign(sharpe_ratio(r, ppy)) == np.sign(r.mean())
        assert np.isnan(sortino_ratio(r, ppy)) or np.sign(sortino_ratio(r, ppy)) == np.sign(
            r.mean()
        )
    ulp = 1e-15 * float(np.abs(r).max())  # a mean of (nearly) equal returns rounds either way
    assert r.min() - ulp <= m["conditional_value_at_risk"] <= m["value_at_risk"] + ulp
    assert m["value_at_risk"] <= np.median(r) + ulp
    assert m["annual_volatility"] >= 0.0 or r.size < 2
    assert 0.0 <= m["exposure_time"] <= 1.0


@SETTINGS
@given(e=equity_curves())
def test_mirrored_returns_flip_sharpe_and_skew_exactly(e: F8) -> None:
    r = returns_from_equity(e)
    assert same(sharpe_ratio(-r, 365.0), -sharpe_ratio(r, 365.0))
    assert same(skew(-r), -skew(r))
    assert same(kurtosis(-r), kurtosis(r))
    assert same(annual_volatility(-r, 365.0), annual_volatility(r, 365.0))


def durations_by_spells(e: F8, ts: npt.NDArray[np.int64]) -> tuple[int, int]:
    """Reference: runs of bars below the running peak, each from its peak to the next bar."""
    under = e < np.maximum.accumulate(e)
    bars = ns = 0
    i = 0
    while i < e.size:
        if not under[i]:
            i += 1
            continue
        j = i
        while j + 1 < e.size and under[j + 1]:
            j += 1
        end = min(j + 1, e.size - 1)  # the recovery bar, or the last bar
        bars, ns = max(bars, end - (i - 1)), max(ns, int(ts[end] - ts[i - 1]))
        i = j + 1
    return bars, ns


@SETTINGS
@given(
    e=equity_curves(min_bars=1, max_bars=60),
    gaps=st.lists(st.integers(1, 10**6), min_size=60, max_size=60),
)
def test_drawdown_duration_matches_a_spell_by_spell_count(e: F8, gaps: list[int]) -> None:
    ts = np.cumsum(np.array(gaps[: e.size], dtype=np.int64))
    assert tuple(max_drawdown_duration(e, ts)) == durations_by_spells(e, ts)
    assert max_drawdown_duration(e, ts.astype("datetime64[ns]")) == max_drawdown_duration(e, ts)


def test_drawdown_still_open_at_the_end_lasts_until_the_last_bar() -> None:
    assert max_drawdown_duration([1.0, 2.0, 1.0, 1.5], [0, 1, 2, 7]) == (2, 6)
    assert max_drawdown_duration([2.0, 1.0], [0, 5]) == (1, 5)
    assert max_drawdown_duration([1.0, 1.0, 2.0], [0, 1, 2]) == (0, 0)  # equal is not below
    assert max_drawdown_duration([], []) == (0, 0)
    # gaps: the longest in bars and the longest in time are different drawdowns
    e, ts = [1.0, 0.9, 0.9, 0.9, 1.0, 0.5, 1.1], [0, 1, 2, 3, 4, 104, 105]
    assert max_drawdown_duration(e, ts) == DrawdownDuration(bars=4, ns=101)


# --- degenerate and bad input ------------------------------------------------------------------


@pytest.mark.parametrize(
    "equity",
    [
        np.full(50, 1e4),  # cash only: zero returns
        1e4 * 1.001 ** np.arange(50),  # a fixed rate: the returns differ by rounding only
        np.r_[1e4, 1e4 * np.cumprod(np.full(30, 1.0 + 1e-3))],
    ],
    ids=["flat", "fixed-rate-power", "fixed-rate-product"],
)
def test_zero_volatility_gives_nan(equity: F8) -> None:
    m = compute_metrics(equity, np.arange(equity.size), *NO_TRADES, 365.0)
    for key in ("sharpe_ratio", "skew", "kurtosis"):
        assert math.isnan(m[key]), key
    assert m["annual_volatility"] < 1e-12  # what it is: zero, or the noise of e1 / e0
    assert math.isnan(m["sortino_ratio"])
    assert math.isnan(m["calmar_ratio"])
    assert m["max_drawdown"] == 0.0
    assert m["max_drawdown_duration_bars"] == 0


def test_constant_losses_have_a_sortino_but_no_sharpe() -> None:
    r = np.full(10, -0.01)
    assert math.isnan(sharpe_ratio(r, 365.0))
    assert sortino_ratio(r, 365.0) == pytest.approx(-math.sqrt(365.0), rel=1e-14)
    assert sortino_ratio(r, 365.0) == pytest.approx(
        ep.sortino_ratio(r, annualization=365), rel=1e-14
    )


@pytest.mark.parametrize(
    "equity", [[], [100.0], [100.0, 100.0]], ids=["empty", "one-bar", "two-flat"]
)
def test_short_or_empty_curves_give_nan_not_errors(equity: list[float]) -> None:
    n = len(equity)
    m = compute_metrics(equity, np.arange(n), *NO_TRADES, 252.0, np.zeros(n), np.zeros(n))
    assert list(m) == list(METRIC_KEYS)
    assert m["trade_count"] == 0
    for key in ("sharpe_ratio", "sortino_ratio", "calmar_ratio", "skew", "kurtosis", "win_rate", "profit_factor",
                "average_win", "average_loss", "payoff_ratio", "expectancy", "average_trade_duration_ns",
                "max_trade_duration_ns"):  # fmt: skip
        assert math.isnan(m[key]), key
    if n == 0:
        assert all(math.isnan(v) for k, v in m.items() if k != "trade_count")
    else:
        assert m["total_return"] == 0.0
        assert m["max_drawdown"] == 0.0
        assert m["exposure_time"] == 0.0
    assert math.isnan(cagr(equity, 252.0)) == (n < 2)


def test_returns_after_ruin_are_skipped() -> None:
    e = [100.0, 50.0, 0.0, 0.0, 10.0]
    r = returns_from_equity(e)
    np.testing.assert_array_equal(r, [-0.5, -1.0, np.nan, np.nan])
    m = compute_metrics(e, np.arange(5), *NO_TRADES, 365.0)
    assert m["total_return"] == -0.9
    assert m["max_drawdown"] == -1.0
    assert m["cagr"] == pytest.approx(0.1 ** (365 / 4) - 1)
    assert cagr([100.0, 0.0], 365.0) == -1.0
    assert cagr([100.0, -5.0], 365.0) == -1.0
    assert m["sharpe_ratio"] == sharpe_ratio([-0.5, -1.0], 365.0)  # NaN returns are skipped


def test_metrics_equal_the_single_functions() -> None:
    rng = np.random.default_rng(3)
    e = 5e3 * np.cumprod(np.r_[1.0, 1.0 + rng.normal(2e-4, 0.01, 999)])
    ts = np.arange(1000, dtype=np.int64) * DAY
    pnl, rets = rng.normal(1.0, 20.0, 40), rng.normal(1e-3, 0.02, 40)
    entry = np.sort(rng.integers(0, 900, 40)) * DAY
    m = compute_metrics(
        e, ts, pnl, rets, entry, entry + DAY, 365.0, risk_free=1e-4, confidence=0.99
    )
    r = returns_from_equity(e)
    dd = max_drawdown_duration(e, ts)
    expected = {
        "total_return": total_return(e),
        "cagr": cagr(e, 365.0),
        "annual_volatility": annual_volatility(r, 365.0),
        "sharpe_ratio": sharpe_ratio(r, 365.0, risk_free=1e-4),
        "sortino_ratio": sortino_ratio(r, 365.0, required_return=1e-4),
        "calmar_ratio": calmar_ratio(e, 365.0),
        "max_drawdown": max_drawdown(e),
        "max_drawdown_duration_bars": dd.bars,
        "max_drawdown_duration_ns": dd.ns,
        "value_at_risk": value_at_risk(r, 0.99),
        "conditional_value_at_risk": conditional_value_at_risk(r, 0.99),
        "skew": skew(r),
        "kurtosis": kurtosis(r),
        "exposure_time": math.nan,
        "turnover": math.nan,
        "trade_count": 40,
        "win_rate": win_rate(rets),
        "profit_factor": profit_factor(pnl),
        "average_win": average_win(rets),
        "average_loss": average_loss(rets),
        "payoff_ratio": payoff_ratio(rets),
        "expectancy": expectancy(rets),
        "average_trade_duration_ns": DAY,
        "max_trade_duration_ns": DAY,
    }
    assert list(m) == list(expected) == list(METRIC_KEYS)
    assert all(same(m[key], expected[key]) for key in METRIC_KEYS), m
    assert pd.Timedelta(m["max_drawdown_duration_ns"]) == pd.Timedelta(dd.ns)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda: total_return([100.0, np.nan]), "equity must be finite, but value 1 is nan"),
        (lambda: total_return([0.0, 1.0]), "equity must start positive"),
        (lambda: total_return([[1.0]]), "one-dimensional"),
        (lambda: sharpe_ratio([0.1, np.inf], 365.0), "returns must be finite"),
        (lambda: sharpe_ratio([0.1, 0.2], 0.0), "periods_per_year must be positive"),
        (lambda: sharpe_ratio([0.1, 0.2], 365.0, risk_free=math.nan), "risk_free"),
        (lambda: value_at_risk([0.1], 95), "confidence"),
        (lambda: max_drawdown_duration([1.0, 2.0], [0]), "timestamps has 1 values"),
        (lambda: max_drawdown_duration([1.0, 2.0, 3.0], [0, 5, 5]), "bar 2 is not after bar 1"),
        (lambda: max_drawdown_duration([1.0, 2.0], [0.0, 1.0]), "int64 epoch nanoseconds"),
        (lambda: compute_metrics([1.0], [0], [1.0], [], [0], [1], 365.0), "one value per trade"),
        (
            lambda: compute_metrics([1.0], [0], [1.0], [0.1], [5], [1], 365.0),
            "trade 0 exits before",
        ),
        (
            lambda: compute_metrics([1.0, 2.0], [0, 1], *NO_TRADES, 365.0, [1.0]),
            "exposure has 1 values",
        ),
        (lambda: turnover([1.0, np.nan], [1.0, 1.0], 365.0), "traded_notional must be finite"),
    ],
)
def test_bad_input_raises_a_clear_user_error(call: Callable[[], object], match: str) -> None:
    with pytest.raises(UserInputError, match=match):
        call()
