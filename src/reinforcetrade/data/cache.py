"""The history cache: one Parquet file per (exchange, symbol, timeframe), with its coverage.

Each file holds the closed bars fetched so far and, in its Parquet metadata, the *coverage*: the
half-open millisecond ranges ``[start, end)`` already asked of the exchange. A bar missing inside a
covered range is a real exchange outage, so it is never asked for again. Files are written to a
temporary name and renamed (never half a file); a file that cannot be read, or whose bars and
coverage disagree, is reported with a `CacheWarning` and ignored, so that it is rebuilt.
The symbol and timeframe are stored the way `write_ohlcv` stores them, so `load_ohlcv` reads a
cache file like any other.
"""

from __future__ import annotations

import itertools
import json
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reinforcetrade.core.files import atomic_path
from reinforcetrade.core.timeframes import Timeframe
from reinforcetrade.data.meta import PARQUET_META_KEY, encode_meta
from reinforcetrade.data.schema import COLUMNS, I8, index_ns, make_ohlcv, with_meta
from reinforcetrade.data.validate import check

COVERAGE_META_KEY: Final[bytes] = b"reinforcetrade.history"
FORMAT_VERSION: Final[int] = 1
_NS_PER_MS: Final[int] = 1_000_000

Span = tuple[int, int]


class CacheWarning(UserWarning):
    """A cache file was unreadable or inconsistent; it is ignored and rebuilt."""


class _CorruptCache(Exception):
    """Why a cache file cannot be trusted."""


@dataclass(frozen=True, slots=True)
class Coverage:
    """Sorted, disjoint, non-touching half-open ``[start, end)`` millisecond ranges.

    >>> c = Coverage().add(0, 10).add(20, 30).add(10, 15)
    >>> c.spans
    ((0, 15), (20, 30))
    >>> c.missing(5, 40)
    ((15, 20), (30, 40))
    """

    spans: tuple[Span, ...] = ()

    def add(self, start: int, end: int) -> Coverage:
        """Return the coverage with ``[start, end)`` added (an empty range changes nothing)."""
        return self.union(Coverage(((int(start), int(end)),))) if end > start else self

    def union(self, other: Coverage) -> Coverage:
        """Return the ranges covered by either, merged where they overlap or touch."""
        merged: list[Span] = []
        for start, end in sorted(self.spans + other.spans):
            if merged and start <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], end))
            else:
                merged.append((start, end))
        return Coverage(tuple(merged))

    def segments(self, start: int, end: int) -> tuple[tuple[int, int, bool], ...]:
        """Return ``[start, end)`` cut into consecutive pieces, each flagged covered or not.

        >>> Coverage(((10, 20),)).segments(0, 30)
        ((0, 10, False), (10, 20, True), (20, 30, False))
        """
        out: list[tuple[int, int, bool]] = []
        cursor = start
        for s, e in self.spans:
            if e <= cursor or s >= end:
                continue
            if s > cursor:
                out.append((cursor, s, False))
            out.append((max(s, cursor), min(e, end), True))
            cursor = min(e, end)
        if cursor < end:
            out.append((cursor, end, False))
        return tuple(out)

    def missing(self, start: int, end: int) -> tuple[Span, ...]:
        """Return the parts of ``[start, end)`` not covered."""
        return tuple((s, e) for s, e, covered in self.segments(start, end) if not covered)

    def contains(self, ms: I8) -> np.ndarray:
        """Return, for each millisecond timestamp, whether it lies inside the coverage."""
        inside = np.zeros(ms.shape, dtype=np.bool_)
        for start, end in self.spans:
            inside |= (ms >= start) & (ms < end)
        return inside

    def to_json(self) -> list[list[int]]:
        """Return the ranges as JSON-ready ``[[start, end], …]``."""
        return [[s, e] for s, e in self.spans]

    @classmethod
    def from_json(cls, value: object) -> Coverage:
        """Return the coverage stored by `to_json`, refusing anything malformed."""
        if not isinstance(value, list):
            raise _CorruptCache("coverage is not a list")
        spans: list[Span] = []
        for item in value:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in item)
                or item[0] >= item[1]
            ):
                raise _CorruptCache(f"coverage range {item!r} is not [start, end) in ms")
            spans.append((item[0], item[1]))
        if spans != sorted(spans) or any(a[1] >= b[0] for a, b in itertools.pairwise(spans)):
            raise _CorruptCache("coverage ranges overlap or are out of order")
        return cls(tuple(spans))


@dataclass(frozen=True, slots=True)
class CacheKey:
    """What one cache file holds: one exchange's bars of one symbol at one timeframe."""

    exchange: str
    symbol: str
    timeframe: Timeframe

    def label(self) -> str:
        """Return 'exchange symbol timeframe' for messages."""
        return f"{self.exchange} {self.symbol} {self.timeframe}"


def empty_bars(key: CacheKey) -> pd.DataFrame:
    """Return a contract frame with no bars, carrying the key's symbol and timeframe."""
    none: list[float] = []
    return make_ohlcv(
        np.array([], dtype=np.int64), none, none, none, none, none,
        symbol=key.symbol, timeframe=key.timeframe,
    )  # fmt: skip


@dataclass(frozen=True)
class CachedBars:
    """Closed bars known for a key, and the ranges already asked of the exchange."""

    key: CacheKey
    frame: pd.DataFrame
    coverage: Coverage = Coverage()
    rebuild: bool = False

    def merge(self, bars: pd.DataFrame, coverage: Coverage) -> CachedBars:
        """Return these bars with `bars` added (newer values win on equal timestamps)."""
        if bars.empty:
            frame = self.frame
        elif self.frame.empty:
            frame = bars
        else:
            frame = pd.concat([self.frame, bars])
            frame = frame[~frame.index.duplicated(keep="last")].sort_index(kind="stable")
        frame = frame.loc[:, list(COLUMNS)].copy()
        with_meta(frame, symbol=self.key.symbol, timeframe=self.key.timeframe)
        return CachedBars(self.key, frame, self.coverage.union(coverage))

    def between(self, start: int, end: int) -> pd.DataFrame:
        """Return the bars opening in ``[start, end)`` (milliseconds)."""
        ms = index_ns(self.frame) // _NS_PER_MS
        lo, hi = np.searchsorted(ms, [start, end], side="left")
        out = self.frame.iloc[int(lo) : int(hi)].copy()
        out.attrs = dict(self.frame.attrs)
        return out

    def count(self, start: int, end: int) -> int:
        """Return how many bars open in ``[start, end)``."""
        ms = index_ns(self.frame) // _NS_PER_MS
        lo, hi = np.searchsorted(ms, [start, end], side="left")
        return int(hi - lo)


def _slug(text: str) -> str:
    """Return text safe as one path component: 'BTC/USDT:USDT' → 'BTC_USDT_USDT'."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", text).strip("._") or "_"


class HistoryCache:
    """Parquet files under `directory`: ``<exchange>/<BASE_QUOTE>-<timeframe>.parquet``.

    >>> from reinforcetrade.core.timeframes import parse_timeframe
    >>> HistoryCache(Path("cache")).path(CacheKey("binance", "BTC/USDT", parse_timeframe("1h")))
    PosixPath('cache/binance/BTC_USDT-1h.parquet')
    """

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def path(self, key: CacheKey) -> Path:
        """Return the file that holds `key` (months are 'mo' so '1M' and '1m' never collide)."""
        tf = key.timeframe
        name = f"{tf.count}mo" if tf.is_monthly else tf.text
        return self.directory / _slug(key.exchange) / f"{_slug(key.symbol)}-{name}.parquet"

    def load(self, key: CacheKey) -> CachedBars:
        """Return the cached bars for `key`: none if absent, none plus a warning if corrupt."""
        path = self.path(key)
        if not path.exists():
            return CachedBars(key, empty_bars(key))
        try:
            return _read(path, key)
        except (_CorruptCache, OSError, ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            warnings.warn(
                f"{path}: history cache is unreadable or inconsistent ({exc}); ignoring it — "
                "the bars are fetched again and the file is rebuilt",
                CacheWarning,
                stacklevel=3,
            )
            return CachedBars(key, empty_bars(key), rebuild=True)

    def save(self, cached: CachedBars) -> Path:
        """Write the bars and coverage atomically (a temp file renamed over the old one)."""
        key, frame = cached.key, cached.frame
        path = self.path(key)
        table = pa.Table.from_pandas(frame.loc[:, list(COLUMNS)], preserve_index=True)
        info = {
            "format": FORMAT_VERSION,
            "exchange": key.exchange,
            "symbol": key.symbol,
            "timeframe": key.timeframe.text,
            "coverage": cached.coverage.to_json(),
        }
        meta = dict(table.schema.metadata or {})
        meta[PARQUET_META_KEY] = encode_meta(frame)
        meta[COVERAGE_META_KEY] = json.dumps(info, sort_keys=True).encode()
        with atomic_path(path) as temp:
            pq.write_table(table.replace_schema_metadata(meta), temp, compression="zstd")
        return path


def _read(path: Path, key: CacheKey) -> CachedBars:
    """Read one cache file, refusing it unless bars and coverage are consistent with `key`."""
    table = pq.read_table(path)
    raw = (table.schema.metadata or {}).get(COVERAGE_META_KEY)
    if raw is None:
        raise _CorruptCache("no coverage metadata")
    info = json.loads(raw)
    if not isinstance(info, dict) or info.get("format") != FORMAT_VERSION:
        raise _CorruptCache("unknown metadata format")
    stored = (info.get("exchange"), info.get("symbol"), info.get("timeframe"))
    if stored != (key.exchange, key.symbol, key.timeframe.text):
        raise _CorruptCache(f"it holds {' '.join(map(str, stored))}, not {key.label()}")
    coverage = Coverage.from_json(info.get("coverage"))
    data = table.to_pandas()
    if not isinstance(data.index, pd.DatetimeIndex) or list(data.columns) != list(COLUMNS):
        raise _CorruptCache("columns are not timestamp, " + ", ".join(COLUMNS))
    frame = make_ohlcv(data.index, *(data[c].to_numpy() for c in COLUMNS))
    with_meta(frame, symbol=key.symbol, timeframe=key.timeframe)
    if not frame.empty:
        report = check(frame, timeframe=key.timeframe, calendar="24/7", source=str(path))
        if not report.ok:
            raise _CorruptCache("; ".join(report.lines(limit=3)))
        if not coverage.contains(index_ns(frame) // _NS_PER_MS).all():
            raise _CorruptCache("bars lie outside the recorded coverage")
    return CachedBars(key, frame, coverage)
