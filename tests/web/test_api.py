"""The web API served for real (uvicorn on 127.0.0.1) over a paper engine and its journal."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.routing import APIRoute
from prometheus_client.parser import text_string_to_metric_families
from starlette.routing import Route, WebSocketRoute
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from reinforcetrade.config import Settings
from reinforcetrade.storage import Journal
from reinforcetrade.web import reads
from reinforcetrade.web.app import PUBLIC
from reinforcetrade.web.auth import (
    LoginLimiter,
    TicketBook,
    TokenSigner,
    WebRefused,
    check_settings,
    hash_password,
    verify_password,
)
from reinforcetrade.web.server import WebServer
from web_support import (
    METRICS_TOKEN,
    PASSWORD,
    SYMBOL,
    USER,
    Gates,
    furnished_server,
    login,
    market,
    paper_server,
    web_config,
)


class Served:
    """A running server, its gates, journal and an HTTP client on it."""

    def __init__(self, server: WebServer, gates: Gates, journal: Journal) -> None:
        self.server, self.gates, self.journal = server, gates, journal
        self.http = httpx.Client(base_url=server.url, timeout=30)

    def ws_url(self) -> str:
        return self.server.url.replace("http", "ws", 1) + "/api/v1/stream"

    def close(self) -> None:
        self.http.close()
        self.server.stop()
        self.journal.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """A server whose engine has traded to bar 870 (a position open since bar 865)."""
    server, gates, journal = furnished_server(tmp_path_factory.mktemp("web"), 870)
    server.start_in_thread()
    gates.open_to(server, 870)
    state = Served(server, gates, journal)
    yield state
    state.close()


def http_routes(routes: list[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """Yield (method, path) of every HTTP route, inside included routers too."""
    for route in routes:
        inner = getattr(route, "original_router", None)  # FastAPI's included router
        if inner is not None:
            yield from http_routes(inner.routes, prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute | Route):
            for method in sorted(route.methods or ()):
                if method != "HEAD":
                    yield method, prefix + route.path
        else:
            assert isinstance(route, WebSocketRoute), route


def fill(path: str) -> str:
    """Return a route path with sample values for its parameters."""
    return re.sub(r"\{[^}]+\}", "1", path)


def test_every_route_needs_a_token_except_the_public_few(served: Served) -> None:
    http = served.http
    seen = 0
    for method, path in http_routes(served.server.app.routes):
        if (method, path) in PUBLIC:
            continue
        seen += 1
        for headers in ({}, {"Authorization": "Bearer forged.token"},
                        {"Authorization": "Basic b3BzOnB3"}):  # fmt: skip
            answer = http.request(method, fill(path), headers=headers, json={})
            assert answer.status_code == 401, (method, path, headers, answer.text)
            assert answer.headers["www-authenticate"] == "Bearer"
    assert seen >= 25  # every API route was walked
    public = {path for _, path in PUBLIC}
    assert public == {"/health", "/api/v1/auth/login", "/", "/static/{name}"}
    page = http.get("/")
    assert page.status_code == 200
    assert "BTC/USDT" not in page.text  # the shell carries no data
    assert http.get("/health").json()["status"] == "ok"
    assert http.get("/static/plotly.min.js").status_code == 200
    assert http.get("/static/../app.py").status_code == 404
    assert http.get("/static/index.html").status_code == 404  # only the listed assets


def test_a_token_in_the_query_string_is_refused(served: Served) -> None:
    token = login(served.http)["Authorization"].split()[1]
    for name in ("token", "access_token", "authorization"):
        answer = served.http.get(f"/api/v1/status?{name}={token}")
        assert answer.status_code == 401


def test_logout_revokes_and_expired_tokens_are_refused(served: Served) -> None:
    header = login(served.http)
    assert served.http.get("/api/v1/status", headers=header).status_code == 200
    assert served.http.post("/api/v1/auth/logout", headers=header).json() == {"revoked": True}
    answer = served.http.get("/api/v1/status", headers=header)
    assert answer.status_code == 401
    assert "revoked" in answer.json()["detail"]
    now = [1_000.0]
    signer = TokenSigner(web_config().token_secret.get_secret_value(), 900, clock=lambda: now[0])  # type: ignore[union-attr]
    token = signer.issue(USER)
    assert signer.verify(token).user == USER
    now[0] += 901
    with pytest.raises(Exception, match="expired"):
        signer.verify(token)
    other = TokenSigner("x" * 48, 900)
    with pytest.raises(Exception, match="invalid"):
        other.verify(token)  # another server's secret


def test_logins_are_rate_limited_per_client() -> None:
    clock = [0.0]
    limiter = LoginLimiter(3, 60, clock=lambda: clock[0])
    for _ in range(3):
        assert limiter.retry_after("1.2.3.4") == 0
        limiter.failed("1.2.3.4")
    assert limiter.retry_after("1.2.3.4") == 60
    assert limiter.retry_after("5.6.7.8") == 0  # another client is not held back
    clock[0] += 61
    assert limiter.retry_after("1.2.3.4") == 0


def test_the_server_limits_failed_logins(tmp_path: Path) -> None:
    server, _gates, journal = paper_server(tmp_path, start=False, login_attempts=3)
    server.start_in_thread()
    try:
        with httpx.Client(base_url=server.url) as http:
            wrong = {"username": USER, "password": "not it at all"}
            for _ in range(3):
                assert http.post("/api/v1/auth/login", json=wrong).status_code == 401
            limited = http.post("/api/v1/auth/login", json={"username": USER, "password": PASSWORD})
            assert limited.status_code == 429  # even the right password waits now
            assert int(limited.headers["retry-after"]) > 0
            unknown = http.post("/api/v1/auth/login", json={"username": "root", "password": "x"})
            assert unknown.status_code == 429
            assert "retry" in unknown.json()["detail"]
    finally:
        server.stop()
        journal.close()


def test_passwords_are_hashed_and_compared_whole() -> None:
    stored = hash_password(PASSWORD)
    assert PASSWORD not in stored
    assert stored.startswith("scrypt$")
    assert verify_password(PASSWORD, stored)
    assert not verify_password(PASSWORD + " ", stored)
    assert not verify_password(PASSWORD, "bcrypt$whatever")
    assert not verify_password(PASSWORD, "scrypt$bad")
    assert hash_password(PASSWORD) != stored  # salted


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"password": None}, "no password"),
        ({"password": "admin"}, "default or guessable"),
        ({"password": "ops"}, "default or guessable"),  # the user name
        ({"password": "short-one"}, "shorter than 12"),
        ({"token_secret": "s" * 31}, "token_secret must be at least 32"),
        ({"token_secret": None}, "token_secret must be at least 32"),
        ({"metrics_token": "m" * 10}, "metrics_token must be at least 32"),
        ({"host": "0.0.0.0"}, "not a loopback address"),  # noqa: S104 - refused, the point
        ({"password": None, "password_hash": "plaintext"}, "not a hash"),
        ({"username": " "}, "username is empty"),
    ],
)
def test_weak_settings_are_refused(changes: dict[str, Any], why: str) -> None:
    with pytest.raises(WebRefused, match=why):
        check_settings(web_config(**changes))


def test_a_public_bind_needs_the_flag_and_a_hash_serves_as_well_as_a_password() -> None:
    public = web_config(host="0.0.0.0", allow_public_bind=True)  # noqa: S104
    assert check_settings(public).username == USER
    assert check_settings(web_config(), host="::1").username == USER
    hashed = web_config(password=None, password_hash=hash_password(PASSWORD))
    assert verify_password(PASSWORD, check_settings(hashed).password_hash)


def test_cors_answers_only_configured_origins(tmp_path: Path) -> None:
    server, _gates, journal = paper_server(
        tmp_path, start=False, cors_origins=("https://desk.example",)
    )
    server.start_in_thread()
    try:
        with httpx.Client(base_url=server.url) as http:
            asked = {"Origin": "https://desk.example", "Access-Control-Request-Method": "GET",
                     "Access-Control-Request-Headers": "authorization"}  # fmt: skip
            ok = http.options("/api/v1/status", headers=asked)
            assert ok.headers["access-control-allow-origin"] == "https://desk.example"
            other = http.options(
                "/api/v1/status", headers=asked | {"Origin": "https://evil.example"}
            )
            assert "access-control-allow-origin" not in other.headers
    finally:
        server.stop()
        journal.close()
    server, _gates, journal = paper_server(tmp_path / "none", start=False)
    server.start_in_thread()
    try:
        with httpx.Client(base_url=server.url) as http:
            answer = http.get("/health", headers={"Origin": "https://desk.example"})
            assert "access-control-allow-origin" not in answer.headers  # none configured
    finally:
        server.stop()
        journal.close()


def test_the_views_show_the_running_session(served: Served) -> None:
    http, header = served.http, login(served.http)
    status = http.get("/api/v1/status", headers=header).json()
    assert status["engine"]["state"] == "running"
    assert status["engine"]["bars"] == 870
    assert status["risk"]["state"] == "active"
    assert status["risk"]["limits"]["max_drawdown_halt"] == Settings().risk.max_drawdown_halt
    account = status["account"]
    equity = served.journal.read_table("equity", run_id=status["run"]["id"])
    assert account["equity"] == pytest.approx(float(equity["equity"].iloc[-1]))
    assert account["peak"] == pytest.approx(float(equity["equity"].max()))
    assert account["pnl_total"] == pytest.approx(
        float(equity["equity"].iloc[-1] - equity["equity"].iloc[0])
    )
    positions = http.get("/api/v1/positions", headers=header).json()
    assert [p["symbol"] for p in positions] == [SYMBOL]
    held = positions[0]
    assert held["unrealised_pnl"] == pytest.approx(
        held["qty"] * (held["last_price"] - held["avg_price"])
    )
    journal_view = http.get(f"/api/v1/positions?run_id={status['run']['id']}", headers=header)
    assert journal_view.json()[0]["qty"] == pytest.approx(held["qty"])  # the journal agrees
    orders = http.get("/api/v1/orders", headers=header).json()
    assert orders["total"] >= 3  # the entry, its stop and its take-profit
    open_orders = http.get("/api/v1/orders?status=open", headers=header).json()
    assert {o["type"] for o in open_orders["items"]} >= {"stop"}
    curve = http.get("/api/v1/equity?limit=50", headers=header).json()
    assert len(curve) == 50
    assert all(0.0 <= p["drawdown"] < 1.0 for p in curve)
    journalled = reads.equity_curve(served.journal, status["run"]["id"], limit=50)
    assert [p["time"] for p in curve] == [p["time"].isoformat() for p in journalled]
    for served_point, row in zip(curve, journalled, strict=True):  # memory = the journal
        for key in ("equity", "cash", "exposure", "drawdown"):
            assert served_point[key] == pytest.approx(row[key], rel=1e-12), key
    signals = http.get("/api/v1/signals", headers=header).json()
    assert signals[0]["symbol"] == SYMBOL
    assert {a["agent"] for a in signals[0]["agents"]} == {"environment", "short_term", "trend"}


def test_decisions_page_and_filter_with_every_agents_vote(served: Served) -> None:
    http, header = served.http, login(served.http)
    everything = http.get("/api/v1/decisions?limit=1000", headers=header).json()
    assert everything["total"] == len(everything["items"]) > 10
    first_page = http.get("/api/v1/decisions?limit=5", headers=header).json()
    second = http.get("/api/v1/decisions?limit=5&offset=5", headers=header).json()
    numbers = [d["number"] for d in first_page["items"] + second["items"]]
    assert numbers == sorted(numbers, reverse=True)
    assert len(set(numbers)) == 10
    entries = http.get("/api/v1/decisions?action=enter_long", headers=header).json()
    assert entries["total"] == 1
    entry = entries["items"][0]
    assert entry["time"] == market()[SYMBOL].index[864].isoformat()  # decided on bar 864
    assert {a["agent"] for a in entry["agents"]} == {"environment", "short_term", "trend"}
    assert all(set(a) == {"agent", "signal", "confidence", "weight"} for a in entry["agents"])
    assert "tower confidence at or above the entry threshold" in entry["reasons"]
    since = http.get(
        "/api/v1/decisions", headers=header, params={"since": entry["time"], "until": entry["time"]}
    ).json()
    assert [d["number"] for d in since["items"]] == [entry["number"]]
    assert http.get("/api/v1/decisions?since=yesterday", headers=header).status_code == 422
    assert http.get("/api/v1/decisions?limit=0", headers=header).status_code == 422
    assert http.get("/api/v1/decisions?run_id=999", headers=header).status_code == 404


def test_runs_models_backtests_and_reports(served: Served) -> None:
    http, header = served.http, login(served.http)
    runs = http.get("/api/v1/runs", headers=header).json()
    assert {r["kind"] for r in runs["items"]} == {"paper", "backtest"}
    assert all("settings" not in r for r in runs["items"])
    backtests = http.get("/api/v1/backtests", headers=header).json()["items"]
    assert len(backtests) == 1
    bt = backtests[0]
    one = http.get(f"/api/v1/backtests/{bt['id']}", headers=header).json()
    assert one == bt
    assert bt["bars"] == 1_000
    assert bt["max_drawdown"] >= 0.0
    paper_run = next(r["id"] for r in runs["items"] if r["kind"] == "paper")
    assert http.get(f"/api/v1/backtests/{paper_run}", headers=header).status_code == 404
    assert http.get("/api/v1/models", headers=header).json()["total"] == 0
    reports = http.get("/api/v1/reports", headers=header).json()
    assert [r["name"] for r in reports] == ["run-1/report.html"]
    page = http.get("/api/v1/reports/run-1/report.html", headers=header)
    assert page.text == "<html>a report</html>"
    for sneaky in ("../secret.html", "..%2Fsecret.html", "run-1/../../secret.html"):
        assert http.get(f"/api/v1/reports/{sneaky}", headers=header).status_code == 404


def test_controls_act_on_the_engine_and_are_audited(tmp_path: Path) -> None:
    halting = Settings(risk={"max_drawdown_halt": 0.001})
    server, gates, journal = paper_server(tmp_path, gate=1_000, settings=halting)
    server.start_in_thread()
    try:
        gates.open_to(server, 1_000)  # halted on bar 945
        with httpx.Client(base_url=server.url, timeout=30) as http:
            header = login(http)

            def control(action: str, **body: Any) -> httpx.Response:
                return http.post(f"/api/v1/control/{action}", headers=header, json=body)

            assert control("lift-halt").status_code == 422  # a reason is required
            assert control("lift-halt", reason="").status_code == 422
            lifted = control("lift-halt", reason="reviewed the drawdown")
            assert lifted.status_code == 200, lifted.text
            assert lifted.json()["engine"]["risk_state"] == "active"
            assert control("lift-halt", reason="again").status_code == 409
            paused = control("pause", reason="news at 14:00")
            assert paused.json()["engine"]["paused"] == "paused by ops: news at 14:00"
            assert control("unpause").json()["engine"]["paused"] is None
            refused = control("flatten", symbol="DOGE/USDT")
            assert refused.status_code == 409
            assert "not traded" in refused.json()["detail"]
            assert control("start").status_code == 409  # already running
            stopped = control("stop", reason="end of day")
            assert stopped.json()["engine"]["state"] in ("stopping", "stopped")
            assert server.host.wait(30)
            assert server.host.state == "stopped"
            assert control("pause").status_code == 409  # not running
            restarted = control("start", reason="new session")
            assert restarted.status_code == 200, restarted.text
            assert restarted.json()["engine"]["run_id"] != lifted.json()["engine"]["run_id"]
            audit = http.get("/api/v1/audit", headers=header).json()["items"][::-1]
            got = [(a["action"], a["outcome"], a["actor"]) for a in audit]
            assert got == [
                ("lift_halt", "done", USER), ("lift_halt", "refused", USER),
                ("pause", "done", USER), ("unpause", "done", USER),
                ("flatten", "refused", USER), ("start", "refused", USER),
                ("stop", "done", USER), ("pause", "refused", USER), ("start", "done", USER),
            ]  # fmt: skip
            assert audit[0]["reason"] == "reviewed the drawdown"
            assert audit[0]["client"] == "127.0.0.1"
            assert "not traded" in audit[4]["detail"]
            events = journal.read_table("risk_events")
            resume = events[events["kind"] == "resume"].iloc[-1]
            assert (resume["actor"], resume["reason"]) == (USER, "reviewed the drawdown")
            runs = journal.read_table("runs")
            assert runs["status"].tolist()[:1] == ["stopped"]
    finally:
        server.stop()
        journal.close()


def test_flatten_from_the_api_closes_the_position(served: Served) -> None:
    http, header = served.http, login(served.http)
    flat = http.post("/api/v1/control/flatten", headers=header, json={"symbol": SYMBOL})
    assert flat.status_code == 200, flat.text
    assert flat.json()["detail"] == SYMBOL
    served.gates.open_to(served.server, 872)
    assert http.get("/api/v1/positions", headers=header).json() == []
    trades = http.get("/api/v1/trades", headers=header).json()["items"]
    assert trades[0]["exit_reason"] == "manual"
    decisions = http.get("/api/v1/decisions?action=exit", headers=header).json()["items"]
    assert "closed on an operator's request" in decisions[0]["reasons"]


def test_the_stream_needs_a_one_time_ticket_and_pushes_what_happens(served: Served) -> None:
    http, header = served.http, login(served.http)
    with connect(served.ws_url()) as ws:  # no ticket: closed
        ws.send(json.dumps({"hello": "there"}))
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4401
    ticket = http.post("/api/v1/auth/ticket", headers=header).json()["ticket"]
    with connect(served.ws_url()) as ws:
        ws.send(json.dumps({"ticket": ticket}))
        hello = json.loads(ws.recv(timeout=10))
        assert hello["type"] == "hello"
        assert hello["data"]["engine"]["state"] == "running"
        start = served.server.host.engine.stepper.t  # type: ignore[union-attr]
        served.gates.feeds[-1].open_to(start + 3)
        kinds: list[str] = []
        messages: list[dict[str, Any]] = []
        bars: list[dict[str, Any]] = []
        while len(bars) < 3:
            message = json.loads(ws.recv(timeout=30))
            messages.append(message)
            kinds.append(message["type"])
            if message["type"] == "bar":
                bars.append(message["data"])
        assert {"bar", "equity", "positions"} <= set(kinds)
        assert all(
            set(b) >= {"time", "equity", "cash", "exposure", "state", "latency_ms"} for b in bars
        )
        times = [datetime.fromisoformat(b["time"]) for b in bars]
        assert times[1] - times[0] == timedelta(hours=1)
        equity = next(m for m in messages if m["type"] == "equity")["data"]
        assert set(equity) == {"time", "equity", "cash", "exposure", "drawdown", "pnl_total"}
        assert 0.0 <= equity["drawdown"] < 1.0
    with connect(served.ws_url()) as ws:  # a ticket is good once
        ws.send(json.dumps({"ticket": ticket}))
        with pytest.raises(ConnectionClosed) as reused:
            ws.recv(timeout=10)
    assert reused.value.rcvd is not None
    assert reused.value.rcvd.code == 4401


def test_tickets_expire_and_are_single_use() -> None:
    now = [0.0]
    book = TicketBook(30, clock=lambda: now[0])
    ticket = book.issue(USER)
    assert book.redeem(ticket) == USER
    with pytest.raises(Exception, match="unknown, used or expired"):
        book.redeem(ticket)
    late = book.issue(USER)
    now[0] += 31
    with pytest.raises(Exception, match="unknown, used or expired"):
        book.redeem(late)


def test_metrics_are_scraped_with_the_static_token(served: Served) -> None:
    http = served.http
    assert http.get("/api/v1/status", headers=login(http)).status_code == 200  # one to count
    assert http.get("/metrics").status_code == 401
    assert http.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
    answer = http.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert answer.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(answer.text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    names = {name for name, _ in samples}
    assert {"rt_equity", "rt_drawdown", "rt_open_positions", "rt_open_orders", "rt_engine_running",
            "rt_decision_latency_ms_bucket", "rt_agent_confidence", "rt_tower_confidence",
            "rt_api_requests_total", "rt_api_request_seconds_bucket", "rt_ws_clients"} <= names  # fmt: skip
    assert samples[("rt_engine_running", ())] == 1.0
    orders = served.journal.read_table("orders", run_id=served.server.host.engine.run_id)  # type: ignore[union-attr]
    for state, count in orders["status"].value_counts().items():
        assert samples[("rt_orders_by_state", (("state", str(state)),))] == count
    assert samples[("rt_orders_by_state", (("state", "expired"),))] == 0
    working = orders["status"].isin(["pending", "submitted", "partially_filled"]).sum()
    assert samples[("rt_open_orders", ())] == working
    assert samples[("rt_bars_total", ())] >= 870
    status_calls = [v for (n, labels), v in samples.items() if n == "rt_api_requests_total"
                    and ("route", "/api/v1/status") in labels]  # fmt: skip
    assert sum(status_calls) >= 1
    user_scrape = http.get("/metrics", headers=login(http))
    assert user_scrape.status_code == 200  # a logged-in user may look too


def test_the_openapi_schema_is_served_with_a_token(served: Served) -> None:
    http = served.http
    assert http.get("/api/v1/openapi.json").status_code == 401
    schema = http.get("/api/v1/openapi.json", headers=login(http)).json()
    assert schema["openapi"].startswith("3.")
    assert "/api/v1/control/flatten" in schema["paths"]
    assert schema["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_responses_carry_security_headers(served: Served) -> None:
    answer = served.http.get("/")
    assert answer.headers["x-content-type-options"] == "nosniff"
    assert answer.headers["x-frame-options"] == "DENY"
    assert "script-src 'self'" in answer.headers["content-security-policy"]
