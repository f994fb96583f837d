"""The self-reinforcement loop end to end: paper-trade, retrain in another process, switch on a win.

A paper engine follows the champion — a model trained on the market's old regime (bar-to-bar
momentum) — through a replay of the new one (mean reversion). `reinforcetrade retrain` runs in
its own process while the engine trades: a challenger trained on the bars in a destroyed order
is kept, and the engine goes on with its model; a challenger trained on the latest bars wins and
is crowned, and the engine switches to it at the next bar boundary — not before — recording the
switch. Every retrain's verdict is in the engine's journal.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from gated_feed import GatedFeed, RunningEngine
from reinforcetrade.agents.registry import ModelRegistry
from reinforcetrade.agents.training import TrainingPipeline
from reinforcetrade.data.writers import write_ohlcv
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import EngineEvent
from reinforcetrade.trading.paper import PaperBroker
from retrain_support import STEPS, loop_settings, new_regime, old_regime

SYMBOL = "AR/USD"
START, SWITCH = 300, 420  # bars the engine has stepped: when it starts and when it switches
CLI = str(Path(sys.executable).with_name("reinforcetrade"))


def retrain(config: Path, data: Path, journal: str, *extra: str) -> subprocess.Popen[str]:
    """Start `reinforcetrade retrain` in its own process."""
    return subprocess.Popen(  # noqa: S603 - our own command, our own arguments
        [CLI, "--config", str(config), "retrain", "--data", str(data), "--symbol", SYMBOL,
         "--journal", journal, "--json", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def verdict(process: subprocess.Popen[str]) -> dict[str, Any]:
    """Wait for a retrain process; return its verdict."""
    out, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    (line,) = [line for line in out.splitlines() if line.startswith("{")]
    document: dict[str, Any] = json.loads(line)
    return document


def switches(journal: Journal) -> pd.DataFrame:
    audit = journal.read_table("audit_log")
    return audit[audit["action"] == "switch-model"]


@pytest.mark.slow
def test_the_engine_switches_models_only_when_a_challenger_won(tmp_path: Path) -> None:
    settings = loop_settings(tmp_path / "models")
    registry = ModelRegistry(tmp_path / "models")
    old = TrainingPipeline("ppo", settings=settings, registry=registry).train(
        old_regime(), STEPS, symbol=SYMBOL, seed=0
    )
    registry.promote(old)
    latest = new_regime()
    data = write_ohlcv(latest, tmp_path / "ar.csv")
    config = tmp_path / "config.yaml"
    config.write_text(settings.to_yaml())
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    replay = latest.iloc[-800:]  # the agents are ready after ~200 bars: it trades from then
    events: list[EngineEvent] = []
    with Journal(url) as journal:
        feed = GatedFeed({SYMBOL: replay}, START)
        strategy = MultiAgentStrategy(use_rl=True, settings=settings, registry=registry)
        paper = LiveEngine(strategy, feed, PaperBroker(), journal, observer=events.append)
        engine = RunningEngine(paper, feed)
        engine.until(START)
        assert paper.champions is not None
        assert paper.champions.current == {SYMBOL: old.id}

        # a placebo challenger: the engine trades on while it is judged, and keeps its model
        # (with the tower's weights re-estimated from what the engine has done so far)
        placebo = retrain(config, data, url, "--placebo", "--reweight", "--from-run",
                          str(paper.run_id))  # fmt: skip
        engine.until(START + 100)
        assert placebo.poll() is None, "the retrain should still be running: make it slower"
        kept = verdict(placebo)
        assert kept["verdict"] == "kept", kept["reason"]
        assert kept["champion"] == old.id
        assert kept["model"] is None
        assert registry.champion(SYMBOL, "1h") == old
        engine.until(SWITCH)
        assert switches(journal).empty
        assert paper.champions.current == {SYMBOL: old.id}

        # a challenger trained on the latest bars wins and is crowned in the registry ...
        won = verdict(retrain(config, data, url))
        assert won["verdict"] == "promoted", won["reason"]
        new = registry.champion(SYMBOL, "1h")
        assert new is not None
        assert new.id == won["model"] != old.id
        # ... and the engine switches at its next bar boundary, not before
        time.sleep(0.3)
        assert switches(journal).empty
        assert paper.champions.current == {SYMBOL: old.id}
        engine.until(SWITCH + 1)
        (switch,) = switches(journal).itertuples()
        assert switch.actor == "engine"
        assert switch.outcome == "done"
        assert switch.target == f"{SYMBOL} 1h"
        at = replay.index[SWITCH].isoformat()
        assert switch.detail == f"{old.id} -> {new.id} at bar {at}"
        assert switch.reason == won["reason"]
        assert paper.champions.current == {SYMBOL: new.id}
        (told,) = [e for e in events if e.kind == "model"]
        assert told.fields["new"] == new.id

        engine.until(SWITCH + 40)  # it trades on with the new model, and switches no more
        assert len(switches(journal)) == 1
        summary = engine.stop()
        records = journal.retrains(SYMBOL)
    assert summary.bars >= SWITCH + 40
    assert summary.decisions > 0  # it traded, with the old model and then the new one
    assert [r.verdict for r in records] == ["promoted", "kept"]
    promoted, placebo_row = records
    assert placebo_row.tried["placebo"] is True
    assert placebo_row.weights is not None
    assert placebo_row.weights["source"] == f"journal run {summary.run_id}"
    rl = [e for e in placebo_row.weights["evidence"] if e["agent"] == "rl"]
    assert [e["regime"] for e in rl] == ["trending", "ranging", "high_volatility"]
    assert sum(e["votes"] for e in rl) > 0  # the paper run's own votes, resolved by its bars
    assert promoted.challenger == new.id
    assert promoted.champion == old.id
    assert promoted.deflated_sharpe is not None
    assert promoted.deflated_sharpe >= settings.retrain.min_deflated_sharpe
    assert promoted.challenger_value is not None
    assert promoted.champion_value is not None
    assert promoted.challenger_value >= promoted.champion_value + settings.retrain.margin
    folds = promoted.figures["challenger"]["folds"]
    assert len(folds) == settings.retrain.folds
    assert [f["test_start"] for f in folds] == [
        f["test_start"] for f in promoted.figures["champion"]["folds"]
    ]
