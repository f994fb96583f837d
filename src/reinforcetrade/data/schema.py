"""The OHLCV contract: a UTC DatetimeIndex of bar open times and float64 open/high/low/close/volume.

A frame carries its `symbol` and `timeframe` in `frame.attrs`; loaders also record where it came
from (`source`, and how frame positions map to rows of the source file) so that validation can
name the file and row of every problem.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.core.timeframes import Timeframe, parse_timeframe

COLUMNS: Final[tuple[str, ...]] = ("open", "high", "low", "close", "volume")
PRICE_COLUMNS: Final[tuple[str, ...]] = ("open", "high", "low", "close")
INDEX_NAME: Final[str] = "timestamp"

ATTR_SYMBOL: Final[str] = "symbol"
ATTR_TIMEFRAME: Final[str] = "timeframe"
ATTR_SOURCE: Final[str] = "source"
ATTR_FIRST_ROW: Final[str] = "source_first_row"
ATTR_ROW_LABEL: Final[str] = "source_row_label"
ATTR_SOURCE_ROWS: Final[str] = "source_rows"

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]


def make_ohlcv(
    timestamps: pd.DatetimeIndex | npt.ArrayLike,
    open: npt.ArrayLike,
    high: npt.ArrayLike,
    low: npt.ArrayLike,
    close: npt.ArrayLike,
    volume: npt.ArrayLike,
    *,
    symbol: str | None = None,
    timeframe: str | Timeframe | None = None,
) -> pd.DataFrame:
    """Build a contract frame from arrays; integer timestamps are epoch nanoseconds (UTC).

    >>> f = make_ohlcv([0, 60_000_000_000], [1, 2], [2, 3], [1, 2], [2, 3], [5, 6], timeframe="1m")
    >>> list(f.columns), str(f.index.tz), f.attrs["timeframe"]
    (['open', 'high', 'low', 'close', 'volume'], 'UTC', '1m')
    """
    index = to_utc_index(timestamps)
    data = {
        name: np.asarray(values, dtype=np.float64)
        for name, values in zip(COLUMNS, (open, high, low, close, volume), strict=True)
    }
    frame = pd.DataFrame(data, index=index)
    return with_meta(frame, symbol=symbol, timeframe=timeframe)


def frame_from_block(
    timestamps: I8,
    block: npt.NDArray[np.float64],
    *,
    symbol: str | None = None,
    timeframe: str | Timeframe | None = None,
) -> pd.DataFrame:
    """Build a contract frame around a (5, n) float64 block of open/high/low/close/volume rows.

    The block becomes the frame's storage without a copy (it must not be changed afterwards).
    """
    if block.shape != (len(COLUMNS), timestamps.size):
        raise ValueError(f"block shape {block.shape} does not match {timestamps.size} timestamps")
    frame = pd.DataFrame(block.T, index=to_utc_index(timestamps), columns=list(COLUMNS), copy=False)
    return with_meta(frame, symbol=symbol, timeframe=timeframe)


def to_utc_index(timestamps: pd.DatetimeIndex | npt.ArrayLike) -> pd.DatetimeIndex:
    """Return a nanosecond UTC DatetimeIndex named 'timestamp'; ints are epoch nanoseconds."""
    if isinstance(timestamps, pd.DatetimeIndex):
        index = timestamps if timestamps.tz is not None else timestamps.tz_localize("UTC")
        index = index.tz_convert("UTC")
    else:
        values = np.asarray(timestamps)
        if np.issubdtype(values.dtype, np.integer):
            stamps = values.astype(np.int64, copy=False).view("datetime64[ns]")
            index = pd.DatetimeIndex(stamps).tz_localize("UTC")
        else:
            index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    if index.unit != "ns":
        index = index.as_unit("ns")
    return index.rename(INDEX_NAME)


def with_meta(
    frame: pd.DataFrame,
    *,
    symbol: str | None = None,
    timeframe: str | Timeframe | None = None,
) -> pd.DataFrame:
    """Set symbol and timeframe on a frame's attrs (in place) and return it."""
    if symbol is not None:
        frame.attrs[ATTR_SYMBOL] = str(symbol)
    if timeframe is not None:
        frame.attrs[ATTR_TIMEFRAME] = parse_timeframe(timeframe).text
    return frame


def symbol_of(frame: pd.DataFrame) -> str | None:
    """Return the frame's symbol, if known."""
    value = frame.attrs.get(ATTR_SYMBOL)
    return None if value is None else str(value)


def timeframe_of(frame: pd.DataFrame) -> Timeframe | None:
    """Return the frame's declared timeframe, if known."""
    value = frame.attrs.get(ATTR_TIMEFRAME)
    return None if value is None else parse_timeframe(str(value))


def index_ns(frame: pd.DataFrame) -> I8:
    """Return the frame's bar open times as int64 epoch nanoseconds (no copy when possible)."""
    index = frame.index
    if not isinstance(index, pd.DatetimeIndex):
        raise TypeError("an OHLCV frame has a DatetimeIndex")
    if index.unit != "ns":  # as_unit copies even when the unit already matches
        index = index.as_unit("ns")
    return np.asarray(index.asi8, dtype=np.int64)


def column(frame: pd.DataFrame, name: str) -> F8:
    """Return one OHLCV column as a contiguous float64 array."""
    return np.ascontiguousarray(frame[name].to_numpy(dtype=np.float64))
