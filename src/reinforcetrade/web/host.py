"""`EngineHost`: the trading engine a server runs on its own thread, steered and watched.

The host builds a `LiveEngine` on `start` (a fresh session each time), runs it on a thread, and
is its observer: every event updates the Prometheus metrics and goes out on the WebSocket hub,
and each bar also sends the new decisions (with every agent's vote and the reasons), the
positions and the equity. The controls (stop, pause, flatten, lift a halt) pass through to
the engine; the API records each in the audit log.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

import pandas as pd
from pydantic import SecretStr

from reinforcetrade.core.plain import plain
from reinforcetrade.storage import Journal
from reinforcetrade.trading.control import ControlRefused
from reinforcetrade.trading.engine import LiveEngine
from reinforcetrade.trading.events import EngineEvent, EngineSummary
from reinforcetrade.web import reads
from reinforcetrade.web.hub import Hub
from reinforcetrade.web.metrics import EngineMetrics

log = logging.getLogger(__name__)

HostState = Literal["idle", "running", "stopping", "stopped", "failed"]
CURVE = 100_000  # equity points the host keeps in memory (the API's largest page)
Builder = Callable[[Journal, Callable[[EngineEvent], None]], LiveEngine]


class EngineHost:
    """Starts, stops and steers one engine at a time; what it reports goes to metrics and hub."""

    def __init__(
        self,
        build: Builder | None,
        *,
        journal_url: str | None,
        hub: Hub,
        metrics: EngineMetrics,
        journal_password: SecretStr | None = None,
        max_bars: int | None = None,
        also: Callable[[EngineEvent], None] | None = None,
    ) -> None:
        self._build = build
        self.journal_url = journal_url
        self._password = journal_password
        self.hub = hub
        self.metrics = metrics
        self.max_bars = max_bars
        self.also = also  # e.g. a TradeMonitor's alerts
        self.engine: LiveEngine | None = None
        self.state: HostState = "idle"
        self.stop_reason: str | None = None
        self.error: str | None = None
        self.summary: EngineSummary | None = None
        self.alerts: deque[dict[str, Any]] = deque(maxlen=200)
        self.last_bar: dict[str, Any] | None = None
        self.signals: list[dict[str, Any]] = []
        # the running session's equity points as the journal has them (the latest CURVE)
        self.curve: deque[dict[str, Any]] = deque(maxlen=CURVE)
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._published = 0  # stepper decision rows sent on the hub
        self.version = 0  # bumped whenever what the API shows may have changed
        self._first: float | None = None  # the session's first equity and its peak so far
        self._peak: float | None = None

    # -- lifecycle ----------------------------------------------------------------------------
    @property
    def can_trade(self) -> bool:
        """Return whether this server was given an engine to run."""
        return self._build is not None

    def start(self) -> dict[str, Any]:
        """Build a fresh engine session and run it on its own thread; return the status."""
        with self._lock:
            if self._build is None or self.journal_url is None:
                raise ControlRefused(
                    "this server reads the journal only: start it with trading options "
                    "(`reinforcetrade serve --paper …`) to run an engine"
                )
            if self.state in ("running", "stopping"):
                raise ControlRefused(f"the engine is already {self.state}")
            journal = Journal(self.journal_url, password=self._password).open()
            try:
                engine = self._build(journal, self.observe)
                engine.start()
            except BaseException:
                journal.close()
                raise
            self.engine, self.summary, self.error, self.stop_reason = engine, None, None, None
            self.last_bar, self.signals, self._published = None, [], 0
            known = reads.account(journal, engine.run_id)  # a continued live run has some
            self._peak = known["peak"]
            self._first = None if known["equity"] is None else known["equity"] - known["pnl_total"]
            self.curve = deque(reads.equity_curve(journal, engine.run_id, limit=CURVE),
                               maxlen=CURVE)  # fmt: skip
            self.state = "running"
            self._thread = threading.Thread(
                target=self._run, args=(engine,), name="reinforcetrade-engine", daemon=True
            )
            self._thread.start()
        self.metrics.running.set(1)
        self._announce()
        return self.status()

    def _run(self, engine: LiveEngine) -> None:
        try:
            self.summary = engine.run(max_bars=self.max_bars, poll=0.25)
            self.state, self.stop_reason = "stopped", self.summary.stopped
        except Exception as exc:  # the API reports it; the server stays up
            log.exception("the engine failed")
            self.state, self.error = "failed", str(exc)
        finally:
            engine.journal.close()
            self.metrics.running.set(0)
            self._announce()

    def stop(self, reason: str = "stopped from the API") -> dict[str, Any]:
        """Ask the running engine to stop after the bar in hand."""
        engine = self._running()
        engine.request_stop(reason)
        self.state = "stopping"
        self._announce()
        return self.status()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the engine's thread to end; return whether it has."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
            return not thread.is_alive()
        return True

    def shutdown(self, timeout: float = 30.0) -> None:
        """Stop the engine if it runs and wait for it (the server is going down)."""
        if self.state in ("running", "stopping") and self.engine is not None:
            self.engine.request_stop("the server is shutting down")
        self.wait(timeout)

    # -- controls -----------------------------------------------------------------------------
    def pause(self, actor: str, reason: str) -> dict[str, Any]:
        """Withhold new entries."""
        self._running().pause(actor=actor, reason=reason)
        self._announce()
        return self.status()

    def unpause(self, actor: str, reason: str) -> dict[str, Any]:
        """Allow new entries again."""
        self._running().unpause(actor=actor, reason=reason)
        self._announce()
        return self.status()

    def flatten(self, symbol: str | None, actor: str, reason: str) -> list[str]:
        """Close a symbol's position (None: all) at the next bar."""
        return self._running().flatten(symbol, actor=actor, reason=reason)

    def lift_halt(self, actor: str, reason: str) -> int:
        """Lift the running engine's halt; return the risk event's id."""
        event = self._running().lift_halt(actor=actor, reason=reason)
        self._announce()
        return event

    def _running(self) -> LiveEngine:
        if self.engine is None or self.state != "running":
            raise ControlRefused(f"the engine is not running (it is {self.state})")
        return self.engine

    # -- what the API shows -------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """Return the engine's part of the status."""
        engine = self.engine
        out: dict[str, Any] = {
            "state": self.state,
            "can_trade": self.can_trade,
            "stop_reason": self.stop_reason,
            "error": self.error,
        }
        if engine is not None:
            out |= {
                "mode": engine.mode,
                "name": engine.name,
                "run_id": engine.run_id,
                "symbols": list(engine.stepper.symbols),
                "timeframe": engine.feed.timeframe.text,
                "bars": engine.stepper.t,
                "paused": engine.paused,
                "risk_state": engine.state,
            }
        return dict(plain(out))

    # -- the engine's observer (on its thread) ------------------------------------------------
    def observe(self, event: EngineEvent) -> None:
        """Update metrics and push the event (and, on a bar, what it produced) to clients."""
        self.metrics(event)
        if self.also is not None:
            self.also(event)
        at = event.time / 1e9
        fields = dict(event.fields)
        if event.kind == "alert":
            fields = {
                "kind": fields["alert"],
                "message": fields["message"],
                "time": _iso(event.time),
            }
            self.alerts.append(fields)
        if event.kind != "bar":
            self.hub.publish(event.kind, fields, at=at)
            if event.kind == "control":
                self._announce()
            return
        engine = self.engine
        if engine is None:
            return
        fields["time"] = _iso(int(str(fields.pop("close_ns"))))
        self.last_bar = fields
        self.version += 1
        self.hub.publish("bar", fields, at=at)
        equity = float(str(fields["equity"]))
        if equity == equity:
            self._first = equity if self._first is None else self._first
            self._peak = max(self._peak or equity, equity)
        account = {k: fields[k] for k in ("time", "equity", "cash", "exposure")}
        account["drawdown"] = 1.0 - equity / self._peak if self._peak else None
        account["pnl_total"] = equity - self._first if self._first is not None else None
        self.curve.append({k: account[k] for k in ("time", "equity", "cash", "exposure",
                                                    "drawdown")})  # fmt: skip
        self.hub.publish("equity", account, at=at)
        self._decisions(engine, at)
        self.signals = [s | {"time": _iso(s["time"])} for s in engine.stepper.latest_signals()]
        self.metrics.signals(self.signals)
        held = self.positions()
        self.metrics.book(len(held))
        self.hub.publish("positions", held, at=at)

    def equity_curve(self, limit: int) -> list[dict[str, Any]]:
        """Return the running session's latest `limit` equity points, oldest first."""
        points = list(self.curve)
        return points[-limit:]

    def positions(self) -> list[dict[str, Any]]:
        """Return the running engine's open positions, marked at the last close."""
        engine = self.engine
        if engine is None:
            return []
        book = engine.orders.positions
        return [
            dict(
                plain(
                    {
                        "symbol": symbol,
                        "qty": p.quantity,
                        "avg_price": p.average_price,
                        "last_price": p.mark,
                        "unrealised_pnl": p.unrealised_pnl,
                        "realised_pnl": p.realised_pnl,
                    }
                )
            )
            for symbol, p in sorted(book.positions().items())
            if not p.is_flat
        ]

    def _decisions(self, engine: LiveEngine, at: float) -> None:
        """Push the decision rows written since the last bar, shaped as `/decisions` items."""
        rows = range(self._published, int(engine.stepper.run.book.cnt[0]))
        if not len(rows):
            return
        frame = engine.stepper.decision_frame(rows)
        names = engine.strategy.agent_names
        base = engine.recorder.base
        for number, row in zip(frame.index, frame.to_dict("records"), strict=True):
            item = {
                k: row[k]
                for k in (
                    "time",
                    "symbol",
                    "action",
                    "direction",
                    "confidence",
                    "threshold",
                    "regime",
                    "size",
                    "qty",
                    "stop",
                    "take_profit",
                    "exit_reason",
                )
            }
            item["number"] = int(number) + base
            item["reasons"] = [w for w in str(row["reasons"] or "").split("; ") if w]
            item["agents"] = [
                {
                    "agent": n,
                    "signal": row[f"signal_{n}"],
                    "confidence": row[f"confidence_{n}"],
                    "weight": row[f"weight_{n}"],
                }
                for n in names
            ]
            self.hub.publish("decision", item, at=at)
        self._published = rows.stop

    def touch(self) -> None:
        """Note that what the API shows may have changed (a bar, a control action)."""
        self.version += 1

    def _announce(self) -> None:
        self.touch()
        self.hub.publish("engine", self.status(), at=time.time())


def _iso(ns: int) -> str:
    """Return epoch nanoseconds as an ISO-8601 UTC time."""
    return pd.Timestamp(ns, tz="UTC").isoformat()
