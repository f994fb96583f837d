"""Core: timeframes, clocks, atomic files and error rendering."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from reinforcetrade.core import (
    DataError,
    DataIssue,
    FixedClock,
    TimeframeError,
    UserInputError,
    WallClock,
    parse_timeframe,
    timeframe_from_nanos,
)
from reinforcetrade.core.files import atomic_path, atomic_write_bytes

MINUTE = 60 * 10**9


@pytest.mark.parametrize(
    ("text", "nanos", "pandas"),
    [
        ("1m", MINUTE, "1min"),
        ("15m", 15 * MINUTE, "15min"),
        ("1h", 60 * MINUTE, "1h"),
        ("4h", 240 * MINUTE, "4h"),
        ("1d", 1440 * MINUTE, "1D"),
        ("1w", 7 * 1440 * MINUTE, "1W-MON"),
        (" 30s ", 30 * 10**9, "30s"),
    ],
)
def test_parse_timeframe(text: str, nanos: int, pandas: str) -> None:
    tf = parse_timeframe(text)
    assert tf.nanos == nanos
    assert tf.pandas_freq == pandas
    assert tf.millis == nanos // 10**6


def test_months_are_calendar_bars() -> None:
    tf = parse_timeframe("1M")
    assert tf.is_monthly
    assert tf.pandas_freq == "1MS"


@pytest.mark.parametrize("text", ["", "h", "0m", "1y", "1.5h", "-1h", "1 hour"])
def test_bad_timeframes_are_refused_with_a_hint(text: str) -> None:
    with pytest.raises(TimeframeError, match=r"e\.g\. '1m'"):
        parse_timeframe(text)


def test_timeframe_error_is_user_input() -> None:
    assert issubclass(TimeframeError, UserInputError)


@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["s", "m", "h", "d", "w"]))
def test_timeframe_round_trips_through_nanos(count: int, unit: str) -> None:
    tf = parse_timeframe(f"{count}{unit}")
    assert timeframe_from_nanos(tf.nanos).nanos == tf.nanos


def test_clocks() -> None:
    clock = FixedClock(1_000)
    clock.advance(500)
    assert clock.now_ns() == 1_500
    with pytest.raises(ValueError, match="backwards"):
        clock.set(10)
    assert WallClock().now_ns() > 1_600_000_000 * 10**9


def test_atomic_write_replaces_whole(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "file.bin"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["file.bin"]


def test_atomic_path_failure_keeps_old_file_and_leaves_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "file.txt"
    target.write_text("old")

    def write_half_then_crash() -> None:
        with atomic_path(target) as temp:
            temp.write_text("half")
            raise RuntimeError("crash mid-write")

    with pytest.raises(RuntimeError, match="crash mid-write"):
        write_half_then_crash()
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["file.txt"]


def test_data_issue_renders_file_row_column_value() -> None:
    issue = DataIssue("price", "price must be positive", row=12, column="close", value=-1.0)
    assert (
        issue.render("x.csv", "line")
        == "x.csv, line 12, column 'close': price must be positive (value: -1.0)"
    )
    error = DataError("bad", source="x.csv", hint="fix it")
    assert str(error) == "x.csv: bad — fix it"


def test_thread_count_respects_limits(monkeypatch: pytest.MonkeyPatch) -> None:
    from reinforcetrade.core.threads import run_all, thread_count, thread_limit, usable_cores

    assert thread_count(10, 1_000) == 1
    assert thread_count(10**9, 1) == min(usable_cores(), 4)
    with thread_limit(1):
        assert thread_count(10**9, 1) == 1
    monkeypatch.setenv("RT_NUM_THREADS", "1")
    assert thread_count(10**9, 1) == 1
    with pytest.raises(ValueError, match="at least 1"), thread_limit(0):
        pass
    assert run_all([lambda: 1, lambda: 2, lambda: 3]) == [1, 2, 3]


def test_worker_pool_survives_fork() -> None:
    import multiprocessing

    from reinforcetrade.core.threads import run_all

    assert run_all([lambda: 1, lambda: 2]) == [1, 2]  # the parent's pool exists now
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        assert pool.apply(_child_runs_threads) == [10, 20]


def _child_runs_threads() -> list[int]:
    from reinforcetrade.core.threads import run_all

    return run_all([lambda: 10, lambda: 20])


@given(
    instant=st.integers(min_value=0, max_value=4_000_000_000 * 10**9),
    text=st.sampled_from(["1m", "15m", "1h", "4h", "1d", "3d", "1w", "1M", "3M"]),
)
def test_bar_grid_floor_shift_ceil(instant: int, text: str) -> None:
    import numpy as np

    tf = parse_timeframe(text)
    start = tf.floor(instant)
    nxt = tf.shift(instant, 1)
    assert start <= instant < nxt
    assert tf.floor(start) == start
    assert tf.ceil(instant) in (start, nxt)
    assert tf.shift(nxt, -1) == start
    assert tf.bars_between(start, tf.shift(start, 5)) == 5
    if tf.unit == "w":
        assert (start // (86_400 * 10**9) + 3) % 7 == 0  # weeks open on Mondays
    if tf.is_monthly:
        day = np.datetime64(start, "ns").astype("datetime64[D]")
        assert str(day).endswith("-01")
