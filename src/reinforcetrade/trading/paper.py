"""`PaperBroker`: the shared simulator's fills on live prices, behind the `Broker` protocol.

Paper trading runs the backtester's own fill model (`simulation`) inside the engine's
`BarStepper`: an order decided at a bar's close fills at the next bar's open, stops and
take-profits trigger inside bars, volume and cash cap what fills. This adapter puts those
simulated orders behind the same protocol as an exchange, so the engine, the order manager and
the journal treat paper and live alike: the engine sends the strategy's orders (the simulator
holds them under their client ids), can cancel them, and reads fills, open orders and
positions back. It never calls an exchange, let alone a private endpoint.

It takes the strategy's own orders only — a market order matching the simulator's pending
order for that symbol, the stop (`stop`) and take-profit (reduce-only `limit`) of the position
the simulator holds — and rejects anything else with the reason.

An order the simulator works over several bars (`execution.algo`, `simulation.slicing`) stays
open, partially filled, until its last child: each child's fill carries the client id
`slicing.child_id(parent, n)` and the parent's exchange id, so it traces back to the parent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Literal

from reinforcetrade.backtesting.records import D_ACTION, D_QTY, D_STOP, D_SYMBOL, D_TAKE
from reinforcetrade.backtesting.stepper import BarStepper, Step
from reinforcetrade.core.codes import Action, ExitReason
from reinforcetrade.simulation.account import (
    F_CHILD,
    F_COMMISSION,
    F_DECISION,
    F_EXIT,
    F_PRICE,
    F_QTY,
    F_REFERENCE,
    F_SIDE,
    F_SLIPPAGE,
    F_SYMBOL,
    F_T,
    QTY,
    STOP,
    TAKE,
)
from reinforcetrade.simulation.orders import DEC, ENTRY, KIND, NONE
from reinforcetrade.simulation.slicing import child_id
from reinforcetrade.trading.broker import (
    BrokerFill,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderSide,
    OrderState,
    VenueStatus,
)
from reinforcetrade.trading.orders import OrderManager

Role = Literal["decision", "stop", "take"]
_INTRABAR = {int(ExitReason.STOP_LOSS): "stop", int(ExitReason.TAKE_PROFIT): "take"}


@dataclass
class _Order:
    request: OrderRequest
    s: int
    role: Role
    decision: int
    state: OrderState
    notional: float = 0.0


class PaperBroker:
    """The simulator's orders and fills as a venue (`attach` it to the engine's stepper)."""

    name = "paper"

    def __init__(self, stepper: BarStepper | None = None, *, session: str = "0") -> None:
        self._stepper = stepper
        self.session = session
        self._orders: dict[str, _Order] = {}
        self._fills: list[BrokerFill] = []
        self._count = 0
        # this step's stop/take fills that came before their order was placed (the entry
        # filled at the open and its stop triggered in the same bar): (symbol, role) -> fill
        self._orphans: dict[tuple[int, str], int] = {}

    def attach(self, stepper: BarStepper, session: str) -> None:
        """Trade on this stepper's simulator; `session` makes trade ids unique per run."""
        self._stepper = stepper
        self.session = session

    @property
    def stepper(self) -> BarStepper:
        """Return the simulator this broker fills on."""
        if self._stepper is None:
            raise RuntimeError("the paper broker is not attached to an engine's simulator")
        return self._stepper

    # -- the Broker protocol -------------------------------------------------------------
    def create_order(self, request: OrderRequest) -> OrderState:
        """Hold one of the strategy's orders under its client id; reject any other."""
        known = self._orders.get(request.client_order_id)
        if known is not None:
            return known.state
        s = self._symbol(request.symbol)
        run = self.stepper.run
        role: Role
        if request.type == "market":
            pend_i = run.pending.pend_i
            decision = int(pend_i[s, DEC]) if pend_i[s, KIND] != NONE else -1
            if decision < 0 or any(
                o.decision == decision and o.role == "decision" for o in self._orders.values()
            ):
                raise OrderRejected(
                    f"paper: no order of the strategy's is waiting for {request.symbol} "
                    "(the paper broker fills only the strategy's own decisions)"
                )
            role = "decision"
        else:
            held = float(run.book.pos_f[s, QTY])
            role = "stop" if request.type in ("stop", "stop_limit") else "take"
            level = float(run.book.pos_f[s, STOP if role == "stop" else TAKE])
            orphan = self._orphans.pop((s, role), None)
            if orphan is not None:
                return self._adopt(request, s, role, orphan)
            if (
                held == 0.0
                or not math.isfinite(level)
                or (role == "take" and not request.reduce_only)
            ):
                raise OrderRejected(
                    f"paper: {request.type} orders protect the simulator's open position only; "
                    f"{request.symbol} has none with a {role}"
                )
            decision = -1
        self._count += 1
        state = OrderState(
            request.client_order_id, f"paper-{self.session}-{self._count}", request.symbol,
            "open", 0.0, None,
        )  # fmt: skip
        self._orders[request.client_order_id] = _Order(request, s, role, decision, state)
        return state

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Return an order's state by client id."""
        order = self._orders.get(client_order_id)
        if order is None or order.request.symbol != symbol:
            raise OrderNotFound(f"paper: no order {client_order_id!r} for {symbol}")
        return order.state

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Cancel an open order in the simulator (a filled one stays filled)."""
        order = self._orders.get(client_order_id)
        if order is None or order.request.symbol != symbol:
            raise OrderNotFound(f"paper: no order {client_order_id!r} for {symbol}")
        if order.state.status not in ("open", "partially_filled"):
            return order.state
        run = self.stepper.run
        if order.role == "decision":
            pend_i = run.pending.pend_i
            if pend_i[order.s, KIND] != NONE and int(pend_i[order.s, DEC]) == order.decision:
                pend_i[order.s, KIND] = NONE
        else:
            run.book.pos_f[order.s, STOP if order.role == "stop" else TAKE] = math.nan
        return self._set(order, "cancelled", "cancelled on request")

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Return the orders still working."""
        return [
            o.state
            for o in self._orders.values()
            if o.state.status in ("open", "partially_filled")
            and (symbol is None or o.request.symbol == symbol)
        ]

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        """Return the simulated executions of a symbol since a time."""
        return [
            f for f in self._fills if f.symbol == symbol and (since_ns is None or f.ts >= since_ns)
        ]

    def positions(self) -> dict[str, float]:
        """Return the simulator's holdings by symbol."""
        pos_f = self.stepper.run.book.pos_f
        return {sym: float(pos_f[s, QTY]) for s, sym in enumerate(self.stepper.symbols)}

    # -- the engine's side ---------------------------------------------------------------
    def absorb(self, step: Step) -> list[BrokerFill]:
        """Turn the fills a step simulated into executions of the orders they belong to."""
        stepper = self.stepper
        book = stepper.run.book
        self._orphans.clear()
        new: list[BrokerFill] = []
        for k in step.fills:
            fi, ff = book.fill_i[k], book.fill_f[k]
            s = int(fi[F_SYMBOL])
            order = self._owner(s, int(fi[F_DECISION]), int(fi[F_EXIT]))
            qty, price = float(ff[F_QTY]), float(ff[F_PRICE])
            client_id = None if order is None else order.request.client_order_id
            if client_id is not None and fi[F_CHILD] > 0:  # a worked order's child
                client_id = child_id(client_id, int(fi[F_CHILD]))
            fill = BrokerFill(
                trade_id=f"{self.session}-{k}",
                client_order_id=client_id,
                symbol=stepper.symbols[s],
                side="buy" if fi[F_SIDE] > 0 else "sell",
                ts=stepper.times[int(fi[F_T])],
                quantity=qty,
                price=price,
                fee=float(ff[F_COMMISSION]),
                exchange_order_id=None if order is None else order.state.exchange_order_id,
                reference_price=float(ff[F_REFERENCE]),
                slippage=float(ff[F_SLIPPAGE]),
            )
            new.append(fill)
            if order is None and int(fi[F_EXIT]) in _INTRABAR:
                self._orphans[(s, _INTRABAR[int(fi[F_EXIT])])] = len(self._fills) + len(new) - 1
            if order is not None:
                order.notional += qty * price
                filled = order.state.filled_quantity + qty
                order.state = replace(
                    order.state, filled_quantity=filled, average_price=order.notional / filled
                )
                self._set(order, "partially_filled", None)
        self._fills.extend(new)
        self._settle()
        return new

    def _adopt(self, request: OrderRequest, s: int, role: Role, index: int) -> OrderState:
        """Place a stop or take-profit whose trigger already filled this bar: filled at once."""
        fill = replace(self._fills[index], client_order_id=request.client_order_id)
        self._count += 1
        exchange_id = f"paper-{self.session}-{self._count}"
        self._fills[index] = replace(fill, exchange_order_id=exchange_id)
        state = OrderState(
            request.client_order_id, exchange_id, request.symbol, "filled", fill.quantity,
            fill.price,
        )  # fmt: skip
        self._orders[request.client_order_id] = _Order(
            request, s, role, -1, state, fill.quantity * fill.price
        )
        return state

    def _owner(self, s: int, decision: int, exit_code: int) -> _Order | None:
        """Return the order a simulated fill belongs to (a stop's fill: the stop order)."""
        role = _INTRABAR.get(exit_code, "decision")
        for order in self._orders.values():
            if (
                order.s != s
                or order.role != role
                or order.state.status
                not in (
                    "open",
                    "partially_filled",
                )
            ):
                continue
            if role != "decision" or order.decision == decision:
                return order
        return None

    def _settle(self) -> None:
        """Close the orders the simulator is done with: filled, expired, or the OCO sibling."""
        run = self.stepper.run
        pend_i, pos_f = run.pending.pend_i, run.book.pos_f
        for order in self._orders.values():
            if order.state.status not in ("open", "partially_filled"):
                continue
            s = order.s
            if order.role == "decision":
                waiting = pend_i[s, KIND] != NONE and int(pend_i[s, DEC]) == order.decision
                if waiting:
                    continue
                asked = order.request.quantity
                done = order.state.filled_quantity
                if done >= asked * (1.0 - 1e-9):
                    self._set(order, "filled", None)
                elif done > 0.0:
                    why = "the rest found no volume or cash (or a stop or its horizon ended it)"
                    self._set(order, "cancelled", why)
                else:
                    self._set(order, "expired", "nothing fillable at the open")
            elif pos_f[s, QTY] == 0.0:
                if order.state.filled_quantity > 0.0:
                    self._set(order, "filled", None)
                else:
                    self._set(order, "cancelled", "the position it protected is closed")

    def _set(self, order: _Order, status: VenueStatus, reason: str | None) -> OrderState:
        order.state = replace(order.state, status=status, reason=reason)
        return order.state

    def _symbol(self, symbol: str) -> int:
        try:
            return self.stepper.symbols.index(symbol)
        except ValueError:
            raise OrderRejected(f"paper: {symbol} is not one of {self.stepper.symbols}") from None


def protect_entries(
    stepper: BarStepper, orders: OrderManager, step: Step, base: int
) -> tuple[int, list[str]]:
    """Place a stop and a take-profit for each entry that filled in a step.

    Returns how many orders were placed and why any stop was refused. `base` is the journal
    number of the stepper's decision 0.
    """
    book = stepper.run.book
    pend_i = stepper.run.pending.pend_i
    filled: dict[int, float] = {}  # entry decision -> quantity filled this step
    for k in step.fills:
        decision = int(book.fill_i[k, F_DECISION])
        if decision >= 0 and book.fill_i[k, F_CHILD] <= 1:  # a worked entry: on its first child
            filled[decision] = filled.get(decision, 0.0) + float(book.fill_f[k, F_QTY])
    placed, refused = 0, []
    for decision, done in filled.items():
        di, df = stepper.decision_rows(range(decision, decision + 1))
        action = int(di[0, D_ACTION])
        if action not in (int(Action.ENTER_LONG), int(Action.ENTER_SHORT)):
            continue
        s = int(di[0, D_SYMBOL])
        working = pend_i[s, KIND] == ENTRY and int(pend_i[s, DEC]) == decision
        qty = float(df[0, D_QTY]) if working else done  # still worked: the whole parent
        symbol = stepper.symbols[s]
        side: OrderSide = "sell" if action == int(Action.ENTER_LONG) else "buy"
        stop, take = float(df[0, D_STOP]), float(df[0, D_TAKE])
        if math.isfinite(stop):
            request = OrderRequest(orders.client_id("s"), symbol, side, "stop", qty,
                                   stop_price=stop, reduce_only=True)  # fmt: skip
            result = orders.submit(request, decision=decision + base)
            placed += 1
            if result.outcome != "placed":
                refused.append(f"{symbol}: the stop was not placed: {result.reason}")
            elif result.order.status == "filled":
                continue  # the stop already triggered inside the entry's bar
        if math.isfinite(take):
            request = OrderRequest(orders.client_id("t"), symbol, side, "limit", qty, price=take,
                                   reduce_only=True)  # fmt: skip
            orders.submit(request, decision=decision + base)
            placed += 1
    return placed, refused
