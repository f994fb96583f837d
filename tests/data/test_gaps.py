"""Gaps: found by calendar, reported exactly on real data, handled by an explicit policy."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.core.errors import GapError, UserInputError
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data import find_gaps, load_ohlcv, validate
from reinforcetrade.data.gaps import resolve_calendar
from reinforcetrade.data.readers import read_file
from reinforcetrade.data.schema import index_ns
from reinforcetrade.data.synthetic import generate_ohlcv

H = pd.Timedelta(hours=1)


def _holey(drop: list[int], bars: int = 48, timeframe: str = "1h") -> pd.DataFrame:
    frame = generate_ohlcv("BTC/USDT", timeframe=timeframe, bars=bars, seed=1)
    return frame.drop(frame.index[drop])


def test_gaps_counted_and_located() -> None:
    frame = _holey([5, 6, 7, 20])
    report = find_gaps(frame, parse_timeframe("1h"))
    assert report.calendar == "24/7"
    assert [(g.after, g.before, g.missing) for g in report.missing] == [
        (frame.index[4], frame.index[5], 3),
        (frame.index[16], frame.index[17], 1),
    ]
    assert report.missing_bars == 4
    assert report.summary().startswith("2 gaps, 4 bars missing")


def test_policy_raise_names_the_gaps() -> None:
    frame = _holey([10])
    with pytest.raises(GapError, match=r"1 gap, 1 bar missing.*gaps='keep'"):
        validate(frame, gaps="raise")


def test_policy_keep_logs_and_returns_unchanged(caplog: pytest.LogCaptureFixture) -> None:
    frame = _holey([10, 11])
    with caplog.at_level(logging.WARNING):
        kept = validate(frame, gaps="keep")
    assert len(kept) == len(frame)
    assert "keeping 1 gap, 2 bars missing" in caplog.text  # never silently


def test_policy_fill_adds_flat_zero_volume_bars() -> None:
    full = generate_ohlcv("BTC/USDT", timeframe="1h", bars=48, seed=1)
    frame = full.drop(full.index[[10, 11, 30]])
    filled = validate(frame, gaps="fill")
    assert len(filled) == 48
    assert filled.index.equals(full.index)
    for ts in full.index[[10, 11, 30]]:
        row = filled.loc[ts]
        previous_close = frame.loc[: ts - H, "close"].iloc[-1]
        assert (row[["open", "high", "low", "close"]] == previous_close).all()
        assert row["volume"] == 0.0
    assert not find_gaps(filled, parse_timeframe("1h")).has_gaps
    validate(filled, gaps="raise")  # what fill returns is itself valid and gap-free


def test_unknown_policy_and_calendar_are_refused() -> None:
    frame = _holey([3])
    with pytest.raises(UserInputError, match="gap policy 'skip'"):
        validate(frame, gaps="skip")
    with pytest.raises(UserInputError, match="calendar 'nyse'"):
        validate(frame, calendar="nyse")


def _weekday_only(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[pd.DatetimeIndex(frame.index).day_of_week < 5]


def test_weekday_calendar_ignores_weekends_and_fill_skips_them() -> None:
    daily = _weekday_only(generate_ohlcv("AAPL", timeframe="1d", bars=60, seed=2))
    assert resolve_calendar(index_ns(daily), parse_timeframe("1d")) == "weekdays"
    assert not find_gaps(daily, parse_timeframe("1d")).gaps
    holed = daily.drop(daily.index[[7]])  # one weekday missing
    report = find_gaps(holed, parse_timeframe("1d"))
    assert report.missing_bars == 1
    filled = validate(holed, gaps="fill")
    assert filled.index.equals(daily.index)  # no Saturday or Sunday invented


def test_fx_calendar_tells_weekends_from_holes() -> None:
    hourly = generate_ohlcv("EUR/USD", timeframe="1h", bars=24 * 21, seed=3)
    ny = pd.DatetimeIndex(hourly.index).tz_convert("America/New_York")
    open_market = ~(
        ((ny.day_of_week == 4) & (ny.hour >= 17))
        | (ny.day_of_week == 5)
        | ((ny.day_of_week == 6) & (ny.hour < 17))
    )
    fx = hourly[open_market]
    report = find_gaps(fx, parse_timeframe("1h"))
    assert report.calendar == "fx"
    assert report.weekend_closures == 3
    assert not report.has_gaps
    holed = fx.drop(fx.index[[50]])
    assert find_gaps(holed, parse_timeframe("1h")).missing_bars == 1


def test_short_series_without_a_weekend_is_24_7() -> None:
    frame = generate_ohlcv(
        "BTC/USDT", timeframe="1h", bars=30, seed=1, start="2024-01-01"
    )  # a Monday
    assert resolve_calendar(index_ns(frame), parse_timeframe("1h")) == "24/7"


# --- real data: every file validates clean, and its known gaps are reported exactly (README) ---


@pytest.mark.shared_data
def test_btcusdt_1h_gaps_match_the_readme(shared_data: Path) -> None:
    report = read_file(shared_data / "btcusdt_1h.csv.gz").report
    assert report.ok
    assert report.rows == 58_419
    assert report.gaps is not None
    assert (len(report.gaps.missing), report.gaps.missing_bars) == (28, 128)
    largest = report.gaps.largest(5)
    assert [(g.after, g.duration) for g in largest] == [
        (pd.Timestamp("2018-02-08 00:00Z"), 34 * H),
        (pd.Timestamp("2018-06-26 01:00Z"), 11 * H),
        (pd.Timestamp("2019-05-15 02:00Z"), 11 * H),
        (pd.Timestamp("2019-08-15 01:00Z"), 9 * H),
        (pd.Timestamp("2018-07-04 00:00Z"), 8 * H),
    ]
    assert largest[0].before == pd.Timestamp("2018-02-09 10:00Z")


@pytest.mark.shared_data
def test_btcusdt_1m_is_continuous(shared_data: Path) -> None:
    frame = load_ohlcv(shared_data / "btcusdt_1m.csv.gz", gaps="raise")
    assert len(frame) == 130_708
    assert frame.index[0] == pd.Timestamp("2025-05-20T00:00:00Z")
    assert frame.index[-1] == pd.Timestamp("2025-08-18T18:27:00Z")
    assert (frame["volume"] == 0).sum() == 0


@pytest.mark.shared_data
def test_eurusd_weekends_holidays_and_missing_hours(shared_data: Path) -> None:
    report = read_file(shared_data / "eurusd_1h.csv.gz").report
    assert report.ok
    assert report.gaps is not None
    assert report.gaps.calendar == "fx"
    assert report.gaps.weekend_closures == 378
    holes = report.gaps.missing
    assert len(holes) == 12  # 10 Christmas / New Year closures and 2 single missing hours
    assert report.gaps.missing_bars == 584
    singles = [g.after + H for g in holes if g.missing == 1]
    assert singles == [pd.Timestamp("2016-12-26 17:00Z"), pd.Timestamp("2021-01-21 15:00Z")]
    christmas = {
        (g.after.date().isoformat(), g.before.date().isoformat()) for g in holes if g.missing > 1
    }
    assert ("2015-12-24", "2015-12-27") in christmas
    assert ("2017-12-29", "2018-01-01") in christmas
    assert len(christmas) == 10


@pytest.mark.shared_data
@pytest.mark.parametrize("name", ["aapl_1d.csv.gz", "aapl_1d_adjusted.csv.gz"])
def test_aapl_missing_weekdays(shared_data: Path, name: str) -> None:
    report = read_file(shared_data / name).report
    assert report.ok
    assert report.rows == 3_270
    assert report.gaps is not None
    assert report.gaps.calendar == "weekdays"
    assert (len(report.gaps.missing), report.gaps.missing_bars) == (118, 123)
    nine_eleven = report.gaps.largest(1)[0]
    assert (nine_eleven.after, nine_eleven.before, nine_eleven.missing) == (
        pd.Timestamp("2001-09-10", tz="UTC"),
        pd.Timestamp("2001-09-17", tz="UTC"),
        4,
    )


@pytest.mark.shared_data
def test_btcusdt_1h_zero_volume_bars_are_valid(shared_data: Path) -> None:
    frame = load_ohlcv(shared_data / "btcusdt_1h.csv.gz")
    zero = frame.index[frame["volume"].to_numpy() == 0]
    assert [f"{t:%Y-%m-%d %H:%M}" for t in zero] == [
        "2017-09-06 16:00",
        "2019-06-07 21:00",
        "2021-02-11 03:00",
        "2023-03-24 12:00",
    ]
    filled = validate(frame, gaps="fill")
    assert len(filled) == 58_419 + 128
    assert np.all(np.diff(index_ns(filled)) == 3_600_000_000_000)
