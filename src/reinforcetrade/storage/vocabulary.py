"""The words the journal accepts in its enumerated columns (enforced by CHECK constraints)."""

from __future__ import annotations

from typing import Final

RUN_KINDS: Final[tuple[str, ...]] = ("backtest", "paper", "live")
RUN_STATUSES: Final[tuple[str, ...]] = ("running", "completed", "stopped", "failed")
RISK_EVENT_KINDS: Final[tuple[str, ...]] = (
    "halt",
    "resume",
    "reducing",
    "breaker",
    "streak_cut",
    "reconcile",
    "alert",
    "stale_data",
)
RISK_STATES: Final[tuple[str, ...]] = ("active", "reducing", "halted")
LIQUIDITY: Final[tuple[str, ...]] = ("maker", "taker")
TRADE_SIDES: Final[tuple[str, ...]] = ("long", "short")
AUDIT_OUTCOMES: Final[tuple[str, ...]] = ("done", "refused", "failed")
RETRAIN_TRIGGERS: Final[tuple[str, ...]] = ("manual", "schedule")
RETRAIN_VERDICTS: Final[tuple[str, ...]] = ("promoted", "kept", "failed")
VENUE_HEALTH: Final[tuple[str, ...]] = ("ok", "degraded", "down")
