from __future__ import annotations

import json
import logging
import threading
import urllib.request
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import numpy as np
import pandas as pd
import pytest

from fakes import BadField, Canned, Reply, Request, ServerError, Stall, Truncated
from fakes.binance import FakeBinance, Overlap, RateLimited, binance_error
from reinforcetrade.config.sections import DataConfig
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.core.errors import DataValidationError, ExchangeDataError, UserInputError
from reinforcetrade.core.timeframes import parse_timeframe
from reinforcetrade.data.cache import CachedBars, CacheKey, CacheWarning, Coverage, HistoryCache
from reinforcetrade.data.history import CcxtHistory
from reinforcetrade.data.schema import make_ohlcv
from reinforcetrade.data.validate import check

pytestmark = pytest.mark.network

HOUR = 3_600_000
NOW = pd.Timestamp("2024-03-01T10:30Z")  # the 10:00 bar is forming
END = int(pd.Timestamp("2024-03-01T10:00Z").value // 1_000_000)  # first bar not yet closed
KLINES = "/api/v3/klines"
BACKOFF = 0.01


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW.value)


@pytest.fixture
def venue(clock: FixedClock) -> Iterator[FakeBinance]:
    with FakeBinance(clock) as fake:
        yield fake
    assert not fake.errors, fake.errors


@pytest.fixture
def sleeps() -> list[float]:
    return []


def make_config(venue: FakeBinance, tmp_path: Path, **overrides: Any) -> DataConfig:
    settings: dict[str, Any] = {
        "cache_dir": tmp_path / "cache",
        "api_urls": venue.api_urls,
        "page_limit": 50,
        "max_retries": 3,
        "retry_backoff_seconds": BACKOFF,
        "retry_backoff_max_seconds": 4 * BACKOFF,
        "request_timeout_ms": 1000,
        "calendar": "24/7",
    }
    return DataConfig(**{**settings, **overrides})


@pytest.fixture
def config(venue: FakeBinance, tmp_path: Path) -> DataConfig:
    return make_config(venue, tmp_path)


@pytest.fixture
def history(config: DataConfig, clock: FixedClock, sleeps: list[float]) -> Iterator[CcxtHistory]:
    with CcxtHistory(config, clock=clock, sleep=sleeps.append) as h:
        yield h


def frame_of(rows: list[list[object]]) -> pd.DataFrame:
    ts = np.array([r[0] for r in rows], dtype=np.int64) * 1_000_000
    cols = [[float(str(r[i])) for r in rows] for i in range(1, 6)]
    return make_ohlcv(ts, *cols, symbol="BTC/USDT", timeframe="1h")


def expected(venue: FakeBinance, start: int, end: int) -> pd.DataFrame:
    return frame_of(venue.closed_klines("BTC/USDT", "1h", start, end))


def assert_bars(actual: pd.DataFrame, want: pd.DataFrame) -> None:
    assert len(want) > 0
    pd.testing.assert_frame_equal(actual, want, check_freq=False)
    assert actual.attrs["symbol"] == "BTC/USDT"
    assert actual.attrs["timeframe"] == "1h"


def asked(venue: FakeBinance) -> list[tuple[int, int]]:
    """The [start, end) each klines request could have returned, by its startTime and limit."""
    out = []
    for r in venue.requests_to(KLINES):
        start, limit = r.int("startTime"), r.int("limit")
        assert start is not None
        assert limit is not None
        out.append((start, start + limit * HOUR))
    return out


def starts(requests: list[Request]) -> list[int | None]:
    return [r.int("startTime") for r in requests]


def cache_of(config: DataConfig) -> HistoryCache:
    return HistoryCache(config.cache_dir)


KEY = CacheKey("binance", "BTC/USDT", parse_timeframe("1h"))


def test_pages_through_the_exchange_and_returns_exactly_its_bars(
    history: CcxtHistory, venue: FakeBinance
) -> None:
    calls: list[tuple[int, int | None]] = []
    bars = history.fetch(
        "BTC/USDT", timeframe="1h", limit=170, progress=lambda n, t: calls.append((n, t))
    )
    assert_bars(bars, expected(venue, END - 170 * HOUR, END))
    assert asked(venue) == [
        (END - 170 * HOUR, END - 120 * HOUR),
        (END - 120 * HOUR, END - 70 * HOUR),
        (END - 70 * HOUR, END - 20 * HOUR),
        (END - 20 * HOUR, END),
    ]
    assert calls == [(50, 170), (100, 170), (150, 170), (170, 170)]
    assert len(venue.requests_to("/api/v3/exchangeInfo")) == 1  # spot markets only
    assert {r.path for r in venue.requests} == {"/api/v3/exchangeInfo", KLINES}


def test_rides_out_a_429_a_timeout_and_malformed_pages(
    history: CcxtHistory, venue: FakeBinance, sleeps: list[float]
) -> None:
    venue.script(
        KLINES,
        None,  # page 1
        RateLimited(), Stall(3.0), None,  # page 2: 429, then past the 1 s client timeout
        Truncated(), BadField(row=3, field=2, value="abc"), BadField(row=1, field=0, value="x"),
        None,  # page 3: unparsable JSON, a non-numeric price, a non-numeric time
        ServerError(503), Canned(Reply(200, b"")), None,  # page 4: a 5xx, an empty body
    )  # fmt: skip
    bars = history.fetch("BTC/USDT", limit=170)
    assert_bars(bars, expected(venue, END - 170 * HOUR, END))
    page = [END - k * HOUR for k in (170, 120, 70, 20)]
    assert starts(venue.requests_to(KLINES)) == [
        page[0],
        *[page[1]] * 3,
        *[page[2]] * 4,
        *[page[3]] * 3,
    ]
    assert sleeps == [BACKOFF, 2 * BACKOFF, BACKOFF, 2 * BACKOFF, 4 * BACKOFF, BACKOFF, 2 * BACKOFF]
    assert venue.pending(KLINES) == 0


def test_backoff_doubles_up_to_its_cap(
    venue: FakeBinance, tmp_path: Path, clock: FixedClock, sleeps: list[float]
) -> None:
    config = make_config(venue, tmp_path, max_retries=5)
    venue.script(KLINES, *[ServerError(502)] * 5)
    with CcxtHistory(config, clock=clock, sleep=sleeps.append) as history:
        history.fetch("BTC/USDT", limit=10)
    assert sleeps == [BACKOFF, 2 * BACKOFF, 4 * BACKOFF, 4 * BACKOFF, 4 * BACKOFF]


def test_retry_bound_exceeded_raises_and_keeps_only_whole_pages(
    venue: FakeBinance, tmp_path: Path, clock: FixedClock, sleeps: list[float]
) -> None:
    config = make_config(venue, tmp_path, max_retries=2)
    venue.script(KLINES, None, *[ServerError(503)] * 3)
    with CcxtHistory(config, clock=clock, sleep=sleeps.append) as history:
        with pytest.raises(ExchangeDataError, match=r"failed 3 times.*503.*try again later"):
            history.fetch("BTC/USDT", limit=170)
    assert sleeps == [BACKOFF, 2 * BACKOFF]
    assert len(venue.requests_to(KLINES)) == 4
    files = sorted(p.name for p in (config.cache_dir / "binance").iterdir())
    assert files == ["BTC_USDT-1h.parquet"]  # no temporary file left behind
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        kept = cache_of(config).load(KEY)
    assert kept.coverage == Coverage(((END - 170 * HOUR, END - 120 * HOUR),))
    pd.testing.assert_frame_equal(
        kept.frame, expected(venue, END - 170 * HOUR, END - 120 * HOUR), check_freq=False
    )
    venue.clear()
    with CcxtHistory(config, clock=clock, sleep=sleeps.append) as history:
        bars = history.fetch("BTC/USDT", limit=170)  # resumes where it stopped
    assert_bars(bars, expected(venue, END - 170 * HOUR, END))
    assert asked(venue)[0][0] == END - 120 * HOUR


def test_exchange_refusal_is_not_retried(
    history: CcxtHistory, venue: FakeBinance, sleeps: list[float]
) -> None:
    venue.script(
        KLINES, Canned(binance_error(400, -1100, "Illegal characters found in a parameter."))
    )
    with pytest.raises(ExchangeDataError, match="not retried"):
        history.fetch("BTC/USDT", limit=10)
    assert sleeps == []
    assert len(venue.requests_to(KLINES)) == 1


def test_second_identical_call_asks_the_exchange_nothing(
    config: DataConfig, venue: FakeBinance, clock: FixedClock
) -> None:
    with CcxtHistory(config, clock=clock) as history:
        first = history.fetch("BTC/USDT", limit=120)
    venue.clear()
    with CcxtHistory(config, clock=clock) as history:  # a new process, same cache directory
        second = history.fetch("BTC/USDT", limit=120)
    assert venue.requests == []
    pd.testing.assert_frame_equal(first, second)


def test_later_call_asks_only_for_the_new_bars(
    history: CcxtHistory, venue: FakeBinance, clock: FixedClock
) -> None:
    history.fetch("BTC/USDT", limit=100)
    venue.clear()
    clock.advance(5 * HOUR * 1_000_000)
    bars = history.fetch("BTC/USDT", limit=100)
    assert_bars(bars, expected(venue, END - 95 * HOUR, END + 5 * HOUR))
    assert asked(venue) == [(END, END + 5 * HOUR)]
    assert venue.requests_to("/api/v3/exchangeInfo") == []  # markets stay loaded


def test_reaching_further_back_asks_only_for_the_older_range(
    history: CcxtHistory, venue: FakeBinance
) -> None:
    history.fetch("BTC/USDT", limit=100)
    venue.clear()
    bars = history.fetch("BTC/USDT", since=END - 260 * HOUR, limit=None)
    assert_bars(bars, expected(venue, END - 260 * HOUR, END))
    ranges = asked(venue)
    assert ranges[0][0] == END - 260 * HOUR
    assert ranges[-1][1] == END - 100 * HOUR
    assert all(END - 260 * HOUR <= a < b <= END - 100 * HOUR for a, b in ranges)


def test_cached_bars_count_towards_a_since_and_limit_request(
    history: CcxtHistory, venue: FakeBinance
) -> None:
    history.fetch("BTC/USDT", limit=20)
    venue.clear()
    bars = history.fetch("BTC/USDT", since=END - 50 * HOUR, limit=40)
    assert_bars(bars, expected(venue, END - 50 * HOUR, END - 10 * HOUR))
    assert asked(venue) == [(END - 50 * HOUR, END - 20 * HOUR)]


def test_outage_is_kept_as_a_gap_and_never_asked_again(
    history: CcxtHistory, venue: FakeBinance, caplog: pytest.LogCaptureFixture
) -> None:
    venue.add_outage(END - 60 * HOUR, END - 50 * HOUR)
    with caplog.at_level(logging.WARNING):
        bars = history.fetch("BTC/USDT", limit=100)
    assert len(bars) == 90
    assert_bars(bars, expected(venue, END - 100 * HOUR, END))
    gaps = check(bars).gaps
    assert gaps is not None
    assert [g.missing for g in gaps.missing] == [10]
    assert "1 gap, 10 bars missing" in caplog.text
    venue.clear()
    again = history.fetch("BTC/USDT", since=END - 150 * HOUR, limit=None)
    assert all(b <= END - 100 * HOUR for _, b in asked(venue))  # only the older range
    assert len(again) == 140
    venue.clear()
    history.fetch("BTC/USDT", limit=100)
    assert venue.requests == []


def test_forming_bar_is_never_returned_nor_cached(
    history: CcxtHistory, venue: FakeBinance, clock: FixedClock, config: DataConfig
) -> None:
    venue.add_outage(END - 3 * HOUR, END - 2 * HOUR)  # so the last page reaches the forming bar
    bars = history.fetch("BTC/USDT", since=END - 10 * HOUR, limit=None)
    last = venue.requests_to(KLINES)[-1]
    sent = venue.klines("BTCUSDT", "1h", start=last.int("startTime"), limit=last.int("limit") or 0)
    forming = [row for row in sent if row[0] == END]
    assert forming, "the venue served the forming bar"
    assert bars.index[-1] == pd.Timestamp(END - HOUR, unit="ms", tz="UTC")
    assert cache_of(config).load(KEY).frame.index[-1] == bars.index[-1]
    clock.set(pd.Timestamp("2024-03-01T11:00Z").value)  # the 10:00 bar has just closed
    venue.clear()
    later = history.fetch("BTC/USDT", since=END - 10 * HOUR, limit=None)
    assert asked(venue) == [(END, END + HOUR)]
    assert later.index[-1] == pd.Timestamp(END, unit="ms", tz="UTC")
    final = frame_of(venue.closed_klines("BTC/USDT", "1h", END, END + HOUR))
    assert later.iloc[-1].tolist() == final.iloc[0].tolist()
    assert later.iloc[-1].tolist() != frame_of(forming).iloc[0].tolist()


def test_overlapping_pages_are_deduplicated(history: CcxtHistory, venue: FakeBinance) -> None:
    venue.script(KLINES, None, Overlap(3), Overlap(7), None)
    bars = history.fetch("BTC/USDT", limit=170)
    assert bars.index.is_unique
    assert_bars(bars, expected(venue, END - 170 * HOUR, END))


def test_bad_symbol_is_a_user_error_naming_close_symbols(
    history: CcxtHistory, config: DataConfig
) -> None:
    with pytest.raises(UserInputError, match=r"no market 'BTC/USDX'.*BTC/USDT"):
        history.fetch("BTC/USDX", limit=10)
    assert not config.cache_dir.exists() or not any(config.cache_dir.rglob("*.parquet"))


def test_impossible_bars_raise_and_are_not_cached(
    history: CcxtHistory, venue: FakeBinance, config: DataConfig
) -> None:
    venue.script(KLINES, BadField(row=2, field=2, value="1.00"))  # high far below open
    with pytest.raises(DataValidationError, match="high"):
        history.fetch("BTC/USDT", limit=10)
    assert not cache_of(config).path(KEY).exists()


def test_corrupt_cache_is_reported_and_rebuilt(
    history: CcxtHistory, venue: FakeBinance, config: DataConfig
) -> None:
    history.fetch("BTC/USDT", limit=30)
    path = cache_of(config).path(KEY)
    path.write_bytes(path.read_bytes()[:100])
    venue.clear()
    with pytest.warns(CacheWarning, match="rebuilt"):
        bars = history.fetch("BTC/USDT", limit=30)
    assert_bars(bars, expected(venue, END - 30 * HOUR, END))
    assert asked(venue) == [(END - 30 * HOUR, END)]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert cache_of(config).load(KEY).coverage == Coverage(((END - 30 * HOUR, END),))


def test_cache_inconsistent_with_its_coverage_is_not_trusted(
    history: CcxtHistory, venue: FakeBinance, config: DataConfig
) -> None:
    history.fetch("BTC/USDT", limit=30)
    cache = cache_of(config)
    cached = cache.load(KEY)
    cache.save(CachedBars(KEY, cached.frame, Coverage(((END - 10 * HOUR, END),))))
    with pytest.warns(CacheWarning, match="outside the recorded coverage"):
        bars = history.fetch("BTC/USDT", limit=30)
    assert_bars(bars, expected(venue, END - 30 * HOUR, END))


def ms(text: str) -> int:
    return int(pd.Timestamp(text).value // 1_000_000)


@pytest.mark.parametrize(
    ("since", "limit", "start", "count"),
    [
        ("2024-02-20T00:00Z", 30, ms("2024-02-20T00:00Z"), 30),
        (ms("2024-02-27T00:00Z"), None, ms("2024-02-27T00:00Z"), 82),
        (pd.Timestamp("2024-02-28T05:30", tz="Europe/Paris"), 5, ms("2024-02-28T05:00Z"), 5),
        ("2024-02-29 23:10", 4, ms("2024-03-01T00:00Z"), 4),  # naive means UTC; rounds up
        ("2024-03-01T08:00Z", 500, ms("2024-03-01T08:00Z"), 2),  # now comes first
        ("2022-06-01", 24, ms("2023-01-01T00:00Z"), 24),  # before the listing
        ("2024-03-02", 10, 0, 0),  # in the future
    ],
)
def test_since_and_limit(
    history: CcxtHistory,
    venue: FakeBinance,
    since: int | str | pd.Timestamp,
    limit: int | None,
    start: int,
    count: int,
) -> None:
    bars = history.fetch("BTC/USDT", since=since, limit=limit)
    assert len(bars) == count
    assert bars.attrs == {"symbol": "BTC/USDT", "timeframe": "1h"}
    if count:
        assert_bars(bars, expected(venue, start, start + count * HOUR))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"limit": 0}, "positive number"),
        ({"limit": True}, "positive number"),
        ({"since": "not a date"}, "not a date"),
        ({"since": 1_709_000_000_000_000}, "epoch milliseconds"),
        ({"since": 1.5e12}, "epoch milliseconds"),
        ({"timeframe": "7m"}, "no 7m bars"),
        ({"timeframe": "1x"}, "not understood"),
        ({"exchange": "binanse"}, "did you mean binance"),
    ],
)
def test_bad_arguments_are_user_errors(
    history: CcxtHistory, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UserInputError, match=message):
        history.fetch("BTC/USDT", **kwargs)


def test_unknown_api_url_key_is_refused(
    venue: FakeBinance, tmp_path: Path, clock: FixedClock
) -> None:
    config = make_config(venue, tmp_path, api_urls={"publik": venue.url})
    with CcxtHistory(config, clock=clock) as history, pytest.raises(UserInputError, match="publik"):
        history.fetch("BTC/USDT", limit=5)


def test_a_ready_exchange_is_used_as_given(history: CcxtHistory, venue: FakeBinance) -> None:
    exchange = ccxt.binance({"options": {"fetchMarkets": {"types": ["spot"]}}})
    exchange.urls["api"] = {**exchange.urls["api"], **venue.api_urls}
    try:
        bars = history.fetch("ETH/USDT", limit=12, exchange=exchange)
    finally:
        exchange.close()
    assert len(bars) == 12
    assert bars.attrs["symbol"] == "ETH/USDT"
    assert history.cache.path(CacheKey("binance", "ETH/USDT", parse_timeframe("1h"))).exists()


def test_fake_venue_shuts_down_cleanly_even_with_a_stalled_request(clock: FixedClock) -> None:
    before = set(threading.enumerate())
    with FakeBinance(clock) as fake:
        fake.script(KLINES, Stall(30.0))
        url = f"{fake.url}{KLINES}?symbol=BTCUSDT&interval=1h&limit=2"
        with pytest.raises(TimeoutError):
            urllib.request.urlopen(url, timeout=0.2)  # noqa: S310 - a loopback URL
        with urllib.request.urlopen(fake.url + "/api/v3/time", timeout=5) as reply:  # noqa: S310
            assert json.loads(reply.read()) == {"serverTime": NOW.value // 1_000_000}
    assert set(threading.enumerate()) == before
    assert fake.paths() == [KLINES, "/api/v3/time"]
    assert not fake.errors
