"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright.

A paper engine runs on a gated feed; the test logs in through the form, opens the gate and
watches the page follow the stream (the entry of bar 864 filling at bar 865, its exit near bar
1102), then stops the engine through the confirmation dialog. Any console error, uncaught
exception or Content-Security-Policy violation fails it. Screenshots of the key moments go to
``$RT_ARTIFACTS/dashboard`` (default ``test-artifacts/dashboard`` at the repository's root).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from requirements import missing
from web_support import PASSWORD, SYMBOL, USER, paper_server

if TYPE_CHECKING:
    from playwright.sync_api import Browser, ConsoleMessage, Error, Page, Request

pytestmark = [pytest.mark.slow, pytest.mark.network]

CHROMIUM = Path("/usr/bin/chromium")
REPO = Path(__file__).resolve().parents[2]
WAIT_MS = 20_000  # Playwright's auto-waiting limit for what the stream brings
# Names each CSP violation's directive in a console error (besides Chromium's own message).
WATCH_CSP = """
document.addEventListener("securitypolicyviolation", (e) => {
  console.error(`CSP violation: ${e.violatedDirective} blocked ${e.blockedURI || "inline"}`);
});
"""


@dataclass
class PageLog:
    """What the page reported: console errors, uncaught exceptions, and the API calls it made."""

    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def on_console(self, message: ConsoleMessage) -> None:
        """Keep a console message if it is an error (CSP violations are logged as errors)."""
        if message.type == "error":
            self.errors.append(message.text)

    def on_error(self, error: Error) -> None:
        """Keep an exception the page's code did not catch."""
        self.errors.append(f"uncaught: {error}")

    def on_request(self, request: Request) -> None:
        """Keep the URL of an API request."""
        if "/api/v1/" in request.url:
            self.requests.append(request.url)

    def calls(self, route: str) -> int:
        """Return how many requests went to an API route (its path, without the query)."""
        return sum(url.split("?")[0].endswith(route) for url in self.requests)


def artifacts() -> Path:
    """Return the screenshot folder (created), kept by CI as test artifacts."""
    folder = REPO / os.environ.get("RT_ARTIFACTS", "test-artifacts") / "dashboard"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def chromium() -> Iterator[Browser]:
    """Return Debian's Chromium under Playwright (never a downloaded browser)."""
    if not CHROMIUM.is_file():
        missing(f"{CHROMIUM} is not installed (apt-get install chromium)")
    try:
        from playwright.sync_api import expect, sync_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    expect.set_options(timeout=WAIT_MS)  # what the stream brings may take a few seconds
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@contextmanager
def open_page(browser: Browser, url: str) -> Iterator[tuple[Page, PageLog]]:
    """Open the dashboard in a fresh context, recording its errors; close it on the way out."""
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, device_scale_factor=1)
    log = PageLog()
    page = context.new_page()
    page.add_init_script(WATCH_CSP)
    page.on("console", log.on_console)
    page.on("pageerror", log.on_error)
    page.on("request", log.on_request)
    page.set_default_timeout(WAIT_MS)
    try:
        page.goto(url)
        yield page, log
    finally:
        context.close()


def log_in(page: Page, password: str) -> None:
    """Fill in the login form and send it."""
    page.fill("#username", USER)
    page.fill("#password", password)
    page.click("#login-submit")


def chart_points(page: Page) -> int:
    """Return how many equity points the chart draws."""
    points: int = page.evaluate(
        "() => document.getElementById('equity-chart').data?.[0]?.x?.length ?? 0"
    )
    return points


def test_a_wrong_password_shows_an_error_and_no_data(tmp_path: Path, chromium: Browser) -> None:
    from playwright.sync_api import expect

    server, gates, journal = paper_server(tmp_path, gate=50, login_attempts=2)
    try:
        server.start_in_thread()
        gates.open_to(server, 50)
        with open_page(chromium, server.url) as (page, log):
            expect(page.locator("#login-form")).to_be_visible()
            log_in(page, "not the password")
            expect(page.locator("#login-error")).to_have_text("Wrong user name or password.")
            expect(page.locator("#dashboard")).to_be_hidden()
            expect(page.locator("#top-status")).to_be_hidden()
            assert page.locator("#positions tbody tr, #decisions > li").count() == 0
            assert chart_points(page) == 0
            log_in(page, "still not the password")
            log_in(page, PASSWORD)  # the limit (2 failures) holds even the right password back
            expect(page.locator("#login-error")).to_have_text(
                re.compile(r"Too many failed logins: try again in \d+ s\.")
            )
            expect(page.locator("#dashboard")).to_be_hidden()
            assert log.requests == [f"{server.url}/api/v1/auth/login"] * 3  # and nothing else
            # the browser logs each refused login itself; nothing else may be logged
            assert len(log.errors) == 3
            assert all(re.search(r"status of (401|429)", e) for e in log.errors), log.errors
    finally:
        server.stop()
        journal.close()


def test_the_dashboard_follows_the_engine_live_and_stops_it(
    tmp_path: Path, chromium: Browser
) -> None:
    from playwright.sync_api import expect

    shots = artifacts()
    server, gates, journal = paper_server(tmp_path, gate=860)
    try:
        server.start_in_thread()
        gates.open_to(server, 860)
        with open_page(chromium, server.url) as (page, log):
            log_in(page, PASSWORD)
            expect(page.locator("#engine-state")).to_have_text("running")
            expect(page.locator("#stream-state")).to_have_text("live")
            page.wait_for_function("() => document.querySelectorAll('#decisions > li').length > 0")
            page.wait_for_function(
                "() => document.getElementById('equity-chart').data?.[0]?.x?.length >= 860"
            )
            assert page.locator("#positions tbody tr").count() == 0
            expect(page.locator("#venues-panel")).to_be_hidden()  # one venue: no routing
            newest = page.eval_on_selector_all(
                "#decisions > li", "items => Math.max(...items.map((li) => +li.dataset.number))"
            )
            points, decision_reads = chart_points(page), log.calls("/api/v1/decisions")
            page.screenshot(path=shots / "01-logged-in.png", full_page=True)

            gates.feeds[-1].open_to(875)  # the entry decided on bar 864 fills at bar 865
            held = page.locator("#positions tbody tr").filter(has_text=SYMBOL)
            expect(held).to_have_count(1)
            expect(held.locator("td").nth(1)).to_have_text("long")
            expect(page.locator('#decisions > li[data-action="enter_long"]').first).to_be_visible()
            page.wait_for_function(
                "n => Math.max(...[...document.querySelectorAll('#decisions > li')]"
                ".map((li) => +li.dataset.number)) > n",
                arg=newest,
            )
            page.wait_for_function(
                "n => document.getElementById('equity-chart').data[0].x.length >= n",
                arg=points + 15,
            )
            assert log.calls("/api/v1/decisions") == decision_reads  # they came on the stream
            expect(page.locator("#kpi-exposure")).not_to_have_text("0.0%")
            page.screenshot(path=shots / "02-live-position.png", full_page=True)

            gates.feeds[-1].open_to(1_110)  # the position closes near bar 1102
            closed = page.locator('#trades tbody tr[data-state="closed"]').filter(has_text=SYMBOL)
            expect(closed).to_have_count(1)
            expect(page.locator("#positions tbody tr")).to_have_count(0)
            expect(page.locator('[data-empty-for="positions"]')).to_be_visible()

            page.click("button[data-action=stop]")
            dialog = page.locator("#confirm-dialog")
            expect(dialog).to_be_visible()
            page.fill("#confirm-reason", "end of the browser test")
            page.click("#confirm-ok")
            expect(dialog).to_be_hidden()
            expect(page.locator("#engine-state")).to_have_text("stopped")
            expect(page.locator("#control-result")).to_contain_text("stop")
            expect(page.locator("button[data-action=start]")).to_be_enabled()
            expect(page.locator("button[data-action=stop]")).to_be_disabled()
            assert server.host.state == "stopped"
            assert server.host.stop_reason == f"stopped by {USER}: end of the browser test"
            page.screenshot(path=shots / "03-stopped.png", full_page=True)

            page.set_viewport_size({"width": 390, "height": 844})
            page.wait_for_timeout(400)  # the chart follows the window's size
            width = page.evaluate("() => document.documentElement.scrollWidth")
            assert width <= 390, f"the page is {width}px wide on a 390px screen"
            page.screenshot(path=shots / "04-mobile.png", full_page=True)
            assert log.errors == []
    finally:
        server.stop()
        journal.close()


def test_a_routed_runs_venues_show_their_figures_and_health(
    tmp_path: Path, chromium: Browser
) -> None:
    from playwright.sync_api import expect

    from reinforcetrade.storage import Journal
    from reinforcetrade.web.server import WebServer
    from web_support import web_config

    url = f"sqlite:///{tmp_path / 'journal.db'}"
    journal = Journal(url).open()
    run = journal.start_run("live", name="desk")
    base = {"orders": 5, "fills": 3, "rejects": 2, "errors": 0, "fill_ratio": 1.0,
            "reject_rate": 0.4, "slippage_bps": 3.25, "latency_p50_ms": 12.0,
            "latency_p99_ms": 40.0}  # fmt: skip
    journal.record_venue_stats(run, base | {"venue": "beta", "health": "degraded"})
    journal.record_venue_stats(run, base | {"venue": "alpha", "health": "ok", "rejects": 0,
                                            "reject_rate": 0.0, "slippage_bps": None})  # fmt: skip
    journal.record_order({"client_order_id": "l1s-abc", "run_id": run, "symbol": SYMBOL,
                          "side": "sell", "type": "stop", "qty": 0.1, "stop_price": 49_000.0,
                          "status": "submitted"})  # fmt: skip
    route = {"venues": [{"venue": "beta", "all_in_bps": 2.0, "why": "takes 0.04 it can hold"},
                        {"venue": "alpha", "all_in_bps": 12.0, "why": "takes 0.06 it can hold"}],
             "children": [["beta", "l1s-abc.1", 0.04, 49_990.0],
                          ["alpha", "l1s-abc.2", 0.06, 50_000.0]]}  # fmt: skip
    journal.set_order_route("l1s-abc", "beta,alpha", route)
    server = WebServer.build(web_config(), journal, journal_url=url, port=0).start_in_thread()
    try:
        with open_page(chromium, server.url) as (page, log):
            log_in(page, PASSWORD)
            venue = page.locator("#orders tbody tr").first.locator("td").nth(5)
            expect(venue).to_have_text("beta,alpha")
            expect(venue).to_have_attribute(
                "title",
                "beta: 2.0 bps, takes 0.04 it can hold\nalpha: 12.0 bps, takes 0.06 it can hold",
            )
            expect(page.locator("#venues-panel")).to_be_visible()
            beta = page.locator("#venues tbody tr").filter(has_text="beta")
            expect(beta.locator("td").nth(1)).to_have_text("degraded")
            expect(beta.locator("td").nth(1)).to_have_class("health-degraded")
            expect(beta.locator("td").nth(6)).to_have_text("40%")
            expect(beta.locator("td").nth(8)).to_have_text("3.3")
            expect(beta.locator("td").nth(9)).to_have_text("12 / 40")
            alpha = page.locator("#venues tbody tr").filter(has_text="alpha")
            expect(alpha.locator("td").nth(8)).to_have_text("—")
            page.screenshot(path=artifacts() / "05-venues.png", full_page=True)
            assert log.errors == []
    finally:
        server.stop()
        journal.close()
