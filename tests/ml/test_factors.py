"""Factors: causal to the bit, NaN exactly through their warm-up, scale-free, right on known bars."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ml.markets import random_bars, scaled
from reinforcetrade.agents.environment import EnvironmentAgent
from reinforcetrade.config.sections import EnvironmentAgentConfig
from reinforcetrade.core.codes import VolRegime
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.ml.factors import (
    DEFAULT_FACTORS,
    FACTORS,
    UNKNOWN_REGIME,
    FactorSpec,
    close_location,
    close_location_value,
    factor_matrix,
    obv_trend,
    on_balance_volume,
    regime_warmup,
    regime_weight,
    volatility_regime,
    volume_trend,
)

N_BARS = 1_000  # longer than the longest warm-up (the volatility regime's 743 bars)
NAMES = sorted(FACTORS)
SCALE_FREE = [name for name in NAMES if FACTORS[name].scale_free]
SEEDS = st.integers(0, 2**32 - 1)


def test_every_warmup_fits_the_test_series() -> None:
    assert max(spec.warmup for spec in FACTORS.values()) < N_BARS - 50


@settings(max_examples=25, deadline=None)
@given(seed=SEEDS, t=st.integers(0, N_BARS - 1))
@pytest.mark.parametrize("name", NAMES)
def test_factor_at_t_uses_bars_up_to_t_only(name: str, seed: int, t: int) -> None:
    bars = random_bars(seed, N_BARS)
    spec = FACTORS[name]
    full, head = spec.compute(bars), spec.compute(bars.head(t + 1))
    assert head.shape == (t + 1,)
    assert np.array_equal(head[t : t + 1], full[t : t + 1], equal_nan=True)  # bit for bit


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS)
@pytest.mark.parametrize("name", NAMES)
def test_factor_is_nan_through_its_warmup_then_finite(name: str, seed: int) -> None:
    spec = FACTORS[name]
    values = spec.compute(random_bars(seed, N_BARS))
    assert values.dtype == np.float64
    assert values.shape == (N_BARS,)
    assert np.isnan(values[: spec.warmup]).all()
    assert np.isfinite(values[spec.warmup :]).all()


@settings(max_examples=10, deadline=None)
@given(seed=SEEDS, factor=st.sampled_from([1e-3, 7.0, 1_234.5]))
@pytest.mark.parametrize("name", SCALE_FREE)
def test_scale_free_factor_ignores_the_price_level(name: str, seed: int, factor: float) -> None:
    bars = random_bars(seed, N_BARS)
    ours = FACTORS[name].compute(bars)
    theirs = FACTORS[name].compute(scaled(bars, factor))
    np.testing.assert_allclose(theirs, ours, rtol=1e-9, atol=1e-12)


def test_close_location_value_on_known_bars() -> None:
    high = np.array([10.0, 12.0, 10.0, 20.0, 5.0, math.nan])
    low = np.array([8.0, 10.0, 10.0, 10.0, 4.0, 1.0])
    close = np.array([9.0, 12.0, 10.0, 12.5, 4.0, 1.5])
    # mid, at the high, no range, a quarter up, at the low, missing high
    expected = np.array([0.0, 1.0, 0.0, -0.5, -1.0, math.nan])
    np.testing.assert_array_equal(close_location_value(high, low, close), expected)
    smoothed = close_location(high, low, close, 2)
    np.testing.assert_array_equal(smoothed, [math.nan, 0.5, 0.5, -0.25, -0.75, math.nan])


def test_on_balance_volume_on_known_bars() -> None:
    close = np.array([10.0, 11.0, 11.0, 10.0, 12.0, 13.0])
    volume = np.array([100.0, 200.0, 300.0, 400.0, 500.0, 600.0])
    np.testing.assert_array_equal(
        on_balance_volume(close, volume), [0.0, 200.0, 200.0, -200.0, 300.0, 900.0]
    )
    # 3-bar slope (last - first) / 2 over the mean volume: 100 / 200, -200 / 300, 50 / 400, 550 / 500
    np.testing.assert_allclose(
        obv_trend(close, volume, 3), [math.nan, math.nan, 0.5, -2 / 3, 0.125, 1.1], rtol=1e-12
    )


def test_on_balance_volume_skips_missing_bars_instead_of_poisoning_the_sum() -> None:
    close = np.array([10.0, math.nan, 12.0, 13.0])
    volume = np.array([1.0, 2.0, 3.0, math.nan])
    np.testing.assert_array_equal(on_balance_volume(close, volume), [0.0, 0.0, 0.0, 0.0])


def test_volume_trend_rises_with_volume_and_rejects_fast_not_below_slow() -> None:
    rising = volume_trend(np.geomspace(1.0, 100.0, 80), fast=5, slow=20)
    assert (rising[19:] > 0).all()
    with pytest.raises(UserInputError, match="fast < slow"):
        volume_trend(np.ones(10), fast=5, slow=5)


def test_volatility_regime_is_the_environment_agents_with_warmup_marked_unknown() -> None:
    bars = random_bars(11, N_BARS)
    config = EnvironmentAgentConfig(volatility_window=12, volatility_history=100)
    codes = volatility_regime(bars, config)
    warmup = regime_warmup(config)
    assert warmup == 111
    assert codes.dtype == np.int8
    assert (codes[:warmup] == UNKNOWN_REGIME).all()
    reference = EnvironmentAgent(config).perceive(bars).vol_regime
    np.testing.assert_array_equal(codes[warmup:], reference[warmup:])
    assert set(np.unique(codes[warmup:])) == {int(r) for r in VolRegime}


def test_regime_weight_maps_codes_and_marks_unknown() -> None:
    codes = np.array([0, 1, 2, 3, UNKNOWN_REGIME], dtype=np.int8)
    np.testing.assert_array_equal(regime_weight(codes), [1.0, 1.0, 0.5, 0.25, math.nan])
    own = regime_weight(codes, {VolRegime.HIGH: 0.3}, missing=0.0)
    np.testing.assert_array_equal(own, [0.0, 0.0, 0.3, 0.0, 0.0])
    with pytest.raises(UserInputError, match="VolRegime codes"):
        regime_weight(codes, {7: 1.0})


def test_factor_matrix_stacks_the_named_factors() -> None:
    bars = random_bars(3, 300)
    matrix = factor_matrix(bars)
    assert matrix.names == DEFAULT_FACTORS
    assert matrix.values.shape == (300, len(DEFAULT_FACTORS))
    assert matrix.warmup == max(FACTORS[name].warmup for name in DEFAULT_FACTORS)
    np.testing.assert_array_equal(matrix.column("rsi"), FACTORS["rsi"].compute(bars))
    complete = matrix.complete()
    assert not complete[: matrix.warmup].any()
    assert complete[matrix.warmup :].all()


@pytest.mark.parametrize(
    ("names", "message"),
    [
        (["rsi", "close_locaton"], "did you mean 'close_location'"),
        ([], "at least one factor"),
        (["rsi", "rsi"], "listed twice"),
    ],
)
def test_factor_matrix_rejects_bad_names(names: list[str], message: str) -> None:
    with pytest.raises(UserInputError, match=message):
        factor_matrix(random_bars(1, 50), names)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        FACTORS["mine"] = FactorSpec(lambda bars: bars.close, 0, "not allowed")  # type: ignore[index]
