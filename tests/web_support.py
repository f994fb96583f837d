"""Shared parts of the web tests: settings with real credentials, a paper engine on a gated feed.

`paper_server` builds the same `WebServer` `reinforcetrade serve --paper` builds, over a SQLite
journal, with an engine whose bars arrive only as far as the test opens its gate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx
import pandas as pd

from gated_feed import GatedFeed
from reinforcetrade.config import Settings
from reinforcetrade.config.sections import WebConfig
from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import EngineEvent
from reinforcetrade.trading.paper import PaperBroker
from reinforcetrade.web.server import WebServer

USER = "ops"
PASSWORD = "correct horse battery staple"  # noqa: S105 - the tests' own user
SECRET = "t" * 48
METRICS_TOKEN = "m" * 40
SYMBOL = "BTC/USDT"


def web_config(**changes: Any) -> WebConfig:
    """Return web settings a server accepts (strong password, long secret)."""
    values: dict[str, Any] = {"username": USER, "password": PASSWORD, "token_secret": SECRET,
                              "metrics_token": METRICS_TOKEN}  # fmt: skip
    return WebConfig(**(values | changes))


def market(bars: int = 1_500) -> dict[str, pd.DataFrame]:
    """Return the synthetic market the engine trades (entries on bars 864 and 1349)."""
    return {SYMBOL: generate_market([SYMBOL], bars=bars, seed=4).frames[SYMBOL]}


class Gates:
    """The gated feeds of every session the server starts (the newest last)."""

    def __init__(self, frames: Mapping[str, pd.DataFrame], gate: int) -> None:
        self.frames, self.gate = frames, gate
        self.feeds: list[GatedFeed] = []

    def build(self, settings: Settings, name: str = "desk") -> Any:
        def build(journal: Journal, observer: Any) -> LiveEngine:
            feed = GatedFeed(self.frames, self.gate)
            self.feeds.append(feed)
            strategy = MultiAgentStrategy(settings=settings)
            return LiveEngine(strategy, feed, PaperBroker(), journal, name=name, observer=observer)

        return build

    def open_to(self, server: WebServer, bars: int, timeout: float = 60.0) -> None:
        """Let the engine handle bars up to `bars` in all, and wait until it has."""
        self.feeds[-1].open_to(bars)
        engine = server.host.engine
        assert engine is not None
        deadline = time.monotonic() + timeout
        while engine.stepper.t < bars:
            assert time.monotonic() < deadline, "the engine did not reach the bar"
            time.sleep(0.01)
        time.sleep(0.05)  # its observer and journal writes follow the step


def paper_server(
    tmp_path: Path,
    *,
    gate: int = 0,
    frames: Mapping[str, pd.DataFrame] | None = None,
    settings: Settings | None = None,
    start: bool = True,
    also: Any = None,
    **web: Any,
) -> tuple[WebServer, Gates, Journal]:
    """Return a server (not yet serving) with a paper engine on a gated feed, and its journal."""
    url = f"sqlite:///{tmp_path / 'paper.db'}"
    journal = Journal(url).open()
    gates = Gates(frames or market(), gate)
    server = WebServer.build(web_config(**web), journal, builder=gates.build(settings or Settings()),
                             journal_url=url, also=also, port=0)  # fmt: skip
    if start:
        server.host.start()
    return server, gates, journal


def login(client: httpx.Client | Any, password: str = PASSWORD) -> dict[str, str]:
    """Log in; return the Authorization header to send."""
    answer = client.post("/api/v1/auth/login", json={"username": USER, "password": password})
    assert answer.status_code == 200, answer.text
    return {"Authorization": f"Bearer {answer.json()['access_token']}"}


def events_of(kind: str, events: list[EngineEvent]) -> list[Mapping[str, object]]:
    """Return the fields of the events of one kind."""
    return [e.fields for e in events if e.kind == kind]


def furnished_server(tmp_path: Path, gate: int) -> tuple[WebServer, Gates, Journal]:
    """A paper server (not serving yet) whose journal also holds a backtest of 1,000 bars, and
    a reports folder with one report (and a file beside it that must stay out of reach)."""
    from reinforcetrade.backtesting import EnhancedBacktester

    reports = tmp_path / "reports"
    (reports / "run-1").mkdir(parents=True)
    (reports / "run-1" / "report.html").write_text("<html>a report</html>")
    (tmp_path / "secret.html").write_text("outside the reports folder")
    server, gates, journal = paper_server(tmp_path, gate=gate, reports_dir=reports)
    result = EnhancedBacktester(MultiAgentStrategy()).run(market(1_000))
    equity = result.equity.to_frame().assign(exposure=result.exposure["total"])
    tables = {"decisions": result.decisions, "orders": result.orders, "fills": result.fills,
              "trades": result.trades, "equity": equity}  # fmt: skip
    journal.save_backtest(tables, name="bt", symbols=[SYMBOL], timeframe="1h")
    return server, gates, journal
