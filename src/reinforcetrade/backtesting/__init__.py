"""Backtesting: the compiled bar loop, `Backtester`, `EnhancedBacktester`, metrics, results."""

from reinforcetrade.backtesting.engine import Backtester, EnhancedBacktester, TargetStrategy, align
from reinforcetrade.backtesting.metrics import (
    METRIC_KEYS,
    DrawdownDuration,
    compute_metrics,
    periods_per_year,
    returns_from_equity,
)
from reinforcetrade.backtesting.result import BacktestResult
from reinforcetrade.backtesting.saved import SavedResult, load_result, stitch

__all__ = [
    "METRIC_KEYS",
    "BacktestResult",
    "Backtester",
    "DrawdownDuration",
    "EnhancedBacktester",
    "SavedResult",
    "TargetStrategy",
    "align",
    "compute_metrics",
    "load_result",
    "periods_per_year",
    "returns_from_equity",
    "stitch",
]
