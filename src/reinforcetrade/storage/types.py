"""Column types shared by both dialects: UTC times, nullable numbers, JSON, integer keys."""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import PurePath
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import JSON, BigInteger, DateTime, Double, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from reinforcetrade.storage.errors import JournalError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

#: Auto-incrementing 64-bit keys (SQLite's rowid alias must be spelled INTEGER).
Id: TypeEngine[int] = BigInteger().with_variant(Integer(), "sqlite")
#: JSON documents (JSONB on PostgreSQL, so analysis queries can index into them).
Json: TypeEngine[Any] = JSON().with_variant(JSONB(), "postgresql")


def utc(value: object) -> datetime:
    """Return a time as an aware UTC datetime (microseconds); epoch ns, pandas and numpy welcome.

    >>> utc(1_700_000_000_123_456_789)
    datetime.datetime(2023, 11, 14, 22, 13, 20, 123456, tzinfo=datetime.timezone.utc)
    >>> utc("2024-01-02T03:04:05+01:00")
    datetime.datetime(2024, 1, 2, 2, 4, 5, tzinfo=datetime.timezone.utc)
    """
    if isinstance(value, pd.Timestamp):
        if value.tzinfo is None:
            raise JournalError(f"naive time {value!r}: pass an aware UTC time or epoch ns")
        return EPOCH + timedelta(microseconds=int(value.value) // 1000)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise JournalError(f"naive time {value!r}: pass an aware UTC time or epoch ns")
        return value.astimezone(UTC)
    if isinstance(value, np.datetime64):
        value = int(value.astype("datetime64[ns]").astype(np.int64))
    if isinstance(value, int | np.integer) and not isinstance(value, bool):
        return EPOCH + timedelta(microseconds=int(value) // 1000)
    if isinstance(value, str):
        return utc(datetime.fromisoformat(value))
    raise JournalError(f"cannot read {value!r} as a time: pass an aware datetime or epoch ns")


def number(value: object) -> float | None:
    """Return a float, or None for a missing value (None, NaN).

    >>> number(float("nan")) is None, number(2)
    (True, 2.0)
    """
    if value is None:
        return None
    result = float(value)  # type: ignore[arg-type]
    return None if math.isnan(result) else result


def plain(value: object) -> Any:
    """Return `value` as JSON-ready data: NaN and infinities become null, tuples lists.

    >>> plain({"a": (1, float("nan")), "b": np.float64(2.5)})
    {'a': [1, None], 'b': 2.5}
    """
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [plain(v) for v in value]
    if isinstance(value, np.generic):
        return plain(value.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, datetime):
        return utc(value).isoformat()
    if isinstance(value, PurePath):
        return str(value)
    if value is None or isinstance(value, str | int | bool):
        return value
    return str(value)


class UtcDateTime(TypeDecorator[datetime]):
    """A point in time, stored as TIMESTAMPTZ (PostgreSQL) or ISO text (SQLite), read as UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the value as an aware UTC datetime."""
        return None if value is None else utc(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        """Return the stored value as an aware UTC datetime (SQLite keeps no zone)."""
        if value is None:
            return None
        stamp: datetime = value
        return stamp.replace(tzinfo=UTC) if stamp.tzinfo is None else stamp.astimezone(UTC)


class Number(TypeDecorator[float]):
    """A double-precision number; NaN is stored as NULL on both dialects (SQLite's own rule)."""

    impl = Double()
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> float | None:
        """Return the value as a float, NaN as None."""
        if value is None or value != value:  # NaN is the one value unequal to itself
            return None
        return float(value)
