"""The Decision Tower's rules, one bar at a time."""

from __future__ import annotations

import numpy as np
import pytest

from reinforcetrade.agents.tower import (
    DecisionTower,
    TowerParams,
    entry_gates,
    entry_threshold,
    is_reversal,
    tower_vote,
    weight_table,
)
from reinforcetrade.config import TowerConfig
from reinforcetrade.core.codes import Reason

W = np.array([0.2, 0.3, 0.5])


def vote(
    directions: list[int], confidences: list[float], weights: np.ndarray = W
) -> tuple[int, float, int]:
    return tower_vote(np.array(directions, dtype=np.int8), np.array(confidences), weights)


def test_all_agree() -> None:
    direction, confidence, agreeing = vote([1, 1, 1], [0.8, 0.8, 0.8])
    assert (direction, agreeing) == (1, 3)
    assert confidence == pytest.approx(0.8)


def test_abstainers_do_not_dilute_and_opponents_reduce() -> None:
    d, c, k = vote([0, 1, 1], [0.0, 0.8, 0.8])
    assert (d, k) == (1, 2)
    assert c == pytest.approx(0.8)
    d, c, k = vote([-1, 1, 1], [0.8, 0.8, 0.8])
    assert (d, k) == (1, 2)
    assert c == pytest.approx((0.3 * 0.8 + 0.5 * 0.8 - 0.2 * 0.8) / 1.0)


def test_silence_and_ties() -> None:
    assert vote([0, 0, 0], [0.0, 0.0, 0.0]) == (0, 0.0, 0)
    assert vote([1, -1, 0], [0.5, 0.5, 0.0], np.array([1.0, 1.0, 1.0])) == (0, 0.0, 0)


def test_zero_weight_agents_do_not_vote_but_can_count_as_agreeing() -> None:
    d, c, k = vote([1, -1, -1], [0.9, 0.9, 0.9], np.array([0.0, 1.0, 1.0]))
    assert (d, k) == (-1, 2)
    assert c == pytest.approx(0.9)


def test_gates() -> None:
    ok = int(Reason.CONFIDENCE_OK | Reason.CONSENSUS_OK)
    assert entry_gates(0.6, 2, 0.6, 2) == ok
    assert entry_gates(0.59, 2, 0.6, 2) == int(Reason.CONFIDENCE_LOW | Reason.CONSENSUS_OK)
    assert entry_gates(0.9, 1, 0.6, 2) == int(Reason.CONFIDENCE_OK | Reason.CONSENSUS_LOW)


def test_cost_penalty_raises_threshold_up_to_a_cap() -> None:
    p = TowerParams(0.6, 0.6, 2, 0.01, 0.2)
    assert entry_threshold(p, float("nan")) == (0.6, 0)
    assert entry_threshold(p, -3.0) == (0.6, 0)
    threshold, bit = entry_threshold(p, 5.0)
    assert threshold == pytest.approx(0.65)
    assert bit == int(Reason.COST_PENALTY)
    assert entry_threshold(p, 500.0)[0] == pytest.approx(0.8)


@pytest.mark.parametrize(
    ("position", "direction", "confidence", "expected"),
    [
        (1.0, -1, 0.7, True),
        (1.0, -1, 0.5, False),
        (1.0, 1, 0.9, False),
        (-2.0, 1, 0.6, True),
        (0.0, -1, 0.9, False),
    ],
)
def test_reversal(position: float, direction: int, confidence: float, expected: bool) -> None:
    assert is_reversal(position, direction, confidence, 0.6) is expected


def test_weight_table_by_regime_with_defaults_for_new_agents() -> None:
    table = weight_table(TowerConfig(), ["environment", "short_term", "trend", "ppo"])
    assert table.shape == (3, 4)
    assert table[0, 2] == 0.5  # trend heavier when trending
    assert table[1, 1] == 0.5  # short-term heavier when ranging
    assert table[0, 3] == pytest.approx(np.mean([0.2, 0.3, 0.5]))  # unknown agent: the row's mean
    tower = DecisionTower(TowerConfig(), ["environment", "short_term", "trend"])
    assert tower.vote(np.array([1, 1, 0], dtype=np.int8), np.array([0.9, 0.9, 0.0]), 0)[0] == 1
