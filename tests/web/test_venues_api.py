"""GET /api/v1/venues and the orders' routes, served for real (uvicorn on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from reinforcetrade.storage import Journal
from reinforcetrade.web.server import WebServer
from web_support import login, web_config

pytestmark = [pytest.mark.network]

ROUTE = {
    "side": "buy",
    "quantity": 0.1,
    "reference": 49_990.0,
    "legs": [["beta", 0.1]],
    "venues": [
        {"venue": "beta", "all_in_bps": 2.0, "why": "cheapest, takes it all"},
        {"venue": "alpha", "all_in_bps": 12.0, "why": "dearer"},
    ],
    "children": [["beta", "l1e-abc.1", 0.1, 49_990.01]],
    "reroutes": [],
}


def stats(venue: str, **changes: object) -> dict[str, object]:
    figures: dict[str, object] = {
        "venue": venue, "orders": 4, "fills": 3, "rejects": 1, "errors": 0,
        "fill_ratio": 1.0, "reject_rate": 0.25, "slippage_bps": 1.5,
        "latency_p50_ms": 12.0, "latency_p99_ms": 40.0, "health": "ok",
    }  # fmt: skip
    return figures | changes


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, httpx.Client]]:
    """A server over a journal with one live run, two venues' figures and a routed order."""
    tmp_path: Path = tmp_path_factory.mktemp("venues-api")
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal(url).open()
    run = journal.start_run("live", name="desk")
    journal.record_venue_stats(run, stats("alpha"))
    journal.record_venue_stats(run, stats("beta"))
    journal.record_venue_stats(run, stats("beta", orders=5, fills=3, rejects=2, health="degraded",
                                          reject_rate=0.4, slippage_bps=float("nan")))  # fmt: skip
    journal.record_order({"client_order_id": "l1e-abc", "run_id": run, "symbol": "BTC/USDT",
                          "side": "buy", "type": "market", "qty": 0.1})  # fmt: skip
    journal.set_order_route("l1e-abc", "beta", ROUTE)
    server = WebServer.build(web_config(), journal, journal_url=url, port=0).start_in_thread()
    http = httpx.Client(base_url=server.url, timeout=30)
    yield run, http
    http.close()
    server.stop()
    journal.close()


def test_the_venues_view_shows_each_venues_latest_figures(served: tuple[int, httpx.Client]) -> None:
    run, http = served
    assert http.get("/api/v1/venues").status_code == 401
    page = http.get("/api/v1/venues", params={"run_id": run}, headers=login(http)).json()
    assert page["total"] == 2  # one row per venue, kept current
    by = {row["venue"]: row for row in page["items"]}
    assert (by["beta"]["orders"], by["beta"]["rejects"], by["beta"]["health"]) == (5, 2, "degraded")
    assert by["beta"]["reject_rate"] == 0.4
    assert by["beta"]["slippage_bps"] is None  # no figure yet: null, not NaN
    assert by["alpha"]["latency_p99_ms"] == 40.0


def test_an_orders_route_says_why_its_venue_won(served: tuple[int, httpx.Client]) -> None:
    run, http = served
    page = http.get("/api/v1/orders", params={"run_id": run}, headers=login(http)).json()
    (order,) = page["items"]
    assert order["venue"] == "beta"
    assert order["route"]["children"] == [["beta", "l1e-abc.1", 0.1, 49_990.01]]
    why = {v["venue"]: v["why"] for v in order["route"]["venues"]}
    assert why == {"beta": "cheapest, takes it all", "alpha": "dearer"}
