"""`ControlQueue`: requests from other threads (the web API) run on the engine's own thread.

The engine owns its arrays, journal writes and venue calls on one thread. A request to flatten
or to lift a halt is queued with `call`, which blocks the caller until the engine runs it
between two bars (`run_pending`, at each turn of its loop) and hands back the result or the
error. A request the engine never reaches fails with `ControlRefused` when it stops.
"""

from __future__ import annotations

import queue
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from typing import TypeVar

from reinforcetrade.core.errors import UserInputError

T = TypeVar("T")


class ControlRefused(UserInputError):
    """The engine cannot do that now: not running, no position to flatten, not halted."""


class ControlQueue:
    """Work for the engine's thread, queued by others, each waiting for its own answer."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[tuple[Callable[[], object], Future[object]]] = (
            queue.SimpleQueue()
        )
        self._closed: str | None = "the engine is not running"

    def call(self, work: Callable[[], T], *, timeout: float = 30.0) -> T:
        """Run `work` on the engine's thread between bars; return its result or raise its error."""
        if self._closed is not None:
            raise ControlRefused(self._closed)
        done: Future[object] = Future()
        self._queue.put((work, done))
        try:
            return done.result(timeout)  # type: ignore[return-value]
        except FutureTimeout:
            if done.cancel():
                raise ControlRefused(
                    f"the engine did not reach the request within {timeout:.0f} s (is it busy "
                    "or blocked on its feed?); nothing was done"
                ) from None
            return done.result()  # type: ignore[return-value]  # it started: wait for it

    def run_pending(self) -> int:
        """Run every queued request (on the engine's thread); return how many ran."""
        ran = 0
        while True:
            try:
                work, done = self._queue.get_nowait()
            except queue.Empty:
                return ran
            if not done.set_running_or_notify_cancel():
                continue
            ran += 1
            try:
                done.set_result(work())
            except BaseException as exc:  # the caller gets the error; the engine goes on
                done.set_exception(exc)

    def open(self) -> None:
        """Accept requests (the engine started)."""
        self._closed = None

    def close(self, why: str) -> None:
        """Refuse new requests and fail the queued ones with `why` (the engine stopped)."""
        self._closed = why
        while True:
            try:
                _work, done = self._queue.get_nowait()
            except queue.Empty:
                return
            if done.set_running_or_notify_cancel():
                done.set_exception(ControlRefused(why))
