"""Market data: the OHLCV contract, validation, readers and writers, synthetic markets, resampling.

The public API mirrors the command line::

    from reinforcetrade.data import DataLoader, load_ohlcv, resample, validate
    bars = load_ohlcv("btcusdt_1h.csv.gz")          # read + validate, gaps reported
    daily = resample(bars, "1d")                    # open first, high max, low min, close last
    synthetic = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=5000, seed=42)
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from reinforcetrade.data.gaps import Gap, GapReport, find_gaps
from reinforcetrade.data.loader import DataLoader
from reinforcetrade.data.readers import load_ohlcv, read_file
from reinforcetrade.data.resample import resample
from reinforcetrade.data.schema import COLUMNS, make_ohlcv, symbol_of, timeframe_of, with_meta
from reinforcetrade.data.synthetic import (
    REGIME_NAMES,
    SyntheticMarket,
    SyntheticParams,
    generate_market,
    generate_ohlcv,
)
from reinforcetrade.data.validate import ValidationReport, check, validate
from reinforcetrade.data.writers import write_ohlcv

if TYPE_CHECKING:
    from reinforcetrade.data.cache import CacheWarning, HistoryCache
    from reinforcetrade.data.history import CcxtHistory

_LAZY = {"CacheWarning": "cache", "HistoryCache": "cache", "CcxtHistory": "history"}


def __getattr__(name: str) -> Any:
    """Import the exchange-history parts (ccxt) on first use."""
    if name in _LAZY:
        return getattr(importlib.import_module(f"reinforcetrade.data.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'reinforcetrade.data' has no attribute {name!r}")


__all__ = [
    "COLUMNS",
    "REGIME_NAMES",
    "CacheWarning",
    "CcxtHistory",
    "DataLoader",
    "Gap",
    "GapReport",
    "HistoryCache",
    "SyntheticMarket",
    "SyntheticParams",
    "ValidationReport",
    "check",
    "find_gaps",
    "generate_market",
    "generate_ohlcv",
    "load_ohlcv",
    "make_ohlcv",
    "read_file",
    "resample",
    "symbol_of",
    "timeframe_of",
    "validate",
    "with_meta",
    "write_ohlcv",
]
