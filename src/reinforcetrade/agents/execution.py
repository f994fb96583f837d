"""The Execution Agent: turns decisions into orders, routes them, and feeds execution quality back.

Across several venues it routes each order by expected all-in cost (`agents.routing`), with each
venue's recent slippage, latency and health from its own record of how they executed
(`agents.venue_quality`); every fill updates both that record and the Environment Agent's cost
estimate. In a backtest the compiled loop places the orders and folds every market fill's
slippage and latency into the Environment Agent's cost estimate with the same rule
(`ewma_step`) this class uses live; the estimate the loop ends with is handed back to the agent.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from reinforcetrade.agents.environment import EnvironmentAgent
from reinforcetrade.agents.routing import Route, RouterParams, VenueQuote, route
from reinforcetrade.agents.routing import Side as RouteSide
from reinforcetrade.agents.venue_quality import (
    HealthChange,
    QualityParams,
    VenueQuality,
    VenueStats,
)
from reinforcetrade.config.sections import RoutingConfig
from reinforcetrade.core.codes import Action, Side
from reinforcetrade.core.records import Decision, Fill


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """An order the Execution Agent wants placed: side, quantity, and the decision behind it."""

    symbol: str
    side: Side
    quantity: float
    kind: str  # "market" now; "stop" and "limit" for protective orders
    decision_ts: int
    reduce_only: bool


class Router:
    """Routes orders across venues by expected all-in cost, from its own record of each venue.

    Every outcome it hears of (a fill, a rejection, a failed call) updates that venue's figures
    and health; each change of health is kept in `changes` (oldest first) to alert on.
    """

    def __init__(self, config: RoutingConfig | None = None) -> None:
        config = config or RoutingConfig()
        self.params = RouterParams.from_config(config)
        self.quality = VenueQuality(QualityParams.from_config(config))
        self.changes: list[HealthChange] = []

    def route(
        self, side: RouteSide, quantity: float, quotes: list[VenueQuote], *, time: int
    ) -> Route:
        """Return where an order goes: the venues ranked with their recent execution figures."""
        annotated = []
        for quote in quotes:
            seen, change = self.quality.annotate(quote, time=time)
            annotated.append(seen)
            self._note(change)
        return route(side, quantity, annotated, self.params)

    def filled(
        self, venue: str, *, side: RouteSide, price: float, arrival: float, filled: float,
        asked: float, latency_ms: float, time: int,
    ) -> VenueStats:  # fmt: skip
        """Record an order's execution at a venue; return the venue's figures now."""
        self._note(self.quality.fill(venue, side=side, price=price, arrival=arrival,
                                     filled=filled, asked=asked, latency_ms=latency_ms,
                                     time=time))  # fmt: skip
        return self.quality.stats(venue)

    def rejected(self, venue: str, *, time: int) -> VenueStats:
        """Record an order a venue refused; return the venue's figures now."""
        self._note(self.quality.reject(venue, time=time))
        return self.quality.stats(venue)

    def failed(self, venue: str, *, time: int) -> VenueStats:
        """Record a venue call that failed (unavailable, unknown outcome, stale quote)."""
        self._note(self.quality.error(venue, time=time))
        return self.quality.stats(venue)

    def stats(self, venue: str) -> VenueStats:
        """Return a venue's execution figures."""
        return self.quality.stats(venue)

    def restore(
        self, figures: VenueStats, *, latencies: Sequence[float] = (), filled_quantity: float
    ) -> None:
        """Take back a venue's recorded figures (see `VenueQuality.restore`)."""
        self.quality.restore(figures, latencies=latencies, filled_quantity=filled_quantity)

    def take_changes(self) -> list[HealthChange]:
        """Return the health changes not yet taken, oldest first (and forget them)."""
        changes, self.changes = self.changes, []
        return changes

    def _note(self, change: HealthChange | None) -> None:
        if change is not None:
            self.changes.append(change)


class ExecutionAgent:
    """Places the tower's decisions as orders and reports realised costs to the environment."""

    name = "execution"

    def __init__(self, environment: EnvironmentAgent, routing: RoutingConfig | None = None) -> None:
        self.environment = environment
        self.fills = 0
        self.router = Router(routing)

    @property
    def venues(self) -> VenueQuality:
        """Return the router's record of every venue."""
        return self.router.quality

    @property
    def changes(self) -> list[HealthChange]:
        """Return the venues' health changes, oldest first, to alert on."""
        return self.router.changes

    def route(self, side: Side, quantity: float, quotes: list[VenueQuote], *, time: int) -> Route:
        """Return where an order goes: the venues ranked with their recent execution figures."""
        return self.router.route(_side(side), quantity, quotes, time=time)

    def rejected(self, venue: str, *, time: int) -> None:
        """Record an order a venue refused."""
        self.router.rejected(venue, time=time)

    def failed(self, venue: str, *, time: int) -> None:
        """Record a venue call that failed (unavailable, unknown outcome)."""
        self.router.failed(venue, time=time)

    def intent(self, decision: Decision, position: float) -> OrderIntent | None:
        """Return the order that carries out a decision (None for a blocked entry)."""
        if decision.action in (Action.ENTER_LONG, Action.ENTER_SHORT):
            side = Side.BUY if decision.action == Action.ENTER_LONG else Side.SELL
            return OrderIntent(
                decision.symbol, side, decision.quantity, "market", decision.ts, reduce_only=False
            )
        if decision.action == Action.EXIT and position != 0.0:
            side = Side.SELL if position > 0.0 else Side.BUY
            return OrderIntent(
                decision.symbol, side, abs(position), "market", decision.ts, reduce_only=True
            )
        return None

    def record(
        self,
        fill: Fill,
        reference_price: float,
        predicted_price: float,
        *,
        venue: str | None = None,
        asked: float | None = None,
    ) -> float:
        """Record one fill; return its slippage in bps of the reference price.

        The slippage and its excess over the cost model's predicted price are fed to the
        environment agent; with `venue`, to that venue's record too (`asked`: the quantity the
        order asked for, default the fill's).
        """
        if venue is not None:
            self.router.filled(
                venue, side=_side(fill.side), price=fill.price, arrival=reference_price,
                filled=fill.quantity, asked=fill.quantity if asked is None else asked,
                latency_ms=fill.latency_ms, time=fill.ts,
            )  # fmt: skip
        bps = abs(fill.price - reference_price) / reference_price * 1e4
        predicted = abs(predicted_price - reference_price) / reference_price * 1e4
        self.environment.observe_fill(bps, fill.latency_ms, predicted)
        self.fills += 1
        return bps

    def record_all(self, fills: Iterable[tuple[Fill, float, float]]) -> None:
        """Record many (fill, reference price, predicted price) triples in order."""
        for fill, reference, predicted in fills:
            self.record(fill, reference, predicted)


def _side(side: Side) -> RouteSide:
    return "buy" if side == Side.BUY else "sell"
