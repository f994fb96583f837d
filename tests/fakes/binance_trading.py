"""A fake Binance spot exchange that the real ccxt client trades on: REST, streams and faults.

`FakeBinanceExchange` is `FakeBinance` (market data, scripts) plus one account: the signed
endpoints ccxt's `binance` calls for spot trading (``account``, ``order`` POST/GET/DELETE,
``openOrders``, ``allOrders``, ``myTrades``, ``userDataStream``, and the wallet's
``capital/config/getall`` and margin ``allPairs`` that ``load_markets`` asks for when keys are
set: no margin pairs, no futures markets), a deterministic matching engine
(`binance_matching.py`) whose prices move only when the test says so, and a WebSocket server
(`binance_stream.py`) with the kline and user data streams ccxt.pro watches. Any apiKey and
signature are accepted (and recorded in `signed`); give ``secret=`` to have signatures checked.

    clock = FixedClock(...)
    with FakeBinanceExchange(clock, balances={"USDT": 10_000}, prices={"BTC/USDT": 50_000}) as venue:
        exchange = ccxt.binance(venue.ccxt_config(apiKey="k", secret="s", timeout=500))
        venue.script("POST /api/v3/order", AcceptThenStall(2.0))  # -> ccxt RequestTimeout
        venue.script("DELETE /api/v3/order", FillDuringCancel())  # -> ccxt OrderNotFound
        venue.script("POST /api/v3/order", PartialFill(0.4))  # 40% fills on arrival
        venue.stream.script("user", Duplicate(), Hold())  # stream faults
        venue.set_price("BTC/USDT", 49_500)  # resting orders and stops it reaches fill
        venue.advance(60_000, prices={"BTC/USDT": 49_000})  # a bar closes, then a new price
"""

from __future__ import annotations

import hashlib
import hmac
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, NamedTuple, Self, TypeVar
from urllib.parse import urlencode

from fakes import Answer, FakeServer, Reply, Request
from fakes.binance import (
    DEFAULT_LIMIT,
    DEFAULT_MARKETS,
    INTERVALS_MS,
    FakeBinance,
    SpotMarket,
    binance_error,
    params_of,
)
from fakes.binance_bars import LiveBars
from fakes.binance_matching import (
    BalanceChange,
    Event,
    Execution,
    Fill,
    MatchingEngine,
    Order,
    VenueError,
    missing,
)
from fakes.binance_stream import FakeStream, Json
from fakes.binance_wire import (
    account_json,
    account_position,
    cancel_json,
    execution_report,
    new_order_json,
    order_json,
    orders_json,
    trade_json,
)
from reinforcetrade.core.clock import Clock

Handler = Callable[[dict[str, str]], Reply]
T = TypeVar("T")


class SignedCall(NamedTuple):
    """One authenticated request as received: who sent it and its signature (never a secret)."""

    method: str
    path: str
    api_key: str
    signature: str | None


class FakeBinanceExchange(FakeBinance):
    """Binance spot with one trading account, on 127.0.0.1 (REST and WebSocket).

    `balances` are the account's free assets (default 10,000 USDT); `prices` the markets'
    opening prices ('BTC/USDT': 50_000; default: where the history's 1m bars are at the
    clock's now); `commission` is charged on every fill in the asset received;
    `client_id_scope` "open" refuses a client order id only while an order with it is open
    (Binance's rule), "all" refuses any id already used; `secret`, if given, makes the venue
    check HMAC signatures (it is never recorded).
    """

    def __init__(
        self,
        clock: Clock,
        *,
        markets: Sequence[SpotMarket] = DEFAULT_MARKETS,
        balances: Mapping[str, float | str | Decimal] | None = None,
        prices: Mapping[str, float | str | Decimal] | None = None,
        commission: float | str | Decimal = "0.001",
        client_id_scope: str = "open",
        secret: str | None = None,
        seed: int = 7,
        outages: Iterable[tuple[int, int]] = (),
    ) -> None:
        super().__init__(clock, markets=markets, seed=seed, outages=outages)
        start = self.now_ms
        self.engine = MatchingEngine(
            {m.id: (m.base, m.quote) for m in markets},
            {a: Decimal(str(v)) for a, v in (balances or {"USDT": 10_000}).items()},
            lambda: self.now_ms,
            commission=Decimal(str(commission)),
            client_id_scope=client_id_scope,
        )
        self.stream = FakeStream(lambda: self.now_ms)
        self.signed: list[SignedCall] = []
        self._secret = secret
        self._bars: dict[str, LiveBars] = {}
        opening = {_id(s): Decimal(str(p)) for s, p in (prices or {}).items()}
        for m in markets:
            price = opening.get(m.id, Decimal(f"{FakeBinance.last_price(self, m.id):.2f}"))
            self.engine.set_price(m.id, price)
            self._bars[m.id] = LiveBars(start, float(price))
        self.engine.listeners.append(self._on_event)
        self._kline_open: dict[str, int] = {}
        self._publish_lock = threading.RLock()
        self._ids = 0
        self._routes_for_trading()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Serve REST and WebSocket, each on a free port of 127.0.0.1."""
        super().start()
        try:
            self.stream.start()
        except BaseException:
            super().close()
            raise
        return self

    def close(self) -> None:
        """Stop both servers and join their threads."""
        self.stream.close()
        super().close()

    # -- pointing clients here -------------------------------------------------------------
    @property
    def ws_urls(self) -> dict[str, Any]:
        """Return ccxt.pro binance ``urls['api']['ws']`` entries for spot pointed here."""
        base = self.stream.url
        return {
            "spot": f"{base}/ws",
            "margin": f"{base}/ws",
            "ws-api": {"spot": f"{base}/ws-api/v3"},
        }

    def ccxt_config(self, **config: Any) -> dict[str, Any]:
        """Return settings for ``ccxt.binance(...)`` / ``ccxt.pro.binance(...)`` that use this venue.

        Every REST url and the spot WebSocket urls point here; `config` adds the rest
        (``apiKey``, ``secret``, ``timeout``, ``enableRateLimit``...).
        """
        return {**config, "urls": {"api": {**self.ccxt_urls, "ws": self.ws_urls}}}

    # -- the market: prices and time -------------------------------------------------------
    def price(self, symbol: str) -> Decimal:
        """Return the last price of a market ('BTC/USDT' or 'BTCUSDT')."""
        return self.engine.price(_id(symbol))

    def last_price(self, symbol: str) -> float:
        """Return a market's last price (by Binance id), as tickers and the book show it."""
        return float(self.engine.price(symbol))

    def set_price(
        self,
        symbol: str,
        price: float | str | Decimal,
        *,
        volume: float = 0.0,
        liquidity: float | str | Decimal | None = None,
    ) -> list[Fill]:
        """Trade the market at `price` now: fill what it reaches; update the kline streams.

        `liquidity` caps the base quantity resting orders can fill at this price (oldest
        first); `volume` is extra market volume for the bars.
        """
        sid, px = _id(symbol), Decimal(str(price))
        with self._publish_lock:
            self._bars[sid].add(self.now_ms, float(px), volume)
            cap = None if liquidity is None else Decimal(str(liquidity))
            fills = self.engine.set_price(sid, px, liquidity=cap)
            self.publish_bars(ticked=sid)
        return fills

    def advance(
        self, ms: int, *, prices: Mapping[str, float | str | Decimal] | None = None
    ) -> None:
        """Move the clock `ms` forward (closing bars on the streams), then set `prices`."""
        move = getattr(self.clock, "advance", None)
        if move is None:
            raise TypeError("advance() needs a clock that can be moved, e.g. FixedClock")
        with self._publish_lock:
            move(int(ms) * 1_000_000)
            self.publish_bars()
            for symbol, price in (prices or {}).items():
                self.set_price(symbol, price)

    def play(
        self, symbol: str, prices: Iterable[float | str | Decimal], every_ms: int
    ) -> list[Fill]:
        """Advance `every_ms` and set the next price, for each price in turn; return the fills."""
        fills: list[Fill] = []
        for price in prices:
            self.advance(every_ms)
            fills += self.set_price(symbol, price)
        return fills

    def publish_bars(self, ticked: str | None = None) -> None:
        """Send the bars closed since the last call (x=true), and `ticked`'s forming bar."""
        now = self.now_ms
        with self._publish_lock:
            for name in sorted(self.stream.streams()):
                parsed = _kline_stream(name)
                if parsed is None or parsed[0] not in self._bars:
                    continue
                sid, interval = parsed
                step, weekly = INTERVALS_MS[interval], interval == "1w"
                current = self._grid(now, step, weekly, up=False)
                last = self._kline_open.get(name)
                if last is None:
                    last = self._grid(self.stream.subscribed_at(name), step, weekly, up=False)
                self._kline_open[name] = current
                for open_ms in range(last, current, step):
                    self.stream.publish("market", self._kline(sid, interval, open_ms, True), name)
                if ticked == sid:
                    self.stream.publish("market", self._kline(sid, interval, current, False), name)

    def klines(
        self,
        symbol: str,
        interval: str,
        *,
        start: int | None = None,
        end: int | None = None,
        limit: int = DEFAULT_LIMIT,
    ) -> list[list[object]]:
        """Return kline rows: history before the venue opened, the prices set since."""
        rows = super().klines(symbol, interval, start=start, end=end, limit=limit)
        live = self._bars.get(symbol.replace("/", ""))
        if live is None:
            return rows
        step = INTERVALS_MS[interval]
        origin = self._grid(live.start_ms, step, interval == "1w", up=False)
        out: list[list[object]] = []
        for row in rows:
            t = row[0]
            if not isinstance(t, int) or t < origin:
                out.append(row)
                continue
            o, h, lo, c, v, n = live.bar(t, step, self.now_ms)
            out.append(
                [t, *(f"{x:.8f}" for x in (o, h, lo, c, v)), t + step - 1, f"{v * c:.8f}", n,
                 f"{v / 2:.8f}", f"{v * c / 2:.8f}", "0"]
            )  # fmt: skip
        return out

    # -- the account -----------------------------------------------------------------------
    def order(self, client_id: str | None = None, *, order_id: int | None = None) -> Order:
        """Return an order (the latest with that client id) in any market; KeyError if none."""
        found = [
            o
            for o in self.engine.orders()
            if (client_id is None or o.client_id == client_id)
            and (order_id is None or o.order_id == order_id)
        ]
        if not found:
            raise KeyError(f"no order client_id={client_id!r} order_id={order_id!r}")
        return found[-1]

    def orders(self, symbol: str | None = None, *, open_only: bool = False) -> list[Order]:
        """Return the orders (of one market if given), oldest first."""
        return self.engine.orders(None if symbol is None else _id(symbol), open_only=open_only)

    def fills(self, symbol: str | None = None) -> list[Fill]:
        """Return every fill (of one market if given), oldest first."""
        return self.engine.fills(None if symbol is None else _id(symbol))

    def balance(self, asset: str) -> tuple[Decimal, Decimal]:
        """Return (free, locked) of one asset."""
        return self.engine.balances().get(asset, (Decimal(0), Decimal(0)))

    def fill(
        self,
        client_id: str,
        qty: float | str | Decimal | None = None,
        price: float | str | Decimal | None = None,
    ) -> Fill:
        """Fill an open order now (all that is left by default, at its own price by default)."""
        order = self.order(client_id)
        return self.engine.fill(
            order.order_id,
            None if qty is None else Decimal(str(qty)),
            None if price is None else Decimal(str(price)),
        )

    def orders_sent(self, client_id: str | None = None) -> list[dict[str, str]]:
        """Return the parameters of every ``POST /api/v3/order`` that reached the server.

        That includes requests a fault dropped or refused: compare with `orders()` to tell
        what reached the matching engine.
        """
        sent = [params_of(r) for r in self.requests_to("/api/v3/order") if r.method == "POST"]
        return [p for p in sent if client_id is None or p.get("newClientOrderId") == client_id]

    def order_named(self, request: Request) -> Order | None:
        """Return the order a GET/DELETE ``/api/v3/order`` request names, None if unknown."""
        params = params_of(request)
        try:
            return self.engine.find(
                params.get("symbol", ""), _int(params, "orderId"), params.get("origClientOrderId")
            )
        except VenueError:
            return None

    def new_order(self, request: Request, *, fill_ratio: Decimal | None = None) -> Reply:
        """Answer ``POST /api/v3/order``; `fill_ratio` caps the share filled on arrival."""

        def place(params: dict[str, str]) -> Reply:
            order = self.engine.place(params, fill_ratio=fill_ratio)
            default = "FULL" if order.type in ("MARKET", "LIMIT") else "ACK"
            return Reply.json(new_order_json(order, params.get("newOrderRespType") or default))

        return self._private(place)(request)

    # -- routes ----------------------------------------------------------------------------
    def _routes_for_trading(self) -> None:
        private = self._private
        self.route("GET", "/api/v3/account", private(self._account))
        self.route("POST", "/api/v3/order", self.new_order)
        self.route("POST", "/api/v3/order/test", private(lambda p: Reply.json({})))
        self.route("GET", "/api/v3/order", private(self._get_order))
        self.route("DELETE", "/api/v3/order", private(self._cancel_order))
        self.route("GET", "/api/v3/openOrders", private(self._open_orders))
        self.route("DELETE", "/api/v3/openOrders", private(self._cancel_all))
        self.route("GET", "/api/v3/allOrders", private(self._all_orders))
        self.route("GET", "/api/v3/myTrades", private(self._my_trades))
        for method in ("POST", "PUT", "DELETE"):
            self.route(method, "/api/v3/userDataStream", self._listen_key_route(method))
        self.route("GET", "/sapi/v1/capital/config/getall", private(self._coins))
        for path in ("/sapi/v1/margin/allPairs", "/sapi/v1/margin/isolated/allPairs"):
            self.route("GET", path, private(lambda p: Reply.json([])))
        for path in ("/fapi/v1/exchangeInfo", "/dapi/v1/exchangeInfo"):
            self.route("GET", path, self._no_markets)

    def _private(self, handler: Handler, *, signed: bool = True) -> Callable[[Request], Reply]:
        """Wrap a handler: check the API key (and signature), turn refusals into Binance errors."""

        def route(request: Request) -> Reply:
            try:
                return handler(self._authenticate(request, signed=signed))
            except VenueError as exc:
                return binance_error(exc.status, exc.code, exc.msg)

        return route

    def _authenticate(self, request: Request, *, signed: bool) -> dict[str, str]:
        api_key = request.headers.get("x-mbx-apikey", "")
        if not api_key:
            raise VenueError(401, -2014, "API-key format invalid.")
        params = params_of(request)
        signature = params.pop("signature", None)
        with self._lock:
            self.signed.append(SignedCall(request.method, request.path, api_key, signature))
        if not signed:
            return params
        if signature is None:
            raise missing("signature")
        if "timestamp" not in params:
            raise missing("timestamp")
        if self._secret is not None:
            payload = urlencode(list(params.items())).encode()
            good = hmac.new(self._secret.encode(), payload, hashlib.sha256).hexdigest()
            if not hmac.compare_digest(good, signature):
                raise VenueError(400, -1022, "Signature for this request is not valid.")
        return params

    def _account(self, params: dict[str, str]) -> Reply:
        balances = self.engine.balances()
        if params.get("omitZeroBalances") == "true":
            balances = {a: fl for a, fl in balances.items() if fl[0] or fl[1]}
        return Reply.json(account_json(balances, self.now_ms, self.engine.commission))

    def _get_order(self, params: dict[str, str]) -> Reply:
        symbol = _required(params, "symbol")
        order = self.engine.find(symbol, _int(params, "orderId"), params.get("origClientOrderId"))
        return Reply.json(order_json(order))

    def _cancel_order(self, params: dict[str, str]) -> Reply:
        symbol = _required(params, "symbol")
        cancel_id = params.get("newClientOrderId") or self._new_id("cancel")
        order = self.engine.cancel(
            symbol, _int(params, "orderId"), params.get("origClientOrderId"), cancel_id
        )
        return Reply.json(cancel_json(order, cancel_id, self.now_ms))

    def _cancel_all(self, params: dict[str, str]) -> Reply:
        symbol = _required(params, "symbol")
        answers: list[Json] = []
        for order in self.engine.orders(symbol, open_only=True):
            cancel_id = self._new_id("cancel")
            done = self.engine.cancel(symbol, order.order_id, None, cancel_id)
            answers.append(cancel_json(done, cancel_id, self.now_ms))
        if not answers:
            raise VenueError(400, -2011, "Unknown order sent.")
        return Reply.json(answers)

    def _open_orders(self, params: dict[str, str]) -> Reply:
        symbol = params.get("symbol")
        if symbol is not None and symbol not in self.markets:
            raise VenueError(400, -1121, "Invalid symbol.")
        return Reply.json(orders_json(self.engine.orders(symbol, open_only=True)))

    def _all_orders(self, params: dict[str, str]) -> Reply:
        symbol = _required(params, "symbol")
        first_id = _int(params, "orderId")
        orders = [
            o
            for o in self.engine.orders(symbol)
            if (first_id is None or o.order_id >= first_id) and _in_time(o.time, params)
        ]
        return Reply.json(orders_json(_page(orders, params, first_id is not None)))

    def _my_trades(self, params: dict[str, str]) -> Reply:
        symbol = _required(params, "symbol")
        order_id, from_id = _int(params, "orderId"), _int(params, "fromId")
        fills = [
            f
            for f in self.engine.fills(symbol)
            if (order_id is None or f.order_id == order_id)
            and (from_id is None or f.trade_id >= from_id)
            and _in_time(f.time, params)
        ]
        return Reply.json([trade_json(f) for f in _page(fills, params, from_id is not None)])

    def _listen_key_route(self, method: str) -> Callable[[Request], Reply]:
        """Answer ``POST`` (new key), ``PUT`` (keep alive) or ``DELETE`` of a listen key."""
        return self._private(lambda params: self._listen_key(method, params), signed=False)

    def _listen_key(self, method: str, params: dict[str, str]) -> Reply:
        if method == "POST":
            key = hashlib.sha256(self._new_id("listen").encode()).hexdigest()[:60]
            with self._lock:
                self.stream.listen_keys.add(key)
            return Reply.json({"listenKey": key})
        key = _required(params, "listenKey")
        if key not in self.stream.listen_keys:
            raise VenueError(400, -1125, "This listenKey does not exist.")
        if method == "DELETE":
            self.stream.listen_keys.discard(key)
        return Reply.json({})

    def _coins(self, params: dict[str, str]) -> Reply:
        balances = self.engine.balances()
        assets = sorted({*balances, *(a for m in self.markets.values() for a in (m.base, m.quote))})
        return Reply.json([_coin(a, *balances.get(a, (Decimal(0), Decimal(0)))) for a in assets])

    def _no_markets(self, request: Request) -> Reply:
        return Reply.json(
            {"timezone": "UTC", "serverTime": self.now_ms, "rateLimits": [], "exchangeFilters": [],
             "assets": [], "symbols": []}
        )  # fmt: skip

    # -- events ----------------------------------------------------------------------------
    def _on_event(self, event: Event) -> None:
        if isinstance(event, Execution):
            if event.fill is not None:
                self._bars[event.order.symbol].add_volume(event.time, float(event.fill.qty))
            self.stream.publish("user", execution_report(event))
        elif isinstance(event, BalanceChange):
            self.stream.publish("user", account_position(event))

    def _kline(self, sid: str, interval: str, open_ms: int, closed: bool) -> Json:
        step, now = INTERVALS_MS[interval], self.now_ms
        o, h, lo, c, v, n = self._bars[sid].bar(open_ms, step, now)
        return {
            "e": "kline",
            "E": now,
            "s": sid,
            "k": {"t": open_ms, "T": open_ms + step - 1, "s": sid, "i": interval, "f": 100,
                  "L": 100 + n, "o": f"{o:.8f}", "c": f"{c:.8f}", "h": f"{h:.8f}",
                  "l": f"{lo:.8f}", "v": f"{v:.8f}", "n": n, "x": closed,
                  "q": f"{v * c:.8f}", "V": f"{v / 2:.8f}", "Q": f"{v * c / 2:.8f}", "B": "0"},
        }  # fmt: skip

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}{self._ids:016d}"


# -- faults that need the trading venue ------------------------------------------------------
@dataclass(frozen=True)
class PartialFill:
    """Fill only `fraction` of the next order on arrival (a thin book).

    The rest then follows the order's type: a market or IOC order's rest expires, a GTC
    limit order's rest stays on the book (fill it later with `set_price` or `fill`).
    """

    fraction: float

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Place the order with a cap on what fills now."""
        return _venue(server).new_order(request, fill_ratio=Decimal(str(self.fraction)))


@dataclass(frozen=True)
class FillDuringCancel:
    """Fill the order a cancel names, wait `stall` seconds, then answer the cancel.

    The answer is what Binance gives for a cancel that comes too late: -2011 "Unknown order
    sent." (ccxt's OrderNotFound); with `stall` past the client's timeout, a timeout instead.
    The fill is at `price`, else the order's limit price, else the last price.
    """

    stall: float = 0.0
    price: float | None = None

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Fill first, answer late."""
        venue = _venue(server)
        order = venue.order_named(request)
        if order is not None and order.is_open:
            price = None if self.price is None else Decimal(str(self.price))
            venue.engine.fill(order.order_id, price=price)
        server.wait(self.stall)
        return answer(request)


def _venue(server: FakeServer) -> FakeBinanceExchange:
    if not isinstance(server, FakeBinanceExchange):
        raise TypeError(f"this fault needs a FakeBinanceExchange, not {type(server).__name__}")
    return server


# -- helpers ---------------------------------------------------------------------------------
def _id(symbol: str) -> str:
    """Return Binance's market id of 'BTC/USDT' or 'BTCUSDT'."""
    return symbol.replace("/", "").upper()


def _int(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not text.lstrip("-").isdigit():
        raise VenueError(400, -1100, f"Illegal characters found in parameter '{name}'.")
    return int(text)


def _required(params: Mapping[str, str], name: str) -> str:
    value = params.get(name)
    if not value:
        raise missing(name)
    return value


def _in_time(time_ms: int, params: Mapping[str, str]) -> bool:
    start, end = _int(params, "startTime"), _int(params, "endTime")
    return (start is None or time_ms >= start) and (end is None or time_ms <= end)


def _page(rows: list[T], params: Mapping[str, str], from_start: bool) -> list[T]:
    """Return `limit` rows (default 500, at most 1000): the first ones, or else the latest."""
    limit = _int(params, "limit") or 500
    if not 1 <= limit <= 1000:
        raise VenueError(400, -1130, "Data sent for parameter 'limit' is not valid.")
    start = params.get("startTime") is not None
    return rows[:limit] if from_start or start else rows[-limit:]


def _kline_stream(name: str) -> tuple[str, str] | None:
    """Return (market id, interval) of a stream name like 'btcusdt@kline_1m', else None."""
    symbol, _, channel = name.partition("@kline_")
    if not channel or channel not in INTERVALS_MS:
        return None
    return symbol.upper(), channel


def _coin(asset: str, free: Decimal, locked: Decimal) -> Json:
    """Return one asset as ``GET /sapi/v1/capital/config/getall`` lists it."""
    network = {
        "network": asset, "coin": asset, "name": asset, "isDefault": True,
        "depositEnable": True, "withdrawEnable": True, "depositDesc": "", "withdrawDesc": "",
        "withdrawIntegerMultiple": "0.00000001", "withdrawFee": "0", "withdrawMin": "0",
        "withdrawMax": "9999999999", "minConfirm": 1, "unLockConfirm": 0,
        "sameAddress": False, "resetAddressStatus": False, "depositDust": "0.00000001",
    }  # fmt: skip
    return {
        "coin": asset, "name": asset, "depositAllEnable": True, "withdrawAllEnable": True,
        "free": f"{free:.8f}", "locked": f"{locked:.8f}", "freeze": "0", "withdrawing": "0",
        "ipoing": "0", "ipoable": "0", "storage": "0", "isLegalMoney": False,
        "trading": True, "networkList": [network],
    }  # fmt: skip
