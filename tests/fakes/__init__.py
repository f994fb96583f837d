"""Fake venue servers for tests: real HTTP on 127.0.0.1 that real client libraries talk to.

`FakeServer` is the reusable part: it routes requests to handlers, records every request,
and plays scripted faults (`Stall`, `Truncated`, `BadField`, `ServerError`, `Canned`, or any
object with an `apply` method) on the next requests to a path. A venue (see `binance.py`)
subclasses it and registers its routes.

    with FakeBinance(clock) as venue:
        venue.script("/api/v3/klines", None, RateLimited(), Stall(2.0))
        ...  # the 2nd klines request gets a 429, the 3rd hangs past the client timeout
        assert venue.paths().count("/api/v3/klines") == 4
"""

from __future__ import annotations

import json
import socket
import struct
import threading
import traceback
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol, Self
from urllib.parse import parse_qsl, urlsplit


@dataclass(frozen=True)
class Request:
    """One request as the server received it."""

    method: str
    path: str
    query: dict[str, str]
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    def int(self, name: str) -> int | None:
        """Return a query parameter as an integer, or None when absent."""
        value = self.query.get(name)
        return None if value is None else int(value)


@dataclass(frozen=True)
class Reply:
    """What the server sends back."""

    status: int
    body: bytes
    content_type: str = "application/json;charset=UTF-8"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, payload: object, status: int = 200, **headers: str) -> Reply:
        """Return a JSON reply."""
        return cls(status, json.dumps(payload).encode(), headers=tuple(headers.items()))

    @classmethod
    def text(cls, status: int, text: str, content_type: str = "text/html") -> Reply:
        """Return a plain-text or HTML reply (what gateways send on errors)."""
        return cls(status, text.encode(), content_type=content_type)


#: what a fault returns to reset the connection instead of answering
DROPPED: Final[Reply] = Reply(0, b"", content_type="")


def reset(handler: BaseHTTPRequestHandler) -> None:
    """Close the connection with a TCP reset instead of an answer."""
    handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    handler.close_connection = True


Answer = Callable[[Request], Reply]
Route = Callable[[Request], Reply]


class Fault(Protocol):
    """Something that replaces or spoils the server's normal answer to one request."""

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Return the reply to send; `answer(request)` gives the normal one."""
        ...


@dataclass(frozen=True)
class Stall:
    """Wait `seconds` before answering (past the client's timeout); cut short on shutdown."""

    seconds: float

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Wait, then answer normally (the client has usually gone by then)."""
        server.wait(self.seconds)
        return answer(request)


@dataclass(frozen=True)
class Truncated:
    """Send only the first `fraction` of the normal body: unparsable JSON."""

    fraction: float = 0.5

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Answer normally, then cut the body."""
        reply = answer(request)
        cut = max(1, int(len(reply.body) * self.fraction))
        return Reply(reply.status, reply.body[:cut], reply.content_type, reply.headers)


@dataclass(frozen=True)
class BadField:
    """Replace one field of one row of a JSON list-of-lists body (e.g. a price that is 'abc')."""

    row: int = 0
    field: int = 2
    value: object = "abc"

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Answer normally, then spoil the field."""
        reply = answer(request)
        rows = json.loads(reply.body)
        if rows:
            rows[min(self.row, len(rows) - 1)][self.field] = self.value
        return Reply(reply.status, json.dumps(rows).encode(), reply.content_type, reply.headers)


@dataclass(frozen=True)
class ServerError:
    """Answer with a 5xx and an HTML body, as a load balancer in trouble does."""

    status: int = 503

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Return the error page without asking the venue."""
        return Reply.text(self.status, f"<html><body><h1>{self.status} Service Unavailable</h1>")


@dataclass(frozen=True)
class Canned:
    """Send a fixed reply instead of the normal one (e.g. a venue's error body)."""

    reply: Reply

    def apply(self, request: Request, answer: Answer, server: FakeServer) -> Reply:
        """Return the canned reply."""
        return self.reply


@dataclass
class _Script:
    """Steps for successive requests to one path; None lets a request through unharmed."""

    steps: deque[Fault | None] = field(default_factory=deque)


class _Handler(BaseHTTPRequestHandler):
    """Hands every request to the owning FakeServer; one request per connection (HTTP/1.0)."""

    protocol_version = "HTTP/1.0"
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.fake.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.fake.handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.fake.handle(self, "PUT")

    def do_DELETE(self) -> None:
        self.server.fake.handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        """Keep test output quiet; requests are recorded instead."""


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins every handler thread: nothing outlives a test
    block_on_close = True

    def __init__(self, fake: FakeServer) -> None:
        self.fake = fake
        super().__init__(("127.0.0.1", 0), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        self.fake.errors.append(traceback.format_exc())


class FakeServer:
    """A real HTTP server on 127.0.0.1 (a free port) that answers registered routes.

    Use it as a context manager; `close()` stops it and joins all its threads.
    """

    def __init__(self) -> None:
        self._routes: dict[tuple[str, str], Route] = {}
        self._scripts: dict[str, _Script] = {}
        self._requests: list[Request] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self.errors: list[str] = []  # tracebacks raised inside the server (a test asserts none)
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Self:
        """Bind a free port on 127.0.0.1 and serve in a background thread."""
        self._httpd = _HTTPServer(self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{type(self).__name__}:{self.port}",
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving, wake stalled handlers, close the socket and join every thread."""
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def port(self) -> int:
        """Return the bound port."""
        if self._httpd is None:
            raise RuntimeError("the server is not started")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        """Return the base URL, e.g. 'http://127.0.0.1:54321'."""
        return f"http://127.0.0.1:{self.port}"

    def wait(self, seconds: float) -> None:
        """Sleep up to `seconds`, returning at once when the server is shutting down."""
        self._stopping.wait(seconds)

    # -- behaviour -------------------------------------------------------------------------
    def route(self, method: str, path: str, handler: Route) -> None:
        """Answer `method path` with `handler(request)`."""
        self._routes[(method.upper(), path)] = handler

    def script(self, path: str, *steps: Fault | None) -> None:
        """Queue faults for the next requests to `path`, one step per request (None: no fault)."""
        with self._lock:
            self._scripts.setdefault(path, _Script()).steps.extend(steps)

    def pending(self, path: str) -> int:
        """Return how many scripted steps for `path` have not been played yet."""
        with self._lock:
            return len(self._scripts.get(path, _Script()).steps)

    # -- what was asked --------------------------------------------------------------------
    @property
    def requests(self) -> list[Request]:
        """Return a copy of every request received, in order."""
        with self._lock:
            return list(self._requests)

    def requests_to(self, path: str) -> list[Request]:
        """Return the requests received for one path."""
        return [r for r in self.requests if r.path == path]

    def paths(self) -> list[str]:
        """Return the path of every request received, in order."""
        return [r.path for r in self.requests]

    def clear(self) -> None:
        """Forget the requests received so far."""
        with self._lock:
            self._requests.clear()

    # -- serving ---------------------------------------------------------------------------
    def not_found(self, request: Request) -> Reply:
        """Return the reply for an unknown route (venues override it with their own format)."""
        return Reply.text(404, f"no route for {request.method} {request.path}", "text/plain")

    def answer(self, request: Request) -> Reply:
        """Return the normal reply: the route's handler, or `not_found`."""
        handler = self._routes.get((request.method, request.path))
        return handler(request) if handler is not None else self.not_found(request)

    def handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        """Record the request, play its step ("METHOD path" script first, then "path"), reply.

        A venue may take a request over entirely (a stream) in `serve_raw`; a fault answering
        `DROPPED` resets the connection instead of replying.
        """
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in handler.headers.items()}
        request = Request(method, parts.path, dict(parse_qsl(parts.query)), body, headers)
        with self._lock:
            self._requests.append(request)
            step = self._next_step(f"{method} {request.path}", request.path)
        if step is None and self.serve_raw(handler, request):
            return
        try:
            reply = step.apply(request, self.answer, self) if step else self.answer(request)
        except Exception:
            self.errors.append(traceback.format_exc())
            reply = Reply.text(500, "fake server error", "text/plain")
        if reply is DROPPED:
            reset(handler)
        else:
            self._send(handler, reply)

    def serve_raw(self, handler: BaseHTTPRequestHandler, request: Request) -> bool:
        """Serve a request by writing to the connection directly; return True if it did."""
        return False

    def _next_step(self, *keys: str) -> Fault | None:
        """Pop the next scripted step of the first key that has one (caller holds the lock)."""
        for key in keys:
            script = self._scripts.get(key)
            if script is not None and script.steps:
                return script.steps.popleft()
        return None

    @staticmethod
    def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
        try:
            handler.send_response(reply.status)
            handler.send_header("Content-Type", reply.content_type)
            handler.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout test): nothing to deliver
