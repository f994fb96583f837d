"""Real faults: PostgreSQL connections killed mid-write, SQLite files locked by another writer,
and a password that must never show up in an error, a log record or a stored row."""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pydantic import SecretStr
from sqlalchemy import event
from sqlalchemy.engine import make_url

from reinforcetrade.backtesting import BacktestResult
from reinforcetrade.core.errors import ReinforceTradeError
from reinforcetrade.storage import (
    EngineLockedError,
    IllegalTransitionError,
    Journal,
    JournalError,
    RetryPolicy,
    metadata,
)
from storage.conftest import plain_dsn, result_frames, save_kwargs

CANARY = "canary-7f3a"


def _order(run_id: int, client_order_id: str = "o-1") -> dict[str, Any]:
    return {
        "client_order_id": client_order_id,
        "run_id": run_id,
        "symbol": "BTC/USDT",
        "side": "sell",
        "type": "market",
        "qty": 1.0,
    }


def _fill(run_id: int, trade_id: str) -> dict[str, Any]:
    return {
        "run_id": run_id,
        "exchange": "binance",
        "exchange_trade_id": trade_id,
        "symbol": "BTC/USDT",
        "side": "sell",
        "time": 1_767_225_600_000_000_000,
        "qty": 1.0,
        "price": 100.0,
    }


def _terminate(dsn: str, pid: int) -> None:
    """Kill a PostgreSQL backend from another connection and wait until it is gone."""
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        for _ in range(500):
            row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", (pid,))
            if row.fetchone() == (0,):
                return
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} survived pg_terminate_backend")


def _kill_once_after(journal: Journal, dsn: str, prefix: str, *, before: bool = False) -> list[int]:
    """Kill the journal's own backend once, right before or after a statement starting `prefix`."""
    killed: list[int] = []
    name = "before_cursor_execute" if before else "after_cursor_execute"

    def hook(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().startswith(prefix) and not killed:
            killed.append(cursor.connection.info.backend_pid)
            _terminate(dsn, killed[0])

    event.listen(journal.engine, name, hook)
    return killed


# -- PostgreSQL: a killed connection is retried on a fresh one --------------------------------------


@pytest.mark.network
def test_killed_between_two_statements_the_write_is_retried(
    fresh_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = plain_dsn(fresh_pg_url)
    with Journal(fresh_pg_url) as journal:
        run_id = journal.start_run("live", name="kill")
        journal.record_order(_order(run_id))
        killed = _kill_once_after(journal, dsn, "UPDATE orders")  # then INSERT order_events fails
        with caplog.at_level(logging.WARNING, logger="reinforcetrade.storage"):
            updated = journal.update_order("o-1", "submitted", exchange_order_id="X1")
        assert killed
        assert updated.status == "submitted"
        assert "retrying" in caplog.text
        events = journal.order_events("o-1")
        assert [(e.from_status, e.to_status) for e in events] == [
            (None, "pending"),
            ("pending", "submitted"),
        ]


@pytest.mark.network
def test_killed_during_a_bulk_save_nothing_is_doubled(
    fresh_pg_url: str, backtest_result: BacktestResult, caplog: pytest.LogCaptureFixture
) -> None:
    dsn = plain_dsn(fresh_pg_url)
    with Journal(fresh_pg_url) as journal:
        # between the decisions' COPY and the agents' COPY: the COPY finds its connection dead
        killed = _kill_once_after(journal, dsn, "SELECT decisions.number")
        with caplog.at_level(logging.WARNING, logger="reinforcetrade.storage"):
            run_id = journal.save_backtest(
                result_frames(backtest_result), **save_kwargs(backtest_result)
            )
        assert killed
        assert "retrying" in caplog.text
        assert journal.read_table("runs")["id"].tolist() == [run_id]
        assert len(journal.read_table("decisions")) == len(backtest_result.decisions)
        assert len(journal.read_table("fills")) == len(backtest_result.fills)


@pytest.mark.network
def test_a_thread_killing_connections_loses_and_doubles_nothing(fresh_pg_url: str) -> None:
    dsn = plain_dsn(fresh_pg_url)
    application = make_url(fresh_pg_url).query["application_name"]
    stop = threading.Event()
    kills: list[int] = []

    def killer() -> None:
        with psycopg.connect(dsn, autocommit=True) as admin:
            while not stop.wait(0.1):
                rows = admin.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE application_name = %s AND pid <> pg_backend_pid()",
                    (application,),
                ).fetchall()
                kills.extend(1 for _ in rows)

    retry = RetryPolicy(attempts=10, first_delay=0.01, max_delay=0.1)
    with Journal(fresh_pg_url, retry=retry) as journal:
        run_id = journal.start_run("live", name="killer")
        thread = threading.Thread(target=killer)
        thread.start()
        try:
            deadline = time.monotonic() + 0.6
            written = 0
            while time.monotonic() < deadline or written < 20:
                assert journal.record_fill(_fill(run_id, f"t-{written}"))
                written += 1
            for again in range(written):  # every retry-safe key is still unique
                assert not journal.record_fill(_fill(run_id, f"t-{again}"))
        finally:
            stop.set()
            thread.join()
        fills = journal.read_table("fills")
        assert kills
        assert len(fills) == written
        assert sorted(fills["exchange_trade_id"]) == sorted(f"t-{i}" for i in range(written))


# -- SQLite: a locked file is waited for, within a bound ------------------------------------------


def _hold_write_lock(path: Path) -> sqlite3.Connection:
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN EXCLUSIVE")
    return holder


def test_sqlite_waits_for_a_write_lock_to_go(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "j.db"
    retry = RetryPolicy(attempts=20, first_delay=0.05, max_delay=0.1)
    with Journal(f"sqlite:///{path}", busy_timeout=0.05, retry=retry) as journal:
        run_id = journal.start_run("paper", name="locked")
        holder = _hold_write_lock(path)
        threading.Timer(0.5, holder.rollback).start()
        started = time.monotonic()
        with caplog.at_level(logging.WARNING, logger="reinforcetrade.storage"):
            assert journal.record_fill(_fill(run_id, "t-1"))
        assert time.monotonic() - started >= 0.45
        assert "database is locked" in caplog.text
        holder.close()
        assert len(journal.read_table("fills")) == 1


def test_sqlite_gives_up_on_a_lock_held_too_long(tmp_path: Path) -> None:
    path = tmp_path / "j.db"
    retry = RetryPolicy(attempts=3, first_delay=0.02)
    with Journal(f"sqlite:///{path}", busy_timeout=0.05, retry=retry) as journal:
        run_id = journal.start_run("paper", name="locked")
        holder = _hold_write_lock(path)
        try:
            started = time.monotonic()
            with pytest.raises(JournalError) as caught:
                journal.record_fill(_fill(run_id, "t-1"))
            assert time.monotonic() - started < 2.0
        finally:
            holder.rollback()
            holder.close()
        message = str(caught.value)
        assert isinstance(caught.value, ReinforceTradeError)
        assert str(path) in message
        assert "locked" in message
        assert "3 tries" in message
        assert "another process holds a write lock" in message
        assert journal.record_fill(_fill(run_id, "t-1"))  # nothing half-written, and it works now


# -- the password never leaks ---------------------------------------------------------------------


def _texts(exc: BaseException) -> list[str]:
    return [str(exc), repr(exc), *traceback.format_exception(exc)]


@pytest.mark.network
def test_the_password_never_leaks(fresh_pg_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.engine")
    caplog.set_level(logging.DEBUG, logger="sqlalchemy.pool")
    secret = SecretStr(CANARY)
    seen: list[str] = []
    journal = Journal(fresh_pg_url, password=secret).open()  # trust auth: any password works
    try:
        seen += [repr(journal), journal.name, str(journal.engine.url), repr(journal.engine)]
        run_id = journal.start_run(
            "live",
            name="canary",
            settings={"storage": {"password": CANARY}},  # left unmasked
        )
        journal.record_order(_order(run_id))
        journal.update_order("o-1", "filled", filled_qty=1.0)
        failures: list[Callable[[], object]] = [
            lambda: journal.update_order("o-1", "cancelled"),
            lambda: journal.record_fill({"exchange": "x"}),
            lambda: journal.end_run(10**9),
        ]
        with journal.acquire_engine_lock("canary", owner="test"):
            failures.append(lambda: journal.acquire_engine_lock("canary", owner="second"))
            for fail in failures:
                with pytest.raises(
                    (JournalError, IllegalTransitionError, EngineLockedError)
                ) as caught:
                    fail()
                seen += _texts(caught.value)
        for table in metadata.tables:
            seen.append(journal.read_table(table).to_csv())
    finally:
        journal.close()
    missing_db = make_url(fresh_pg_url).set(database="rt_no_such_database")
    refused = "postgresql+psycopg://postgres:canary-7f3a@127.0.0.1:1/test"
    for url, password in [
        (missing_db.render_as_string(hide_password=False), secret),
        (refused, None),
        ("postgresql+psycopg://postgres:canary-7f3a@127.0.0.1:1/test", secret),
        (f"not a url {CANARY}", None),
        ("postgresql+psycopg://postgres:canary-7f3a@127.0.0.1:notaport/x", None),
    ]:
        with pytest.raises(JournalError) as caught:
            Journal(url, password=password, retry=RetryPolicy(attempts=2, first_delay=0.01)).open()
        seen += _texts(caught.value)
    assert any("rt_no_such_database" in text for text in seen)  # the errors are informative
    assert CANARY not in "\n".join(seen)
    assert CANARY not in caplog.text
    assert all(CANARY not in record.getMessage() for record in caplog.records)
    assert "***" in caplog.text or "***" in "\n".join(seen)
