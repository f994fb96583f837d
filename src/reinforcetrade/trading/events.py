"""What a trading engine tells the world: alerts, events for monitors, a session's summary."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Alert:
    """Something a person should know now: a stale feed, a halt, a rejected stop."""

    kind: str
    message: str


@dataclass(frozen=True)
class EngineEvent:
    """What the engine saw or did, for monitors: bars, fills, orders, model switches, alerts.

    ``bar``: close_ns, equity, cash, exposure (gross), exposures (per symbol), state, latency_ms,
    stale, decisions; ``control``: action (pause, unpause, flatten, lift_halt), actor, reason,
    detail; ``fill``: symbol, side, qty, price, role, client_order_id, slippage_bps (against the
    reference price, positive: worse; None if unknown); ``order``: symbol, type, side, qty,
    role, client_order_id, outcome (placed, rejected, unavailable, absent, unknown), reason;
    ``breaker``: symbol; ``alert``: alert (its kind), message; ``model``: symbol, timeframe,
    old (the model id in use before; None: none), new, outcome (done, failed), reason (the
    promotion's), detail, bar (ISO time of the first bar the new model decides). Roles: e
    entry, x exit, s stop, t take-profit (None: paper's own ids).
    """

    kind: str
    time: int  # epoch ns
    fields: Mapping[str, object]


@dataclass(frozen=True)
class EngineSummary:
    """How a session went: its run, what it saw and did, why it stopped."""

    run_id: int
    bars: int
    decisions: int
    orders: int
    fills: int
    state: str
    stopped: str
    latencies_ms: npt.NDArray[np.float64]
    alerts: tuple[Alert, ...]
