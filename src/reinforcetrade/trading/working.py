"""Worked entries on a live venue: a large entry sent as child orders over several bars.

The compiled loop decides each entry's algorithm exactly as in a backtest (`execution`
settings; the decision row's `algo`). On a live venue the engine works an entry whose algorithm
is not IMMEDIATE itself, one market child per bar, sized by `slicing.live_child`: the child the
backtest would ask for (`child_target`: equal slices, or the VWAP profile's share from earlier
bars) capped at `execution.participation` × the bar's *expected* volume — its forecast from
earlier bars, since a venue's volume is known only after the bar trades. The first child goes
at once, with the decision; one more on each bar after, the horizon's last bar asking for the
whole remainder. Children are named `slicing.child_id(parent, n)` and journalled with the
parent's decision; after each fill the position's stop is replaced for the quantity now held.

What is left of a worked entry is dropped, with the reason logged, when its horizon ends, its
position is exited (a signal, its stop, a flatten), new entries are withheld (a halt, a pause,
stale data, a venue down, the engine stopping) or a child is refused. Exits are never worked
on a live venue: a position is not left half-closed with its stop cancelled.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from reinforcetrade.backtesting.stepper import BarStepper
from reinforcetrade.simulation.account import QTY
from reinforcetrade.simulation.slicing import Slicing, child_id, live_child
from reinforcetrade.trading.broker import OrderRequest, OrderSide
from reinforcetrade.trading.live import LiveRouting

log = logging.getLogger(__name__)


@dataclass
class Worked:
    """One entry being worked: its parent id, algorithm, what is left, and for how long."""

    s: int
    decision: int
    side: OrderSide
    parent: str
    algo: int
    quantity: float
    remaining: float
    left: int  # bars left in the horizon, counting the one the next child trades in
    children: int = 0
    held: float = 0.0  # the position after the last child


class WorkedEntries:
    """The entries a live engine is working, one child per bar."""

    def __init__(self, stepper: BarStepper, routing: LiveRouting, slicing: Slicing) -> None:
        self.stepper = stepper
        self.routing = routing
        self.slicing = slicing
        self.working: dict[int, Worked] = {}  # by symbol index
        self.done: list[tuple[Worked, str]] = []  # finished or dropped, with why (oldest first)

    def start(self, s: int, decision: int, side: OrderSide, quantity: float, algo: int) -> None:
        """Begin working an entry the loop decided (its first child goes with `work`)."""
        parent = self.routing.orders.client_id("e")
        self.working[s] = Worked(s, decision, side, parent, algo, quantity, quantity,
                                 self.slicing.horizon_bars)  # fmt: skip

    def drop(self, s: int, why: str) -> None:
        """Stop working symbol s's entry: what is left is not sent."""
        worked = self.working.pop(s, None)
        if worked is not None:
            self.routing.release(s, worked.decision)  # the loop may decide on s again
            self._finish(worked, why)

    def drop_all(self, why: str) -> None:
        """Stop working every entry."""
        for s in list(self.working):
            self.drop(s, why)

    def work(self) -> int:
        """Send each worked entry's child for the bar about to trade; return how many were sent."""
        sent = 0
        held = self.stepper.run.book.pos_f[:, QTY]
        for s, worked in list(self.working.items()):
            if worked.children and abs(held[s]) < abs(worked.held) * (1.0 - 1e-6):
                self.drop(s, "the position was reduced (its stop, or an exit)")
                continue
            sent += self._child(worked)
        return sent

    def _child(self, worked: Worked) -> int:
        """Send one child of a worked entry; book it; finish the entry when it is done."""
        t = self.stepper.t  # the bar the child trades in (not seen yet): live_child never reads it
        volumes = self.stepper.volumes(worked.s)
        qty = live_child(self.slicing, worked.algo, worked.remaining, worked.left, volumes, t)
        worked.left -= 1
        if qty > 0.0:
            symbol = self.stepper.symbols[worked.s]
            orders = self.routing.orders
            worked.children += 1
            request = OrderRequest(child_id(worked.parent, worked.children), symbol,
                                   worked.side, "market", qty)  # fmt: skip
            result = orders.submit(request, decision=self.routing.number(worked.decision))
            if result.outcome != "placed":
                self.drop(worked.s, f"child {worked.children} was not placed ({result.reason})")
                return 1
            self.routing.settle(symbol, result.order)
            cid = request.client_order_id
            filled = orders.journal.orders_by_client_id([cid])[cid].filled_qty  # as synced
            worked.remaining = max(worked.remaining - filled, 0.0)
            worked.held = float(self.stepper.run.book.pos_f[worked.s, QTY])
        if worked.left <= 0 or not worked.remaining > 0.0:
            self.working.pop(worked.s, None)
            self._finish(worked, "done" if not worked.remaining > 0.0 else "the horizon ended")
        return int(qty > 0.0)

    def _finish(self, worked: Worked, why: str) -> None:
        self.done.append((worked, why))
        if worked.remaining > 0.0:
            log.warning("%s: worked entry %s stopped with %g of %g left: %s",
                        self.stepper.symbols[worked.s], worked.parent, worked.remaining,
                        worked.quantity, why)  # fmt: skip
