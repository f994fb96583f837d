"""`Hub`: messages from the engine's thread fanned out to every WebSocket client's queue.

`publish` may be called from any thread: the message is encoded to JSON once and handed to the
server's event loop, which puts it on each subscriber's bounded queue. A client too slow to
keep up loses messages rather than stalling the engine or the others; each loss is counted.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable
from typing import Any

from reinforcetrade.core.plain import plain


class Subscription:
    """One client's queue of encoded messages, and how many it lost."""

    def __init__(self, size: int) -> None:
        self.queue: asyncio.Queue[str] = asyncio.Queue(maxsize=size)
        self.dropped = 0


class Hub:
    """Broadcasts JSON messages to subscribers on one asyncio event loop."""

    def __init__(self, queue_size: int = 1_000, on_drop: Callable[[int], None] | None = None):
        self.queue_size = queue_size
        self.on_drop = on_drop
        self.published = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._subscribers: set[Subscription] = set()
        self._lock = threading.Lock()

    @property
    def clients(self) -> int:
        """Return how many clients are subscribed."""
        return len(self._subscribers)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        """Deliver on this event loop (the server's, at startup)."""
        self._loop = loop

    def subscribe(self) -> Subscription:
        """Add a subscriber (on the event loop)."""
        sub = Subscription(self.queue_size)
        with self._lock:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove a subscriber."""
        with self._lock:
            self._subscribers.discard(sub)

    def publish(self, kind: str, data: Any, *, at: float | None = None) -> None:
        """Send `{"type", "time", "data"}` to every subscriber (from any thread)."""
        loop = self._loop
        if loop is None or loop.is_closed() or not self._subscribers:
            return
        stamp = time.time() if at is None else at
        text = json.dumps({"type": kind, "time": stamp, "data": plain(data)}, allow_nan=False)
        self.published += 1
        try:
            loop.call_soon_threadsafe(self._deliver, text)
        except RuntimeError:  # the loop closed meanwhile: the server is going down
            pass

    def _deliver(self, text: str) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        lost = 0
        for sub in subscribers:
            try:
                sub.queue.put_nowait(text)
            except asyncio.QueueFull:
                sub.dropped += 1
                lost += 1
        if lost and self.on_drop is not None:
            self.on_drop(lost)
