"""Closed OHLCV bars from a ccxt exchange, paged, retried and cached in Parquet."""

from __future__ import annotations

import contextlib
import difflib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from numbers import Integral
from typing import Any, Final, TypeVar

import ccxt
import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.config.sections import DataConfig
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import (
    DataValidationError,
    ExchangeDataError,
    ReinforceTradeError,
    UserInputError,
)
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data.cache import CachedBars, CacheKey, Coverage, HistoryCache, empty_bars
from reinforcetrade.data.schema import make_ohlcv, with_meta
from reinforcetrade.data.validate import check, validate

log = logging.getLogger(__name__)

T = TypeVar("T")
Progress = Callable[[int, int | None], None]
_NS_PER_MS: Final[int] = 1_000_000
#: Errors ccxt raises when a payload is not what it expected: a malformed response.
_PARSE_ERRORS: Final = (TypeError, ValueError, KeyError, IndexError, AttributeError)
#: Epoch milliseconds beyond this are surely micro- or nanoseconds (year 5138).
_MAX_SINCE_MS: Final[int] = 10**14


class _MalformedPage(Exception):
    """A response that is not a list of [ms, open, high, low, close, volume] rows of numbers."""


def _iso(ms: int) -> str:
    return pd.Timestamp(ms, unit="ms", tz="UTC").strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class _Grid:
    """Bar open times of a timeframe, in epoch milliseconds (calendar months included).

    >>> months, mar15 = _Grid(parse_timeframe("1M")), 1_710_496_800_000  # 2024-03-15T10:00Z
    >>> _iso(months.floor(mar15)), months.count(1_704_067_200_000, mar15)  # from 2024-01-01
    ('2024-03-01T00:00:00Z', 3)
    """

    tf: Timeframe

    def floor(self, ms: int) -> int:
        """Return the open of the bar that contains `ms`."""
        return self.tf.floor(ms * _NS_PER_MS) // _NS_PER_MS

    def add(self, ms: int, bars: int) -> int:
        """Return the open `bars` bars after the bar containing `ms` (before, if negative)."""
        return self.tf.shift(ms * _NS_PER_MS, bars) // _NS_PER_MS

    def ceil(self, ms: int) -> int:
        """Return the first bar open at or after `ms`."""
        return self.tf.ceil(ms * _NS_PER_MS) // _NS_PER_MS

    def count(self, start: int, end: int) -> int:
        """Return the number of bar opens in ``[start, end)`` for grid-aligned `start`."""
        return self.tf.bars_between(start * _NS_PER_MS, end * _NS_PER_MS)


@dataclass(frozen=True, slots=True)
class _Window:
    """The bars a call wants: those opening in ``[start, end)``, only the first `want` if set."""

    start: int
    end: int
    want: int | None


def _since_ms(since: object) -> int:
    """Return `since` (epoch ms, ISO text, Timestamp; naive means UTC) as epoch milliseconds."""
    if isinstance(since, bool) or not isinstance(since, Integral | str | datetime):
        raise UserInputError(
            f"since={since!r}: give epoch milliseconds, an ISO date or a Timestamp"
        )
    ms = int(since) if isinstance(since, Integral) else _parse_date(since)
    if not 0 <= ms < _MAX_SINCE_MS:
        raise UserInputError(
            f"since={since!r} is not a date after 1970 in epoch milliseconds "
            "(e.g. 1704067200000 for 2024-01-01)"
        )
    return ms


def _parse_date(since: str | datetime) -> int:
    """Return an ISO string or datetime (naive means UTC) as epoch milliseconds."""
    try:
        stamp = pd.Timestamp(since)
    except ValueError as exc:
        raise UserInputError(
            f"since={since!r} is not a date: use ISO-8601, e.g. '2024-01-01'"
        ) from exc
    if pd.isna(stamp):
        raise UserInputError(f"since={since!r} is not a date")
    stamp = stamp.tz_localize("UTC") if stamp.tz is None else stamp.tz_convert("UTC")
    return int(stamp.value // _NS_PER_MS)


def _window(grid: _Grid, now_ms: int, since: object, limit: object) -> _Window:
    """Return the bars asked for; only bars opening before the forming bar's open are closed."""
    if limit is not None and (
        isinstance(limit, bool) or not isinstance(limit, Integral) or int(limit) < 1
    ):
        raise UserInputError(f"limit={limit!r}: give a positive number of bars, or None for all")
    end = grid.floor(now_ms)
    if since is None:
        start = grid.ceil(0) if limit is None else grid.add(end, -int(limit))
        return _Window(start, end, None)
    start = grid.ceil(_since_ms(since))
    return _Window(start, max(start, end), None if limit is None else int(limit))


def _numeric(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    return isinstance(value, str) and value.replace(".", "", 1).isdigit()


def _check_body(body: object) -> None:
    """Refuse a raw answer that ccxt would quietly read as fewer candles than it holds.

    ccxt turns unparsable JSON into nothing, and drops rows whose time is not a number when
    `since` is given: either would look like an exchange outage and be cached as one.
    """
    if not isinstance(body, str):
        return
    if not body.strip():
        raise _MalformedPage("empty response")
    try:
        data = json.loads(body)
    except ValueError as exc:
        raise _MalformedPage(f"unparsable JSON ({exc})") from exc
    if isinstance(data, list) and all(isinstance(row, list) for row in data):
        for i, row in enumerate(data):
            if not row or not _numeric(row[0]):
                raise _MalformedPage(f"candle {i} has no numeric time: {row[:1]!r}")


def _parse_page(raw: object) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Return open times (ms) and OHLCV values of a fetch_ohlcv answer, or raise _MalformedPage."""
    if not isinstance(raw, list):
        raise _MalformedPage(f"expected a list of candles, got {type(raw).__name__}")
    for i, row in enumerate(raw):
        if not isinstance(row, list | tuple) or len(row) < 6:
            raise _MalformedPage(f"candle {i} is not [time, open, high, low, close, volume]")
        if isinstance(row[0], bool) or not isinstance(row[0], int):
            raise _MalformedPage(f"candle {i} has no integer timestamp: {row[0]!r}")
        for value in row[1:6]:
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not math.isfinite(value)
            ):
                raise _MalformedPage(f"candle {i} holds a non-numeric value {value!r}")
    ts = np.array([row[0] for row in raw], dtype=np.int64)
    values = np.array([row[1:6] for row in raw], dtype=np.float64).reshape(-1, 5)
    order = np.argsort(ts, kind="stable")
    return ts[order], values[order]


def build_exchange(
    config: DataConfig, exchange_id: str, credentials: Mapping[str, str] | None = None
) -> Any:
    """Return a ccxt exchange by id, rate-limited, with `config`'s timeout and URL overrides.

    `credentials` (apiKey, secret, password) make it a trading client.
    """
    _check_exchange_id(exchange_id)
    options: dict[str, Any] = {}
    if exchange_id == "binance":  # spot markets only: one exchangeInfo request, spot endpoints
        options["fetchMarkets"] = {"types": ["spot"]}
    built = getattr(ccxt, exchange_id)(
        {"enableRateLimit": True, "timeout": config.request_timeout_ms, "options": options,
         **(credentials or {})}
    )  # fmt: skip
    api = built.urls.get("api")
    unknown = sorted(set(config.api_urls) - set(api if isinstance(api, dict) else ()))
    if unknown:
        built.close()
        known = ", ".join(sorted(api)) if isinstance(api, dict) else "none"
        raise UserInputError(
            f"data.api_urls: {', '.join(unknown)} not in {exchange_id}.urls['api'] "
            f"(its entries: {known})"
        )
    if config.api_urls:
        built.urls["api"] = {**api, **config.api_urls}
    return built


class CcxtHistory:
    """Fetch closed OHLCV bars from a ccxt exchange through a Parquet cache under config.cache_dir.

    The clock says what "now" is (a bar is closed once open + timeframe ≤ now); `sleep` waits
    between retries. Exchanges built from an id are owned and closed by `close()` (or `with`).
    """

    def __init__(
        self,
        config: DataConfig,
        *,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.config = config
        self.cache = HistoryCache(config.cache_dir)
        self._clock: Clock = clock or WallClock()
        self._sleep = sleep
        self._owned: dict[str, Any] = {}

    def __enter__(self) -> CcxtHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the HTTP sessions of the exchanges this object built."""
        for exchange in self._owned.values():
            exchange.close()
        self._owned.clear()

    def fetch(
        self,
        symbol: str,
        *,
        timeframe: str = "1h",
        limit: int | None = 5000,
        since: int | str | pd.Timestamp | None = None,
        exchange: str | ccxt.Exchange = "binance",
        progress: Progress | None = None,
    ) -> pd.DataFrame:
        """Return closed bars of `symbol` as a validated contract frame (attrs symbol, timeframe).

        - ``since=None, limit=N``: the closed bars of the last N bar periods before now (fewer
          than N rows when the exchange had an outage in them).
        - ``since=T, limit=N``: the first N closed bars opening at or after T (fewer if now comes
          first); ``since=T, limit=None``: every closed bar from T to now;
          ``since=None, limit=None``: everything the exchange has.
        - `since` is epoch milliseconds, an ISO-8601 string (naive means UTC) or a Timestamp.
          A bar is closed when open + timeframe ≤ clock now; the forming bar is never returned
          nor cached. An empty frame means the exchange has no closed bar in the range.

        Only ranges never asked before are requested, page by page (`config.page_limit` bars,
        advancing past the last bar received) until now or until the exchange has nothing more;
        bars missing inside a range already asked are exchange outages, kept as gaps. Network
        errors and malformed answers are retried with exponential backoff, at most
        `config.max_retries` times per request, then `ExchangeDataError` is raised; the pages
        already received stay cached, so a later call resumes. An unknown symbol or exchange is
        a `UserInputError`; impossible bars raise `DataValidationError` and are not cached.
        `exchange` is a ccxt id (built with `config.api_urls` overriding ``urls['api']``) or a
        ready ccxt exchange, used as given. `progress(fetched, expected)` is called after each
        page with the bars fetched so far in this call and an upper bound on the bars it will
        fetch (None when unbounded); a call served from the cache alone makes no call.
        """
        tf = parse_timeframe(timeframe)
        grid = _Grid(tf)
        window = _window(grid, self._clock.now_ns() // _NS_PER_MS, since, limit)
        exchange_id = (
            _check_exchange_id(exchange) if isinstance(exchange, str) else str(exchange.id)
        )
        key = CacheKey(exchange_id, symbol, tf)
        cached = self.cache.load(key)
        run = _Run(self, exchange, key, grid, progress)
        run.expected = _expected(cached, grid, window) if window.start > grid.ceil(0) else None
        got = 0
        try:
            for start, end, covered in cached.coverage.segments(window.start, window.end):
                if window.want is not None and got >= window.want:
                    break
                want = None if window.want is None else window.want - got
                got += cached.count(start, end) if covered else run.fill(start, end, want)
        except (ExchangeDataError, KeyboardInterrupt):
            with contextlib.suppress(DataValidationError):
                self._store(cached, run)  # complete pages are good data: a later call resumes
            raise
        cached = self._store(cached, run)
        log.info("%s: %d bars fetched in %d requests", key.label(), run.fetched, run.requests)
        return self._result(cached, window)

    def _store(self, cached: CachedBars, run: _Run) -> CachedBars:
        """Merge the newly fetched bars into the cache file (after checking them)."""
        if not run.coverage.spans and not cached.rebuild:
            return cached
        bars = run.frame()
        if not bars.empty:
            report = check(bars, timeframe=cached.key.timeframe, source=cached.key.label())
            if not report.ok:
                raise report.error()
        merged = cached.merge(bars, run.coverage)
        self.cache.save(merged)
        return merged

    def _result(self, cached: CachedBars, window: _Window) -> pd.DataFrame:
        frame = cached.between(window.start, window.end)
        if window.want is not None:
            frame = frame.iloc[: window.want]
        if frame.empty:
            return empty_bars(cached.key)
        key = cached.key
        out = validate(
            frame, timeframe=key.timeframe, calendar=self.config.calendar, source=key.label()
        )
        return with_meta(out, symbol=key.symbol, timeframe=key.timeframe)

    def exchange(self, exchange: str | ccxt.Exchange) -> Any:
        """Return a ready exchange: `exchange` itself, or one built (once) from its ccxt id."""
        if not isinstance(exchange, str):
            return exchange
        if exchange not in self._owned:
            self._owned[exchange] = self._build(exchange)
        return self._owned[exchange]

    def _build(self, exchange_id: str) -> Any:
        return build_exchange(self.config, exchange_id)

    def call(
        self, exchange: Any, what: str, request: Callable[[], T], *, symbol: str | None = None
    ) -> T:
        """Run one request, retrying network errors and malformed answers with backoff."""
        retries, attempt = self.config.max_retries, 0
        while True:
            try:
                return request()
            except ccxt.ExchangeError as exc:  # the exchange said no: asking again will not help
                raise _refusal(exchange, what, exc, symbol) from exc
            except (ccxt.OperationFailed, _MalformedPage) as exc:
                if attempt == retries:
                    raise ExchangeDataError(
                        f"{exchange.id} {what} failed {retries + 1} times "
                        f"(last: {type(exc).__name__}: {_short(exc)}) — the exchange is down, "
                        "rate-limiting or unreachable: try again later, check the network or "
                        "data.api_urls, or raise data.max_retries / data.request_timeout_ms"
                    ) from exc
                delay = min(
                    self.config.retry_backoff_seconds * 2**attempt,
                    self.config.retry_backoff_max_seconds,
                )
                log.warning(
                    "%s %s: %s; retry %d in %.2fs", exchange.id, what, exc, attempt + 1, delay
                )
                self._sleep(delay)
                attempt += 1


def _check_exchange_id(exchange_id: str) -> str:
    """Return the id if ccxt knows it, else raise a UserInputError naming close ones."""
    if exchange_id not in ccxt.exchanges:
        close = difflib.get_close_matches(exchange_id.lower(), ccxt.exchanges, n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else " (see ccxt.exchanges)"
        raise UserInputError(f"unknown exchange {exchange_id!r}{hint}")
    return exchange_id


def _short(exc: BaseException, size: int = 240) -> str:
    text = " ".join(str(exc).split())
    return text if len(text) <= size else text[: size - 1] + "…"


def _bad_symbol(exchange: Any, symbol: str) -> UserInputError:
    """Return the error for a symbol the exchange does not list, naming close ones."""
    symbols = list(getattr(exchange, "symbols", None) or ())
    close = difflib.get_close_matches(symbol.upper(), symbols, n=5, cutoff=0.5)
    hint = f"; close matches: {', '.join(close)}" if close else ""
    return UserInputError(
        f"{exchange.id} has no market {symbol!r}{hint} (symbols are BASE/QUOTE, e.g. 'BTC/USDT')"
    )


def _refusal(exchange: Any, what: str, exc: Exception, symbol: str | None) -> ReinforceTradeError:
    """Return the error for a request the exchange refused (not worth retrying)."""
    if isinstance(exc, ccxt.BadSymbol) and symbol is not None:
        return _bad_symbol(exchange, symbol)
    if isinstance(exc, ccxt.AuthenticationError):
        return UserInputError(
            f"{exchange.id} refused {what}: {_short(exc)} — check the API keys and data.api_urls "
            "(public history needs no keys)"
        )
    return ExchangeDataError(
        f"{exchange.id} rejected {what}: {_short(exc)} — not retried, as it would fail again; "
        "check the symbol, timeframe and dates"
    )


def _expected(cached: CachedBars, grid: _Grid, window: _Window) -> int:
    """Return an upper bound on the bars still to fetch: the grid slots not yet covered."""
    slots = sum(grid.count(s, e) for s, e in cached.coverage.missing(window.start, window.end))
    return slots if window.want is None else min(slots, window.want)


class _Run:
    """One fetch call's state: the exchange (readied on first use), new bars and coverage."""

    def __init__(
        self,
        history: CcxtHistory,
        exchange: Any,
        key: CacheKey,
        grid: _Grid,
        progress: Progress | None,
    ) -> None:
        self.history, self.key, self.grid, self.progress = history, key, grid, progress
        self._exchange_ref = exchange
        self._exchange: Any = None
        self.coverage = Coverage()
        self.expected: int | None = None
        self.fetched = self.requests = 0
        self._ts: list[npt.NDArray[np.int64]] = []
        self._values: list[npt.NDArray[np.float64]] = []

    def exchange(self) -> Any:
        """Return the exchange with markets loaded, after checking symbol and timeframe."""
        if self._exchange is None:
            exchange = self.history.exchange(self._exchange_ref)
            if not exchange.has.get("fetchOHLCV"):
                raise UserInputError(f"{exchange.id} offers no OHLCV history through ccxt")
            self.history.call(
                exchange, f"load_markets for {self.key.symbol!r}", exchange.load_markets
            )
            try:
                exchange.market(self.key.symbol)
            except ccxt.BadSymbol as exc:
                raise _bad_symbol(exchange, self.key.symbol) from exc
            tf = self.key.timeframe.text
            if exchange.timeframes and tf not in exchange.timeframes:
                offered = ", ".join(exchange.timeframes)
                raise UserInputError(f"{exchange.id} has no {tf} bars; it offers {offered}")
            self._exchange = exchange
        return self._exchange

    def page_size(self) -> int:
        """Return the bars to ask per request: config.page_limit, capped by the exchange's max."""
        features = getattr(self.exchange(), "features", None) or {}
        cap = ((features.get("spot") or {}).get("fetchOHLCV") or {}).get("limit")
        limit = self.history.config.page_limit
        return min(limit, int(cap)) if isinstance(cap, int) and cap > 0 else limit

    def request(
        self, since: int, limit: int
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
        """Ask for up to `limit` bars from `since` (retried); return open times and values."""
        exchange = self.exchange()
        symbol, tf = self.key.symbol, self.key.timeframe.text
        what = f"fetch_ohlcv('{symbol}', {tf}, since={_iso(since)}, limit={limit})"

        def attempt() -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
            self.requests += 1
            exchange.last_http_response = None
            try:
                raw = exchange.fetch_ohlcv(symbol, tf, since=since, limit=limit)
            except _PARSE_ERRORS as exc:  # ccxt choked on the payload
                raise _MalformedPage(f"unparsable response ({type(exc).__name__}: {exc})") from exc
            if getattr(exchange, "enableLastHttpResponse", False):
                _check_body(exchange.last_http_response)
            return _parse_page(raw)

        return self.history.call(exchange, what, attempt, symbol=symbol)

    def fill(self, start: int, end: int, want: int | None) -> int:
        """Fetch bars opening in ``[start, end)`` (at most `want`), recording what was covered."""
        cursor, got = start, 0
        while cursor < end and (want is None or got < want):
            ask = min(self.page_size(), self.grid.count(cursor, end))
            if want is not None:
                ask = min(ask, want - got)
            ts, values = self.request(cursor, ask)
            inside = (ts >= cursor) & (ts < end)  # drops overlap with earlier pages, and the future
            exhausted = not inside.any() or bool((ts >= end).any())
            ts, values = ts[inside], values[inside]
            if want is not None and ts.size > want - got:  # the exchange ignored the limit
                ts, values, exhausted = ts[: want - got], values[: want - got], False
            reached = self.grid.add(int(ts[-1]), 1) if ts.size else cursor
            reached = end if exhausted else reached
            self.coverage = self.coverage.add(cursor, reached)
            self._ts.append(ts)
            self._values.append(values)
            got += int(ts.size)
            self.fetched += int(ts.size)
            cursor = reached
            if self.progress is not None:
                self.progress(self.fetched, self.expected)
        return got

    def frame(self) -> pd.DataFrame:
        """Return the bars fetched by this call, de-duplicated (the last copy wins), sorted."""
        if not self._ts:
            return empty_bars(self.key)
        ts = np.concatenate(self._ts)
        values = np.concatenate(self._values).reshape(-1, 5)
        order = np.argsort(ts, kind="stable")
        ts, values = ts[order], values[order]
        keep = np.ones(ts.size, dtype=np.bool_)
        keep[:-1] = ts[:-1] != ts[1:]
        ts, values = ts[keep], values[keep]
        return make_ohlcv(
            ts * _NS_PER_MS, *values.T, symbol=self.key.symbol, timeframe=self.key.timeframe
        )
