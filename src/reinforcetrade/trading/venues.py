"""`RoutedBroker`: several venues for the same instruments behind one `Broker`, each order routed.

The live engine, the order manager and the live routing (`trading.live`) see one broker; behind
it, each order is routed by the Execution Agent's `Router` (`agents.execution`) across the
venues quoting the instrument, by expected all-in cost, and sent as one child order per venue
(client ids `parent.1`, `parent.2`, … — `simulation.slicing.child_id`). What the order manager
asks of the parent is answered from its children:

- **create**: quotes from every venue (top of book, fee, minimum, room: the free balance; a
  quote that fails or is older than `stale_quote_s` counts as a failed call and leaves that
  venue out), the route, then `on_plan(parent, order)` — the journal records where it goes and
  why before any child is sent — then the children. A child the venue did not take
  (unavailable, or absent after a lost answer) is routed again once among the other venues;
  refusals stay refused. The parent's state sums its children's.
- **fetch / cancel**: each child at its venue; the parent is done when every child is.
- **fills**: every venue's executions; a child's carry the parent's client id, the venue's
  name, the child's arrival price (the venue's quote for the side when routed) and latency.
- **positions**: every venue's balances summed (`venue_positions` keeps them apart for the
  per-venue reconciliation); a venue that cannot be asked fails the call — never read as flat.

Every outcome updates the venue's record in the router (a market child's fill: slippage
against its arrival price, filled share, latency; a refusal; a failed call), told through
`on_stats` (the engine keeps it in the journal) and, when a venue's health changes,
`on_change` (the engine alerts). A venue that is down is skipped until its cool-down ends.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any, Protocol, cast, runtime_checkable

from reinforcetrade.agents.execution import Router
from reinforcetrade.agents.routing import Health, Route, VenueQuote
from reinforcetrade.agents.venue_quality import HealthChange, VenueStats
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.simulation.slicing import child_id
from reinforcetrade.storage import Journal
from reinforcetrade.storage.rows import OrderRow, VenueStatsRow
from reinforcetrade.trading.broker import (
    Broker,
    BrokerError,
    BrokerFill,
    BrokerUnavailable,
    OrderNotFound,
    OrderRejected,
    OrderRequest,
    OrderSide,
    OrderState,
    OutcomeUnknown,
    VenueStatus,
)

_OPEN = ("open", "partially_filled")


@runtime_checkable
class QuotingBroker(Broker, Protocol):
    """A venue the router can price: a `Broker` that quotes an instrument for a side."""

    def quote(self, symbol: str, side: OrderSide) -> VenueQuote:
        """Return the venue's top of book, taker fee, minimum size and room for `side`."""
        ...


@dataclass(frozen=True, slots=True)
class Child:
    """One venue's part of a routed order."""

    venue: str
    client_order_id: str
    quantity: float
    arrival: float  # the venue's quoted price for the side when routed


@dataclass(frozen=True, slots=True)
class RoutedOrder:
    """A parent order: the route(s) chosen and the child sent to each venue."""

    parent: str
    symbol: str
    routes: tuple[dict[str, Any], ...]  # the first choice, then any re-route of a failed child
    children: tuple[Child, ...]

    @property
    def venues(self) -> str:
        """Return the venues of its children, in order ('a,b')."""
        return ",".join(dict.fromkeys(c.venue for c in self.children))

    def to_dict(self) -> dict[str, Any]:
        """Return what the journal records on the order: the route, its children, re-routes."""
        first = dict(self.routes[0]) if self.routes else {}
        return {**first, "children": [[c.venue, c.client_order_id, c.quantity, c.arrival]
                                      for c in self.children],
                "reroutes": list(self.routes[1:])}  # fmt: skip

    @classmethod
    def from_dict(cls, parent: str, symbol: str, data: Mapping[str, Any]) -> RoutedOrder:
        """Return a routed order as the journal recorded it (for a restart)."""
        children = tuple(Child(str(v), str(c), float(q), float(a if a is not None else math.nan))
                         for v, c, q, a in data.get("children") or ())  # fmt: skip
        first = {k: v for k, v in data.items() if k not in ("children", "reroutes")}
        return cls(parent, symbol, (first, *(data.get("reroutes") or ())), children)


@dataclass
class _Leg:
    child: Child
    side: OrderSide
    kind: str  # the order type
    state: OrderState | None = None
    outcome: str = "sent"  # sent, placed, rejected, absent, unknown
    reason: str | None = None
    latency_ms: float = math.nan
    recorded: bool = False  # its outcome is in the venue's record


@dataclass
class _Parent:
    request: OrderRequest
    routes: list[dict[str, Any]] = field(default_factory=list)
    legs: list[_Leg] = field(default_factory=list)
    unrouted: float = 0.0

    @property
    def order(self) -> RoutedOrder:
        """Return the order as the journal records it: its routes and children so far."""
        request = self.request
        return RoutedOrder(request.client_order_id, request.symbol, tuple(self.routes),
                           tuple(leg.child for leg in self.legs))  # fmt: skip


class RoutedBroker:
    """Several venues as one broker: orders routed by expected all-in cost, children tracked."""

    def __init__(
        self,
        venues: Sequence[QuotingBroker],
        router: Router | None = None,
        *,
        clock: Clock | None = None,
        stale_quote_s: float = 10.0,
    ) -> None:
        names = [v.name for v in venues]
        if not venues or len(set(names)) != len(names):
            raise UserInputError(f"routing needs venues with distinct names, got {names}")
        self.venues: dict[str, QuotingBroker] = {v.name: v for v in venues}
        self.router = router or Router()
        self.clock = clock or WallClock()
        self.stale_ns = int(stale_quote_s * 1e9)
        self.on_plan: Callable[[str, RoutedOrder], None] | None = None
        self.on_stats: Callable[[VenueStats], None] | None = None
        self.on_change: Callable[[HealthChange], None] | None = None
        self._parents: dict[str, _Parent] = {}
        self._child: dict[tuple[str, str], tuple[str, _Leg]] = {}  # (venue, child id) → parent
        self._by_exchange: dict[tuple[str, str], tuple[str, _Leg]] = {}  # (venue, its order id)
        self._restored: list[_Leg] = []  # children taken back from the journal, not yet asked

    @property
    def name(self) -> str:
        """Return 'routed' with the venues' names."""
        return "routed:" + ",".join(self.venues)

    # -- orders ------------------------------------------------------------------------------
    def create_order(self, request: OrderRequest) -> OrderState:
        """Route the order, record the plan (`on_plan`), send its children; return its state."""
        if request.client_order_id in self._parents:
            raise OrderRejected(f"order {request.client_order_id} was already sent")
        parent = _Parent(request)
        self._plan(parent, request.quantity, exclude=set())
        self._parents[request.client_order_id] = parent
        self._send(parent, parent.legs)
        failed = [leg for leg in parent.legs if leg.outcome in ("absent", "rejected")]
        if failed:  # nothing happened there: once more, among the other venues
            left = sum(leg.child.quantity for leg in failed)
            try:
                fresh = self._plan(parent, left, exclude={leg.child.venue for leg in failed})
            except BrokerError:
                fresh, parent.unrouted = [], parent.unrouted + left
            self._send(parent, fresh)
        return self._state(parent)

    def fetch_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Return a parent's state from its children (a child the venue lacks is absent)."""
        parent = self._parents.get(client_order_id)
        if parent is None:
            return self._at_any(lambda venue: venue.fetch_order(symbol, client_order_id))
        for leg in parent.legs:
            if leg.outcome in ("rejected", "absent") or _final(leg.state):
                continue
            self._ask(leg, partial(self.venues[leg.child.venue].fetch_order, symbol))
        return self._state(parent)

    def cancel_order(self, symbol: str, client_order_id: str) -> OrderState:
        """Cancel every child still working; a child that filled first is booked as filled."""
        parent = self._parents.get(client_order_id)
        if parent is None:
            return self._at_any(lambda venue: venue.cancel_order(symbol, client_order_id))
        for leg in parent.legs:
            if leg.outcome in ("placed", "unknown") and not _final(leg.state):
                self._ask(leg, partial(self.venues[leg.child.venue].cancel_order, symbol))
        return self._state(parent)

    def open_orders(self, symbol: str | None = None) -> list[OrderState]:
        """Return every venue's open orders (a child's under its parent's client id)."""
        found: dict[str, OrderState] = {}
        for name, venue in self.venues.items():
            for state in venue.open_orders(symbol):
                owner = self._child.get((name, state.client_order_id))
                if owner is None:
                    found[f"{name}:{state.client_order_id}"] = state
                elif owner[0] not in found:
                    found[owner[0]] = self._state(self._parents[owner[0]])
        return list(found.values())

    def fills(self, symbol: str, since_ns: int | None = None) -> list[BrokerFill]:
        """Return every venue's executions; a child's under its parent, with its venue's figures."""
        out: list[BrokerFill] = []
        for name, venue in self.venues.items():
            self._learn(name, symbol)
            for fill in venue.fills(symbol, since_ns):
                owner = self._child.get((name, fill.client_order_id or "")) or (
                    self._by_exchange.get((name, fill.exchange_order_id or ""))
                )
                if owner is None:
                    out.append(replace(fill, venue=name))
                    continue
                parent, leg = owner
                arrival = leg.child.arrival
                sign = 1.0 if fill.side == "buy" else -1.0
                slip = sign * (fill.price - arrival) * fill.quantity if arrival > 0 else None
                out.append(replace(fill, client_order_id=parent, venue=name,
                                   reference_price=arrival if arrival > 0 else None,
                                   slippage=slip, latency_ms=_number(leg.latency_ms)))  # fmt: skip
        return out

    def positions(self) -> dict[str, float]:
        """Return the holdings of every venue summed by asset (or instrument)."""
        return summed(self.venue_positions())

    def venue_positions(self) -> dict[str, dict[str, float]]:
        """Return each venue's holdings; any venue that cannot be asked fails the call."""
        out = {}
        for name, venue in self.venues.items():
            try:
                out[name] = venue.positions()
            except BrokerError as exc:
                raise type(exc)(f"{name}: {exc}") from exc
        return out

    def journal_to(
        self, journal: Journal, run_id: int, tell: Callable[[VenueStats], None] | None = None
    ) -> None:
        """Keep routes and venue figures in a run's journal (what it recorded taken back first).

        A run that goes on (a live restart) gives back its routed orders and each venue's
        figures, the latency window from the venue's last fills. `tell` hears of each venue's
        figures after they are written.
        """
        orders = journal.orders_by_client_id(run_id=run_id)
        self.restore(orders.values())
        market = {cid for cid, row in orders.items() if row.type == "market"}
        fills = journal.read_table("fills", run_id=run_id).sort_values("time", kind="stable")
        for row in journal.venue_stats(run_id):
            if row.venue not in self.venues:
                continue
            mine = fills[(fills["exchange"] == row.venue) & fills["client_order_id"].isin(market)]
            self.router.restore(_recorded(row), latencies=mine["latency_ms"].dropna().tolist(),
                                filled_quantity=float(mine["qty"].sum()))  # fmt: skip

        def plan(client_order_id: str, order: RoutedOrder) -> None:
            journal.set_order_route(client_order_id, order.venues, order.to_dict())

        def stats(figures: VenueStats) -> None:
            journal.record_venue_stats(run_id, asdict(figures))
            if tell is not None:
                tell(figures)

        self.on_plan, self.on_stats = plan, stats

    def restore(self, orders: Iterable[OrderRow]) -> None:
        """Take back the routed orders the journal recorded (for a restart)."""
        for row in orders:
            data = row.route
            if not data or not data.get("children") or row.client_order_id in self._parents:
                continue
            order = RoutedOrder.from_dict(row.client_order_id, row.symbol, data)
            side: OrderSide = "sell" if row.side == "sell" else "buy"
            request = OrderRequest(row.client_order_id, row.symbol, side, "market", row.qty)
            parent = _Parent(request, list(order.routes))
            done = row.status not in ("pending", "submitted", "partially_filled")
            for child in order.children:
                leg = _Leg(child, side, row.type, outcome="unknown", recorded=done)
                parent.legs.append(leg)
                self._child[(child.venue, child.client_order_id)] = (row.client_order_id, leg)
                self._restored.append(leg)
            self._parents[row.client_order_id] = parent

    # -- routing -----------------------------------------------------------------------------
    def quotes(self, symbol: str, side: OrderSide, *, exclude: set[str]) -> list[VenueQuote]:
        """Return the venues' quotes now; a venue that fails to quote, or quotes stale, is out."""
        now = self.clock.now_ns()
        out = []
        for name, venue in self.venues.items():
            if name in exclude:
                continue
            try:
                quote = venue.quote(symbol, side)
            except BrokerError:
                self._failed(name, now)
                continue
            if quote.time_ns and now - quote.time_ns > self.stale_ns:
                self._failed(name, now)  # a book this old is not the market
                continue
            out.append(quote)
        return out

    def _plan(self, parent: _Parent, quantity: float, *, exclude: set[str]) -> list[_Leg]:
        """Route `quantity` of the parent among the venues; record the plan; return new legs."""
        request = parent.request
        quotes = self.quotes(request.symbol, request.side, exclude=exclude)
        if not quotes:
            raise BrokerUnavailable(f"no venue quotes {request.symbol} now")
        try:
            route = self.router.route(request.side, quantity, quotes,
                                      time=self.clock.now_ns())  # fmt: skip
        except UserInputError as exc:  # every venue down
            raise BrokerUnavailable(str(exc)) from None
        self._tell_changes()
        if not route.legs:
            raise OrderRejected(f"{request.client_order_id}: no venue can take {quantity:g} "
                                f"{request.symbol}: {_why_not(route)}")  # fmt: skip
        price = {v.venue: v.price for v in route.venues}
        n = len(parent.legs)
        new = [
            _Leg(Child(venue, child_id(request.client_order_id, n + k), qty, price[venue]),
                 request.side, request.type)
            for k, (venue, qty) in enumerate(route.legs, start=1)
        ]  # fmt: skip
        parent.routes.append(route.to_dict())
        parent.legs.extend(new)
        parent.unrouted += route.unrouted
        for leg in new:
            self._child[(leg.child.venue, leg.child.client_order_id)] = (request.client_order_id,
                                                                         leg)  # fmt: skip
        if self.on_plan is not None:  # the journal first: where it goes, before it goes
            self.on_plan(request.client_order_id, parent.order)
        return new

    def _send(self, parent: _Parent, legs: list[_Leg]) -> None:
        """Send each leg to its venue once; record what became of it."""
        for leg in legs:
            name = leg.child.venue
            venue = self.venues[name]
            request = replace(parent.request, client_order_id=leg.child.client_order_id,
                              quantity=leg.child.quantity)  # fmt: skip
            started = time.perf_counter()
            try:
                state = venue.create_order(request)
            except OrderRejected as exc:
                leg.outcome, leg.reason = "rejected", f"{name}: {exc}"
                self._tell(self.router.rejected(name, time=self.clock.now_ns()))
                continue
            except BrokerUnavailable as exc:
                leg.outcome, leg.reason = "absent", f"{name}: {exc}"
                self._failed(name, self.clock.now_ns())
                continue
            except OutcomeUnknown as exc:
                self._failed(name, self.clock.now_ns())
                leg.latency_ms = (time.perf_counter() - started) * 1e3
                self._resolve(leg, parent.request.symbol, str(exc))
                continue
            except BrokerError as exc:
                leg.outcome, leg.reason = "unknown", f"{name}: {exc}"
                self._failed(name, self.clock.now_ns())
                continue
            leg.latency_ms = (time.perf_counter() - started) * 1e3
            self._update(leg, state)

    def _resolve(self, leg: _Leg, symbol: str, why: str) -> None:
        """Find out what became of a child whose answer was lost."""
        try:
            self._ask(leg, partial(self.venues[leg.child.venue].fetch_order, symbol),
                      f"{why}; never reached it")  # fmt: skip
        except BrokerError:
            leg.outcome, leg.reason = "unknown", f"{leg.child.venue}: {why}"

    def _update(self, leg: _Leg, state: OrderState) -> None:
        """Keep a child's state; once it is done, put its outcome in the venue's record."""
        leg.state, leg.outcome = state, "placed"
        if state.exchange_order_id:  # the venue's fills may name only its own order id
            key = (leg.child.venue, leg.child.client_order_id)
            self._by_exchange[(leg.child.venue, state.exchange_order_id)] = self._child[key]
        if state.status == "rejected":
            leg.outcome, leg.reason = "rejected", f"{leg.child.venue}: {state.reason or 'rejected'}"
        if not _final(state) or leg.recorded:
            return
        leg.recorded = True
        now = self.clock.now_ns()
        name = leg.child.venue
        if state.status == "rejected":
            self._tell(self.router.rejected(name, time=now))
        elif leg.kind == "market" and leg.child.arrival > 0:  # stops: no arrival to measure from
            self._tell(self.router.filled(
                name, side=leg.side, price=state.average_price or
                leg.child.arrival, arrival=leg.child.arrival, filled=state.filled_quantity,
                asked=leg.child.quantity, latency_ms=_latency(leg), time=now))  # fmt: skip

    def _state(self, parent: _Parent) -> OrderState:
        """Return the parent's state as its children's sum."""
        request, legs = parent.request, parent.legs
        placed = [leg for leg in legs if leg.outcome == "placed" and leg.state is not None]
        reasons = "; ".join(leg.reason for leg in legs if leg.reason)
        if parent.unrouted > 0:
            reasons = "; ".join(filter(None, (reasons, f"{parent.unrouted:g} unrouted: "
                                              "no venue could take it")))  # fmt: skip
        if not placed:
            if any(leg.outcome in ("unknown", "sent") for leg in legs):
                raise OutcomeUnknown(f"{request.client_order_id}: {reasons or 'no answer'}")
            if any(leg.outcome == "rejected" for leg in legs):
                raise OrderRejected(f"{request.client_order_id}: {reasons}")
            raise BrokerUnavailable(f"{request.client_order_id}: no venue took it ({reasons})")
        filled = sum(leg.state.filled_quantity for leg in placed if leg.state)
        value = sum(leg.state.filled_quantity * (leg.state.average_price or 0.0)
                    for leg in placed if leg.state)  # fmt: skip
        working = any(leg.state.status in _OPEN for leg in placed if leg.state) or any(
            leg.outcome == "unknown" for leg in legs
        )
        status: VenueStatus
        if working:
            status = "partially_filled" if filled > 0 else "open"
        elif parent.unrouted <= 0 and all(
            leg.state.status == "filled" for leg in placed if leg.state
        ):
            status = "filled"  # every child filled (each to its venue's quantity step)
        elif filled > 0 or any(leg.state.status == "cancelled" for leg in placed if leg.state):
            status = "cancelled"
        elif all(leg.state.status == "expired" for leg in placed if leg.state):
            status = "expired"
        else:
            status = "rejected"
        ids = ";".join(f"{leg.child.venue}:{leg.state.exchange_order_id}"
                       for leg in placed if leg.state and leg.state.exchange_order_id)  # fmt: skip
        return OrderState(request.client_order_id, ids[:100] or None, request.symbol, status,
                          filled, value / filled if filled > 0 else None,
                          reasons or None)  # fmt: skip

    def _learn(self, venue: str, symbol: str) -> None:
        """Ask a venue once about its children restored from the journal (their exchange ids)."""
        mine = [leg for leg in self._restored
                if leg.child.venue == venue and self._symbol_of(leg) == symbol]  # fmt: skip
        for leg in mine:
            self._restored.remove(leg)
            if leg.state is None and leg.outcome == "unknown":
                self._ask(leg, partial(self.venues[venue].fetch_order, symbol))

    def _symbol_of(self, leg: _Leg) -> str:
        parent_id, _ = self._child[(leg.child.venue, leg.child.client_order_id)]
        return self._parents[parent_id].request.symbol

    def _ask(
        self, leg: _Leg, call: Callable[[str], OrderState], why: str = "never reached it"
    ) -> None:
        """Update a child from its venue's answer (`call(child id)`); none there: absent."""
        try:
            self._update(leg, call(leg.child.client_order_id))
        except OrderNotFound:
            leg.outcome, leg.reason = "absent", f"{leg.child.venue}: {why}"

    def _at_any(self, call: Callable[[QuotingBroker], OrderState]) -> OrderState:
        """Return the first venue's answer about an order not routed here (another session's)."""
        for venue in self.venues.values():
            try:
                return call(venue)
            except OrderNotFound:
                continue
        raise OrderNotFound("no venue has that order")

    # -- the venues' record --------------------------------------------------------------------
    def _failed(self, venue: str, now: int) -> None:
        self._tell(self.router.failed(venue, time=now))

    def _tell(self, stats: VenueStats) -> None:
        if self.on_stats is not None:
            self.on_stats(stats)
        self._tell_changes()

    def _tell_changes(self) -> None:
        for change in self.router.take_changes():
            if self.on_change is not None:
                self.on_change(change)


def _recorded(row: VenueStatsRow) -> VenueStats:
    """Return a venue's figures as the journal recorded them (a missing figure is NaN)."""

    def figure(value: float | None) -> float:
        return math.nan if value is None else value

    return VenueStats(row.venue, row.orders, row.fills, row.rejects, row.errors,
                      figure(row.fill_ratio), figure(row.reject_rate), figure(row.slippage_bps),
                      figure(row.latency_p50_ms), figure(row.latency_p99_ms),
                      cast(Health, row.health))  # fmt: skip


def summed(per_venue: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Return the venues' holdings summed by asset (or instrument)."""
    total: dict[str, float] = {}
    for held in per_venue.values():
        for asset, qty in held.items():
            total[asset] = total.get(asset, 0.0) + qty
    return total


def _final(state: OrderState | None) -> bool:
    return state is not None and state.status not in _OPEN


def _number(value: float) -> float | None:
    return value if math.isfinite(value) else None


def _latency(leg: _Leg) -> float:
    return leg.latency_ms if math.isfinite(leg.latency_ms) else 0.0


def _why_not(route: Route) -> str:
    return "; ".join(f"{v.venue}: {v.why}" for v in route.venues) or "no venue"
