"""The Decision Tower: weighs N agents by regime into a direction and a confidence, and gates entry.

The rules are compiled step functions on one bar's numbers, so the backtester's loop and the live
engine call the very same code (DESIGN.md invariant 2).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from reinforcetrade.config.sections import TowerConfig
from reinforcetrade.core.codes import REGIME_KEYS, Reason
from reinforcetrade.core.jit import njit, njit_inline

F8 = npt.NDArray[np.float64]
I1 = npt.NDArray[np.int8]

_CONFIDENCE_OK = int(Reason.CONFIDENCE_OK)
_CONFIDENCE_LOW = int(Reason.CONFIDENCE_LOW)
_CONSENSUS_OK = int(Reason.CONSENSUS_OK)
_CONSENSUS_LOW = int(Reason.CONSENSUS_LOW)
_COST_PENALTY = int(Reason.COST_PENALTY)


class TowerParams(NamedTuple):
    """The tower's numbers, as the compiled loop takes them."""

    entry_confidence: float
    exit_confidence: float
    consensus: int
    cost_penalty: float  # threshold added per bps of realised cost above the cost model's
    cost_penalty_cap: float


@njit_inline
def tower_vote(directions: I1, confidences: F8, weights: F8) -> tuple[int, float, int]:
    """Return (direction, confidence, agreeing agents) from one bar's agent signals.

    Net = Σ wᵢ·dᵢ·cᵢ over agents with a direction; confidence = |net| / Σ wᵢ over those agents,
    so abstaining agents do not dilute it and opposing ones reduce it. Agreeing counts every
    agent whose direction equals the tower's.
    """
    net = 0.0
    active = 0.0
    for i in range(directions.size):
        d = directions[i]
        c = confidences[i]
        if d != 0 and weights[i] > 0.0 and c == c:
            net += weights[i] * d * c
            active += weights[i]
    if active <= 0.0 or net == 0.0:
        return 0, 0.0, 0
    direction = 1 if net > 0.0 else -1
    agreeing = 0
    for i in range(directions.size):
        if directions[i] == direction:
            agreeing += 1
    return direction, min(abs(net) / active, 1.0), agreeing


@njit
def entry_threshold(p: TowerParams, excess_cost_bps: float) -> tuple[float, int]:
    """Return the entry threshold, raised while fills cost more than the cost model predicts.

    `excess_cost_bps` is the running estimate of realised slippage minus the model's prediction
    for the same fills (the Execution Agent's feedback); a penalty of `cost_penalty` per bps,
    at most `cost_penalty_cap`, is added to the threshold.
    """
    if excess_cost_bps != excess_cost_bps or excess_cost_bps <= 0.0:
        return p.entry_confidence, 0
    extra = min(p.cost_penalty * excess_cost_bps, p.cost_penalty_cap)
    if extra <= 0.0:
        return p.entry_confidence, 0
    return min(p.entry_confidence + extra, 1.0), _COST_PENALTY


@njit
def entry_gates(confidence: float, agreeing: int, threshold: float, consensus: int) -> int:
    """Return the reason bits of the two entry gates: confidence and consensus."""
    bits = _CONFIDENCE_OK if confidence >= threshold else _CONFIDENCE_LOW
    bits |= _CONSENSUS_OK if agreeing >= consensus else _CONSENSUS_LOW
    return bits


@njit
def is_reversal(position: float, direction: int, confidence: float, threshold: float) -> bool:
    """Return True when the tower points against the position confidently enough to exit."""
    if position == 0.0 or direction == 0:
        return False
    against = (position > 0.0 and direction < 0) or (position < 0.0 and direction > 0)
    return against and confidence >= threshold


def weight_table(config: TowerConfig, agents: Sequence[str]) -> F8:
    """Return the regime × agent weight matrix; an agent missing from a row gets that row's mean.

    >>> weight_table(TowerConfig(), ["environment", "short_term", "trend"])[0].tolist()
    [0.2, 0.3, 0.5]
    """
    table = np.zeros((len(REGIME_KEYS), len(agents)), dtype=np.float64)
    for r, key in enumerate(REGIME_KEYS):
        row: Mapping[str, float] = config.weights.get(key, {})
        default = float(np.mean(list(row.values()))) if row else 1.0
        table[r] = [float(row.get(name, default)) for name in agents]
    return table


class DecisionTower:
    """Binds the tower's rules to its configuration and its agents' names."""

    def __init__(self, config: TowerConfig, agents: Sequence[str]) -> None:
        self.config = config
        self.agents = tuple(agents)
        self.weights = weight_table(config, self.agents)
        self.params = TowerParams(
            entry_confidence=config.entry_confidence,
            exit_confidence=config.exit_confidence,
            consensus=config.consensus_agents,
            cost_penalty=config.cost_penalty,
            cost_penalty_cap=config.cost_penalty_cap,
        )

    def vote(self, directions: I1, confidences: F8, regime: int) -> tuple[int, float, int]:
        """Return (direction, confidence, agreeing) for one bar under a regime's weights."""
        return tower_vote(directions, confidences, self.weights[regime])
