"""Market-data feeds for the live engine: closed bars only, one timestamp at a time.

A feed hands the engine every symbol's bar that closed at the same time (`next_bars`), or None
when nothing closed within the timeout — the engine's cue to check for stale data. Bars still
forming are never emitted: a decision on a bar is only ever taken on its close.

`ReplayFeed` plays recorded bars (a file, or the bundled synthetic market) at any speed; the
exchange feeds (REST polling and websocket streams through ccxt) live beside it.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import numpy as np
import pandas as pd

from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data import timeframe_of
from reinforcetrade.data.history import CcxtHistory

T = TypeVar("T")


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

    @property
    def realtime(self) -> bool:
        """Return True if bars arrive as they close in real time (so they can go stale)."""
        ...

    @property
    def finished(self) -> bool:
        """Return True once the feed has nothing more to give (a replay at its end)."""
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


class _Bars:
    """What every feed knows: its symbols and bar length."""

    def __init__(self, symbols: Sequence[str], timeframe: Timeframe) -> None:
        self._symbols = tuple(symbols)
        self._timeframe = timeframe

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols the feed serves."""
        return self._symbols

    @property
    def timeframe(self) -> Timeframe:
        """Return the bar length."""
        return self._timeframe

    @property
    def realtime(self) -> bool:
        """Return True: exchange feeds deliver bars as they close."""
        return True

    @property
    def finished(self) -> bool:
        """Return False: an exchange feed never runs out."""
        return False

    def _aligner(self, start_ns: int | None, clock: Clock) -> Aligner:
        """Return the bar collector, starting at `start_ns` or the bar open now."""
        step = self._timeframe.nanos
        first = start_ns if start_ns is not None else clock.now_ns() // step * step
        return Aligner(self._symbols, self._timeframe, first)


class ReplayFeed(_Bars):
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
        super().__init__(tuple(frames), parse_timeframe(timeframes.pop()))
        self.speed = speed
        self._sleep = sleep
        self._steps = _by_time(frames)
        self._started = False
        self._finished = False

    @property
    def realtime(self) -> bool:
        """Return False: recorded bars are old by nature, never stale."""
        return False

    @property
    def finished(self) -> bool:
        """Return True once every recorded bar has been played."""
        return self._finished

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        """Return the next time's bars after waiting one bar length / speed (None: the end)."""
        bars = next(self._steps, None)
        self._finished = bars is None
        if bars is not None and self._started and math.isfinite(self.speed):
            self._sleep(self._timeframe.nanos / 1e9 / self.speed)
        self._started = True
        return bars

    def close(self) -> None:
        """Stop the replay."""
        self._steps = iter(())
        self._finished = True


def venue_timeframe(
    timeframe: str | Timeframe, names: Mapping[str, T], venue: str, what: str = "bars"
) -> T:
    """Return a venue's own name for a timeframe from its table, or say which ones it has.

    >>> venue_timeframe("1h", {"1h": "H1"}, "OANDA")
    'H1'
    """
    text = parse_timeframe(timeframe).text
    if text not in names:
        raise UserInputError(
            f"{venue} has no {what} for timeframe {text!r}; use one of {', '.join(names)}"
        )
    return names[text]


class ChainFeed:
    """One feed after another: recorded history first (to warm the agents up), then live bars.

    Real time as the second feed is: the history's bars are old, so an engine treats them as
    catching up (decided on, never traded).
    """

    def __init__(self, first: Feed, then: Feed) -> None:
        if (first.symbols, first.timeframe) != (then.symbols, then.timeframe):
            raise UserInputError(
                f"chained feeds must serve the same symbols and timeframe, got "
                f"{first.symbols} {first.timeframe} and {then.symbols} {then.timeframe}"
            )
        self.first, self.then = first, then

    @property
    def symbols(self) -> tuple[str, ...]:
        """Return the symbols the feeds serve."""
        return self.then.symbols

    @property
    def timeframe(self) -> Timeframe:
        """Return the bar length."""
        return self.then.timeframe

    @property
    def realtime(self) -> bool:
        """Return whether the second feed is real time."""
        return self.then.realtime

    @property
    def finished(self) -> bool:
        """Return True once both feeds are done."""
        return self.first.finished and self.then.finished

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        """Return the first feed's next bars while it has any, then the second's."""
        if not self.first.finished:
            bars = self.first.next_bars(timeout)
            if bars is not None:
                return bars
        return self.then.next_bars(timeout)

    def close(self) -> None:
        """Close both feeds."""
        self.first.close()
        self.then.close()


class Aligner:
    """Collects closed bars per symbol and hands over each time once every symbol is past it."""

    def __init__(self, symbols: Sequence[str], timeframe: Timeframe, first_ns: int) -> None:
        self.symbols = tuple(symbols)
        self.step = timeframe.nanos
        self.next = {s: first_ns for s in self.symbols}  # next open time wanted per symbol
        self._queue: dict[int, dict[str, ClosedBar]] = {}
        self._lock = threading.Lock()

    def add(self, bar: ClosedBar) -> None:
        """Queue a closed bar (bars before the symbol's next wanted time are ignored)."""
        with self._lock:
            if bar.ts < self.next[bar.symbol]:
                return
            self._queue.setdefault(bar.ts, {})[bar.symbol] = bar
            self.next[bar.symbol] = bar.ts + self.step

    def advance(self, symbol: str, ns: int) -> None:
        """Record that `symbol` has nothing before `ns` (a quiet market: no bar to wait for)."""
        with self._lock:
            self.next[symbol] = max(self.next[symbol], ns)

    def ready(self) -> list[ClosedBar] | None:
        """Return the earliest complete time's bars, or None."""
        with self._lock:
            if not self._queue:
                return None
            ts = min(self._queue)
            if any(self.next[s] <= ts for s in self.symbols):
                return None  # a symbol has not reported past this time yet
            bars = self._queue.pop(ts)
            return [bars[s] for s in self.symbols if s in bars]

    def clear(self) -> None:
        """Drop queued bars."""
        with self._lock:
            self._queue.clear()


class _PollingFeed(_Bars, ABC):
    """A feed that asks a REST API for closed bars every `poll_seconds` (`_poll` says how)."""

    def __init__(
        self,
        symbols: Sequence[str],
        timeframe: str,
        *,
        start_ns: int | None,
        poll_seconds: float,
        clock: Clock | None,
        sleep: Callable[[float], None],
    ) -> None:
        super().__init__(symbols, parse_timeframe(timeframe))
        self.poll_seconds = poll_seconds
        self._sleep = sleep
        self._bars = self._aligner(start_ns, clock or WallClock())

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        """Poll until a time's bars are complete or `timeout` seconds pass (then None)."""
        waited = 0.0
        while True:
            ready = self._bars.ready()
            if ready is not None:
                return ready
            self._poll()
            ready = self._bars.ready()
            if ready is not None or waited >= timeout:
                return ready
            pause = min(self.poll_seconds, timeout - waited)
            self._sleep(pause)
            waited += pause

    def close(self) -> None:
        """Forget queued bars (the client belongs to the caller)."""
        self._bars.clear()

    @abstractmethod
    def _poll(self) -> None:
        """Ask for the bars closed since each symbol's last one and queue them."""


class CcxtPollingFeed(_PollingFeed):
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
        super().__init__(symbols, timeframe, start_ns=start_ns, poll_seconds=poll_seconds,
                         clock=clock, sleep=sleep)  # fmt: skip

    def _poll(self) -> None:
        for symbol in self._symbols:
            since_ms = self._bars.next[symbol] // 1_000_000
            frame = self.history.fetch(
                symbol, timeframe=self._timeframe.text, since=since_ms, limit=None,
                exchange=self.exchange,
            )  # fmt: skip
            for bar in _bars_of(symbol, frame):
                self._bars.add(bar)


class _PushedFeed(_Bars):
    """A feed whose bars a background thread pushes into its aligner, waking the reader."""

    _bars: Aligner
    _arrived: threading.Event

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        """Return the next complete time's closed bars, or None if none within `timeout` s."""
        deadline = time.monotonic() + timeout
        while True:
            ready = self._bars.ready()
            left = deadline - time.monotonic()
            if ready is not None or left <= 0:
                return ready
            self._arrived.wait(left)
            self._arrived.clear()


class CcxtStreamFeed(_PushedFeed):
    """Closed bars from an exchange's websocket stream (ccxt.pro `watch_ohlcv`).

    A background thread runs one watcher per symbol on its own event loop. ccxt.pro keeps each
    symbol's recent candles; a candle is closed once a later one has arrived. A dropped
    connection is watched again after a capped backoff; nothing arriving within `next_bars`'s
    timeout returns None (the engine's stale-data check).
    """

    def __init__(
        self,
        exchange: Any,
        symbols: Sequence[str],
        timeframe: str,
        *,
        start_ns: int | None = None,
        clock: Clock | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
    ) -> None:
        self.exchange = exchange  # a ccxt.pro exchange; this feed closes it
        super().__init__(symbols, parse_timeframe(timeframe))
        self._bars = self._aligner(start_ns, clock or WallClock())
        self._arrived = threading.Event()
        self.backoff, self.max_backoff = backoff, max_backoff
        self.reconnects = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="rt-stream", daemon=True
        )
        self._thread.start()
        self._tasks = [
            asyncio.run_coroutine_threadsafe(self._watch(symbol), self._loop)
            for symbol in self._symbols
        ]

    def close(self) -> None:
        """Stop the watchers, close the exchange's connections and the loop."""
        if self._loop.is_closed():
            return
        for task in self._tasks:
            task.cancel()
        asyncio.run_coroutine_threadsafe(self.exchange.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _watch(self, symbol: str) -> None:
        delay = self.backoff
        while True:
            try:
                await self.exchange.watch_ohlcv(symbol, self._timeframe.text)
                delay = self.backoff
            except asyncio.CancelledError:
                raise
            except Exception:  # a dropped stream: watch again after a pause
                self.reconnects += 1
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_backoff)
                continue
            candles = self.exchange.ohlcvs.get(symbol, {}).get(self._timeframe.text, [])
            for row in list(candles)[:-1]:  # the last one may still be forming
                self._bars.add(ClosedBar(symbol, int(row[0]) * 1_000_000, *map(float, row[1:6])))
            self._arrived.set()


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
