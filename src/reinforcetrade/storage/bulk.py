"""Bulk inserts of whole columns: COPY on PostgreSQL, one executemany on SQLite.

Values are made database-ready column by column (times as UTC text, NaN as NULL), so no
per-row work happens in SQLAlchemy. The text is what `UtcDateTime` writes and reads itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from sqlalchemy import Connection, Table
from sqlalchemy.exc import DBAPIError

from reinforcetrade.storage.types import Number, UtcDateTime, utc

#: one column's values: a list, or a numpy array (times as datetime64)
Values = Sequence[Any] | npt.NDArray[Any]
#: a table's columns by name
Columns = Mapping[str, Values]


def _time_texts(values: Values, suffix: str) -> list[str | None]:
    """Return times as ``YYYY-MM-DD HH:MM:SS.ffffff`` text plus `suffix`, None for missing."""
    array = np.asarray(values)
    if array.dtype.kind != "M":  # anything else: one value at a time
        stamps = [None if v is None else utc(v) for v in values]
        return [None if t is None else f"{t:%Y-%m-%d %H:%M:%S.%f}{suffix}" for t in stamps]
    texts = np.datetime_as_string(array.astype("datetime64[us]"), unit="us").tolist()
    return [None if t == "NaT" else t.replace("T", " ") + suffix for t in texts]


def _numbers(values: Values) -> list[float | None]:
    """Return numbers as floats, None for missing (None or NaN)."""
    return [None if v is None or v != v else float(v) for v in values]


def _prepared(table: Table, name: str, values: Values, dialect: str) -> Values:
    """Return one column's values ready for the driver."""
    kind = table.c[name].type
    if isinstance(kind, UtcDateTime):
        return _time_texts(values, "+00" if dialect == "postgresql" else "")
    if isinstance(kind, Number):
        return _numbers(values)
    return values


def bulk_insert(connection: Connection, table: Table, columns: Columns) -> int:
    """Insert whole columns into `table` inside the connection's transaction; return the rows."""
    names = list(columns)
    count = len(columns[names[0]]) if names else 0
    if count == 0:
        return 0
    dialect = connection.dialect.name
    data = [_prepared(table, n, columns[n], dialect) for n in names]
    rows = list(zip(*data, strict=True))
    quote = connection.dialect.identifier_preparer.quote
    listed = ", ".join(quote(n) for n in names)
    if dialect == "postgresql":
        _copy(connection, f"COPY {quote(table.name)} ({listed}) FROM STDIN", rows)
    else:
        marks = ", ".join("?" for _ in names)
        statement = f"INSERT INTO {quote(table.name)} ({listed}) VALUES ({marks})"  # noqa: S608 - our own schema's names
        connection.exec_driver_sql(statement, rows)
    return count


def _copy(connection: Connection, statement: str, rows: list[tuple[Any, ...]]) -> None:
    """Stream `rows` through PostgreSQL's COPY; driver errors become SQLAlchemy's, as usual."""
    driver: Any = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                copy.write_row(row)
    except connection.dialect.loaded_dbapi.Error as exc:
        lost = bool(connection.dialect.is_disconnect(exc, driver, None))
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            statement,
            None,
            exc,
            connection.dialect.loaded_dbapi.Error,
            connection_invalidated=lost,
            dialect=connection.dialect,
        ) from exc
