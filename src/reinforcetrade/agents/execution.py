"""The Execution Agent: turns decisions into orders and feeds execution quality back.

In a backtest the compiled loop places the orders and folds every market fill's slippage and
latency into the Environment Agent's cost estimate with the same rule (`ewma_step`) this class
uses live; the estimate the loop ends with is handed back to the agent.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from reinforcetrade.agents.environment import EnvironmentAgent
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

    def __init__(self, environment: EnvironmentAgent) -> None:
        self.environment = environment
        self.fills = 0

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

    def record(self, fill: Fill, reference_price: float, predicted_price: float) -> float:
        """Record one fill; return its slippage in bps of the reference price.

        The slippage and its excess over the cost model's predicted price are fed to the
        environment agent.
        """
        bps = abs(fill.price - reference_price) / reference_price * 1e4
        predicted = abs(predicted_price - reference_price) / reference_price * 1e4
        self.environment.observe_fill(bps, fill.latency_ms, predicted)
        self.fills += 1
        return bps

    def record_all(self, fills: Iterable[tuple[Fill, float, float]]) -> None:
        """Record many (fill, reference price, predicted price) triples in order."""
        for fill, reference, predicted in fills:
            self.record(fill, reference, predicted)
