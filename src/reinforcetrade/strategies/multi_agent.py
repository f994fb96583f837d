"""`MultiAgentStrategy`: agents → tower → risk → execution, the one object both engines run."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from reinforcetrade.agents.base import AgentSignals, SignalAgent
from reinforcetrade.agents.environment import EnvironmentAgent, Perception
from reinforcetrade.agents.short_term import ShortTermAgent
from reinforcetrade.agents.tower import DecisionTower
from reinforcetrade.agents.trend import TrendAgent
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data.bars import Bars
from reinforcetrade.risk.params import RiskParams

F8 = npt.NDArray[np.float64]
I1 = npt.NDArray[np.int8]
B1 = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PreparedSignals:
    """Everything the compiled loop needs from the agents for one symbol, bar by bar."""

    agents: tuple[AgentSignals, ...]
    perception: Perception
    ready: B1  # every agent and the environment have warmed up

    @property
    def directions(self) -> I1:
        """Return the agents' directions as an (agents, bars) int8 array."""
        return np.stack([a.direction for a in self.agents])

    @property
    def confidences(self) -> F8:
        """Return the agents' confidences as an (agents, bars) float64 array."""
        return np.stack([a.confidence for a in self.agents])


class MultiAgentStrategy:
    """The product's strategy: environment, short-term and trend agents (RL agents optional).

    >>> MultiAgentStrategy().agent_names
    ('environment', 'short_term', 'trend')
    """

    def __init__(
        self,
        use_rl: bool = False,
        model: object | None = None,
        *,
        settings: Settings | None = None,
        extra_agents: Sequence[SignalAgent] = (),
    ) -> None:
        self.settings = settings or Settings()
        if use_rl or model is not None:
            raise UserInputError(
                "RL agents are not available yet: they arrive with the reinforcement-learning "
                "module; run MultiAgentStrategy(use_rl=False) for now"
            )
        cfg = self.settings
        self.environment = EnvironmentAgent(cfg.agents.environment, cfg.risk)
        self.agents: tuple[SignalAgent, ...] = (
            self.environment,
            ShortTermAgent(cfg.agents.short_term),
            TrendAgent(cfg.agents.trend),
            *extra_agents,
        )
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise UserInputError(f"agent names must be unique, got {names}")
        self.use_rl = use_rl

    @property
    def agent_names(self) -> tuple[str, ...]:
        """Return the agents' names, in the order of the signal arrays."""
        return tuple(a.name for a in self.agents)

    def prepare(self, bars: Bars) -> PreparedSignals:
        """Run every agent over the bars (each causal, whole arrays at once)."""
        perception = self.environment.perceive(bars)
        signals = [perception.signals] + [a.signals(bars) for a in self.agents[1:]]
        ready = perception.ready.copy()
        for signal in signals[1:]:
            ready &= np.isfinite(signal.confidence) & _warm(signal)
        return PreparedSignals(tuple(signals), perception, ready)

    def tower(self) -> DecisionTower:
        """Return the Decision Tower for these agents."""
        return DecisionTower(self.settings.tower, self.agent_names)

    def risk_params(self) -> RiskParams:
        """Return the risk manager's limits."""
        return RiskParams.from_config(
            self.settings.risk, allow_short=self.settings.backtest.allow_short
        )


def _warm(signal: AgentSignals) -> B1:
    """Return True where every feature behind an agent's signal is defined."""
    ready = np.ones(len(signal), dtype=np.bool_)
    for values in signal.features.values():
        ready &= np.isfinite(values)
    return ready
