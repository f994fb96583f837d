"""Every journal API on a real SQLite file and a real PostgreSQL schema."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select, text

from reinforcetrade.config import Settings, StorageConfig
from reinforcetrade.core.clock import FixedClock
from reinforcetrade.core.codes import Action, ExitReason, Reason, Regime, TrendRegime, VolRegime
from reinforcetrade.core.records import AgentSignal, Decision
from reinforcetrade.storage import (
    DEFAULT_URL,
    FINAL_STATUSES,
    ORDER_STATUSES,
    TRANSITIONS,
    IllegalTransitionError,
    Journal,
    JournalError,
    check_transition,
    decision_mapping,
    schema,
)
from storage.conftest import T0

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _count(journal: Journal, table: str, where: str = "1 = 1", **params: Any) -> int:
    with journal.engine.connect() as connection:
        statement = text(f"SELECT count(*) FROM {table} WHERE {where}")  # noqa: S608 - test SQL
        return int(connection.execute(statement, params).scalar_one())


def _order(run_id: int, client_order_id: str = "o-1", **extra: Any) -> dict[str, Any]:
    return {
        "client_order_id": client_order_id,
        "run_id": run_id,
        "symbol": "BTC/USDT",
        "side": "buy",
        "type": "limit",
        "qty": 0.5,
        "price": 41_000.0,
        "decision_number": 7,
        **extra,
    }


def _fill(run_id: int | None, trade_id: str = "t-1", **extra: Any) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "client_order_id": "o-1",
        "exchange": "binance",
        "exchange_trade_id": trade_id,
        "symbol": "BTC/USDT",
        "side": "buy",
        "time": NOW,
        "qty": 0.25,
        "price": 41_000.0,
        "fee": 0.01,
        "fee_currency": "USDT",
        "liquidity": "maker",
        "slippage_bps": 1.5,
        "latency_ms": 120.0,
        **extra,
    }


@pytest.fixture
def run_id(journal: Journal) -> int:
    return journal.start_run(
        "paper",
        name="paper-btc",
        config_hash="abc123",
        settings={"risk": {"stop_loss": 0.02}, "nan": float("nan")},
        symbols=["BTC/USDT"],
        timeframe="1h",
        version="0.5.0",
    )


# -- runs ---------------------------------------------------------------------------------------


def test_runs_start_and_end(journal: Journal, run_id: int, clock: FixedClock) -> None:
    run = journal.run(run_id)
    assert run is not None
    assert (run.kind, run.name, run.status, run.config_hash) == (
        "paper",
        "paper-btc",
        "running",
        "abc123",
    )
    assert run.settings == {"risk": {"stop_loss": 0.02}, "nan": None}
    assert run.symbols == ["BTC/USDT"]
    assert run.timeframe == "1h"
    assert run.version == "0.5.0"
    assert run.started_at == NOW
    assert run.ended_at is None
    assert run.pid
    assert run.host
    clock.advance(60 * 10**9)
    journal.end_run(run_id, "stopped")
    ended = journal.run(run_id)
    assert ended is not None
    assert ended.status == "stopped"
    assert ended.ended_at == NOW + timedelta(minutes=1)
    assert journal.run(run_id + 1000) is None
    with pytest.raises(JournalError, match="no run"):
        journal.end_run(run_id + 1000)
    with pytest.raises(JournalError, match="run kind 'dry' is not one of backtest, paper, live"):
        journal.start_run("dry", name="x")
    with pytest.raises(JournalError, match="final run status"):
        journal.end_run(run_id, "running")


def test_closed_journal_refuses_with_a_hint(journal_url: str) -> None:
    journal = Journal(journal_url)
    with pytest.raises(JournalError, match=r"not open: call Journal.open\(\)"):
        journal.start_run("paper", name="x")
    with journal as opened:
        assert opened.start_run("paper", name="x") >= 1
        assert opened.open() is opened  # idempotent


def test_from_settings_and_default_url(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    assert Journal.from_settings(Settings(storage=StorageConfig(url=url))).name == url
    assert Journal.from_settings(StorageConfig(url=url)).dialect == "sqlite"
    assert StorageConfig().url == DEFAULT_URL


# -- bars, decisions, equity, trades ------------------------------------------------------------


def test_bars_and_equity_are_idempotent(journal: Journal, run_id: int) -> None:
    prices = {"open": 1.0, "high": 2.0, "low": 0.5, "close": 1.5, "volume": 10.0}
    assert journal.record_bar(run_id, symbol="BTC/USDT", time=T0, **prices)
    assert not journal.record_bar(run_id, symbol="BTC/USDT", time=T0, **prices)
    assert journal.record_equity(run_id, time=NOW, equity=10_000.0, cash=9_000.0, exposure=0.1)
    assert not journal.record_equity(run_id, time=NOW, equity=10_001.0)
    assert journal.record_equity(run_id, time=NOW + timedelta(hours=1), equity=10_002.0)
    assert _count(journal, "bars") == 1
    equity = journal.read_table("equity", run_id=run_id)
    assert equity["equity"].tolist() == [10_000.0, 10_002.0]
    assert equity["time"].tolist() == [NOW, NOW + timedelta(hours=1)]


def _decision(number: int, **extra: Any) -> dict[str, Any]:
    return {
        "number": number,
        "time": NOW,
        "symbol": "BTC/USDT",
        "action": "enter_long",
        "direction": 1,
        "confidence": 0.8,
        "threshold": 0.6,
        "agreeing": 2,
        "regime": "trending",
        "vol_regime": "normal",
        "trend_regime": "up",
        "size": 0.05,
        "qty": 0.1,
        "stop": 39_000.0,
        "take_profit": float("nan"),
        "reasons": "tower confidence at or above the entry threshold",
        "reason_codes": "CONFIDENCE_OK",
        "reason_mask": 1,
        "exit_reason": None,
        "cost_estimate_bps": 7.5,
        **extra,
    }


def test_decisions_with_agents_in_both_shapes(journal: Journal, run_id: int) -> None:
    listed = _decision(
        1,
        agents=[
            {"agent": "trend", "signal": 1, "confidence": 0.9, "weight": 0.5},
            {"agent": "short_term", "signal": -1, "confidence": 0.4, "weight": 0.5},
        ],
    )
    flat = _decision(2, signal_trend=0, confidence_trend=0.1, weight_trend=0.3)
    assert journal.record_decision(run_id, listed)
    assert journal.record_decision(run_id, flat)
    assert not journal.record_decision(run_id, listed)  # the same number: nothing written
    decisions = journal.read_table("decisions", run_id=run_id)
    assert decisions["number"].tolist() == [1, 2]
    assert decisions["take_profit"].isna().all()  # NaN is stored as NULL
    assert decisions.iloc[0]["regime"] == "trending"
    assert decisions.iloc[0]["stop"] == 39_000.0
    agents = journal.read_table("decision_agents").sort_values(["decision_id", "agent"])
    assert agents["agent"].tolist() == ["short_term", "trend", "trend"]
    assert agents["signal"].tolist() == [-1, 1, 0]
    with pytest.raises(JournalError, match="unknown field 'colour'"):
        journal.record_decision(run_id, _decision(3, colour="red"))
    with pytest.raises(JournalError, match="missing time"):
        journal.record_decision(run_id, _decision(3, time=None))


def test_core_decision_records_convert(journal: Journal, run_id: int) -> None:
    decision = Decision(
        ts=T0,
        symbol="ETH/USDT",
        action=Action.EXIT,
        direction=-1,
        confidence=0.7,
        regime=Regime.HIGH_VOLATILITY,
        vol_regime=VolRegime.HIGH,
        trend_regime=TrendRegime.DOWN,
        signals=(AgentSignal("trend", -1, 0.9), AgentSignal("environment", 0, 0.2)),
        weights=(0.6, 0.4),
        agreeing=1,
        size=0.0,
        quantity=0.3,
        stop=math.nan,
        take_profit=math.nan,
        reasons=int(Reason.CONFIDENCE_OK | Reason.REVERSAL),
        cost_estimate_bps=5.0,
        exit_reason=ExitReason.REVERSAL,
    )
    mapping = decision_mapping(decision, 9, threshold=0.6)
    assert journal.record_decision(run_id, mapping)
    row = journal.read_table("decisions", run_id=run_id).iloc[0]
    assert (row["action"], row["regime"], row["vol_regime"], row["trend_regime"]) == (
        "exit",
        "high_volatility",
        "high",
        "down",
    )
    assert row["exit_reason"] == "reversal"
    assert row["reason_codes"] == "CONFIDENCE_OK|REVERSAL"
    agents = journal.read_table("decision_agents")
    assert dict(zip(agents["agent"], agents["weight"], strict=True)) == {
        "trend": 0.6,
        "environment": 0.4,
    }


def test_trades(journal: Journal, run_id: int) -> None:
    trade = {"number": 0, "symbol": "BTC/USDT", "side": "long", "entry_time": NOW, "qty": 1.0}
    trade |= {"entry_price": 100.0, "exit_price": 110.0, "pnl": 10.0, "ret": 0.1}
    assert journal.record_trade(run_id, trade)
    assert not journal.record_trade(run_id, trade)
    with pytest.raises(JournalError, match="trade side 'up'"):
        journal.record_trade(run_id, {**trade, "number": 1, "side": "up"})
    assert journal.read_table("trades")["exit_time"].isna().all()


# -- orders and fills ---------------------------------------------------------------------------


def test_order_lifecycle(journal: Journal, run_id: int, clock: FixedClock) -> None:
    assert journal.record_order(_order(run_id))
    assert not journal.record_order(_order(run_id, qty=99.0))  # write-before-send, sent twice
    assert _count(journal, "orders") == 1
    (pending,) = journal.open_orders(run_id)
    assert (pending.status, pending.qty, pending.filled_qty, pending.created_at) == (
        "pending",
        0.5,
        0.0,
        NOW,
    )
    clock.advance(10**9)
    submitted = journal.update_order("o-1", "submitted", exchange_order_id="X-9", detail="ack")
    assert submitted.status == "submitted"
    assert submitted.exchange_order_id == "X-9"
    assert submitted.updated_at == NOW + timedelta(seconds=1)
    journal.update_order("o-1", "partially_filled", filled_qty=0.2, avg_price=41_000.0)
    journal.update_order("o-1", "partially_filled", filled_qty=0.4, avg_price=40_990.0)
    done = journal.update_order("o-1", "filled", filled_qty=0.5, avg_price=40_995.0, reason="tp")
    assert (done.status, done.filled_qty, done.reason, done.is_open) == ("filled", 0.5, "tp", False)
    events = journal.order_events("o-1")
    assert [(e.from_status, e.to_status) for e in events] == [
        (None, "pending"),
        ("pending", "submitted"),
        ("submitted", "partially_filled"),
        ("partially_filled", "partially_filled"),
        ("partially_filled", "filled"),
    ]
    assert journal.open_orders(run_id) == []
    assert journal.open_orders() == []
    journal.record_order(_order(run_id, "o-2", type="stop", price=None, stop_price=39_000.0))
    by_id = journal.orders_by_client_id(["o-1", "o-2", "nope"])
    assert sorted(by_id) == ["o-1", "o-2"]
    assert by_id["o-2"].stop_price == 39_000.0
    assert sorted(journal.orders_by_client_id(run_id=run_id)) == ["o-1", "o-2"]
    assert [o.client_order_id for o in journal.open_orders()] == ["o-2"]


def test_illegal_transitions_are_refused(journal: Journal, run_id: int) -> None:
    journal.record_order(_order(run_id))
    with pytest.raises(IllegalTransitionError, match="from 'pending' to 'expired'"):
        journal.update_order("o-1", "expired")
    journal.update_order("o-1", "filled", filled_qty=0.5)
    with pytest.raises(IllegalTransitionError, match="'filled' is final"):
        journal.update_order("o-1", "cancelled")
    with pytest.raises(IllegalTransitionError, match="unknown status 'done'"):
        journal.update_order("o-1", "done")
    assert journal.orders_by_client_id(["o-1"])["o-1"].status == "filled"
    assert len(journal.order_events("o-1")) == 2  # refused updates wrote nothing
    with pytest.raises(JournalError, match="no order 'o-404'"):
        journal.update_order("o-404", "submitted")
    with pytest.raises(JournalError, match="unknown field 'colour'"):
        journal.update_order("o-1", "cancelled", colour="red")
    with pytest.raises(JournalError, match="order side 'long'"):
        journal.record_order(_order(run_id, "o-3", side="long"))


def test_fills_are_idempotent_on_the_exchange_trade_id(journal: Journal, run_id: int) -> None:
    journal.record_order(_order(run_id))
    assert journal.record_fill(_fill(run_id))
    assert not journal.record_fill(_fill(run_id, price=1.0))  # the same trade again: nothing
    assert journal.record_fill(_fill(run_id, "t-2", time=NOW + timedelta(seconds=1)))
    assert journal.record_fill(_fill(run_id, "t-1", exchange="kraken"))  # another venue's id
    assert _count(journal, "fills") == 3
    fills = journal.fills_for("o-1")
    assert [(f.exchange, f.exchange_trade_id) for f in fills] == [
        ("binance", "t-1"),
        ("kraken", "t-1"),
        ("binance", "t-2"),
    ]
    assert fills[0].price == 41_000.0
    assert fills[0].liquidity == "maker"
    assert fills[0].reconciliation is False
    assert journal.record_fill(_fill(None, "t-9", client_order_id=None, reconciliation=True))
    with pytest.raises(JournalError, match="fill liquidity 'both'"):
        journal.record_fill(_fill(run_id, "t-10", liquidity="both"))


def test_state_machine_table() -> None:
    assert set(TRANSITIONS) == set(ORDER_STATUSES)
    assert set(FINAL_STATUSES) == {"filled", "cancelled", "rejected", "expired"}
    for current, new in itertools.product(ORDER_STATUSES, repeat=2):
        if new in TRANSITIONS[current]:
            check_transition("o", current, new)
        else:
            with pytest.raises(IllegalTransitionError):
                check_transition("o", current, new)


# -- positions, risk, models --------------------------------------------------------------------


def test_positions_upsert_close_and_reopen(
    journal: Journal, run_id: int, clock: FixedClock
) -> None:
    opened = journal.upsert_position(run_id, "BTC/USDT", qty=0.5, avg_price=41_000.0)
    clock.advance(60 * 10**9)
    moved = journal.upsert_position(
        run_id, "BTC/USDT", qty=0.8, avg_price=41_500.0, stop_client_order_id="s-1"
    )
    assert moved.id == opened.id
    assert moved.opened_at == NOW
    assert moved.qty == 0.8
    assert moved.stop_client_order_id == "s-1"
    closed = journal.upsert_position(
        run_id, "BTC/USDT", qty=0.0, realised_pnl=12.5, closed_at=NOW + timedelta(hours=1)
    )
    assert closed.id == opened.id
    assert closed.closed_at == NOW + timedelta(hours=1)
    assert journal.positions(run_id) == []
    again = journal.upsert_position(run_id, "BTC/USDT", qty=-0.1, avg_price=42_000.0)
    journal.upsert_position(run_id, "ETH/USDT", qty=2.0, avg_price=2_000.0)
    assert again.id != opened.id
    assert [(p.symbol, p.qty) for p in journal.positions(run_id)] == [
        ("BTC/USDT", -0.1),
        ("ETH/USDT", 2.0),
    ]
    assert len(journal.positions(run_id, open_only=False)) == 3


def test_risk_state_survives_a_restart(journal: Journal, run_id: int, clock: FixedClock) -> None:
    journal.record_risk_event(
        run_id, kind="reducing", state="reducing", reason="3 losses", actor="risk"
    )
    clock.advance(10**9)
    journal.record_risk_event(
        run_id, kind="halt", state="halted", reason="drawdown 21%", actor="risk"
    )
    other = journal.start_run("paper", name="paper-eth")
    journal.record_risk_event(other, kind="resume", state="active", actor="operator")
    journal.end_run(run_id, "failed")
    restarted = journal.start_run("paper", name="paper-btc")  # the same engine, a new run
    latest = journal.latest_risk_state("paper-btc")
    assert latest is not None
    assert (latest.state, latest.kind, latest.run_id) == (
        "halted",
        "halt",
        run_id,
    )
    assert latest.reason == "drawdown 21%"
    assert journal.latest_risk_state("paper-btc", kind="live") is None
    assert journal.latest_risk_state("nobody") is None
    clock.advance(10**9)
    journal.record_risk_event(restarted, kind="resume", state="active", actor="operator")
    resumed = journal.latest_risk_state("paper-btc")
    assert resumed is not None
    assert resumed.state == "active"
    with pytest.raises(JournalError, match="risk state 'panic'"):
        journal.record_risk_event(run_id, kind="halt", state="panic")


def test_model_versions(journal: Journal) -> None:
    model = {
        "model_id": "ppo-BTC-USDT-1h-1a2b3c4d",
        "algorithm": "ppo",
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "created": "2023-11-14T22:13:20.000000+00:00",
        "metrics": {"validation_sharpe": 1.2, "bad": float("inf")},
        "path": Path("/models/ppo"),
    }
    assert journal.record_model_version(model)
    assert not journal.record_model_version(model)
    row = journal.read_table("model_versions").iloc[0]
    assert row["metrics"] == {"validation_sharpe": 1.2, "bad": None}
    assert row["created"] == datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)
    assert row["path"] == "/models/ppo"


def test_sqlite_runs_in_wal_with_foreign_keys(tmp_path: Path) -> None:
    with Journal(f"sqlite:///{tmp_path / 'sub' / 'j.db'}", busy_timeout=2.5) as journal:
        with journal.engine.connect() as connection:
            assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
            assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
            assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 2500
        with pytest.raises(JournalError, match="FOREIGN KEY constraint failed"):
            journal.record_order(_order(404))
        count = select(func.count()).select_from(schema.orders)
        with journal.engine.connect() as connection:
            assert connection.execute(count).scalar_one() == 0


def test_a_sqlite_file_ignores_the_network_databases_password(tmp_path: Path) -> None:
    from pydantic import SecretStr

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    with Journal(url, password=SecretStr("for-postgresql-only")) as journal:  # one setting, both
        run = journal.start_run("paper", name="desk", symbols=["BTC/USDT"], timeframe="1h")
        assert journal.run(run) is not None
