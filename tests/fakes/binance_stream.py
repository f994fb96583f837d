"""Binance spot's WebSocket side, on 127.0.0.1 in a background thread, with scripted faults.

Three kinds of connection, told apart by path as on Binance:

- ``/ws`` or ``/ws/<n>``: market streams. ``{"method": "SUBSCRIBE", "params":
  ["btcusdt@kline_1m"], "id": 1}`` is answered ``{"result": null, "id": 1}``; then the
  venue's kline events for those streams arrive (what ccxt.pro's ``watch_ohlcv`` uses).
- ``/ws-api/v3``: the WebSocket API. ``userDataStream.subscribe.signature`` (what ccxt.pro's
  ``watch_orders`` / ``watch_my_trades`` / ``watch_balance`` send for spot) or
  ``session.logon`` + ``userDataStream.subscribe`` start the user data stream: events arrive
  wrapped as ``{"subscriptionId": 0, "event": {...}}``.
- ``/ws/<listenKey>``: the legacy user data stream of a key from ``POST /api/v3/userDataStream``
  (raw events).

Events go out per channel, ``"market"`` or ``"user"``, each with its own faults: `pause`
(silence; events are held, or lost with ``discard=True``, until `resume`), `disconnect`, and
`script` steps for the next events: `Duplicate`, `Hold` (sent after the next events: out of
order), `Lose`, `Disconnect`. `sent` lists what went out, in order.

    stream.script("user", None, Duplicate(), Hold())  # 2nd event twice, 3rd after the 4th
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final, Literal, Protocol, Self
from urllib.parse import urlsplit

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

Json = dict[str, Any]
ChannelName = Literal["market", "user"]
WS_API_PATH: Final[str] = "/ws-api/v3"


@dataclass(frozen=True)
class Item:
    """One event on a channel: market events name their stream (e.g. 'btcusdt@kline_1m')."""

    payload: Json
    stream: str | None = None


class StreamFault(Protocol):
    """Something that changes how one event goes out."""

    def apply(self, item: Item, channel: Channel) -> None:
        """Send, hold, lose or repeat the item through `channel`."""
        ...


@dataclass(frozen=True)
class Duplicate:
    """Send the event `times` times in a row."""

    times: int = 2

    def apply(self, item: Item, channel: Channel) -> None:
        """Send it again and again."""
        for _ in range(self.times):
            channel.deliver(item)


@dataclass(frozen=True)
class Hold:
    """Send the event right after the next `after` events: they overtake it (out of order)."""

    after: int = 1

    def apply(self, item: Item, channel: Channel) -> None:
        """Keep it back until `after` more events have gone."""
        channel.hold(item, self.after)


@dataclass(frozen=True)
class Lose:
    """Never send the event."""

    def apply(self, item: Item, channel: Channel) -> None:
        """Drop it."""
        channel.lost.append(item)


@dataclass(frozen=True)
class Disconnect:
    """Drop the channel's connections instead of sending the event (which is lost)."""

    clean: bool = False

    def apply(self, item: Item, channel: Channel) -> None:
        """Cut the connections."""
        channel.lost.append(item)
        channel.disconnect(clean=self.clean)


@dataclass
class Channel:
    """One kind of event stream ("market" or "user"): its faults and what went out."""

    name: ChannelName
    hub: FakeStream
    steps: deque[StreamFault | None] = field(default_factory=deque)
    sent: list[Item] = field(default_factory=list)
    lost: list[Item] = field(default_factory=list)
    paused: bool = False
    discard: bool = False
    _held: list[tuple[Item, int]] = field(default_factory=list)
    _parked: list[Item] = field(default_factory=list)

    def publish(self, item: Item) -> None:
        """Send an event, unless paused, through the next scripted fault if any."""
        if self.paused:
            (self.lost if self.discard else self._parked).append(item)
            return
        step = self.steps.popleft() if self.steps else None
        if step is None:
            self.deliver(item)
        else:
            step.apply(item, self)

    def deliver(self, item: Item) -> None:
        """Send now to every subscriber, then whatever was held back until after it."""
        self._send(item)
        held = [(late, wait - 1) for late, wait in self._held]
        self._held = [(late, wait) for late, wait in held if wait > 0]
        for late, wait in held:
            if wait <= 0:
                self._send(late)

    def hold(self, item: Item, after: int = 1) -> None:
        """Keep an event back until `after` more events have been delivered."""
        self._held.append((item, after))

    def disconnect(self, *, clean: bool = False) -> None:
        """Drop this channel's connections (clean: a close frame 1001; else a cut)."""
        self.hub.drop(self.name, clean=clean)

    def resume(self) -> list[Item]:
        """Stop the silence; send what was parked; return it."""
        self.paused = False
        parked, self._parked = self._parked, []
        for item in parked:
            self.publish(item)
        return parked

    def _send(self, item: Item) -> None:
        self.sent.append(item)
        self.hub.fan_out(self.name, item)


@dataclass(frozen=True)
class _Cut:
    """A writer's last item: close the connection (clean: a 1001 close frame; else abort)."""

    clean: bool


@dataclass
class _Conn:
    """One client connection and its subscriptions."""

    ws: ServerConnection
    kind: Literal["market", "api", "listen_key"]
    queue: asyncio.Queue[str | _Cut]
    streams: set[str] = field(default_factory=set)
    subscription_ids: set[int] = field(default_factory=set)
    logged_on: bool = False


class FakeStream:
    """A Binance-like WebSocket server on 127.0.0.1 (a free port), run in its own thread.

    Thread-safe: tests and the venue publish from any thread; sending happens on the
    server's event loop, in publication order.
    """

    def __init__(self, now_ms: Callable[[], int]) -> None:
        self._now = now_ms
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self.channels: dict[ChannelName, Channel] = {
            "market": Channel("market", self),
            "user": Channel("user", self),
        }
        self.listen_keys: set[str] = set()
        self.api_requests: list[Json] = []  # every WebSocket API request, as received
        self.errors: list[str] = []
        self._conns: list[_Conn] = []
        self._subscribed_at: dict[str, int] = {}
        self._subscription_ids = itertools.count()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Future[None] | None = None
        self._thread: threading.Thread | None = None
        self._port = 0
        self._started = threading.Event()

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        self._thread = threading.Thread(target=self._run, name="FakeBinanceStream")
        self._thread.start()
        self._started.wait(10)
        if not self._port:
            raise RuntimeError(f"the stream server did not start: {self.errors}")
        return self

    def close(self) -> None:
        """Close every connection and the server, and join its thread."""
        if self._loop is not None and self._stop is not None:
            loop, stop = self._loop, self._stop
            with contextlib.suppress(RuntimeError):  # the loop has already gone
                loop.call_soon_threadsafe(_settle, stop)
        if self._thread is not None:
            self._thread.join()
        self._thread = self._loop = self._stop = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def url(self) -> str:
        """Return the base URL, e.g. 'ws://127.0.0.1:54321'."""
        if not self._port:
            raise RuntimeError("the stream server is not started")
        return f"ws://127.0.0.1:{self._port}"

    # -- faults and inspection -------------------------------------------------------------
    def script(self, channel: ChannelName, *steps: StreamFault | None) -> None:
        """Queue faults for the next events of a channel, one step per event (None: no fault)."""
        with self._lock:
            self.channels[channel].steps.extend(steps)

    def pause(self, channel: ChannelName, *, discard: bool = False) -> None:
        """Go silent on a channel; events are kept for `resume` (or lost if `discard`)."""
        with self._lock:
            self.channels[channel].paused, self.channels[channel].discard = True, discard

    def resume(self, channel: ChannelName) -> list[Item]:
        """End the silence and send what was kept; return those events."""
        with self._lock:
            return self.channels[channel].resume()

    def disconnect(self, channel: ChannelName, *, clean: bool = False) -> None:
        """Drop every connection of a channel now."""
        with self._lock:
            self.channels[channel].disconnect(clean=clean)

    def sent(self, channel: ChannelName) -> list[Json]:
        """Return the events that went out on a channel, in order (repeats included)."""
        with self._lock:
            return [i.payload for i in self.channels[channel].sent]

    def streams(self) -> set[str]:
        """Return the market streams some connection subscribes to."""
        with self._lock:
            return {s for c in self._conns for s in c.streams}

    def user_subscribers(self) -> int:
        """Return how many user data subscriptions are live (WebSocket API and listen keys)."""
        with self._lock:
            return sum(len(c.subscription_ids) + (c.kind == "listen_key") for c in self._conns)

    def subscribed_at(self, stream: str) -> int:
        """Return when (venue ms) a market stream was first subscribed to."""
        with self._lock:
            return self._subscribed_at[stream]

    def wait_subscribed(self, stream: str, timeout: float = 5.0) -> None:
        """Block until a client subscribes to a market stream (e.g. 'btcusdt@kline_1m')."""
        self._wait(lambda: stream in self.streams(), timeout, f"no subscription to {stream}")

    def wait_user_subscribed(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until at least `count` user data subscriptions are live."""
        self._wait(lambda: self.user_subscribers() >= count, timeout, "no user data subscriber")

    def _wait(self, ready: Callable[[], bool], timeout: float, what: str) -> None:
        with self._changed:
            if not self._changed.wait_for(ready, timeout):
                raise TimeoutError(what)

    # -- publishing (any thread) -----------------------------------------------------------
    def publish(self, channel: ChannelName, payload: Json, stream: str | None = None) -> None:
        """Send an event on a channel (through its faults)."""
        with self._lock:
            self.channels[channel].publish(Item(payload, stream))

    def fan_out(self, channel: ChannelName, item: Item) -> None:
        """Queue an event for every connection subscribed to it (called by `Channel`)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._enqueue, channel, item)

    def drop(self, channel: ChannelName, *, clean: bool) -> None:
        """Drop the connections that carry a channel (called by `Channel`)."""
        loop = self._loop
        if loop is not None:
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._drop, channel, clean)

    # -- the event loop thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except Exception as exc:  # reported by start() or the test's errors check
            self.errors.append(repr(exc))
        finally:
            self._started.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = self._loop.create_future()
        server: Server
        async with serve(self._serve, "127.0.0.1", 0, compression=None) as server:
            self._port = int(next(iter(server.sockets)).getsockname()[1])
            self._started.set()
            await self._stop
            with self._lock:
                conns = list(self._conns)
            for conn in conns:
                conn.ws.transport.abort()

    def _enqueue(self, channel: ChannelName, item: Item) -> None:
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            for text in _frames(conn, channel, item):
                conn.queue.put_nowait(text)

    def _drop(self, channel: ChannelName, clean: bool) -> None:
        """Have each connection of the channel close once what is queued for it has gone."""
        kinds = ("market",) if channel == "market" else ("api", "listen_key")
        with self._lock:
            conns = [c for c in self._conns if c.kind in kinds]
        for conn in conns:
            conn.queue.put_nowait(_Cut(clean))

    async def _serve(self, ws: ServerConnection) -> None:
        path = urlsplit(ws.request.path if ws.request else "").path
        key = path.removeprefix("/ws/")
        if path == WS_API_PATH:
            kind: Literal["market", "api", "listen_key"] = "api"
        elif path == "/ws" or path.startswith("/ws/"):
            kind = "listen_key" if key in self.listen_keys else "market"
        else:
            await ws.close(1008, "unknown path")
            return
        conn = _Conn(ws, kind, asyncio.Queue())
        with self._changed:
            self._conns.append(conn)
            self._changed.notify_all()
        writer = asyncio.ensure_future(self._write(conn))
        try:
            async for message in ws:
                reply = self._answer(conn, message)
                if reply is not None:
                    conn.queue.put_nowait(json.dumps(reply))
        except ConnectionClosed:
            pass
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer
            with self._changed:
                self._conns.remove(conn)
                self._changed.notify_all()

    @staticmethod
    async def _write(conn: _Conn) -> None:
        """Send a connection's frames in order; stop at a `_Cut`."""
        with contextlib.suppress(ConnectionClosed):
            while True:
                frame = await conn.queue.get()
                if isinstance(frame, _Cut):
                    if frame.clean:
                        await conn.ws.close(1001, "going away")
                    else:
                        conn.ws.transport.abort()
                    return
                await conn.ws.send(frame)

    def _answer(self, conn: _Conn, message: str | bytes) -> Json | None:
        try:
            request = json.loads(message)
        except ValueError:
            return {"error": {"code": 3, "msg": "Invalid JSON"}, "id": None}
        if not isinstance(request, dict):
            return {"error": {"code": 3, "msg": "Invalid request"}, "id": None}
        if conn.kind == "api":
            return self._api_answer(conn, request)
        return self._market_answer(conn, request)

    def _market_answer(self, conn: _Conn, request: Json) -> Json:
        method, params, rid = request.get("method"), request.get("params") or [], request.get("id")
        with self._changed:
            if method == "SUBSCRIBE":
                conn.streams.update(str(p) for p in params)
                for name in params:
                    self._subscribed_at.setdefault(str(name), self._now())
            elif method == "UNSUBSCRIBE":
                conn.streams.difference_update(str(p) for p in params)
            elif method == "LIST_SUBSCRIPTIONS":
                return {"result": sorted(conn.streams), "id": rid}
            else:
                return {"error": {"code": 2, "msg": f"Invalid request: unknown method {method}"},
                        "id": rid}  # fmt: skip
            self._changed.notify_all()
        return {"result": None, "id": rid}

    def _api_answer(self, conn: _Conn, request: Json) -> Json:
        method, params, rid = request.get("method"), request.get("params") or {}, request.get("id")
        with self._changed:
            self.api_requests.append(request)
            result: Json
            if method == "userDataStream.subscribe.signature" or (
                method == "userDataStream.subscribe" and conn.logged_on
            ):
                sid = next(self._subscription_ids)
                conn.subscription_ids.add(sid)
                result = {"subscriptionId": sid}
            elif method == "session.logon":
                conn.logged_on = True
                result = {"apiKey": params.get("apiKey"), "authorizedSince": self._now(),
                          "connectedSince": self._now(), "returnRateLimits": False,
                          "serverTime": self._now(), "userDataStream": False}  # fmt: skip
            elif method == "userDataStream.unsubscribe":
                gone = params.get("subscriptionId")
                conn.subscription_ids.difference_update(
                    set(conn.subscription_ids) if gone is None else {int(gone)}
                )
                result = {}
            elif method == "ping":
                result = {}
            elif method == "time":
                result = {"serverTime": self._now()}
            else:
                return {"id": rid, "status": 400,
                        "error": {"code": -1022 if method == "userDataStream.subscribe" else -1000,
                                  "msg": f"Unsupported method {method!r} on the fake."}}  # fmt: skip
            self._changed.notify_all()
        return {"id": rid, "status": 200, "result": result, "rateLimits": []}


def _settle(future: asyncio.Future[None]) -> None:
    """Resolve a future unless it already is."""
    if not future.done():
        future.set_result(None)


def _frames(conn: _Conn, channel: ChannelName, item: Item) -> list[str]:
    """Return what one connection receives for one event (nothing if not subscribed)."""
    if channel == "market":
        return [json.dumps(item.payload)] if item.stream in conn.streams else []
    if conn.kind == "listen_key":
        return [json.dumps(item.payload)]
    return [
        json.dumps({"subscriptionId": sid, "event": item.payload})
        for sid in sorted(conn.subscription_ids)
    ]
