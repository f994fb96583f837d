"""`GatedFeed`: a replay that delivers bars only up to a gate the test moves (silence between)."""

from __future__ import annotations

import threading
from collections.abc import Mapping

import pandas as pd

from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
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
