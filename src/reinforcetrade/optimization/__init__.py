"""Parameter search, walk-forward validation, overfitting diagnostics and their executors."""

from reinforcetrade.optimization.diagnostics import (
    PBOResult,
    deflated_sharpe_ratio,
    pbo_from_returns,
    probability_of_backtest_overfitting,
)
from reinforcetrade.optimization.folds import Fold, walk_forward_folds
from reinforcetrade.optimization.objectives import Constraint, Objective
from reinforcetrade.optimization.optimizer import OptimizationResult, StrategyOptimizer
from reinforcetrade.optimization.space import Param, SearchSpace
from reinforcetrade.optimization.walkforward import (
    FoldResult,
    WalkForward,
    WalkForwardResult,
    WalkForwardTraining,
)

__all__ = [
    "Constraint",
    "Fold",
    "FoldResult",
    "Objective",
    "OptimizationResult",
    "PBOResult",
    "Param",
    "SearchSpace",
    "StrategyOptimizer",
    "WalkForward",
    "WalkForwardResult",
    "WalkForwardTraining",
    "deflated_sharpe_ratio",
    "pbo_from_returns",
    "probability_of_backtest_overfitting",
    "walk_forward_folds",
]
