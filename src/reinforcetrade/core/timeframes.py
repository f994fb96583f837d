"""Timeframe strings ('1m', '4h', '1d', '1w', '1M') and their bar grids."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

import numpy as np

from reinforcetrade.core.errors import TimeframeError

_UNIT_NS: Final[dict[str, int]] = {
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
    "d": 86_400 * 1_000_000_000,
    "w": 7 * 86_400 * 1_000_000_000,
}
_PATTERN: Final = re.compile(r"^\s*(\d+)\s*([smhdwM])\s*$")
# 1970-01-01 was a Thursday; weekly bars open on Mondays (as on Binance and most venues).
_WEEK_ORIGIN_NS: Final[int] = 4 * 86_400 * 1_000_000_000
_PANDAS_UNIT: Final[dict[str, str]] = {"s": "s", "m": "min", "h": "h", "d": "D", "w": "W-MON"}


@dataclass(frozen=True, slots=True)
class Timeframe:
    """A bar length such as 1m or 4h; `months` is set only for calendar-month bars."""

    text: str
    count: int
    unit: str

    @property
    def is_monthly(self) -> bool:
        """Return True for calendar-month bars, whose length varies."""
        return self.unit == "M"

    @property
    def nanos(self) -> int:
        """Return the bar length in nanoseconds (the nominal 30 days for months)."""
        if self.is_monthly:
            return self.count * 30 * _UNIT_NS["d"]
        return self.count * _UNIT_NS[self.unit]

    @property
    def millis(self) -> int:
        """Return the bar length in milliseconds, as ccxt counts it."""
        return self.nanos // 1_000_000

    @property
    def origin_ns(self) -> int:
        """Return the epoch offset of the bar grid (Mondays for weeks, else the Unix epoch)."""
        return _WEEK_ORIGIN_NS if self.unit == "w" else 0

    @property
    def pandas_freq(self) -> str:
        """Return the equivalent pandas offset alias, e.g. '4h' or '1W-MON'."""
        if self.is_monthly:
            return f"{self.count}MS"
        return f"{self.count}{_PANDAS_UNIT[self.unit]}"

    def floor(self, ns: int) -> int:
        """Return the open (epoch ns) of the bar that contains the instant `ns`.

        >>> one_month = parse_timeframe("1M")
        >>> one_month.floor(1_710_496_800 * 10**9) == 1_709_251_200 * 10**9  # mid-March → 1 March
        True
        """
        if self.is_monthly:
            return _month_start(_month_index(ns) // self.count * self.count)
        return self.origin_ns + (ns - self.origin_ns) // self.nanos * self.nanos

    def shift(self, ns: int, bars: int) -> int:
        """Return the open `bars` bars after the bar containing `ns` (before it when negative)."""
        if self.is_monthly:
            return _month_start(_month_index(self.floor(ns)) + bars * self.count)
        return self.floor(ns) + bars * self.nanos

    def ceil(self, ns: int) -> int:
        """Return the first bar open at or after `ns`."""
        floor = self.floor(ns)
        return floor if floor == ns else self.shift(floor, 1)

    def bars_between(self, start: int, end: int) -> int:
        """Return how many bar opens lie in ``[start, end)``, for a bar-aligned `start`."""
        if end <= start:
            return 0
        if self.is_monthly:
            return (_month_index(self.ceil(end)) - _month_index(start)) // self.count
        return -(-(end - start) // self.nanos)

    def __str__(self) -> str:
        return self.text


def _month_index(ns: int) -> int:
    """Return the calendar month of an instant, counted from 1970-01."""
    return int(np.datetime64(ns, "ns").astype("datetime64[M]").astype(np.int64))


def _month_start(month: int) -> int:
    """Return the first instant (epoch ns) of a month counted from 1970-01."""
    return int(np.datetime64(month, "M").astype("datetime64[ns]").astype(np.int64))


def parse_timeframe(text: str | Timeframe) -> Timeframe:
    """Parse a timeframe such as '15m', '1h', '1d', '1w' or '1M' (minutes are 'm', months 'M').

    >>> parse_timeframe("4h").nanos == 4 * 3600 * 10**9
    True
    """
    if isinstance(text, Timeframe):
        return text
    match = _PATTERN.match(str(text))
    if match is None or int(match.group(1)) <= 0:
        raise TimeframeError(
            f"timeframe {text!r} is not understood; use a count and a unit, e.g. "
            "'1m', '5m', '15m', '1h', '4h', '1d', '1w' or '1M' (m = minutes, M = months)"
        )
    count, unit = int(match.group(1)), match.group(2)
    return Timeframe(text=f"{count}{unit}", count=count, unit=unit)


def timeframe_from_nanos(nanos: int) -> Timeframe:
    """Return the largest-unit timeframe text for a bar length in nanoseconds.

    >>> timeframe_from_nanos(3_600_000_000_000).text
    '1h'
    """
    if nanos <= 0:
        raise TimeframeError(f"a bar length must be positive, got {nanos} ns")
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_NS[unit]
        if nanos % size == 0:
            return parse_timeframe(f"{nanos // size}{unit}")
    raise TimeframeError(f"bar length {nanos} ns is not a whole number of seconds")
