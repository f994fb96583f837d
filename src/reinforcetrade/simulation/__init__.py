"""The one cost, fill and account model, shared by backtests, RL environments and paper trading."""

from reinforcetrade.simulation.costs import (
    CostParams,
    affordable_qty,
    borrow_cost,
    commission,
    fillable_qty,
    market_fill_price,
)
from reinforcetrade.simulation.fills import NO_EXIT, exit_fill, resolve_exit, stop_prices

__all__ = [
    "NO_EXIT",
    "CostParams",
    "affordable_qty",
    "borrow_cost",
    "commission",
    "exit_fill",
    "fillable_qty",
    "market_fill_price",
    "resolve_exit",
    "stop_prices",
]
