from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pandas.api.typing import Resampler

from reinforcetrade.core.errors import TimeframeError, UserInputError
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data.resample import _bucketize, resample
from reinforcetrade.data.schema import COLUMNS, column, index_ns, make_ohlcv
from requirements import missing

AGG = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
MINUTE = 60 * 10**9
# pandas >= 3 sums sorted groups with np.add.reduceat, whose order the kernel follows bit for
# bit; older pandas sums with Kahan compensation, which differs in the last bit or so.
EXACT = int(pd.__version__.split(".")[0]) >= 3
TARGETS = {
    "1m": ["1m", "5m", "15m", "1h", "4h", "1d"],
    "1h": ["4h", "1d", "2d", "1w", "1M"],
    "1d": ["2d", "3d", "1w", "1M", "3M"],
}


def bars(
    ts: pd.DatetimeIndex | npt.NDArray[np.int64],
    *,
    seed: int = 0,
    symbol: str | None = None,
    timeframe: str | None = None,
) -> pd.DataFrame:
    """Random OHLCV values (consistent high/low) on the given open times."""
    rng = np.random.default_rng(seed)
    n = len(ts)
    close = 100.0 + np.cumsum(rng.normal(0.0, 1.0, n))
    open_ = close + rng.normal(0.0, 0.5, n)
    high = np.maximum(open_, close) + rng.random(n)
    low = np.minimum(open_, close) - rng.random(n)
    volume = rng.exponential(10.0, n).round(5)
    return make_ohlcv(ts, open_, high, low, close, volume, symbol=symbol, timeframe=timeframe)


def minutes(start: str, end: str, symbol: str | None = None) -> pd.DataFrame:
    """1m bars opening at every minute from start to end inclusive."""
    ts = pd.date_range(start, end, freq="1min", tz="UTC")
    return bars(ts, symbol=symbol, timeframe="1m")


def times(frame: pd.DataFrame) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(frame.index)


def pandas_resampler(frame: pd.DataFrame, target: str) -> Resampler[pd.DataFrame]:
    """pandas' resampler for our grid: left-closed, left-labelled, epoch/Monday/1st anchored."""
    rule = {"1w": "W-MON", "1M": "MS", "3M": "QS-JAN"}.get(target)
    if rule is not None:
        return frame.resample(rule, label="left", closed="left")
    # A Tick rule on the epoch grid (pandas anchors '3D' at the first day; we anchor at 1970).
    nanos = pd.Timedelta(parse_timeframe(target).nanos)
    return frame.resample(nanos, label="left", closed="left", origin="epoch")


def with_pandas(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """The reference: pandas' resample with empty buckets dropped."""
    return pandas_resampler(frame, target).agg(AGG).dropna()


def assert_same_bars(ours: pd.DataFrame, theirs: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(ours, theirs, check_exact=EXACT, rtol=1e-12, check_freq=False)


@st.composite
def gappy_frames(draw: st.DrawFn) -> tuple[pd.DataFrame, str]:
    """A frame with random gaps (source 1m, 1h or 1d; some before 1970) and a valid target."""
    source = draw(st.sampled_from(sorted(TARGETS)))
    target = draw(st.sampled_from(TARGETS[source]))
    step = parse_timeframe(source).nanos
    slots = draw(st.integers(1, 600))
    keep = draw(st.floats(0.05, 1.0))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    present = rng.random(slots) < keep
    present[rng.integers(slots)] = True
    origin = draw(st.integers(-20 * 365 * 86_400, 60 * 365 * 86_400)) * 10**9 // step * step
    ts = origin + np.flatnonzero(present).astype(np.int64) * step
    return bars(ts, seed=seed, symbol="X/Y", timeframe=source), target


# --- agreement with pandas ---------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(case=gappy_frames())
def test_keep_agrees_with_pandas_on_gappy_frames(case: tuple[pd.DataFrame, str]) -> None:
    frame, target = case
    assert_same_bars(resample(frame, target, partial="keep"), with_pandas(frame, target))


@settings(max_examples=60, deadline=None)
@given(case=gappy_frames())
def test_drop_removes_exactly_the_short_edge_buckets(case: tuple[pd.DataFrame, str]) -> None:
    frame, target = case
    ref = with_pandas(frame, target)
    counts = pandas_resampler(frame, target).size().loc[ref.index].to_numpy()
    tf, source = parse_timeframe(target), parse_timeframe(frame.attrs["timeframe"])
    starts = times(ref)
    if tf.is_monthly:
        ends = starts + pd.DateOffset(months=tf.count)
        need = np.asarray((ends - starts) // pd.Timedelta(source.nanos))
    else:
        need = np.full(len(ref), tf.nanos // source.nanos)
    lo = int(counts[0] < need[0])
    hi = len(ref) - int(counts[-1] < need[-1])
    assert_same_bars(resample(frame, target), ref.iloc[lo : max(lo, hi)])


def test_chunked_threads_give_the_same_buckets_as_one_pass() -> None:
    ts = pd.date_range("2023-12-30 23:00", periods=50_000, freq="1min", tz="UTC")
    frame = bars(ts[np.random.default_rng(3).random(len(ts)) < 0.9], timeframe="1m")
    stamps = index_ns(frame)
    columns = tuple(column(frame, name) for name in COLUMNS)
    for target in ("1h", "1d", "1M"):
        one = _bucketize(stamps, columns, parse_timeframe(target), workers=1)
        assert one is not None
        for workers in (2, 3, 7):
            many = _bucketize(stamps, columns, parse_timeframe(target), workers=workers)
            assert many is not None
            for a, b in zip(one, many, strict=True):
                np.testing.assert_array_equal(a, b)


def test_volume_sums_follow_numpy_reduceat_bit_for_bit() -> None:
    rng = np.random.default_rng(5)
    sizes = np.r_[1, 2, 7, 8, 9, 127, 128, 129, 130, 1000, 4097, rng.integers(1, 300, 40)]
    step = parse_timeframe("1w").nanos
    ts = np.concatenate(
        [k * step + np.arange(size, dtype=np.int64) * MINUTE for k, size in enumerate(sizes)]
    )
    frame = bars(ts + 4 * 86_400 * 10**9, timeframe="1m")  # weekly buckets of these sizes
    out = resample(frame, "1w", partial="keep")
    first = np.r_[0, np.cumsum(sizes)[:-1]]
    np.testing.assert_array_equal(out["volume"], np.add.reduceat(frame["volume"].to_numpy(), first))


# --- real data ---------------------------------------------------------------------------------


def real(shared_data: Path, name: str, timeframe: str) -> pd.DataFrame:
    path = shared_data / name
    if not path.is_file():
        missing(f"{path} is missing")
    raw = pd.read_csv(path, parse_dates=["timestamp"], index_col="timestamp")
    return make_ohlcv(raw.index, *(raw[c] for c in COLUMNS), symbol="BTC/USDT", timeframe=timeframe)


@pytest.fixture(scope="module")
def btc_1m(shared_data: Path) -> pd.DataFrame:
    return real(shared_data, "btcusdt_1m.csv.gz", "1m")


@pytest.fixture(scope="module")
def btc_1h(shared_data: Path) -> pd.DataFrame:
    return real(shared_data, "btcusdt_1h.csv.gz", "1h")


@pytest.mark.shared_data
@pytest.mark.parametrize("target", ["1h", "4h", "1d"])
def test_real_1m_agrees_with_pandas_exactly(btc_1m: pd.DataFrame, target: str) -> None:
    ours = resample(btc_1m, target, partial="keep")
    assert_same_bars(ours, with_pandas(btc_1m, target))
    assert ours.attrs == {"symbol": "BTC/USDT", "timeframe": target}


@pytest.mark.shared_data
def test_real_1m_last_hour_is_forming_and_dropped(btc_1m: pd.DataFrame) -> None:
    assert btc_1m.index[-1] == pd.Timestamp("2025-08-18 18:27", tz="UTC")
    dropped, kept = resample(btc_1m, "1h"), resample(btc_1m, "1h", partial="keep")
    assert dropped.index[-1] == pd.Timestamp("2025-08-18 17:00", tz="UTC")
    assert kept.index[-1] == pd.Timestamp("2025-08-18 18:00", tz="UTC")
    pd.testing.assert_frame_equal(dropped, kept.iloc[:-1])
    assert len(resample(btc_1m, "1d")) == 90  # 90 whole days; 2025-08-18 is cut off


@pytest.mark.shared_data
def test_real_1m_via_5m_equals_direct(btc_1m: pd.DataFrame) -> None:
    direct = resample(btc_1m, "1h", partial="keep")
    via = resample(resample(btc_1m, "5m", partial="keep"), "1h", partial="keep")
    prices = ["open", "high", "low", "close"]
    pd.testing.assert_frame_equal(via[prices], direct[prices], check_exact=True)
    # Volumes are sums in a different order (5 then 12 vs 60): equal to the last bit or two.
    np.testing.assert_allclose(via["volume"], direct["volume"], rtol=1e-14)


@pytest.mark.shared_data
@pytest.mark.parametrize("target", ["4h", "1d"])
def test_real_1h_with_gaps_agrees_with_pandas(btc_1h: pd.DataFrame, target: str) -> None:
    assert_same_bars(resample(btc_1h, target, partial="keep"), with_pandas(btc_1h, target))


@pytest.mark.shared_data
def test_real_1h_gap_stays_a_gap(btc_1h: pd.DataFrame) -> None:
    # No bars from 2018-02-08 01:00 to 2018-02-09 09:00: those buckets are absent, not invented.
    four = resample(btc_1h, "4h")
    inside = (four.index > "2018-02-08 00:00+00:00") & (four.index < "2018-02-09 08:00+00:00")
    assert not inside.any()
    # The day of 2018-02-08 holds one bar (00:00): a short interior bucket, kept as printed.
    day = resample(btc_1h, "1d").loc["2018-02-08 00:00+00:00"]
    bar = btc_1h.loc["2018-02-08 00:00+00:00"]
    assert day.to_dict() == bar.to_dict()


# --- edges, gaps and calendars -----------------------------------------------------------------


def test_partial_edges_both_ways() -> None:
    frame = minutes("2024-03-05 16:20", "2024-03-05 18:27", symbol="BTC/USDT")
    dropped = resample(frame, "1h")
    kept = resample(frame, "1h", partial="keep")
    assert list(times(dropped).hour) == [17]
    assert list(times(kept).hour) == [16, 17, 18]
    last = kept.iloc[-1]
    tail = frame.loc["2024-03-05 18:00":]
    assert len(tail) == 28
    assert last["open"] == tail["open"].iloc[0]
    assert last["close"] == tail["close"].iloc[-1]
    assert last["high"] == tail["high"].max()
    assert last["low"] == tail["low"].min()
    assert last["volume"] == pytest.approx(tail["volume"].sum(), rel=1e-15)


def test_interior_short_bucket_is_kept_but_short_edge_bucket_is_dropped() -> None:
    frame = minutes("2024-03-05 16:00", "2024-03-05 19:59")
    holes = frame.drop(frame.index[[10, 70, 71, 230]])  # in the 16:00, 17:00 and 19:00 hours
    out = resample(holes, "1h")
    assert list(times(out).hour) == [17, 18]  # 17:00 short but interior; 16:00/19:00 short edges
    assert list(times(resample(holes, "1h", partial="keep")).hour) == [16, 17, 18, 19]
    assert times(resample(frame, "1h")).hour.tolist() == [16, 17, 18, 19]


def test_a_single_short_bucket_is_both_edges() -> None:
    frame = minutes("2024-03-05 16:10", "2024-03-05 16:20")
    assert resample(frame, "1h").empty
    assert len(resample(frame, "1h", partial="keep")) == 1


def test_gaps_give_no_rows() -> None:
    ts = pd.DatetimeIndex(["2024-01-01 00:00", "2024-01-01 00:01", "2024-01-01 03:00"], tz="UTC")
    out = resample(bars(ts, timeframe="1m"), "1h", partial="keep")
    assert times(out).hour.tolist() == [0, 3]


def test_weekly_buckets_open_on_monday() -> None:
    days = bars(pd.date_range("2024-01-03", "2024-03-20", freq="D", tz="UTC"), timeframe="1d")
    weekly = resample(days, "1w", partial="keep")
    assert (times(weekly).day_of_week == 0).all()
    assert weekly.index[0] == pd.Timestamp("2024-01-01", tz="UTC")  # Wednesday → its Monday
    assert resample(days, "1w").index[0] == pd.Timestamp("2024-01-08", tz="UTC")
    assert resample(days, "1w").index[-1] == pd.Timestamp("2024-03-11", tz="UTC")  # 18th: short
    assert_same_bars(weekly, with_pandas(days, "1w"))
    assert (times(resample(days, "2w", partial="keep")).day_of_week == 0).all()


def test_monthly_buckets_open_on_the_first() -> None:
    days = bars(pd.date_range("2024-01-15", "2024-07-31", freq="D", tz="UTC"), timeframe="1d")
    monthly = resample(days, "1M")
    assert times(monthly).month.tolist() == [2, 3, 4, 5, 6, 7]  # January starts on the 15th
    assert (times(monthly).day == 1).all()
    feb = days.loc["2024-02"]
    assert len(feb) == 29
    assert monthly.loc["2024-02-01", "open"] == feb["open"].iloc[0]
    assert monthly.loc["2024-02-01", "close"] == feb["close"].iloc[-1]
    quarterly = resample(days, "3M", partial="keep")
    assert times(quarterly).month.tolist() == [1, 4, 7]
    assert times(resample(days, "3M")).month.tolist() == [4]  # Q1 starts late, Q3 ends early
    assert monthly.attrs["timeframe"] == "1M"


def test_monthly_source_is_inferred_and_aggregated_to_quarters() -> None:
    months = bars(pd.date_range("2023-01-01", "2023-12-01", freq="MS", tz="UTC"))
    quarters = resample(months, "3M")
    assert times(quarters).month.tolist() == [1, 4, 7, 10]
    assert quarters["volume"].iloc[0] == pytest.approx(months["volume"].iloc[:3].sum())


def test_attrs_are_the_symbol_and_the_target() -> None:
    frame = minutes("2024-01-01 00:00", "2024-01-01 01:59", symbol="ETH/USDT")
    frame.attrs["source"] = "somewhere.csv"
    out = resample(frame, "30m")
    assert out.attrs == {"symbol": "ETH/USDT", "timeframe": "30m"}
    assert out.index.name == "timestamp"
    assert str(times(out).tz) == "UTC"
    assert list(out.columns) == list(COLUMNS)
    assert (out.dtypes == np.float64).all()


def test_source_timeframe_is_inferred_from_the_smallest_step() -> None:
    days = pd.bdate_range("2024-01-01", "2024-02-29", tz="UTC")  # weekends missing
    frame = bars(days)
    assert "timeframe" not in frame.attrs
    assert_same_bars(resample(frame, "1w", partial="keep"), with_pandas(frame, "1w"))


def test_same_timeframe_returns_the_same_bars() -> None:
    frame = minutes("2024-01-01 00:00", "2024-01-01 00:09")
    pd.testing.assert_frame_equal(resample(frame, "1m"), frame, check_freq=False)


def test_empty_frame_gives_an_empty_frame() -> None:
    frame = minutes("2024-01-01", "2024-01-01").iloc[:0]
    out = resample(frame, "1h")
    assert out.empty
    assert out.attrs["timeframe"] == "1h"


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "target", "words"),
    [
        ("1h", "5m", "coarser"),
        ("1h", "90m", "whole multiple"),
        ("15m", "20m", "whole multiple"),
        ("7h", "1w", "line up"),
        ("1w", "7d", "line up"),
        ("1M", "1w", "calendar months"),
        ("1w", "1M", "calendar months"),
        ("7m", "1M", "calendar months"),
        ("2M", "3M", "whole multiple"),
    ],
)
def test_incompatible_targets_are_refused(source: str, target: str, words: str) -> None:
    tf = parse_timeframe(source)
    ts = np.arange(3, dtype=np.int64) * tf.nanos + 4 * 86_400 * 10**9
    with pytest.raises(UserInputError, match=words):
        resample(bars(ts, timeframe=source), target)


def test_unsorted_or_duplicate_times_are_refused_with_the_row() -> None:
    frame = minutes("2024-01-01 00:00", "2024-01-01 00:09")
    swapped = frame.iloc[[0, 1, 2, 4, 3, 5, 6, 7, 8, 9]]
    with pytest.raises(UserInputError, match=r"row 4 .* sort"):
        resample(swapped, "5m")
    duplicated = frame.iloc[[0, 1, 2, 3, 3, 4]]
    with pytest.raises(UserInputError, match="row 4"):
        resample(duplicated, "5m")


def test_threaded_path_checks_order_across_chunk_cuts() -> None:
    ts = np.arange(10_000, dtype=np.int64) * MINUTE
    ts[6000:] -= 100 * MINUTE  # sorted within each half, not across the cut at 6000
    frame = bars(ts, timeframe="1m")
    columns = tuple(column(frame, name) for name in COLUMNS)
    for workers in (1, 2, 5):
        assert _bucketize(ts, columns, parse_timeframe("1h"), workers=workers) is None


def test_bad_arguments_are_refused() -> None:
    frame = minutes("2024-01-01 00:00", "2024-01-01 00:09")
    with pytest.raises(TimeframeError):
        resample(frame, "1 hour")
    with pytest.raises(UserInputError, match="partial"):
        resample(frame, "5m", partial="maybe")  # type: ignore[arg-type]
    with pytest.raises(UserInputError, match="DatetimeIndex"):
        resample(frame.reset_index(drop=True), "5m")
    with pytest.raises(UserInputError, match="missing"):
        resample(frame.drop(columns="volume"), "5m")
    lonely = frame.iloc[:1].copy()
    lonely.attrs = {}
    with pytest.raises(UserInputError, match="attrs"):
        resample(lonely, "5m")
