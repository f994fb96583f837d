"""`DataLoader`: one facade over files, the synthetic market and exchange history."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from reinforcetrade.config.sections import DataConfig
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.data.readers import load_ohlcv
from reinforcetrade.data.validate import validate
from reinforcetrade.data.writers import FileFormat, write_ohlcv

if TYPE_CHECKING:
    import ccxt


class DataLoader:
    """Loads market data the same way for research, backtests and live warm-up."""

    def __init__(self, config: DataConfig | None = None, *, clock: Clock | None = None) -> None:
        self.config = config or DataConfig()
        self.clock = clock or WallClock()

    def load(
        self,
        path: str | Path,
        *,
        symbol: str | None = None,
        timeframe: str | None = None,
        gaps: str | None = None,
        calendar: str | None = None,
        tz: str | None = None,
    ) -> pd.DataFrame:
        """Read and validate a CSV or Parquet file; gap policy and calendar default to config."""
        return load_ohlcv(
            path,
            symbol=symbol,
            timeframe=timeframe,
            gaps=gaps or self.config.gap_policy,
            calendar=calendar or self.config.calendar,
            tz=tz,
        )

    def load_synthetic(
        self,
        symbol: str = "BTC/USDT",
        *,
        timeframe: str | None = None,
        bars: int | None = None,
        seed: int | None = None,
    ) -> pd.DataFrame:
        """Return the bundled synthetic market for one symbol (deterministic by seed)."""
        from reinforcetrade.data.synthetic import generate_ohlcv

        synthetic = self.config.synthetic
        return generate_ohlcv(
            symbol,
            timeframe=timeframe or synthetic.timeframe,
            bars=bars if bars is not None else synthetic.bars,
            seed=seed if seed is not None else synthetic.seed,
            start=synthetic.start,
        )

    def fetch_historical_data(
        self,
        symbol: str,
        timeframe: str = "1h",
        limit: int | None = 5000,
        exchange: str | ccxt.Exchange | None = None,
        since: int | str | pd.Timestamp | None = None,
        *,
        progress: Callable[[int, int | None], None] | None = None,
    ) -> pd.DataFrame:
        """Return closed bars from a ccxt exchange, paging, retrying and caching to Parquet.

        See `CcxtHistory.fetch` for how `since` and `limit` select bars; gaps (exchange outages)
        are then handled by the configured gap policy.
        """
        from reinforcetrade.data.history import CcxtHistory

        with CcxtHistory(self.config, clock=self.clock) as history:
            frame = history.fetch(
                symbol,
                timeframe=timeframe,
                limit=limit,
                since=since,
                exchange=exchange or self.config.exchange,
                progress=progress,
            )
        if frame.empty or self.config.gap_policy == "keep":  # fetch() has kept and logged gaps
            return frame
        return validate(frame, gaps=self.config.gap_policy, calendar=self.config.calendar)

    def save(self, frame: pd.DataFrame, path: str | Path, *, fmt: FileFormat | None = None) -> Path:
        """Write a frame to CSV or Parquet atomically."""
        return write_ohlcv(frame, path, fmt=fmt)
