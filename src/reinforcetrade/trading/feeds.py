"""Market-data feeds for the live engine: closed bars only, one timestamp at a time.

A feed hands the engine every symbol's bar that closed at the same time (`next_bars`), or None
when nothing closed within the timeout — the engine's cue to check for stale data. Bars still
forming are never emitted: a decision on a bar is only ever taken on its close.

`ReplayFeed` plays recorded bars (a file, or the bundled synthetic market) at any speed; the
exchange feeds (REST polling and websocket streams through ccxt) live beside it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import pandas as pd

from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data import timeframe_of
from reinforcetrade.data.history import CcxtHistory


@dataclass(frozen=True)
class ClosedBar:
    """One symbol's closed bar: open time (epoch ns) and OHLCV."""

    symbol: str
    ts: int
    open: float
    high: float
    low: float
    close: float
    volume: float


class Feed(Protocol):
    """Where the live engine's bars come from."""

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols the feed serves."""
        ...

    @property
    def timeframe(self) -> Timeframe:
        """Return the bar length."""
        ...

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        """Return the bars that closed at the next time, or None if none within `timeout` s."""
        ...

    def close(self) -> None:
        """Release connections."""
        ...


def parse_speed(text: str | float | None) -> float:
    """Return a replay speed factor from '100x', '1', 100 or 'max' (infinite: no waiting).

    >>> parse_speed("100x"), parse_speed("max"), parse_speed(None)
    (100.0, inf, inf)
    """
    if text is None or text == "max":
        return math.inf
    raw = str(text).strip().lower().removesuffix("x")
    try:
        speed = float(raw)
    except ValueError:
        raise UserInputError(f"speed {text!r} is not a factor like 100x or 'max'") from None
    if not speed > 0:
        raise UserInputError(f"speed must be positive, got {text!r}")
    return speed


class ReplayFeed:
    """Plays recorded bars in time order at `speed` times real time (inf: as fast as asked)."""

    def __init__(
        self,
        frames: Mapping[str, pd.DataFrame],
        *,
        speed: float = math.inf,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not frames:
            raise UserInputError("nothing to replay: give at least one symbol's bars")
        timeframes = {str(timeframe_of(f)) for f in frames.values()}
        if len(timeframes) != 1 or "None" in timeframes:
            raise UserInputError(
                f"replayed symbols must share one known timeframe, got {sorted(timeframes)}"
            )
        self._symbols = tuple(frames)
        self._timeframe = parse_timeframe(timeframes.pop())
        self.speed = speed
        self._sleep = sleep
        self._steps = _by_time(frames)
        self._started = False

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols replayed."""
        return self._symbols

    @property
    def timeframe(self) -> Timeframe:
        """Return the bar length."""
        return self._timeframe

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        """Return the next time's bars after waiting one bar length / speed (None: the end)."""
        bars = next(self._steps, None)
        if bars is not None and self._started and math.isfinite(self.speed):
            self._sleep(self._timeframe.nanos / 1e9 / self.speed)
        self._started = True
        return bars

    def close(self) -> None:
        """Stop the replay."""
        self._steps = iter(())


class CcxtPollingFeed:
    """Closed bars polled from an exchange's REST API (ccxt), every symbol of a time together.

    Each poll asks `CcxtHistory` for the bars that closed since the last one seen (retries,
    backoff and the closed-bar rule are its own). A time is handed over once every symbol has a
    closed bar at or after it: a symbol missing at that time had no trades (an exchange gap).
    """

    def __init__(
        self,
        history: CcxtHistory,
        exchange: Any,
        symbols: Sequence[str],
        timeframe: str,
        *,
        start_ns: int | None = None,
        poll_seconds: float = 1.0,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.history = history
        self.exchange = exchange
        self._symbols = tuple(symbols)
        self._timeframe = parse_timeframe(timeframe)
        self.poll_seconds = poll_seconds
        self._clock: Clock = clock or WallClock()
        self._sleep = sleep
        step = self._timeframe.nanos
        first = start_ns if start_ns is not None else self._clock.now_ns() // step * step
        self._next = {s: first for s in self._symbols}  # next open time wanted per symbol
        self._queue: dict[int, dict[str, ClosedBar]] = {}

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols polled."""
        return self._symbols

    @property
    def timeframe(self) -> Timeframe:
        """Return the bar length."""
        return self._timeframe

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        """Poll until a time's bars are complete or `timeout` seconds pass (then None)."""
        waited = 0.0
        while True:
            ready = self._ready()
            if ready is not None:
                return ready
            self._poll()
            ready = self._ready()
            if ready is not None or waited >= timeout:
                return ready
            pause = min(self.poll_seconds, timeout - waited)
            self._sleep(pause)
            waited += pause

    def close(self) -> None:
        """Forget queued bars (the exchange object belongs to the caller)."""
        self._queue.clear()

    def _poll(self) -> None:
        for symbol in self._symbols:
            since_ms = self._next[symbol] // 1_000_000
            frame = self.history.fetch(
                symbol, timeframe=self._timeframe.text, since=since_ms, limit=None,
                exchange=self.exchange,
            )  # fmt: skip
            for bar in _bars_of(symbol, frame):
                self._queue.setdefault(bar.ts, {})[symbol] = bar
                self._next[symbol] = max(self._next[symbol], bar.ts + self._timeframe.nanos)

    def _ready(self) -> list[ClosedBar] | None:
        if not self._queue:
            return None
        ts = min(self._queue)
        if any(self._next[s] <= ts for s in self._symbols):
            return None  # a symbol has not reported past this time yet
        bars = self._queue.pop(ts)
        return [bars[s] for s in self._symbols if s in bars]


def _bars_of(symbol: str, frame: pd.DataFrame) -> list[ClosedBar]:
    """Return a frame's rows as closed bars."""
    if not len(frame):
        return []
    times = pd.DatetimeIndex(frame.index).asi8
    values = frame[["open", "high", "low", "close", "volume"]].to_numpy(dtype=np.float64)
    return [
        ClosedBar(symbol, int(t), *(float(x) for x in v))
        for t, v in zip(times, values, strict=True)
    ]


def _by_time(frames: Mapping[str, pd.DataFrame]) -> Iterator[list[ClosedBar]]:
    """Yield, per bar time, every symbol's bar at that time."""
    columns = ("open", "high", "low", "close", "volume")
    rows: list[tuple[int, str, np.ndarray]] = []
    for symbol, frame in frames.items():
        times = pd.DatetimeIndex(frame.index).asi8
        values = frame[list(columns)].to_numpy(dtype=np.float64)
        rows.extend((int(t), symbol, v) for t, v in zip(times, values, strict=True))
    rows.sort(key=lambda r: (r[0], list(frames).index(r[1])))
    batch: list[ClosedBar] = []
    for ts, symbol, v in rows:
        if batch and batch[0].ts != ts:
            yield batch
            batch = []
        batch.append(ClosedBar(symbol, ts, *(float(x) for x in v)))
    if batch:
        yield batch
