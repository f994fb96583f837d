"""`TradeMonitor`: the engine's events become the alerts a person needs, once each."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from reinforcetrade.config import Settings
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.alerts import Notice, Severity
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import EngineEvent
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.monitor import TradeMonitor
from reinforcetrade.trading.paper import PaperBroker

HOUR = 3_600 * 10**9


def bar(t: int, equity: float) -> EngineEvent:
    close = pd.Timestamp("2024-03-01", tz="UTC").value + (t + 1) * HOUR
    return EngineEvent("bar", close, {"close_ns": close, "equity": equity, "cash": equity,
                                      "exposure": 0.0, "state": "active"})  # fmt: skip


def test_drawdown_levels_alert_once_each_until_a_new_peak() -> None:
    seen: list[Notice] = []
    monitor = TradeMonitor(seen.append, drawdown_levels=(0.05, 0.10), daily_summary=False)
    for t, equity in enumerate([100, 104, 98, 96, 93, 92, 105, 99, 90]):
        monitor(bar(t, equity))
    drawdowns = [(n.title, n.severity) for n in seen if n.kind == "drawdown"]
    assert drawdowns == [
        ("engine: drawdown 5%", Severity.WARNING),  # 98.8 → -5.8% from 104
        ("engine: drawdown 10%", Severity.CRITICAL),  # 93 → -10.6%, the deepest level
        ("engine: drawdown 5%", Severity.WARNING),  # after the new peak at 105: 99 → -5.7%
        ("engine: drawdown 10%", Severity.CRITICAL),
    ]


def test_a_daily_pnl_summary_when_the_day_turns() -> None:
    seen: list[Notice] = []
    monitor = TradeMonitor(seen.append, drawdown_levels=(0.5,))
    for t in range(30):  # 24 bars of 1 March, then 2 March
        monitor(bar(t, 1_000 + t))
    (daily,) = [n for n in seen if n.kind == "daily_pnl"]
    assert daily.title == "engine: daily P&L 2024-03-01"
    assert daily.fields["pnl"] == pytest.approx(23.0)  # 1023 at the last close of the day
    assert daily.severity == Severity.INFO


def test_repeated_order_errors_stops_and_engine_alerts() -> None:
    seen: list[Notice] = []
    monitor = TradeMonitor(seen.append, order_errors=3, order_error_window=600)
    refused = {"symbol": "BTC/USDT", "type": "market", "side": "buy", "qty": 1.0, "role": "e",
               "client_order_id": "l1e-1", "outcome": "rejected", "reason": "insufficient"}  # fmt: skip
    for minute in (0, 20, 21, 22):  # the first falls out of the 10-minute window
        monitor(EngineEvent("order", minute * 60 * 10**9, refused))
    errors = [n for n in seen if n.kind == "order_errors"]
    assert len(errors) == 1
    assert "insufficient" in errors[0].message
    stop = {**refused, "type": "stop", "role": "s", "outcome": "placed", "side": "sell"}
    monitor(EngineEvent("order", 0, stop))
    monitor(EngineEvent("alert", 0, {"alert": "halted", "message": "trading HALTED"}))
    monitor(EngineEvent("alert", 0, {"alert": "stale_data", "message": "no bars"}))
    monitor(EngineEvent("breaker", 0, {"symbol": "BTC/USDT"}))
    kinds = {n.kind: n.severity for n in seen}
    assert kinds["stop_placed"] == Severity.INFO
    assert kinds["halted"] == Severity.CRITICAL
    assert kinds["stale_data"] == Severity.WARNING
    assert kinds["breaker"] == Severity.WARNING
    assert "entry" not in kinds  # entries and exits only when asked


def test_a_paper_session_feeds_the_monitor(tmp_path: Path) -> None:
    seen: list[Notice] = []
    monitor = TradeMonitor(seen.append, name="desk", entries_exits=True)
    frames = dict(generate_market(["BTC/USDT"], bars=1_500, seed=4).frames)
    settings = Settings()
    with Journal(f"sqlite:///{tmp_path / 'paper.db'}") as journal:
        engine = LiveEngine(MultiAgentStrategy(settings=settings), ReplayFeed(frames),
                            PaperBroker(), journal, name="desk", observer=monitor)  # fmt: skip
        engine.run()
    kinds = {n.kind for n in seen}
    assert {"entry", "exit", "stop_placed", "daily_pnl"} <= kinds
    assert all(n.title.startswith("desk: ") for n in seen)
