"""`EngineMetrics`: a replay's state scraped in Prometheus's text format and parsed back."""

from __future__ import annotations

from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from reinforcetrade.data import generate_market
from reinforcetrade.storage import Journal
from reinforcetrade.strategies import MultiAgentStrategy
from reinforcetrade.trading.alerts import Notice
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.feeds import ReplayFeed
from reinforcetrade.trading.monitor import TradeMonitor
from reinforcetrade.trading.paper import PaperBroker
from reinforcetrade.web.metrics import EngineMetrics, fan_out


def scrape(metrics: EngineMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Parse the exposition text as Prometheus would: (sample name, labels) -> value."""
    samples = {}
    for family in text_string_to_metric_families(metrics.render().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_a_replay_is_scraped_with_its_state(tmp_path: Path) -> None:
    frames = dict(generate_market(["BTC/USDT", "ETH/USDT"], bars=1_500, seed=4).frames)
    metrics, notices = EngineMetrics(), list[Notice]()
    monitor = TradeMonitor(notices.append)
    with Journal(f"sqlite:///{tmp_path / 'paper.db'}") as journal:
        engine = LiveEngine(MultiAgentStrategy(), ReplayFeed(frames), PaperBroker(), journal,
                            observer=fan_out(metrics, monitor))  # fmt: skip
        summary = engine.run(max_bars=1_200)
        mid_run = scrape(metrics)
        engine_equity = float(engine.stepper.run.track.equity[summary.bars - 1])
    assert mid_run[("rt_bars_total", ())] == 1_200
    assert mid_run[("rt_equity", ())] == pytest.approx(engine_equity)
    assert mid_run[("rt_decisions_total", ())] == summary.decisions
    assert mid_run[("rt_decision_latency_ms_count", ())] == 1_200
    assert 0.0 <= mid_run[("rt_drawdown", ())] < 1.0
    assert mid_run[("rt_risk_state", ())] == 0.0
    fills = sum(v for (name, _), v in mid_run.items() if name == "rt_fills_total")
    assert fills == summary.fills > 0
    assert mid_run[("rt_slippage_bps_count", ())] == fills  # every paper fill has a reference
    not_worse = mid_run[("rt_slippage_bps_bucket", (("le", "0.0"),))]
    within_50 = mid_run[("rt_slippage_bps_bucket", (("le", "50.0"),))]
    assert not_worse < fills == within_50  # the cost model's spread and slippage: paid, small
    placed = sum(
        v for (name, labels), v in mid_run.items()
        if name == "rt_orders_total" and ("outcome", "placed") in labels
    )  # fmt: skip
    assert placed == summary.orders
    assert ("rt_exposure", (("symbol", "ETH/USDT"),)) in mid_run
    assert isinstance(notices[0], Notice)  # the monitor saw the same events


def test_a_routed_venues_figures_are_gauges() -> None:
    from reinforcetrade.trading.events import EngineEvent

    metrics = EngineMetrics()
    figures = {"venue": "beta", "orders": 5, "fills": 3, "rejects": 2, "errors": 0,
               "fill_ratio": 1.0, "reject_rate": 0.4, "slippage_bps": float("nan"),
               "latency_p50_ms": 12.0, "latency_p99_ms": 40.0, "health": "degraded"}  # fmt: skip
    metrics(EngineEvent("venue", 0, figures))
    got = {labels: v for (name, labels), v in scrape(metrics).items() if name == "rt_venue"}
    by = {dict(labels)["figure"]: v for labels, v in got.items()}
    assert by == {"fill_ratio": 1.0, "reject_rate": 0.4, "latency_p50_ms": 12.0,
                  "latency_p99_ms": 40.0, "health": 1.0}  # fmt: skip  # no slippage figure yet
