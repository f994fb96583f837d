"""The journal's foundation: its database, clock and life cycle, transactions, and runs."""

from __future__ import annotations

import json
import logging
import os
import socket
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Self, TypeVar

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, Executable, Table, select, update

from reinforcetrade.config import Settings, StorageConfig
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.storage import schema
from reinforcetrade.storage.database import Database, RetryPolicy
from reinforcetrade.storage.dml import insert_ignoring
from reinforcetrade.storage.errors import JournalError
from reinforcetrade.storage.migrate import upgrade
from reinforcetrade.storage.rows import RunRow, from_row
from reinforcetrade.storage.types import plain, utc
from reinforcetrade.storage.vocabulary import RUN_KINDS, RUN_STATUSES

T = TypeVar("T")
DEFAULT_URL: Final[str] = "sqlite:///reinforcetrade.db"
log = logging.getLogger("reinforcetrade.storage")


def one_of(what: str, value: object, words: Sequence[str]) -> None:
    """Raise `JournalError` unless `value` is one of `words`."""
    if value not in words:
        raise JournalError(f"{what} {value!r} is not one of {', '.join(words)}")


class JournalBase:
    """A journal database's life cycle, its retried transactions, and its runs."""

    def __init__(
        self,
        url: str | None = None,
        *,
        password: SecretStr | None = None,
        clock: Clock | None = None,
        busy_timeout: float = 5.0,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._db = Database(
            url or DEFAULT_URL,
            password=password,
            busy_timeout=busy_timeout,
            retry=retry or RetryPolicy(),
        )
        self.clock: Clock = clock or WallClock()
        self._open = False

    @classmethod
    def from_settings(
        cls, settings: Settings | StorageConfig, *, clock: Clock | None = None
    ) -> Self:
        """Return a journal on the database the settings' ``storage`` section names."""
        storage = settings.storage if isinstance(settings, Settings) else settings
        return cls(storage.url, password=storage.password, clock=clock)

    # -- life cycle ---------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """Return the database's URL with the password masked (safe to log)."""
        return self._db.name

    @property
    def engine(self) -> Engine:
        """Return the SQLAlchemy engine, for analysis queries (reads)."""
        return self._db.engine

    @property
    def dialect(self) -> str:
        """Return ``sqlite`` or ``postgresql``."""
        return self._db.dialect

    def open(self) -> Self:
        """Upgrade the schema to the newest revision (idempotent); return the journal."""
        if not self._open:
            if self._db.sqlite_path is not None:  # SQLite makes the file, not its folder
                self._db.sqlite_path.parent.mkdir(parents=True, exist_ok=True)
            revision = upgrade(self._db)
            self._open = True
            log.info("journal %s open at schema revision %s", self.name, revision)
        return self

    def close(self) -> None:
        """Close every connection; the journal can be opened again."""
        self._db.dispose()
        self._open = False

    def __enter__(self) -> Self:
        return self.open()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({self.name!r})"

    def _write(self, what: str, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` in a retried write transaction."""
        self._require_open()
        return self._db.write(what, work)

    def _read(self, what: str, work: Callable[[Connection], T]) -> T:
        """Run `work(connection)` in a read transaction."""
        self._require_open()
        return self._db.read(what, work)

    def _require_open(self) -> None:
        """Raise `JournalError` unless `open` was called."""
        if not self._open:
            raise JournalError(
                f"journal {self.name} is not open: call Journal.open() "
                "(or use `with Journal(...) as journal:`)"
            )

    def _now(self, value: object = None) -> datetime:
        """Return `value` as a UTC time, or the clock's now."""
        return utc(self.clock.now_ns() if value is None else value)

    # -- runs ---------------------------------------------------------------------------------

    def start_run(
        self,
        kind: str,
        *,
        name: str,
        config_hash: str | None = None,
        settings: Mapping[str, Any] | None = None,
        symbols: Sequence[str] = (),
        timeframe: str | None = None,
        version: str | None = None,
        status: str = "running",
    ) -> int:
        """Record a run starting (settings already masked by the caller); return its id."""
        one_of("run kind", kind, RUN_KINDS)
        one_of("run status", status, RUN_STATUSES)
        values = self._run_values(kind, name, config_hash, settings, symbols, timeframe, version)
        values["status"] = status
        return self._write(f"start run {name!r}", lambda c: self._insert_run(c, values))

    def _run_values(
        self,
        kind: str,
        name: str,
        config_hash: str | None,
        settings: Mapping[str, Any] | None,
        symbols: Sequence[str],
        timeframe: str | None,
        version: str | None,
    ) -> dict[str, Any]:
        """Return a runs row (the journal's own password masked in the settings, if present)."""
        text = self._db.scrub(json.dumps(plain(settings or {}), sort_keys=True))
        return {
            "uid": uuid.uuid4().hex,
            "kind": kind,
            "name": name,
            "started_at": self._now(),
            "ended_at": None,
            "status": "running",
            "config_hash": config_hash,
            "settings": json.loads(text),
            "symbols": list(symbols),
            "timeframe": timeframe,
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "version": version,
        }

    def _insert_run(self, connection: Connection, values: Mapping[str, Any]) -> int:
        """Insert a run once per uid (a retried insert finds the first); return its id."""
        statement = insert_ignoring(self.dialect, schema.runs, ["uid"]).returning(schema.runs.c.id)
        new = connection.execute(statement, dict(values)).scalar_one_or_none()
        if new is not None:
            return int(new)
        found = select(schema.runs.c.id).where(schema.runs.c.uid == values["uid"])
        return int(connection.execute(found).scalar_one())

    def end_run(self, run_id: int, status: str = "completed") -> None:
        """Record a run ending with `status` (completed, stopped or failed)."""
        one_of("final run status", status, [s for s in RUN_STATUSES if s != "running"])
        ended = self._now()

        def work(connection: Connection) -> None:
            result = connection.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id)
                .values(status=status, ended_at=ended)
            )
            if result.rowcount == 0:
                raise JournalError(f"journal {self.name}: no run {run_id}")

        self._write(f"end run {run_id}", work)

    def reopen_run(self, run_id: int) -> None:
        """Mark an ended run running again (a live session restarting where it left off)."""

        def work(connection: Connection) -> None:
            result = connection.execute(
                update(schema.runs)
                .where(schema.runs.c.id == run_id)
                .values(status="running", ended_at=None)
            )
            if result.rowcount == 0:
                raise JournalError(f"journal {self.name}: no run {run_id}")

        self._write(f"reopen run {run_id}", work)

    def run(self, run_id: int) -> RunRow | None:
        """Return a run's record, or None."""
        statement = select(schema.runs).where(schema.runs.c.id == run_id)
        row = self._read("read run", lambda c: c.execute(statement).mappings().first())
        return None if row is None else from_row(RunRow, row)

    def fetch(self, statement: Executable) -> list[dict[str, Any]]:
        """Return the rows of a SELECT on the journal's tables as dicts (for views and APIs)."""
        return self._read(
            "query", lambda c: [dict(row) for row in c.execute(statement).mappings().all()]
        )

    def _insert_once(
        self, table: Table, keys: Sequence[str], values: Mapping[str, Any], what: str
    ) -> bool:
        """Insert a row unless its key exists; return whether it was new."""
        statement = insert_ignoring(self.dialect, table, keys)
        return self._write(what, lambda c: c.execute(statement, dict(values)).rowcount == 1)

    def _insert_keyed(self, table: Table, values: Mapping[str, Any], what: str) -> int:
        """Insert a row carrying a fresh `uid` once (a retry finds the first); return its id."""
        statement = insert_ignoring(self.dialect, table, ["uid"]).returning(table.c.id)

        def work(connection: Connection) -> int:
            new = connection.execute(statement, dict(values)).scalar_one_or_none()
            if new is not None:
                return int(new)
            found = select(table.c.id).where(table.c.uid == values["uid"])
            return int(connection.execute(found).scalar_one())

        return self._write(what, work)
