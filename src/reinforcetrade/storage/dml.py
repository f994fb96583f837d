"""INSERT … ON CONFLICT statements that read the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import ColumnElement, Table
from sqlalchemy.dialects import postgresql, sqlite

Insert = postgresql.Insert | sqlite.Insert


def insert(dialect: str, table: Table) -> Insert:
    """Return the dialect's INSERT construct for `table` (it knows ON CONFLICT)."""
    if dialect == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_ignoring(dialect: str, table: Table, keys: Sequence[str]) -> Insert:
    """Return INSERT … ON CONFLICT (`keys`) DO NOTHING: a repeated row is skipped, not an error.

    Its result's ``rowcount`` is 1 for a new row, 0 for a skipped one, on both dialects.
    """
    statement = insert(dialect, table).on_conflict_do_nothing(index_elements=list(keys))
    return statement.execution_options(preserve_rowcount=True)


def upsert(
    dialect: str,
    table: Table,
    keys: Sequence[str],
    update: Sequence[str],
    *,
    where: ColumnElement[bool] | None = None,
) -> Insert:
    """Return INSERT … ON CONFLICT (`keys` [WHERE `where`]) DO UPDATE SET each `update` column."""
    statement = insert(dialect, table)
    return statement.on_conflict_do_update(
        index_elements=list(keys),
        index_where=where,
        set_={name: statement.excluded[name] for name in update},
    )
