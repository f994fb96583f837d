"""`alembic upgrade head` on an empty database builds exactly the schema's MetaData."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, create_engine, inspect

from reinforcetrade.storage import Journal, metadata
from reinforcetrade.storage.migrate import (
    MIGRATIONS,
    alembic_config,
    current_revision,
    head_revision,
)

VERSION_TABLE = "alembic_version"


def _shape(connection: Connection) -> dict[str, Any]:
    """Return every table's columns, indexes and unique constraints as the database reports them."""
    inspector = inspect(connection)
    shape: dict[str, Any] = {}
    for table in sorted(set(inspector.get_table_names()) - {VERSION_TABLE}):
        shape[table] = {
            "columns": {c["name"]: c["nullable"] for c in inspector.get_columns(table)},
            "indexes": {
                i["name"]: (tuple(i["column_names"]), bool(i["unique"]))
                for i in inspector.get_indexes(table)
                if not i.get("duplicates_constraint")  # PostgreSQL's unique-constraint indexes
            },
            "unique": {
                u["name"]: tuple(u["column_names"]) for u in inspector.get_unique_constraints(table)
            },
        }
    return shape


def _expected() -> dict[str, Any]:
    """Return the same shape as `_shape`, read from the MetaData."""
    from sqlalchemy import UniqueConstraint

    shape: dict[str, Any] = {}
    for name, table in sorted(metadata.tables.items()):
        shape[name] = {
            "columns": {c.name: c.nullable for c in table.columns},
            "indexes": {
                str(i.name): (tuple(c.name for c in i.columns), bool(i.unique))
                for i in table.indexes
            },
            "unique": {
                str(u.name): tuple(c.name for c in u.columns)
                for u in table.constraints
                if isinstance(u, UniqueConstraint)
            },
        }
    return shape


def _check_matches(url: str) -> None:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            assert current_revision(connection) == head_revision()
            assert _shape(connection) == _expected()
            differences = compare_metadata(MigrationContext.configure(connection), metadata)
            assert differences == []
    finally:
        engine.dispose()


def test_upgrade_head_builds_exactly_the_metadata(journal_url: str) -> None:
    engine = create_engine(journal_url)
    try:
        with engine.begin() as connection:
            assert current_revision(connection) is None
            command.upgrade(alembic_config(connection), "head")
    finally:
        engine.dispose()
    _check_matches(journal_url)


def test_journal_open_migrates_once(journal_url: str) -> None:
    with Journal(journal_url) as first, Journal(journal_url) as second:
        assert first.start_run("live", name="a") != second.start_run("live", name="b")
    _check_matches(journal_url)


def test_downgrade_removes_every_table(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'j.db'}"
    Journal(url).open().close()
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            command.downgrade(alembic_config(connection), "base")
        with engine.connect() as connection:
            assert set(inspect(connection).get_table_names()) == {VERSION_TABLE}
    finally:
        engine.dispose()


def test_the_alembic_command_line_upgrades_head(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    alembic = Path(sys.executable).with_name("alembic")
    ini = MIGRATIONS / "alembic.ini"
    done = subprocess.run(  # noqa: S603 - our own venv's alembic, fixed arguments
        [str(alembic), "-c", str(ini), "-x", f"url={url}", "upgrade", "head"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Running upgrade  -> 0001" in done.stderr
    _check_matches(url)
