"""An operator's controls of a running engine: pause entries, flatten, lift a halt, from any thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pandas as pd
import pytest

from gated_feed import GatedFeed, RunningEngine
from reinforcetrade.backtesting import EnhancedBacktester
from reinforcetrade.config import Settings
from reinforcetrade.data import generate_market
from reinforcetrade.simulation.account import QTY
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.control import ControlQueue, ControlRefused
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import EngineEvent
from reinforcetrade.trading.paper import PaperBroker

SYMBOL = "BTC/USDT"


def market(bars: int = 1_500) -> dict[str, pd.DataFrame]:
    return {SYMBOL: generate_market([SYMBOL], bars=bars, seed=4).frames[SYMBOL]}


def held_bar(frames: Mapping[str, pd.DataFrame]) -> int:
    """Return a bar count after which the backtest holds a position for a while yet."""
    trades = EnhancedBacktester(MultiAgentStrategy()).run(frames).trades
    index = frames[SYMBOL].index
    for _, trade in trades.iterrows():
        entry = int(index.searchsorted(trade["entry_time"]))
        exit_ = int(index.searchsorted(trade["exit_time"]))
        if exit_ - entry >= 6:
            return entry + 3
    raise AssertionError("no trade lasts long enough")


@pytest.fixture
def journal(tmp_path: Path) -> Iterator[Journal]:
    with Journal(f"sqlite:///{tmp_path / 'paper.db'}") as j:
        yield j


def start(
    journal: Journal, frames: Mapping[str, pd.DataFrame], gate: int, **kw: object
) -> RunningEngine:
    settings = kw.pop("settings", None)
    feed = GatedFeed(frames, gate)
    strategy = MultiAgentStrategy(settings=settings if isinstance(settings, Settings) else None)
    engine = LiveEngine(strategy, feed, PaperBroker(), journal, **kw)  # type: ignore[arg-type]
    return RunningEngine(engine, feed)


def test_flatten_closes_the_position_at_the_next_open_and_says_who(journal: Journal) -> None:
    frames = market()
    at = held_bar(frames)
    events: list[EngineEvent] = []
    run = start(journal, frames, at, observer=events.append)
    run.until(at)
    engine = run.engine
    assert engine.stepper.run.book.pos_f[0, QTY] != 0.0
    with pytest.raises(ControlRefused, match="not traded"):
        engine.flatten("DOGE/USDT", actor="alice")
    assert engine.flatten(None, actor="alice", reason="news") == [SYMBOL]
    with pytest.raises(ControlRefused, match="no open position"):  # its close is pending
        engine.flatten(SYMBOL, actor="alice")
    run.until(at + 1)
    assert engine.stepper.run.book.pos_f[0, QTY] == 0.0
    summary = run.stop()
    decisions = journal.read_table("decisions", run_id=summary.run_id)
    manual = decisions[decisions["exit_reason"] == "manual"]
    assert len(manual) == 1
    assert manual["reasons"].item() == "closed on an operator's request"
    assert manual["time"].item() == frames[SYMBOL].index[at - 1]
    trades = journal.read_table("trades", run_id=summary.run_id)
    closed = trades[trades["exit_reason"] == "manual"]
    assert len(closed) == 1
    assert closed["exit_time"].item() == frames[SYMBOL].index[at]  # the next bar's open
    fills = journal.read_table("fills", run_id=summary.run_id)
    assert (fills["time"] == frames[SYMBOL].index[at]).sum() == 1
    controls = [e.fields for e in events if e.kind == "control"]
    assert controls == [{"action": "flatten", "actor": "alice", "reason": "news", "detail": SYMBOL}]
    with pytest.raises(ControlRefused, match="stopped"):
        engine.flatten(None, actor="alice")


def test_pause_withholds_entries_with_the_operators_name(journal: Journal) -> None:
    frames = market()  # entries decided on bars 864 and 1349
    run = start(journal, frames, 800)
    run.until(800)
    run.engine.pause(actor="bob", reason="maintenance")
    assert run.engine.paused == "paused by bob: maintenance"
    run.until(1_000)
    run.engine.unpause(actor="bob")
    run.until(1_500)
    summary = run.stop()
    orders = journal.read_table("orders", run_id=summary.run_id)
    withheld = orders[orders["reason"].fillna("").str.contains("paused by bob")]
    decisions = journal.read_table("decisions", run_id=summary.run_id).set_index("number")
    assert len(withheld) > 0
    times = decisions.loc[withheld["decision_number"], "time"]
    index = frames[SYMBOL].index
    assert (times >= index[799]).all()
    assert (times <= index[999]).all()
    entries = decisions[decisions["action"].isin(["enter_long", "enter_short"])]
    later = entries[entries["time"] > index[1_000]]
    sent = orders[orders["decision_number"].isin(later.index) & (orders["type"] == "market")
                  & (orders["status"] != "rejected")]  # fmt: skip
    assert len(later) > 0
    assert len(sent) == len(later)


def test_lifting_a_halt_lets_the_running_engine_enter_again(journal: Journal) -> None:
    halting = Settings(risk={"max_drawdown_halt": 0.001})
    frames = market()  # halts on bar 945
    run = start(journal, frames, 1_000, settings=halting, name="desk")
    run.until(1_000)
    engine = run.engine
    assert engine.state == "halted"
    with pytest.raises(ControlRefused, match="reason"):
        engine.lift_halt(actor="carol", reason=" ")
    event = engine.lift_halt(actor="carol", reason="reviewed")
    assert engine.state == "active"
    with pytest.raises(ControlRefused, match="not halted"):
        engine.lift_halt(actor="carol", reason="again")
    run.until(1_001)
    assert engine.state in ("active", "reducing")  # the peak restarted: no instant re-halt
    summary = run.stop()
    events = journal.read_table("risk_events", run_id=summary.run_id)
    resume = events[events["id"] == event].iloc[0]
    assert (resume["kind"], resume["actor"], resume["reason"]) == ("resume", "carol", "reviewed")


def test_a_request_nobody_runs_is_refused_not_lost() -> None:
    queue = ControlQueue()
    with pytest.raises(ControlRefused, match="not running"):
        queue.call(lambda: 1)
    queue.open()
    with pytest.raises(ControlRefused, match="did not reach"):
        queue.call(lambda: 1, timeout=0.05)
    assert queue.run_pending() == 0  # the timed-out request was withdrawn, never runs
    answer: list[object] = []
    caller = threading.Thread(target=lambda: answer.append(queue.call(lambda: 42, timeout=10)))
    caller.start()
    while queue.run_pending() == 0:
        time.sleep(0.005)
    caller.join(10)
    assert answer == [42]

    def failing() -> None:
        raise ControlRefused("nothing to do")

    errors: list[BaseException] = []

    def call_failing() -> None:
        try:
            queue.call(failing, timeout=10)
        except ControlRefused as exc:
            errors.append(exc)

    caller = threading.Thread(target=call_failing)
    caller.start()
    while queue.run_pending() == 0:
        time.sleep(0.005)
    caller.join(10)
    assert [str(e) for e in errors] == ["nothing to do"]
    waiting = threading.Thread(target=call_failing)
    waiting.start()
    time.sleep(0.1)
    queue.close("the engine has stopped")
    waiting.join(10)
    assert "the engine has stopped" in str(errors[-1])
