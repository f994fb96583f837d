"""A running paper engine switches to a newly promoted champion model between bars, on record."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from gated_feed import GatedFeed
from reinforcetrade.agents.registry import MODEL_FILE, ModelRecord, ModelRegistry
from reinforcetrade.agents.rl import RLAgent
from reinforcetrade.config import Settings
from reinforcetrade.data.bars import Bars
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import EngineEvent
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.paper import PaperBroker
from rl_support import market, train

SYMBOL, TIMEFRAME = "BTC/USDT", "1h"
BARS = 330  # the RL agents are warm from bar 226 (feature warm-up 219 + window 8 - 1)
SWITCH_FROM = 250  # the earliest bar a test promotes after
#: the rule-based agents' look-back cut to 225 bars, so a short window (240) is allowed
SETTINGS = Settings(agents={"environment": {"volatility_history": 200}})


@dataclass(frozen=True)
class Models:
    """Tiny trained models shared by the tests (copied into each test's own registry)."""

    root: Path
    a: ModelRecord
    b: ModelRecord
    wide: ModelRecord  # trained on 30-bar windows: needs 249 bars of history


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> Models:
    root = tmp_path_factory.mktemp("models")
    a = train(root, "ppo", 256, data=market(600, seed=5), seed=0, allow_short=True)
    b = train(root, "ppo", 256, data=market(600, seed=6), seed=1, allow_short=True)
    wide = train(root, "ppo", 256, data=market(600, seed=7), seed=2, allow_short=True, window=30)
    assert len({a.id, b.id, wide.id}) == 3
    return Models(root, a, b, wide)


@pytest.fixture
def registry(models: Models, tmp_path: Path) -> ModelRegistry:
    """A registry of its own (a test may break a model), with A the champion."""
    root = tmp_path / "models"
    shutil.copytree(models.root, root)
    registry = ModelRegistry(root)
    assert registry.promote(models.a.id).promoted
    return registry


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'paper.db'}") as j:
        yield j


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return market(BARS, seed=11)


def crown(registry: ModelRegistry, record: ModelRecord, over: ModelRecord) -> None:
    """Promote `record` over the champion `over` (whichever way their figures compare)."""
    better = record.metric("validation_sharpe") > over.metric("validation_sharpe")
    assert registry.promote(record.id, higher_is_better=better).promoted


@dataclass
class Watcher:
    """The engine's observer: its events and, on each bar, the RL agent's signal."""

    events: list[EngineEvent] = field(default_factory=list)
    rl: list[tuple[int, float]] = field(default_factory=list)
    engine: LiveEngine | None = None

    def __call__(self, event: EngineEvent) -> None:
        self.events.append(event)
        if event.kind == "bar" and self.engine is not None:
            (latest,) = self.engine.stepper.latest_signals()
            (vote,) = (a for a in latest["agents"] if a["agent"] == "rl")
            self.rl.append((vote["signal"], vote["confidence"]))

    def of(self, kind: str) -> list[EngineEvent]:
        return [e for e in self.events if e.kind == kind]


def paper(
    strategy: MultiAgentStrategy,
    feed: ReplayFeed | GatedFeed,
    journal: Journal,
    history: int | None = None,
) -> tuple[LiveEngine, Watcher]:
    watcher = Watcher()
    engine = LiveEngine(strategy, feed, PaperBroker(), journal, observer=watcher, history=history)
    watcher.engine = engine
    return engine, watcher


def step(engine: LiveEngine, feed: ReplayFeed, bars: int) -> None:
    """Run `bars` closed bars through the engine, as its run loop does."""
    for _ in range(bars):
        got = feed.next_bars(0.0)
        assert got is not None
        engine.on_bars(got)


def audit(journal: Journal) -> list[dict[str, str]]:
    """Return the engine's model switches in the audit log, oldest first."""
    rows = journal.read_table("audit_log")
    columns = ["actor", "target", "reason", "outcome", "detail"]
    switches = rows[rows["action"] == "switch-model"][columns].astype(str)
    return [{str(k): str(v) for k, v in r.items()} for r in switches.to_dict("records")]


def followed(engine: LiveEngine) -> str:
    """Return the id of the model the engine's RL agent runs on."""
    follower = engine.stepper.signal_follower(SYMBOL).follower_of("rl")
    return str(follower.agent.record.id)  # type: ignore[union-attr]


def model_ids(strategy: MultiAgentStrategy) -> list[str]:
    return [str(r["id"]) for r in strategy.model_records()]


def test_a_running_engine_switches_to_a_new_champion_between_bars(
    models: Models, registry: ModelRegistry, journal: Journal, frame: pd.DataFrame
) -> None:
    bars = Bars.from_frame(frame)
    theirs = RLAgent.load(models.b.id, registry).signals(bars)  # B's batched signals
    # switch where B holds a position: its follower must start on that side, not flat
    n = next(t for t in range(SWITCH_FROM, BARS - 40) if theirs.direction[t - 1] != 0)
    strategy = MultiAgentStrategy(use_rl=True, settings=SETTINGS, registry=registry)
    feed = GatedFeed({SYMBOL: frame}, gate=n)
    engine, watcher = paper(strategy, feed, journal)  # history 2,000: every bar
    runner = threading.Thread(target=engine.run, kwargs={"poll": 0.05}, daemon=True)
    runner.start()
    try:
        deadline = time.monotonic() + 60
        while engine.stepper.t < n and time.monotonic() < deadline:
            time.sleep(0.01)
        assert engine.stepper.t == n
        crown(registry, models.b, models.a)  # as `reinforcetrade retrain` would, mid-session
        feed.open_to(BARS + 1)  # every bar, then the end of the replay
        runner.join(60)
    finally:
        engine.request_stop("the test is over")
        runner.join(10)
    assert not runner.is_alive()
    assert engine.stepper.t == BARS

    (row,) = audit(journal)
    at = pd.Timestamp(int(bars.ts[n]), tz="UTC").isoformat()
    assert (row["actor"], row["outcome"]) == ("engine", "done")
    assert row["target"] == f"{SYMBOL} {TIMEFRAME}"
    assert row["detail"] == f"{models.a.id} -> {models.b.id} at bar {at}"
    assert row["reason"] == registry.history(SYMBOL, TIMEFRAME)[-1].reason
    assert models.b.id in row["reason"]
    (event,) = watcher.of("model")
    assert event.fields["old"] == models.a.id
    assert event.fields["new"] == models.b.id
    assert event.fields["outcome"] == "done"
    assert event.fields["bar"] == at
    assert not watcher.of("alert")
    assert followed(engine) == models.b.id
    assert model_ids(strategy) == [models.a.id, models.b.id]

    directions = np.array([d for d, _ in watcher.rl])
    confidences = np.array([c for _, c in watcher.rl])
    mine = RLAgent.load(models.a.id, registry).signals(bars)
    np.testing.assert_array_equal(directions[:n], mine.direction[:n])  # A until the switch
    np.testing.assert_array_equal(directions[n:], theirs.direction[n:])  # then B's, exactly
    assert (mine.direction[n:] != theirs.direction[n:]).any()  # which are not A's
    # one observation at a time vs a batch: float32 matmuls round ~1e-9 apart
    np.testing.assert_allclose(confidences[n:], theirs.confidence[n:], rtol=0, atol=1e-7)
    # bit for bit what B's own follower gives, had the engine run B from the start
    follower = RLAgent.load(models.b.id, registry).follower()
    alone = [follower.update(Bars.from_frame(frame.iloc[:k]), k)[:2] for k in range(1, BARS + 1)]
    assert watcher.rl[n:] == alone[n:]


def test_a_registry_rewritten_without_a_new_champion_switches_nothing(
    models: Models, registry: ModelRegistry, journal: Journal, frame: pd.DataFrame
) -> None:
    strategy = MultiAgentStrategy(use_rl=True, settings=SETTINGS, registry=registry)
    feed = ReplayFeed({SYMBOL: frame})
    engine, watcher = paper(strategy, feed, journal, history=240)
    watch = engine.champions
    assert watch is not None
    engine.start()
    step(engine, feed, SWITCH_FROM)
    assert watch.reads == 1  # once, on the first bar: not on every bar
    refused = registry.promote(models.a.id)  # already the champion: refused, but written
    assert not refused.promoted
    step(engine, feed, 5)
    model = registry.load(models.b.id)  # another model added: written again
    registry.add(model, symbol=SYMBOL, timeframe=TIMEFRAME, feature_spec=models.b.feature_spec,
                 env_config=models.b.env_config, metrics={"validation_sharpe": 9.0})  # fmt: skip
    step(engine, feed, 5)
    engine.shutdown()
    assert watch.reads == 3
    assert not audit(journal)
    assert not watcher.of("model")
    assert followed(engine) == models.a.id
    assert model_ids(strategy) == [models.a.id]


@pytest.mark.parametrize("broken", ["deleted", "window"])
def test_a_champion_that_cannot_be_used_leaves_the_old_model_trading(
    models: Models, registry: ModelRegistry, journal: Journal, frame: pd.DataFrame, broken: str
) -> None:
    strategy = MultiAgentStrategy(use_rl=True, settings=SETTINGS, registry=registry)
    feed = ReplayFeed({SYMBOL: frame})
    engine, watcher = paper(strategy, feed, journal, history=240)
    engine.start()
    step(engine, feed, SWITCH_FROM)
    new = models.b if broken == "deleted" else models.wide
    crown(registry, new, models.a)
    if broken == "deleted":  # after the promotion, which checks the files
        (Path(registry.root) / new.id / MODEL_FILE).unlink()
    step(engine, feed, 20)  # tried once, not on every bar
    (row,) = audit(journal)
    assert row["outcome"] == "failed"
    assert row["detail"].startswith(f"{models.a.id} -> {new.id} at bar ")
    expected = "model.zip is missing" if broken == "deleted" else "at least 249 bars"
    assert expected in row["detail"]
    assert row["detail"].endswith(f"still trading {models.a.id}")
    (alert,) = watcher.of("alert")
    assert alert.fields["alert"] == "model"
    assert new.id in str(alert.fields["message"])
    assert [e.fields["outcome"] for e in watcher.of("model")] == ["failed"]
    assert followed(engine) == models.a.id
    assert model_ids(strategy) == [models.a.id]
    assert engine.stepper.t == SWITCH_FROM + 20
    assert len(journal.read_table("equity", run_id=engine.run_id)) == SWITCH_FROM + 20
    if broken == "deleted":  # the file restored and the registry written again: tried again
        shutil.copyfile(models.root / new.id / MODEL_FILE, registry.root / new.id / MODEL_FILE)
        assert not registry.promote(new.id).promoted  # already the champion: a rewrite only
        step(engine, feed, 3)
        assert [r["outcome"] for r in audit(journal)] == ["failed", "done"]
        assert followed(engine) == new.id
        assert model_ids(strategy) == [models.a.id, new.id]
    engine.shutdown()


def test_a_strategy_pinned_to_a_model_never_switches(
    models: Models, registry: ModelRegistry, journal: Journal, frame: pd.DataFrame
) -> None:
    strategy = MultiAgentStrategy(model=models.a.id, settings=SETTINGS, registry=registry)
    feed = ReplayFeed({SYMBOL: frame})
    engine, watcher = paper(strategy, feed, journal, history=240)
    assert engine.champions is None
    engine.start()
    step(engine, feed, SWITCH_FROM)
    crown(registry, models.b, models.a)
    step(engine, feed, 10)
    engine.shutdown()
    assert not audit(journal)
    assert not watcher.of("model")
    assert followed(engine) == models.a.id
    assert model_ids(strategy) == [models.a.id]
