"""Readers accept the common spellings and encodings; writers never leave a half-written file."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from reinforcetrade.core.errors import DataError, UserInputError
from reinforcetrade.data import load_ohlcv
from reinforcetrade.data.readers import map_columns, symbol_from_path
from reinforcetrade.data.synthetic import generate_ohlcv
from reinforcetrade.data.writers import symbol_filename, write_ohlcv

EPOCH_2024 = 1_704_067_200  # 2024-01-01T00:00:00Z


@pytest.fixture(scope="module")
def bars() -> pd.DataFrame:
    return generate_ohlcv("ETH/USDT", timeframe="1h", bars=500, seed=3)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("Date,Open,High,Low,Close,Volume", "Date"),
        ("Open time,Open,High,Low,Close,Volume", "Open time"),
        ("datetime,o,h,l,c,v", "datetime"),
        ("<DATE>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<TICKVOL>", "<DATE>"),
        ("time,open,high,low,close,vol", "time"),
    ],
)
def test_common_header_spellings(tmp_path: Path, header: str, expected: str) -> None:
    mapping, missing = map_columns(header.split(","))
    assert missing == []
    assert mapping["timestamp"] == expected
    path = tmp_path / "x.csv"
    path.write_text(
        f"{header}\n2024-01-01T00:00:00Z,1,2,0.5,1.5,3\n2024-01-01T00:01:00Z,1.5,2,1,1.2,4\n"
    )
    frame = load_ohlcv(path)
    assert list(frame.columns) == ["open", "high", "low", "close", "volume"]
    assert frame.attrs["timeframe"] == "1m"


def test_separate_date_and_time_columns(tmp_path: Path) -> None:
    path = tmp_path / "mt5.csv"
    path.write_text(
        "<DATE>,<TIME>,<OPEN>,<HIGH>,<LOW>,<CLOSE>,<TICKVOL>\n"
        "2024.01.02,10:00:00,1.1,1.2,1.0,1.15,50\n2024.01.02,11:00:00,1.15,1.3,1.1,1.2,60\n"
    )
    frame = load_ohlcv(path, tz="UTC")
    assert frame.index[1] == pd.Timestamp("2024-01-02T11:00:00Z")


@pytest.mark.parametrize(("unit", "scale"), [("s", 1), ("ms", 1_000), ("us", 1_000_000)])
def test_epoch_timestamps_by_magnitude(tmp_path: Path, unit: str, scale: int) -> None:
    path = tmp_path / f"epoch_{unit}.csv"
    rows = [f"{(EPOCH_2024 + 3600 * i) * scale},1,2,0.5,1.5,3" for i in range(3)]
    path.write_text("timestamp,open,high,low,close,volume\n" + "\n".join(rows) + "\n")
    frame = load_ohlcv(path)
    assert frame.index[0] == pd.Timestamp("2024-01-01T00:00:00Z")
    assert frame.attrs["timeframe"] == "1h"


def test_headerless_kline_dump(tmp_path: Path) -> None:
    path = tmp_path / "BTCUSDT-1m-2024-01.csv"
    rows = [
        f"{(EPOCH_2024 + 60 * i) * 1000},42000.1,42010.0,41990.5,42005.0,1.5,{(EPOCH_2024 + 60 * i) * 1000 + 59999},0,0"
        for i in range(5)
    ]
    path.write_text("\n".join(rows) + "\n")
    frame = load_ohlcv(path)
    assert len(frame) == 5
    assert frame["close"].iloc[0] == 42005.0


def test_iso_offsets_are_converted_to_utc(tmp_path: Path) -> None:
    path = tmp_path / "offset.csv"
    path.write_text(
        "timestamp,open,high,low,close,volume\n"
        "2024-01-01T02:00:00+02:00,1,2,0.5,1.5,3\n2024-01-01T03:00:00+02:00,1,2,0.5,1.5,3\n"
    )
    assert load_ohlcv(path).index[0] == pd.Timestamp("2024-01-01T00:00:00Z")


@pytest.mark.parametrize("name", ["bars.csv", "bars.csv.gz", "bars.parquet"])
def test_round_trip_is_exact(tmp_path: Path, bars: pd.DataFrame, name: str) -> None:
    path = write_ohlcv(bars, tmp_path / name)
    back = load_ohlcv(path)
    pd.testing.assert_frame_equal(back, bars, check_freq=False)
    assert back.attrs["timeframe"] == "1h"
    if name.endswith(".parquet"):
        assert back.attrs["symbol"] == "ETH/USDT"  # kept in the file's metadata


def test_gzip_is_recognised_by_content_and_reproducible(tmp_path: Path, bars: pd.DataFrame) -> None:
    one = write_ohlcv(bars, tmp_path / "a.csv.gz")
    two = write_ohlcv(bars, tmp_path / "b.csv.gz")
    assert one.read_bytes() == two.read_bytes()  # gzip mtime 0: same bytes every time
    assert one.read_bytes()[:2] == b"\x1f\x8b"


def test_writer_leaves_nothing_behind_on_failure(
    tmp_path: Path, bars: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_ohlcv(bars, tmp_path / "bars.csv")
    before = path.read_bytes()

    def explode(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", explode)
    with pytest.raises(OSError, match="disk full"):
        write_ohlcv(bars.iloc[:10], path)
    assert path.read_bytes() == before  # the old file is untouched
    assert os.listdir(tmp_path) == ["bars.csv"]  # and no temp file is left


def test_unknown_suffix_is_refused(tmp_path: Path, bars: pd.DataFrame) -> None:
    with pytest.raises(UserInputError, match=r"\.csv, \.csv\.gz, \.parquet"):
        write_ohlcv(bars, tmp_path / "bars.xlsx")


def test_missing_file_is_a_data_error(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no such file"):
        load_ohlcv(tmp_path / "nope.csv")


def test_garbage_parquet_is_a_data_error(tmp_path: Path) -> None:
    path = tmp_path / "bad.parquet"
    path.write_bytes(b"not parquet at all")
    with pytest.raises(DataError, match="cannot read as Parquet"):
        load_ohlcv(path)


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("BTC_USDT-1h.feather", "BTC/USDT"),
        ("btcusdt_1h.csv.gz", "BTCUSDT"),
        ("aapl_1d_adjusted.csv.gz", "AAPL"),
        ("BTC-USDT_1h.parquet", "BTC/USDT"),
        ("EURUSD.csv", "EURUSD"),
    ],
)
def test_symbol_from_file_name(name: str, symbol: str) -> None:
    assert symbol_from_path(Path(name)) == symbol


def test_symbol_filename_round_trips_through_symbol_from_path() -> None:
    assert symbol_from_path(Path(symbol_filename("ETH/USDT", "4h"))) == "ETH/USDT"


def test_symbol_argument_overrides(tmp_path: Path, bars: pd.DataFrame) -> None:
    path = write_ohlcv(bars, tmp_path / "x.csv")
    assert load_ohlcv(path, symbol="SOL/USDT").attrs["symbol"] == "SOL/USDT"


def test_loaded_frame_is_contract_shaped(tmp_path: Path, bars: pd.DataFrame) -> None:
    frame = load_ohlcv(write_ohlcv(bars, tmp_path / "x.csv"))
    assert frame.index.name == "timestamp"
    assert str(pd.DatetimeIndex(frame.index).tz) == "UTC"
    assert frame.index.dtype == "datetime64[ns, UTC]"
    assert all(dtype == np.float64 for dtype in frame.dtypes)
