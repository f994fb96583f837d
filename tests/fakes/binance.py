"""A fake Binance spot REST API, in Binance's own wire format, for the real ccxt client.

Serves what ccxt's `binance` needs for spot markets and history: ``GET /api/v3/ping``,
``/api/v3/time``, ``/api/v3/exchangeInfo``, ``/api/v3/klines``, ``/api/v3/ticker/price``,
``/api/v3/ticker/24hr`` and ``/api/v3/depth``. Bars follow a seeded random walk per market and
interval, on Binance's grid, from each market's listing time to the clock's "now"; the bar still
forming at now is served with partial values, as Binance does. Outage ranges have no bars at
all. Point ccxt at it with ``urls['api'].update(fake.api_urls)`` (market data only) or
``fake.ccxt_urls`` (every Binance API, so that nothing reaches the internet).

Scripts are per path (``"/api/v3/klines"``) or per method and path (``"POST /api/v3/order"``,
played first). Besides the generic faults of `fakes`, Binance's own: `RateLimited` (429/418),
`Reject` (any ``{"code", "msg"}`` error), `Maintenance` (503), `BackendTimeout` (recorded, then
503 -1007), `AcceptThenStall` (recorded, answer late) and `DropBefore` (connection reset).
The trading venue (`binance_trading.py`) builds on this class.

    clock = FixedClock(...)
    with FakeBinance(clock, outages=[(t0, t1)]) as venue:
        config = DataConfig(api_urls=venue.api_urls, ...)
        venue.script("/api/v3/klines", RateLimited(), None, Overlap(3))
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Final
from urllib.parse import parse_qsl

import numpy as np
import numpy.typing as npt

from fakes import DROPPED, Answer, FakeServer, Reply, Request
from reinforcetrade.core.clock import Clock

HOUR_MS: Final[int] = 3_600_000
INTERVALS_MS: Final[dict[str, int]] = {
    "1s": 1_000, "1m": 60_000, "3m": 180_000, "5m": 300_000, "15m": 900_000, "30m": 1_800_000,
    "1h": HOUR_MS, "2h": 2 * HOUR_MS, "4h": 4 * HOUR_MS, "6h": 6 * HOUR_MS, "8h": 8 * HOUR_MS,
    "12h": 12 * HOUR_MS, "1d": 24 * HOUR_MS, "3d": 72 * HOUR_MS, "1w": 168 * HOUR_MS,
}  # fmt: skip
WEEK_ORIGIN_MS: Final[int] = 4 * 24 * HOUR_MS  # weekly bars open on Mondays (1970-01-05)
DEFAULT_LIMIT: Final[int] = 500
MAX_LIMIT: Final[int] = 1000
RATE_LIMIT_MSG: Final[str] = (
    "Too many requests; current limit of IP(127.0.0.1) is 6000 requests per minute. "
    "Please use WebSocket Streams for live updates to avoid polling the API."
)
MAINTENANCE_MSG: Final[str] = "System is under maintenance."
BACKEND_TIMEOUT_MSG: Final[str] = (
    "Timeout waiting for response from backend server. Send status unknown; "
    "execution status unknown."
)
#: Every entry of ccxt's binance ``urls['api']`` (but 'ws'), by the path it has on Binance.
API_PATHS: Final[dict[str, str]] = {
    "public": "/api/v3", "private": "/api/v3", "v1": "/api/v1",
    "sapi": "/sapi/v1", "sapiV2": "/sapi/v2", "sapiV3": "/sapi/v3", "sapiV4": "/sapi/v4",
    "fapiPublic": "/fapi/v1", "fapiPublicV2": "/fapi/v2", "fapiPublicV3": "/fapi/v3",
    "fapiPrivate": "/fapi/v1", "fapiPrivateV2": "/fapi/v2", "fapiPrivateV3": "/fapi/v3",
    "fapiData": "/futures/data", "dapiPublic": "/dapi/v1", "dapiPrivate": "/dapi/v1",
    "dapiPrivateV2": "/dapi/v2", "dapiData": "/futures/data", "eapiPublic": "/eapi/v1",
    "eapiPrivate": "/eapi/v1", "papi": "/papi/v1", "papiV2": "/papi/v2",
}  # fmt: skip
DEPTH_LIMITS: Final[tuple[int, ...]] = (5, 10, 20, 50, 100, 500, 1000, 5000)
#: The reply a fault returns to have the connection reset instead of answered.
F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class SpotMarket:
    """One spot market: assets, a starting price, and when it was listed (epoch ms)."""

    base: str
    quote: str
    price: float
    listed_ms: int = 1_672_531_200_000  # 2023-01-01T00:00Z

    @property
    def id(self) -> str:
        """Return Binance's market id, e.g. 'BTCUSDT'."""
        return self.base + self.quote

    @property
    def symbol(self) -> str:
        """Return ccxt's unified symbol, e.g. 'BTC/USDT'."""
        return f"{self.base}/{self.quote}"


DEFAULT_MARKETS: Final[tuple[SpotMarket, ...]] = (
    SpotMarket("BTC", "USDT", 42_000.0),
    SpotMarket("ETH", "USDT", 2_300.0),
)


def binance_error(status: int, code: int, msg: str) -> Reply:
    """Return Binance's error reply: ``{"code": -1121, "msg": "Invalid symbol."}``."""
    return Reply.json({"code": code, "msg": msg}, status=status)


def params_of(request: Request) -> dict[str, str]:
    """Return a request's parameters: the query string and a form-encoded body, merged."""
    form = dict(parse_qsl(request.body.decode())) if request.body else {}
    return {**request.query, **form}


@dataclass(frozen=True)
class RateLimited:
    """Answer 429 (or 418, an IP ban) with Binance's -1003 body and a Retry-After header."""

    retry_after: int = 1
    status: int = 429

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Refuse the request."""
        reply = binance_error(self.status, -1003, RATE_LIMIT_MSG)
        return replace(reply, headers=(("Retry-After", str(self.retry_after)),))


@dataclass(frozen=True)
class Reject:
    """Refuse the request with a Binance error, e.g. ``Reject(-1013, "Filter failure: LOT_SIZE")``.

    The venue never acts on it (the server's request log still lists it).
    """

    code: int
    msg: str
    status: int = 400

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Return the error without asking the venue."""
        return binance_error(self.status, self.code, self.msg)


@dataclass(frozen=True)
class Maintenance:
    """Answer 503 ``{"code": 1, "msg": "System is under maintenance."}``; the venue never acts."""

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Refuse the request."""
        return binance_error(503, 1, MAINTENANCE_MSG)


@dataclass(frozen=True)
class BackendTimeout:
    """Let the venue act on the request, then answer 503 -1007 ("execution status unknown")."""

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Act, then hide the outcome."""
        answer(request)
        return binance_error(503, -1007, BACKEND_TIMEOUT_MSG)


@dataclass(frozen=True)
class AcceptThenStall:
    """Let the venue act on the request at once, but send the answer `seconds` later.

    With `seconds` past the client's timeout the client gets a timeout although the venue
    has, say, recorded and filled the order. Cut short when the server shuts down.
    """

    seconds: float

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Act now, answer late."""
        reply = answer(request)
        server.wait(self.seconds)
        return reply


@dataclass(frozen=True)
class StallThenDrop:
    """Hold the request `seconds` without acting on it, then reset the connection.

    The client waits as if the venue were slow; the venue never records the order (the crash
    tests kill the client meanwhile: written in its journal, never at the venue).
    """

    seconds: float

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Wait, then drop the connection unanswered."""
        server.wait(self.seconds)
        return DROPPED


@dataclass(frozen=True)
class DropBefore:
    """Reset the connection without acting on the request (it is only in the request log)."""

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Drop the connection."""
        return DROPPED


@dataclass(frozen=True)
class Overlap:
    """Serve klines from `bars` bars before the asked startTime (pages that overlap)."""

    bars: int = 3

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Answer as if startTime were earlier."""
        start, step = request.int("startTime"), INTERVALS_MS.get(request.query.get("interval", ""))
        if start is None or step is None:
            return answer(request)
        query = {**request.query, "startTime": str(start - self.bars * step)}
        return answer(replace(request, query=query))


class PricePath:
    """Seeded random-walk bars of one market at one interval, made on demand from the listing."""

    CHUNK: Final[int] = 4096

    def __init__(self, seed: int, market: SpotMarket, step_ms: int) -> None:
        self._seed = (seed, zlib.crc32(market.id.encode()), step_ms)
        self._sigma = 0.004 * float(np.sqrt(step_ms / HOUR_MS))
        self._rows = np.empty((0, 5), dtype=np.float64)  # open, high, low, close, volume
        self._last = market.price

    def rows(self, index: I8) -> F8:
        """Return [open, high, low, close, volume] of the bars at `index` (0 = first bar)."""
        if index.size and int(index.max()) >= len(self._rows):
            self._extend(int(index.max()) + 1)
        return self._rows[index]

    def _extend(self, size: int) -> None:
        chunks = [self._rows]
        while sum(len(c) for c in chunks) < size:
            rng = np.random.default_rng([*self._seed, sum(len(c) for c in chunks) // self.CHUNK])
            close = np.round(
                self._last * np.exp(np.cumsum(rng.normal(0, self._sigma, self.CHUNK))), 2
            )
            open_ = np.concatenate(([self._last], close[:-1]))
            wick = np.abs(rng.normal(0, self._sigma / 2, (self.CHUNK, 2)))
            high = np.round(np.maximum(open_, close) * (1 + wick[:, 0]), 2)
            low = np.round(np.minimum(open_, close) * (1 - wick[:, 1]), 2)
            volume = np.round(rng.lognormal(3.0, 0.6, self.CHUNK), 5)
            chunks.append(np.column_stack([open_, high, low, close, volume]))
            self._last = float(close[-1])
        self._rows = np.concatenate(chunks)


def _forming(row: F8, fraction: float) -> F8:
    """Return a bar `fraction` of the way through its period: partial close, wicks and volume."""
    o, h, lo, c, v = row
    close = round(o + (c - o) * fraction, 2)
    high = round(max(o, close) + (h - max(o, c)) * fraction, 2)
    low = round(min(o, close) - (min(o, c) - lo) * fraction, 2)
    return np.array([o, high, low, close, round(v * fraction, 5)])


class FakeBinance(FakeServer):
    """Binance spot on 127.0.0.1: markets, server time and klines, with scripted faults."""

    def __init__(
        self,
        clock: Clock,
        *,
        markets: Sequence[SpotMarket] = DEFAULT_MARKETS,
        seed: int = 7,
        outages: Iterable[tuple[int, int]] = (),
    ) -> None:
        super().__init__()
        self.clock = clock
        self.markets = {m.id: m for m in markets}
        self.seed = seed
        self.outages: list[tuple[int, int]] = [(int(s), int(e)) for s, e in outages]
        self._paths: dict[tuple[str, int], PricePath] = {}
        self._paths_lock = threading.Lock()
        self.route("GET", "/api/v3/ping", lambda _: Reply.json({}))
        self.route("GET", "/api/v3/time", lambda _: Reply.json({"serverTime": self.now_ms}))
        self.route("GET", "/api/v3/exchangeInfo", self._exchange_info)
        self.route("GET", "/api/v3/klines", self._klines)
        self.route("GET", "/api/v3/ticker/price", self._ticker_price)
        self.route("GET", "/api/v3/ticker/24hr", self._ticker_24hr)
        self.route("GET", "/api/v3/depth", self._depth)

    @property
    def api_urls(self) -> dict[str, str]:
        """Return the ccxt ``urls['api']`` entries to override (DataConfig.api_urls)."""
        return {"public": f"{self.url}/api/v3"}

    @property
    def ccxt_urls(self) -> dict[str, Any]:
        """Return every ccxt binance ``urls['api']`` entry (but 'ws') pointed at this server."""
        return {name: self.url + path for name, path in API_PATHS.items()}

    @property
    def now_ms(self) -> int:
        """Return the venue's now (the shared clock) in epoch milliseconds."""
        return self.clock.now_ns() // 1_000_000

    def add_outage(self, start_ms: int, end_ms: int) -> None:
        """Have no bars opening in ``[start_ms, end_ms)``."""
        self.outages.append((int(start_ms), int(end_ms)))

    def last_price(self, symbol: str) -> float:
        """Return a market's last price (by Binance id): the close of its forming 1m bar."""
        rows = self.klines(symbol, "1m", limit=1)
        return float(str(rows[-1][4])) if rows else self.markets[symbol].price

    # -- market data -----------------------------------------------------------------------
    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[list[object]]:
        """Return kline rows as Binance sends them (the forming bar included, if reached)."""
        market = self.markets[symbol.replace("/", "")]
        step = INTERVALS_MS[interval]
        opens = self._opens(market, step, interval == "1w", start, end, limit)
        path = self._path(market, step)
        first = self._grid(market.listed_ms, step, interval == "1w", up=True)
        values = path.rows((opens - first) // step)
        now = self.now_ms
        rows: list[list[object]] = []
        for t, row in zip(opens.tolist(), values, strict=True):
            bar = row if t + step <= now else _forming(row, (now - t) / step)
            o, h, lo, c, v = (f"{x:.8f}" for x in bar)
            quote = f"{bar[4] * bar[3]:.8f}"
            half, half_quote = f"{bar[4] / 2:.8f}", f"{bar[4] * bar[3] / 2:.8f}"
            rows.append([t, o, h, lo, c, v, t + step - 1, quote, 100, half, half_quote, "0"])
        return rows

    def closed_klines(self, symbol: str, interval: str, start: int, end: int) -> list[list[object]]:
        """Return the closed bars opening in ``[start, end)``: what a client should end up with."""
        step = INTERVALS_MS[interval]
        end = min(end, self.now_ms - step + 1)
        count = max(0, -(-(end - start) // step))
        rows = self.klines(symbol, interval, start=start, end=end - 1, limit=max(count, 1))
        return [r for r in rows if isinstance(r[0], int) and start <= r[0] < end]

    def _path(self, market: SpotMarket, step: int) -> PricePath:
        with self._paths_lock:
            key = (market.id, step)
            if key not in self._paths:
                self._paths[key] = PricePath(self.seed, market, step)
            return self._paths[key]

    @staticmethod
    def _grid(ms: int, step: int, weekly: bool, *, up: bool) -> int:
        origin = WEEK_ORIGIN_MS if weekly else 0
        floor = origin + (ms - origin) // step * step
        return floor + step if up and floor < ms else floor

    def _opens(
        self,
        market: SpotMarket,
        step: int,
        weekly: bool,
        start: int | None,
        end: int | None,
        limit: int,
    ) -> I8:
        """Return the open times served: `limit` from `start` on, or the last `limit` up to `end`."""
        first = self._grid(market.listed_ms, step, weekly, up=True)
        last = self._grid(
            min(self.now_ms, end if end is not None else self.now_ms), step, weekly, up=False
        )
        span = limit + sum((e - s) // step + 1 for s, e in self.outages)  # slots to scan
        if start is not None:
            lo = max(first, self._grid(start, step, weekly, up=True))
            opens = np.arange(lo, min(last, lo + (span - 1) * step) + 1, step, dtype=np.int64)
            return self._without_outages(opens)[:limit]
        opens = np.arange(max(first, last - (span - 1) * step), last + 1, step, dtype=np.int64)
        return self._without_outages(opens)[-limit:] if opens.size else opens

    def _without_outages(self, opens: I8) -> I8:
        keep = np.ones(opens.shape, dtype=np.bool_)
        for start, end in self.outages:
            keep &= ~((opens >= start) & (opens < end))
        return opens[keep]

    # -- routes ----------------------------------------------------------------------------
    def _klines(self, request: Request) -> Reply:
        symbol, interval = request.query.get("symbol"), request.query.get("interval")
        if symbol is None or interval is None:
            return binance_error(400, -1102, "Mandatory parameter was not sent, was empty/null.")
        if symbol not in self.markets:
            return binance_error(400, -1121, "Invalid symbol.")
        if interval not in INTERVALS_MS:
            return binance_error(400, -1120, "Invalid interval.")
        limit = request.int("limit") or DEFAULT_LIMIT
        if not 1 <= limit <= MAX_LIMIT:
            return binance_error(400, -1130, "Data sent for parameter 'limit' is not valid.")
        rows = self.klines(
            symbol,
            interval,
            start=request.int("startTime"),
            end=request.int("endTime"),
            limit=limit,
        )
        return Reply.json(rows)

    def _market_of(self, request: Request) -> SpotMarket | Reply:
        """Return the market a request names, or Binance's error reply."""
        symbol = request.query.get("symbol")
        if symbol is None:
            return binance_error(
                400,
                -1102,
                "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.",
            )
        if symbol not in self.markets:
            return binance_error(400, -1121, "Invalid symbol.")
        return self.markets[symbol]

    def _ticker_price(self, request: Request) -> Reply:
        if "symbol" not in request.query:
            return Reply.json(
                [{"symbol": s, "price": f"{self.last_price(s):.8f}"} for s in self.markets]
            )
        market = self._market_of(request)
        if isinstance(market, Reply):
            return market
        return Reply.json({"symbol": market.id, "price": f"{self.last_price(market.id):.8f}"})

    def _ticker_24hr(self, request: Request) -> Reply:
        market = self._market_of(request)
        if isinstance(market, Reply):
            return market
        rows = self.klines(market.id, "1h", limit=24)
        last = self.last_price(market.id)
        first = float(str(rows[0][1])) if rows else last  # no bars yet: a market just opened
        high = max([last, *(float(str(r[2])) for r in rows)])
        low = min([last, *(float(str(r[3])) for r in rows)])
        volume = sum(float(str(r[5])) for r in rows)
        quote = sum(float(str(r[7])) for r in rows)
        tick = 0.01
        return Reply.json(
            {"symbol": market.id, "priceChange": f"{last - first:.8f}",
             "priceChangePercent": f"{(last / first - 1) * 100:.3f}",
             "weightedAvgPrice": f"{quote / volume if volume else last:.8f}",
             "prevClosePrice": f"{first:.8f}", "lastPrice": f"{last:.8f}", "lastQty": "0.01000000",
             "bidPrice": f"{last - tick:.8f}", "bidQty": "1.00000000",
             "askPrice": f"{last + tick:.8f}", "askQty": "1.00000000",
             "openPrice": f"{first:.8f}", "highPrice": f"{high:.8f}", "lowPrice": f"{low:.8f}",
             "volume": f"{volume:.8f}", "quoteVolume": f"{quote:.8f}",
             "openTime": self.now_ms - 24 * HOUR_MS, "closeTime": self.now_ms,
             "firstId": 1, "lastId": 100 * len(rows), "count": 100 * len(rows)}
        )  # fmt: skip

    def _depth(self, request: Request) -> Reply:
        market = self._market_of(request)
        if isinstance(market, Reply):
            return market
        limit = request.int("limit") or 100
        if limit not in DEPTH_LIMITS:
            return binance_error(400, -1100, "Illegal characters found in parameter 'limit'.")
        last, levels = self.last_price(market.id), min(limit, 20)
        bids = [[f"{last - 0.01 * k:.8f}", f"{0.5 + 0.1 * k:.8f}"] for k in range(1, levels + 1)]
        asks = [[f"{last + 0.01 * k:.8f}", f"{0.5 + 0.1 * k:.8f}"] for k in range(1, levels + 1)]
        return Reply.json({"lastUpdateId": self.now_ms, "bids": bids, "asks": asks})

    def _exchange_info(self, request: Request) -> Reply:
        return Reply.json(
            {
                "timezone": "UTC",
                "serverTime": self.now_ms,
                "rateLimits": [
                    {"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1,
                     "limit": 6000},
                    {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                     "limit": 100},
                ],
                "exchangeFilters": [],
                "symbols": [_symbol_info(m) for m in self.markets.values()],
            }
        )  # fmt: skip


def _symbol_info(market: SpotMarket) -> dict[str, object]:
    """Return one market as Binance's exchangeInfo lists it."""
    return {
        "symbol": market.id,
        "status": "TRADING",
        "baseAsset": market.base,
        "baseAssetPrecision": 8,
        "quoteAsset": market.quote,
        "quotePrecision": 8,
        "quoteAssetPrecision": 8,
        "baseCommissionPrecision": 8,
        "quoteCommissionPrecision": 8,
        "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
        "icebergAllowed": True,
        "ocoAllowed": True,
        "otoAllowed": True,
        "quoteOrderQtyMarketAllowed": True,
        "allowTrailingStop": True,
        "cancelReplaceAllowed": True,
        "isSpotTradingAllowed": True,
        "isMarginTradingAllowed": False,
        "filters": [
            {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000",
             "tickSize": "0.01000000"},
            {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000",
             "stepSize": "0.00001000"},
            {"filterType": "MARKET_LOT_SIZE", "minQty": "0.00000000", "maxQty": "100.00000000",
             "stepSize": "0.00000000"},
            {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
             "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
            {"filterType": "MAX_NUM_ORDERS", "maxNumOrders": 200},
        ],
        "permissions": [],
        "permissionSets": [["SPOT"]],
        "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
        "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
    }  # fmt: skip
