"""The API fuzzed with schemathesis against its own OpenAPI schema: no 500s, token or none.

One real server (uvicorn on 127.0.0.1) over a paper engine that has handled 900 bars (decisions,
orders and an open position in its journal), a saved backtest and a reports folder, so the views
have rows to page, filter and shape. Every operation of the schema the server serves is fuzzed
(schemathesis's examples, coverage and fuzzing phases, positive and negative data, and the
methods an operation does not have):

- with a valid token: no answer is a server error, and the answers' content types, bodies and
  headers are the ones the schema declares;
- without a token: every operation outside the public set answers 401 (never a 5xx, never data),
  a method the path does not have 405. One exception, allowed narrowly: FastAPI parses a JSON
  body before the route's dependencies run, so a body that is not JSON at all answers 400 or 422
  `json_invalid` before the token is looked at (the answer only describes the client's bytes).

Not checked, because the app does not do it yet (docs/web.md does not promise it either): that
every status code is declared (401 on private routes, 404 for an unknown `run_id`, FastAPI's 400
for an unreadable body are not in the schema), and that every schema-violating input is refused
(pydantic takes a number as a `date-time`, so `?until=0.5` is a valid instant).

Generation is bounded and derandomized (the same cases on every run, no example database) so the
module takes about a minute. Nothing is excluded: the two operations that change what later cases
see are handled, not skipped — `POST /auth/logout` is sent a token minted for that case alone (the
shared one must survive it), and `POST /control/stop` and `POST /control/start` are fuzzed last
(the schema's paths are reordered, nothing else changes) so that the engine is still running, with
its position, while the views and the other controls are fuzzed.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from fastapi.routing import APIRoute
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
)

from reinforcetrade.web.app import PUBLIC, openapi_schema
from reinforcetrade.web.server import WebServer
from web_support import USER, furnished_server, login

Case = schemathesis.Case[Any]
pytestmark = [pytest.mark.network, pytest.mark.slow]

BARS = 900  # the engine's position opens on bar 865
LAST = ("/api/v1/control/stop", "/api/v1/control/start")  # fuzzed after everything else
CHECKS = [
    not_a_server_error,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]
WITH_TOKEN = settings(
    max_examples=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
WITHOUT_TOKEN = settings(WITH_TOKEN, max_examples=15)


def _schema() -> dict[str, Any]:
    """Return the API's schema with the engine's stop and start moved to the end."""
    spec: dict[str, Any] = json.loads(json.dumps(openapi_schema()))  # a copy, as JSON has it
    paths = spec["paths"]
    spec["paths"] = {p: v for p, v in paths.items() if p not in LAST} | {p: paths[p] for p in LAST}
    return spec


SCHEMA = schemathesis.openapi.from_dict(
    _schema(),
    config=schemathesis.Config.from_dict(
        {
            "seed": 20240601,
            # the test sends the credentials itself: a valid token, or none at all
            "generation": {
                "deterministic": True,
                "database": "none",
                "with-security-parameters": False,
            },
        }
    ),
)


@dataclass
class Api:
    """The served app, a token for it, and a way to mint more."""

    server: WebServer
    token: str

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {token or self.token}"}

    def mint(self) -> str:
        """Return a new token for the user (as a login would), for a case that revokes it."""
        token: str = self.server.app.state.security.signer.issue(USER)
        return token


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A served paper engine 900 bars in, with a backtest and a report beside it."""
    server, gates, journal = furnished_server(tmp_path_factory.mktemp("fuzz"), 0)
    server.start_in_thread()
    try:
        gates.open_to(server, BARS)
        with httpx.Client(base_url=server.url, timeout=30) as http:
            headers = login(http)
            served = http.get("/api/v1/openapi.json", headers=headers)
            assert served.status_code == 200
            assert served.json() == json.loads(json.dumps(openapi_schema()))  # what is fuzzed
            _assert_has_rows(http, headers)
        yield Api(server, headers["Authorization"].split()[1])
    finally:
        server.stop()
        journal.close()


def _assert_has_rows(http: httpx.Client, headers: dict[str, str]) -> None:
    """Check the journal holds what the views shape: decisions, orders, a position, a backtest."""
    assert http.get("/api/v1/status", headers=headers).json()["engine"]["state"] == "running"
    assert http.get("/api/v1/positions", headers=headers).json()
    for view in ("decisions", "orders", "fills", "backtests"):
        assert http.get(f"/api/v1/{view}", headers=headers).json()["total"] > 0, view


def _call(case: Case, api: Api, headers: dict[str, str]) -> Any:
    """Send a case over HTTP with exactly these credentials (or none)."""
    for name in [n for n in case.headers or {} if n.lower() == "authorization"]:
        del case.headers[name]  # the fuzzer's own, if it made one
    return case.call(base_url=api.url, headers=headers, timeout=30)


def _private(case: Case) -> bool:
    return (case.operation.method.upper(), case.operation.path) not in PUBLIC


def _unreadable_body(response: Any) -> bool:
    """Whether the body was refused as unreadable: FastAPI parses it before the route's auth.

    Not JSON at all (400 "There was an error parsing the body"), or invalid JSON (422
    json_invalid). The answer only describes the client's own bytes; no route ran.
    """
    if response.status_code == 400:
        return bool(response.json() == {"detail": "There was an error parsing the body"})
    if response.status_code == 422:
        return all(error.get("type") == "json_invalid" for error in response.json()["detail"])
    return False


@SCHEMA.parametrize()
@WITHOUT_TOKEN
def test_without_a_token_only_the_public_operations_answer(case: Case, api: Api) -> None:
    response = _call(case, api, {})
    case.validate_response(response, checks=[not_a_server_error])
    what = (case.method, case.formatted_path, response.status_code, response.text[:300])
    if case.method.upper() != case.operation.method.upper():
        assert response.status_code == 405, what  # a method the path does not have
    elif _private(case) and not _unreadable_body(response):
        assert response.status_code == 401, what
        assert response.headers["www-authenticate"] == ["Bearer"], what


@SCHEMA.parametrize()
@WITH_TOKEN
def test_with_a_token_no_operation_is_a_server_error(case: Case, api: Api) -> None:
    token = api.mint() if case.operation.path == "/api/v1/auth/logout" else None
    response = _call(case, api, api.headers(token))
    case.validate_response(response, checks=CHECKS)


def test_the_shared_token_survived_the_fuzzing(api: Api) -> None:
    with httpx.Client(base_url=api.url, timeout=30) as http:
        assert http.get("/api/v1/status", headers=api.headers()).status_code == 200
        revoked = api.mint()
        assert http.post("/api/v1/auth/logout", headers=api.headers(revoked)).status_code == 200
        assert http.get("/api/v1/status", headers=api.headers(revoked)).status_code == 401


def _api_routes(routes: Iterable[Any]) -> Iterator[APIRoute]:
    """Return the HTTP routes, those of included routers too (FastAPI may include them lazily)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _api_routes(inner.routes)


def test_every_route_of_the_app_is_in_the_fuzzed_schema(api: Api) -> None:
    routes = {
        (method, route.path.replace(":path}", "}"))
        for route in _api_routes(api.server.app.routes)
        for method in route.methods or ()
    }
    results = list(SCHEMA.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results)  # schemathesis could read every operation
    fuzzed = {(op.method.upper(), op.path) for op in operations}
    assert routes == fuzzed
