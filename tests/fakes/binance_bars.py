"""Bars of a market built from the prices a test sets: what the trading venue's klines show.

Each `set_price` is a tick (time, price, volume); a bar aggregates the ticks in its period, and a
period without ticks is flat at the previous close with no volume, as on Binance.

    bars = LiveBars(start_ms=0, price=100.0)
    bars.add(30_000, 101.0)
    bars.bar(0, 60_000, now_ms=59_999)  # Bar(open=100.0, high=101.0, low=100.0, close=101.0, ...)
"""

from __future__ import annotations

import bisect
import threading
from typing import NamedTuple


class Bar(NamedTuple):
    """Open, high, low, close, base volume and number of ticks (trades) of one period."""

    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int


class LiveBars:
    """Ticks of one market from `start_ms` on; thread-safe."""

    def __init__(self, start_ms: int, price: float) -> None:
        self.start_ms = start_ms
        self._times: list[int] = [start_ms]
        self._ticks: list[tuple[float, float]] = [(price, 0.0)]
        self._lock = threading.Lock()

    def add(self, time_ms: int, price: float, volume: float = 0.0) -> None:
        """Record a tick (times never go back: an earlier time is taken as the last one)."""
        with self._lock:
            time_ms = max(time_ms, self._times[-1])
            self._times.append(time_ms)
            self._ticks.append((price, volume))

    def add_volume(self, time_ms: int, volume: float) -> None:
        """Record volume traded at the last price."""
        with self._lock:
            price = self._ticks[-1][0]
        self.add(time_ms, price, volume)

    def bar(self, open_ms: int, step_ms: int, now_ms: int) -> Bar:
        """Return the bar opening at `open_ms` as of `now_ms` (partial if still forming)."""
        with self._lock:
            lo = bisect.bisect_left(self._times, open_ms)
            hi = bisect.bisect_right(self._times, min(open_ms + step_ms - 1, now_ms))
            previous = self._ticks[max(lo - 1, 0)][0]
            ticks = self._ticks[lo:hi]
        if not ticks:
            return Bar(previous, previous, previous, previous, 0.0, 0)
        prices = [p for p, _ in ticks]
        first = previous if lo > 0 else prices[0]
        return Bar(
            first,
            max(first, *prices),
            min(first, *prices),
            prices[-1],
            sum(v for _, v in ticks),
            len(ticks),
        )
