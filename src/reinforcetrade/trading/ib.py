"""`IbBroker`: an Interactive Brokers account (TWS or IB Gateway) behind the `Broker` protocol.

It drives `ib_async`'s synchronous API over IB's socket protocol. Our client order id travels as
the order's `orderRef`; orders are fetched and cancelled by it, looked up among the open orders
of every client (`reqAllOpenOrders`) and the completed ones (`reqCompletedOrders`), and their
fills are summed from the executions that carry it. Every failure is sorted into the `Broker`
taxonomy: TWS refusing an order (error 201 and friends) is `OrderRejected`; no connection is
`BrokerUnavailable` (nothing sent); a connection lost, or no answer, after an order was handed
to the socket is `OutcomeUnknown` (never resent: the order manager finds it by client id).
Reads reconnect and retry with capped backoff; a creation never retries.

Symbols (one mapping, `contract_for`): 'AAPL' or 'AAPL/USD' is a stock routed through SMART
('AAPL/USD@NASDAQ' picks the exchange); 'EUR/USD' (both ISO currencies) is an IDEALPRO pair;
'ES/USD:202612' is a future (contract month; the exchange from `FUTURE_EXCHANGES` or
'ES/USD:202612@CME'). Requests are paced by token buckets (`Pacer`) under IB's limits.
The market-data side (`IbBarFeed`, `ib_history`) lives in `ib_feeds.py`.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from ib_async import (
    IB,
    Contract,
    ExecutionFilter,
    Forex,
    Future,
    LimitOrder,
    MarketOrder,
    Order,
    Stock,
    StopLimitOrder,
    StopOrder,
    Trade,
)

from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.trading.broker import (
    BrokerError,
    BrokerFill,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
    VenueStatus,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

#: ISO currencies: a pair of two of them is a forex pair, anything else a stock or future
CURRENCIES = frozenset(
    (
        "USD EUR GBP JPY CHF AUD NZD CAD SEK NOK DKK HKD SGD CNH MXN ZAR PLN HUF CZK TRY ILS KRW"
    ).split()
)
#: the exchange of common futures when the symbol does not name one
FUTURE_EXCHANGES = {"ES": "CME", "NQ": "CME", "RTY": "CME", "6E": "CME", "CL": "NYMEX",
                    "GC": "COMEX", "ZN": "CBOT", "YM": "CBOT"}  # fmt: skip
#: IB statuses of a live order (anything else is done)
PENDING = frozenset({"PendingSubmit", "ApiPending"})
_LOST = (ConnectionError, OSError, asyncio.TimeoutError)


def contract_for(symbol: str) -> Contract:
    """Return the IB contract for one of our symbols (the one place the mapping lives).

    >>> contract_for("AAPL").secType, contract_for("EUR/USD").pair()
    ('STK', 'EURUSD')
    >>> f = contract_for("ES/USD:202612"); (f.secType, f.exchange, f.lastTradeDateOrContractMonth)
    ('FUT', 'CME', '202612')
    """
    text, _, exchange = symbol.strip().upper().partition("@")
    base, _, rest = text.partition("/")
    quote, _, month = rest.partition(":")
    quote = quote or "USD"
    if not base or (month and not (month.isdigit() and len(month) in (6, 8))):
        raise UserInputError(
            f"IB symbol {symbol!r}: use 'AAPL', 'AAPL/USD', 'EUR/USD' or 'ES/USD:202612[@CME]'"
        )
    if month:
        venue = exchange or FUTURE_EXCHANGES.get(base)
        if not venue:
            raise UserInputError(f"IB future {symbol!r}: name its exchange, e.g. '{text}@CME'")
        return Future(base, month, venue, currency=quote)
    if base in CURRENCIES and quote in CURRENCIES and rest:
        return Forex(base + quote)
    return Stock(base, exchange or "SMART", quote)


def symbol_of(contract: Contract) -> str:
    """Return our canonical symbol for an IB contract ('AAPL/USD', 'EUR/USD', 'ES/USD:202612')."""
    head = f"{contract.symbol}/{contract.currency}"
    if contract.secType == "FUT":
        return f"{head}:{contract.lastTradeDateOrContractMonth[:6]}"
    return head


def _bare(contract: Contract) -> bool:
    """Return True for a contract a bare symbol names (a US-dollar stock: 'AAPL')."""
    return contract.secType == "STK" and contract.currency == "USD"


def _canonical(symbol: str) -> str:
    return symbol_of(contract_for(symbol))


class Pacer:
    """A token bucket: at most `burst` calls at once, then `rate` per second.

    `take` sleeps (with the injected sleep) until the call is allowed and returns the wait.
    Kept as the time the bucket is next empty (GCRA), so a clock that does not move while
    sleeping (a test's) still spaces calls correctly.

    >>> slept = []; p = Pacer(0.5, 2, clock=lambda: 0.0, sleep=slept.append)
    >>> [p.take() for _ in range(4)]
    [0.0, 0.0, 2.0, 4.0]
    """

    def __init__(
        self,
        rate: float,
        burst: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (rate > 0 and burst >= 1):
            raise UserInputError(f"pacing needs rate > 0 and burst >= 1, got {rate}, {burst}")
        self.rate, self.burst = rate, burst
        self._clock, self._sleep = clock, sleep
        self._interval = 1.0 / rate
        self._tolerance = (burst - 1) * self._interval
        self._tat: float | None = None  # theoretical arrival time of the next call

    def take(self) -> float:
        """Wait until a call is allowed, count it, and return the wait in seconds."""
        now = self._clock()
        tat = now if self._tat is None else max(self._tat, now)
        wait = max(0.0, tat - self._tolerance - now)
        if wait > 0:
            self._sleep(wait)
        self._tat = tat + self._interval
        return wait


@dataclass(frozen=True)
class IbBar:
    """One historical bar: open time (epoch ns) and OHLCV."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class IbBroker:
    """An IB account (TWS or Gateway, paper or live) as a `Broker`, over `ib_async`."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 7497,
        client_id: int = 17,
        *,
        account: str | None = None,
        timeout: float = 10.0,
        read_attempts: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 8.0,
        sleep: Callable[[float], None] = time.sleep,
        pacer: Pacer | None = None,
        history_pacer: Pacer | None = None,
        clock: Clock | None = None,
    ) -> None:
        """Connect lazily (on the first call) to TWS or IB Gateway.

        `pacer` spaces every request (default 45/s, under IB's 50 messages/s); `history_pacer`
        spaces historical-data requests (default 6 at once, then one per 10 s: IB's 60 per
        10 minutes). `clock` tells which bars are complete.
        """
        self.host, self.port, self.client_id = host, int(port), int(client_id)
        self.account = account
        self.timeout = timeout
        self.read_attempts = max(1, read_attempts)
        self.backoff, self.max_backoff = backoff, max_backoff
        self._sleep = sleep
        self.pacer = pacer or Pacer(45.0, 45.0)
        self.history_pacer = history_pacer or Pacer(0.1, 6.0)
        self.clock = clock or WallClock()
        self.connects = 0
        self._ib = IB()
        self._ib.RequestTimeout = timeout
        self._ib.RaiseRequestErrors = True
        self._spelling: dict[str, str] = {}  # canonical symbol -> the caller's spelling

    @property
    def name(self) -> str:
        """Return 'ib'."""
        return "ib"

    @property
    def connected(self) -> bool:
        """Return True while the API connection is up."""
        return bool(self._ib.isConnected())

    def close(self) -> None:
        """Disconnect from TWS."""
        self._ib.disconnect()

    def __enter__(self) -> IbBroker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- orders -------------------------------------------------------------------------------
    def create_order(self, request: OrderRequest) -> OrderState:
        """Place an order, never retried (OrderRejected, BrokerUnavailable, OutcomeUnknown)."""
        contract = self._contract(request.symbol)
        if request.reduce_only:
            self._check_reduces(request)
        order = _order_of(request)
        if self.account:
            order.account = self.account
        ib = self._connect()
        cid = request.client_order_id
        self.pacer.take()
        try:
            trade = ib.placeOrder(contract, order)
        except ConnectionError as exc:
            raise BrokerUnavailable(f"ib order {cid}: not sent ({exc})") from None
        deadline = time.monotonic() + self.timeout
        while trade.orderStatus.status in PENDING and not _rejection(trade):
            if not ib.isConnected():
                raise OutcomeUnknown(
                    f"ib order {cid}: the connection dropped after it was sent; "
                    "find it by its client order id"
                )
            if time.monotonic() >= deadline:
                raise OutcomeUnknown(f"ib order {cid}: no answer within {self.timeout}s")
            try:
                ib.sleep(0.01)
            except _LOST:
                continue  # the disconnect, seen on the next round
        rejected = _rejection(trade)
        if rejected:
            raise OrderRejected(f"ib order {cid}: {rejected}")
        return self._state(trade, request.symbol)

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Return an order by client id (reads retried); raises OrderNotFound if IB has none."""
        trade = self._read(lambda ib: self._find(ib, client_order_id))
        if trade is None:
            raise OrderNotFound(f"ib has no order with orderRef {client_order_id!r}")
        return self._read(lambda ib: self._settled(ib, trade, symbol))

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Cancel an order; if it is no longer open, return what became of it."""
        trade = self._read(lambda ib: self._find(ib, client_order_id))
        if trade is None:
            raise OrderNotFound(f"ib has no order with orderRef {client_order_id!r}")
        if trade.isDone():
            return self._read(lambda ib: self._settled(ib, trade, symbol))
        ib = self._connect()
        self.pacer.take()
        try:
            ib.cancelOrder(trade.order)
        except ConnectionError as exc:
            raise BrokerUnavailable(f"ib cancel {client_order_id}: not sent ({exc})") from None
        deadline = time.monotonic() + self.timeout
        while not trade.isDone():
            if not ib.isConnected() or time.monotonic() >= deadline:
                raise OutcomeUnknown(f"ib cancel {client_order_id}: no answer; fetch the order")
            try:
                ib.sleep(0.01)
            except _LOST:
                continue
        return self.fetch_order(symbol, client_order_id)

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Return every client's open orders (ours and others'), optionally of one symbol."""
        trades = self._read(lambda ib: self._paced(ib.reqAllOpenOrders))
        wanted = None if symbol is None else _canonical(symbol)
        out = []
        for trade in trades:
            if trade.isDone():
                continue
            key = symbol_of(trade.contract)
            if wanted is None or key == wanted:
                out.append(self._state(trade, symbol or self._spelling.get(key, key)))
        return out

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        """Return the account's executions of a symbol since a time, with their commissions.

        IB reports the executions of the current day (up to 7 days in TWS's settings).
        """
        wanted = _canonical(symbol)
        fills = self._read(lambda ib: self._executions(ib))
        out = []
        for fill in fills:
            ex = fill.execution
            ts = _ns(ex.time)
            if symbol_of(fill.contract) != wanted or (since_ns is not None and ts < since_ns):
                continue
            report = fill.commissionReport
            out.append(
                BrokerFill(
                    trade_id=ex.execId,
                    client_order_id=ex.orderRef or None,
                    symbol=symbol,
                    side="buy" if ex.side == "BOT" else "sell",
                    ts=ts,
                    quantity=float(ex.shares),
                    price=float(ex.price),
                    fee=float(report.commission or 0.0),
                    fee_currency=report.currency or fill.contract.currency or None,
                    exchange_order_id=str(ex.permId) if ex.permId else None,
                )
            )
        return sorted(out, key=lambda f: (f.ts, f.trade_id))

    def positions(self) -> dict[str, float]:
        """Return net quantity per symbol and the cash balance per currency ('USD': ...)."""

        def read(ib: IB) -> dict[str, float]:
            out: dict[str, float] = {}
            for pos in self._paced(ib.reqPositions):
                if self.account and pos.account != self.account:
                    continue
                key = symbol_of(pos.contract)
                name = self._spelling.get(key, key)
                out[name] = out.get(name, 0.0) + float(pos.position)
                if name == key and _bare(pos.contract):  # 'AAPL' spells 'AAPL/USD' too
                    out[pos.contract.symbol] = out[name]
            account = self.account or next(iter(ib.managedAccounts()), "")
            self._paced(lambda: ib.reqAccountUpdates(account))
            for value in ib.accountValues(account):
                if value.tag == "CashBalance" and value.currency not in ("", "BASE"):
                    out[value.currency] = float(value.value)
            return {k: v for k, v in out.items() if v}

        return self._read(read)

    # --- market data --------------------------------------------------------------------------
    def history(
        self, symbol: str, bar_size: str, *, end_ns: int | None, duration: str
    ) -> list[IbBar]:
        """Return IB's bars for `duration` up to `end_ns` (None: now; the last may be forming)."""
        contract = self._contract(symbol)
        show = "MIDPOINT" if contract.secType == "CASH" else "TRADES"
        end = "" if end_ns is None else _ib_time(end_ns)

        def read(ib: IB) -> list[IbBar]:
            self.history_pacer.take()
            bars = self._paced(
                # timeout=0: ib_async would answer a timeout with no bars (lost bars for the
                # feed); the client's RequestTimeout raises instead, and the read is retried
                lambda: ib.reqHistoricalData(
                    contract, end, duration, bar_size, show, False, 2, timeout=0
                )
            )
            return [IbBar(_ns(b.date), float(b.open), float(b.high), float(b.low),
                          float(b.close), float(b.volume)) for b in bars]  # fmt: skip

        return self._read(read)

    # --- internals ----------------------------------------------------------------------------
    def _contract(self, symbol: str) -> Contract:
        contract = contract_for(symbol)
        self._spelling.setdefault(symbol_of(contract), symbol)
        return contract

    def _connect(self) -> IB:
        """Return the connected client, connecting first if needed (BrokerUnavailable if not)."""
        if self._ib.isConnected():
            return self._ib
        where = f"TWS/Gateway at {self.host}:{self.port} (client id {self.client_id})"
        self._ib.disconnect()  # reset what is left of a dropped session
        try:
            self._ib.connect(self.host, self.port, clientId=self.client_id,
                             timeout=self.timeout, account=self.account or "")  # fmt: skip
        except (*_LOST, RuntimeError) as exc:
            self._ib.disconnect()
            raise BrokerUnavailable(
                f"ib: cannot connect to {where}: {type(exc).__name__}: {exc}; is the API "
                "enabled (Configure > API > Settings) and the client id free?"
            ) from None
        self.connects += 1
        log.info("connected to %s", where)
        return self._ib

    def _paced(self, call: Callable[[], T]) -> T:
        self.pacer.take()
        return call()

    def _read(self, call: Callable[[IB], T]) -> T:
        """Run a read, reconnecting and retrying with capped exponential backoff."""
        delay = self.backoff
        for attempt in range(1, self.read_attempts + 1):
            try:
                return call(self._connect())
            except (*_LOST, BrokerUnavailable) as exc:
                text = f"ib read failed: {type(exc).__name__}: {exc}"
            except Exception as exc:  # ib_async's RequestError: IB answered with an error
                code = getattr(exc, "code", None)
                if code is None:
                    raise
                if code in (162, 366, 420, 1100, 2105):  # pacing, lost farm, no connectivity
                    text = f"ib read failed: {exc}"
                else:
                    raise BrokerError(f"ib refused the request: {exc}") from None
            if attempt == self.read_attempts:
                raise BrokerUnavailable(f"{text} (after {attempt} attempts)", delay)
            log.warning("%s; retrying in %.2fs (attempt %d)", text, delay, attempt)
            self._sleep(delay)
            delay = min(delay * 2, self.max_backoff)
        raise AssertionError("unreachable")  # pragma: no cover

    def _find(self, ib: IB, client_order_id: str) -> Trade | None:
        """Return the order with this orderRef: completed first (final), then open."""
        done = self._paced(lambda: ib.reqCompletedOrders(False))
        for trade in done:
            if trade.order.orderRef == client_order_id:
                return trade
        for trade in self._paced(ib.reqAllOpenOrders):
            if trade.order.orderRef == client_order_id:
                return trade
        return None

    def _executions(self, ib: IB) -> list[Any]:
        self._paced(lambda: ib.reqExecutions(ExecutionFilter()))
        return list(ib.fills())  # the wrapper's fills carry the commission reports

    def _settled(self, ib: IB, trade: Trade, symbol: str) -> OrderState:
        """Return an order's state with its fills summed from the executions carrying its ref."""
        ref = trade.order.orderRef
        mine = [f.execution for f in self._executions(ib) if f.execution.orderRef == ref]
        filled = sum(float(e.shares) for e in mine)
        average = sum(float(e.shares) * float(e.price) for e in mine) / filled if filled else None
        state = self._state(trade, symbol)
        status = state.status
        if status == "open" and filled:
            status = "partially_filled"
        return OrderState(state.client_order_id, state.exchange_order_id, state.symbol, status,
                          filled, average, state.reason)  # fmt: skip

    def _state(self, trade: Trade, symbol: str) -> OrderState:
        st = trade.orderStatus
        filled = float(st.filled or 0.0)
        status = _status(st.status, filled, float(trade.order.totalQuantity))
        perm = trade.order.permId or st.permId
        return OrderState(
            client_order_id=trade.order.orderRef,
            exchange_order_id=str(perm) if perm else None,
            symbol=symbol,
            status=status,
            filled_quantity=filled,
            average_price=float(st.avgFillPrice) if filled and st.avgFillPrice else None,
            reason=_rejection(trade) or None,
        )

    def _check_reduces(self, request: OrderRequest) -> None:
        """Refuse a reduce-only order that would grow or flip the position (IB has no flag)."""
        held = self.positions().get(request.symbol, 0.0)
        reduces = (held > 0 and request.side == "sell") or (held < 0 and request.side == "buy")
        if not reduces or request.quantity > abs(held) + 1e-9:
            raise OrderRejected(
                f"ib order {request.client_order_id}: reduce-only {request.side} "
                f"{request.quantity} would not reduce the position of {held} {request.symbol}"
            )


def _order_of(request: OrderRequest) -> Order:
    action = request.side.upper()
    qty = request.quantity
    order: Order
    if request.type == "market":
        order = MarketOrder(action, qty, tif="DAY")
    elif request.type == "limit":
        order = LimitOrder(action, qty, float(request.price or 0), tif="GTC")
    elif request.type == "stop":
        order = StopOrder(action, qty, float(request.stop_price or 0), tif="GTC")
    else:
        order = StopLimitOrder(action, qty, float(request.price or 0),
                               float(request.stop_price or 0), tif="GTC")  # fmt: skip
    order.orderRef = request.client_order_id
    return order


def _status(status: str, filled: float, total: float) -> VenueStatus:
    if status == "Filled" or (total and filled >= total):
        return "filled"
    if status in ("Cancelled", "ApiCancelled"):
        return "cancelled"
    if status == "Inactive":
        return "rejected"
    return "partially_filled" if filled else "open"


def _rejection(trade: Trade) -> str:
    """Return TWS's error text if it refused the order (an error with a code, not a cancel)."""
    if trade.orderStatus.status not in ("Cancelled", "Inactive"):
        return ""
    for entry in reversed(trade.log):
        if entry.errorCode and entry.errorCode != 202:
            return entry.message
    return ""


def _ns(when: dt.datetime | dt.date) -> int:
    if not isinstance(when, dt.datetime):
        when = dt.datetime(when.year, when.month, when.day, tzinfo=dt.UTC)
    elif when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    delta = when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
    return (delta // dt.timedelta(microseconds=1)) * 1000


def _ib_time(ns: int) -> str:
    """Return an epoch-ns time as IB's UTC end time ('20260101-00:00:00')."""
    return dt.datetime.fromtimestamp(ns // 1_000_000_000, dt.UTC).strftime("%Y%m%d-%H:%M:%S")


def duration_of(seconds: float) -> str:
    """Return IB's duration string covering `seconds` ('3600 S', '2 D').

    >>> duration_of(90), duration_of(86_401)
    ('90 S', '2 D')
    """
    whole = max(1, math.ceil(seconds))
    return f"{whole} S" if whole <= 86_400 else f"{math.ceil(whole / 86_400)} D"
