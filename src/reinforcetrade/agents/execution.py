"""The Execution Agent: turns decisions into orders, routes them, and feeds execution quality back.

Across several venues it routes each order by expected all-in cost (`agents.routing`), with each
venue's recent slippage, latency and health from its own record of how they executed
(`agents.venue_quality`); every fill updates both that record and the Environment Agent's cost
estimate. In a backtest the compiled loop places the orders and folds every market fill's
slippage and latency into the Environment Agent's cost estimate with the same rule
(`ewma_step`) this class uses live; the estimate the loop ends with is handed back to the agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reinforcetrade.agents.environment import EnvironmentAgent
from reinforcetrade.agents.routing import Route, RouterParams, VenueQuote, route
from reinforcetrade.agents.venue_quality import HealthChange, QualityParams, VenueQuality
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


class ExecutionAgent:
    """Places the tower's decisions as orders and reports realised costs to the environment."""

    name = "execution"

    def __init__(self, environment: EnvironmentAgent, routing: RoutingConfig | None = None) -> None:
        config = routing or RoutingConfig()
        self.environment = environment
        self.fills = 0
        self.router = RouterParams.from_config(config)
        self.venues = VenueQuality(QualityParams.from_config(config))
        self.changes: list[HealthChange] = []  # venues' health changes, oldest first, to alert on

    def route(self, side: Side, quantity: float, quotes: list[VenueQuote], *, time: int) -> Route:
        """Return where an order goes: the venues ranked with their recent execution figures."""
        annotated = []
        for quote in quotes:
            seen, change = self.venues.annotate(quote, time=time)
            annotated.append(seen)
            self._note(change)
        return route("buy" if side == Side.BUY else "sell", quantity, annotated, self.router)

    def rejected(self, venue: str, *, time: int) -> None:
        """Record an order a venue refused."""
        self._note(self.venues.reject(venue, time=time))

    def failed(self, venue: str, *, time: int) -> None:
        """Record a venue call that failed (unavailable, unknown outcome)."""
        self._note(self.venues.error(venue, time=time))

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
            side = "buy" if fill.side == Side.BUY else "sell"
            self._note(self.venues.fill(
                venue, side=side, price=fill.price, arrival=reference_price,
                filled=fill.quantity, asked=fill.quantity if asked is None else asked,
                latency_ms=fill.latency_ms, time=fill.ts,
            ))  # fmt: skip
        bps = abs(fill.price - reference_price) / reference_price * 1e4
        predicted = abs(predicted_price - reference_price) / reference_price * 1e4
        self.environment.observe_fill(bps, fill.latency_ms, predicted)
        self.fills += 1
        return bps

    def _note(self, change: HealthChange | None) -> None:
        if change is not None:
            self.changes.append(change)

    def record_all(self, fills: Iterable[tuple[Fill, float, float]]) -> None:
        """Record many (fill, reference price, predicted price) triples in order."""
        for fill, reference, predicted in fills:
            self.record(fill, reference, predicted)
