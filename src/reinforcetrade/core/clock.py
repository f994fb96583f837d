"""Clocks: time is injected, never read from a global (`datetime.now()` is banned)."""

from __future__ import annotations

import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Anything that tells the current time as Unix epoch nanoseconds (UTC)."""

    def now_ns(self) -> int:
        """Return the current time in nanoseconds since the Unix epoch."""
        ...


class WallClock:
    """The machine's real-time clock."""

    def now_ns(self) -> int:
        """Return the wall-clock time in nanoseconds since the Unix epoch."""
        return time.time_ns()


class FixedClock:
    """A clock that stands still until moved: for tests and replays."""

    def __init__(self, now_ns: int) -> None:
        self._now = int(now_ns)

    def now_ns(self) -> int:
        """Return the clock's current time."""
        return self._now

    def advance(self, nanos: int) -> None:
        """Move the clock forward by `nanos` nanoseconds."""
        if nanos < 0:
            raise ValueError("a clock never goes backwards")
        self._now += int(nanos)

    def set(self, now_ns: int) -> None:
        """Move the clock to `now_ns` (not earlier than now)."""
        if now_ns < self._now:
            raise ValueError("a clock never goes backwards")
        self._now = int(now_ns)
