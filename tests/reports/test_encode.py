"""How the page's data is packed and thinned: exact round trips, bounded errors, kept extremes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from reinforcetrade.reports.downsample import minmax_indices
from reinforcetrade.reports.encode import (
    PRICE_STEP,
    pack,
    pack_prices,
    quantize_unit,
    time_deltas,
    unpack,
    unpack_prices,
)

finite = st.floats(-1e9, 1e9, allow_nan=False, allow_infinity=False, width=64)


@given(hnp.arrays(np.int32, st.integers(0, 500)))
def test_delta_packing_restores_every_integer(values: np.ndarray) -> None:
    np.testing.assert_array_equal(unpack(pack(values, "i4", delta=True)), values)


@given(hnp.arrays(np.uint16, st.integers(0, 500)))
def test_delta_packing_wraps_like_the_pages_typed_arrays(values: np.ndarray) -> None:
    packed = pack(values, "u2", delta=True)
    stored = unpack({**packed, "delta": False})
    assert stored.dtype == np.uint16
    np.testing.assert_array_equal(np.cumsum(stored, dtype=np.uint16), values)  # what JS does


@given(hnp.arrays(np.float64, st.integers(0, 300), elements=finite))
def test_float64_packing_is_exact(values: np.ndarray) -> None:
    np.testing.assert_array_equal(unpack(pack(values, "f8")), values)


def test_packing_refuses_what_it_cannot_hold() -> None:
    with pytest.raises(ValueError, match="dtype 'f2'"):
        pack([1.0], "f2")
    with pytest.raises(ValueError, match="integer arrays"):
        pack([1.0], "f4", delta=True)


def test_packing_is_deterministic() -> None:
    values = np.arange(1_000, dtype=np.float64)
    assert pack(values, "f8") == pack(values.copy(), "f8")


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 2_000),
    st.integers(0, 2**32 - 1),
    st.floats(1e-4, 0.2),
    st.floats(1e-6, 1e6),
)
def test_prices_come_back_within_half_a_step(n: int, seed: int, vol: float, start: float) -> None:
    rng = np.random.default_rng(seed)
    prices = start * np.exp(np.cumsum(rng.normal(0.0, vol, n)))
    gaps = rng.random(n) < 0.02
    prices[gaps] = np.nan
    back = unpack_prices(pack_prices(prices))
    assert np.array_equal(np.isnan(back), gaps)
    ok = ~gaps
    assert np.max(np.abs(back[ok] / prices[ok] - 1), initial=0.0) <= 0.51 * PRICE_STEP


@given(hnp.arrays(np.float64, st.integers(0, 100), elements=st.floats(0.0, 1.0)))
def test_unit_values_quantize_to_four_decimals(values: np.ndarray) -> None:
    q = quantize_unit(values)
    assert np.max(np.abs(q / 10_000 - values), initial=0.0) <= 0.5e-4 + 1e-12


def test_time_deltas_restore_times_in_seconds() -> None:
    times = np.array([1_600_000_000, 1_600_003_600, 1_600_010_800], dtype=np.int64) * 10**9
    assert np.cumsum(time_deltas(times)).tolist() == (times // 10**9).tolist()
    assert time_deltas(np.zeros(0, dtype=np.int64)).tolist() == []


series = hnp.arrays(
    np.float64,
    st.integers(1, 3_000),
    elements=st.one_of(st.floats(-1e6, 1e6), st.just(np.nan)),
)


@settings(deadline=None)  # the first call compiles the numba kernel
@given(series, st.integers(4, 400))
def test_downsampling_keeps_every_extreme_and_the_ends(values: np.ndarray, points: int) -> None:
    kept = minmax_indices(values, points)
    assert kept.size <= points or kept.size == values.size
    assert np.all(np.diff(kept) > 0)  # sorted, no repeats
    assert kept[0] == 0
    assert kept[-1] == values.size - 1
    finite_values = values[~np.isnan(values)]
    if finite_values.size:
        shown = values[kept]
        assert np.nanmax(shown) == finite_values.max()
        assert np.nanmin(shown) == finite_values.min()


@settings(deadline=None)  # the first call compiles the numba kernel
@given(series, st.integers(4, 400))
def test_each_buckets_extremes_survive(values: np.ndarray, points: int) -> None:
    kept = minmax_indices(values, points)
    if values.size <= points:
        assert kept.tolist() == list(range(values.size))
        return
    buckets = points // 4
    for b in range(buckets):
        start, stop = b * values.size // buckets, (b + 1) * values.size // buckets
        chunk = values[start:stop]
        if np.isnan(chunk).all():
            continue
        mine = kept[(kept >= start) & (kept < stop)]
        assert np.nanmax(values[mine]) == np.nanmax(chunk)
        assert np.nanmin(values[mine]) == np.nanmin(chunk)


def test_downsampling_refuses_too_few_points() -> None:
    with pytest.raises(ValueError, match="at least 4"):
        minmax_indices([1.0, 2.0], 3)
