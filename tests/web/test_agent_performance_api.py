"""GET /api/v1/agents/performance served for real over a paper engine that has closed a trade."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from reinforcetrade.ml.performance import AgentPerformance
from reinforcetrade.storage import Journal
from reinforcetrade.web.server import WebServer
from web_support import login, paper_server

pytestmark = [pytest.mark.network, pytest.mark.slow]

BARS = 1_200  # the engine enters on bar 864 and closes that trade before bar 1,200
URL = "/api/v1/agents/performance"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[WebServer, Journal, httpx.Client]]:
    """A serving paper server whose engine has handled 1,200 bars, its journal, a client."""
    tmp_path: Path = tmp_path_factory.mktemp("performance-api")
    server, gates, journal = paper_server(tmp_path, gate=BARS)
    server.start_in_thread()
    gates.open_to(server, BARS)
    http = httpx.Client(base_url=server.url, timeout=60)
    yield server, journal, http
    http.close()
    server.stop()
    journal.close()


def run_id(server: WebServer) -> int:
    engine = server.host.engine
    assert engine is not None
    return engine.run_id


def direct(journal: Journal, run: int, horizon: int) -> dict[str, Any]:
    """What the view must answer, computed here from the journal, as JSON has it."""
    answer = AgentPerformance.from_journal(journal, run, horizon=horizon).to_dict()
    loaded: dict[str, Any] = json.loads(json.dumps(answer, allow_nan=False))
    return loaded


def test_the_view_needs_a_token(served: tuple[WebServer, Journal, httpx.Client]) -> None:
    _, _, http = served
    answer = http.get(URL)
    assert answer.status_code == 401
    assert answer.headers["www-authenticate"] == "Bearer"


def test_the_view_answers_what_the_journal_holds(
    served: tuple[WebServer, Journal, httpx.Client],
) -> None:
    server, journal, http = served
    header = login(http)
    answer = http.get(URL, headers=header)
    assert answer.status_code == 200, answer.text
    got = answer.json()
    run = run_id(server)
    expected = direct(journal, run, 24)
    assert got["horizon"] == 24
    assert got["agents"] == ["environment", "short_term", "trend"]
    for agent in got["agents"]:
        assert got["hit_rates"][agent] == expected["hit_rates"][agent], agent
        assert got["hit_rates"][agent]["all"]["votes"] > 0
    assert got == expected
    assert got["trades"] >= 1  # the trade entered on bar 864 has closed
    attributed = sum(a["all"]["pnl"] for a in got["attribution"].values())
    assert attributed + got["unattributed_pnl"] == pytest.approx(got["total_pnl"])
    pnl = journal.read_table("trades", run_id=run)["pnl"].sum()
    assert got["total_pnl"] == pytest.approx(float(pnl))

    # the same run asked for by id, and another horizon
    assert http.get(URL, headers=header, params={"run_id": run}).json() == got
    short = http.get(URL, headers=header, params={"horizon": 6}).json()
    assert short == direct(journal, run, 6)
    assert short["hit_rates"] != got["hit_rates"]


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"horizon": 0}, 422),
        ({"horizon": 501}, 422),
        ({"horizon": "day"}, 422),
        ({"horizon": 500}, 200),
        ({"run_id": 999}, 404),
        ({"run_id": 0}, 422),
    ],
)
def test_the_horizon_and_the_run_are_checked(
    served: tuple[WebServer, Journal, httpx.Client], params: dict[str, Any], status: int
) -> None:
    _, _, http = served
    answer = http.get(URL, headers=login(http), params=params)
    assert answer.status_code == status, answer.text
