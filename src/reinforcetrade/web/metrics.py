"""`EngineMetrics`: a live engine's state as Prometheus metrics (prometheus-client).

An engine observer (`LiveEngine(observer=EngineMetrics())`, or beside a `TradeMonitor` through
`fan_out`): every event updates the gauges, counters and histograms in its own registry, which
`render()` writes in Prometheus's text format (what a `/metrics` route serves).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select

from reinforcetrade.storage import Journal, schema
from reinforcetrade.storage.orders import OPEN_STATUSES, ORDER_STATUSES
from reinforcetrade.trading.events import EngineEvent

_STATES = {"active": 0, "reducing": 1, "halted": 2}
_HEALTH = {"ok": 0, "degraded": 1, "down": 2}
_VENUE_FIGURES = ("slippage_bps", "fill_ratio", "reject_rate", "latency_p50_ms", "latency_p99_ms")
LATENCY_BUCKETS = (0.5, 1, 2, 3, 5, 7.5, 10, 25, 50, 100, 250)  # ms
SLIPPAGE_BUCKETS = (-50, -10, -5, -2, -1, 0, 1, 2, 5, 10, 25, 50, 100)  # bps


class EngineMetrics:
    """Prometheus metrics of one engine, fed by its events."""

    def __init__(self, registry: CollectorRegistry | None = None, *, prefix: str = "rt") -> None:
        self.registry = registry or CollectorRegistry()
        r, p = self.registry, prefix
        self.equity = Gauge(f"{p}_equity", "Account equity at the last close", registry=r)
        self.cash = Gauge(f"{p}_cash", "Cash at the last close", registry=r)
        self.peak = Gauge(f"{p}_equity_peak", "Highest equity seen", registry=r)
        self.drawdown = Gauge(f"{p}_drawdown", "Drawdown from the equity peak (0-1)", registry=r)
        self.pnl = Gauge(f"{p}_pnl", "Equity minus the first equity seen", registry=r)
        self.exposure = Gauge(
            f"{p}_exposure", "Signed exposure as a share of equity", ["symbol"], registry=r
        )
        self.gross = Gauge(f"{p}_gross_exposure", "Gross exposure / equity", registry=r)
        self.risk_state = Gauge(
            f"{p}_risk_state", "Risk state: 0 active, 1 reducing, 2 halted", registry=r
        )
        self.stale = Gauge(f"{p}_data_stale", "1 while market data is stale", registry=r)
        self.bars = Counter(f"{p}_bars", "Closed bars handled", registry=r)
        self.decisions = Counter(f"{p}_decisions", "Decision records written", registry=r)
        self.orders = Counter(
            f"{p}_orders", "Orders sent, by outcome and role", ["outcome", "role"], registry=r
        )
        self.fills = Counter(f"{p}_fills", "Executions booked", ["symbol", "side"], registry=r)
        self.breakers = Counter(
            f"{p}_circuit_breaker_trips", "Circuit-breaker trips", ["symbol"], registry=r
        )
        self.alerts = Counter(f"{p}_alerts", "Alerts raised, by kind", ["kind"], registry=r)
        self.latency = Histogram(
            f"{p}_decision_latency_ms", "Bar-to-order latency inside the engine (ms)",
            buckets=LATENCY_BUCKETS, registry=r,
        )  # fmt: skip
        self.slippage = Histogram(
            f"{p}_slippage_bps", "Fill price against its reference, bps (positive: worse)",
            buckets=SLIPPAGE_BUCKETS, registry=r,
        )  # fmt: skip
        self.open_positions = Gauge(f"{p}_open_positions", "Symbols with a position", registry=r)
        self.agent_confidence = Gauge(
            f"{p}_agent_confidence", "Each agent's latest signed confidence (-1 to 1)",
            ["symbol", "agent"], registry=r,
        )  # fmt: skip
        self.tower_confidence = Gauge(
            f"{p}_tower_confidence", "The tower's latest signed confidence (-1 to 1)", ["symbol"],
            registry=r,
        )  # fmt: skip
        self.running = Gauge(f"{p}_engine_running", "1 while the engine runs", registry=r)
        self.venue = Gauge(
            f"{p}_venue", "Each routed venue's execution figures (slippage_bps, fill_ratio, "
            "reject_rate, latency_p50_ms, latency_p99_ms, health: 0 ok, 1 degraded, 2 down)",
            ["venue", "figure"], registry=r,
        )  # fmt: skip
        self._first = float("nan")
        self._peak = float("nan")

    def __call__(self, event: EngineEvent) -> None:
        """Update the metrics from one engine event."""
        handler = getattr(self, f"_on_{event.kind}", None)
        if handler is not None:
            handler(event.fields)

    def render(self) -> bytes:
        """Return the metrics in Prometheus's text exposition format."""
        return bytes(generate_latest(self.registry))

    # -- events -------------------------------------------------------------------------------
    def _on_bar(self, f: Any) -> None:
        equity = float(f["equity"])
        self.bars.inc()
        self.decisions.inc(int(f.get("decisions", 0)))
        self.latency.observe(float(f.get("latency_ms", 0.0)))
        self.cash.set(float(f["cash"]))
        self.gross.set(float(f["exposure"]))
        for symbol, value in dict(f.get("exposures", {})).items():
            self.exposure.labels(symbol=symbol).set(float(value))
        self.risk_state.set(_STATES.get(str(f["state"]), -1))
        self.stale.set(1.0 if f.get("stale") else 0.0)
        if not equity == equity:
            return
        if not self._first == self._first:
            self._first = equity
        if not equity <= self._peak:
            self._peak = equity
        self.equity.set(equity)
        self.peak.set(self._peak)
        self.pnl.set(equity - self._first)
        self.drawdown.set(1.0 - equity / self._peak if self._peak > 0 else 0.0)

    def _on_order(self, f: Any) -> None:
        self.orders.labels(outcome=str(f["outcome"]), role=str(f.get("role") or "-")).inc()

    def _on_fill(self, f: Any) -> None:
        self.fills.labels(symbol=str(f["symbol"]), side=str(f["side"])).inc()
        bps = f.get("slippage_bps")
        if bps is not None and bps == bps:
            self.slippage.observe(float(bps))

    def signals(self, latest: list[dict[str, Any]]) -> None:
        """Set the agents' and the tower's latest confidences (from `BarStepper.latest_signals`)."""
        for row in latest:
            symbol = str(row["symbol"])
            for agent in row["agents"]:
                self.agent_confidence.labels(symbol=symbol, agent=str(agent["agent"])).set(
                    float(agent["signal"]) * float(agent["confidence"])
                )
            tower = row["tower"]
            self.tower_confidence.labels(symbol=symbol).set(
                float(tower["direction"]) * float(tower["confidence"])
            )

    def book(self, positions: int) -> None:
        """Set how many positions are open."""
        self.open_positions.set(positions)

    def _on_venue(self, f: Any) -> None:
        venue = str(f["venue"])
        for figure in _VENUE_FIGURES:
            value = f.get(figure)
            if value is not None and value == value:
                self.venue.labels(venue=venue, figure=figure).set(float(value))
        self.venue.labels(venue=venue, figure="health").set(_HEALTH.get(str(f["health"]), -1))

    def _on_breaker(self, f: Any) -> None:
        self.breakers.labels(symbol=str(f["symbol"])).inc()

    def _on_alert(self, f: Any) -> None:
        self.alerts.labels(kind=str(f["alert"])).inc()


def fan_out(*observers: Callable[[EngineEvent], None]) -> Callable[[EngineEvent], None]:
    """Return one engine observer that hands every event to each of `observers` in turn."""

    def observe(event: EngineEvent) -> None:
        for observer in observers:
            observer(event)

    return observe


class ServerMetrics:
    """The API server's own metrics: requests by route and status, WebSocket clients and drops."""

    def __init__(self, registry: CollectorRegistry, *, prefix: str = "rt") -> None:
        r, p = registry, prefix
        self.requests = Counter(
            f"{p}_api_requests", "API requests by method, route and status",
            ["method", "route", "status"], registry=r,
        )  # fmt: skip
        self.seconds = Histogram(
            f"{p}_api_request_seconds", "API request duration (s)", ["method", "route"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
            registry=r,
        )  # fmt: skip
        self.ws_clients = Gauge(f"{p}_ws_clients", "WebSocket clients connected", registry=r)
        self.ws_dropped = Counter(
            f"{p}_ws_dropped", "WebSocket messages dropped for slow clients", registry=r
        )
        self.logins = Counter(
            f"{p}_api_logins", "Login attempts by outcome", ["outcome"], registry=r
        )


class OrderStates(Collector):
    """The run's orders from the journal, read at scrape (not on the engine's bar path).

    `rt_orders_by_state{state}`: orders by journal status; `rt_open_orders`: those still working.
    """

    def __init__(self, journal: Journal, run_id: Callable[[], int | None], *, prefix: str = "rt"):
        self.journal = journal
        self.run_id = run_id
        self.prefix = prefix

    def collect(self) -> Iterator[GaugeMetricFamily]:
        """Yield both gauge families (empty before the first run)."""
        p = self.prefix
        states = GaugeMetricFamily(f"{p}_orders_by_state", "Orders of the run by state",
                                   labels=["state"])  # fmt: skip
        working = GaugeMetricFamily(f"{p}_open_orders", "Orders working at the venue")
        run = self.run_id()
        if run is not None:
            orders = schema.orders
            counts = {str(r["status"]): int(r["n"]) for r in self.journal.fetch(
                select(orders.c.status, func.count().label("n"))
                .where(orders.c.run_id == run).group_by(orders.c.status)
            )}  # fmt: skip
            for state in ORDER_STATUSES:
                states.add_metric([state], counts.get(state, 0))
            working.add_metric([], sum(counts.get(state, 0) for state in OPEN_STATUSES))
        yield states
        yield working
