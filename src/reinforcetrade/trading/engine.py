"""`LiveEngine`: the backtester's agents, tower and risk rules on closed bars as they arrive.

On each closed bar the engine runs the same compiled loop as the backtester (`BarStepper`),
then sends the orders it decided through the `OrderManager` (journal first, never blindly
retried) to a `Broker`, places each filled entry's protective stop and take-profit, and
journals the bar, every decision with its agents' votes and reasons, the fills, positions,
equity and risk-state changes. The bar-to-order latency of every bar is kept (`latencies_ms`).

Entries are withheld — decided and journalled, not sent — while the engine is stopping, while
the market data is stale (a bar that closed more than `stale_after_bars` bar lengths ago, or
none for as long: one alert per episode) and while the venue is unavailable; exits and stops go
on. Entries are withheld too while an operator has paused them (`pause`); `flatten` and
`lift_halt` run on the engine's thread between bars (`trading.control`). An engine whose
strategy follows the registry's champion RL model switches to a newly promoted one between bars
(`trading.champions`), recorded in the audit log and told to observers. The risk state
survives restarts: an engine starting under a name whose last recorded state is HALTED stays
halted until `LiveEngine.resume` records an explicit resume. One engine per journal
(`storage.locks`); paper and live never share a journal.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict
from functools import partial
from pathlib import Path
from types import FrameType
from typing import Literal

import numpy as np
import pandas as pd

from reinforcetrade import __version__
from reinforcetrade.agents.venue_quality import HealthChange
from reinforcetrade.backtesting.records import D_ACTION, D_ALGO, D_EXIT, D_QTY, D_SYMBOL
from reinforcetrade.backtesting.stepper import BarStepper, Step
from reinforcetrade.config import Settings
from reinforcetrade.core.clock import Clock, WallClock
from reinforcetrade.core.codes import Action, ExitReason, TradingState
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.simulation.account import CASH, PEAK, QTY, STATE
from reinforcetrade.simulation.orders import CLOSE, KIND
from reinforcetrade.simulation.slicing import Algo, Slicing
from reinforcetrade.storage import Journal
from reinforcetrade.storage.locks import EngineLock
from reinforcetrade.storage.rows import OrderRow
from reinforcetrade.strategies.multi_agent import MultiAgentStrategy
from reinforcetrade.trading.broker import (
    Broker,
    BrokerError,
    BrokerFill,
    OrderRequest,
    OrderSide,
)
from reinforcetrade.trading.champions import ChampionWatch, ModelSwitch
from reinforcetrade.trading.control import ControlQueue, ControlRefused
from reinforcetrade.trading.events import Alert, EngineEvent, EngineSummary
from reinforcetrade.trading.feeds import ClosedBar, Feed
from reinforcetrade.trading.live import (
    ENTRY,
    EXIT,
    LiveRouting,
    ReconciliationError,
    role_of,
)
from reinforcetrade.trading.orders import OrderManager, Submitted
from reinforcetrade.trading.paper import PaperBroker, protect_entries
from reinforcetrade.trading.recorder import BarRecorder
from reinforcetrade.trading.venues import RoutedBroker
from reinforcetrade.trading.working import WorkedEntries

log = logging.getLogger(__name__)

Mode = Literal["paper", "live"]
LOCK_NAME = "trading-engine"
_ENTRIES = (int(Action.ENTER_LONG), int(Action.ENTER_SHORT))
_EXIT = int(Action.EXIT)
_AT_ONCE = int(Algo.IMMEDIATE)
_INTRABAR = (int(ExitReason.STOP_LOSS), int(ExitReason.TAKE_PROFIT))
_STATE_WORDS = {int(s): s.name.lower() for s in TradingState}
_STATE_KIND = {"halted": "halt", "reducing": "reducing", "active": "resume"}


class EngineRefused(UserInputError):
    """The engine will not start on this journal (another mode's runs, an unsupported broker)."""


def journal_url(settings: Settings, mode: Mode) -> str:
    """Return the journal a mode trades on (`trading.journal_url`, else a per-mode SQLite file).

    The file is storage.url's with ``-paper`` or ``-live`` added to its name; other databases
    need the setting.
    """
    if settings.trading.journal_url:
        return settings.trading.journal_url
    url = settings.storage.url
    if not url.startswith("sqlite:///") or url.endswith(":memory:"):
        raise UserInputError(
            f"set trading.journal_url: {mode} trading keeps its own journal, and only a SQLite "
            "file's name can be derived from storage.url"
        )
    path = Path(url.removeprefix("sqlite:///"))
    return "sqlite:///" + str(path.with_name(f"{path.stem}-{mode}{path.suffix or '.db'}"))


class LiveEngine:
    """One strategy trading closed bars from a feed through a broker, journalled as it goes."""

    def __init__(
        self,
        strategy: MultiAgentStrategy,
        feed: Feed,
        broker: Broker,
        journal: Journal,
        clock: Clock | None = None,
        *,
        mode: Mode = "paper",
        name: str | None = None,
        history: int | None = None,
        warmup: int | None = None,
        alert: Callable[[Alert], None] | None = None,
        observer: Callable[[EngineEvent], None] | None = None,
    ) -> None:
        cfg = strategy.settings.trading
        if mode == "paper" and not isinstance(broker, PaperBroker):
            raise EngineRefused(f"paper trading takes the paper broker, not {broker.name!r}")
        if mode == "live" and isinstance(broker, PaperBroker):
            raise EngineRefused("live trading needs an exchange broker, not the paper broker")
        self.strategy = strategy
        self.feed = feed
        self.broker = broker
        self.journal = journal
        self.clock = clock or WallClock()
        self.mode = mode
        self.name = name or mode
        self.alert_sink = alert
        self.observer = observer  # e.g. a TradeMonitor
        self.stale_after_ns = int(cfg.stale_after_bars * feed.timeframe.nanos)
        self.cancel_on_stop = cfg.open_orders_on_stop == "cancel"
        self.stepper = BarStepper(
            strategy,
            feed.symbols,
            feed.timeframe,
            history=history if history is not None else cfg.history_bars,
            warmup=warmup,
            live=mode == "live",
        )
        self.champions = ChampionWatch.of(self.stepper)  # None: no champion followed
        self.run_id = 0  # set by start()
        self.orders: OrderManager  # set by start()
        self._started = False
        self._base = 0  # journal number of the stepper's first decision (a live run goes on)
        self._recorder: BarRecorder | None = None
        self.routing: LiveRouting | None = None
        self.worked: WorkedEntries | None = None  # live: entries sent as children over bars
        self.latencies_ms: list[float] = []
        self.alerts: list[Alert] = []
        self._lock: EngineLock | None = None
        self._stop = threading.Event()
        self._stop_reason = ""
        self._stale = False
        self._state = "active"
        self._last_close_ns: int | None = None
        self._caught_up = not feed.realtime  # history first: its bars are old, not stale
        self._counts = {"orders": 0}
        self._paused: str | None = None
        self.control = ControlQueue()  # requests from other threads, run between bars

    # -- lifecycle ----------------------------------------------------------------------------
    def start(self) -> int:
        """Take the journal's engine lock, check its mode, open a run, restore the risk state."""
        self._refuse_other_mode()
        owner = f"{self.mode}:{self.name} pid {os.getpid()} on {socket.gethostname()}"
        self._lock = self.journal.acquire_engine_lock(LOCK_NAME, owner=owner)
        try:
            self._open_run()
        except BaseException:
            self._lock.release()
            self._lock = None
            raise
        last = self.journal.latest_risk_state(self.name, kind=self.mode)
        if last is not None and last.state == "halted":
            self.stepper.run.pf[STATE] = float(TradingState.HALTED)
            self._state = "halted"
            self._raise(
                "halted",
                f"{self.name!r} resumes HALTED ({last.reason or 'no reason recorded'}): no new "
                f"entries until `reinforcetrade trade resume --name {self.name}`",
            )
        return self.run_id

    def _open_run(self) -> None:
        """Start (paper) or continue (live) the run, and reconcile with the venue (live)."""
        settings = self.strategy.settings
        previous = self._previous_live_run() if self.mode == "live" else None
        if previous is not None:
            self.run_id, started = previous
            self.journal.reopen_run(self.run_id)
            numbers = self.journal.read_table("decisions", run_id=self.run_id)["number"]
            self._base = int(numbers.max()) + 1 if len(numbers) else 0
        else:
            self.run_id = self.journal.start_run(
                self.mode,
                name=self.name,
                config_hash=settings.config_hash(),
                settings=settings.public_dict(),
                symbols=self.feed.symbols,
                timeframe=self.feed.timeframe.text,
                version=__version__,
            )
            run = self.journal.run(self.run_id)
            started = int(pd.Timestamp(run.started_at).value) if run else self.clock.now_ns()
        self.orders = OrderManager(self.broker, self.journal, self.run_id, prefix=self.mode[0])
        self.orders.on_submit = self._on_submit
        self._started = True
        self._recorder = BarRecorder(self.journal, self.stepper, self.orders, self.clock,
                                     self._base)  # fmt: skip
        if isinstance(self.broker, PaperBroker):
            self.broker.attach(self.stepper, str(self.run_id))
            self.orders.on_fill = self._on_fill(None)
            return
        if isinstance(self.broker, RoutedBroker):
            self._wire_venues(self.broker)
        self.routing = LiveRouting(self.stepper, self.orders, self.broker, self.journal,
                                   self._raise, self._base)  # fmt: skip
        self.worked = WorkedEntries(self.stepper, self.routing,
                                    Slicing.from_config(settings.execution))  # fmt: skip
        try:
            notes = self.routing.reconcile(started)
        except ReconciliationError as exc:
            self._risk_event("reconcile", str(exc))
            self._raise("reconcile", str(exc))
            self.journal.end_run(self.run_id, "failed")
            self._started = False
            raise
        for note in notes:
            self._risk_event("reconcile", note)
        self.orders.on_fill = self._on_fill(self.orders.on_fill)

    def _wire_venues(self, broker: RoutedBroker) -> None:
        """Connect a routed broker to the run: routes and venue figures journalled, alerts."""

        def health(change: HealthChange) -> None:
            self._raise("venue_health", f"{change.venue} is {change.new} (was {change.old}): "
                        f"{change.why}")  # fmt: skip

        broker.journal_to(self.journal, self.run_id, lambda f: self._emit("venue", **asdict(f)))
        broker.on_change = health

    def _previous_live_run(self) -> tuple[int, int] | None:
        """Return the last live run of this name (id, start in ns), which a restart continues."""
        runs = self.journal.read_table("runs")
        mine = runs[(runs["name"] == self.name) & (runs["kind"] == "live")]
        if mine.empty:
            return None
        last = mine.sort_values("id").iloc[-1]
        return int(last["id"]), int(pd.Timestamp(last["started_at"]).value)

    @property
    def recorder(self) -> BarRecorder:
        """Return the journal writer of the session (after `start`)."""
        if self._recorder is None:
            raise RuntimeError("start() the engine first")
        return self._recorder

    def request_stop(self, reason: str = "stop requested") -> None:
        """Ask the engine to stop after the bar in hand (safe from a signal handler)."""
        self._stop_reason = self._stop_reason or reason
        self._stop.set()

    @property
    def state(self) -> str:
        """Return the risk state: active, reducing or halted."""
        return self._state

    @property
    def paused(self) -> str | None:
        """Return why new entries are paused by an operator, or None."""
        return self._paused

    @property
    def stopping(self) -> bool:
        """Return whether a stop was requested."""
        return self._stop.is_set()

    # -- an operator's controls (any thread) --------------------------------------------------
    def pause(self, *, actor: str, reason: str = "") -> None:
        """Withhold new entries until `unpause` (exits, stops and take-profits go on)."""
        self._paused = f"paused by {actor}" + (f": {reason}" if reason else "")
        self._emit("control", action="pause", actor=actor, reason=reason, detail=self._paused)

    def unpause(self, *, actor: str, reason: str = "") -> None:
        """Allow new entries again after `pause`."""
        self._paused = None
        self._emit("control", action="unpause", actor=actor, reason=reason, detail="")

    def flatten(
        self, symbol: str | None, *, actor: str, reason: str = "", timeout: float = 30.0
    ) -> list[str]:
        """Close one symbol's position (None: all) at market on the next bar; return them.

        Entry orders still working for those symbols are cancelled first. Runs on the
        engine's thread between bars; `ControlRefused` when there is nothing to close.
        """
        if symbol is not None and symbol not in self.stepper.symbols:
            raise ControlRefused(
                f"{symbol!r} is not traded by this engine ({', '.join(self.stepper.symbols)})"
            )
        work = partial(self._flatten_now, symbol, actor, reason)
        return self.control.call(work, timeout=timeout)

    def lift_halt(self, *, actor: str, reason: str, timeout: float = 30.0) -> int:
        """Lift a HALTED risk state now (recorded as a resume); return the risk event's id.

        The drawdown peak restarts at the current equity, or the halt would trip again on the
        next bar.
        """
        if not reason.strip():
            raise ControlRefused("lifting a halt needs a reason (it is recorded)")
        return self.control.call(partial(self._lift_now, actor, reason), timeout=timeout)

    def run(self, *, max_bars: int | None = None, poll: float = 1.0) -> EngineSummary:
        """Trade until the feed ends, `max_bars` bars, or a stop request (SIGINT/SIGTERM)."""
        if not self._started:
            self.start()
        stopped, status = "the feed ended", "completed"
        self.control.open()
        try:
            with self._signals():
                seen = 0
                while not self._stop.is_set():
                    self.control.run_pending()
                    bars = self.feed.next_bars(poll)
                    if bars is None:
                        if self.feed.finished:
                            break
                        self._check_silence()
                        continue
                    self.on_bars(bars)
                    seen += 1
                    if max_bars is not None and seen >= max_bars:
                        stopped = f"{max_bars} bars"
                        break
                if self._stop.is_set():
                    stopped, status = self._stop_reason, "stopped"
        except BaseException:
            stopped, status = "failed", "failed"
            raise
        finally:
            self.shutdown(status)
        return self.summary(stopped)

    def shutdown(self, status: str = "stopped") -> None:
        """Stop cleanly: apply the open-order policy, flush, end the run, release the lock."""
        self.control.close(f"the engine has stopped ({status})")
        if self.worked is not None:
            self.worked.drop_all(f"the engine stopped ({status})")
        try:
            if self._started and status != "failed" and self.cancel_on_stop:
                self._cancel_entries()
            if self._started:
                self.journal.end_run(self.run_id, status)
                self._started = False
        finally:
            self.feed.close()
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def summary(self, stopped: str) -> EngineSummary:
        """Return the session's figures so far."""
        return EngineSummary(
            run_id=self.run_id,
            bars=self.stepper.t,
            decisions=self._recorder.counts["decisions"] if self._recorder else 0,
            orders=self._counts["orders"],
            fills=(self._recorder.counts["fills"] if self._recorder else 0)
            + (self.routing.fills if self.routing else 0),
            state=self._state,
            stopped=stopped,
            latencies_ms=np.asarray(self.latencies_ms, dtype=np.float64),
            alerts=tuple(self.alerts),
        )

    @staticmethod
    def resume(journal: Journal, name: str, *, reason: str, actor: str, mode: Mode) -> int:
        """Record the explicit command that lifts a halt; return the risk event's id."""
        if not reason.strip():
            raise UserInputError("a resume needs a reason (it is recorded)")
        runs = journal.read_table("runs")
        mine = runs[(runs["name"] == name) & (runs["kind"] == mode)]
        if mine.empty:
            raise UserInputError(f"no {mode} run named {name!r} in this journal")
        last = journal.latest_risk_state(name, kind=mode)
        if last is None or last.state != "halted":
            state = "active" if last is None else last.state
            raise UserInputError(f"{name!r} is not halted (its risk state is {state})")
        run_id = int(mine["id"].max())
        return journal.record_risk_event(
            run_id, kind="resume", state="active", reason=reason, actor=actor
        )

    # -- one bar ------------------------------------------------------------------------------
    def on_bars(self, bars: list[ClosedBar]) -> Step:
        """Run one closed bar: decide, send, protect, then journal everything it produced."""
        if not self._started:
            raise RuntimeError("start() the engine first")
        started = time.perf_counter()
        step_ns = self.feed.timeframe.nanos
        closed_ns = bars[0].ts + step_ns
        stale = self.feed.realtime and self.clock.now_ns() - closed_ns > self.stale_after_ns
        if self.routing is not None:
            routing = self.routing
            self._on_venue(lambda: routing.before_bar(bars))
        self._follow_champions(bars[0].ts)
        step = self.stepper.step(
            [(b.symbol, b.ts, b.open, b.high, b.low, b.close, b.volume) for b in bars]
        )
        protective = 0
        if isinstance(self.broker, PaperBroker):
            self.broker.absorb(step)
        withheld = self._withhold_reason(stale)
        if self.routing is not None:  # live: what an order refers to is written before it
            self.recorder.decisions()
        sent, held = self._send(step, withheld)
        sent += self._work(step, withheld)
        if isinstance(self.broker, PaperBroker):
            protective, refused = protect_entries(self.stepper, self.orders, step, self._base)
            for why in refused:
                self._raise("stop_rejected", why)
        self.latencies_ms.append((time.perf_counter() - started) * 1e3)
        self.orders.positions.mark({b.symbol: b.close for b in bars})  # unrealised P&L
        self._journal(step, bars, held, closed_ns)
        self._last_close_ns = closed_ns
        if not stale:
            self._caught_up = True
        if stale and self._caught_up:
            self._mark_stale(f"bar {bars[0].ts} arrived {self._age(closed_ns)} after its close")
        elif self._stale:
            self._stale = False
            self._risk_event("stale_data", "market data is fresh again")
        self._counts["orders"] += sent + protective
        if self.observer is not None:
            track = self.stepper.run.track
            self._emit("bar", close_ns=closed_ns, equity=float(track.equity[step.t]),
                       cash=float(track.cash[step.t]), state=self._state,
                       exposure=float(np.abs(track.exposure[:, step.t]).sum()),
                       exposures={sym: float(track.exposure[i, step.t])
                                  for i, sym in enumerate(self.stepper.symbols)},
                       latency_ms=self.latencies_ms[-1], stale=self._stale,
                       decisions=len(step.decisions))  # fmt: skip
            for s in np.flatnonzero(self.stepper.breaker_at(step.t)):
                self._emit("breaker", symbol=self.stepper.symbols[int(s)])
        return step

    def _follow_champions(self, ts: int) -> None:
        """Between bars: switch to each newly promoted champion model (one stat per bar)."""
        watch = self.champions
        if watch is None:
            return
        try:
            switches = watch.poll()
        except Exception as exc:  # the registry is another process's: never stop trading
            if not isinstance(exc, UserInputError):
                log.exception("reading the model registry failed")
            self._raise("model", f"the model registry cannot be read ({exc}); trading on with "
                        "the models in use until registry.json changes again")  # fmt: skip
            return
        at = pd.Timestamp(ts, tz="UTC").isoformat()
        for switch in switches:
            self._record_switch(switch, at)

    def _record_switch(self, switch: ModelSwitch, at: str) -> None:
        """Audit a model switch (or its failure), tell observers, alert on a failure."""
        old = switch.old or "none"
        detail = f"{old} -> {switch.new} at bar {at}"
        if switch.outcome == "failed":
            detail += f": {switch.error}; still trading {old}"
        target = f"{switch.symbol} {switch.timeframe}"
        self.journal.record_audit(actor="engine", action="switch-model", target=target,
                                  reason=switch.reason, outcome=switch.outcome,
                                  detail=detail)  # fmt: skip
        self._emit("model", symbol=switch.symbol, timeframe=switch.timeframe, old=switch.old,
                   new=switch.new, outcome=switch.outcome, reason=switch.reason, detail=detail,
                   bar=at)  # fmt: skip
        if switch.outcome == "failed":
            self._raise("model", f"{target}: cannot switch to the new champion {switch.new} "
                        f"({switch.error}); still trading {old}")  # fmt: skip
        else:
            log.warning("%s: switched model %s (%s)", target, detail, switch.reason)

    def _on_venue(self, call: Callable[[], object]) -> bool:
        """Run venue work; a venue that does not answer degrades the engine (entries wait)."""
        try:
            call()
        except BrokerError as exc:
            first = not self.orders.degraded
            self.orders.degraded = str(exc)
            if first:
                self._raise("venue", f"the venue is not answering ({exc}): no new entries, "
                            "stops stay on the venue; retrying each bar")  # fmt: skip
            return False
        return True

    def _withhold_reason(self, stale: bool) -> str | None:
        if self._stop.is_set():
            return "the engine is stopping"
        if self._paused is not None:
            return f"entries {self._paused}"
        if stale:
            return "market data is stale" if self._caught_up else "catching up on history"
        if self.orders.degraded:
            return f"the venue is unavailable ({self.orders.degraded})"
        return None

    def _send(self, step: Step, withheld: str | None) -> tuple[int, list[tuple[int, str]]]:
        """Send the step's orders (withholding entries if told why); return (sent, held)."""
        di, df = self.stepper.decision_rows(step.decisions)
        pos_f = self.stepper.run.book.pos_f
        sent, held = 0, []
        for i, k in enumerate(step.decisions):
            action, s = int(di[i, D_ACTION]), int(di[i, D_SYMBOL])
            if action not in _ENTRIES and not (action == _EXIT and di[i, D_EXIT] not in _INTRABAR):
                continue  # blocked, or an exit the simulated stop already filled
            if action in _ENTRIES and withheld is not None:
                self.stepper.withdraw(s)
                held.append((k, withheld))
                continue
            symbol = self.stepper.symbols[s]
            side: OrderSide
            if action == _EXIT:
                side = "sell" if pos_f[s, QTY] > 0 else "buy"
            else:
                side = "buy" if action == int(Action.ENTER_LONG) else "sell"
            qty = float(df[i, D_QTY])
            if not qty > 0:
                continue
            if self.routing is not None and action == _EXIT:
                if self.worked is not None:
                    self.worked.drop(s, "an exit was decided")
                if not self._on_venue(partial(self.routing.exit, s, EXIT, decision=k)):
                    self.stepper.withdraw(s)
                sent += 1
                continue
            if self.worked is not None and action in _ENTRIES and di[i, D_ALGO] != _AT_ONCE:
                self.worked.start(s, k, side, qty, int(di[i, D_ALGO]))  # its children: `work`
                continue
            tag = ENTRY if action in _ENTRIES else EXIT
            request = OrderRequest(self.orders.client_id(tag), symbol, side, "market", qty)
            result = self.orders.submit(request, decision=k + self._base)
            self._report(result)
            sent += 1
            if self.routing is not None:
                if result.outcome != "placed":
                    self.stepper.withdraw(s)
                else:
                    self._on_venue(partial(self.routing.settle, symbol, result.order))
        return sent, held

    def _work(self, step: Step, withheld: str | None) -> int:
        """Send this bar's child of each worked entry, or drop them while entries wait."""
        worked = self.worked
        if worked is None or not worked.working:
            return 0
        state = _STATE_WORDS[int(self.stepper.run.track.state[step.t])]
        why = withheld or ("trading is halted" if state == "halted" else None)
        if why is not None:
            worked.drop_all(why)
            return 0
        children = 0

        def send() -> None:
            nonlocal children
            children = worked.work()

        self._on_venue(send)
        return children

    def _report(self, result: Submitted) -> None:
        if result.outcome not in ("placed",):
            log.warning("order %s: %s (%s)", result.order.client_order_id, result.outcome,
                        result.reason)  # fmt: skip

    def _on_submit(self, request: OrderRequest, result: Submitted) -> None:
        """Tell the observer of every order sent, and what became of it."""
        self._emit("order", symbol=request.symbol, type=request.type, side=request.side,
                   qty=request.quantity, role=role_of(request.client_order_id),
                   client_order_id=request.client_order_id, outcome=result.outcome,
                   reason=result.reason)  # fmt: skip

    def _journal(
        self, step: Step, bars: list[ClosedBar], held: list[tuple[int, str]], closed_ns: int
    ) -> None:
        """Write what the bar produced, and act on a change of the risk state."""
        self.recorder.bar(step, bars, held, closed_ns, paper=self.routing is None)
        state = _STATE_WORDS[int(self.stepper.run.track.state[step.t])]
        if state != self._state:
            self._state = state
            why = {"halted": "drawdown beyond risk.max_drawdown_halt",
                   "reducing": "losing streak at risk.loss_streak_limit",
                   "active": "the risk rules allow full size again"}[state]  # fmt: skip
            self._risk_event(_STATE_KIND[state], why)
            if state == "halted":
                self._raise("halted", f"trading HALTED: {why}")
        if self._lock is not None:
            self._lock.heartbeat()

    # -- stale data, alerts, risk events ------------------------------------------------------
    def _check_silence(self) -> None:
        """No bar within the poll: alert once if the last one closed too long ago."""
        if not self._caught_up or not self.feed.realtime:  # a replay's bars are old by design
            return
        last = self._last_close_ns
        now = self.clock.now_ns()
        if last is None:
            return
        if now - last - self.feed.timeframe.nanos > self.stale_after_ns:
            self._mark_stale(f"no closed bar for {self._age(last)}")

    def _mark_stale(self, why: str) -> None:
        if self._stale:
            return
        self._stale = True
        self._risk_event("stale_data", why)
        self._raise("stale_data", f"market data is stale: {why}; no new entries")

    def _age(self, since_ns: int) -> str:
        return f"{(self.clock.now_ns() - since_ns) / 1e9:.0f} s"

    def _risk_event(self, kind: str, reason: str) -> None:
        if self._started:
            self.journal.record_risk_event(
                self.run_id, kind=kind, state=self._state, reason=reason, actor="engine"
            )

    def _raise(self, kind: str, message: str) -> None:
        alert = Alert(kind, message)
        self.alerts.append(alert)
        log.warning("ALERT %s: %s", kind, message)
        if self.alert_sink is not None:
            self.alert_sink(alert)
        self._emit("alert", alert=kind, message=message)

    def _emit(self, kind: str, **fields: object) -> None:
        """Tell the observer, if any; an observer's failure never stops trading."""
        if self.observer is None:
            return
        try:
            self.observer(EngineEvent(kind, self.clock.now_ns(), fields))
        except Exception:  # a monitor is an onlooker: log, go on
            log.exception("the engine's observer failed on a %s event", kind)

    def _on_fill(
        self, inner: Callable[[BrokerFill, OrderRow | None], None] | None
    ) -> Callable[[BrokerFill, OrderRow | None], None]:
        """Return a fill hook that books as before, then tells the observer."""

        def hook(fill: BrokerFill, order: OrderRow | None) -> None:
            if inner is not None:
                inner(fill, order)
            cid = None if order is None else order.client_order_id
            ref = fill.reference_price
            sign = 1.0 if fill.side == "buy" else -1.0
            bps = sign * (fill.price / ref - 1.0) * 1e4 if ref and ref == ref else None
            self._emit("fill", symbol=fill.symbol, side=fill.side, qty=fill.quantity,
                       price=fill.price, role=None if cid is None else role_of(cid),
                       client_order_id=cid, slippage_bps=bps)  # fmt: skip

        return hook

    # -- controls, on the engine's thread -----------------------------------------------------
    def _flatten_now(self, symbol: str | None, actor: str, reason: str) -> list[str]:
        """Cancel working entries and decide market exits of the symbols held."""
        if not self._started:
            raise ControlRefused("the engine is not running")
        wanted = list(self.stepper.symbols) if symbol is None else [symbol]
        self._cancel_entries(wanted)
        if self.worked is not None:
            for name in wanted:
                self.worked.drop(self.stepper.symbols.index(name), f"flattened by {actor}")
        pos_f, pend_i = self.stepper.run.book.pos_f, self.stepper.run.pending.pend_i
        rows, closed = [], []
        for name in wanted:
            s = self.stepper.symbols.index(name)
            if pos_f[s, QTY] != 0.0 and pend_i[s, KIND] != CLOSE:
                rows.append(self.stepper.flatten(s))
                closed.append(name)
        if not rows:
            what = "any symbol" if symbol is None else symbol
            raise ControlRefused(f"no open position in {what} to flatten")
        if self.routing is not None:  # live: what an order refers to is written before it
            self.recorder.decisions()
        step = Step(max(self.stepper.t - 1, 0), range(rows[0], rows[-1] + 1), range(0))
        sent, _ = self._send(step, None)
        self._counts["orders"] += sent
        self.recorder.decisions()
        log.warning("flatten %s by %s (%s)", ", ".join(closed), actor, reason or "no reason")
        self._emit("control", action="flatten", actor=actor, reason=reason,
                   detail=", ".join(closed))  # fmt: skip
        return closed

    def _lift_now(self, actor: str, reason: str) -> int:
        """Lift the halt in the running loop and record it."""
        if self._state != "halted":
            raise ControlRefused(f"{self.name!r} is not halted (its risk state is {self._state})")
        run, t = self.stepper.run, self.stepper.t - 1
        run.pf[STATE] = float(TradingState.ACTIVE)
        run.pf[PEAK] = float(run.track.equity[t]) if t >= 0 else float(run.pf[CASH])
        self._state = "active"
        event = self.journal.record_risk_event(
            self.run_id, kind="resume", state="active", reason=reason, actor=actor
        )
        self._emit("control", action="lift_halt", actor=actor, reason=reason, detail="")
        return event

    # -- stopping -----------------------------------------------------------------------------
    def _cancel_entries(self, symbols: list[str] | None = None) -> None:
        """Cancel entry orders still working (of `symbols`; exits, stops, take-profits stay)."""
        for row in self.journal.open_orders(self.run_id):
            k = -1 if row.decision_number is None else row.decision_number - self._base
            if row.type != "market" or not 0 <= k < int(self.stepper.run.book.cnt[0]):
                continue
            if symbols is not None and row.symbol not in symbols:
                continue
            di, _ = self.stepper.decision_rows(range(k, k + 1))
            if int(di[0, D_ACTION]) in _ENTRIES:
                self.orders.cancel(row.symbol, row.client_order_id)

    def _refuse_other_mode(self) -> None:
        runs = self.journal.read_table("runs")
        other = "live" if self.mode == "paper" else "paper"
        if len(runs) and (runs["kind"] == other).any():
            raise EngineRefused(
                f"this journal holds {other} runs; {self.mode} trading keeps its own journal "
                "(set trading.journal_url, or use the default per-mode file)"
            )

    @contextmanager
    def _signals(self) -> Iterator[None]:
        """Turn SIGINT/SIGTERM into a graceful stop while running (main thread only)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            self.request_stop(f"signal {signal.Signals(signum).name}")

        before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, h in before.items():
                signal.signal(s, h)
