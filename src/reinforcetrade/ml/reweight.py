"""The tower's agent weights re-estimated from per-agent hit rates by regime — bounded, explained.

An agent's weight in a regime moves toward its edge there: up when its votes were right more
often than a coin flip, down when less. How far depends on the evidence — the hit rate's
z-score against 50 % — and never more than `max_change` of the weight per re-estimation, never
below `floor`. An agent with fewer than `min_votes` resolved votes in a regime keeps its weight.
Every cell says what it was, what it became and why.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from reinforcetrade.core.codes import REGIME_KEYS
from reinforcetrade.core.errors import UserInputError


@dataclass(frozen=True)
class WeightChange:
    """The weights before and after, and one line of evidence per regime and agent."""

    before: dict[str, dict[str, float]]
    after: dict[str, dict[str, float]]
    evidence: tuple[dict[str, Any], ...]
    source: str = ""  # whose votes the hit rates came from

    @property
    def changed(self) -> bool:
        """Return True when any weight moved."""
        return self.before != self.after

    def to_dict(self) -> dict[str, Any]:
        """Return the change as plain data (for the retrain record)."""
        return {"source": self.source, "before": self.before, "after": self.after,
                "evidence": list(self.evidence)}  # fmt: skip


def reestimate_weights(
    current: Mapping[str, Mapping[str, float]],
    hits: pd.DataFrame,
    agents: Sequence[str],
    *,
    max_change: float = 0.25,
    min_votes: int = 30,
    floor: float = 0.05,
    source: str = "",
) -> WeightChange:
    """Return the weights of `agents` per regime moved by their hit rates (`ml.hit_rates` table).

    The factor applied is 1 + max_change · tanh(z / 2), z = (hit rate − 0.5) / its standard
    error: a weight moves at most `max_change` of itself, and little on weak evidence. An agent
    missing from a regime's row starts from the row's mean (as the tower reads it).

    >>> hits = pd.DataFrame({"agent": ["trend"], "regime": ["trending"], "votes": [400],
    ...                      "hit_rate": [0.6], "hit_rate_se": [0.0245]})
    >>> change = reestimate_weights({"trending": {"trend": 0.5, "short_term": 0.5}}, hits,
    ...                             ["trend", "short_term"])
    >>> change.after["trending"]
    {'trend': 0.6209, 'short_term': 0.5}
    """
    if not 0.0 <= max_change <= 1.0:
        raise UserInputError(f"max_change must lie in [0, 1], got {max_change}")
    if min_votes < 1 or floor < 0.0:
        raise UserInputError(f"min_votes must be ≥ 1 and floor ≥ 0, got {min_votes}, {floor}")
    missing = {"agent", "regime", "votes", "hit_rate", "hit_rate_se"} - set(hits.columns)
    if missing:
        raise UserInputError(f"the hit-rate table lacks columns {sorted(missing)}")
    found: dict[tuple[str, str], Mapping[Any, Any]] = {
        (str(r["agent"]), str(r["regime"])): r for r in hits.to_dict("records")
    }
    before: dict[str, dict[str, float]] = {}
    after: dict[str, dict[str, float]] = {}
    evidence = []
    for regime in REGIME_KEYS:
        row = dict(current.get(regime, {}))
        default = sum(row.values()) / len(row) if row else 1.0
        before[regime], after[regime] = {}, {}
        for agent in agents:
            old = float(row.get(agent, default))
            new, why, z = old, "", math.nan
            seen = found.get((agent, regime))
            votes = int(seen["votes"]) if seen is not None else 0
            rate = float(seen["hit_rate"]) if seen is not None else math.nan
            se = float(seen["hit_rate_se"]) if seen is not None else math.nan
            if votes < min_votes or not math.isfinite(rate):
                why = f"{votes} resolved votes, fewer than {min_votes}: kept"
            else:
                z = (rate - 0.5) / se if se > 0 else math.copysign(math.inf, rate - 0.5)
                z = 0.0 if rate == 0.5 else z
                new = max(old * (1.0 + max_change * math.tanh(z / 2.0)), floor)
                why = f"hit rate {rate:.1%} over {votes} votes (z = {z:+.2f})"
            before[regime][agent] = round(old, 4)
            after[regime][agent] = round(new, 4)
            evidence.append({
                "regime": regime, "agent": agent, "votes": votes,
                "hit_rate": None if math.isnan(rate) else rate,
                "z": None if not math.isfinite(z) else z,
                "before": round(old, 4), "after": round(new, 4), "why": why,
            })  # fmt: skip
    return WeightChange(before, after, tuple(evidence), source)
