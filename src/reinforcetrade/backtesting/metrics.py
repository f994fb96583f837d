"""Backtest metrics: the definitions live in `reinforcetrade.features.performance`.

They sit in `features` so that lower layers (the RL training pipeline's validation) use the very
same definitions as the backtester; this module keeps the backtesting import path.
"""

from reinforcetrade.features import performance
from reinforcetrade.features.performance import *  # noqa: F403 - a re-export, names in __all__

__all__ = list(performance.__all__)
