"""The SQL files in ``sql/``: the generated PostgreSQL DDL, stored procedures and named queries.

``sql/init.sql`` holds the schema generated from `schema.metadata` between two marker lines
(regenerate with ``python -m reinforcetrade.storage.analysis ddl --write``) and hand-written
PL/pgSQL functions below them. ``sql/analysis_queries.sql`` (PostgreSQL) and
``sql/analysis_queries.sqlite.sql`` hold the same ``-- name: …`` queries, bound by ``:run_id``.
"""

from __future__ import annotations

import re
import sys
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Protocol

import pandas as pd
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from reinforcetrade.storage.errors import JournalError
from reinforcetrade.storage.schema import metadata
from reinforcetrade.storage.types import utc

#: the repository's ``sql/`` folder
SQL_DIR: Final[Path] = Path(__file__).resolve().parents[3] / "sql"
INIT_SQL: Final[Path] = SQL_DIR / "init.sql"
BEGIN_MARK: Final[str] = "-- BEGIN GENERATED SCHEMA (python -m reinforcetrade.storage.analysis ddl)"
END_MARK: Final[str] = "-- END GENERATED SCHEMA"
_NAME: Final[re.Pattern[str]] = re.compile(r"^-- name: ([a-z][a-z0-9_]*)\s*$", re.MULTILINE)


class _Journal(Protocol):
    """What the runner needs of a `Journal`: its engine and dialect."""

    @property
    def engine(self) -> Engine:
        """The journal's SQLAlchemy engine."""
        ...

    @property
    def dialect(self) -> str:
        """The journal's dialect name."""
        ...


def postgres_ddl() -> str:
    """Return CREATE TABLE and CREATE INDEX statements for `schema.metadata` on PostgreSQL."""
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    parts: list[str] = []
    for table in metadata.sorted_tables:
        parts.append(_tidy(str(CreateTable(table).compile(dialect=dialect))))
        for index in sorted(table.indexes, key=lambda i: str(i.name)):
            parts.append(_tidy(str(CreateIndex(index).compile(dialect=dialect))))
    return "\n\n".join(parts) + "\n"


def _tidy(statement: str) -> str:
    """Return a compiled statement with tabs as four spaces, no trailing blanks, and a ';'."""
    lines = [line.replace("\t", "    ").rstrip() for line in statement.strip().splitlines()]
    return "\n".join(lines) + ";"


def _split_init(content: str) -> tuple[str, str, str]:
    """Return init.sql's text before, inside and after the generated section."""
    try:
        head, rest = content.split(BEGIN_MARK + "\n", 1)
        generated, tail = rest.split(END_MARK + "\n", 1)
    except ValueError:
        raise JournalError(f"{INIT_SQL}: the generated-schema markers are missing") from None
    return head, generated, tail


def generated_section(path: Path = INIT_SQL) -> str:
    """Return the generated schema section of init.sql as the file has it."""
    return _split_init(path.read_text(encoding="utf-8"))[1]


def procedures_sql(path: Path = INIT_SQL) -> str:
    """Return the hand-written part of init.sql (the stored functions after the schema)."""
    return _split_init(path.read_text(encoding="utf-8"))[2]


def write_ddl(path: Path = INIT_SQL) -> None:
    """Replace the generated section of init.sql with the DDL `postgres_ddl` produces now."""
    head, _, tail = _split_init(path.read_text(encoding="utf-8"))
    path.write_text(f"{head}{BEGIN_MARK}\n{postgres_ddl()}{END_MARK}\n{tail}", encoding="utf-8")


def load_queries(path: Path) -> dict[str, str]:
    """Return a query file's ``-- name: <name>`` queries as {name: sql}, in file order."""
    content = path.read_text(encoding="utf-8")
    matches = list(_NAME.finditer(content))
    queries: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None], strict=True):
        end = following.start() if following is not None else len(content)
        body = content[match.end() : end].strip().rstrip(";").strip()
        if match.group(1) in queries:
            raise JournalError(f"{path}: query {match.group(1)!r} is defined twice")
        queries[match.group(1)] = body
    return queries


def query_file(dialect: str) -> Path:
    """Return the query file for a dialect (``postgresql`` or ``sqlite``)."""
    if dialect == "postgresql":
        return SQL_DIR / "analysis_queries.sql"
    if dialect == "sqlite":
        return SQL_DIR / "analysis_queries.sqlite.sql"
    raise JournalError(f"no analysis queries for dialect {dialect!r}")


def run_query(journal: _Journal, name: str, **params: Any) -> pd.DataFrame:
    """Run the named analysis query on the journal's database and return its rows."""
    queries = load_queries(query_file(journal.dialect))
    if name not in queries:
        raise JournalError(f"no analysis query {name!r} (known: {', '.join(sorted(queries))})")
    if journal.dialect == "sqlite":  # SQLite compares times as the text the journal stores
        params = {k: _sqlite_time(v) for k, v in params.items()}
    with journal.engine.connect() as connection:
        result = connection.execute(text(queries[name]), params)
        return pd.DataFrame(result.fetchall(), columns=list(result.keys()))


def _sqlite_time(value: Any) -> Any:
    """Return a time as SQLite journal text ('YYYY-MM-DD HH:MM:SS.ffffff' UTC), others as given."""
    if isinstance(value, datetime | pd.Timestamp):
        return utc(value).strftime("%Y-%m-%d %H:%M:%S.%f")
    return value


def install_procedures(journal: _Journal) -> None:
    """Create (or replace) init.sql's stored functions on a PostgreSQL journal."""
    if journal.dialect != "postgresql":
        raise JournalError("stored procedures need PostgreSQL; SQLite has them as queries")
    execute_script(journal.engine, procedures_sql())


def execute_script(engine: Engine, script: str) -> None:
    """Run a multi-statement SQL script in one transaction through the driver (psql-style)."""
    with engine.begin() as connection:
        driver: Any = connection.connection.driver_connection
        driver.execute(script)  # psycopg: several statements are fine without parameters


def main(argv: list[str]) -> int:
    """Print the generated DDL (``ddl``) or rewrite init.sql's section (``ddl --write``)."""
    if not argv or argv[0] != "ddl":
        print("usage: python -m reinforcetrade.storage.analysis ddl [--write]", file=sys.stderr)
        return 2
    if "--write" in argv[1:]:
        write_ddl()
    else:
        sys.stdout.write(postgres_ddl())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
