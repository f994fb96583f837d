"""Causal features: indicators, statistics and regime labels as pure functions on numpy arrays."""

from reinforcetrade.features.stats import (
    drawdown,
    log_returns,
    max_drawdown,
    realized_volatility,
    rolling_mean,
    rolling_std,
    rolling_zscore,
    simple_returns,
)

__all__ = [
    "drawdown",
    "log_returns",
    "max_drawdown",
    "realized_volatility",
    "rolling_mean",
    "rolling_std",
    "rolling_zscore",
    "simple_returns",
]
