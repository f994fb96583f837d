"""Interactive Brokers market data: a polling bar feed and history for warm-up.

`IbBarFeed` polls historical bars (`reqHistoricalData`, TRADES for stocks and futures, MIDPOINT
for forex) and hands over closed bars only; `ib_history` loads complete bars as a contract OHLCV
frame, in pieces no longer than IB allows per request. Both go through the broker's
historical-data pacer (IB refuses more than 60 requests per 10 minutes with a pacing
violation). Bars open on IB's boundaries, which for intraday sizes are the UTC ones we use.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from reinforcetrade.core.clock import Clock
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data.schema import make_ohlcv
from reinforcetrade.trading.broker import BrokerError
from reinforcetrade.trading.feeds import ClosedBar, _PollingFeed, venue_timeframe
from reinforcetrade.trading.ib import IbBar, IbBroker, duration_of

log = logging.getLogger(__name__)

#: our timeframes, IB's bar sizes, and the longest span (seconds) one request may ask for
BAR_SIZES: dict[str, tuple[str, int]] = {
    "1m": ("1 min", 86_400), "5m": ("5 mins", 7 * 86_400), "15m": ("15 mins", 14 * 86_400),
    "30m": ("30 mins", 28 * 86_400), "1h": ("1 hour", 28 * 86_400),
    "4h": ("4 hours", 28 * 86_400), "1d": ("1 day", 365 * 86_400),
}  # fmt: skip


def bar_size(timeframe: str | Timeframe) -> str:
    """Return IB's bar size for a timeframe ('5m' -> '5 mins').

    >>> bar_size("1h")
    '1 hour'
    """
    return venue_timeframe(timeframe, BAR_SIZES, "IB")[0]


def ib_history(
    broker: IbBroker, symbol: str, timeframe: str, start_ns: int, end_ns: int
) -> pd.DataFrame:
    """Return the complete bars opening in [start_ns, end_ns) as an OHLCV frame."""
    tf = parse_timeframe(timeframe)
    size = bar_size(tf)
    span = BAR_SIZES[tf.text][1] * 1_000_000_000
    now = broker.clock.now_ns()
    start, end = tf.ceil(start_ns), min(end_ns, now)
    got: dict[int, IbBar] = {}
    cursor = end
    while cursor > start:
        piece = min(span, cursor - start)
        for bar in broker.history(symbol, size, end_ns=cursor, duration=duration_of(piece / 1e9)):
            if start <= bar.ts and bar.ts + tf.nanos <= end:
                got[bar.ts] = bar
        cursor -= piece
    bars = [got[t] for t in sorted(got)]
    rows = np.array([(b.open, b.high, b.low, b.close, b.volume) for b in bars], dtype=np.float64)
    times = np.array([b.ts for b in bars], dtype=np.int64)
    return make_ohlcv(times, *rows.reshape(-1, 5).T, symbol=symbol, timeframe=tf)


class IbBarFeed(_PollingFeed):
    """Closed bars polled from IB's historical data, every symbol of a time handed over together.

    A poll asks, per symbol, for the bars since the last one handed over, once a new bar can have
    closed (no request otherwise). The bar still forming is dropped. A symbol with no bar in a
    window more than one bar old (no trades) is taken as quiet, so the others are not held up.
    An unavailable TWS (after the broker's retries) skips the poll: `next_bars` returns None,
    the engine's cue to check for stale data.
    """

    def __init__(
        self,
        broker: IbBroker,
        symbols: Sequence[str],
        timeframe: str,
        *,
        start_ns: int | None = None,
        poll_seconds: float = 5.0,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.broker = broker
        self._size = bar_size(timeframe)
        self._clock = clock or broker.clock
        super().__init__(symbols, timeframe, start_ns=start_ns, poll_seconds=poll_seconds,
                         clock=self._clock, sleep=sleep)  # fmt: skip

    def _poll(self) -> None:
        step = self._timeframe.nanos
        now = self._clock.now_ns()
        forming = now // step * step
        for symbol in self._symbols:
            since = self._bars.next[symbol]
            if since + step > now:
                continue  # nothing can have closed yet
            duration = duration_of((now - since) / 1e9)
            try:
                bars = self.broker.history(symbol, self._size, end_ns=None, duration=duration)
            except BrokerError as exc:
                log.warning("IB bars for %s unavailable: %s", symbol, exc)
                return
            for bar in bars:
                if bar.ts >= since and bar.ts + step <= now:
                    self._bars.add(ClosedBar(symbol, bar.ts, bar.open, bar.high, bar.low,
                                             bar.close, bar.volume))  # fmt: skip
            self._bars.advance(symbol, forming - step)
