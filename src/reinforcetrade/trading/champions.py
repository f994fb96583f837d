"""`ChampionWatch`: a running engine switches to the registry's new champion model between bars.

Another process may promote a new champion at any time (`ModelRegistry.promote` rewrites
registry.json atomically). The engine asks the watch at each bar boundary, on its own thread,
before the bar is stepped. One `os.stat` of registry.json per bar (mtime, size, inode) says
whether anything changed; only then is the index read. For each symbol whose champion is no
longer the model in use, the new model is loaded and its follower starts on the side the policy
would hold had it watched the same window of bars (its batched `signals` over the stepper's
window, the last bar's direction); then it replaces the old follower. A model that cannot be
loaded or used leaves the old one trading; it is tried again only when registry.json changes
again.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from reinforcetrade.agents.registry import require_compatible
from reinforcetrade.backtesting.stepper import BarStepper
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.strategies.multi_agent import ChampionAgent

if TYPE_CHECKING:
    from reinforcetrade.agents.registry import ModelRecord
    from reinforcetrade.agents.rl import RLAgent, RLFollower

__all__ = ["ChampionWatch", "ModelSwitch"]

log = logging.getLogger(__name__)

Signature = tuple[int, int, int]  # registry.json's (mtime_ns, size, inode); () when missing


@dataclass(frozen=True)
class ModelSwitch:
    """A symbol's new champion as the engine met it: switched to (done) or not (failed)."""

    symbol: str
    timeframe: str
    old: str | None  # the model in use before (None: none)
    new: str
    outcome: Literal["done", "failed"]
    reason: str  # the promotion's reason, from the registry's history
    error: str = ""  # why the switch failed


class ChampionWatch:
    """Switches a stepper's RL followers to the registry's champions when they change."""

    def __init__(self, agent: ChampionAgent, stepper: BarStepper) -> None:
        self.agent = agent
        self.stepper = stepper
        self.timeframe = stepper.timeframe.text
        self.path = agent.registry.index_path
        self.current: dict[str, str | None] = {s: self._followed(s) for s in stepper.symbols}
        self.reads = 0  # how often registry.json was read
        self._signature: Signature | tuple[()] | None = None  # None: not read yet

    @classmethod
    def of(cls, stepper: BarStepper) -> ChampionWatch | None:
        """Return a watch when the stepper's strategy follows the champions (else None)."""
        found = [a for a in stepper.strategy.agents if isinstance(a, ChampionAgent)]
        return cls(found[0], stepper) if found else None

    def poll(self) -> list[ModelSwitch]:
        """Between bars: switch each symbol whose champion changed; return what happened.

        Reads registry.json only when its stat changed since the last read. Raises
        `ModelRegistryError` when the index cannot be read (not read again until it changes).
        """
        signature = _signature(self.path)
        if signature == self._signature:
            return []
        self._signature = signature  # taken before reading: a write meanwhile is seen next time
        self.reads += 1
        registry, switches = self.agent.registry, []
        for symbol in self.stepper.symbols:
            record = registry.champion(symbol, self.timeframe)
            if record is not None and record.id != self.current[symbol]:
                switches.append(self._switch(symbol, record))
        return switches

    # -- internals ----------------------------------------------------------------------------
    def _switch(self, symbol: str, record: ModelRecord) -> ModelSwitch:
        """Load the new champion and swap it in, or say why not (the old model trades on)."""
        old = self.current[symbol]
        reason = self._reason(symbol, record.id)
        try:
            follower = self._warmed(symbol, self.agent.load(record))
        except Exception as exc:  # a model from another process must never stop trading
            if not isinstance(exc, UserInputError):
                log.exception("switching %s to model %s failed", symbol, record.id)
            error = f"{type(exc).__name__}: {exc}"
            return ModelSwitch(symbol, self.timeframe, old, record.id, "failed", reason, error)
        self.stepper.signal_follower(symbol).replace(self.agent.name, follower)
        self.agent.adopt(follower.agent)
        self.current[symbol] = record.id
        return ModelSwitch(symbol, self.timeframe, old, record.id, "done", reason)

    def _warmed(self, symbol: str, agent: RLAgent) -> RLFollower:
        """Return the agent's follower holding the side it would hold on the stepper's window."""
        from reinforcetrade.environments.interpreters import side_of

        require_compatible(
            agent.record, feature_fingerprint=agent.spec.fingerprint(), timeframe=self.timeframe
        )
        follower = agent.follower()
        history = self.stepper.history
        if history is not None and history <= follower.first:
            raise UserInputError(
                f"model {agent.record.id} needs windows of at least {follower.first + 1} bars "
                f"but the engine keeps {history} (trading.history_bars); raise it and restart"
            )
        bars = self.stepper.bars_of(symbol, history)
        if len(bars) > follower.first:  # else still warming up: it starts FLAT, as it would
            follower.side = side_of(float(agent.signals(bars).direction[-1]))
        return follower

    def _reason(self, symbol: str, new: str) -> str:
        """Return the reason the registry gave for promoting `new` (its last promotion)."""
        try:
            history = self.agent.registry.history(symbol, self.timeframe)
        except UserInputError:
            history = []
        for promotion in reversed(history):
            if promotion.challenger == new and promotion.promoted:
                return promotion.reason
        return f"{new} is the registry's champion for {symbol} {self.timeframe}"

    def _followed(self, symbol: str) -> str | None:
        """Return the id of the model a symbol's RL follower runs (None: none)."""
        follower = self.stepper.signal_follower(symbol).follower_of(self.agent.name)
        agent = getattr(follower, "agent", None)
        record = getattr(agent, "record", None)
        return None if record is None else str(record.id)


def _signature(path: os.PathLike[str] | str) -> Signature | tuple[()]:
    """Return a file's (mtime_ns, size, inode), or () when it is missing."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return ()
    return st.st_mtime_ns, st.st_size, st.st_ino
