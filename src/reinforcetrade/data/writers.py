"""Write contract frames to CSV (optionally gzip) or Parquet, atomically: never a half file."""

from __future__ import annotations

import gzip
import io
from pathlib import Path
from typing import Final, Literal

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.files import atomic_path
from reinforcetrade.data.meta import PARQUET_META_KEY, encode_meta
from reinforcetrade.data.schema import COLUMNS, index_ns

FileFormat = Literal["csv", "parquet"]
FORMATS: Final[tuple[str, ...]] = ("csv", "parquet")


def format_of(path: Path) -> FileFormat:
    """Return the file format implied by a path's suffix (.csv, .csv.gz, .parquet, .pq)."""
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    if ".csv" in suffixes or (suffixes and suffixes[-1] == ".gz"):
        return "csv"
    raise UserInputError(
        f"{path}: cannot tell the format from the suffix; use .csv, .csv.gz, .parquet or .pq"
    )


def iso_utc(ts_ns: np.ndarray) -> np.ndarray:
    """Return epoch nanoseconds as ISO-8601 UTC text with a Z suffix (seconds or finer)."""
    stamps = ts_ns.astype("datetime64[ns]")
    whole = (ts_ns % 1_000_000_000 == 0).all()
    text = np.datetime_as_string(stamps, unit="s" if whole else "ns")
    return np.char.add(text.astype(str), "Z")


def write_ohlcv(frame: pd.DataFrame, path: str | Path, *, fmt: FileFormat | None = None) -> Path:
    """Write a contract frame to `path` (CSV, .csv.gz or Parquet) via a temp file and a rename."""
    path = Path(path)
    fmt = fmt or format_of(path)
    if fmt not in FORMATS:
        raise UserInputError(f"format {fmt!r} is not one of {', '.join(FORMATS)}")
    body = frame.loc[:, list(COLUMNS)]
    with atomic_path(path) as temp:
        if fmt == "parquet":
            table = pa.Table.from_pandas(body, preserve_index=True)
            schema_meta = dict(table.schema.metadata or {})
            schema_meta[PARQUET_META_KEY] = encode_meta(frame)
            pq.write_table(table.replace_schema_metadata(schema_meta), temp, compression="zstd")
        else:
            out = body.copy()
            out.index = pd.Index(iso_utc(index_ns(frame)), name="timestamp")
            if path.suffix.lower() == ".gz":
                with (
                    open(temp, "wb") as raw,
                    gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as packed,
                    io.TextIOWrapper(packed, encoding="utf-8", newline="") as handle,
                ):
                    out.to_csv(handle, lineterminator="\n")
            else:
                out.to_csv(temp, lineterminator="\n")
    return path


def symbol_filename(symbol: str, timeframe: str, fmt: FileFormat = "parquet") -> str:
    """Return the file name used for one symbol's bars, e.g. 'BTC-USDT_1h.parquet'.

    >>> symbol_filename("BTC/USDT", "1h", "csv")
    'BTC-USDT_1h.csv'
    """
    safe = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in symbol.replace("/", "-"))
    return f"{safe}_{timeframe}.{'parquet' if fmt == 'parquet' else 'csv'}"
