"""A fake TWS / IB Gateway: IB's binary socket API on 127.0.0.1, for the real `ib_async` client.

It speaks the wire protocol of server version 157 (the oldest `ib_async` accepts, so the fewest
fields): the handshake (`API\\0` + `v157..178` → server version + connection time), `startApi`
→ `nextValidId` + `managedAccounts`, and the requests `IB.connect()` sends at startup
(positions, open and completed orders, account updates, executions). Orders match against a
price the test sets: market orders fill at it, limit and stop orders rest until `set_price`
reaches them. Fills are `execDetails` + `commissionReport`; historical bars are built from the
prices set over a `FixedClock`. A thread serves each client connection.

    with FakeTws(clock) as tws:
        tws.set_price("AAPL", 190.0)
        tws.script_next_order("reject", "insufficient funds")   # error 201
        tws.script_next_order("drop")    # taken and executed, unacknowledged, connection cut
        tws.drop_connections()

Symbols at the fake: a stock's symbol ('AAPL'), a currency pair as IB's local symbol
('EUR.USD'), a future as 'ES:202612'.
"""

from __future__ import annotations

import datetime as dt
import socket
import struct
import threading
import traceback
from dataclasses import dataclass, field
from typing import Any, Literal, Self

from reinforcetrade.core.clock import FixedClock

SERVER_VERSION = 157
ACCOUNT = "DU1234567"
MAX_CLIENT_VERSION = 178

Script = Literal["reject", "silent", "drop"]


@dataclass
class FakeContract:
    """The contract fields an order or a position carries."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade: str
    multiplier: str
    exchange: str
    currency: str
    local_symbol: str

    @property
    def key(self) -> str:
        """Return the fake's price key: 'AAPL', 'EUR.USD' or 'ES:202612'."""
        if self.sec_type == "CASH":
            return f"{self.symbol}.{self.currency}"
        if self.sec_type == "FUT":
            return f"{self.symbol}:{self.last_trade[:6]}"
        return self.symbol

    def fields(self, *, primary: bool = False) -> list[Any]:
        """Return the 11 fields IB sends for a contract (12 with the primary exchange)."""
        head = [self.con_id, self.symbol, self.sec_type, self.last_trade, 0.0, "",
                self.multiplier, self.exchange]  # fmt: skip
        return [*head, *([""] if primary else []), self.currency, self.local_symbol, ""]


@dataclass
class FakeExecution:
    """One fill at the fake."""

    exec_id: str
    order: FakeOrder
    ts: int
    shares: float
    price: float
    commission: float


@dataclass
class FakeOrder:
    """An order the fake was sent."""

    order_id: int
    client_id: int
    perm_id: int
    contract: FakeContract
    action: str
    quantity: float
    order_type: str
    limit: float | None
    aux: float | None
    tif: str
    order_ref: str
    account: str
    status: str = "Submitted"
    filled: float = 0.0
    average: float = 0.0
    triggered: bool = False
    executions: list[FakeExecution] = field(default_factory=list)

    @property
    def done(self) -> bool:
        """Return True once the order is filled, cancelled or rejected."""
        return self.status in ("Filled", "Cancelled", "Inactive")


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.client_id: int | None = None
        self.lock = threading.Lock()
        self.alive = True

    def send(self, *messages: list[Any]) -> None:
        data = b"".join(_frame(m) for m in messages)
        with self.lock:
            if not self.alive:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.alive = False

    def close(self) -> None:
        with self.lock:
            self.alive = False
            try:
                self.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.sock.close()


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def _frame(fields: list[Any]) -> bytes:
    payload = "".join(_text(f) + "\0" for f in fields).encode()
    return struct.pack(">I", len(payload)) + payload


def _float(text: str) -> float | None:
    if not text:
        return None
    value = float(text)
    return None if value >= 1.7e308 else value


class FakeTws:
    """A fake TWS on 127.0.0.1 with one paper account, matching orders against set prices."""

    def __init__(
        self,
        clock: FixedClock,
        *,
        commission_per_unit: float = 0.005,
        min_commission: float = 1.0,
        cash: float = 100_000.0,
        currency: str = "USD",
    ) -> None:
        self.clock = clock
        self.commission_per_unit = commission_per_unit
        self.min_commission = min_commission
        self.prices: dict[str, float] = {}
        self.ticks: dict[str, list[tuple[int, float, float]]] = {}
        self.orders: list[FakeOrder] = []
        self.executions: list[FakeExecution] = []
        self.cash: dict[str, float] = {currency: cash}
        self.holdings: dict[str, tuple[FakeContract, float, float]] = {}
        self.requests: list[tuple[int, list[str]]] = []  # (message id, fields) as received
        self.errors: list[str] = []  # exceptions inside the fake (a test asserts none)
        self.connects = 0
        self._scripts: list[tuple[Script, str]] = []
        self._history_errors: list[tuple[int, str]] = []
        self._conns: list[_Conn] = []
        self._lock = threading.RLock()
        self._next_id = 1
        self._next_perm = 900_001
        self._next_exec = 1
        self._con_ids: dict[str, int] = {}
        self._sock = socket.create_server(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, name="fake-tws", daemon=True)
        self._threads: list[threading.Thread] = []

    # --- lifecycle ----------------------------------------------------------------------------
    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Stop listening and cut every connection."""
        self._sock.close()
        self.drop_connections()
        self._thread.join(timeout=5)
        for t in self._threads:
            t.join(timeout=5)

    # --- test controls -------------------------------------------------------------------------
    def set_price(self, key: str, price: float, size: float = 1.0) -> None:
        """Trade `key` at `price` now: a tick for the bars, and resting orders that it reaches."""
        with self._lock:
            self.prices[key] = price
            self.ticks.setdefault(key, []).append((self.clock.now_ns(), price, size))
            for order in list(self.orders):
                if not order.done and order.contract.key == key:
                    self._match(order, live=True)

    def advance(self, seconds: float) -> None:
        """Move the clock forward."""
        self.clock.advance(int(seconds * 1e9))

    def script_next_order(self, what: Script, reason: str = "") -> None:
        """Script the next placeOrder: 'reject' (error 201), 'silent' (taken, never
        acknowledged), or 'drop' (taken, never acknowledged, and the connection cut)."""
        with self._lock:
            self._scripts.append((what, reason))

    def fail_next_history(self, code: int = 162, text: str = "pacing violation") -> None:
        """Answer the next historical-data request with an error."""
        with self._lock:
            self._history_errors.append((code, text))

    def stall_next_history(self) -> None:
        """Never answer the next historical-data request."""
        with self._lock:
            self._history_errors.append((0, ""))

    def drop_connections(self) -> None:
        """Cut every client connection (TWS restarting, a network outage)."""
        with self._lock:
            conns, self._conns = self._conns, []
        for conn in conns:
            conn.close()

    def placed(self, order_ref: str) -> list[FakeOrder]:
        """Return the orders the fake received with this client order id."""
        return [o for o in self.orders if o.order_ref == order_ref]

    def received(self, message_id: int) -> list[list[str]]:
        """Return the fields of every message with this id the fake received."""
        return [f for m, f in self.requests if m == message_id]

    @property
    def connections(self) -> int:
        """Return how many client connections are open."""
        return sum(1 for c in self._conns if c.alive)

    # --- the socket ---------------------------------------------------------------------------
    def _accept(self) -> None:
        self._sock.settimeout(0.05)  # to notice `close` (closing does not wake an accept)
        while True:
            try:
                sock, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn = _Conn(sock)
            with self._lock:
                self._conns.append(conn)
                self.connects += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: _Conn) -> None:
        buf = b""
        try:
            buf = _read(conn.sock, buf, 4)
            if buf[:4] != b"API\0":
                conn.close()
                return
            buf = buf[4:]
            _versions, buf = _message(conn.sock, buf)
            now = dt.datetime.fromtimestamp(self.clock.now_ns() / 1e9, dt.UTC)
            conn.send([SERVER_VERSION, now.strftime("%Y%m%d %H:%M:%S UTC")])
            while conn.alive:
                payload, buf = _message(conn.sock, buf)
                fields = payload.decode().split("\0")[:-1]
                with self._lock:
                    self.requests.append((int(fields[0]), fields))
                    self._handle(conn, fields)
        except (ConnectionError, OSError):
            pass
        except Exception:  # a bug in the fake: recorded for the test to fail on
            self.errors.append(traceback.format_exc())
        finally:
            conn.close()

    # --- requests -----------------------------------------------------------------------------
    def _handle(self, conn: _Conn, f: list[str]) -> None:
        handler = {
            71: self._start_api, 3: self._place, 4: self._cancel, 5: self._open_orders,
            16: self._open_orders, 99: self._completed, 7: self._executions, 61: self._positions,
            6: self._account, 76: self._account_multi, 8: self._ids, 49: self._time,
            20: self._history,
        }.get(int(f[0]))  # fmt: skip
        if handler is not None:  # anything else is ignored (recorded in `requests`)
            handler(conn, f)

    def _start_api(self, conn: _Conn, f: list[str]) -> None:
        conn.client_id = int(f[2])
        conn.send([9, 1, self._next_id], [15, 1, ACCOUNT])

    def _open_orders(self, conn: _Conn, f: list[str]) -> None:
        # 5: reqOpenOrders (this client's), 16: reqAllOpenOrders
        every = f[0] == "16"
        out = []
        for o in self.orders:
            if not o.done and (every or o.client_id == conn.client_id):
                out += [_open_order(o), _order_status(o)]
        conn.send(*out, [53, 1])

    def _completed(self, conn: _Conn, f: list[str]) -> None:
        conn.send(*[_completed_order(o) for o in self.orders if o.done], [102])

    def _executions(self, conn: _Conn, f: list[str]) -> None:
        req_id = int(f[2])
        out = []
        for ex in self.executions:
            out += [_exec_details(ex, req_id), _commission(ex)]
        conn.send(*out, [55, 1, req_id])

    def _positions(self, conn: _Conn, f: list[str]) -> None:
        rows = [[61, 3, ACCOUNT, *c.fields(), qty, cost]
                for c, qty, cost in self.holdings.values() if qty]  # fmt: skip
        conn.send(*rows, [62, 1])

    def _account(self, conn: _Conn, f: list[str]) -> None:
        if f[2] == "1":  # subscribe: the whole account, then the end of the download
            rows = [[6, 2, "CashBalance", round(v, 2), ccy, ACCOUNT]
                    for ccy, v in sorted(self.cash.items())]  # fmt: skip
            conn.send(*rows, [54, 1, ACCOUNT])

    def _account_multi(self, conn: _Conn, f: list[str]) -> None:
        conn.send([74, 1, int(f[2])])  # nothing but the end

    def _ids(self, conn: _Conn, f: list[str]) -> None:
        conn.send([9, 1, self._next_id])

    def _time(self, conn: _Conn, f: list[str]) -> None:
        conn.send([49, 1, self.clock.now_ns() // 1_000_000_000])

    def _contract(self, f: list[str]) -> FakeContract:
        # conId, symbol, secType, lastTrade, strike, right, multiplier, exchange, primaryExchange,
        # currency, localSymbol, tradingClass
        sym, sec, last, mult, exch, ccy = f[1], f[2], f[3], f[6], f[7], f[9]
        local = f[10] or (f"{sym}.{ccy}" if sec == "CASH" else sym)
        contract = FakeContract(0, sym, sec, last, mult, exch, ccy, local)
        contract.con_id = self._con_ids.setdefault(contract.key, 100_000 + len(self._con_ids))
        return contract

    def _place(self, conn: _Conn, f: list[str]) -> None:
        order_id = int(f[1])
        order = FakeOrder(
            order_id=order_id, client_id=conn.client_id or 0, perm_id=self._next_perm,
            contract=self._contract(f[2:14]), action=f[16], quantity=float(f[17]),
            order_type=f[18], limit=_float(f[19]), aux=_float(f[20]), tif=f[21],
            order_ref=f[26], account=f[23] or ACCOUNT,
        )  # fmt: skip
        self._next_perm += 1
        self._next_id = max(self._next_id, order_id + 1)
        script, reason = self._scripts.pop(0) if self._scripts else (None, "")
        self.orders.append(order)
        if script == "reject":
            order.status = "Inactive"
            conn.send([4, 2, order_id, 201, f"Order rejected - reason:{reason}"])
            return
        if order.contract.key not in self.prices and order.order_type == "MKT":
            order.status = "Inactive"
            conn.send([4, 2, order_id, 201, "Order rejected - reason:no market data"])
            return
        if script in ("silent", "drop"):
            self._match(order, live=False)
            if script == "drop":
                with self._lock:
                    self._conns = [c for c in self._conns if c is not conn]
                conn.close()
            return
        conn.send(_open_order(order), _order_status(order))
        self._match(order, live=True)

    def _cancel(self, conn: _Conn, f: list[str]) -> None:
        order_id = int(f[2])
        found = [o for o in self.orders if o.order_id == order_id and o.client_id == conn.client_id]
        if not found:
            conn.send([4, 2, order_id, 135, f"Can't find order with id ={order_id}"])
            return
        order = found[0]
        if order.done:
            conn.send([4, 2, order_id, 10148,
                       f"OrderId {order_id} that needs to be cancelled cannot be cancelled, "
                       f"state: {order.status}."])  # fmt: skip
            return
        order.status = "Cancelled"
        conn.send(_order_status(order), [4, 2, order_id, 202, "Order Canceled - reason:"])

    def _match(self, order: FakeOrder, *, live: bool) -> None:
        price = self.prices.get(order.contract.key)
        if price is None:
            return
        buy = order.action == "BUY"
        kind = order.order_type
        if kind in ("STP", "STP LMT") and not order.triggered:
            stop = order.aux or 0.0
            if (buy and price < stop) or (not buy and price > stop):
                return
            order.triggered = True
        if kind in ("LMT", "STP LMT"):
            limit = order.limit or 0.0
            if (buy and price > limit) or (not buy and price < limit):
                return
        self._execute(order, price, live=live)

    def _execute(self, order: FakeOrder, price: float, *, live: bool) -> None:
        qty = order.quantity - order.filled
        commission = max(self.min_commission, self.commission_per_unit * qty)
        ex = FakeExecution(f"0000e0d5.{self._next_exec:08x}.01.01", order, self.clock.now_ns(),
                           qty, price, commission)  # fmt: skip
        self._next_exec += 1
        self.executions.append(ex)
        order.executions.append(ex)
        order.average = (order.average * order.filled + price * qty) / (order.filled + qty)
        order.filled += qty
        order.status = "Filled"
        c = order.contract
        signed = qty if order.action == "BUY" else -qty
        mult = float(c.multiplier or 1)
        _, held, cost = self.holdings.get(c.key, (c, 0.0, 0.0))
        new = held + signed
        cost = (cost * held + price * mult * signed) / new if new and held * new >= 0 else 0.0
        self.holdings[c.key] = (c, new, cost if new else 0.0)
        self.cash[c.currency] = self.cash.get(c.currency, 0.0) - signed * price * mult - commission
        if c.sec_type == "CASH":
            self.cash[c.symbol] = self.cash.get(c.symbol, 0.0) + signed
        if live:
            for conn in self._conns:
                if conn.client_id == order.client_id and conn.alive:
                    conn.send(_exec_details(ex, -1), _open_order(order), _order_status(order),
                              _commission(ex))  # fmt: skip

    def _history(self, conn: _Conn, f: list[str]) -> None:
        req_id = int(f[1])
        if self._history_errors:
            code, text = self._history_errors.pop(0)
            if code == 0:
                return  # stalled
            conn.send([4, 2, req_id, code, f"Historical Market Data Service error message:{text}"])
            return
        contract = self._contract(f[2:14])
        end_text, bar_size, duration = f[15], f[16], f[17]
        now = self.clock.now_ns()
        end = now if not end_text else _parse_end(end_text)
        end = min(end, now)
        step = _bar_nanos(bar_size)
        number, unit = duration.split()
        span = int(number) * {"S": 1, "D": 86_400, "W": 604_800}[unit] * 1_000_000_000
        first = (end - span) // step * step
        ticks = self.ticks.get(contract.key, [])
        rows: list[Any] = []
        count = 0
        for start in range(first, end, step):
            window = [t for t in ticks if start <= t[0] < min(start + step, end + 1)]
            if not window:
                continue
            prices = [p for _, p, _ in window]
            volume = sum(s for _, _, s in window)
            rows += [start // 1_000_000_000, prices[0], max(prices), min(prices), prices[-1],
                     volume, sum(prices) / len(prices), len(window)]  # fmt: skip
            count += 1
        stamp = dt.datetime.fromtimestamp(end / 1e9, dt.UTC).strftime("%Y%m%d %H:%M:%S")
        conn.send([17, req_id, "", stamp, count, *rows])


def _read(sock: socket.socket, buf: bytes, n: int) -> bytes:
    while len(buf) < n:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("client closed the connection")
        buf += chunk
    return buf


def _message(sock: socket.socket, buf: bytes) -> tuple[bytes, bytes]:
    buf = _read(sock, buf, 4)
    size = struct.unpack(">I", buf[:4])[0]
    buf = _read(sock, buf, 4 + size)
    return buf[4 : 4 + size], buf[4 + size :]


def _parse_end(text: str) -> int:
    stamp = text.replace(" UTC", "").replace("-", " ").strip()
    parsed = dt.datetime.strptime(stamp, "%Y%m%d %H:%M:%S").replace(tzinfo=dt.UTC)
    return int(parsed.timestamp()) * 1_000_000_000


def _bar_nanos(bar_size: str) -> int:
    number, unit = bar_size.split()
    seconds = {"sec": 1, "secs": 1, "min": 60, "mins": 60, "hour": 3600, "hours": 3600,
               "day": 86_400}[unit]  # fmt: skip
    return int(number) * seconds * 1_000_000_000


def _num(value: float | None) -> Any:
    return "" if value is None else value


def _order_status(o: FakeOrder) -> list[Any]:
    average = o.average if o.filled else 0.0
    last = o.executions[-1].price if o.executions else 0.0
    return [3, o.order_id, o.status, o.filled, o.quantity - o.filled, average, o.perm_id, 0,
            last, o.client_id, "", 0.0]  # fmt: skip


def _open_order(o: FakeOrder) -> list[Any]:
    """Return an openOrder message as server version 157 lays it out (decoder.openOrder)."""
    return [
        5, o.order_id, *o.contract.fields(),
        o.action, o.quantity, o.order_type, _num(o.limit), _num(o.aux), o.tif, "", o.account,
        "O", 0, o.order_ref, o.client_id, o.perm_id, 0, 0, 0, "", "", "", "", "",
        "",  # faProfile (server < 177)
        *[""] * 29,  # modelCode ... deltaNeutralAuxPrice (no delta-neutral order type)
        *[""] * 7,  # continuousUpdate ... comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart combo routing params
        "", "", "",  # scale init/subs level size, price increment (unset)
        "",  # hedge type
        0, "", "", 0, 0,  # optOutSmartRouting, clearing account/intent, notHeld, no DNC
        "",  # algo strategy
        0, 0, o.status, *[""] * 9, "", "", "", "", "", 0, 0,  # solicited ... randomizePrice
        0,  # conditions
        *[""] * 16,  # adjustedOrderType ... usePriceMgmtAlgo
    ]  # fmt: skip


def _completed_order(o: FakeOrder) -> list[Any]:
    """Return a completedOrder message as server version 157 lays it out."""
    return [
        101, *o.contract.fields(),
        o.action, o.quantity, o.order_type, _num(o.limit), _num(o.aux), o.tif, "", o.account,
        "O", 0, o.order_ref, o.perm_id, 0, 0, 0, "", "", "", "",
        "",  # faProfile (server < 177)
        *[""] * 23,  # modelCode ... deltaNeutralAuxPrice
        *[""] * 5,  # continuousUpdate ... comboLegsDescrip
        0, 0, 0,  # combo legs, order combo legs, smart combo routing params
        "", "", "",  # scale
        "",  # hedge type
        "", "", 0, 0,  # clearing account/intent, notHeld, no DNC
        "",  # algo strategy
        0, o.status, 0, 0,  # solicited, status, randomizeSize, randomizePrice
        0,  # conditions
        "", "", "", 0, 0, "", o.filled, "", 0, "", 0, 0, "",  # trailStopPrice ... parentPermId
        "", o.status,  # completedTime, completedStatus
    ]  # fmt: skip


def _exec_details(ex: FakeExecution, req_id: int) -> list[Any]:
    o = ex.order
    stamp = dt.datetime.fromtimestamp(ex.ts / 1e9, dt.UTC).strftime("%Y%m%d %H:%M:%S")
    side = "BOT" if o.action == "BUY" else "SLD"
    return [11, req_id, o.order_id, *o.contract.fields(), ex.exec_id, f"{stamp} UTC",
            o.account, o.contract.exchange or "SMART", side, ex.shares, ex.price, o.perm_id,
            o.client_id, 0, ex.shares, ex.price, o.order_ref, "", "", "", 0]  # fmt: skip


def _commission(ex: FakeExecution) -> list[Any]:
    return [59, 1, ex.exec_id, round(ex.commission, 6), ex.order.contract.currency, "", "", ""]
