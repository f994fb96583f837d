"""One database behind the journal: engine set-up per dialect, masked names, retried transactions.

Every journal write runs in `Database.write`: one transaction (SQLite: ``BEGIN IMMEDIATE``, so a
writer waits for the lock up front instead of failing half-way), retried on a fresh connection
when the connection died (PostgreSQL) or the file stayed locked (SQLite), with exponential
backoff and a bound; then a `JournalError` naming the database with its password masked.
Retrying is safe because every write is idempotent (keys drawn before the first attempt).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeVar
from urllib.parse import quote, quote_plus

from pydantic import SecretStr
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, OperationalError, SQLAlchemyError
from sqlalchemy.pool import StaticPool

from reinforcetrade.storage.errors import JournalError
from reinforcetrade.storage.types import plain

T = TypeVar("T")
log = logging.getLogger("reinforcetrade.storage")

MASK: Final[str] = "***"
#: PostgreSQL connection failures no retry can fix: report them at once.
_FATAL: Final[tuple[str, ...]] = (
    "does not exist",
    "password authentication failed",
    "no pg_hba.conf entry",
    "role",
    "invalid connection option",
)
_SQLITE_BUSY: Final[tuple[str, ...]] = ("database is locked", "database is busy")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently a failed transaction is tried again."""

    attempts: int = 5  # tries in all, the first included
    first_delay: float = 0.05  # seconds before the second try; doubles each time
    max_delay: float = 2.0

    def delay(self, attempt: int) -> float:
        """Return the pause after failed try number `attempt` (1-based).

        >>> [RetryPolicy().delay(n) for n in (1, 2, 3)]
        [0.05, 0.1, 0.2]
        """
        return float(min(self.max_delay, self.first_delay * 2 ** (attempt - 1)))


def _dumps(value: Any) -> str:
    """Return canonical JSON (NaN as null) for JSON columns."""
    return json.dumps(plain(value), allow_nan=False, sort_keys=True)


class Database:
    """A SQLAlchemy engine for one journal database, and the retried transactions on it."""

    def __init__(
        self,
        url: str,
        *,
        password: SecretStr | None = None,
        busy_timeout: float = 5.0,
        retry: RetryPolicy = RetryPolicy(),  # frozen: one shared default is safe
    ) -> None:
        self._secrets = tuple(s for s in (_secret_of(url), _value(password)) if s)
        try:
            parsed = make_url(url)
        except (ArgumentError, ValueError):
            scheme = url.split("://", 1)[0] if "://" in url else "?"
            raise JournalError(
                f"cannot parse the journal URL (scheme {scheme!r}; the rest is not shown, it may "
                "hold a password): expected sqlite:///path/to/file.db or "
                "postgresql+psycopg://user@host:5432/database"
            ) from None
        if password is not None and parsed.get_backend_name() != "sqlite":  # a file has none
            parsed = parsed.set(password=password.get_secret_value())
        if parsed.drivername == "postgresql":  # the driver this project installs
            parsed = parsed.set(drivername="postgresql+psycopg")
        self.url: URL = parsed
        self.dialect: str = parsed.get_backend_name()
        self.name: str = parsed.render_as_string(hide_password=True)
        self.retry = retry
        self.busy_timeout = busy_timeout
        self.sqlite_path: Path | None = None
        if self.dialect == "sqlite":
            self.engine = self._sqlite_engine(parsed, busy_timeout)
        elif self.dialect == "postgresql":
            self.engine = self._postgres_engine(parsed)
        else:
            raise JournalError(
                f"journal {self.name}: unsupported database {self.dialect!r}; "
                "use sqlite:///file.db or postgresql+psycopg://…"
            )

    # -- set-up -------------------------------------------------------------------------------

    def _sqlite_engine(self, url: URL, busy_timeout: float) -> Engine:
        """Return a SQLite engine: WAL, foreign keys on, a busy timeout, our own BEGINs."""
        database = url.database or ""
        memory = database in ("", ":memory:") or "mode=memory" in str(url)
        if memory:
            engine = create_engine(
                url,
                poolclass=StaticPool,
                connect_args={"check_same_thread": False, "timeout": busy_timeout},
                json_serializer=_dumps,
                hide_parameters=True,
            )
        else:
            self.sqlite_path = Path(database).expanduser().resolve()
            engine = create_engine(
                url.set(database=str(self.sqlite_path)),
                connect_args={"timeout": busy_timeout},
                json_serializer=_dumps,
                hide_parameters=True,
            )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_connection: Any, _record: Any) -> None:
            dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (below)
            cursor = dbapi_connection.cursor()
            if not memory:
                cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout * 1000)}")
            cursor.close()

        @event.listens_for(engine, "begin")
        def _on_begin(connection: Connection) -> None:
            write = connection.get_execution_options().get("rt_write", False)
            connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

        return engine

    def _postgres_engine(self, url: URL) -> Engine:
        """Return a PostgreSQL engine: pre-ping, timeouts, TCP keepalives, a named application."""
        connect_args: dict[str, Any] = {
            "connect_timeout": 5,
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
        }
        if "application_name" not in url.query:
            connect_args["application_name"] = "reinforcetrade-journal"
        return create_engine(
            url,
            pool_pre_ping=True,
            pool_size=5,
            max_overflow=5,
            connect_args=connect_args,
            json_serializer=_dumps,
            hide_parameters=True,
        )

    # -- masking ------------------------------------------------------------------------------

    def scrub(self, text: str) -> str:
        """Return `text` with the database password (plain or URL-encoded) masked."""
        for secret in self._secrets:
            for form in {secret, quote_plus(secret), quote(secret, safe="")}:
                text = text.replace(form, MASK)
        return text

    def leaks(self, exc: BaseException) -> bool:
        """Return whether an exception or anything it chains to shows the password."""
        seen: set[int] = set()
        current: BaseException | None = exc
        while current is not None and id(current) not in seen:
            seen.add(id(current))
            text = f"{current!s} {current!r}"
            if self.scrub(text) != text:
                return True
            current = current.__cause__ or current.__context__
        return False

    # -- transactions -------------------------------------------------------------------------

    def write(self, what: str, work: Callable[[Connection], T]) -> T:
        """Run `work` in one write transaction, retried on a lost connection or a locked file."""
        return self._run(what, work, write=True)

    def read(self, what: str, work: Callable[[Connection], T]) -> T:
        """Run `work` in one read transaction, retried like a write."""
        return self._run(what, work, write=False)

    def _run(self, what: str, work: Callable[[Connection], T], *, write: bool) -> T:
        """Try `work` up to `retry.attempts` times; raise a masked `JournalError` after."""
        started = time.monotonic()
        attempt = 0
        while True:
            attempt += 1
            try:
                with self.engine.connect() as connection:
                    if write:
                        connection.execution_options(rt_write=True)
                    with connection.begin():
                        return work(connection)
            except DBAPIError as exc:
                if not self._retryable(exc) or attempt >= self.retry.attempts:
                    raise self.error(what, exc, attempt, time.monotonic() - started) from (
                        None if self.leaks(exc) else exc
                    )
                pause = self.retry.delay(attempt)
                log.warning(
                    "journal %s: %s failed (%s; try %d of %d), retrying in %.2f s",
                    self.name,
                    what,
                    self.scrub(_first_line(exc)),
                    attempt,
                    self.retry.attempts,
                    pause,
                )
                time.sleep(pause)
            except SQLAlchemyError as exc:
                raise self.error(what, exc, attempt, time.monotonic() - started) from (
                    None if self.leaks(exc) else exc
                )

    def _retryable(self, exc: DBAPIError) -> bool:
        """Return whether a failed transaction may succeed when tried again."""
        if exc.connection_invalidated:
            return True
        message = str(exc.orig).lower()
        if self.dialect == "sqlite":
            return any(marker in message for marker in _SQLITE_BUSY)
        sqlstate = str(getattr(exc.orig, "sqlstate", "") or "")
        if sqlstate in ("40001", "40P01") or sqlstate.startswith(("08", "57P")):
            return True  # serialisation failure, deadlock, connection gone, admin shutdown
        return isinstance(exc, OperationalError) and not any(m in message for m in _FATAL)

    def error(
        self, what: str, exc: SQLAlchemyError, attempts: int = 1, waited: float = 0.0
    ) -> JournalError:
        """Return a `JournalError` for `exc`, naming the database, the password masked."""
        detail = self.scrub(_describe(exc))
        if isinstance(exc, DBAPIError) and self._retryable(exc):
            if self.dialect == "sqlite":
                hint = (
                    f"the database stayed locked for {waited:.1f} s over {attempts} tries: "
                    "another process holds a write lock on it; stop it or raise busy_timeout"
                )
            else:
                hint = (
                    f"gave up after {attempts} tries in {waited:.1f} s: check that the server "
                    "is up and reachable"
                )
            return JournalError(f"journal {self.name}: {what} failed: {detail} — {hint}")
        return JournalError(f"journal {self.name}: {what} failed: {detail}")

    def dispose(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()


def _value(secret: SecretStr | None) -> str:
    """Return a SecretStr's value ('' for None)."""
    return "" if secret is None else secret.get_secret_value()


def _secret_of(url: str) -> str:
    """Return the password written into a URL string, if any ('' when it cannot be parsed)."""
    try:
        return make_url(url).password or ""
    except (ArgumentError, ValueError):
        return ""


def _first_line(exc: BaseException) -> str:
    """Return the first line of a database error's own message."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0] if lines else ''}"


def _describe(exc: SQLAlchemyError) -> str:
    """Return a database error's type and message, with the start of the statement it ran."""
    orig = getattr(exc, "orig", None) or exc
    text = f"{type(orig).__name__}: {str(orig).strip()}"
    statement = getattr(exc, "statement", None)
    if statement:
        text += f" [SQL: {' '.join(str(statement).split())[:200]}]"
    return text
