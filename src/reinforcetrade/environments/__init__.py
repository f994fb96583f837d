"""Gymnasium trading environments: simulator, observation/action interpreters and reward."""

from reinforcetrade.environments.features import FEATURE_VERSION, FeatureParams, FeatureSpec
from reinforcetrade.environments.interpreters import (
    FLAT,
    LONG,
    LONG_ONLY_TARGETS,
    LONG_SHORT_TARGETS,
    SHORT,
    ActionInterpreter,
    ObservationInterpreter,
)
from reinforcetrade.environments.reward import step_reward
from reinforcetrade.environments.trading_env import TradingEnv

__all__ = [
    "FEATURE_VERSION",
    "FLAT",
    "LONG",
    "LONG_ONLY_TARGETS",
    "LONG_SHORT_TARGETS",
    "SHORT",
    "ActionInterpreter",
    "FeatureParams",
    "FeatureSpec",
    "ObservationInterpreter",
    "TradingEnv",
    "step_reward",
]
