"""OANDA market data: a polling candle feed, a pricing-stream feed, and history for warm-up.

`OandaCandleFeed` polls complete mid candles (`GET /v3/instruments/{i}/candles?price=M`);
`OandaStreamFeed` aggregates the pricing stream's mid prices into bars on a background thread;
`oanda_history` loads complete candles as a contract OHLCV frame. Candles are aligned to UTC
(`dailyAlignment=0`), so daily and 4-hour bars open where our timeframes do. Volume is tick
volume (the number of price updates), the only volume OANDA has.
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.timeframes import Timeframe, parse_timeframe
from reinforcetrade.data.schema import make_ohlcv
from reinforcetrade.trading.broker import BrokerUnavailable
from reinforcetrade.trading.feeds import (
    Aligner,
    ClosedBar,
    _PollingFeed,
    _PushedFeed,
    venue_timeframe,
)
from reinforcetrade.trading.oanda import OandaBroker
from reinforcetrade.trading.oanda_wire import Candle, from_wire, parse_time

log = logging.getLogger(__name__)

#: our timeframes and OANDA's candle granularities
GRANULARITIES: dict[str, str] = {
    "1m": "M1", "5m": "M5", "15m": "M15", "30m": "M30", "1h": "H1", "4h": "H4", "1d": "D",
}  # fmt: skip


def granularity(timeframe: str | Timeframe) -> str:
    """Return OANDA's granularity for a timeframe ('1h' -> 'H1').

    >>> granularity("4h")
    'H4'
    """
    return venue_timeframe(timeframe, GRANULARITIES, "OANDA", "candles")


def _bar(symbol: str, candle: Candle) -> ClosedBar:
    return ClosedBar(symbol, candle.ts, candle.open, candle.high, candle.low, candle.close,
                     candle.volume)  # fmt: skip


def oanda_history(
    broker: OandaBroker,
    symbol: str,
    timeframe: str,
    start_ns: int,
    end_ns: int,
    *,
    page: int = 5000,
) -> pd.DataFrame:
    """Return the complete mid candles opening in [start_ns, end_ns) as an OHLCV frame."""
    tf = parse_timeframe(timeframe)
    code = granularity(tf)
    bars: list[Candle] = []
    cursor = tf.ceil(start_ns)
    while cursor < end_ns:
        got = broker.candles(symbol, code, start_ns=cursor, count=page)
        done = [c for c in got if c.complete and cursor <= c.ts < end_ns]
        bars.extend(done)
        if len(got) < page or len(done) < len(got) or not done:
            break  # the last page, an incomplete candle, or the end of the window
        cursor = done[-1].ts + tf.nanos
    rows = np.array([c[1:6] for c in bars], dtype=np.float64).reshape(-1, 5)
    times = np.array([c.ts for c in bars], dtype=np.int64)
    return make_ohlcv(times, *rows.T, symbol=symbol, timeframe=tf)


class OandaCandleFeed(_PollingFeed):
    """Complete mid candles polled from OANDA, every symbol of a time handed over together.

    An unavailable venue (after the broker's read retries) is logged and the poll skipped:
    `next_bars` then returns None, the engine's cue to check for stale data.
    """

    def __init__(
        self,
        broker: OandaBroker,
        symbols: Sequence[str],
        timeframe: str,
        *,
        start_ns: int | None = None,
        poll_seconds: float = 5.0,
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.broker = broker
        self._granularity = granularity(timeframe)
        super().__init__(symbols, timeframe, start_ns=start_ns, poll_seconds=poll_seconds,
                         clock=clock, sleep=sleep)  # fmt: skip

    def _poll(self) -> None:
        for symbol in self._symbols:
            since = self._bars.next[symbol]
            try:
                candles = self.broker.candles(symbol, self._granularity, start_ns=since)
            except BrokerUnavailable as exc:
                log.warning("OANDA candles for %s unavailable: %s", symbol, exc)
                return
            for candle in candles:
                if not candle.complete:
                    break  # the one still forming, and nothing after it
                self._bars.add(_bar(symbol, candle))


@dataclass
class _Forming:
    """A bar being built from stream prices."""

    ts: int
    open: float
    high: float
    low: float
    close: float
    ticks: int = 1

    def add(self, price: float) -> None:
        self.high, self.low = max(self.high, price), min(self.low, price)
        self.close = price
        self.ticks += 1


class OandaStreamFeed(_PushedFeed):
    """Bars of mid prices from OANDA's pricing stream, built on a background thread.

    A bar closes when a price or heartbeat arrives at or after its end. Without `start_ns` the
    first bar is the next one to open (a bar already under way was only partly seen). A dropped
    or silent stream (nothing within `read_timeout`; OANDA sends a heartbeat every 5 s) is
    reopened after a capped backoff; prices missed meanwhile are missing from their bar.
    """

    def __init__(
        self,
        broker: OandaBroker,
        symbols: Sequence[str],
        timeframe: str,
        *,
        start_ns: int | None = None,
        clock: Clock | None = None,
        backoff: float = 0.5,
        max_backoff: float = 10.0,
        read_timeout: float = 20.0,
    ) -> None:
        self.broker = broker
        super().__init__(symbols, parse_timeframe(timeframe))
        now = (clock or WallClock()).now_ns()
        first = start_ns if start_ns is not None else self._timeframe.ceil(now)
        self._bars = Aligner(self._symbols, self._timeframe, first)
        self.backoff, self.max_backoff, self.read_timeout = backoff, max_backoff, read_timeout
        self.reconnects = 0
        self.last_error: str | None = None
        self._forming: dict[str, _Forming] = {}
        self._arrived = threading.Event()
        self._stop = threading.Event()
        self._socket: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="rt-oanda-stream", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop the stream thread and drop its connection."""
        self._stop.set()
        sock = self._socket
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)  # wakes the thread blocked in recv
            except OSError:
                pass
        self._thread.join(timeout=self.read_timeout + 5)

    def _run(self) -> None:
        delay = self.backoff
        while not self._stop.is_set():
            try:
                with self.broker.pricing_stream(self._symbols, read_timeout=self.read_timeout) as r:
                    stream = r.extensions.get("network_stream")
                    self._socket = None if stream is None else stream.get_extra_info("socket")
                    for line in r.iter_lines():
                        if self._stop.is_set():
                            return
                        if line.strip() and self._on_line(line):
                            delay = self.backoff  # the stream works: the next drop starts over
            except Exception as exc:  # a dropped, silent or refused stream: reopen it
                self.last_error = self.broker.scrub(f"{type(exc).__name__}: {exc}")
            finally:
                self._socket = None
            if self._stop.is_set():
                return
            self.reconnects += 1
            log.warning(
                "OANDA pricing stream lost (%s); reopening in %.1fs", self.last_error, delay
            )
            self._stop.wait(delay)
            delay = min(delay * 2, self.max_backoff)

    def _on_line(self, line: str) -> bool:
        """Handle one stream message; return True if it was understood."""
        try:
            msg: dict[str, Any] = json.loads(line)
            at = parse_time(str(msg["time"]))
        except (ValueError, KeyError, TypeError):
            log.warning("OANDA pricing stream sent an unreadable line: %.120s", line)
            return False
        self._close_through(at)
        if msg.get("type") == "PRICE":
            symbol, mid = from_wire(str(msg.get("instrument", ""))), _mid(msg)
            if symbol in self._symbols and mid is not None:
                self._tick(symbol, at, mid)
        self._arrived.set()
        return True

    def _tick(self, symbol: str, at: int, price: float) -> None:
        ts = self._timeframe.floor(at)
        bar = self._forming.get(symbol)
        if bar is None:
            self._forming[symbol] = _Forming(ts, price, price, price, price)
        elif ts == bar.ts:
            bar.add(price)

    def _close_through(self, at: int) -> None:
        """Hand every bar that ended at or before `at` to the aligner."""
        step = self._timeframe.nanos
        for symbol in self._symbols:
            bar = self._forming.get(symbol)
            if bar is not None and bar.ts + step <= at:
                del self._forming[symbol]
                self._bars.add(ClosedBar(symbol, bar.ts, bar.open, bar.high, bar.low, bar.close,
                                         float(bar.ticks)))  # fmt: skip
        # a symbol without prices in a bar has no bar there (as in OANDA's candles): mark it
        # as past that time so the other symbols' bars are not held back waiting for it
        boundary = self._timeframe.floor(at)
        for symbol in self._symbols:
            if symbol not in self._forming:
                self._bars.advance(symbol, boundary)


def _mid(msg: dict[str, Any]) -> float | None:
    """Return the mid of the best bid and ask (or the closeout prices), if any."""
    bids, asks = msg.get("bids") or [], msg.get("asks") or []
    bid = bids[0].get("price") if bids else msg.get("closeoutBid")
    ask = asks[0].get("price") if asks else msg.get("closeoutAsk")
    if bid is None or ask is None:
        return None
    return (float(bid) + float(ask)) / 2
