"""The report's agent performance: hit rates by regime, calibration and P&L attribution per agent."""

from __future__ import annotations

import json
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from reinforcetrade.backtesting import BacktestResult
from reinforcetrade.core.formatting import figure
from reinforcetrade.ml.performance import AgentPerformance
from reinforcetrade.reports import ReportGenerator
from reinforcetrade.reports.payload import AGENT_HORIZON
from report_support import page_data, parse, squash

AGENTS = ["environment", "short_term", "trend"]
TABLES = ("agent-hit-rates", "agent-attribution", "agent-calibration")


class Cells(HTMLParser):
    """Collect the text of each table cell by (table id, row's data-agent, cell position)."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str], list[str]] = {}
        self.regimes: dict[tuple[str, str], list[str]] = {}
        self._table = self._agent = ""
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if tag == "table":
            self._table = found.get("id") or ""
        elif tag == "tr":
            self._agent = found.get("data-agent") or ""
        elif tag == "td" and self._table in TABLES and self._agent:
            self._text = []
            key = (self._table, self._agent)
            self.regimes.setdefault(key, []).append(found.get("data-regime") or "")

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._text is not None:
            key = (self._table, self._agent)
            self.cells.setdefault(key, []).append(squash("".join(self._text)))
            self._text = None


@pytest.fixture(scope="module")
def expected(two_symbols: BacktestResult) -> dict[str, Any]:
    """The figures computed directly from the result, as JSON holds them."""
    data = AgentPerformance.from_result(two_symbols, horizon=AGENT_HORIZON).to_dict()
    loaded: dict[str, Any] = json.loads(json.dumps(data, allow_nan=False))
    return loaded


def cells_of(report: Path) -> Cells:
    cells = Cells()
    cells.feed((report / "report.html").read_text(encoding="utf-8"))
    return cells


def test_the_agents_section_shows_every_agents_figures(
    report: Path, expected: dict[str, Any]
) -> None:
    html = (report / "report.html").read_text(encoding="utf-8")
    tags = parse(html)
    ids = [str(a["id"]) for a in tags.having("id")]
    assert ids.index("agents") < ids.index("agent-performance") < ids.index("decisions")
    assert all(t in ids for t in TABLES)
    assert expected["agents"] == AGENTS
    assert expected["regimes"] == ["all", "trending", "ranging", "high_volatility"]
    cells = cells_of(report)
    for agent in AGENTS:
        assert cells.regimes[("agent-hit-rates", agent)] == expected["regimes"]
        for regime, text in zip(
            expected["regimes"], cells.cells[("agent-hit-rates", agent)], strict=True
        ):
            h = expected["hit_rates"][agent][regime]
            if h["votes"]:
                assert text == (
                    f"{figure(h['hit_rate'], 'pct')} ± {figure(h['hit_rate_se'], 'pct')} "
                    f"(n {figure(h['votes'], 'int')})"
                ), (agent, regime)
            else:
                assert text == "—", (agent, regime)
        for regime, text in zip(
            expected["regimes"], cells.cells[("agent-attribution", agent)], strict=True
        ):
            p = expected["attribution"][agent][regime]
            assert text == f"{figure(p['pnl'], 'money')} ({p['trades']})", (agent, regime)
        calibration = cells.cells[("agent-calibration", agent)]
        bins = expected["calibration"][agent]["bins"]
        assert len(calibration) == len(bins) + 1
        for b, text in zip(bins, calibration, strict=False):
            if b["votes"]:
                assert text == (
                    f"{figure(b['expected_hit_rate'], 'pct')} → {figure(b['hit_rate'], 'pct')} "
                    f"(n {figure(b['votes'], 'int')})"
                )
        assert calibration[-1] == figure(expected["calibration"][agent]["error"], "pct")
    # the figures are real: votes scored in every regime, trades attributed
    assert sum(expected["hit_rates"][a]["all"]["votes"] for a in AGENTS) > 1_000
    assert expected["trades"] > 5
    attributed = sum(expected["attribution"][a]["all"]["pnl"] for a in AGENTS)
    assert attributed + expected["unattributed_pnl"] == pytest.approx(expected["total_pnl"])


def test_the_json_and_the_page_carry_the_same_figures(
    report: Path, expected: dict[str, Any], two_symbols: BacktestResult
) -> None:
    sidecar = json.loads((report / "report.json").read_text(encoding="utf-8"))
    assert sidecar["agent_performance"] == expected
    html = (report / "report.html").read_text(encoding="utf-8")
    assert page_data(html)["agent_performance"] == expected
    closed = two_symbols.trades[two_symbols.trades["exit_reason"] != "open"]
    assert expected["trades"] == len(closed)
    assert expected["total_pnl"] == pytest.approx(float(closed["pnl"].sum()))


def test_a_run_without_votes_says_so(
    flat: BacktestResult, generator: ReportGenerator, tmp_path: Path
) -> None:
    folder = generator.generate_full_report(flat, tmp_path)
    html = (folder / "report.html").read_text(encoding="utf-8")
    ids = {a["id"] for a in parse(html).having("id")}
    assert "no-agent-votes" in ids
    assert not ids & set(TABLES)
    sidecar = json.loads((folder / "report.json").read_text(encoding="utf-8"))
    assert sidecar["agent_performance"]["agents"] == []
