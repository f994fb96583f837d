from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.features.stats import (
    _MEAN,
    _rolling,
    _rolling_blocks,
    drawdown,
    log_returns,
    max_drawdown,
    realized_volatility,
    rolling_mean,
    rolling_std,
    rolling_zscore,
    simple_returns,
)

F8 = npt.NDArray[np.float64]
SETTINGS = settings(max_examples=120, deadline=None)


@st.composite
def series(draw: st.DrawFn, positive: bool = False, max_size: int = 120) -> F8:
    """Float arrays with a few NaN: price-like paths, or plain values in ±1e4 (with zeros)."""
    n = draw(st.integers(0, max_size))
    if positive or draw(st.booleans()):
        start = draw(st.floats(1.0, 1e5))
        steps = draw(arrays(np.float64, n, elements=st.floats(-0.05, 0.05)))
        x = np.asarray(start * np.cumprod(1.0 + steps), dtype=np.float64)
    else:
        # no magnitudes below 1e-6: their squares underflow, and so would any variance
        elements = st.floats(-1e4, 1e4).filter(lambda v: v == 0.0 or abs(v) >= 1e-6)
        x = draw(arrays(np.float64, n, elements=elements))
    holes = draw(st.lists(st.integers(0, max(n - 1, 0)), max_size=3)) if n else []
    x[holes] = np.nan
    return x


def same(a: float, b: float) -> bool:
    """Equal bit for bit as floats, NaN equal to NaN."""
    return a == b or (math.isnan(a) and math.isnan(b))


def scale(x: F8) -> float:
    finite = x[np.isfinite(x)]
    return float(np.abs(finite).max()) if finite.size else 1.0


def assert_var_close(ours: F8, ref: F8, size: float, rtol: float = 1e-9) -> None:
    """Standard deviations agree in variance space, up to pandas' rounding on data of `size`."""
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours**2, ref**2, rtol=rtol, atol=1e-10 * size**2)


def exact_rolling(x: F8, window: int, ddof: int = 1) -> tuple[F8, F8, F8]:
    """Mean, std and z-score from rational arithmetic: the truth, correctly rounded (±1 ulp)."""
    mean, std, z = (np.full(x.size, np.nan) for _ in range(3))
    q = [Fraction(v) for v in x]
    for t in range(window - 1, x.size):
        w = q[t + 1 - window : t + 1]
        m = sum(w, Fraction(0)) / window
        var = sum(((v - m) ** 2 for v in w), Fraction(0)) / (window - ddof)
        mean[t], std[t] = float(m), math.sqrt(float(var))
        z[t] = float(q[t] - m) / std[t] if var else math.nan
    return mean, std, z


# --- agreement with pandas ---------------------------------------------------------------------


@SETTINGS
@given(x=series())
def test_returns_equal_pandas(x: F8) -> None:
    s = pd.Series(x)
    np.testing.assert_array_equal(simple_returns(x), (s / s.shift(1) - 1).to_numpy())
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(log_returns(x), np.log((s / s.shift(1)).to_numpy()))


@SETTINGS
@given(x=series(), window=st.integers(1, 15))
def test_rolling_mean_agrees_with_pandas(x: F8, window: int) -> None:
    ref = pd.Series(x).rolling(window).mean().to_numpy()
    np.testing.assert_allclose(rolling_mean(x, window), ref, rtol=1e-12, atol=1e-12 * scale(x))


@SETTINGS
@given(x=series(), window=st.integers(2, 15), ddof=st.integers(0, 1))
def test_rolling_std_agrees_with_pandas(x: F8, window: int, ddof: int) -> None:
    ref = pd.Series(x).rolling(window).std(ddof=ddof).to_numpy()
    assert_var_close(rolling_std(x, window, ddof), ref, scale(x))


@SETTINGS
@given(x=series(), window=st.integers(2, 15))
def test_rolling_zscore_agrees_with_pandas(x: F8, window: int) -> None:
    roll = pd.Series(x).rolling(window)
    std = roll.std().to_numpy()
    ref = (x - roll.mean().to_numpy()) / np.where(std > 0, std, np.nan)
    ours = rolling_zscore(x, window)
    ours_std = rolling_std(x, window)
    # NaN exactly where the window is incomplete, holds a NaN, or has no spread
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ours_std) | (ours_std == 0))
    # pandas' z-score loses digits when a window's spread is small next to earlier values
    # (its running variance keeps their rounding): compare where that cannot matter ...
    well_posed = std > 1e-3 * scale(x)
    np.testing.assert_allclose(ours[well_posed], ref[well_posed], rtol=1e-6, atol=1e-9)
    # ... and everywhere against exact rational arithmetic
    clean = np.nan_to_num(x, nan=0.0)
    exact = np.where(np.isnan(rolling_mean(x, window)), np.nan, exact_rolling(clean, window)[2])
    np.testing.assert_allclose(ours, exact, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(x=series(positive=True), window=st.integers(2, 15), annual=st.sampled_from([None, 365.0]))
def test_realized_volatility_agrees_with_pandas(x: F8, window: int, annual: float | None) -> None:
    s = pd.Series(x)
    logs = pd.Series(np.log((s / s.shift(1)).to_numpy()))
    ref = logs.rolling(window).std().to_numpy() * math.sqrt(annual or 1.0)
    r = log_returns(x)
    size = scale(r) * math.sqrt(annual or 1.0) if np.isfinite(r).any() else 1.0
    assert_var_close(realized_volatility(x, window, annual), ref, size)


@SETTINGS
@given(equity=series(positive=True))
def test_drawdown_equals_pandas(equity: F8) -> None:
    s = pd.Series(equity)
    ref = (s / s.cummax() - 1).to_numpy()
    dd = drawdown(equity)
    np.testing.assert_array_equal(dd, ref)
    assert np.all(dd[~np.isnan(dd)] <= 0)
    expected = -float(np.nanmin(ref)) if (~np.isnan(ref)).any() else math.nan
    assert same(max_drawdown(equity), expected)


# --- causality ---------------------------------------------------------------------------------

ARRAY_FUNCTIONS: dict[str, Callable[[F8], F8]] = {
    "simple_returns": simple_returns,
    "log_returns": log_returns,
    "rolling_mean": lambda x: rolling_mean(x, 7),
    "rolling_std": lambda x: rolling_std(x, 7),
    "rolling_std_w1": lambda x: rolling_std(x, 1, ddof=0),
    "rolling_zscore": lambda x: rolling_zscore(x, 5),
    "realized_volatility": lambda x: realized_volatility(x, 6, 252.0),
    "drawdown": drawdown,
}


@pytest.mark.parametrize("name", sorted(ARRAY_FUNCTIONS))
@settings(max_examples=60, deadline=None)
@given(x=series(positive=True), data=st.data())
def test_causal_prefix_gives_the_same_value(name: str, x: F8, data: st.DataObject) -> None:
    fn = ARRAY_FUNCTIONS[name]
    full = fn(x)
    for t in data.draw(st.lists(st.integers(0, max(len(x) - 1, 0)), max_size=5)) if len(x) else []:
        np.testing.assert_array_equal(fn(x[: t + 1])[t], full[t])  # bit for bit (NaN == NaN)


@settings(max_examples=60, deadline=None)
@given(x=series(positive=True), t=st.integers(0, 119))
def test_max_drawdown_of_a_prefix_is_the_running_maximum(x: F8, t: int) -> None:
    t = min(t, len(x) - 1)
    if t < 0:
        assert math.isnan(max_drawdown(x))
        return
    dd = drawdown(x)[: t + 1]
    expected = 0.0 - float(np.nanmin(dd)) if (~np.isnan(dd)).any() else math.nan
    assert same(max_drawdown(x[: t + 1]), expected)


def test_threads_and_prefixes_give_identical_results() -> None:
    rng = np.random.default_rng(7)
    x = 60_000 + np.cumsum(rng.standard_normal(2_500_003))
    x[rng.integers(0, x.size, 50)] = np.nan
    for window in (1, 20, 333):
        single = np.empty_like(x)
        _rolling_blocks(x, window, 1 if window > 1 else 0, _MEAN, single, 0, x.size)
        np.testing.assert_array_equal(_rolling(x, window, 0, _MEAN), single)
    full = rolling_std(x, 20)
    for t in (1_249_999, 1_250_000, 1_250_019, 2_499_999):  # around the thread cut
        np.testing.assert_array_equal(rolling_std(x[: t + 1], 20)[t], full[t])


# --- accuracy ----------------------------------------------------------------------------------


@pytest.mark.parametrize("level", [60_000.0, 1.0, 1e-4])
def test_tiny_variance_on_a_large_level_stays_exact(level: float) -> None:
    rng = np.random.default_rng(1)
    x = level + level * 1e-8 * rng.standard_normal(400)  # e.g. 60,000 ± 0.0006
    mean, std, z = exact_rolling(x, 20)
    k = slice(19, None)
    np.testing.assert_allclose(rolling_mean(x, 20)[k], mean[k], rtol=1e-15)
    np.testing.assert_allclose(rolling_std(x, 20)[k], std[k], rtol=1e-12)
    np.testing.assert_allclose(rolling_zscore(x, 20)[k], z[k], rtol=1e-9, atol=1e-12)
    # pandas' running Welford update drifts on such data (3e-8 relative already at n=100),
    # so against pandas the agreement is only as good as pandas itself.
    s = pd.Series(x).rolling(20)
    np.testing.assert_allclose(rolling_mean(x, 20), s.mean().to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(rolling_std(x, 20), s.std().to_numpy(), rtol=1e-5)


def test_long_random_walk_does_not_drift() -> None:
    rng = np.random.default_rng(2)
    x = np.round(60_000 + np.cumsum(rng.standard_normal(200_000) * 5), 2)
    windows = np.lib.stride_tricks.sliding_window_view(x.astype(np.longdouble), 50)
    dev = windows - windows.mean(axis=1, keepdims=True)
    truth = np.sqrt((dev**2).sum(axis=1) / 49).astype(np.float64)
    np.testing.assert_allclose(rolling_std(x, 50)[49:], truth, rtol=1e-12)


def test_variance_collapse_after_a_big_move_is_recomputed() -> None:
    x = np.r_[np.full(10, 1e6), np.zeros(5), np.full(30, 1.0) + np.arange(30) * 1e-9]
    mean, std, _ = exact_rolling(x, 5)
    k = slice(4, None)
    np.testing.assert_allclose(rolling_std(x, 5)[k], std[k], rtol=1e-9, atol=1e-16)
    np.testing.assert_allclose(rolling_mean(x, 5)[k], mean[k], rtol=1e-12)


# --- semantics ---------------------------------------------------------------------------------


def test_warm_up_and_nan_windows() -> None:
    x = np.array([1.0, 2.0, 3.0, np.nan, 5.0, 6.0, 7.0, 8.0])
    m = rolling_mean(x, 3)
    np.testing.assert_array_equal(np.isnan(m), [1, 1, 0, 1, 1, 1, 0, 0])
    assert m[6] == 6.0
    assert rolling_std(x, 3)[7] == 1.0


def test_infinite_values_make_their_windows_nan() -> None:
    x = np.array([1.0, 2.0, np.inf, 4.0, 5.0, 6.0])
    np.testing.assert_array_equal(np.isnan(rolling_mean(x, 2)), [1, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(np.isnan(rolling_std(x, 2)), [1, 0, 1, 1, 0, 0])


def test_constant_windows_have_zero_spread_and_no_zscore() -> None:
    x = np.array([3.0, 1.1, 1.1, 1.1, 1.1, 2.0])
    assert rolling_std(x, 3)[3:5].tolist() == [0.0, 0.0]
    assert rolling_mean(x, 3)[3:5].tolist() == [1.1, 1.1]
    z = rolling_zscore(x, 3)
    assert np.isnan(z[3:5]).all()
    assert np.isfinite(z[5])


def test_window_longer_than_data_and_empty_input() -> None:
    assert np.isnan(rolling_std([1.0, 2.0], 5)).all()
    for fn in (simple_returns, log_returns, drawdown, lambda a: rolling_zscore(a, 3)):
        assert fn(np.array([])).shape == (0,)
    assert math.isnan(max_drawdown([]))
    assert math.isnan(max_drawdown([np.nan, np.nan]))


def test_drawdown_sign_and_max_drawdown() -> None:
    equity = np.array([100.0, 120.0, 90.0, 130.0, 65.0])
    np.testing.assert_allclose(drawdown(equity), [0, 0, -0.25, 0, -0.5])
    assert max_drawdown(equity) == 0.5
    assert max_drawdown([1.0, 2.0, 3.0]) == 0.0


def test_realized_volatility_is_annualised() -> None:
    close = 100 * np.exp(np.cumsum(np.random.default_rng(3).normal(0, 0.01, 500)))
    base = realized_volatility(close, 30)
    np.testing.assert_allclose(realized_volatility(close, 30, 365.0), base * math.sqrt(365))
    assert np.isnan(base[:30]).all()
    assert np.isfinite(base[30:]).all()


@pytest.mark.parametrize(
    ("call", "words"),
    [
        (lambda: rolling_mean([1.0, 2.0], 0), "window"),
        (lambda: rolling_mean([1.0, 2.0], 2.5), "window"),  # type: ignore[arg-type]
        (lambda: rolling_mean([1.0, 2.0], True), "window"),
        (lambda: rolling_std([1.0, 2.0], 2, ddof=2), "ddof"),
        (lambda: rolling_zscore([1.0, 2.0], 2, ddof=-1), "ddof"),
        (lambda: rolling_std([1.0, 2.0], 1), "ddof"),
        (lambda: rolling_mean(np.ones((2, 2)), 1), "one-dimensional"),
        (lambda: realized_volatility([1.0, 2.0], 2, periods_per_year=0.0), "periods_per_year"),
    ],
)
def test_bad_arguments_are_refused(call: Callable[[], object], words: str) -> None:
    with pytest.raises(UserInputError, match=words):
        call()
