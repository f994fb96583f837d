"""The engine lock: a second engine on the same journal and name refuses to start."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from sqlalchemy import insert, select

from reinforcetrade.core.clock import FixedClock
from reinforcetrade.storage import EngineLockedError, Journal, schema
from storage.conftest import plain_dsn

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_a_second_engine_is_refused(journal: Journal) -> None:
    with journal.acquire_engine_lock("paper-btc", owner="first") as lock:
        assert lock.held
        lock.ensure()
        with pytest.raises(EngineLockedError) as caught:
            journal.acquire_engine_lock("paper-btc", owner="second")
        message = str(caught.value)
        assert (
            f"another engine (pid {os.getpid()}, host {socket.gethostname()}, since 2026-01-01 00:00:00 UTC"
            in message
        )
        assert "owner 'first'" in message
        assert "is running on this journal" in message
        assert journal.name in message
        with journal.acquire_engine_lock("paper-eth", owner="other"):  # another name is free
            pass
        holder = lock.holder()
        assert holder is not None
        assert (holder.owner, holder.token) == ("first", lock.token)
    assert not lock.held
    with journal.acquire_engine_lock("paper-btc", owner="second") as again:
        assert again.held
    assert again.holder() is None  # released locks leave no row


def test_two_journal_objects_on_one_database_exclude_each_other(journal_url: str) -> None:
    with Journal(journal_url) as first, Journal(journal_url) as second:
        with first.acquire_engine_lock("live", owner="a"), pytest.raises(EngineLockedError):
            second.acquire_engine_lock("live", owner="b")
        with second.acquire_engine_lock("live", owner="b"):
            pass


def test_the_heartbeat_moves_and_a_takeover_is_noticed(journal: Journal, clock: FixedClock) -> None:
    lock = journal.acquire_engine_lock("beat", owner="me", heartbeat_every=0)
    clock.advance(5 * 10**9)
    lock.heartbeat()
    holder = lock.holder()
    assert holder is not None
    assert holder.heartbeat_at == NOW + timedelta(seconds=5)
    assert holder.acquired_at == NOW
    with journal.engine.begin() as connection:  # someone else's row replaces ours
        connection.execute(schema.engine_locks.update().values(token="x" * 32))
    with pytest.raises(EngineLockedError, match="no longer held"):
        lock.heartbeat()
    assert lock.lost
    assert not lock.held
    lock.release()


def test_the_heartbeat_thread_runs(journal: Journal, clock: FixedClock) -> None:
    with journal.acquire_engine_lock("thread", owner="me", heartbeat_every=0.02) as lock:
        clock.advance(7 * 10**9)
        deadline = time.monotonic() + 5
        while (
            (h := lock.holder()) is not None
            and h.heartbeat_at == NOW
            and time.monotonic() < deadline
        ):
            time.sleep(0.02)
        assert h is not None
        assert h.heartbeat_at == NOW + timedelta(seconds=7)


def _row(journal: Journal, host: str, pid: int, heartbeat: datetime) -> None:
    with journal.engine.begin() as connection:
        connection.execute(
            insert(schema.engine_locks).values(
                name="shared",
                token="t" * 32,
                owner="elsewhere",
                host=host,
                pid=pid,
                acquired_at=heartbeat,
                heartbeat_at=heartbeat,
            )
        )


def test_sqlite_rows_from_other_hosts_count_until_stale(tmp_path: Path, clock: FixedClock) -> None:
    with Journal(f"sqlite:///{tmp_path / 'j.db'}", clock=clock) as journal:
        _row(journal, "other-host", 4242, NOW - timedelta(seconds=10))
        with pytest.raises(EngineLockedError, match="pid 4242, host other-host"):
            journal.acquire_engine_lock("shared", owner="me", stale_after=30)
        clock.advance(21 * 10**9)  # its heartbeat is now 31 s old
        with journal.acquire_engine_lock("shared", owner="me", stale_after=30) as lock:
            holder = lock.holder()
            assert holder is not None
            assert holder.host == socket.gethostname()


def test_in_memory_sqlite_rows_count_while_their_process_lives(clock: FixedClock) -> None:
    with Journal("sqlite://", clock=clock) as journal:
        _row(journal, socket.gethostname(), os.getpid(), NOW)
        with pytest.raises(EngineLockedError):
            journal.acquire_engine_lock("shared", owner="me")
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        with journal.engine.begin() as connection:
            connection.execute(schema.engine_locks.update().values(pid=dead.pid))
        with journal.acquire_engine_lock("shared", owner="me"):
            pass


HOLDER = textwrap.dedent(
    """
    import sys, time
    from reinforcetrade.storage import Journal
    journal = Journal(sys.argv[1]).open()
    lock = journal.acquire_engine_lock("crash", owner="doomed", heartbeat_every=0)
    print("held", flush=True)
    time.sleep(60)
    """
)


def _start_holder(url: str) -> subprocess.Popen[str]:
    process = subprocess.Popen(  # noqa: S603 - our interpreter, our script
        [sys.executable, "-c", HOLDER, url], stdout=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "held"
    return process


def test_a_crashed_engines_lock_is_taken_over(journal_url: str) -> None:
    holder = _start_holder(journal_url)
    try:
        with Journal(journal_url) as journal:
            with pytest.raises(EngineLockedError, match=f"pid {holder.pid}"):
                journal.acquire_engine_lock("crash", owner="successor")
            holder.send_signal(signal.SIGKILL)  # no clean-up: the row stays behind
            holder.wait()
            deadline = time.monotonic() + 10
            while True:  # PostgreSQL ends the dead client's session within moments
                try:
                    lock = journal.acquire_engine_lock("crash", owner="successor")
                    break
                except EngineLockedError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.05)
            with lock:
                found = lock.holder()
                assert found is not None
                assert (found.owner, found.pid) == ("successor", os.getpid())
    finally:
        holder.kill()
        holder.wait()
        if holder.stdout is not None:
            holder.stdout.close()


@pytest.mark.network
def test_postgres_lock_session_killed_is_retaken_or_reported_lost(fresh_pg_url: str) -> None:
    dsn = plain_dsn(fresh_pg_url)
    with Journal(fresh_pg_url) as journal, Journal(fresh_pg_url) as rival:
        lock = journal.acquire_engine_lock("pg", owner="me", heartbeat_every=0)
        assert lock._session is not None
        pid = lock._session.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        lock.heartbeat()  # the session died with nobody waiting: the lock is taken again
        assert lock.held
        pid = lock._session.connection.dbapi_connection.info.backend_pid  # type: ignore[union-attr]
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (pid,))
        time.sleep(0.2)
        taken = rival.acquire_engine_lock("pg", owner="rival", heartbeat_every=0)
        with pytest.raises(EngineLockedError, match="no longer held"):
            lock.heartbeat()
        assert lock.lost
        lock.release()
        with rival.engine.connect() as connection:  # the loser's release left the winner's row
            owners = connection.execute(select(schema.engine_locks.c.owner)).scalars().all()
        assert owners == ["rival"]
        taken.release()
