from __future__ import annotations

import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.simulation.costs import CostParams, fillable_qty
from reinforcetrade.simulation.slicing import (
    ALGO_WORDS,
    Algo,
    SliceParams,
    VolumeProfile,
    child_id,
    child_quantity,
    child_target,
    choose_algo,
    expected_share,
    schedule,
    volume_profile,
)
from reinforcetrade.trading.broker import CLIENT_ID

F8 = npt.NDArray[np.float64]
SETTINGS = settings(max_examples=100, deadline=None)
NAN = math.nan
IMMEDIATE, TWAP, VWAP = int(Algo.IMMEDIATE), int(Algo.TWAP), int(Algo.VWAP)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "execution.md"

volume = st.one_of(
    st.floats(0.0, 1e6, allow_nan=False),
    st.just(0.0),
    st.just(NAN),
)
quantities = st.floats(0.0, 1e5, allow_nan=False)
algos = st.sampled_from(list(Algo))
participations = st.floats(0.01, 1.0)


def params(
    algo: Algo, horizon: int, participation: float = 1.0, min_child: float = 0.0
) -> SliceParams:
    return SliceParams(algo, horizon, participation=participation, min_child=min_child)


@st.composite
def orders(
    draw: st.DrawFn, *, liquid: bool = False
) -> tuple[SliceParams, float, F8, VolumeProfile]:
    """A parent order, the volumes of its bars (from bar 0) and a profile from earlier cycles."""
    algo = draw(algos)
    horizon = draw(st.integers(1, 12))
    period = draw(st.integers(1, 8))
    history = draw(st.integers(0, 24))
    low = 1.0 if liquid else 0.0
    bars = draw(
        st.lists(
            st.floats(low, 1e6) if liquid else volume,
            min_size=history + horizon,
            max_size=history + horizon,
        )
    )
    volumes = np.array(bars, dtype=np.float64)
    p = SliceParams(
        algo,
        horizon,
        participation=draw(participations),
        min_child=draw(st.sampled_from([0.0, 0.0, 1.0, 50.0])),
    )
    return p, draw(quantities), volumes, volume_profile(volumes, draw(st.integers(1, 4)), period)


def run(p: SliceParams, q: float, volumes: F8, profile: VolumeProfile) -> tuple[F8, float]:
    start = volumes.size - p.horizon_bars
    s = schedule(p, q, volumes, profile, start=start)
    return s.children, s.unfilled


# ---- algorithm codes and parameters


def test_algo_codes_and_words() -> None:
    assert [int(a) for a in Algo] == [0, 1, 2]
    assert set(ALGO_WORDS) == set(Algo)
    assert Algo.parse(" Twap ") is Algo.TWAP
    assert Algo.parse(Algo.VWAP) is Algo.VWAP
    assert Algo.parse(0) is Algo.IMMEDIATE
    with pytest.raises(UserInputError, match="use one of"):
        Algo.parse(3)
    assert Algo.TWAP.word == "equal slices over the horizon"
    with pytest.raises(UserInputError, match="use one of immediate, twap, vwap"):
        Algo.parse("iceberg")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"horizon_bars": 0}, "horizon_bars .* >= 1"),
        ({"horizon_bars": 2.5}, "horizon_bars"),
        ({"horizon_bars": True}, "horizon_bars"),
        ({"participation": 0.0}, r"participation .* in \(0, 1\]"),
        ({"participation": 1.5}, "participation"),
        ({"participation": NAN}, "participation"),
        ({"min_child": -1.0}, "min_child .* >= 0"),
        ({"min_child": math.inf}, "min_child"),
        ({"algo": "pov"}, "unknown execution algorithm 'pov'"),
    ],
)
def test_slice_params_reject_bad_values(changes: dict[str, object], message: str) -> None:
    kwargs: dict[str, object] = {
        "algo": Algo.TWAP,
        "horizon_bars": 4,
        "participation": 0.1,
        "min_child": 0.0,
    }
    kwargs.update(changes)
    with pytest.raises(UserInputError, match=message):
        SliceParams(**kwargs)  # type: ignore[arg-type]


def test_slice_params_normalise() -> None:
    p = SliceParams("vwap", np.int64(3), participation=1, min_child=2)  # type: ignore[arg-type]
    assert p == SliceParams(Algo.VWAP, 3, participation=1.0, min_child=2.0)
    assert type(p.horizon_bars) is int
    assert type(p.participation) is float
    with pytest.raises(AttributeError):
        p.horizon_bars = 5  # type: ignore[misc]


# ---- choosing an algorithm


@pytest.mark.parametrize(
    ("quantity", "volume", "expected"),
    [
        (0.0, 1000.0, Algo.IMMEDIATE),
        (9.99, 1000.0, Algo.IMMEDIATE),
        (10.0, 1000.0, Algo.TWAP),  # "below": the threshold itself is the next algorithm
        (-50.0, 1000.0, Algo.TWAP),  # a sell's size is its magnitude
        (99.99, 1000.0, Algo.TWAP),
        (100.0, 1000.0, Algo.VWAP),
        (5e6, 1000.0, Algo.VWAP),
        (1.0, 0.0, Algo.VWAP),  # no recent volume: share unknown, the careful choice
        (1.0, NAN, Algo.VWAP),
        (0.0, 0.0, Algo.IMMEDIATE),  # nothing to send
    ],
)
def test_choose_algo_thresholds(quantity: float, volume: float, expected: Algo) -> None:
    assert choose_algo(quantity, volume, immediate_below=0.01, twap_below=0.1) is expected


def test_choose_algo_edges() -> None:
    assert choose_algo(1e9, 1.0, immediate_below=0.01, twap_below=math.inf) is Algo.TWAP
    assert choose_algo(0.5, 1.0, immediate_below=0.0, twap_below=0.0) is Algo.VWAP
    with pytest.raises(UserInputError, match="immediate_below <= twap_below"):
        choose_algo(1.0, 1.0, immediate_below=0.2, twap_below=0.1)
    with pytest.raises(UserInputError, match="immediate_below"):
        choose_algo(1.0, 1.0, immediate_below=NAN, twap_below=0.1)
    with pytest.raises(UserInputError, match="finite"):
        choose_algo(NAN, 1.0, immediate_below=0.01, twap_below=0.1)


# ---- the per-bar step


def test_child_target_reads_no_volume() -> None:
    assert child_target(TWAP, 90.0, 3, NAN, 0.0) == 30.0
    assert child_target(VWAP, 90.0, 3, 0.2, 0.0) == 18.0
    assert child_target(VWAP, 90.0, 3, NAN, 0.0) == 30.0  # unknown share: equal slices
    assert child_target(VWAP, 90.0, 3, 1.7, 0.0) == 90.0  # a share is at most everything
    assert child_target(IMMEDIATE, 90.0, 3, NAN, 0.0) == 90.0
    assert child_target(TWAP, 90.0, 3, NAN, 31.0) == 0.0  # below min_child: wait
    assert child_target(TWAP, 20.0, 1, NAN, 31.0) == 20.0  # the last bar sends the rest
    assert child_target(TWAP, 0.0, 3, NAN, 0.0) == 0.0
    assert child_target(IMMEDIATE, 20.0, 3, NAN, 31.0) == 20.0  # all of it: waiting won't help
    assert child_target(TWAP, 20.0, 2, NAN, 31.0) == 0.0  # 10 now would be too small


@SETTINGS
@given(
    algo=st.sampled_from([IMMEDIATE, TWAP, VWAP]),
    remaining=quantities,
    bars_left=st.integers(1, 50),
    v=volume,
    share=st.one_of(st.floats(0.0, 1.0), st.just(NAN)),
    participation=participations,
    min_child=st.floats(0.0, 100.0),
)
def test_child_is_the_target_capped_by_the_fill_model(
    algo: int,
    remaining: float,
    bars_left: int,
    v: float,
    share: float,
    participation: float,
    min_child: float,
) -> None:
    q = child_quantity(algo, remaining, bars_left, v, share, participation, min_child)
    target = child_target(algo, remaining, bars_left, share, min_child)
    cap = CostParams.simple(0.0)._replace(max_participation=participation)
    assert q == fillable_qty(target, v, cap)  # the one cap rule of costs.py
    assert 0.0 <= q <= remaining
    assert q <= participation * v or q == 0.0


# ---- whole schedules


@SETTINGS
@given(order=orders())
def test_children_never_exceed_the_cap_and_add_up(
    order: tuple[SliceParams, float, F8, VolumeProfile],
) -> None:
    p, q, volumes, profile = order
    children, unfilled = run(p, q, volumes, profile)
    bars = volumes[-p.horizon_bars :]
    assert children.shape == (p.horizon_bars,)
    assert (children >= 0.0).all()
    assert (children <= p.participation * np.nan_to_num(bars)).all()
    assert 0.0 <= unfilled <= q
    assert children.sum() + unfilled == pytest.approx(q, rel=1e-12, abs=1e-9)


@SETTINGS
@given(order=orders(liquid=True))
def test_the_parent_fills_whole_when_the_cap_allows(
    order: tuple[SliceParams, float, F8, VolumeProfile],
) -> None:
    p, q, volumes, profile = order
    p = SliceParams(p.algo, p.horizon_bars, participation=1.0, min_child=p.min_child)
    volumes[-p.horizon_bars :] += q  # each bar alone could take the whole order
    children, unfilled = run(p, q, volumes, profile)
    assert unfilled == 0.0
    assert children.sum() == pytest.approx(q, rel=1e-12)
    left = q
    for c in children:  # a small child waits, unless it is all that is left
        assert c == 0.0 or c >= p.min_child or c == left
        left -= c


def test_twap_slices_are_equal_when_the_cap_does_not_bind() -> None:
    s = schedule(params(Algo.TWAP, 8), 1000.0, np.full(8, 1e6))
    np.testing.assert_allclose(s.children, 125.0, rtol=1e-14)
    assert s.unfilled == 0.0
    assert schedule(params(Algo.TWAP, 3), 1.0, np.full(3, 1e6)).children.sum() == pytest.approx(
        1.0, rel=1e-15
    )


@SETTINGS
@given(
    q=st.floats(1.0, 1e5),
    h=st.integers(1, 24),
    history=st.lists(st.floats(1.0, 1e4), min_size=24, max_size=96),
)
def test_vwap_follows_the_profile(q: float, h: int, history: list[float]) -> None:
    period = 24  # horizon within one cycle: every bar's forecast is known at the start
    volumes = np.concatenate([history, np.full(h, 1e12)])
    start = len(history)
    profile = volume_profile(volumes[:start], window=4, period=period)  # from the past only
    s = schedule(params(Algo.VWAP, h), q, volumes, volume_profile(volumes, 4, period), start=start)
    expected = profile.expected[start : start + h]
    np.testing.assert_allclose(s.children, q * expected / expected.sum(), rtol=1e-9)
    assert s.unfilled == 0.0


def test_vwap_example_by_hand() -> None:
    # two days of two bars: mornings trade 100, afternoons 300; day 3 follows the pattern
    volumes = np.array([100.0, 300.0, 100.0, 300.0, 1e9, 1e9])
    profile = volume_profile(volumes, window=2, period=2)
    s = schedule(params(Algo.VWAP, 2), 40.0, volumes, profile, start=4)
    assert s.children.tolist() == [10.0, 30.0]
    assert s.unfilled == 0.0


def test_leftover_is_reported_when_the_cap_binds() -> None:
    volumes = np.array([100.0, 0.0, NAN, 50.0])
    for algo in Algo:
        s = schedule(params(algo, 4, participation=0.1), 100.0, volumes, volume_profile(volumes, 1))
        assert (s.children <= [10.0, 0.0, 0.0, 5.0]).all()
        assert s.children.sum() + s.unfilled == pytest.approx(100.0)
        assert s.unfilled >= 85.0
    immediate = schedule(params(Algo.IMMEDIATE, 4, participation=0.1), 100.0, volumes)
    assert immediate.children.tolist() == [10.0, 0.0, 0.0, 5.0]
    assert immediate.unfilled == 85.0


def test_the_last_bar_sends_what_the_cap_allows_even_below_min_child() -> None:
    s = schedule(params(Algo.TWAP, 3, participation=0.5, min_child=40.0), 60.0, [1e6, 1e6, 30.0])
    # 20 a bar is below the minimum: bars 0 and 1 wait, bar 2 is capped at 15 of the 60
    assert s.children.tolist() == [0.0, 0.0, 15.0]
    assert s.unfilled == 45.0


def test_min_child_merges_into_the_next_child() -> None:
    s = schedule(params(Algo.TWAP, 4, min_child=30.0), 100.0, np.full(4, 1e6))
    assert s.children.tolist() == [
        0.0,
        pytest.approx(100 / 3),
        pytest.approx(100 / 3),
        pytest.approx(100 / 3),
    ]


def test_data_ending_leaves_the_rest_unfilled() -> None:
    s = schedule(params(Algo.TWAP, 5), 100.0, np.full(3, 1e6))
    assert s.children.tolist() == [20.0, 20.0, 20.0]
    assert s.unfilled == 40.0
    assert schedule(params(Algo.TWAP, 5), 100.0, np.full(3, 1e6), start=3).unfilled == 100.0


def test_schedule_rejects_bad_input() -> None:
    twap, vwap = params(Algo.TWAP, 3), params(Algo.VWAP, 3)
    with pytest.raises(UserInputError, match="VWAP needs a volume profile"):
        schedule(vwap, 1.0, np.ones(3))
    with pytest.raises(UserInputError, match="volume_profile of the same volumes"):
        schedule(vwap, 1.0, np.ones(9), volume_profile(np.ones(3), 2))
    with pytest.raises(UserInputError, match="quantity"):
        schedule(twap, -1.0, np.ones(3))
    with pytest.raises(UserInputError, match="start"):
        schedule(twap, 1.0, np.ones(3), start=-1)
    with pytest.raises(UserInputError, match="1-D"):
        schedule(twap, 1.0, np.ones((3, 2)))


# ---- one implementation, two drivers


def drive(
    p: SliceParams, q: float, volumes: F8, profile_at: Callable[[int], VolumeProfile]
) -> tuple[list[float], float]:
    """Work the order one bar at a time, as a compiled loop or a paper venue does."""
    start, remaining, children = volumes.size - p.horizon_bars, q, []
    for k in range(p.horizon_bars):
        t, bars_left = start + k, p.horizon_bars - k
        share = expected_share(profile_at(t), t, bars_left)  # before bar t: bars < t only
        child = child_quantity(
            int(p.algo), remaining, bars_left, volumes[t], share, p.participation, p.min_child
        )
        children.append(child)  # filled during bar t, against bar t's volume
        remaining -= child
    return children, remaining


@SETTINGS
@given(order=orders())
def test_bar_by_bar_driver_matches_the_schedule(
    order: tuple[SliceParams, float, F8, VolumeProfile],
) -> None:
    """The backtester's driver: the profile computed once over the whole series."""
    p, q, volumes, profile = order
    children, unfilled = run(p, q, volumes, profile)
    live, remaining = drive(p, q, volumes, lambda t: profile)
    np.testing.assert_array_equal(live, children)  # bit for bit
    assert remaining == unfilled


@SETTINGS
@given(order=orders())
def test_bar_by_bar_with_a_profile_seen_so_far_matches_the_schedule(
    order: tuple[SliceParams, float, F8, VolumeProfile],
) -> None:
    """A paper venue's driver: at bar t it has only the bars before t to forecast from."""
    p, q, volumes, _ = order
    full = volume_profile(volumes, window=3, period=5)
    children, unfilled = run(p, q, volumes, full)
    live, remaining = drive(
        p, q, volumes, lambda t: volume_profile(volumes[:t], window=3, period=5)
    )
    np.testing.assert_array_equal(live, children)  # bit for bit
    assert remaining == unfilled


# ---- the volume profile is causal


@SETTINGS
@given(
    v=st.lists(volume, max_size=80),
    window=st.integers(1, 6),
    period=st.integers(1, 10),
    data=st.data(),
)
def test_profile_is_causal_by_truncation(
    v: list[float], window: int, period: int, data: st.DataObject
) -> None:
    volumes = np.array(v, dtype=np.float64)
    full = volume_profile(volumes, window, period).expected
    assert full.shape == (volumes.size + period,)
    for t in data.draw(st.lists(st.integers(0, volumes.size), max_size=6)):
        cut = volume_profile(volumes[:t], window, period).expected
        np.testing.assert_array_equal(cut, full[: t + period])  # bit for bit, NaN == NaN


@SETTINGS
@given(
    v=st.lists(st.floats(0.0, 1e6), min_size=30, max_size=60),
    period=st.integers(1, 10),
    t=st.integers(0, 29),
)
def test_profile_forecasts_are_known_a_period_ahead(v: list[float], period: int, t: int) -> None:
    volumes = np.array(v)
    changed = volumes.copy()
    changed[max(t - period + 1, 0) :] *= 7.0  # bars after t - period
    a = volume_profile(volumes, 4, period).expected[t]
    b = volume_profile(changed, 4, period).expected[t]
    np.testing.assert_array_equal(a, b)


def test_profile_by_hand() -> None:
    p = volume_profile([1.0, 2.0, NAN, 4.0, -5.0, 6.0], window=2, period=1)
    np.testing.assert_array_equal(p.expected, [NAN, 1.0, 1.5, 2.0, 4.0, 4.0, 6.0])
    assert p.period == 1
    for bad in ({"window": 0}, {"period": 0}, {"window": 1.5}):
        with pytest.raises(UserInputError, match="whole number >= 1"):
            volume_profile([1.0], **{"window": 2, "period": 1, **bad})  # type: ignore[arg-type]


def test_expected_share_reads_only_the_known_span() -> None:
    p = VolumeProfile(np.array([1.0, 3.0, 2.0, 99.0]), period=3)
    assert expected_share(p, 0, 1) == 1.0
    assert expected_share(p, 0, 3) == 1.0 / 6.0
    assert expected_share(p, 0, 5) == 1.0 / 10.0  # bars 3 and 4 repeat phases 0 and 1: 1+3+2+1+3
    assert expected_share(p, 2, 2) == 2.0 / 101.0
    assert expected_share(p, 3, 2) == 0.5  # needs 3 .. 4: beyond the forecasts, equal slices
    assert expected_share(VolumeProfile(np.array([NAN, 1.0]), 2), 0, 2) == 0.5
    assert expected_share(VolumeProfile(np.zeros(3), 3), 0, 3) == pytest.approx(1 / 3)


# ---- child ids


def test_child_ids_of_short_parents_are_readable() -> None:
    assert child_id("ord-7", 0) == "ord-7.0"
    assert child_id("a" * 34, 9) == "a" * 34 + ".9"
    long_id = child_id("a" * 34, 10)
    assert long_id == "a" * 20 + "-" + long_id[21:33] + ".10"
    assert len(long_id) == 36


@SETTINGS
@given(
    parents=st.lists(
        st.one_of(st.from_regex(CLIENT_ID, fullmatch=True), st.text(min_size=1, max_size=60)),
        min_size=1,
        max_size=5,
        unique=True,
    ),
    ns=st.lists(st.integers(0, 10**6), min_size=1, max_size=5, unique=True),
)
def test_child_ids_are_valid_unique_and_deterministic(parents: list[str], ns: list[int]) -> None:
    ids = [child_id(p, n) for p in parents for n in ns]
    assert all(CLIENT_ID.fullmatch(i) for i in ids), ids
    assert len(set(ids)) == len(ids)
    assert ids == [child_id(p, n) for p in parents for n in ns]


def test_child_ids_of_max_length_parents() -> None:
    parent = "rt-" + "x" * 33
    assert CLIENT_ID.fullmatch(parent)
    ids = {child_id(parent, n) for n in range(1000)}
    assert len(ids) == 1000
    assert all(CLIENT_ID.fullmatch(i) and i.startswith("rt-xxxx") for i in ids)
    other = child_id("rt-" + "x" * 32 + "y", 1)
    assert other != child_id(parent, 1)  # same readable prefix, different hash


def test_child_id_rejects_bad_input() -> None:
    with pytest.raises(UserInputError, match="client id"):
        child_id("", 1)
    with pytest.raises(UserInputError, match="whole number"):
        child_id("p", -1)
    with pytest.raises(UserInputError, match="whole number"):
        child_id("p", True)


# ---- the documentation's example runs


def test_docs_example_runs(capsys: pytest.CaptureFixture[str]) -> None:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Execution algorithms (`simulation.slicing`)", 1)[1].split("\n## ", 1)[
        0
    ]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1
    exec(compile(blocks[0], str(DOCS), "exec"), {})  # noqa: S102 - our own documentation
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3
    for line in printed:  # each print's comment says what it prints
        assert f"# {line}" in blocks[0], line
