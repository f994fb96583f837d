"""The one-asset trading simulator behind the environments: the backtester's fill rules, bar by bar.

State is ONE float64 array (`STATE_SIZE` slots, layout below) and the market ONE (bars, 5)
float64 array of open, high, low, close and volume, so a compiled step takes two arrays. The
account's costs travel inside the state array (`CostParams`' nine fields from slot `COSTS`).

A step decides at bar t's close and runs bar t + 1 exactly as the backtester's compiled loop
(`backtesting.kernel`, TARGETS mode) does, with the same `simulation` functions:

1. **Open of t + 1:** if the target changed, `rebalance_qty` moves the holding towards
   target × equity (equity at this open); the order fills at the open as a market order priced
   by `market_fill_price` off bar t's range and pays `commission` on its notional. An unchanged
   target places no order (the holding drifts with the price, as in the backtester).
2. **Close of t + 1:** a short pays `borrow_cost`; equity is cash plus the holding marked at the
   close; the running peak follows it.

The step reports ruin (equity at or below `RUIN`: the episode is terminated) and whether bar
t + 1 is the episode's last (`END`: truncated). Without a bar t + 1 it changes nothing.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.jit import njit
from reinforcetrade.data.bars import Bars
from reinforcetrade.simulation.costs import (
    CostParams,
    borrow_cost,
    commission,
    market_fill_price,
)
from reinforcetrade.simulation.orders import rebalance_qty

__all__ = [
    "CASH",
    "COSTS",
    "DD_PENALTY",
    "END",
    "EQUITY",
    "INITIAL",
    "PEAK",
    "RUIN",
    "START",
    "STATE_SIZE",
    "TARGET",
    "TURNOVER_PENALTY",
    "UNITS",
    "T",
    "market_array",
    "new_state",
    "simulate_step",
    "start_episode",
]

F8 = npt.NDArray[np.float64]

# state[…]: the account, then the episode's constants
T: Final = 0  # the bar whose close the next decision is taken at
START: Final = 1  # the episode's first decision bar
END: Final = 2  # the episode's last bar: reaching it truncates the episode
CASH: Final = 3
UNITS: Final = 4  # signed quantity held
EQUITY: Final = 5  # cash + units × close of bar T
PEAK: Final = 6  # highest equity of the episode
TARGET: Final = 7  # the target position in force (fraction of equity)
INITIAL: Final = 8  # the cash an episode starts with
RUIN: Final = 9  # equity at or below this ends the episode
DD_PENALTY: Final = 10  # reward cost per unit of new drawdown
TURNOVER_PENALTY: Final = 11  # reward cost per unit of target change
COSTS: Final = 12  # the nine fields of CostParams, in their order
STATE_SIZE: Final = COSTS + len(CostParams._fields)
# market[t, …]
OPEN: Final = 0
HIGH: Final = 1
LOW: Final = 2
CLOSE: Final = 3
VOLUME: Final = 4
MARKET_COLUMNS: Final = 5
# a holding reduced to within this fraction of itself is closed (as `account.apply_fill` does)
_CLOSE_TOLERANCE: Final = 1e-12


def market_array(bars: Bars) -> F8:
    """Return the (bars, 5) contiguous float64 array of open, high, low, close and volume."""
    columns = (bars.open, bars.high, bars.low, bars.close, bars.volume)
    return np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)


def new_state(
    initial_cash: float,
    costs: CostParams,
    *,
    ruin_fraction: float,
    drawdown_penalty: float = 0.0,
    turnover_penalty: float = 0.0,
) -> F8:
    """Return a state array holding the constants; `start_episode` sets up the account.

    >>> s = new_state(10_000.0, CostParams.simple(0.001), ruin_fraction=0.5)
    >>> s[RUIN], s[COSTS]
    (np.float64(5000.0), np.float64(0.001))
    """
    if not (np.isfinite(initial_cash) and initial_cash > 0):
        raise UserInputError(f"initial_cash must be a positive amount, got {initial_cash!r}")
    if not 0.0 <= ruin_fraction < 1.0:
        raise UserInputError(f"ruin_fraction must be in [0, 1), got {ruin_fraction!r}")
    for name, value in (
        ("drawdown_penalty", drawdown_penalty),
        ("turnover_penalty", turnover_penalty),
    ):
        if not (np.isfinite(value) and value >= 0):
            raise UserInputError(f"{name} must be a non-negative number, got {value!r}")
    state = np.zeros(STATE_SIZE, dtype=np.float64)
    state[INITIAL] = initial_cash
    state[RUIN] = ruin_fraction * initial_cash
    state[DD_PENALTY] = drawdown_penalty
    state[TURNOVER_PENALTY] = turnover_penalty
    state[COSTS:] = tuple(costs)
    start_episode(state, 0, 0)
    return state


def start_episode(state: F8, start: int, end: int) -> None:
    """Reset the account to cash only, deciding first at bar `start`; bar `end` is the last."""
    state[T] = start
    state[START] = start
    state[END] = end
    state[CASH] = state[INITIAL]
    state[UNITS] = 0.0
    state[EQUITY] = state[INITIAL]
    state[PEAK] = state[INITIAL]
    state[TARGET] = 0.0


@njit
def _costs(state: F8) -> CostParams:
    """Return the CostParams stored in the state array."""
    c = COSTS
    return CostParams(
        state[c], state[c + 1], state[c + 2], state[c + 3], state[c + 4],
        state[c + 5], state[c + 6], state[c + 7], state[c + 8],
    )  # fmt: skip


@njit
def _rebalance(state: F8, market: F8, t: int, target: float, cp: CostParams) -> None:
    """Trade at bar t's open towards `target` × equity, priced off bar t - 1's range."""
    o, v = market[t, OPEN], market[t, VOLUME]
    cash, held = state[CASH], state[UNITS]
    value = cash  # the book valued at this open (`account.equity_at`)
    if held != 0.0:
        value += held * o
    qty, _ = rebalance_qty(target, value, held, cash, o, v, cp)
    if qty == 0.0:
        return
    side = 1 if qty > 0.0 else -1
    p = t - 1
    price, _ = market_fill_price(
        side, o, market[p, OPEN], market[p, HIGH], market[p, LOW], abs(qty), v, cp
    )
    fee = commission(abs(qty) * price, False, cp)
    state[CASH] = cash - (qty * price + fee)
    units = held + qty
    if (held > 0.0) != (qty > 0.0) and abs(units) <= _CLOSE_TOLERANCE * abs(held):
        units = 0.0  # closed exactly, as the account books it
    state[UNITS] = units


@njit
def simulate_step(state: F8, market: F8, target: float) -> tuple[bool, bool]:
    """Decide `target` at bar T's close and run bar T + 1; return (ruined, episode over).

    >>> from reinforcetrade.simulation.costs import CostParams
    >>> market = np.array([[10.0, 10, 10, 10, 1e9], [10.0, 12, 10, 11, 1e9]])
    >>> s = new_state(1_000.0, CostParams.simple(0.0), ruin_fraction=0.5)
    >>> start_episode(s, 0, 1)
    >>> simulate_step(s, market, 1.0), s[UNITS], s[EQUITY]  # 100 units at 10, marked at 11
    ((False, True), np.float64(100.0), np.float64(1100.0))
    """
    t = int(state[T]) + 1
    if t >= market.shape[0]:
        return state[EQUITY] <= state[RUIN], True
    cp = _costs(state)
    if target != state[TARGET]:
        _rebalance(state, market, t, target, cp)
        state[TARGET] = target
    close = market[t, CLOSE]
    cash, units = state[CASH], state[UNITS]
    if units < 0.0:
        cash -= borrow_cost(units * close, cp)
        state[CASH] = cash
    equity = cash
    if units != 0.0:
        equity += units * close
    state[EQUITY] = equity
    if equity > state[PEAK]:
        state[PEAK] = equity
    state[T] = t
    return equity <= state[RUIN], t >= state[END]
