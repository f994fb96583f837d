"""`create_app`: the FastAPI app — REST API, WebSocket stream, dashboard, metrics, health.

Public (no token): `GET /health`, `POST /api/v1/auth/login`, and the dashboard's static shell
(`GET /`, `GET /static/…`: code, no data). Everything else needs a bearer token; `/metrics` also
takes the static `web.metrics_token`. The OpenAPI schema is at `/api/v1/openapi.json` (with a
token) and from `reinforcetrade serve openapi`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, HTTPException, Request, Response
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from fastapi.responses import HTMLResponse, JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from reinforcetrade import __version__
from reinforcetrade.config.sections import WebConfig
from reinforcetrade.core.plain import plain
from reinforcetrade.storage import Journal
from reinforcetrade.web import reads, views
from reinforcetrade.web.api import Context, Security, _bearer, require_user
from reinforcetrade.web.auth import Credentials, LoginLimiter, TicketBook, TokenSigner
from reinforcetrade.web.cache import ViewCache
from reinforcetrade.web.host import EngineHost
from reinforcetrade.web.metrics import OrderStates, ServerMetrics
from reinforcetrade.web.stream import build_stream

PUBLIC = frozenset(
    {("GET", "/health"), ("POST", "/api/v1/auth/login"), ("GET", "/"), ("GET", "/static/{name}")}
)
_STATIC = ("dashboard.js", "dashboard.css")
_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; connect-src 'self'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; frame-ancestors 'none'",
}


def create_app(
    cfg: WebConfig,
    credentials: Credentials,
    host: EngineHost,
    journal: Journal,
    *,
    registry: CollectorRegistry | None = None,
) -> FastAPI:
    """Return the app serving `host`'s engine and `journal` with these credentials."""
    registry = registry or host.metrics.registry
    metrics = ServerMetrics(registry)
    registry.register(OrderStates(journal, lambda: _run_of(host, journal)))
    host.hub.on_drop = metrics.ws_dropped.inc

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        host.hub.attach(asyncio.get_running_loop())
        yield
        await asyncio.get_running_loop().run_in_executor(None, host.shutdown)

    app = FastAPI(
        title="ReinforceTrade",
        version=__version__,
        description="Watch and steer a ReinforceTrade engine (docs/web.md).",
        openapi_url=None,  # served below, behind a token
        docs_url=None,
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.security = Security(
        credentials,
        TokenSigner(credentials.token_secret, cfg.token_ttl_seconds),
        TicketBook(cfg.ticket_ttl_seconds),
        LoginLimiter(cfg.login_attempts, cfg.login_window_seconds),
    )
    app.state.context = Context(host, journal, metrics, cfg.reports_dir)
    app.state.views = ViewCache(  # with no engine here, another process may write: 1 s at most
        lambda: host.version if host.state == "running" else (host.version, int(time.monotonic()))
    )
    app.include_router(views.public)
    app.include_router(views.private)
    app.include_router(build_stream(host.hub, metrics, lambda: _hello(app, host)))
    if cfg.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(cfg.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
            allow_credentials=False,
        )

    app.add_middleware(Measured, metrics=metrics)

    @app.get("/health", tags=["public"])
    def health() -> dict[str, str]:
        """Whether the server is up (no authentication)."""
        return {"status": "ok", "version": __version__, "engine": host.state}

    @app.get("/metrics", tags=["monitoring"], response_class=Response)
    def scrape(
        request: Request,
        token: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Response:
        """Prometheus metrics (a user's token or web.metrics_token)."""
        security: Security = request.app.state.security
        security.scraper(None if token is None else token.credentials)
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/api/v1/openapi.json", tags=["public"], dependencies=[Depends(require_user)])
    def openapi() -> JSONResponse:
        """The OpenAPI schema of this API."""
        return JSONResponse(schema_of(app))

    @app.get("/", response_class=HTMLResponse, tags=["public"])
    def dashboard() -> HTMLResponse:
        """The dashboard page (its data comes from the API after login)."""
        return HTMLResponse(_asset("index.html"), headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}", tags=["public"], responses={404: {}})
    def static(name: str) -> Response:
        """The dashboard's code: its script and style, and plotly.js from the plotly package."""
        if name == "plotly.min.js":
            return Response(
                _plotly(),
                media_type=_TYPES[".js"],
                headers={"Cache-Control": "public, max-age=86400"},
            )
        if name not in _STATIC:
            raise HTTPException(404, f"no static file {name!r}")
        return Response(
            _asset(name),
            media_type=_TYPES[Path(name).suffix],
            headers={"Cache-Control": "no-cache"},
        )

    return app


class Measured:
    """ASGI middleware: counts and times each request by route and status, adds the headers."""

    def __init__(self, app: ASGIApp, metrics: ServerMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; note its route, status and duration; add the headers."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def answer(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                headers = MutableHeaders(scope=message)
                for name, value in _HEADERS.items():
                    if name not in headers:
                        headers.append(name, value)
            await send(message)

        try:
            await self.app(scope, receive, answer)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            method = str(scope["method"])
            self.metrics.requests.labels(method, path, str(status)).inc()
            self.metrics.seconds.labels(method, path).observe(time.perf_counter() - started)


def schema_of(app: FastAPI) -> dict[str, Any]:
    """Return the app's OpenAPI schema (bearer auth declared)."""
    if app.openapi_schema is None:
        spec = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        app.openapi_schema = spec
    return app.openapi_schema


def openapi_schema() -> dict[str, Any]:
    """Return the API's OpenAPI schema without serving (an app over nothing, never started)."""
    from prometheus_client import CollectorRegistry

    from reinforcetrade.web.hub import Hub
    from reinforcetrade.web.metrics import EngineMetrics

    offline = Credentials("schema", "scrypt$1$1$1$AA$AA", "x" * 32, None)
    host = EngineHost(None, journal_url=None, hub=Hub(), metrics=EngineMetrics(CollectorRegistry()))
    return schema_of(create_app(WebConfig(), offline, host, Journal("sqlite://")))


def _hello(app: FastAPI, host: EngineHost) -> dict[str, Any]:
    """Return what a new stream client first gets: the engine's status and positions."""
    hello = {
        "engine": host.status(),
        "positions": host.positions(),
        "signals": host.signals,
        "last_bar": host.last_bar,
    }
    return dict(plain(hello))


def _run_of(host: EngineHost, journal: Journal) -> int | None:
    """Return the run the metrics describe: the engine's, else the journal's newest."""
    if host.engine is not None:
        return host.engine.run_id
    run = reads.current_run(journal)
    return None if run is None else int(run["id"])


@cache
def _asset(name: str) -> str:
    return resources.files("reinforcetrade.web").joinpath("static", name).read_text("utf-8")


@cache
def _plotly() -> bytes:
    return resources.files("plotly").joinpath("package_data", "plotly.min.js").read_bytes()
