"""Read OHLCV files (CSV, gzip CSV, Parquet) into contract frames, locating every bad cell.

CSV headers may use common spellings (``Date``/``Time``/``Open time``/``<OPEN>``/``Vol`` …); a
file whose first line is numeric is read as headerless ``timestamp, open, high, low, close, volume``
(the layout of exchange kline dumps). Timestamps are ISO-8601 strings with a time zone, or epoch
seconds / milliseconds / microseconds / nanoseconds (told apart by magnitude).

Clean files take a fast path (pyarrow's CSV reader). When anything is wrong the file is read again
cell by cell as text, so that every message names the exact line of the file.
"""

from __future__ import annotations

import gzip
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.core.errors import DataError, DataIssue, DataValidationError
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data.meta import PARQUET_META_KEY, decode_meta
from reinforcetrade.data.schema import (
    ATTR_FIRST_ROW,
    ATTR_ROW_LABEL,
    ATTR_SOURCE,
    ATTR_SOURCE_ROWS,
    COLUMNS,
    I8,
    with_meta,
)
from reinforcetrade.data.validate import ISSUES_PER_RULE, ValidationReport, check, conform

_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "timestamp": (
        "timestamp", "datetime", "date", "time", "opentime", "timeopen", "ts", "unix",
        "unixtime", "epoch", "t",
    ),
    "open": ("open", "o", "openprice", "op"),
    "high": ("high", "h", "highprice", "hi", "max"),
    "low": ("low", "l", "lowprice", "lo", "min"),
    "close": ("close", "c", "closeprice", "last", "price"),
    "volume": ("volume", "vol", "v", "tickvol", "tickvolume", "basevolume", "volumebase", "qty"),
}  # fmt: skip
_NAN_SPELLINGS: Final[frozenset[str]] = frozenset({"", "nan", "NaN", "NAN", "null", "NULL", "None"})
_TZ_SUFFIX: Final = re.compile(r"(Z|[+-]\d{2}(:?\d{2})?)$", re.IGNORECASE)
PARQUET_SUFFIXES: Final[tuple[str, ...]] = (".parquet", ".pq")


def _norm(name: str) -> str:
    """Return a header cell reduced to lower-case letters and digits."""
    return re.sub(r"[^a-z0-9]", "", str(name).lower())


def map_columns(header: Sequence[str]) -> tuple[dict[str, str], list[str]]:
    """Return {contract name: header name} for a header, and the contract names it lacks."""
    normalised = {_norm(h): h for h in reversed(header)}  # first spelling wins on clashes
    mapping: dict[str, str] = {}
    for target, spellings in _ALIASES.items():
        for spelling in spellings:
            if spelling in normalised and normalised[spelling] not in mapping.values():
                mapping[target] = normalised[spelling]
                break
    if "timestamp" in mapping and _norm(mapping["timestamp"]) == "date" and "time" in normalised:
        mapping["time"] = normalised["time"]  # separate date and time columns (MetaTrader exports)
    return mapping, [name for name in COLUMNS if name not in mapping]


@dataclass(frozen=True)
class LoadedFile:
    """A file read into a frame, with the problems found reading it and the validation report."""

    frame: pd.DataFrame
    report: ValidationReport


def _epoch_unit(values: npt.NDArray[np.float64]) -> Literal["s", "ms", "us", "ns"]:
    """Return the epoch unit ('s', 'ms', 'us' or 'ns') that fits the numbers' magnitude."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(np.max(finite)) if finite.size else 0.0
    if top < 1e11:
        return "s"
    if top < 1e14:
        return "ms"
    return "us" if top < 1e17 else "ns"


def _tz_problem(texts: pd.Series, rows: I8, tz: str | None) -> DataIssue | None:
    """Return the issue that explains mixed time zones, at the first row that differs."""
    present = (texts != "").to_numpy()
    texts, rows = texts[present], rows[present]
    offsets = texts.str.extract(_TZ_SUFFIX, expand=False)[0]
    if tz is not None:
        offsets = offsets.fillna(tz)
    has = offsets.notna().to_numpy()
    if has.any() and not has.all():
        pos = int(np.flatnonzero(has != has[0])[0])
        kind = "has a time zone" if has[pos] else "has no time zone"
        return DataIssue(
            "timezone",
            f"mixed time zones: this timestamp {kind} and the first one does not agree",
            row=int(rows[pos]),
            column="timestamp",
            value=texts.iloc[pos],
        )
    canon = offsets.str.upper().replace({"Z": "+00:00", "+00": "+00:00", "+0000": "+00:00"})
    differs = (canon != canon.iloc[0]).to_numpy()
    if differs.any():
        pos = int(np.flatnonzero(differs)[0])
        return DataIssue(
            "timezone",
            f"mixed time zones: offset differs from the first row's {offsets.iloc[0]}; "
            "convert the file to UTC first",
            row=int(rows[pos]),
            column="timestamp",
            value=texts.iloc[pos],
        )
    return None


def parse_timestamps(
    values: pd.Series, *, rows: I8, tz: str | None = None
) -> tuple[pd.DatetimeIndex, list[DataIssue]]:
    """Return UTC timestamps for a column (ISO text or epoch numbers) and the cells that failed.

    `rows` gives the source row number of each value, for the messages.
    """
    issues: list[DataIssue] = []
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        index = pd.DatetimeIndex(values)
    elif pd.api.types.is_numeric_dtype(values.dtype):
        numbers = values.to_numpy(dtype=np.float64, na_value=np.nan)
        unit = _epoch_unit(numbers)
        index = pd.DatetimeIndex(pd.to_datetime(pd.Series(numbers), unit=unit, utc=True))
    else:
        try:  # the common case first: clean ISO-8601 text, parsed in one call
            if _looks_like_epoch(values):
                raise ValueError("epoch numbers as text")
            index = pd.DatetimeIndex(pd.to_datetime(values, format="ISO8601"))
        except ValueError:
            index, issues = _parse_text_timestamps(values, rows, tz)
    if index.tz is None:
        if tz is None:
            return index, issues  # check() reports the missing time zone with its hint
        index = index.tz_localize(tz)
    return index.tz_convert("UTC").as_unit("ns").rename("timestamp"), issues


def _looks_like_epoch(values: pd.Series) -> bool:
    """Return True when the first value is a bare number of 9+ digits (epoch time as text)."""
    first = values.dropna()
    return (
        bool(len(first)) and re.fullmatch(r"\s*-?\d{9,}(\.\d*)?\s*", str(first.iloc[0])) is not None
    )


def _parse_text_timestamps(
    values: pd.Series, rows: I8, tz: str | None
) -> tuple[pd.DatetimeIndex, list[DataIssue]]:
    """Parse timestamps cell by cell: epoch text, dotted dates, and locate every bad cell."""
    issues: list[DataIssue] = []
    texts = values.astype("string").str.strip().fillna("")
    if texts.str.fullmatch(r"-?\d+(\.\d*)?").all():
        numbers = pd.to_numeric(texts).to_numpy(dtype=np.float64)
        unit = _epoch_unit(numbers)
        return pd.DatetimeIndex(pd.to_datetime(pd.Series(numbers), unit=unit, utc=True)), issues
    texts = texts.str.replace(r"^(\d{4})\.(\d{2})\.(\d{2})", r"\1-\2-\3", regex=True)
    try:
        return pd.DatetimeIndex(pd.to_datetime(texts, format="ISO8601")), issues
    except ValueError as exc:
        problem = _tz_problem(texts, rows, tz) if "Mixed" in str(exc) else None
    if problem is not None:
        issues.append(problem)
    parsed = pd.to_datetime(texts, format="ISO8601", errors="coerce", utc=True)
    bad = (parsed.isna() & (texts != "")).to_numpy()
    issues += [
        DataIssue(
            "timestamp",
            "not a timestamp (use ISO-8601 with a time zone, or epoch s/ms)",
            row=int(rows[pos]),
            column="timestamp",
            value=texts.iloc[int(pos)],
        )
        for pos in np.flatnonzero(bad)[:ISSUES_PER_RULE]
    ]
    return pd.DatetimeIndex(parsed), issues


def _numbers(
    raw: pd.DataFrame, column: str, target: str, rows: I8
) -> tuple[npt.NDArray[np.float64], list[DataIssue]]:
    """Return a column as float64 and an issue for every cell that is text but not a number."""
    series = raw[column]
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series):
        return series.to_numpy(dtype=np.float64, na_value=np.nan), []
    texts = series.astype("string").str.strip()
    numbers = pd.to_numeric(texts, errors="coerce")
    bad = (numbers.isna() & texts.notna() & ~texts.isin(_NAN_SPELLINGS)).to_numpy()
    issues = [
        DataIssue(
            "number",
            "not a number",
            row=int(rows[pos]),
            column=target,
            value=texts.iloc[int(pos)],
        )
        for pos in np.flatnonzero(bad)[:ISSUES_PER_RULE]
    ]
    return numbers.to_numpy(dtype=np.float64, na_value=np.nan), issues


def _drop_blank_lines(raw: pd.DataFrame, first_row: int) -> tuple[pd.DataFrame, I8]:
    """Return the table without blank lines and the source line number of each remaining row."""
    rows = first_row + np.arange(len(raw), dtype=np.int64)
    if len(raw) == 0 or not raw.dtypes.map(pd.api.types.is_string_dtype).all():
        return raw, rows
    blank = raw.fillna("").apply(lambda col: col.str.strip()).eq("").all(axis=1).to_numpy()
    if not blank.any():
        return raw, rows
    return raw.loc[~blank].reset_index(drop=True), rows[~blank]


def frame_from_table(
    raw: pd.DataFrame,
    *,
    source: str,
    first_row: int,
    row_label: str,
    tz: str | None = None,
) -> tuple[pd.DataFrame, list[DataIssue]]:
    """Return a contract frame from a raw table with any header spelling, plus cell issues.

    Blank lines carry no data and are skipped (as every CSV reader does); line numbers in
    messages stay those of the file.
    """
    mapping, missing = map_columns([str(c) for c in raw.columns])
    if missing:
        found = ", ".join(map(str, raw.columns))
        raise DataValidationError(
            f"missing column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(header: {found})",
            source=source,
            hint="name the columns timestamp, open, high, low, close, volume",
        )
    raw, rows = _drop_blank_lines(raw, first_row)
    stamps = raw[mapping["timestamp"]]
    if "time" in mapping:
        stamps = stamps.astype("string") + " " + raw[mapping["time"]].astype("string")
    index, issues = parse_timestamps(stamps, rows=rows, tz=tz)
    data = {}
    for name in COLUMNS:
        data[name], cell_issues = _numbers(raw, mapping[name], name, rows)
        issues += cell_issues
    frame = pd.DataFrame(data, index=index)
    frame.attrs.update({ATTR_SOURCE: source, ATTR_ROW_LABEL: row_label})
    if rows.size and rows[-1] - rows[0] + 1 != rows.size:
        frame.attrs[ATTR_SOURCE_ROWS] = rows  # positions no longer map to rows by an offset
    else:
        frame.attrs[ATTR_FIRST_ROW] = int(rows[0]) if rows.size else first_row
    return frame, issues


def _compression(path: Path) -> Literal["gzip"] | None:
    """Return 'gzip' when the file starts with gzip's magic bytes, whatever its name."""
    with path.open("rb") as probe:
        return "gzip" if probe.read(2) == b"\x1f\x8b" else None


def _first_line(path: Path) -> str:
    """Return the first line of a possibly gzip-compressed text file."""
    if _compression(path) == "gzip":
        with gzip.open(path, "rt", encoding="utf-8", errors="replace") as packed:
            return packed.readline()
    with path.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline()


def _read_csv(
    path: Path, tz: str | None, *, exact: bool
) -> tuple[pd.DataFrame, list[DataIssue], bool]:
    """Read a CSV file; `exact` reads every cell as text so each line number is the file's own.

    Returns the frame, the cells that failed to parse, and whether the exact reader was used.
    """
    first = [cell.strip().strip('"') for cell in _first_line(path).strip().split(",")]
    headerless = bool(first) and re.fullmatch(r"-?\d+(\.\d*)?", first[0]) is not None
    names = ["timestamp", *COLUMNS] if headerless else None
    usecols = list(range(6)) if headerless else None
    first_row = 1 if headerless else 2
    mapping, _ = map_columns(names or first)
    # timestamps stay text so that mixed time zones are seen, not silently converted
    as_text = {mapping[key]: "string" for key in ("timestamp", "time") if key in mapping}
    # exact: every cell as text, blank lines kept (so positions map to lines); else pyarrow's
    # multi-threaded reader with the timestamps kept as text
    how: dict[str, Any] = (
        {"dtype": str, "keep_default_na": False, "skip_blank_lines": False}
        if exact
        else {"dtype": as_text, "engine": "pyarrow"}
    )
    try:
        raw = pd.read_csv(
            path,
            compression=_compression(path),
            header=None if headerless else 0,
            names=names,
            usecols=usecols,
            **how,
        )
    except (ValueError, pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as exc:
        if not exact:
            return _read_csv(path, tz, exact=True)
        raise DataError(f"cannot read as CSV: {exc}", source=path) from exc
    frame, issues = frame_from_table(
        raw, source=str(path), first_row=first_row, row_label="line", tz=tz
    )
    return frame, issues, exact


def _read_parquet(
    path: Path, tz: str | None
) -> tuple[pd.DataFrame, list[DataIssue], dict[str, str]]:
    """Read a Parquet file written by us or by another tool (timestamp as index or column)."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read as Parquet: {exc}", source=path) from exc
    meta = decode_meta((table.schema.metadata or {}).get(PARQUET_META_KEY))
    raw = table.to_pandas()
    if isinstance(raw.index, pd.DatetimeIndex):
        raw = raw.reset_index(names="timestamp")
    frame, issues = frame_from_table(raw, source=str(path), first_row=0, row_label="row", tz=tz)
    return frame, issues, meta


def symbol_from_path(path: Path) -> str:
    """Return a symbol guessed from a file name: 'BTC_USDT-1h.csv' → 'BTC/USDT', 'aapl_1d' → 'AAPL'.

    >>> symbol_from_path(Path("BTC_USDT-1h.feather"))
    'BTC/USDT'
    """
    stem = path.name.split(".")[0]
    tokens = [t for t in re.split(r"[_\-\s]+", stem) if t]
    head: list[str] = []
    for token in tokens:
        if re.fullmatch(r"\d+[smhdwM]", token):
            break
        head.append(token)
    head = head or tokens[:1]
    return "/".join(t.upper() for t in head[:2]) if len(head) >= 2 else head[0].upper()


def read_file(
    path: str | Path,
    *,
    timeframe: str | Timeframe | None = None,
    calendar: str = "auto",
    tz: str | None = None,
) -> LoadedFile:
    """Read a CSV or Parquet file and check it without raising on bad data (see `load_ohlcv`)."""
    path = Path(path)
    if not path.is_file():
        raise DataError("no such file", source=path, hint="check the path")
    tf = None if timeframe is None else parse_timeframe(timeframe)
    meta: dict[str, str] = {}
    exact = True
    if path.suffix.lower() in PARQUET_SUFFIXES:
        frame, issues, meta = _read_parquet(path, tz)
    else:
        frame, issues, exact = _read_csv(path, tz, exact=False)
    tf = tf or (parse_timeframe(meta["timeframe"]) if "timeframe" in meta else None)
    report = check(frame, timeframe=tf, calendar=calendar, prior=issues)
    if not report.ok and not exact:  # read again cell by cell so every line number is exact
        frame, issues, exact = _read_csv(path, tz, exact=True)
        report = check(frame, timeframe=tf, calendar=calendar, prior=issues)
    with_meta(frame, symbol=meta.get("symbol") or symbol_from_path(path))
    if report.timeframe is not None:
        with_meta(frame, timeframe=report.timeframe)
    return LoadedFile(frame, report)


def load_ohlcv(
    path: str | Path,
    *,
    symbol: str | None = None,
    timeframe: str | Timeframe | None = None,
    gaps: str = "keep",
    calendar: str = "auto",
    tz: str | None = None,
) -> pd.DataFrame:
    """Read and validate an OHLCV file (CSV, .csv.gz or Parquet) into a contract frame.

    Raises `DataValidationError` naming file, line, column and value of every problem; gaps are
    handled by the explicit `gaps` policy ('raise', 'keep' with a logged warning, or 'fill').
    `tz` interprets timestamps that carry no time zone (e.g. tz='UTC'); without it they are refused.
    """
    loaded = read_file(path, timeframe=timeframe, calendar=calendar, tz=tz)
    frame = conform(loaded.frame, loaded.report, gaps=gaps)
    if symbol is not None:
        with_meta(frame, symbol=symbol)
    return frame
