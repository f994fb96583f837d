"""Benchmark the HTML report of a 1,000,000-bar backtest; prints one JSON line.

- generate_s: `ReportGenerator().generate_full_report(result)` for the multi-agent strategy on
  1,000,000 hourly bars of one symbol (report.html, report.json, trades.csv, decisions.csv), the
  result's tables already built; `from_saved_s` is what `reinforcetrade report DIR` does: load
  the saved result, then write the report.
- html_mb: the size of report.html (plotly.js, every chart and the complete decision log inside).
- open_s: headless Debian chromium (Playwright, network off) from navigation to the page saying
  it is ready: every chart drawn and the decision log's first page shown; `page_ms` is the
  page's own account of where that time went.
- peer: quantstats' HTML tear sheet (`quantstats.reports.html`, matplotlib) on the same equity
  curve, which holds portfolio charts and metrics only (no trades, agents or decisions); timed on
  100,000 bars because it is slow.

Timings are medians of 3 runs after an untimed warm-up.
"""

from __future__ import annotations

import json
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from common import machine, median_seconds  # benchmarks/common.py
from reinforcetrade.backtesting import BacktestResult, EnhancedBacktester, load_result
from reinforcetrade.data import generate_market
from reinforcetrade.reports import ReportGenerator
from reinforcetrade.strategies import MultiAgentStrategy

BARS = 1_000_000
PEER_BARS = 100_000
CHROMIUM = "/usr/bin/chromium"


def backtest(bars: int) -> BacktestResult:
    """The multi-agent strategy on `bars` synthetic hourly bars, every table built."""
    frame = generate_market(["BTC/USDT"], bars=bars, seed=7).frames["BTC/USDT"]
    result = EnhancedBacktester(MultiAgentStrategy(use_rl=False)).run(frame)
    _ = (result.decisions, result.trades, result.bars, result.exposure, result.metrics)
    return result


def open_seconds(html: Path, runs: int = 3) -> tuple[float, dict[str, Any]]:
    """Return the median seconds chromium takes to open the report, and the page's timings."""
    from playwright.sync_api import sync_playwright

    times: list[float] = []
    timings: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        for run in range(runs + 1):
            context = browser.new_context(offline=True, viewport={"width": 1400, "height": 900})
            page = context.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))  # noqa: B023 (used at once)
            start = time.perf_counter()
            page.goto(html.as_uri())
            page.wait_for_function("document.body.dataset.ready === 'true'", timeout=120_000)
            elapsed = time.perf_counter() - start
            if errors:
                raise RuntimeError(f"the report failed in chromium: {errors}")
            if run:  # the first open warms the browser's caches
                times.append(elapsed)
                timings = page.evaluate("window.report.timings")
            context.close()
        browser.close()
    return statistics.median(times), timings


def quantstats_seconds(result: BacktestResult, folder: Path) -> float:
    """Return quantstats' HTML tear sheet time on the first PEER_BARS bars of the equity."""
    import matplotlib

    matplotlib.use("Agg")
    import quantstats as qs

    returns = result.returns.iloc[:PEER_BARS].tz_localize(None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return median_seconds(
            lambda: qs.reports.html(  # type: ignore[no-untyped-call]
                returns, output=str(folder / "qs.html"), periods_per_year=8760
            ),
            runs=1,
        )


def main() -> None:
    """Print the figures as one JSON line."""
    result = backtest(BARS)
    generator = ReportGenerator()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        generate = median_seconds(lambda: generator.generate_full_report(result, folder / "live"))
        result.save(folder / "saved")
        from_saved = median_seconds(
            lambda: generator.generate_full_report(load_result(folder / "saved"), folder / "cli")
        )
        html = folder / "live" / "report.html"
        sizes = {p.name: round(p.stat().st_size / 1e6, 2) for p in (folder / "live").iterdir()}
        opened, page_ms = open_seconds(html)
        peer = quantstats_seconds(result, folder)
        ours_small = median_seconds(
            lambda: generator.generate_full_report(
                backtest(PEER_BARS), folder / "small"
            )  # includes its backtest: an upper bound
        )
    figures = {
        "bench": "report",
        "bars": BARS,
        "decisions": len(result.decisions),
        "trades": len(result.trades),
        "generate_s": round(generate, 3),
        "from_saved_s": round(from_saved, 3),
        "html_mb": sizes["report.html"],
        "files_mb": sizes,
        "open_s": round(opened, 3),
        "page_ms": page_ms,
        "targets": {"generate_s": 5.0, "html_mb": 15.0, "open_s": 3.0},
        "peer_100k_bars": {
            "quantstats_html_s": round(peer, 3),
            "ours_backtest_and_report_s": round(ours_small, 3),
        },
        "machine": machine(),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
