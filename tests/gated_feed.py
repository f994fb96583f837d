"""`GatedFeed`: a replay that delivers bars only up to a gate the test moves (silence between).

`RunningEngine`: an engine on its own thread, as `reinforcetrade serve` runs it, fed through one.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping

import pandas as pd

from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import EngineSummary
from reinforcetrade.trading.feeds import ClosedBar, ReplayFeed


class GatedFeed:
    """A replay that delivers bars only up to a gate the test moves (silence in between)."""

    def __init__(self, frames: Mapping[str, pd.DataFrame], gate: int) -> None:
        self.replay = ReplayFeed(frames)
        self.delivered = 0
        self.gate = gate
        self._moved = threading.Condition()

    symbols = property(lambda self: self.replay.symbols)
    timeframe: Timeframe = parse_timeframe("1h")
    realtime = False
    finished = property(lambda self: self.replay.finished)

    def next_bars(self, timeout: float) -> list[ClosedBar] | None:
        with self._moved:
            if self.delivered >= self.gate:
                self._moved.wait(min(timeout, 0.05))
                if self.delivered >= self.gate:
                    return None
        bars = self.replay.next_bars(timeout)
        if bars is not None:
            self.delivered += 1
        return bars

    def open_to(self, gate: int) -> None:
        with self._moved:
            self.gate = gate
            self._moved.notify_all()

    def close(self) -> None:
        self.replay.close()


class RunningEngine:
    """An engine running on its own thread, fed bar by bar through a `GatedFeed`."""

    def __init__(self, engine: LiveEngine, feed: GatedFeed) -> None:
        self.engine, self.feed = engine, feed
        self.summary: EngineSummary | None = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        self.summary = self.engine.run(poll=0.05)

    def until(self, bars: int) -> None:
        """Let the engine handle bars up to `bars` in all, and wait until it has."""
        self.feed.open_to(bars)
        deadline = time.monotonic() + 120
        while self.engine.stepper.t < bars:
            assert time.monotonic() < deadline, "the engine did not reach the bar"
            assert self.thread.is_alive(), "the engine stopped"
            time.sleep(0.01)

    def stop(self) -> EngineSummary:
        """Ask the engine to stop, let it drain, and return its summary."""
        self.engine.request_stop("test over")
        self.feed.open_to(10**9)
        self.thread.join(60)
        assert self.summary is not None
        return self.summary
