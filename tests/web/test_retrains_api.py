"""GET /api/v1/retrains served for real (uvicorn on 127.0.0.1) over a journal of retrains."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from reinforcetrade.storage import Journal
from reinforcetrade.web.server import WebServer
from web_support import login, web_config

pytestmark = [pytest.mark.network]

URL = "/api/v1/retrains"
T0 = datetime(2026, 3, 1, tzinfo=UTC)


def _retrain(journal: Journal, hours: int, **changes: Any) -> int:
    """Record a retrain that finished `hours` after T0; return its id."""
    values: dict[str, Any] = {
        "started": T0 + timedelta(hours=hours, minutes=-3),
        "time": T0 + timedelta(hours=hours),
        "symbol": "BTC/USDT",
        "timeframe": "1h",
        "algorithm": "ppo",
        "trigger": "schedule",
        "verdict": "kept",
        "reason": "Sharpe 0.7 against 0.8 out of sample: not ahead by the margin 0.1",
        "metric": "sharpe",
        "margin": 0.1,
        "trials": 2,
        "tried": {"timesteps": 1_024, "seed": hours},
        "figures": {"folds": [{"challenger": {"sharpe": 0.7}, "champion": {"sharpe": 0.8}}]},
        "data": {"fingerprint": "cd34", "bars": 2_000},
        "challenger": f"ppo-{hours}",
        "champion": "ppo-0",
        "challenger_value": 0.7,
        "champion_value": float("nan"),
    }
    return journal.record_retrain(**(values | changes))


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[list[int], httpx.Client]]:
    """A server over a journal alone (no engine) holding four retrains; their ids; a client."""
    tmp_path: Path = tmp_path_factory.mktemp("retrains-api")
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal(url).open()
    ids = [
        _retrain(journal, 0, verdict="promoted", champion=None, weights={"trend": 0.5}),
        _retrain(journal, 1, timeframe="4h"),
        _retrain(journal, 2, symbol="ETH/USDT", trigger="manual"),
        _retrain(journal, 3, verdict="failed", challenger=None, challenger_value=None),
    ]
    server = WebServer.build(web_config(), journal, journal_url=url, port=0).start_in_thread()
    http = httpx.Client(base_url=server.url, timeout=30)
    yield ids, http
    http.close()
    server.stop()
    journal.close()


def test_the_view_needs_a_token(served: tuple[list[int], httpx.Client]) -> None:
    _, http = served
    for headers in ({}, {"Authorization": "Bearer forged.token"}):
        answer = http.get(URL, headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"] == "Bearer"
        assert "items" not in answer.text


def test_the_view_pages_the_journals_retrains_newest_first(
    served: tuple[list[int], httpx.Client],
) -> None:
    ids, http = served
    header = login(http)
    answer = http.get(URL, headers=header)
    assert answer.status_code == 200, answer.text
    page = answer.json()
    assert (page["total"], page["limit"], page["offset"]) == (4, 100, 0)
    assert [r["id"] for r in page["items"]] == ids[::-1]
    newest, oldest = page["items"][0], page["items"][-1]
    assert newest["time"] == "2026-03-01T03:00:00+00:00"
    assert newest["started"] == "2026-03-01T02:57:00+00:00"
    assert (newest["verdict"], newest["challenger"], newest["challenger_value"]) == (
        "failed", None, None
    )  # fmt: skip
    assert newest["champion_value"] is None  # NaN went in
    assert newest["figures"] == {
        "folds": [{"challenger": {"sharpe": 0.7}, "champion": {"sharpe": 0.8}}]
    }
    assert newest["tried"] == {"timesteps": 1_024, "seed": 3}
    assert newest["weights"] is None
    assert (oldest["verdict"], oldest["champion"], oldest["weights"]) == (
        "promoted", None, {"trend": 0.5}
    )  # fmt: skip
    assert oldest["data"] == {"fingerprint": "cd34", "bars": 2_000}
    assert {"margin", "trials", "metric", "reason", "trigger", "uid"} <= set(oldest)


def test_the_view_filters_and_limits(served: tuple[list[int], httpx.Client]) -> None:
    ids, http = served
    header = login(http)

    def got(**query: Any) -> list[int]:
        answer = http.get(URL, headers=header, params=query)
        assert answer.status_code == 200, answer.text
        return [r["id"] for r in answer.json()["items"]]

    assert got(symbol="BTC/USDT") == [ids[3], ids[1], ids[0]]
    assert got(symbol="BTC/USDT", timeframe="1h") == [ids[3], ids[0]]
    assert got(timeframe="4h") == [ids[1]]
    assert got(symbol="SOL/USDT") == []
    assert got(limit=2) == [ids[3], ids[2]]
    assert got(limit=2, offset=2) == [ids[1], ids[0]]
    for bad in ({"limit": 0}, {"limit": 1_001}, {"timeframe": "x" * 17}):
        assert http.get(URL, headers=header, params=bad).status_code == 422, bad
