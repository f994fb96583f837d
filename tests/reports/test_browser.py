"""A real browser opens the report from disk with the network off: charts, filters, details."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from reinforcetrade.backtesting import BacktestResult
from reinforcetrade.reports import ReportGenerator
from report_support import artifacts_dir, chromium_or_skip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian chromium driven by Playwright (never a downloaded browser)."""
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=str(executable), headless=True)
        yield launched
        launched.close()


class Opened:
    """A report page opened offline, with what it logged and what it tried to fetch."""

    def __init__(self, browser: Any, html: Path) -> None:
        self.context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.on("request", lambda r: self.requests.append(r.url))
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(html.as_uri())
        self.page.wait_for_function(
            "document.body.dataset.ready === 'true' || "
            "document.getElementById('status').classList.contains('error')",
            timeout=30_000,
        )

    def charts(self) -> dict[str, bool]:
        """Return {chart element id: drawn} for every chart on the page."""
        drawn: dict[str, bool] = self.page.eval_on_selector_all(
            "[data-chart]",
            "els => Object.fromEntries(els.map(e => [e.id, e.dataset.drawn === '1' && "
            "e.querySelector('.main-svg') !== null]))",
        )
        return drawn

    def count(self) -> str:
        """Return the decision log's 'N of M decisions' line."""
        return str(self.page.inner_text("#decision-count"))

    def rows(self) -> list[list[str]]:
        """Return the cells of the decision log's visible rows."""
        cells: list[list[str]] = self.page.eval_on_selector_all(
            "#decision-table tbody tr",
            "rows => rows.map(r => Array.from(r.cells, c => c.textContent))",
        )
        return cells


def test_the_report_opens_offline_and_draws_every_chart(
    browser: Any, two_symbols: BacktestResult, generator: ReportGenerator, tmp_path: Path
) -> None:
    folder = generator.generate_full_report(two_symbols, tmp_path)
    opened = Opened(browser, folder / "report.html")
    page = opened.page
    assert opened.errors == []
    assert page.get_attribute("body", "data-ready") == "true"
    assert [u for u in opened.requests if not u.startswith("file:")] == []
    charts = opened.charts()
    detail = charts.pop("chart-detail")
    assert not detail  # drawn only when a decision is clicked
    assert charts
    assert all(charts.values()), charts
    n = len(two_symbols.decisions)
    assert page.inner_text("#status") == f"{len(charts)} charts · {n:,} decisions"
    assert opened.count() == f"{n:,} of {n:,} decisions"
    assert len(opened.rows()) == 200  # one page of the log

    # filter: an action, then words in the reasons
    page.select_option("#decision-action", "exit")
    exits = int((two_symbols.decisions["action"] == "exit").sum())
    assert opened.count() == f"{exits:,} of {n:,} decisions"
    assert {row[3] for row in opened.rows()} == {"exit"}
    page.select_option("#decision-action", "")
    page.fill("#decision-search", "stop loss")
    page.wait_for_function(
        "document.getElementById('decision-count').textContent.startsWith('"
        + f"{n:,}"
        + "') === false"
    )
    text = two_symbols.decisions[["action", "symbol", "regime", "reasons"]].astype(str)
    hits = int(text.apply(lambda c: c.str.lower().str.contains("stop loss")).any(axis=1).sum())
    assert 0 < hits < n
    assert opened.count() == f"{hits:,} of {n:,} decisions"
    assert all("stop loss" in row[-1].lower() for row in opened.rows())

    # a click shows the chart around the decision and its full record
    first = opened.rows()[0]
    page.click("#decision-table tbody tr >> nth=0")
    page.wait_for_selector("#chart-detail[data-drawn='1'] .main-svg")
    assert page.is_visible("#decision-detail")
    assert f'"id": {first[0]}' in page.inner_text("#decision-record").replace("\n", "")
    title = str(page.text_content("#chart-detail .gtitle"))
    assert title.startswith(f"Decision {first[0]}: {first[3]} {first[2]}")

    # a key decision opens its row in the log
    page.click("[data-decision] >> nth=0")
    picked = page.get_attribute("[data-decision] >> nth=0", "data-decision")
    page.wait_for_function(
        f"document.querySelector('#chart-detail .gtitle')?.textContent.startsWith('Decision {picked}:')"
    )
    selected = page.eval_on_selector("#decision-table tr.selected", "r => r.cells[0].textContent")
    assert selected == picked

    shot = artifacts_dir() / "report-two-symbols.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 50_000
    assert opened.errors == []
    opened.context.close()


def test_a_report_without_trades_opens_cleanly(
    browser: Any, flat: BacktestResult, generator: ReportGenerator, tmp_path: Path
) -> None:
    folder = generator.generate_full_report(flat, tmp_path)
    opened = Opened(browser, folder / "report.html")
    assert opened.errors == []
    assert opened.page.get_attribute("body", "data-ready") == "true"
    charts = opened.charts()
    charts.pop("chart-detail")
    assert charts
    assert all(charts.values()), charts
    assert opened.page.is_visible("#no-trades")
    opened.page.screenshot(path=str(artifacts_dir() / "report-no-trades.png"), full_page=True)
    opened.context.close()


def test_segments_and_models_draw_too(
    browser: Any,
    with_model: tuple[BacktestResult, BacktestResult],
    generator: ReportGenerator,
    tmp_path: Path,
) -> None:
    inside, outside = with_model
    folder = generator.generate_full_report(
        {"in-sample": inside, "out-of-sample": outside}, tmp_path
    )
    opened = Opened(browser, folder / "report.html")
    assert opened.errors == []
    charts = opened.charts()
    assert charts["chart-segments"]
    assert opened.page.is_visible("[data-model]")
    opened.page.screenshot(path=str(artifacts_dir() / "report-segments.png"), full_page=True)
    opened.context.close()
