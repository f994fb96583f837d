"""`WebServer`: the app, its engine host and its journal put together and served by uvicorn.

`WebServer.build` checks the settings first (`auth.check_settings`: no weak password, no short
token secret, no public bind without the flag) so a bad configuration never serves a request.
`serve` blocks until SIGINT/SIGTERM (then returns normally); `start_in_thread` serves beside a
caller (tests, benchmarks) on a port it picks, and `stop` ends it; both stop the engine on the
way out.
"""

from __future__ import annotations

import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Self

import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from reinforcetrade.config.sections import WebConfig
from reinforcetrade.storage import Journal
from reinforcetrade.trading.events import EngineEvent
from reinforcetrade.web.app import create_app
from reinforcetrade.web.auth import check_settings
from reinforcetrade.web.host import Builder, EngineHost
from reinforcetrade.web.hub import Hub
from reinforcetrade.web.metrics import EngineMetrics


class _Uvicorn(uvicorn.Server):
    """uvicorn, but a SIGINT/SIGTERM ends `serve` normally instead of being raised again after."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        before = {s: signal.signal(s, self.handle_exit) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, handler in before.items():
                signal.signal(s, handler)


class WebServer:
    """The API and dashboard over one journal, with an engine to run if given a builder."""

    def __init__(self, app: FastAPI, host: EngineHost, journal: Journal, bind: str, port: int):
        self.app = app
        self.host = host
        self.journal = journal
        self.bind = bind
        self.port = port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @classmethod
    def build(
        cls,
        cfg: WebConfig,
        journal: Journal,
        *,
        builder: Builder | None = None,
        journal_url: str | None = None,
        journal_password: SecretStr | None = None,
        bind: str | None = None,
        port: int | None = None,
        max_bars: int | None = None,
        also: Callable[[EngineEvent], None] | None = None,
    ) -> Self:
        """Check the settings, then put the app together (nothing is served yet)."""
        credentials = check_settings(cfg, host=bind)
        metrics = EngineMetrics(CollectorRegistry())
        hub = Hub(cfg.stream_queue)
        host = EngineHost(
            builder,
            journal_url=journal_url,
            hub=hub,
            metrics=metrics,
            journal_password=journal_password,
            max_bars=max_bars,
            also=also,
        )
        app = create_app(cfg, credentials, host, journal)
        return cls(app, host, journal, bind or cfg.host, cfg.port if port is None else port)

    @property
    def url(self) -> str:
        """Return the server's base URL."""
        return f"http://{self.bind}:{self.port}"

    def _config(self) -> uvicorn.Config:
        return uvicorn.Config(
            self.app, host=self.bind, port=self.port, log_level="warning", access_log=False,
            ws="websockets-sansio", ws_per_message_deflate=False, lifespan="on",
            proxy_headers=False, timeout_graceful_shutdown=10,
        )  # fmt: skip

    def serve(self) -> None:
        """Serve until interrupted (SIGINT/SIGTERM), then stop the engine."""
        self._server = _Uvicorn(self._config())
        self._server.run()

    def start_in_thread(self, timeout: float = 20.0) -> Self:
        """Serve on a background thread (port 0: a free one); return once it answers."""
        if self.port == 0:
            with socket.socket() as probe:
                probe.bind((self.bind, 0))
                self.port = int(probe.getsockname()[1])
        server = uvicorn.Server(self._config())
        self._server = server
        self._thread = threading.Thread(target=server.run, name="reinforcetrade-web", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the web server did not start on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 30.0) -> None:
        """Stop serving (and the engine) and wait for the thread."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
