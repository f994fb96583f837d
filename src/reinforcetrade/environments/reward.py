"""The reward: log growth of equity net of every cost, less drawdown and turnover penalties.

    reward = log(equity_new / equity_old)
             - drawdown_penalty × max(0, drawdown_new - drawdown_old)
             - turnover_penalty × |target_new - target_old|

Equity is cash plus the holding marked at the close, after commission, spread, slippage, impact
and borrow, so costs reach the reward through the first term only. Drawdown is 1 - equity /
running peak (the peak includes this step's equity): only a deepening drawdown is penalised,
and the turnover term charges every change of the target position (what the policy asked for,
whether or not the bar's volume let it fill). A step that wipes out the equity (growth ≤ 0, e.g.
a short through a price gap) is scored as growth `MIN_GROWTH`, so the reward stays finite.
"""

from __future__ import annotations

import math
from typing import Final

from reinforcetrade.core.jit import njit

__all__ = ["MIN_GROWTH", "step_reward"]

#: the growth factor a step is scored at when its equity ratio is at or below it
MIN_GROWTH: Final[float] = 1e-9


@njit
def step_reward(
    equity_old: float,
    equity_new: float,
    peak_old: float,
    peak_new: float,
    target_old: float,
    target_new: float,
    drawdown_penalty: float,
    turnover_penalty: float,
) -> float:
    """Return one step's reward (see the module docstring).

    >>> step_reward(100.0, 110.0, 100.0, 110.0, 0.0, 1.0, 0.0, 0.0)  # log(1.1), a new peak
    0.0953101798
    >>> step_reward(100.0, 90.0, 100.0, 100.0, 1.0, 1.0, 2.0, 0.0)  # log(0.9) - 2 × 0.1
    -0.3053605157
    >>> step_reward(100.0, 100.0, 100.0, 100.0, 1.0, -1.0, 0.0, 0.001)  # a reversal's turnover
    -0.002
    """
    growth = equity_new / equity_old
    reward = math.log(growth) if growth > MIN_GROWTH else math.log(MIN_GROWTH)
    if drawdown_penalty != 0.0:
        deeper = (1.0 - equity_new / peak_new) - (1.0 - equity_old / peak_old)
        if deeper > 0.0:
            reward -= drawdown_penalty * deeper
    if turnover_penalty != 0.0:
        reward -= turnover_penalty * abs(target_new - target_old)
    return reward
