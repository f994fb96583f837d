"""The execution algorithms' steps the compiled bar loop takes (`Slicing`, `next_child`, AUTO).

They must be the algorithms `schedule` and `volume_profile` describe, read only what is known
when they run, and pick as `choose_algo` does.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from reinforcetrade.config import ExecutionConfig, Settings
from reinforcetrade.simulation.slicing import (
    AUTO,
    NO_SLICING,
    Algo,
    Slicing,
    child_quantity,
    choose_algo,
    expected_share,
    next_child,
    pick_algo,
    recent_volume,
    volume_profile,
)

SETTINGS = settings(max_examples=200, deadline=None)
volumes = st.lists(
    st.one_of(st.floats(0.0, 1e6, allow_nan=False), st.just(math.nan), st.just(0.0)),
    min_size=1,
    max_size=60,
)


def slicing(algo: int, window: int, period: int, participation: float = 0.2) -> Slicing:
    return Slicing(algo, 6, participation, 0.0, 0.01, 0.1, window, period)


@SETTINGS
@given(
    bars=volumes,
    data=st.data(),
    window=st.integers(1, 5),
    period=st.integers(1, 6),
    bars_left=st.integers(-1, 8),
    remaining=st.floats(0.0, 1e5),
)
def test_the_loops_vwap_child_is_the_profiles(
    bars: list[float],
    data: st.DataObject,
    window: int,
    period: int,
    bars_left: int,
    remaining: float,
) -> None:
    v = np.array(bars)
    t = data.draw(st.integers(0, v.size - 1))
    p = slicing(int(Algo.VWAP), window, period)
    got = next_child(p, int(Algo.VWAP), remaining, bars_left, v, t)
    left = max(bars_left, 1)
    share = expected_share(volume_profile(v, window, period), t, left)
    want = child_quantity(int(Algo.VWAP), remaining, left, v[t], share, 0.2, 0.0)
    assert got == want
    # it reads no bar after t: bar t's own volume caps what fills in it, nothing later counts
    assert next_child(p, int(Algo.VWAP), remaining, bars_left, v[: t + 1].copy(), t) == got


@SETTINGS
@given(bars=volumes, data=st.data(), remaining=st.floats(0.0, 1e5), bars_left=st.integers(1, 8))
def test_twap_and_immediate_children_are_child_quantity(
    bars: list[float], data: st.DataObject, remaining: float, bars_left: int
) -> None:
    v = np.array(bars)
    t = data.draw(st.integers(0, v.size - 1))
    for algo in (Algo.IMMEDIATE, Algo.TWAP):
        got = next_child(slicing(int(algo), 3, 4), int(algo), remaining, bars_left, v, t)
        assert got == child_quantity(int(algo), remaining, bars_left, v[t], math.nan, 0.2, 0.0)


@SETTINGS
@given(
    bars=volumes,
    data=st.data(),
    window=st.integers(1, 8),
    quantity=st.floats(0.0, 1e5),
)
def test_auto_picks_as_choose_algo_does_from_completed_bars_only(
    bars: list[float], data: st.DataObject, window: int, quantity: float
) -> None:
    v = np.array(bars)
    t = data.draw(st.integers(0, v.size - 1))
    recent = recent_volume(v, t, window)
    seen = v[max(t - window + 1, 0) : t + 1]
    usable = seen[np.isfinite(seen)]
    if usable.size:
        assert recent == pytest.approx(float(usable.mean()), rel=1e-12)
    else:
        assert math.isnan(recent)
    later = v.copy()
    later[t + 1 :] = 1e9  # what happens after the decision's bar changes nothing
    assert recent_volume(later, t, window) == pytest.approx(recent, nan_ok=True, rel=0)
    p = Slicing(AUTO, 4, 0.1, 0.0, 0.01, 0.1, window, 24)
    expected = choose_algo(quantity, recent, immediate_below=0.01, twap_below=0.1)
    assert pick_algo(p, quantity, v, t) == int(expected) == pick_algo(p, quantity, later, t)
    fixed = p._replace(algo=int(Algo.TWAP))
    assert pick_algo(fixed, quantity, v, t) == int(Algo.TWAP)  # a set algorithm is kept


def test_the_execution_section_becomes_the_loops_settings() -> None:
    default = Settings().execution
    assert default.algo == "immediate"
    assert Slicing.from_config(default) == NO_SLICING._replace(
        horizon_bars=4, participation=0.1, immediate_below=0.01, twap_below=0.1,
        volume_window=20, volume_period=24,
    )  # fmt: skip
    assert Slicing.from_config(default).algo == NO_SLICING.algo == int(Algo.IMMEDIATE)
    codes = {a: Slicing.from_config(ExecutionConfig(algo=a)).algo for a in ("twap", "vwap")}
    assert codes == {"twap": int(Algo.TWAP), "vwap": int(Algo.VWAP)}
    assert Slicing.from_config(ExecutionConfig(algo="auto")).algo == AUTO
    with pytest.raises(ValidationError, match="twap_below"):
        ExecutionConfig(immediate_below=0.2, twap_below=0.1)
    with pytest.raises(ValidationError, match="participation"):
        ExecutionConfig(participation=1.5)
