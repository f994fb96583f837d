"""`Bars`: a contract frame as plain arrays, the form agents and compiled loops take."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from reinforcetrade.core.timeframes import Timeframe
from reinforcetrade.data.schema import F8, I8, column, index_ns, symbol_of, timeframe_of


@dataclass(frozen=True, slots=True)
class Bars:
    """One symbol's bars as contiguous arrays (epoch-ns open times and float64 OHLCV)."""

    ts: I8
    open: F8
    high: F8
    low: F8
    close: F8
    volume: F8
    symbol: str = ""
    timeframe: Timeframe | None = None

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, symbol: str | None = None) -> Bars:
        """Return the arrays of a contract frame (no copies where the frame allows)."""
        return cls(
            ts=index_ns(frame),
            open=column(frame, "open"),
            high=column(frame, "high"),
            low=column(frame, "low"),
            close=column(frame, "close"),
            volume=column(frame, "volume"),
            symbol=symbol or symbol_of(frame) or "",
            timeframe=timeframe_of(frame),
        )

    def __len__(self) -> int:
        return int(self.ts.size)

    def head(self, n: int) -> Bars:
        """Return the first `n` bars (what a live engine had seen after n bars)."""
        return Bars(
            self.ts[:n],
            self.open[:n],
            self.high[:n],
            self.low[:n],
            self.close[:n],
            self.volume[:n],
            self.symbol,
            self.timeframe,
        )

    def times(self) -> pd.DatetimeIndex:
        """Return the open times as a UTC DatetimeIndex."""
        return pd.DatetimeIndex(np.asarray(self.ts).view("datetime64[ns]")).tz_localize("UTC")
