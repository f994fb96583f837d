"""`FactorAgent`: a fitted `FactorPipeline` voting in the Decision Tower like any signal agent.

Its score is 2·P(up) − 1 for the pipeline's horizon: the direction is the score's sign when
|score| ≥ `threshold`, its confidence |score| / `scale` (clipped to 1). P(up) rides along as
the signal's feature `p_up`, so decision records and reports show it. Off by default
(`agents.factor.enabled`).
"""

from __future__ import annotations

import os

import numpy as np

from reinforcetrade.agents.base import AgentSignals, finish
from reinforcetrade.config.sections import FactorAgentConfig
from reinforcetrade.core.errors import ConfigError
from reinforcetrade.data.bars import Bars
from reinforcetrade.ml.factors import FACTORS, regime_warmup
from reinforcetrade.ml.pipeline import FactorPipeline

NAME = "factor"


class FactorAgent:
    """A signal agent backed by a fitted factor pipeline."""

    def __init__(
        self, pipeline: FactorPipeline, config: FactorAgentConfig | None = None, *, name: str = NAME
    ) -> None:
        self.pipeline = pipeline
        self.config = config or FactorAgentConfig()
        self.name = name

    @classmethod
    def load(
        cls, path: str | os.PathLike[str], config: FactorAgentConfig | None = None
    ) -> FactorAgent:
        """Return the agent of a pipeline saved with `FactorPipeline.save`."""
        return cls(FactorPipeline.load(path), config)

    @classmethod
    def from_settings(cls, config: FactorAgentConfig) -> FactorAgent:
        """Return the agent `agents.factor` names (its `model` must be set)."""
        if config.model is None:
            raise ConfigError(
                "agents.factor.enabled needs agents.factor.model: a pipeline saved with "
                "FactorPipeline.save (fit one on history first)"
            )
        return cls.load(config.model, config)

    @property
    def warmup(self) -> int:
        """Return the bars its factors (and regime router) need before the first vote."""
        cfg = self.pipeline.config
        bars = max(FACTORS[name].warmup for name in cfg.factors)
        return max(bars, regime_warmup(cfg.regime)) if cfg.router else bars

    def signals(self, bars: Bars) -> AgentSignals:
        """Return direction and confidence per bar from P(up); no vote while warming up."""
        p_up = self.pipeline.predict_proba(bars)
        score = 2.0 * p_up - 1.0
        return finish(self.name, score, self.config.threshold, self.config.scale,
                      {"p_up": np.asarray(p_up, dtype=np.float64)})  # fmt: skip
