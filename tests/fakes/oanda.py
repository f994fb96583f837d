"""A fake OANDA v20 venue that the real httpx client trades on: REST, the pricing stream, faults.

`FakeOanda` is a `FakeServer` with one account (id, currency, balance), the instruments
EUR_USD and USD_JPY with OANDA's precisions and minimums, a deterministic matching engine
whose prices move only when the test says so, netting positions, the transaction log, mid
candles made from the prices set over the clock, and the chunked NDJSON pricing stream with
heartbeats. Every request needs an ``Authorization: Bearer ...`` header (401 otherwise; give
``token=`` to have its value checked too).

    clock = FixedClock(...)
    with FakeOanda(clock) as venue:
        broker = OandaBroker(ACCOUNT_ID, "t", base_url=venue.url, stream_url=venue.url)
        venue.set_price("EUR/USD", 1.1)  # market orders fill here; resting orders it reaches fill
        venue.script(venue.orders_path, AcceptThenStall(2.0))  # -> OutcomeUnknown
        venue.script(venue.orders_path, Reject("INSUFFICIENT_MARGIN"))  # 400 with rejectReason
        venue.advance(60)  # the clock moves; the streams' heartbeats say so
        venue.drop_streams()  # reset every open pricing stream
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from http.server import BaseHTTPRequestHandler
from typing import Any, Final
from urllib.parse import unquote

import pandas as pd

from fakes import DROPPED, Answer, FakeServer, Reply, Request, reset
from fakes.binance import AcceptThenStall, DropBefore
from reinforcetrade.core.clock import Clock

__all__ = [
    "ACCOUNT_ID", "DROPPED", "AcceptThenStall", "DropBefore", "EchoAuth", "FakeOanda",
    "FakeOrder", "OandaInstrument", "RateLimited", "Reject", "Unavailable",
]  # fmt: skip

ACCOUNT_ID: Final = "101-004-1234567-001"
GRANULARITY_S: Final[dict[str, int]] = {
    "S5": 5, "M1": 60, "M5": 300, "M15": 900, "M30": 1800, "H1": 3600, "H4": 14_400, "D": 86_400,
}  # fmt: skip
NS: Final = 1_000_000_000
_DROP: Final = "_DROP"  # a queued instruction to cut the stream there


@dataclass(frozen=True)
class OandaInstrument:
    """One instrument as `GET /instruments` lists it."""

    name: str
    display_precision: int
    pip_location: int
    units_precision: int = 0
    minimum: str = "1"
    maximum: str = "100000000"
    margin_rate: str = "0.0333"

    def json(self) -> dict[str, Any]:
        """Return the wire form."""
        base, quote = self.name.split("_")
        return {
            "name": self.name, "type": "CURRENCY", "displayName": f"{base}/{quote}",
            "pipLocation": self.pip_location, "displayPrecision": self.display_precision,
            "tradeUnitsPrecision": self.units_precision, "minimumTradeSize": self.minimum,
            "maximumTrailingStopDistance": "1.00000", "minimumTrailingStopDistance": "0.00050",
            "maximumPositionSize": "0", "maximumOrderUnits": self.maximum,
            "marginRate": self.margin_rate,
        }  # fmt: skip


DEFAULT_INSTRUMENTS: Final = (
    OandaInstrument("EUR_USD", 5, -4),
    OandaInstrument("USD_JPY", 3, -2, margin_rate="0.04"),
)


@dataclass
class FakeOrder:
    """An order at the venue."""

    id: str
    client_id: str | None
    type: str
    instrument: str
    units: Decimal
    price: Decimal | None
    price_bound: Decimal | None
    time_in_force: str
    position_fill: str
    create_time: int
    state: str = "PENDING"
    filling_txn: str | None = None
    cancelling_txn: str | None = None
    done_time: int | None = None

    def json(self) -> dict[str, Any]:
        """Return the wire form (GET /orders/{spec})."""
        out: dict[str, Any] = {
            "id": self.id, "createTime": _rfc(self.create_time), "state": self.state,
            "type": self.type, "instrument": self.instrument, "units": str(self.units),
            "timeInForce": self.time_in_force, "positionFill": self.position_fill,
            "triggerCondition": "DEFAULT",
        }  # fmt: skip
        if self.client_id is not None:
            out["clientExtensions"] = {"id": self.client_id}
        if self.price is not None:
            out["price"] = str(self.price)
        if self.price_bound is not None:
            out["priceBound"] = str(self.price_bound)
        if self.filling_txn is not None:
            out |= {"fillingTransactionID": self.filling_txn, "filledTime": _rfc(self.done_time)}
        if self.cancelling_txn is not None:
            out |= {"cancellingTransactionID": self.cancelling_txn,
                    "cancelledTime": _rfc(self.done_time)}  # fmt: skip
        return out


# -- faults ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Reject:
    """Refuse an order request with OANDA's 400 body (``orderRejectTransaction.rejectReason``)."""

    reason: str
    status: int = 400
    message: str = "The order request was rejected"

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Return the rejection without acting."""
        txn = {"type": "MARKET_ORDER_REJECT", "rejectReason": self.reason}
        body = {
            "orderRejectTransaction": txn,
            "errorCode": self.reason,
            "errorMessage": self.message,
        }
        return Reply.json(body, self.status)


@dataclass(frozen=True)
class RateLimited:
    """Answer 429 with a Retry-After header; the venue never acts."""

    retry_after: float = 1.0

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Refuse the request."""
        reply = Reply.json({"errorMessage": "Requests per second exceeded"}, 429)
        return replace(reply, headers=(("Retry-After", f"{self.retry_after:g}"),))


@dataclass(frozen=True)
class Unavailable:
    """Answer 503 (JSON, with Retry-After if given); the venue never acts."""

    retry_after: float | None = 5.0

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Refuse the request."""
        reply = Reply.json({"errorMessage": "Service unavailable, try again later"}, 503)
        if self.retry_after is None:
            return reply
        return replace(reply, headers=(("Retry-After", f"{self.retry_after:g}"),))


@dataclass(frozen=True)
class EchoAuth:
    """Answer 400 with an error message that repeats the Authorization header (a careless proxy)."""

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Leak the header back."""
        leak = request.headers.get("authorization", "")
        return Reply.json({"errorMessage": f"Bad request; you sent Authorization: {leak}"}, 400)


# -- the venue ---------------------------------------------------------------------------------
@dataclass
class _Subscriber:
    instruments: frozenset[str]
    messages: queue.SimpleQueue[dict[str, Any]] = field(default_factory=queue.SimpleQueue)


class FakeOanda(FakeServer):
    """OANDA v20 on 127.0.0.1: one account, two instruments, orders, candles and the stream."""

    def __init__(
        self,
        clock: Clock,
        *,
        account_id: str = ACCOUNT_ID,
        currency: str = "USD",
        balance: float | str = "100000",
        instruments: Sequence[OandaInstrument] = DEFAULT_INSTRUMENTS,
        prices: Mapping[str, float | str] | None = None,
        commission: float | str = "0",
        token: str | None = None,
        heartbeat_seconds: float = 0.1,
    ) -> None:
        super().__init__()
        self.clock = clock
        self.account_id, self.currency = account_id, currency
        self.balance = Decimal(str(balance))
        self.instruments = {i.name: i for i in instruments}
        self.commission = Decimal(str(commission))  # × notional in the account currency
        self.token = token
        self.heartbeat_seconds = heartbeat_seconds
        self.prices: dict[str, Decimal] = {}
        self.ticks: dict[str, list[tuple[int, Decimal]]] = {n: [] for n in self.instruments}
        self.orders: list[FakeOrder] = []
        self.transactions: list[dict[str, Any]] = []
        self.positions: dict[str, tuple[Decimal, Decimal]] = {}  # units, average price
        self.stream_connections = 0
        self._subscribers: list[_Subscriber] = []
        self._state = threading.RLock()
        self.account_path = f"/v3/accounts/{account_id}"
        self.orders_path = f"{self.account_path}/orders"
        self.stream_path = f"{self.account_path}/pricing/stream"
        for symbol, price in (prices or {}).items():
            self.set_price(symbol, price)

    # -- test controls ---------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """Return the venue's time."""
        return self.clock.now_ns()

    def set_price(self, symbol: str, price: float | str | Decimal) -> list[dict[str, Any]]:
        """Trade an instrument at `price` now: fill the resting orders it reaches, stream it."""
        name = _wire(symbol)
        with self._state:
            px = Decimal(str(price))
            self.prices[name] = px
            self.ticks[name].append((self.now_ns, px))
            done = []
            for order in [o for o in self.orders if o.state == "PENDING" and o.instrument == name]:
                txn = self._execute(order)
                if txn is not None:
                    done.append(txn)
            self._publish(name, self._price_message(name))
        return done

    def advance(self, seconds: float) -> None:
        """Move the clock forward (a FixedClock); the next heartbeats carry the new time."""
        with self._state:
            self.clock.advance(int(seconds * NS))  # type: ignore[attr-defined]

    def drop_streams(self, *, reset: bool = False) -> None:
        """Cut every open pricing stream after what was pushed so far (reset: a TCP RST)."""
        with self._state:
            for sub in self._subscribers:
                sub.messages.put({"type": _DROP, "reset": reset})

    def order(self, client_id: str) -> FakeOrder | None:
        """Return the venue's order with a client id."""
        with self._state:
            return next((o for o in self.orders if o.client_id == client_id), None)

    def orders_sent(self, client_id: str | None = None) -> list[dict[str, Any]]:
        """Return the order bodies POSTed (every attempt, acted on or not), optionally by id."""
        sent = [json.loads(r.body)["order"] for r in self.requests_to(self.orders_path)
                if r.method == "POST"]  # fmt: skip
        return [o for o in sent if client_id is None or _client_id(o) == client_id]

    def wait_streams(self, count: int, timeout: float = 5.0) -> bool:
        """Wait until `count` pricing-stream connections have been opened in all."""
        deadline = time.monotonic() + timeout
        while self.stream_connections < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.stream_connections >= count

    # -- serving -----------------------------------------------------------------------------
    def serve_raw(self, handler: BaseHTTPRequestHandler, request: Request) -> bool:
        """Serve the pricing stream on its connection (every other request is answered)."""
        if request.method != "GET" or request.path != self.stream_path:
            return False
        self._serve_stream(handler, request)
        return True

    def answer(self, request: Request) -> Reply:
        """Return the normal reply: authorization first, then the route."""
        refusal = self._refuse(request)
        if refusal is not None:
            return refusal
        path = request.path
        if path.startswith("/v3/instruments/") and path.endswith("/candles"):
            return self._candles(path.split("/")[3], request.query)
        if not path.startswith(self.account_path + "/"):
            if path.startswith("/v3/accounts/"):
                return _error(403, "The provided request was forbidden.")
            return self.not_found(request)
        parts = path[len(self.account_path) + 1 :].split("/")
        with self._state:
            return self._account_route(request, parts)

    def not_found(self, request: Request) -> Reply:
        """Return v20's 404 for an unknown route."""
        return _error(404, f"The requested resource {request.path} was not found")

    def _refuse(self, request: Request) -> Reply | None:
        auth = request.headers.get("authorization", "")
        token = auth.removeprefix("Bearer ")
        if not auth.startswith("Bearer ") or not token or (self.token and token != self.token):
            return _error(401, "Insufficient authorization to perform request.")
        return None

    def _account_route(self, request: Request, parts: list[str]) -> Reply:
        method, query = request.method, request.query
        head = parts[0]
        if method == "GET" and parts == ["instruments"]:
            rows = [i.json() for i in self.instruments.values()]
            return self._ok({"instruments": rows})
        if method == "GET" and parts == ["summary"]:
            return self._ok({"account": self._summary()})
        if method == "GET" and parts == ["openPositions"]:
            return self._ok({"positions": self._open_positions()})
        if method == "GET" and parts == ["pendingOrders"]:
            pending = [o.json() for o in reversed(self.orders) if o.state == "PENDING"]
            return self._ok({"orders": pending})
        if method == "POST" and parts == ["orders"]:
            return self._create(request.body)
        if head == "orders" and len(parts) >= 2:
            order = self._find(unquote(parts[1]))
            if method == "GET" and len(parts) == 2:
                if order is None:
                    return _error(
                        404, "The order ID specified does not exist", "ORDER_DOESNT_EXIST"
                    )
                return self._ok({"order": order.json()})
            if method == "PUT" and parts[2:] == ["cancel"]:
                return self._cancel(order)
        if method == "GET" and head == "transactions":
            return self._transactions(parts[1:], query)
        return self.not_found(request)

    # -- orders ------------------------------------------------------------------------------
    def _create(self, raw: bytes) -> Reply:
        try:
            spec = json.loads(raw)["order"]
            kind, name = str(spec["type"]), str(spec["instrument"])
            units = Decimal(str(spec["units"]))
            prices = {k: None if spec.get(k) is None else Decimal(str(spec[k]))
                      for k in ("price", "priceBound")}  # fmt: skip
        except (ValueError, KeyError, TypeError, ArithmeticError):
            return _error(400, "Invalid value specified for 'order'", "INVALID_ORDER")
        tif = str(spec.get("timeInForce") or ("FOK" if kind == "MARKET" else "GTC"))
        refusal = self._refusal(kind, name, units, prices, tif)
        if refusal is not None:
            return self._rejected(kind, refusal)
        cid = _client_id(spec)
        if cid is not None and self._find(f"@{cid}") is not None:
            return self._rejected(kind, "CLIENT_ORDER_ID_ALREADY_EXISTS")
        create = self._record({
            "type": f"{kind}_ORDER", "instrument": name, "units": str(units),
            "timeInForce": tif, "positionFill": spec.get("positionFill", "DEFAULT"),
            "reason": "CLIENT_ORDER", **({"clientExtensions": {"id": cid}} if cid else {}),
            **({"price": str(prices["price"])} if prices["price"] is not None else {}),
        })  # fmt: skip
        order = FakeOrder(create["id"], cid, kind, name, units, prices["price"],
                          prices["priceBound"], tif, str(spec.get("positionFill", "DEFAULT")),
                          self.now_ns)  # fmt: skip
        self.orders.append(order)
        body: dict[str, Any] = {"orderCreateTransaction": create}
        txn = self._execute(order)
        if txn is not None:
            body[
                "orderFillTransaction" if txn["type"] == "ORDER_FILL" else "orderCancelTransaction"
            ] = txn
        body["relatedTransactionIDs"] = [t["id"] for t in (create, txn) if t]
        return self._ok(body, 201)

    def _rejected(self, kind: str, reason: str) -> Reply:
        txn = self._record({"type": f"{kind}_ORDER_REJECT", "rejectReason": reason})
        body = {"orderRejectTransaction": txn, "relatedTransactionIDs": [txn["id"]],
                "errorCode": reason, "errorMessage": reason.replace("_", " ").capitalize()}  # fmt: skip
        return self._ok(body, 400)

    def _refusal(
        self, kind: str, name: str, units: Decimal, prices: dict[str, Decimal | None], tif: str
    ) -> str | None:
        """Return why v20 would reject an order request outright, or None."""
        inst = self.instruments.get(name)
        checks = [
            (inst is None, "INSTRUMENT_UNKNOWN"),
            (kind not in ("MARKET", "LIMIT", "STOP"), "ORDER_TYPE_NOT_SUPPORTED"),  # the fake's
            (units == 0, "UNITS_INVALID"),
            (kind != "MARKET" and prices["price"] is None, "PRICE_MISSING"),
            ((kind == "MARKET") != (tif in ("FOK", "IOC")), "TIME_IN_FORCE_INVALID"),
        ]
        if inst is not None:
            checks += [
                (_places(units) > inst.units_precision, "UNITS_PRECISION_EXCEEDED"),
                (abs(units) < Decimal(inst.minimum), "UNITS_MIMIMUM_NOT_MET"),  # sic: OANDA's
                (abs(units) > Decimal(inst.maximum), "UNITS_LIMIT_EXCEEDED"),
            ]
            for key, reason in (("price", "PRICE"), ("priceBound", "PRICE_BOUND")):
                value = prices[key]
                exceeded = value is not None and _places(value) > inst.display_precision
                checks.append((exceeded, f"{reason}_PRECISION_EXCEEDED"))
        return next((reason for failed, reason in checks if failed), None)

    def _execute(self, order: FakeOrder) -> dict[str, Any] | None:
        """Fill or cancel an order the market reaches; None leaves it resting."""
        price = self.prices.get(order.instrument)
        buy = order.units > 0
        if price is None:
            return None if order.type != "MARKET" else self._cancel_txn(order, "MARKET_HALTED")
        if order.type == "LIMIT" and (price > order.price if buy else price < order.price):  # type: ignore[operator]
            return None
        if order.type == "STOP":
            trigger, bound = order.price, order.price_bound
            if price < trigger if buy else price > trigger:  # type: ignore[operator]
                return None
            if bound is not None and (price > bound if buy else price < bound):
                return None  # triggered, but beyond its price bound: waits (the fake's choice)
        units = order.units
        held = self.positions.get(order.instrument, (Decimal(0), Decimal(0)))[0]
        if order.position_fill == "REDUCE_ONLY":
            if held == 0 or (held > 0) == buy:
                return self._cancel_txn(order, "REDUCE_ONLY_NOT_REDUCING")  # the fake's name
            units = max(-abs(held), min(abs(held), units))
        if not self._margin_ok(order.instrument, held + units, price):
            return self._cancel_txn(order, "INSUFFICIENT_MARGIN")
        return self._fill(order, units, price)

    def _fill(self, order: FakeOrder, units: Decimal, price: Decimal) -> dict[str, Any]:
        name = order.instrument
        held, average = self.positions.get(name, (Decimal(0), Decimal(0)))
        pl = Decimal(0)
        if held and (held > 0) != (units > 0):  # reduces: realise the profit or loss
            closed = min(abs(held), abs(units))
            pl = self._in_account(closed * (price - average) * (1 if held > 0 else -1), price, name)
        after = held + units
        if after == 0:
            average = Decimal(0)
        elif held == 0 or (held > 0) != (after > 0):
            average = price  # opened, or flipped
        elif (held > 0) == (units > 0):
            average = (held * average + units * price) / after
        self.positions[name] = (after, average)
        commission = (self._in_account(abs(units) * price, price, name) * self.commission).quantize(
            Decimal("0.0001")
        )
        self.balance += pl - commission
        txn = self._record({
            "type": "ORDER_FILL", "orderID": order.id, "instrument": name, "units": str(units),
            "price": str(price), "fullVWAP": str(price), "reason": f"{order.type}_ORDER",
            "pl": f"{pl:.4f}", "financing": "0.0000", "commission": f"{commission:.4f}",
            "guaranteedExecutionFee": "0.0000", "halfSpreadCost": "0.0000",
            "accountBalance": f"{self.balance:.4f}",
            **({"clientOrderID": order.client_id} if order.client_id else {}),
        })  # fmt: skip
        order.state, order.filling_txn, order.done_time = "FILLED", txn["id"], self.now_ns
        return txn

    def _cancel_txn(self, order: FakeOrder, reason: str) -> dict[str, Any]:
        txn = self._record({
            "type": "ORDER_CANCEL", "orderID": order.id, "reason": reason,
            **({"clientOrderID": order.client_id} if order.client_id else {}),
        })  # fmt: skip
        order.state, order.cancelling_txn, order.done_time = "CANCELLED", txn["id"], self.now_ns
        return txn

    def _cancel(self, order: FakeOrder | None) -> Reply:
        if order is None or order.state != "PENDING":
            txn = self._record(
                {"type": "ORDER_CANCEL_REJECT", "rejectReason": "ORDER_DOESNT_EXIST"}
            )
            body = {"orderCancelRejectTransaction": txn, "errorCode": "ORDER_DOESNT_EXIST",
                    "errorMessage": "The Order specified does not exist"}  # fmt: skip
            return self._ok(body, 404)
        txn = self._cancel_txn(order, "CLIENT_REQUEST")
        return self._ok({"orderCancelTransaction": txn, "relatedTransactionIDs": [txn["id"]]})

    def _find(self, spec: str) -> FakeOrder | None:
        if spec.startswith("@"):
            return next((o for o in self.orders if o.client_id == spec[1:]), None)
        return next((o for o in self.orders if o.id == spec), None)

    def _margin_ok(self, name: str, units_after: Decimal, price: Decimal) -> bool:
        used = Decimal(0)
        for other, (units, _avg) in {**self.positions, name: (units_after, price)}.items():
            px = self.prices.get(other, price)
            rate = Decimal(self.instruments[other].margin_rate)
            used += self._in_account(abs(units) * px, px, other) * rate
        return used <= self.balance

    def _in_account(self, amount: Decimal, price: Decimal, name: str) -> Decimal:
        """Return an amount in an instrument's quote currency in the account currency."""
        base, quote = name.split("_")
        if quote == self.currency or base != self.currency:
            return amount  # (a cross's conversion rate is not modelled)
        return amount / price

    # -- account and transactions ------------------------------------------------------------
    def _summary(self) -> dict[str, Any]:
        pending = sum(o.state == "PENDING" for o in self.orders)
        return {
            "id": self.account_id, "alias": "Primary", "currency": self.currency,
            "balance": f"{self.balance:.4f}", "NAV": f"{self.balance:.4f}",
            "openPositionCount": sum(1 for u, _ in self.positions.values() if u),
            "pendingOrderCount": pending, "lastTransactionID": self._last_id(),
        }  # fmt: skip

    def _open_positions(self) -> list[dict[str, Any]]:
        rows = []
        for name, (units, average) in self.positions.items():
            if units == 0:
                continue
            side = {"units": str(units), "averagePrice": str(average), "pl": "0.0000"}
            flat = {"units": "0", "pl": "0.0000"}
            long, short = (side, flat) if units > 0 else (flat, side)
            rows.append({"instrument": name, "long": long, "short": short, "pl": "0.0000"})
        return rows

    def _transactions(self, rest: list[str], query: dict[str, str]) -> Reply:
        types = set(query["type"].split(",")) if query.get("type") else None
        wanted = [t for t in self.transactions if types is None or t["type"] in types]
        if rest == ["idrange"]:
            low, high = int(query["from"]), int(query["to"])
            rows = [t for t in wanted if low <= int(t["id"]) <= high]
            return self._ok({"transactions": rows})
        if len(rest) == 1:
            txn = next((t for t in self.transactions if t["id"] == rest[0]), None)
            if txn is None:
                return _error(404, "The Transaction specified does not exist")
            return self._ok({"transaction": txn})
        if rest:
            return _error(404, "The requested resource was not found")
        start = _parse(query["from"]) if "from" in query else 0
        end = _parse(query["to"]) if "to" in query else self.now_ns
        size = int(query.get("pageSize", "100"))
        if not 1 <= size <= 1000:
            return _error(400, "Invalid value specified for 'pageSize'", "INVALID_PAGESIZE")
        ids = [int(t["id"]) for t in wanted if start <= _parse(t["time"]) <= end]
        kinds = f"&type={query['type']}" if query.get("type") else ""
        pages = [
            f"{self.url}{self.account_path}/transactions/idrange?from={chunk[0]}&to={chunk[-1]}{kinds}"
            for chunk in (ids[i : i + size] for i in range(0, len(ids), size))
        ]
        return self._ok({"from": _rfc(start), "to": _rfc(end), "pageSize": size,
                         "count": len(ids), "pages": pages})  # fmt: skip

    def _record(self, txn: dict[str, Any]) -> dict[str, Any]:
        full = {"id": str(len(self.transactions) + 1000), "time": _rfc(self.now_ns),
                "accountID": self.account_id, "userID": 1234567, **txn}  # fmt: skip
        full["batchID"] = full["id"]
        self.transactions.append(full)
        return full

    def _last_id(self) -> str:
        return self.transactions[-1]["id"] if self.transactions else "999"

    def _ok(self, body: dict[str, Any], status: int = 200) -> Reply:
        return Reply.json({**body, "lastTransactionID": self._last_id()}, status)

    # -- market data -------------------------------------------------------------------------
    def _candles(self, name: str, query: dict[str, str]) -> Reply:
        inst = self.instruments.get(name)
        step = GRANULARITY_S.get(query.get("granularity", "S5"))
        if inst is None:
            return _error(400, "Invalid value specified for 'instrument'", "INVALID_INSTRUMENT")
        if step is None or "M" not in query.get("price", "M"):
            return _error(400, "Invalid value specified for 'granularity' or 'price'")
        count = int(query.get("count", "500"))
        if not 1 <= count <= 5000:
            return _error(400, "Maximum value for 'count' exceeded")
        start = _parse(query["from"]) if "from" in query else 0
        end = _parse(query["to"]) if "to" in query else None
        step_ns, now = step * NS, self.now_ns
        with self._state:
            ticks = list(self.ticks[name])
        buckets: dict[int, list[Decimal]] = {}
        for at, price in ticks:
            buckets.setdefault(at // step_ns * step_ns, []).append(price)
        rows = []
        for ts in sorted(b for b in buckets if b >= start and (end is None or b < end))[:count]:
            prices = buckets[ts]
            mid = {"o": prices[0], "h": max(prices), "l": min(prices), "c": prices[-1]}
            rows.append({
                "complete": ts + step_ns <= now, "volume": len(prices), "time": _rfc(ts),
                "mid": {k: f"{v:.{inst.display_precision}f}" for k, v in mid.items()},
            })  # fmt: skip
        return Reply.json({"instrument": name, "granularity": query.get("granularity", "S5"),
                           "candles": rows})  # fmt: skip

    def _price_message(self, name: str) -> dict[str, Any]:
        price = f"{self.prices[name]:.{self.instruments[name].display_precision}f}"
        book = [{"price": price, "liquidity": 10_000_000}]
        return {"type": "PRICE", "time": _rfc(self.now_ns), "bids": book, "asks": book,
                "closeoutBid": price, "closeoutAsk": price, "status": "tradeable",
                "tradeable": True, "instrument": name}  # fmt: skip

    def _publish(self, name: str, message: dict[str, Any]) -> None:
        for sub in self._subscribers:
            if name in sub.instruments:
                sub.messages.put(message)

    def _serve_stream(self, handler: BaseHTTPRequestHandler, request: Request) -> None:
        """Stream chunked NDJSON: the current prices, then each new price and heartbeats."""
        refusal = self._refuse(request)
        names = frozenset(request.query.get("instruments", "").split(","))
        if refusal is None and not names <= set(self.instruments):
            refusal = _error(400, "Invalid value specified for 'instruments'", "INVALID_INSTRUMENT")
        if refusal is not None:
            self._send(handler, refusal)
            return
        sub = _Subscriber(names)
        with self._state:
            self._subscribers.append(sub)
            self.stream_connections += 1
            for name in sorted(names & set(self.prices)):
                sub.messages.put(self._price_message(name))
        out = handler.wfile
        try:
            out.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\n"
                      b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n")  # fmt: skip
            beat = time.monotonic() + self.heartbeat_seconds
            while not self._stopping.is_set():
                batch = self._drain(sub, beat)
                if batch is None:
                    continue
                for message in batch:
                    if message["type"] == _DROP:  # no closing chunk: a cut stream
                        if message["reset"]:
                            reset(handler)
                        return
                    data = json.dumps(message).encode() + b"\n"
                    out.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                if batch and batch[-1]["type"] == "HEARTBEAT":
                    beat = time.monotonic() + self.heartbeat_seconds
            out.write(b"0\r\n\r\n")
        except OSError:
            pass  # the client went away
        finally:
            with self._state:
                self._subscribers.remove(sub)

    def _drain(self, sub: _Subscriber, beat: float) -> list[dict[str, Any]] | None:
        """Return the queued messages (and a heartbeat when one is due), or None after a wait."""
        try:
            first = sub.messages.get(timeout=0.02)
        except queue.Empty:
            first = None
        with self._state:  # a heartbeat's time is read after every price queued before it
            batch = [] if first is None else [first]
            while not sub.messages.empty():
                batch.append(sub.messages.get())
            if time.monotonic() >= beat:
                batch.append({"type": "HEARTBEAT", "time": _rfc(self.now_ns)})
        return batch or None


# -- wire helpers (independent of the adapter's own, so they check it) --------------------------
def _wire(symbol: str) -> str:
    return symbol.replace("/", "_").upper()


def _client_id(order: Mapping[str, Any]) -> str | None:
    ext = order.get("clientExtensions") or {}
    return None if ext.get("id") is None else str(ext["id"])


def _places(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _rfc(ns: int | None) -> str:
    stamp = pd.Timestamp(int(ns or 0), unit="ns", tz="UTC")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S") + f".{int(ns or 0) % NS:09d}Z"


def _parse(text: str) -> int:
    if "T" not in text:
        return int(Decimal(text) * NS)
    return int(pd.Timestamp(text).value)


def _error(status: int, message: str, code: str | None = None) -> Reply:
    body: dict[str, Any] = {"errorMessage": message}
    if code is not None:
        body["errorCode"] = code
    return Reply.json(body, status)
