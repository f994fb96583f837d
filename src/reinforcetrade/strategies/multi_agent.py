"""`MultiAgentStrategy`: agents → tower → risk → execution, the one object both engines run."""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from reinforcetrade.agents.base import AgentSignals, Follower, SignalAgent
from reinforcetrade.agents.environment import EnvironmentAgent, Perception
from reinforcetrade.agents.short_term import ShortTermAgent
from reinforcetrade.agents.tower import DecisionTower
from reinforcetrade.agents.trend import TrendAgent
from reinforcetrade.config import Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.data.bars import Bars
from reinforcetrade.ml.agent import FactorAgent
from reinforcetrade.ml.pipeline import FactorPipeline
from reinforcetrade.risk.params import RiskParams

if TYPE_CHECKING:
    from reinforcetrade.agents.registry import ModelRecord, ModelRegistry
    from reinforcetrade.agents.rl import RLAgent

F8 = npt.NDArray[np.float64]
I1 = npt.NDArray[np.int8]
B1 = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class PreparedSignals:
    """Everything the compiled loop needs from the agents for one symbol, bar by bar."""

    agents: tuple[AgentSignals, ...]
    perception: Perception
    ready: B1  # every agent and the environment have warmed up

    def since(self, first: int) -> PreparedSignals:
        """Return the signals from bar `first` on (computed with the bars before it)."""
        return PreparedSignals(
            tuple(a.since(first) for a in self.agents),
            self.perception.since(first),
            self.ready[first:],
        )

    @property
    def directions(self) -> I1:
        """Return the agents' directions as an (agents, bars) int8 array."""
        return np.stack([a.direction for a in self.agents])

    @property
    def confidences(self) -> F8:
        """Return the agents' confidences as an (agents, bars) float64 array."""
        return np.stack([a.confidence for a in self.agents])


@dataclass(frozen=True)
class LatestSignals:
    """The newest bar's signals for one symbol: what the compiled loop reads for that bar."""

    directions: I1  # (agents,)
    confidences: F8  # (agents,)
    regime: int
    vol_regime: int
    trend_regime: int
    breaker: bool
    ready: bool


class SignalFollower:
    """One symbol's agents followed bar by bar, each on a window of the latest bars.

    Agents that carry state from bar to bar (an RL policy's own side) are followed by their
    `Follower`; the others are pure functions of the bars, so their newest value on a long
    enough window is the one the whole series gives.
    """

    def __init__(self, strategy: MultiAgentStrategy, symbol: str, timeframe: str) -> None:
        self.strategy = strategy
        self.followers: list[Follower | None] = []
        for agent in strategy.agents[1:]:
            if isinstance(agent, ChampionAgent):
                self.followers.append(agent.agent_for(symbol, timeframe).follower())
            else:
                make = getattr(agent, "follower", None)
                self.followers.append(make() if callable(make) else None)

    def follower_of(self, name: str) -> Follower | None:
        """Return the follower of agent `name` (None: the agent is a pure function of bars)."""
        return self.followers[self._slot(name)]

    def replace(self, name: str, follower: Follower) -> Follower | None:
        """Follow agent `name` with `follower` from the next bar on; return the one replaced.

        Between bars only (an engine switching to a new champion model): the next `update`
        asks the new follower.
        """
        slot = self._slot(name)
        old, self.followers[slot] = self.followers[slot], follower
        return old

    def _slot(self, name: str) -> int:
        names = self.strategy.agent_names[1:]
        if name not in names:
            raise UserInputError(f"no agent {name!r} to follow; the agents are {list(names)}")
        return names.index(name)

    def update(self, bars: Bars, seen: int) -> LatestSignals:
        """Return the newest bar's signals from a window of bars (`seen` bars so far in all)."""
        perception = self.strategy.environment.perceive(bars)
        own = perception.signals
        directions = [int(own.direction[-1])]
        confidences = [float(own.confidence[-1])]
        ready = bool(perception.ready[-1])
        for agent, follower in zip(self.strategy.agents[1:], self.followers, strict=True):
            if follower is None:
                signal = agent.signals(bars)
                direction, confidence = int(signal.direction[-1]), float(signal.confidence[-1])
                warm = all(np.isfinite(v[-1]) for v in signal.features.values())
            else:
                direction, confidence, warm = follower.update(bars, seen)
            directions.append(direction)
            confidences.append(confidence)
            ready = ready and bool(np.isfinite(confidence)) and warm
        return LatestSignals(
            np.array(directions, dtype=np.int8),
            np.array(confidences, dtype=np.float64),
            int(perception.regime[-1]),
            int(perception.vol_regime[-1]),
            int(perception.trend_regime[-1]),
            bool(perception.breaker[-1]),
            ready,
        )


class SignalCache:
    """The last few symbols' prepared signals, by bars and agent settings (least recent out).

    Agents are pure functions of the bars and their settings, so a search that only tunes the
    tower or the risk rules reuses them instead of recomputing every indicator per trial.
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self._items: OrderedDict[tuple[str, ...], PreparedSignals] = OrderedDict()
        self.hits = 0

    def get(self, key: tuple[str, ...]) -> PreparedSignals | None:
        """Return the cached signals for a key, or None."""
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
            self.hits += 1
        return found

    def put(self, key: tuple[str, ...], signals: PreparedSignals) -> None:
        """Remember signals, dropping the least recently used beyond `size`."""
        self._items[key] = signals
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class MultiAgentStrategy:
    """The product's strategy: environment, short-term and trend agents, and optionally RL.

    `use_rl=True` adds the registry's champion model for each symbol and timeframe; `model`
    (a registry id, folder or record) adds that model instead. `factor` (a `FactorAgent`, a
    fitted `FactorPipeline` or a saved one's path) adds the ML factor agent, as does
    `agents.factor.enabled` with `agents.factor.model`.

    >>> MultiAgentStrategy().agent_names
    ('environment', 'short_term', 'trend')
    """

    def __init__(
        self,
        use_rl: bool = False,
        model: str | Path | ModelRecord | None = None,
        *,
        settings: Settings | None = None,
        extra_agents: Sequence[SignalAgent] = (),
        registry: ModelRegistry | None = None,
        signal_cache: SignalCache | None = None,
        factor: FactorAgent | FactorPipeline | str | Path | None = None,
    ) -> None:
        self.settings = settings or Settings()
        cfg = self.settings
        self.environment = EnvironmentAgent(cfg.agents.environment, cfg.risk)
        rl: tuple[SignalAgent, ...] = ()
        if use_rl or model is not None:
            from reinforcetrade.agents.registry import ModelRegistry
            from reinforcetrade.agents.rl import RLAgent

            registry = registry or ModelRegistry(cfg.rl.models_dir)
            rl = (RLAgent.load(model, registry) if model is not None else ChampionAgent(registry),)
        self.factor = _factor_agent(factor, cfg)
        self.agents: tuple[SignalAgent, ...] = (
            self.environment,
            ShortTermAgent(cfg.agents.short_term),
            TrendAgent(cfg.agents.trend),
            *rl,
            *(() if self.factor is None else (self.factor,)),
            *extra_agents,
        )
        names = [a.name for a in self.agents]
        if len(set(names)) != len(names):
            raise UserInputError(f"agent names must be unique, got {names}")
        self.use_rl = use_rl
        # only the built-in agents are known to be pure functions of bars and settings
        self.signal_cache = signal_cache if len(self.agents) == 3 else None

    @property
    def agent_names(self) -> tuple[str, ...]:
        """Return the agents' names, in the order of the signal arrays."""
        return tuple(a.name for a in self.agents)

    def prepare(self, bars: Bars) -> PreparedSignals:
        """Run every agent over the bars (each causal, whole arrays at once)."""
        if self.signal_cache is None:
            return self._prepare(bars)
        key = (self._settings_key(), bars.symbol, _fingerprint(bars))
        found = self.signal_cache.get(key)
        if found is None:
            found = self._prepare(bars)
            self.signal_cache.put(key, found)
        return found

    def _settings_key(self) -> str:
        """Return the settings the agents read (theirs and the circuit breaker's), as text."""
        risk = self.settings.risk
        breaker = (
            risk.circuit_breaker,
            risk.circuit_breaker_move_sigmas,
            risk.circuit_breaker_volatility_multiple,
            risk.circuit_breaker_cooldown_bars,
        )
        return f"{self.settings.agents.model_dump_json()}|{breaker}"

    def _prepare(self, bars: Bars) -> PreparedSignals:
        perception = self.environment.perceive(bars)
        signals = [perception.signals] + [a.signals(bars) for a in self.agents[1:]]
        ready = perception.ready.copy()
        for signal in signals[1:]:
            ready &= np.isfinite(signal.confidence) & _warm(signal)
        return PreparedSignals(tuple(signals), perception, ready)

    def model_records(self) -> list[dict[str, object]]:
        """Return the records of the RL models the agents used so far (each model once)."""
        seen: dict[str, dict[str, object]] = {}
        for agent in self.agents:
            records = getattr(agent, "model_records", None)
            for record in records() if callable(records) else ():
                seen.setdefault(str(record["id"]), record)
        return list(seen.values())

    def lookback(self) -> int:
        """Return the fewest bars on which every rule-based agent can be ready."""
        a = self.settings.agents
        env, st, trend = a.environment, a.short_term, a.trend
        return 1 + max(
            env.volatility_history + env.volatility_window,
            env.slope_window,
            2 * env.adx_period,
            st.macd_slow + st.macd_signal,
            st.bollinger_period,
            trend.slow_ma,
            trend.breakout_window,
            0 if self.factor is None else self.factor.warmup,
        )

    def follow(self, symbol: str, timeframe: str) -> SignalFollower:
        """Return a follower of this strategy's agents on one symbol, bar by bar (live)."""
        return SignalFollower(self, symbol, timeframe)

    def tower(self) -> DecisionTower:
        """Return the Decision Tower for these agents."""
        return DecisionTower(self.settings.tower, self.agent_names)

    def risk_params(self) -> RiskParams:
        """Return the risk manager's limits."""
        return RiskParams.from_config(
            self.settings.risk, allow_short=self.settings.backtest.allow_short
        )


class ChampionAgent:
    """The registry's champion model for each symbol and timeframe, as the RL agent.

    A backtest uses the champion it finds; a running engine switches to a newly promoted one
    between bars (`reinforcetrade.trading.champions.ChampionWatch`).
    """

    name = "rl"

    def __init__(self, registry: ModelRegistry) -> None:
        self.registry = registry
        self._loaded: dict[str, RLAgent] = {}
        if not registry.list():
            raise UserInputError(f"no RL models in {registry.root}; {HOW_TO_TRAIN}")

    def agent_for(self, symbol: str, timeframe: str) -> RLAgent:
        """Return the champion's agent for a symbol and timeframe (loaded once)."""
        record = self.registry.champion(symbol, timeframe)
        if record is None:
            raise UserInputError(
                f"no champion RL model for {symbol} {timeframe} in {self.registry.root}; "
                f"{HOW_TO_TRAIN}"
            )
        if record.id not in self._loaded:
            self._loaded[record.id] = self.load(record)
        return self._loaded[record.id]

    def load(self, record: ModelRecord) -> RLAgent:
        """Return a registered model's agent (the one in use if already loaded), not yet adopted.

        Raises `ModelRegistryError` when its files are missing or altered.
        """
        found = self._loaded.get(record.id)
        if found is not None:
            return found
        from reinforcetrade.agents.rl import RLAgent

        return RLAgent.load(record, self.registry, name=self.name)

    def adopt(self, agent: RLAgent) -> None:
        """Count a model as used from now on (a running engine switched to it)."""
        self._loaded.setdefault(agent.record.id, agent)

    def model_records(self) -> list[dict[str, object]]:
        """Return the records of every model used so far: the champions loaded, then switched to."""
        return [agent.record.to_dict() for agent in self._loaded.values()]

    def signals(self, bars: Bars) -> AgentSignals:
        """Return the champion policy's signals for these bars."""
        timeframe = bars.timeframe.text if bars.timeframe is not None else ""
        return self.agent_for(bars.symbol, timeframe).signals(bars)


HOW_TO_TRAIN = (
    "train one with `reinforcetrade train --symbol SYMBOL --data FILE --promote` (or "
    "--synthetic), or in Python: record = TrainingPipeline('ppo').train(data); "
    "ModelRegistry(settings.rl.models_dir).promote(record.id) — then "
    "MultiAgentStrategy(use_rl=True) uses the champion, or pass model=record"
)


def _factor_agent(
    factor: FactorAgent | FactorPipeline | str | Path | None, settings: Settings
) -> FactorAgent | None:
    """Return the factor agent asked for by argument or by `agents.factor`, or None."""
    config = settings.agents.factor
    if isinstance(factor, FactorAgent):
        return factor
    if isinstance(factor, FactorPipeline):
        return FactorAgent(factor, config)
    if factor is not None:
        return FactorAgent.load(factor, config)
    return FactorAgent.from_settings(config) if config.enabled else None


def _fingerprint(bars: Bars) -> str:
    """Return a hash of the bars' times and prices."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(str(bars.timeframe).encode())
    for array in (bars.ts, bars.open, bars.high, bars.low, bars.close, bars.volume):
        digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def _warm(signal: AgentSignals) -> B1:
    """Return True where every feature behind an agent's signal is defined."""
    ready = np.ones(len(signal), dtype=np.bool_)
    for values in signal.features.values():
        ready &= np.isfinite(values)
    return ready
