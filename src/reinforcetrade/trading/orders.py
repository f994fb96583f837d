"""`OrderManager`: orders written to the journal before they are sent, never blindly retried.

Every order has a client order id of ours, recorded (status pending) before the venue hears of
it. The venue's answer moves it along the journal's state machine (`storage.orders`). When the
answer is lost (a timeout), the order is looked up by its client id — found: its state is
booked; absent: it is marked as never placed, and the caller may place a new one (a new id) if
it still wants it. A creation is never retried on its own. Rejections are final, with their
reason; an unavailable venue places nothing and says so. Cancels that come too late book the
fill instead. Fills are booked once (by the venue's trade id) and fed to the positions.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from reinforcetrade.core.codes import Side
from reinforcetrade.storage import Journal
from reinforcetrade.storage.orders import TRANSITIONS
from reinforcetrade.storage.rows import OrderRow
from reinforcetrade.trading.broker import (
    Broker,
    BrokerFill,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderState,
    OutcomeUnknown,
)
from reinforcetrade.trading.positions import PositionFill, PositionTracker

Outcome = Literal["placed", "rejected", "unavailable", "absent", "unknown"]

#: the journal status a venue status books (an open order is `submitted`)
BOOKED = {
    "open": "submitted",
    "partially_filled": "partially_filled",
    "filled": "filled",
    "cancelled": "cancelled",
    "rejected": "rejected",
    "expired": "expired",
}


@dataclass(frozen=True)
class Submitted:
    """What became of a submission: the outcome, the order as booked, why."""

    outcome: Outcome
    order: OrderRow
    reason: str | None = None


class OrderManager:
    """Places, follows and cancels one run's orders through a broker, journal first."""

    def __init__(
        self,
        broker: Broker,
        journal: Journal,
        run_id: int,
        *,
        positions: PositionTracker | None = None,
        prefix: str = "rt",
        new_id: Callable[[], str] | None = None,
        on_fill: Callable[[BrokerFill, OrderRow | None], None] | None = None,
    ) -> None:
        """`on_fill` hears of each execution booked for the first time (and its order)."""
        self.broker = broker
        self.journal = journal
        self.run_id = run_id
        self.positions = positions or PositionTracker()
        self.prefix = prefix
        self._new_id = new_id or (lambda: uuid.uuid4().hex[:20])
        self.degraded: str | None = None  # why the venue is not taking orders, if it is not
        self.on_fill = on_fill
        self.on_submit: Callable[[OrderRequest, Submitted], None] | None = None

    def client_id(self, tag: str = "") -> str:
        """Return a fresh client order id (unique across runs and restarts, ≤ 36 characters).

        `tag` (a few letters) marks the order's role in the id, so a restart can read it back.
        """
        return f"{self.prefix}{self.run_id}{tag}-{self._new_id()}"[:36]

    def submit(self, request: OrderRequest, *, decision: int | None = None) -> Submitted:
        """Record the order, send it once, and book what the venue said (or found out)."""
        result = self._submit(request, decision)
        if self.on_submit is not None:
            self.on_submit(request, result)
        return result

    def _submit(self, request: OrderRequest, decision: int | None) -> Submitted:
        self.journal.record_order(
            {
                "client_order_id": request.client_order_id,
                "run_id": self.run_id,
                "decision_number": decision,
                "symbol": request.symbol,
                "side": request.side,
                "type": request.type,
                "qty": request.quantity,
                "price": request.price,
                "stop_price": request.stop_price,
            }
        )
        try:
            state = self.broker.create_order(request)
        except OrderRejected as exc:
            return self._close(request.client_order_id, "rejected", "rejected", str(exc))
        except BrokerUnavailable as exc:
            self.degraded = str(exc)
            reason = f"not taken, the venue is unavailable: {exc}"
            return self._close(request.client_order_id, "unavailable", "rejected", reason)
        except OutcomeUnknown:
            return self.resolve(request.symbol, request.client_order_id)
        self.degraded = None
        return Submitted("placed", self.book(state))

    def resolve(self, symbol: str, client_order_id: str) -> Submitted:
        """Find out what became of an order whose answer was lost, and book it."""
        try:
            state = self.broker.fetch_order(symbol, client_order_id)
        except OrderNotFound:
            reason = "never reached the venue (absent after a lost answer)"
            return self._close(client_order_id, "absent", "rejected", reason)
        except BrokerUnavailable as exc:
            self.degraded = str(exc)
            row = self.journal.orders_by_client_id([client_order_id])[client_order_id]
            return Submitted("unknown", row, f"still unknown: {exc}")  # resolved later
        return Submitted("placed", self.book(state))

    def resolve_pending(self) -> list[Submitted]:
        """Resolve every order of the run still `pending` (e.g. after a crash or a timeout)."""
        return [
            self.resolve(row.symbol, row.client_order_id)
            for row in self.journal.open_orders(self.run_id)
            if row.status == "pending"
        ]

    def cancel(self, symbol: str, client_order_id: str) -> OrderRow:
        """Cancel an order; a fill that beat the cancel is booked as a fill, never as cancelled."""
        try:
            state = self.broker.cancel_order(symbol, client_order_id)
        except OutcomeUnknown:
            state = self.broker.fetch_order(symbol, client_order_id)
        return self.book(state)

    def book(self, state: OrderState) -> OrderRow:
        """Book a venue's order state in the journal (moving along the allowed transitions)."""
        rows = self.journal.orders_by_client_id([state.client_order_id])
        row = rows.get(state.client_order_id)
        if row is None:
            raise KeyError(f"order {state.client_order_id!r} is not in the journal")
        target = BOOKED[state.status]
        fields = {
            "exchange_order_id": state.exchange_order_id,
            "filled_qty": state.filled_quantity,
            "avg_price": state.average_price,
        }
        same_fill = state.filled_quantity == row.filled_qty
        if target == row.status and (same_fill or target != "partially_filled"):
            return row  # nothing new: only a partial fill can grow without changing status
        if target not in TRANSITIONS[row.status]:
            if row.status == "pending" and target in TRANSITIONS["submitted"]:
                row = self.journal.update_order(row.client_order_id, "submitted", detail="acked")
            else:
                return row  # an older view of the order than the one booked: keep the newer
        return self.journal.update_order(
            row.client_order_id,
            target,
            detail=f"venue: {state.status}",
            reason=state.reason,
            **fields,
        )

    def sync_fills(self, symbol: str, since_ns: int | None = None) -> int:
        """Book the venue's new executions for a symbol (each once); return how many were new."""
        orders = self.journal.orders_by_client_id(run_id=self.run_id)
        by_exchange_id = {o.exchange_order_id: o for o in orders.values() if o.exchange_order_id}
        new = 0
        for fill in self.broker.fills(symbol, since_ns):
            order = orders.get(fill.client_order_id or "") or by_exchange_id.get(
                fill.exchange_order_id or ""
            )
            venue = fill.venue or self.broker.name
            booked = self.journal.record_fill(
                {
                    "run_id": self.run_id,
                    "client_order_id": None if order is None else order.client_order_id,
                    "exchange": venue,
                    "exchange_trade_id": fill.trade_id,
                    "symbol": fill.symbol,
                    "side": fill.side,
                    "time": fill.ts,
                    "qty": fill.quantity,
                    "price": fill.price,
                    "fee": fill.fee,
                    "fee_currency": fill.fee_currency,
                    "reference_price": fill.reference_price,
                    "slippage": fill.slippage,
                    "slippage_bps": _bps(fill.price, fill.reference_price),
                    "latency_ms": fill.latency_ms,
                    "reconciliation": order is None,
                }
            )
            side = Side.BUY if fill.side == "buy" else Side.SELL
            self.positions.apply(
                PositionFill(
                    f"{venue}:{fill.symbol}:{fill.trade_id}",
                    fill.ts,
                    fill.symbol,
                    side,
                    fill.quantity,
                    fill.price,
                    _quote_fee(fill.fee, fill.fee_currency, fill.symbol, fill.price),
                )
            )
            new += int(booked)
            if booked and self.on_fill is not None:
                self.on_fill(fill, order)
        return new

    def _close(self, client_order_id: str, outcome: Outcome, status: str, reason: str) -> Submitted:
        row = self.journal.update_order(client_order_id, status, reason=reason, detail=outcome)
        return Submitted(outcome, row, reason)


def _quote_fee(fee: float, currency: str | None, symbol: str, price: float) -> float:
    """Return a fee in the quote currency (a fee paid in the base asset is worth fee × price)."""
    base = symbol.split("/")[0]
    return fee * price if currency == base else fee


def _bps(price: float, reference: float | None) -> float | None:
    """Return a fill's distance from its reference price in basis points (None if unknown)."""
    if reference is None or not reference > 0:
        return None
    return abs(price - reference) / reference * 1e4
