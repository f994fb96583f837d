"""A deterministic spot matching engine for the fake Binance: balances, orders and fills.

No HTTP and no JSON here: the venue (`binance_trading.py`) turns requests into `place`,
`cancel` and `find` calls and the records into Binance's wire format (`binance_wire.py`).
Prices move only when a test says so (`set_price`): market orders fill at the last price,
resting limit orders fill at their limit when the price reaches it, stop orders trigger when
the price crosses their stop. Refusals are `VenueError`s carrying Binance's code and message.

    engine = MatchingEngine({"BTCUSDT": ("BTC", "USDT")}, {"USDT": Decimal(10_000)}, now_ms)
    engine.set_price("BTCUSDT", Decimal(50_000))
    order = engine.place({"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"})
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from decimal import ROUND_DOWN, Decimal, InvalidOperation
from typing import Final

ZERO: Final = Decimal(0)
EIGHT: Final = Decimal("0.00000001")
ORDER_TYPES: Final = frozenset(
    {"MARKET", "LIMIT", "LIMIT_MAKER", "STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT",
     "TAKE_PROFIT_LIMIT"}
)  # fmt: skip
STOP_TYPES: Final = frozenset({"STOP_LOSS", "STOP_LOSS_LIMIT", "TAKE_PROFIT", "TAKE_PROFIT_LIMIT"})
OPEN_STATUSES: Final = frozenset({"NEW", "PARTIALLY_FILLED"})


class VenueError(Exception):
    """A refusal in Binance's terms: the HTTP status, the error code and its message."""

    def __init__(self, status: int, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.status, self.code, self.msg = status, code, msg


def insufficient_balance() -> VenueError:
    """Return Binance's -2010 for an order the free balance cannot pay for."""
    return VenueError(400, -2010, "Account has insufficient balance for requested action.")


def duplicate_order() -> VenueError:
    """Return Binance's -2010 for a client order id already in use."""
    return VenueError(400, -2010, "Duplicate order sent.")


def order_does_not_exist() -> VenueError:
    """Return Binance's -2013 for a query about an order it does not know."""
    return VenueError(400, -2013, "Order does not exist.")


def unknown_order() -> VenueError:
    """Return Binance's -2011 for a cancel of an order that is unknown or no longer open."""
    return VenueError(400, -2011, "Unknown order sent.")


def filter_failure(name: str) -> VenueError:
    """Return Binance's -1013 for an order that breaks a symbol filter."""
    return VenueError(400, -1013, f"Filter failure: {name}")


def missing(name: str) -> VenueError:
    """Return Binance's -1102 for a mandatory parameter not sent."""
    return VenueError(
        400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed."
    )


@dataclass(frozen=True)
class Filters:
    """A market's PRICE_FILTER, LOT_SIZE, MARKET_LOT_SIZE and NOTIONAL bounds."""

    tick: Decimal = Decimal("0.01")
    min_price: Decimal = Decimal("0.01")
    max_price: Decimal = Decimal(1_000_000)
    step: Decimal = Decimal("0.00001")
    min_qty: Decimal = Decimal("0.00001")
    max_qty: Decimal = Decimal(9_000)
    market_max_qty: Decimal = Decimal(100)
    min_notional: Decimal = Decimal(5)
    max_notional: Decimal = Decimal(9_000_000)

    def check_price(self, price: Decimal) -> None:
        """Refuse a price off the tick grid or out of bounds (PRICE_FILTER)."""
        if not self.min_price <= price <= self.max_price or price % self.tick != 0:
            raise filter_failure("PRICE_FILTER")

    def check_qty(self, qty: Decimal, *, market: bool) -> None:
        """Refuse a quantity off the step grid or out of bounds (LOT_SIZE, MARKET_LOT_SIZE)."""
        if not self.min_qty <= qty <= self.max_qty or (qty - self.min_qty) % self.step != 0:
            raise filter_failure("LOT_SIZE")
        if market and qty > self.market_max_qty:
            raise filter_failure("MARKET_LOT_SIZE")

    def check_notional(self, notional: Decimal) -> None:
        """Refuse an order worth too little or too much (NOTIONAL)."""
        if not self.min_notional <= notional <= self.max_notional:
            raise filter_failure("NOTIONAL")

    def floor_qty(self, qty: Decimal) -> Decimal:
        """Return `qty` rounded down to the step grid."""
        return (qty / self.step).to_integral_value(ROUND_DOWN) * self.step


@dataclass(frozen=True)
class Fill:
    """One trade of one of our orders."""

    trade_id: int
    order_id: int
    symbol: str
    side: str
    price: Decimal
    qty: Decimal
    quote_qty: Decimal
    commission: Decimal
    commission_asset: str
    time: int
    is_maker: bool


@dataclass
class Order:
    """An order as the venue holds it (mutable inside the engine; callers get snapshots)."""

    symbol: str
    order_id: int
    client_id: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal
    price: Decimal
    stop_price: Decimal
    quote_order_qty: Decimal
    time: int
    status: str = "NEW"
    executed: Decimal = ZERO
    cum_quote: Decimal = ZERO
    update_time: int = 0
    working: bool = True
    working_time: int = -1
    fills: list[Fill] = field(default_factory=list)
    lock_asset: str = ""
    locked: Decimal = ZERO  # what this order still holds of `lock_asset`
    lock_price: Decimal = ZERO  # quote held per unit of a BUY

    @property
    def is_open(self) -> bool:
        """Return whether the order can still fill (NEW or PARTIALLY_FILLED)."""
        return self.status in OPEN_STATUSES

    @property
    def remaining(self) -> Decimal:
        """Return the quantity not filled yet."""
        return self.qty - self.executed

    def snapshot(self) -> Order:
        """Return a copy that later fills do not change."""
        return replace(self, fills=list(self.fills))


@dataclass(frozen=True)
class Execution:
    """Something happened to an order: NEW, TRADE (with its fill), CANCELED or EXPIRED."""

    order: Order
    exec_type: str
    fill: Fill | None
    time: int
    cancel_id: str = ""  # a cancel request's own client id (Binance's "c"; "C" is the order's)


@dataclass(frozen=True)
class BalanceChange:
    """The balances of some assets after an order changed them: (asset, free, locked)."""

    balances: tuple[tuple[str, Decimal, Decimal], ...]
    time: int


Event = Execution | BalanceChange


def decimal_param(params: Mapping[str, str], name: str) -> Decimal | None:
    """Return a numeric parameter, None when absent; refuse what is not a plain number."""
    text = params.get(name)
    if text is None or text == "":
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal("NaN")
    if not value.is_finite() or value < 0:
        raise VenueError(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; "
            "legal range is '^([0-9]{1,20})(\\.[0-9]{1,20})?$'.",
        )
    return value


class MatchingEngine:
    """Orders, balances and fills of one account on a set of spot markets; thread-safe."""

    def __init__(
        self,
        markets: Mapping[str, tuple[str, str]],
        balances: Mapping[str, Decimal],
        now_ms: Callable[[], int],
        *,
        filters: Filters | None = None,
        commission: Decimal = Decimal("0.001"),
        client_id_scope: str = "open",
    ) -> None:
        if client_id_scope not in ("open", "all"):
            raise ValueError("client_id_scope is 'open' (Binance's rule) or 'all'")
        self.markets = dict(markets)
        self.filters = filters or Filters()
        self.commission = commission
        self.market_slippage = ZERO  # market orders fill this share worse than the last price
        self.client_id_scope = client_id_scope
        self.listeners: list[Callable[[Event], None]] = []
        self._now = now_ms
        self._free: dict[str, Decimal] = {a: Decimal(v) for a, v in balances.items()}
        self._locked: dict[str, Decimal] = {a: ZERO for a in self._free}
        self._prices: dict[str, Decimal] = {}
        self._orders: dict[int, Order] = {}
        self._fills: list[Fill] = []
        self._next_order_id = 1000
        self._next_trade_id = 5000
        self._lock = threading.RLock()

    # -- prices ----------------------------------------------------------------------------
    def price(self, symbol: str) -> Decimal:
        """Return the last price of a market (Binance id, e.g. 'BTCUSDT')."""
        with self._lock:
            if symbol not in self._prices:
                raise KeyError(f"no price set for {symbol}")
            return self._prices[symbol]

    def set_price(
        self, symbol: str, price: Decimal, *, liquidity: Decimal | None = None
    ) -> list[Fill]:
        """Trade the market at `price`: trigger stops, fill resting orders the price reached.

        `liquidity` caps the base quantity resting orders may fill at this price (oldest
        order first); None means enough for all of them.
        """
        with self._lock:
            self._market(symbol)
            self._prices[symbol] = Decimal(price)
            left = liquidity
            fills: list[Fill] = []
            for order in sorted(self._orders.values(), key=lambda o: o.order_id):
                if order.symbol != symbol or not order.is_open:
                    continue
                triggered = not order.working
                if triggered:
                    if not _triggered(order, self._prices[symbol]):
                        continue
                    order.working, order.working_time = True, self._now()
                fill_px = self._working_fill_price(order, taker=triggered)
                qty = order.remaining if left is None else min(order.remaining, left)
                if fill_px is None or qty <= 0:
                    continue
                fills.append(self._fill(order, qty, fill_px, maker=not triggered))
                self._emit_balances(order)
                if left is not None:
                    left -= qty
            return fills

    # -- orders ----------------------------------------------------------------------------
    def place(self, params: Mapping[str, str], *, fill_ratio: Decimal | None = None) -> Order:
        """Accept a new order (Binance's POST /api/v3/order parameters) and match it.

        `fill_ratio` limits what the order may fill on arrival to that share of its quantity
        (a thin book): a market or IOC order's rest then expires, a GTC limit order's rest
        stays on the book, a FOK order expires whole.
        """
        with self._lock:
            order = self._new_order(params)
            self._check_funds_and_lock(order)
            self._orders[order.order_id] = order
            self._emit(Execution(order.snapshot(), "NEW", None, order.time))
            self._match_on_arrival(order, fill_ratio)
            self._emit_balances(order)
            return order.snapshot()

    def cancel(
        self, symbol: str, order_id: int | None, client_id: str | None, cancel_id: str = ""
    ) -> Order:
        """Cancel an open order; -2011 when it is unknown or no longer open."""
        with self._lock:
            try:
                order = self._find(symbol, order_id, client_id)
            except VenueError:
                raise unknown_order() from None
            if not order.is_open:
                raise unknown_order()
            self._close(order, "CANCELED", cancel_id)
            self._emit_balances(order)
            return order.snapshot()

    def find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        """Return an order by id or client id (the latest with that client id); else -2013."""
        with self._lock:
            return self._find(symbol, order_id, client_id).snapshot()

    def fill(self, order_id: int, qty: Decimal | None = None, price: Decimal | None = None) -> Fill:
        """Fill an open order now, by `qty` (default: all that is left) at `price` (its own)."""
        with self._lock:
            order = self._orders[order_id]
            if not order.is_open:
                raise ValueError(f"order {order_id} is {order.status}, not open")
            qty = order.remaining if qty is None else min(Decimal(qty), order.remaining)
            px = price if price is not None else (order.price or self._prices[order.symbol])
            fill = self._fill(order, qty, Decimal(px), maker=order.type != "MARKET")
            self._emit_balances(order)
            return fill

    def expire(self, order_id: int) -> Order:
        """Expire an open order (what the venue does to a rest it cannot fill)."""
        with self._lock:
            order = self._orders[order_id]
            if order.is_open:
                self._close(order, "EXPIRED")
                self._emit_balances(order)
            return order.snapshot()

    def orders(self, symbol: str | None = None, *, open_only: bool = False) -> list[Order]:
        """Return snapshots of the orders, oldest first."""
        with self._lock:
            return [
                o.snapshot()
                for o in sorted(self._orders.values(), key=lambda o: o.order_id)
                if (symbol is None or o.symbol == symbol) and (o.is_open or not open_only)
            ]

    def fills(self, symbol: str | None = None) -> list[Fill]:
        """Return every fill (of `symbol` if given), oldest first."""
        with self._lock:
            return [f for f in self._fills if symbol is None or f.symbol == symbol]

    def balances(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Return (free, locked) per asset."""
        with self._lock:
            return {a: (self._free[a], self._locked[a]) for a in sorted(self._free)}

    def deposit(self, asset: str, amount: Decimal) -> None:
        """Add `amount` of `asset` to the free balance (negative: withdraw)."""
        with self._lock:
            self._free[asset] = self._free.get(asset, ZERO) + Decimal(amount)
            self._locked.setdefault(asset, ZERO)

    # -- internals -------------------------------------------------------------------------
    def _market(self, symbol: str) -> tuple[str, str]:
        if symbol not in self.markets:
            raise VenueError(400, -1121, "Invalid symbol.")
        return self.markets[symbol]

    def _find(self, symbol: str, order_id: int | None, client_id: str | None) -> Order:
        self._market(symbol)
        if order_id is None and client_id is None:
            raise VenueError(
                400,
                -1102,
                "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
            )
        found = [
            o
            for o in self._orders.values()
            if o.symbol == symbol
            and (order_id is None or o.order_id == order_id)
            and (client_id is None or o.client_id == client_id)
        ]
        if not found:
            raise order_does_not_exist()
        return max(found, key=lambda o: o.order_id)

    def _new_order(self, params: Mapping[str, str]) -> Order:
        """Return the order `params` describe, checked against the rules and filters."""
        symbol, side, kind = (_required(params, name) for name in ("symbol", "side", "type"))
        self._market(symbol)
        if side not in ("BUY", "SELL"):
            raise VenueError(400, -1117, "Invalid side.")
        if kind not in ORDER_TYPES:
            raise VenueError(400, -1116, "Invalid orderType.")
        last = self._prices[symbol]
        qty, price, stop = _order_numbers(params, kind, last, self.filters)
        for value in (price, stop):
            if value is not None:
                self.filters.check_price(value)
        self.filters.check_qty(qty, market=kind == "MARKET")
        self.filters.check_notional(qty * (price or last))
        client_id = params.get("newClientOrderId") or f"fake{self._next_order_id:018d}"
        if any(
            o.client_id == client_id and (o.is_open or self.client_id_scope == "all")
            for o in self._orders.values()
        ):
            raise duplicate_order()
        now, stops = self._now(), kind in STOP_TYPES
        order = Order(
            symbol=symbol,
            order_id=self._next_order_id,
            client_id=client_id,
            side=side,
            type=kind,
            time_in_force=params.get("timeInForce") or "GTC",
            qty=qty,
            price=price or ZERO,
            stop_price=stop or ZERO,
            quote_order_qty=decimal_param(params, "quoteOrderQty") or ZERO,
            time=now,
            update_time=now,
            working=not stops,
            working_time=-1 if stops else now,
        )
        if stops and _triggered(order, last):
            raise VenueError(400, -2010, "Stop price would trigger immediately.")
        if kind == "LIMIT_MAKER" and _crosses(order, last):
            raise VenueError(400, -2010, "Order would immediately match and take.")
        self._next_order_id += 1
        return order

    def _check_funds_and_lock(self, order: Order) -> None:
        base, quote = self.markets[order.symbol]
        if order.side == "BUY":
            last = self._prices[order.symbol]
            if order.type == "MARKET":
                order.lock_price = self._market_price(order)
                need = order.quote_order_qty or order.qty * last
            else:
                order.lock_price = order.price or order.stop_price
                need = order.qty * order.lock_price
            asset = quote
        else:
            asset, need = base, order.qty
        if self._free.get(asset, ZERO) < need:
            raise insufficient_balance()
        self._free[asset] -= need
        self._locked[asset] = self._locked.get(asset, ZERO) + need
        order.lock_asset, order.locked = asset, need

    def _match_on_arrival(self, order: Order, ratio: Decimal | None) -> None:
        last = self._prices[order.symbol]
        takes = order.type == "MARKET" or (order.type == "LIMIT" and _crosses(order, last))
        if not takes:
            return
        qty = order.remaining
        if ratio is not None:
            qty = min(qty, self.filters.floor_qty(order.qty * Decimal(ratio)))
        if order.time_in_force == "FOK" and qty < order.remaining:
            self._close(order, "EXPIRED")
            return
        if qty > 0:
            price = self._market_price(order) if order.type == "MARKET" else last
            self._fill(order, qty, price, maker=False)
        if order.is_open and (order.type == "MARKET" or order.time_in_force in ("IOC", "FOK")):
            self._close(order, "EXPIRED")

    def _market_price(self, order: Order) -> Decimal:
        """Return where a market order fills: the last price, `market_slippage` worse."""
        last = self._prices[order.symbol]
        worse = last * (
            1 + self.market_slippage if order.side == "BUY" else 1 - self.market_slippage
        )
        return worse.quantize(self.filters.tick)

    def _working_fill_price(self, order: Order, *, taker: bool) -> Decimal | None:
        """Return the price a working order fills at now, or None if the price is not there.

        A resting limit order fills at its limit (maker); one a stop just released fills at
        the last price if that is as good (taker), a released stop-market always does.
        """
        last = self._prices[order.symbol]
        if order.type in ("STOP_LOSS", "TAKE_PROFIT"):
            return last
        if not _crosses(order, last):
            return None
        return last if taker else order.price

    def _fill(self, order: Order, qty: Decimal, price: Decimal, *, maker: bool) -> Fill:
        base, quote = self.markets[order.symbol]
        now = self._now()
        quote_qty = (qty * price).quantize(EIGHT)
        if order.side == "BUY":
            spent = min(order.locked, qty * order.lock_price)
            refund = spent - quote_qty
            self._release(order, spent)
            self._free[quote] += refund
            commission, asset = (qty * self.commission).quantize(EIGHT), base
            self._free[base] = self._free.get(base, ZERO) + qty - commission
            self._locked.setdefault(base, ZERO)
        else:
            self._release(order, qty)
            commission, asset = (quote_qty * self.commission).quantize(EIGHT), quote
            self._free[quote] = self._free.get(quote, ZERO) + quote_qty - commission
            self._locked.setdefault(quote, ZERO)
        fill = Fill(
            trade_id=self._next_trade_id,
            order_id=order.order_id,
            symbol=order.symbol,
            side=order.side,
            price=price,
            qty=qty,
            quote_qty=quote_qty,
            commission=commission,
            commission_asset=asset,
            time=now,
            is_maker=maker,
        )
        self._next_trade_id += 1
        order.executed += qty
        order.cum_quote += quote_qty
        order.update_time = now
        order.fills.append(fill)
        order.status = "FILLED" if order.remaining <= 0 else "PARTIALLY_FILLED"
        self._fills.append(fill)
        if order.status == "FILLED" and order.locked > 0:  # a BUY that paid less than held
            self._free[order.lock_asset] += order.locked
            self._release(order, order.locked)
        self._emit(Execution(order.snapshot(), "TRADE", fill, now))
        return fill

    def _release(self, order: Order, amount: Decimal) -> None:
        amount = min(amount, order.locked)
        order.locked -= amount
        self._locked[order.lock_asset] -= amount

    def _close(self, order: Order, status: str, cancel_id: str = "") -> None:
        self._free[order.lock_asset] += order.locked
        self._release(order, order.locked)
        order.status, order.update_time = status, self._now()
        self._emit(Execution(order.snapshot(), status, None, order.update_time, cancel_id))

    def _emit(self, event: Event) -> None:
        for listener in list(self.listeners):
            listener(event)

    def _emit_balances(self, order: Order) -> None:
        assets = self.markets[order.symbol]
        rows = tuple((a, self._free.get(a, ZERO), self._locked.get(a, ZERO)) for a in assets)
        self._emit(BalanceChange(rows, self._now()))


def _required(params: Mapping[str, str], name: str) -> str:
    """Return a mandatory parameter; -1102 when it was not sent."""
    value = params.get(name)
    if not value:
        raise missing(name)
    return value


def _order_numbers(
    params: Mapping[str, str], kind: str, last: Decimal, filters: Filters
) -> tuple[Decimal, Decimal | None, Decimal | None]:
    """Return an order's quantity, price and stop price, refusing what its type lacks."""
    qty, quote_qty = decimal_param(params, "quantity"), decimal_param(params, "quoteOrderQty")
    price, stop = decimal_param(params, "price"), decimal_param(params, "stopPrice")
    if kind == "MARKET" and qty is None and quote_qty is not None:
        qty = filters.floor_qty(quote_qty / last)
    if qty is None:
        raise missing("quantity")
    if kind in ("LIMIT", "LIMIT_MAKER", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT") and price is None:
        raise missing("price")
    if kind in ("LIMIT", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"):
        tif = _required(params, "timeInForce")
        if tif not in ("GTC", "IOC", "FOK"):
            raise VenueError(400, -1115, "Invalid timeInForce.")
    if kind in STOP_TYPES and stop is None:
        raise missing("stopPrice")
    return qty, price, stop


def _triggered(order: Order, last: Decimal) -> bool:
    """Return whether a stop order's trigger is reached at `last`."""
    falling = (order.type.startswith("STOP_LOSS")) == (order.side == "SELL")
    return last <= order.stop_price if falling else last >= order.stop_price


def _crosses(order: Order, last: Decimal) -> bool:
    """Return whether a limit order would take liquidity at `last`."""
    return last <= order.price if order.side == "BUY" else last >= order.price
