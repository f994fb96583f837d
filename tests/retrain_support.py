"""Shared helpers of the self-reinforcement-loop tests: a market whose regime changed, settings.

The old regime trends bar to bar (AR(1) returns, φ = +0.5), the new one reverts (φ = −0.5): a
champion trained on the old regime votes the wrong way in the new one, a challenger trained on
the new one can learn it, and a challenger trained on the new bars in a destroyed order cannot.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from reinforcetrade.config import Settings
from rl_support import fast_settings, planted_market

REGIMES = ("trending", "ranging", "high_volatility")
STEPS = 4096  # timesteps per model: a sharp policy in ~3 s with the hyperparameters below


def loop_settings(models: Path, **extra: Any) -> Settings:
    """Return settings where the RL agent leads the tower, and a small, quick retrain.

    The agents look back ~200 bars (a short volatility history) and the engine keeps 400: a
    paper engine is ready after 200 bars and each of its steps stays cheap.
    """
    settings = fast_settings(
        models, allow_short=True, window=4, learning_rate=3e-3,
        hyperparameters={"ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 10,
                                 "ent_coef": 0.0}},
    )  # fmt: skip
    weights = {r: {"environment": 0.1, "short_term": 0.1, "trend": 0.1, "rl": 1.0}
               for r in REGIMES}  # fmt: skip
    return settings.with_params({
        "tower.weights": weights, "tower.consensus_agents": 1, "tower.entry_confidence": 0.3,
        "tower.exit_confidence": 0.3, "retrain.folds": 2, "retrain.min_trades": 5,
        "retrain.timesteps": STEPS, "agents.environment.volatility_history": 100,
        "trading.history_bars": 400, **extra,
    })  # fmt: skip


def old_regime(bars: int = 2_500) -> pd.DataFrame:
    """Return bars of the regime the champion was trained on (momentum)."""
    return planted_market(bars, seed=1, phi=0.5)


def new_regime(bars: int = 5_000) -> pd.DataFrame:
    """Return bars of the regime the market is in now (mean reversion)."""
    return planted_market(bars, seed=0, phi=-0.5)
