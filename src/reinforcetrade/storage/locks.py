"""The engine lock: one trading engine per journal and name, and how a dead one's lock is freed.

The rule, per dialect:

* **PostgreSQL** — a session-level advisory lock (key: database, schema and name) held on a
  dedicated connection for the engine's life. The server releases it when that session ends, so
  a crashed engine (process gone, host gone — TCP keepalives notice within about 30 s) never
  blocks its successor; a live but hung engine keeps it until it is stopped.
* **SQLite** — an exclusive ``flock`` on ``<database>.engine-<name>.lock`` next to the file. The
  kernel releases it when the process dies, so on one host a crashed engine's lock is taken over
  at once. For a database shared between hosts (where ``flock`` cannot be trusted) the
  ``engine_locks`` row decides: a row from another host is honoured while its heartbeat is
  younger than ``stale_after`` seconds, and taken over after that. An in-memory database has no
  file: a row from this host is honoured while its process is alive.

On both, the ``engine_locks`` row names the holder (owner, pid, host, since) for the refusal
message, and a heartbeat thread refreshes it every ``stale_after / 3`` seconds. If the lock is
lost (its PostgreSQL session killed and the lock taken by another engine, or the row taken
over), `EngineLock.lost` turns True and `EngineLock.ensure` raises: check it before trading.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import logging
import os
import re
import socket
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import IO

from sqlalchemy import Connection, delete, func, select, text, update
from sqlalchemy.exc import SQLAlchemyError

from reinforcetrade.core.clock import Clock
from reinforcetrade.storage.database import Database
from reinforcetrade.storage.dml import upsert
from reinforcetrade.storage.errors import EngineLockedError, JournalError
from reinforcetrade.storage.schema import engine_locks
from reinforcetrade.storage.types import utc

log = logging.getLogger("reinforcetrade.storage")


@dataclass(frozen=True, slots=True)
class LockHolder:
    """Who holds (or last held) an engine lock."""

    name: str
    token: str
    owner: str
    host: str
    pid: int
    acquired_at: datetime
    heartbeat_at: datetime

    def describe(self) -> str:
        """Return the holder in words, for refusal messages."""
        since = self.acquired_at.strftime("%Y-%m-%d %H:%M:%S UTC")
        return f"pid {self.pid}, host {self.host}, since {since}, owner {self.owner!r}"


def _alive(pid: int) -> bool:
    """Return whether a process with this id runs on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _slug(name: str) -> str:
    """Return a file-name-safe, collision-free form of a lock name.

    >>> _slug("paper btc/usdt")
    'paper_btc_usdt-db1c22ba'
    """
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{re.sub(r'[^A-Za-z0-9_.-]', '_', name)[:64]}-{digest}"


class EngineLock:
    """A held engine lock; release it with `release` or by leaving its ``with`` block."""

    def __init__(
        self,
        database: Database,
        name: str,
        *,
        owner: str,
        clock: Clock,
        stale_after: float = 30.0,
        heartbeat_every: float | None = None,
    ) -> None:
        self.database = database
        self.name = name
        self.owner = owner
        self.clock = clock
        self.stale_after = stale_after
        self.heartbeat_every = stale_after / 3 if heartbeat_every is None else heartbeat_every
        self.token = uuid.uuid4().hex
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.lost = False
        self._held = False
        self._file: IO[bytes] | None = None
        self._session: Connection | None = None
        self._key = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- acquiring ----------------------------------------------------------------------------

    def acquire(self) -> EngineLock:
        """Take the lock or raise `EngineLockedError` naming its holder; return self."""
        if self.database.dialect == "postgresql":
            self._take_advisory_lock()
        elif self.database.sqlite_path is not None:
            self._take_file_lock(self.database.sqlite_path)
        try:
            self.database.write(f"acquire engine lock {self.name!r}", self._claim_row)
        except BaseException:
            self._let_go()
            raise
        self._held = True
        log.info(
            "journal %s: engine lock %r taken by %s", self.database.name, self.name, self.owner
        )
        if self.heartbeat_every > 0:
            self._thread = threading.Thread(
                target=self._beat, name=f"journal-lock-{self.name}", daemon=True
            )
            self._thread.start()
        return self

    def _take_file_lock(self, database: Path) -> None:
        """Take the OS lock on the database's lock file, or refuse."""
        path = database.with_name(f"{database.name}.engine-{_slug(self.name)}.lock")
        try:
            handle = path.open("a+b")
        except OSError as exc:
            raise JournalError(
                f"journal {self.database.name}: cannot open the engine lock file {path} "
                f"({exc.strerror}): the database's folder must be writable"
            ) from exc
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            raise self._refusal(self.holder()) from None
        self._file = handle

    def _take_advisory_lock(self) -> None:
        """Take PostgreSQL's advisory lock on a connection kept for the lock's life, or refuse."""
        session: Connection | None = None
        try:
            session = self.database.engine.connect()
            where = session.execute(text("SELECT current_database(), current_schema()")).one()
            self._key = _advisory_key(f"{where[0]}/{where[1]}/{self.name}")
            got = session.execute(select(func.pg_try_advisory_lock(self._key))).scalar_one()
            session.commit()
        except SQLAlchemyError as exc:
            if session is not None:
                session.invalidate()
            error = self.database.error(f"acquire engine lock {self.name!r}", exc)
            raise error from (None if self.database.leaks(exc) else exc)
        if not got:
            session.close()
            raise self._refusal(self.holder())
        self._session = session

    def _claim_row(self, connection: Connection) -> None:
        """Write our row unless a live engine's row forbids it (the OS/advisory lock is ours)."""
        row = (
            connection.execute(select(engine_locks).where(engine_locks.c.name == self.name))
            .mappings()
            .first()
        )
        if row is not None and not self._may_take_over(LockHolder(**row)):
            raise self._refusal(LockHolder(**row))
        now = utc(self.clock.now_ns())
        values = {
            "name": self.name,
            "token": self.token,
            "owner": self.owner,
            "host": self.host,
            "pid": self.pid,
            "acquired_at": now,
            "heartbeat_at": now,
        }
        connection.execute(
            upsert(
                self.database.dialect,
                engine_locks,
                ["name"],
                ["token", "owner", "host", "pid", "acquired_at", "heartbeat_at"],
            ),
            values,
        )

    def _may_take_over(self, row: LockHolder) -> bool:
        """Return whether a recorded holder is gone (see the module's rule)."""
        if self.database.dialect == "postgresql":
            return True  # we hold the advisory lock: the row's engine is gone
        if row.host != self.host:
            age = (utc(self.clock.now_ns()) - row.heartbeat_at).total_seconds()
            return age >= self.stale_after
        if self._file is not None:
            return True  # we hold the file lock: the row's process is gone
        return row.token == self.token or not _alive(row.pid)

    def _refusal(self, holder: LockHolder | None) -> EngineLockedError:
        """Return the error saying who holds the lock."""
        who = holder.describe() if holder is not None else "holder unknown"
        return EngineLockedError(
            f"another engine ({who}) is running on this journal ({self.database.name}) "
            f"as {self.name!r}: stop it first. A crashed engine's lock frees itself "
            f"(same host: at once; another host: {self.stale_after:g} s after its last heartbeat)"
        )

    def holder(self) -> LockHolder | None:
        """Return the recorded holder of this lock name, if any."""

        def work(connection: Connection) -> LockHolder | None:
            row = (
                connection.execute(select(engine_locks).where(engine_locks.c.name == self.name))
                .mappings()
                .first()
            )
            return None if row is None else LockHolder(**row)

        return self.database.read(f"read engine lock {self.name!r}", work)

    # -- holding ------------------------------------------------------------------------------

    @property
    def held(self) -> bool:
        """Return whether this lock is held and not lost."""
        return self._held and not self.lost

    def ensure(self) -> None:
        """Raise `EngineLockedError` unless the lock is still held (call before trading)."""
        if not self.held:
            raise EngineLockedError(
                f"engine lock {self.name!r} on journal {self.database.name} is no longer held "
                "by this engine: stop trading and restart"
            )

    def heartbeat(self) -> None:
        """Refresh the row's heartbeat; mark the lock lost if another engine took it."""
        if not self._held:
            return
        if self._session is not None and not self._session_alive():
            self.lost = True
        else:
            now = utc(self.clock.now_ns())

            def work(connection: Connection) -> int:
                result = connection.execute(
                    update(engine_locks)
                    .where(engine_locks.c.name == self.name, engine_locks.c.token == self.token)
                    .values(heartbeat_at=now)
                )
                return int(result.rowcount)

            if self.database.write(f"heartbeat engine lock {self.name!r}", work) == 0:
                self.lost = True
        if self.lost:
            log.error(
                "journal %s: engine lock %r was lost; the engine must stop",
                self.database.name,
                self.name,
            )
            self.ensure()

    def _session_alive(self) -> bool:
        """Return whether the advisory lock's session lives, re-taking the lock if it died."""
        assert self._session is not None  # noqa: S101 - only called with a session
        try:
            self._session.execute(text("SELECT 1")).scalar_one()
            self._session.commit()
            return True
        except Exception:  # the session died: its advisory lock went with it
            with contextlib.suppress(Exception):
                self._session.invalidate()
            self._session = None
        log.warning("journal %s: engine lock session lost, re-taking", self.database.name)
        try:
            self._take_advisory_lock()
        except JournalError:
            return False
        return True

    def _beat(self) -> None:
        """Heartbeat until released or lost (the background thread's loop)."""
        while not self._stop.wait(self.heartbeat_every):
            try:
                self.heartbeat()
            except JournalError as exc:
                log.error("journal %s: engine lock heartbeat failed: %s", self.database.name, exc)
                if self.lost:
                    return

    # -- releasing ----------------------------------------------------------------------------

    def release(self) -> None:
        """Give the lock up: stop the heartbeat, delete the row, drop the OS/advisory lock."""
        if not self._held:
            return
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        try:
            self.database.write(
                f"release engine lock {self.name!r}",
                lambda c: c.execute(
                    delete(engine_locks).where(
                        engine_locks.c.name == self.name, engine_locks.c.token == self.token
                    )
                ),
            )
        finally:
            self._held = False
            self._let_go()
            log.info("journal %s: engine lock %r released", self.database.name, self.name)

    def _let_go(self) -> None:
        """Drop the OS file lock or the advisory lock's session."""
        if self._file is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._file.fileno(), fcntl.LOCK_UN)
            self._file.close()
            self._file = None
        if self._session is not None:
            with contextlib.suppress(Exception):
                self._session.execute(select(func.pg_advisory_unlock(self._key)))
            with contextlib.suppress(Exception):
                self._session.invalidate()  # closes the session: nothing can linger
            self._session = None

    def __enter__(self) -> EngineLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _advisory_key(text_key: str) -> int:
    """Return a signed 64-bit advisory-lock key for a string.

    >>> _advisory_key("test/public/paper")
    -1864288248550094684
    """
    return int.from_bytes(hashlib.sha256(text_key.encode()).digest()[:8], "big", signed=True)
