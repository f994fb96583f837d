"""One malformed file per rejection rule: each is refused naming file, line, column and value."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reinforcetrade.core.errors import DataValidationError
from reinforcetrade.data import load_ohlcv
from reinforcetrade.data.readers import read_file
from reinforcetrade.data.schema import make_ohlcv
from reinforcetrade.data.writers import write_ohlcv

HEADER = "timestamp,open,high,low,close,volume"
GOOD = [
    "2024-01-01T00:00:00Z,100,101,99,100.5,10",
    "2024-01-01T01:00:00Z,100.5,102,100,101,12",
    "2024-01-01T02:00:00Z,101,103,100.5,102,9",
    "2024-01-01T03:00:00Z,102,102.5,101,101.5,11",
]


def _with(line_no: int, text: str, base: list[str] | None = None) -> list[str]:
    """Return GOOD with data line `line_no` (file line numbers: header is 1) replaced."""
    rows = list(base or GOOD)
    rows[line_no - 2] = text
    return rows


# rule, file rows, expected line, expected column, fragments the message must hold
CASES = [
    ("not a number", _with(3, "2024-01-01T01:00:00Z,abc,102,100,101,12"), 3, "open", ["'abc'", "not a number"]),
    ("empty price", _with(4, "2024-01-01T02:00:00Z,101,,100.5,102,9"), 4, "high", ["not finite"]),
    ("nan", _with(4, "2024-01-01T02:00:00Z,101,103,100.5,NaN,9"), 4, "close", ["not finite", "nan"]),
    ("inf", _with(5, "2024-01-01T03:00:00Z,102,inf,101,101.5,11"), 5, "high", ["not finite", "inf"]),
    ("zero price", _with(3, "2024-01-01T01:00:00Z,100.5,102,100,0,12"), 3, "close", ["positive", "0.0"]),
    ("negative price", _with(3, "2024-01-01T01:00:00Z,100.5,102,-1,101,12"), 3, "low", ["positive", "-1.0"]),
    ("high below body", _with(4, "2024-01-01T02:00:00Z,101,101.5,100.5,102,9"), 4, "high", ["high is below max(open, close) = 102.0", "101.5"]),
    ("low above body", _with(4, "2024-01-01T02:00:00Z,101,103,101.5,102,9"), 4, "low", ["low is above min(open, close) = 101.0", "101.5"]),
    ("negative volume", _with(2, "2024-01-01T00:00:00Z,100,101,99,100.5,-10"), 2, "volume", ["negative", "-10.0"]),
    ("duplicate", _with(4, "2024-01-01T01:00:00Z,101,103,100.5,102,9"), 4, "timestamp", ["duplicate of line 3"]),
    ("out of order", _with(3, "2023-12-31T23:00:00Z,100.5,102,100,101,12"), 3, "timestamp", ["earlier than line 2", "must increase"]),
    ("off grid", _with(4, "2024-01-01T02:30:00Z,101,103,100.5,102,9"), 4, "timestamp", ["not on the 1h bar grid", "02:30"]),
    ("unparsable time", _with(3, "yesterday,100.5,102,100,101,12"), 3, "timestamp", ["not a timestamp", "'yesterday'"]),
    ("mixed aware/naive", _with(3, "2024-01-01T01:00:00,100.5,102,100,101,12"), 3, "timestamp", ["mixed time zones", "no time zone"]),
    ("mixed offsets", _with(4, "2024-01-01T04:00:00+02:00,101,103,100.5,102,9"), 4, "timestamp", ["mixed time zones", "+02:00"]),
]  # fmt: skip


def _write(tmp_path: Path, rows: list[str], name: str = "bars.csv", header: str = HEADER) -> Path:
    path = tmp_path / name
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.mark.parametrize(
    ("rule", "rows", "line", "column", "fragments"), CASES, ids=[c[0] for c in CASES]
)
def test_each_rule_names_file_line_column_and_value(
    tmp_path: Path,
    rule: str,
    rows: list[str],
    line: int,
    column: str | None,
    fragments: list[str],
) -> None:
    path = _write(tmp_path, rows)
    with pytest.raises(DataValidationError) as caught:
        load_ohlcv(path, timeframe="1h")
    message = str(caught.value)
    located = [i for i in caught.value.issues if i.row == line]
    assert located, f"{rule}: no issue at line {line} in {message}"
    assert located[0].column == column
    text = located[0].render(str(path), "line")
    assert str(path) in message
    assert f"line {line}" in text
    if column is not None:
        assert f"column {column!r}" in text
    for fragment in fragments:
        assert fragment in text, f"{fragment!r} not in {text!r}"
    # nothing else is reported: every problem sits on the planted line
    assert {i.row for i in caught.value.issues} == {line}, message


def test_blank_lines_are_skipped_and_line_numbers_stay_the_files(tmp_path: Path) -> None:
    rows = [GOOD[0], "", GOOD[1], "  ", GOOD[2].replace(",9", ",-9"), GOOD[3]]
    path = _write(tmp_path, rows)
    with pytest.raises(DataValidationError) as caught:
        load_ohlcv(path)
    assert [(i.row, i.column) for i in caught.value.issues] == [(6, "volume")]
    fine = _write(tmp_path, [GOOD[0], "", *GOOD[1:]], name="fine.csv")
    assert len(load_ohlcv(fine)) == 4


def test_missing_column_is_named(tmp_path: Path) -> None:
    path = _write(
        tmp_path, [r.rsplit(",", 1)[0] for r in GOOD], header="timestamp,open,high,low,close"
    )
    with pytest.raises(DataValidationError, match=r"missing column volume \(header: timestamp"):
        load_ohlcv(path)


def test_missing_time_zone_is_refused_unless_told(tmp_path: Path) -> None:
    rows = [r.replace("Z,", ",", 1) for r in GOOD]
    path = _write(tmp_path, rows)
    with pytest.raises(DataValidationError, match=r"no time zone.*--tz UTC"):
        load_ohlcv(path)
    frame = load_ohlcv(path, tz="UTC")
    assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"
    assert frame.index[0] == pd.Timestamp("2024-01-01T00:00:00Z")
    shifted = load_ohlcv(path, tz="Europe/Berlin")  # 00:00 in Berlin is 23:00 UTC
    assert shifted.index[0] == pd.Timestamp("2023-12-31T23:00:00Z")


def test_every_problem_is_listed_not_just_the_first(tmp_path: Path) -> None:
    rows = list(GOOD)
    rows[0] = "2024-01-01T00:00:00Z,100,101,99,100.5,-1"
    rows[2] = "2024-01-01T02:00:00Z,101,103,100.5,oops,9"
    rows[3] = "2024-01-01T03:00:00Z,102,100,101,101.5,11"
    path = _write(tmp_path, rows)
    report = read_file(path).report
    assert not report.ok
    assert [(i.row, i.column) for i in report.issues] == [(2, "volume"), (4, "close"), (5, "high")]


def test_many_bad_rows_are_counted_beyond_the_listed_ones(tmp_path: Path) -> None:
    rows = [
        f"{pd.Timestamp('2024-01-01T00:00Z') + pd.Timedelta(hours=i):%Y-%m-%dT%H:%M:%SZ},1,2,1,2,-1"
        for i in range(100)
    ]
    path = _write(tmp_path, rows)
    report = read_file(path).report
    assert len(report.issues) == 20
    assert report.omitted == {"volume": 80}
    assert report.lines()[-1] == "… and 80 more problems"


def test_gzip_file_is_located_the_same(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv.gz"
    rows = _with(4, "2024-01-01T02:00:00Z,101,103,100.5,102,-9")
    with gzip.open(path, "wt") as handle:
        handle.write("\n".join([HEADER, *rows]) + "\n")
    with pytest.raises(DataValidationError, match="line 4, column 'volume'"):
        load_ohlcv(path)


def test_parquet_rows_are_located(tmp_path: Path) -> None:
    frame = make_ohlcv(
        np.arange(4) * 3_600_000_000_000,
        [1, 1, 1, 1],
        [2, 2, 0.5, 2],
        [1, 1, 1, 1],
        [1, 1, 1, 1],
        [1] * 4,
    )
    path = tmp_path / "bars.parquet"
    frame.to_parquet(path)  # written by another tool: no validation on the way out
    with pytest.raises(DataValidationError, match="row 2, column 'high'"):
        load_ohlcv(path)


BAD_CELLS = {
    "volume": ("-5", "negative"),
    "open": ("x1", "not a number"),
    "close": ("", "not finite"),
    "high": ("0.001", "high is below"),
}


@settings(max_examples=25, deadline=None)
@given(
    row=st.integers(min_value=0, max_value=199),
    column=st.sampled_from(sorted(BAD_CELLS)),
    seed=st.integers(0, 2**16),
)
def test_a_corrupted_cell_is_found_at_its_line(
    tmp_path_factory: pytest.TempPathFactory, row: int, column: str, seed: int
) -> None:
    from reinforcetrade.data.synthetic import generate_ohlcv

    frame = generate_ohlcv("BTC/USDT", timeframe="15m", bars=200, seed=seed)
    path = write_ohlcv(frame, tmp_path_factory.mktemp("prop") / "bars.csv")
    lines = path.read_text().splitlines()
    cells = lines[row + 1].split(",")
    position = ["timestamp", "open", "high", "low", "close", "volume"].index(column)
    value, fragment = BAD_CELLS[column]
    cells[position] = value
    lines[row + 1] = ",".join(cells)
    path.write_text("\n".join(lines) + "\n")
    report = read_file(path).report
    found = [(i.row, i.column) for i in report.issues]
    assert (row + 2, column) in found, report.lines()
    assert any(fragment in i.message for i in report.issues if i.row == row + 2)
