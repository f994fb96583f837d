"""Frozen records that cross boundaries: agent signals, decisions, orders, fills and trades.

Inside the compiled loops these are rows of numeric arrays; these classes are their faces at the
boundary (live engine, journal, dashboard). Reason codes stay numbers until a reader asks for words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from reinforcetrade.core.codes import (
    Action,
    ExitReason,
    Regime,
    Side,
    TrendRegime,
    VolRegime,
    reason_words,
)


@dataclass(frozen=True, slots=True)
class AgentSignal:
    """One agent's view of one bar: a direction in {-1, 0, +1}, a confidence in [0, 1], and why."""

    agent: str
    direction: int
    confidence: float
    features: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.direction not in (-1, 0, 1):
            raise ValueError(f"direction must be -1, 0 or 1, got {self.direction}")
        if not 0.0 <= self.confidence <= 1.0:
            raise ValueError(f"confidence must lie in [0, 1], got {self.confidence}")


@dataclass(frozen=True, slots=True)
class Decision:
    """What the tower and the risk manager decided on one bar for one symbol, with every input."""

    ts: int  # epoch ns of the bar whose close the decision was taken on
    symbol: str
    action: Action
    direction: int
    confidence: float  # the tower's
    regime: Regime
    vol_regime: VolRegime
    trend_regime: TrendRegime
    signals: tuple[AgentSignal, ...]
    weights: tuple[float, ...]
    agreeing: int  # agents agreeing with the direction
    size: float  # fraction of equity (0 when blocked or exiting)
    quantity: float
    stop: float  # NaN when none
    take_profit: float
    reasons: int  # bitmask of `Reason`
    cost_estimate_bps: float
    exit_reason: ExitReason | None = None

    @property
    def reason_text(self) -> tuple[str, ...]:
        """Return the reasons in words."""
        return reason_words(self.reasons)


@dataclass(frozen=True, slots=True)
class Fill:
    """An execution: quantity, price and what it cost beyond the reference price."""

    ts: int
    symbol: str
    side: Side
    quantity: float
    price: float
    commission: float
    slippage: float  # money lost to slippage and spread against the reference price
    latency_ms: float
    decision: int  # index of the Decision that caused it (-1 for none)


@dataclass(frozen=True, slots=True)
class Trade:
    """A round trip: from the first entry fill to the fill that closed the position."""

    symbol: str
    side: Side
    entry_ts: int
    exit_ts: int
    quantity: float
    entry_price: float
    exit_price: float
    commission: float
    slippage: float
    pnl: float
    ret: float
    exit_reason: ExitReason
