"""Agents: the signal agents, RL agents, the Decision Tower, training and the model registry.

The RL parts (`RLAgent`, `TrainingPipeline`, the registry) load torch and Stable-Baselines3, so
they are imported on first use rather than with the package.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reinforcetrade.agents.base import AgentSignals, SignalAgent
from reinforcetrade.agents.environment import EnvironmentAgent, Perception
from reinforcetrade.agents.execution import ExecutionAgent, OrderIntent, Router
from reinforcetrade.agents.short_term import ShortTermAgent
from reinforcetrade.agents.tower import DecisionTower, TowerParams
from reinforcetrade.agents.trend import TrendAgent

if TYPE_CHECKING:
    from reinforcetrade.agents.registry import (
        ModelMismatchError,
        ModelRecord,
        ModelRegistry,
        ModelRegistryError,
        Promotion,
    )
    from reinforcetrade.agents.rl import RLAgent
    from reinforcetrade.agents.training import TrainingPipeline

_LAZY = {
    "ModelMismatchError": "registry",
    "ModelRecord": "registry",
    "ModelRegistry": "registry",
    "ModelRegistryError": "registry",
    "Promotion": "registry",
    "RLAgent": "rl",
    "TrainingPipeline": "training",
}


def __getattr__(name: str) -> Any:
    """Import the RL parts on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"reinforcetrade.agents.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'reinforcetrade.agents' has no attribute {name!r}")


__all__ = [
    "AgentSignals",
    "DecisionTower",
    "EnvironmentAgent",
    "ExecutionAgent",
    "ModelMismatchError",
    "ModelRecord",
    "ModelRegistry",
    "ModelRegistryError",
    "OrderIntent",
    "Perception",
    "Promotion",
    "RLAgent",
    "Router",
    "ShortTermAgent",
    "SignalAgent",
    "TowerParams",
    "TrainingPipeline",
    "TrendAgent",
]
