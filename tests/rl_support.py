"""Shared helpers for the RL tests: small fast settings, markets, tiny trained models."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from reinforcetrade.agents.registry import ModelRecord
from reinforcetrade.agents.training import TrainingPipeline
from reinforcetrade.config import Settings
from reinforcetrade.data import DataLoader, make_ohlcv

#: hyperparameters that make a few hundred timesteps a real (if short) training run
FAST: dict[str, dict[str, Any]] = {
    "ppo": {"n_steps": 128, "batch_size": 64, "n_epochs": 2},
    "a2c": {"n_steps": 8},
    "dqn": {"buffer_size": 2_000, "learning_starts": 100, "train_freq": 4},
    "sac": {"buffer_size": 2_000, "learning_starts": 100, "batch_size": 64},
}


def fast_settings(models: Path, *, allow_short: bool = False, **rl: Any) -> Settings:
    """Return settings for quick training into `models` (window 8, short episodes)."""
    fields: dict[str, Any] = {
        "models_dir": models,
        "window": 8,
        "episode_bars": 256,
        "eval_every": 256,
        "patience": 50,
        "hyperparameters": FAST,
    }
    return Settings(rl=fields | rl, backtest={"allow_short": allow_short})


def market(bars: int = 1_200, seed: int = 3, symbol: str = "BTC/USDT") -> pd.DataFrame:
    """Return a synthetic 1h market."""
    return DataLoader().load_synthetic(symbol, timeframe="1h", bars=bars, seed=seed)


def train(
    models: Path,
    algorithm: str = "ppo",
    steps: int = 512,
    *,
    data: pd.DataFrame | None = None,
    seed: int = 0,
    allow_short: bool = False,
    **rl: Any,
) -> ModelRecord:
    """Train and register a small model; return its record."""
    settings = fast_settings(models, allow_short=allow_short, **rl)
    frame = market() if data is None else data
    return TrainingPipeline(algorithm, settings=settings).train(frame, steps, seed=seed)


def planted_market(bars: int, seed: int, phi: float = 0.5, sigma: float = 0.01) -> pd.DataFrame:
    """Return 1h bars whose log returns are AR(1) with coefficient `phi`: momentum to learn."""
    rng = np.random.default_rng(seed)
    shocks = rng.normal(0.0, sigma, bars)
    returns = np.empty(bars)
    returns[0] = shocks[0]
    for t in range(1, bars):
        returns[t] = phi * returns[t - 1] + shocks[t]
    close = 100.0 * np.exp(np.cumsum(returns))
    open_ = np.r_[100.0, close[:-1]]
    wick = np.abs(rng.normal(0.0, sigma / 4, (2, bars)))
    high = np.maximum(open_, close) * (1 + wick[0])
    low = np.minimum(open_, close) * (1 - wick[1])
    volume = rng.lognormal(10.0, 0.3, bars)
    times = np.arange(bars, dtype=np.int64) * 3_600_000_000_000 + 1_577_836_800_000_000_000
    return make_ohlcv(times, open_, high, low, close, volume, symbol="AR/USD", timeframe="1h")
