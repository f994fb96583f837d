"""Core records, protocols, clocks, timeframes and the error hierarchy; imports nothing above it."""

from reinforcetrade.core.clock import Clock, FixedClock, WallClock
from reinforcetrade.core.errors import (
    ConfigError,
    DataError,
    DataIssue,
    DataValidationError,
    ExchangeDataError,
    GapError,
    ReinforceTradeError,
    TimeframeError,
    UserInputError,
)
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe, timeframe_from_nanos

__all__ = [
    "Clock",
    "ConfigError",
    "DataError",
    "DataIssue",
    "DataValidationError",
    "ExchangeDataError",
    "FixedClock",
    "GapError",
    "ReinforceTradeError",
    "Timeframe",
    "TimeframeError",
    "UserInputError",
    "WallClock",
    "parse_timeframe",
    "timeframe_from_nanos",
]
