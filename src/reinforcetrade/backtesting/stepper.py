"""`BarStepper`: the backtester's compiled loop advanced one closed bar at a time.

The live engine's paper trading runs on it: each closed bar is appended, every agent computes
its newest signal on the latest `history` bars (each agent is causal, so on a window long
enough for its recursive indicators to settle the newest value is the one a backtest over the
same bars computes; an RL policy carries its own side from bar to bar and runs on the newest
observation only), and the same compiled loop — tower, risk rules, simulated broker — runs
that one bar. A session replayed through `EnhancedBacktester` gives the same decisions, bar for
bar (the backtester decides nothing on its final bar).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.agents.base import AgentSignals
from reinforcetrade.backtesting.engine import _Run
from reinforcetrade.backtesting.kernel import LIVE, TOWER, TowerInputs, run_bars
from reinforcetrade.backtesting.metrics import periods_per_year
from reinforcetrade.backtesting.records import Sized, Vote, write_decision
from reinforcetrade.backtesting.result import decision_table, fill_table, trade_table
from reinforcetrade.core.codes import Action, ExitReason, Reason, Regime
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.timeframes import Timeframe
from reinforcetrade.data.bars import Bars
from reinforcetrade.simulation.account import (
    COST_BPS,
    QTY,
    STOP,
    TAKE,
    apply_fill,
    observe_cost,
)
from reinforcetrade.simulation.costs import CostParams
from reinforcetrade.simulation.orders import ALGO, CLOSE, DEC, EXIT, KIND, NONE, Execution
from reinforcetrade.simulation.slicing import Slicing
from reinforcetrade.strategies.multi_agent import MultiAgentStrategy, SignalFollower

F8 = npt.NDArray[np.float64]
_NO_TARGETS = np.zeros((1, 1), dtype=np.float64)
I8 = npt.NDArray[np.int64]
FIELDS = ("open", "high", "low", "close", "volume")
_EXIT_BITS = {
    int(ExitReason.STOP_LOSS): int(Reason.STOP_LOSS),
    int(ExitReason.TAKE_PROFIT): int(Reason.TAKE_PROFIT),
    int(ExitReason.MANUAL): int(Reason.MANUAL),
}


@dataclass(frozen=True)
class Step:
    """What one bar produced: its position, and the new decision and fill rows' ranges."""

    t: int
    decisions: range
    fills: range


class BarStepper:
    """The compiled loop over a growing set of bars (capacity doubles as bars arrive)."""

    _market: npt.NDArray[Any]  # (open/high/low/close/volume, symbols, bars)
    _directions: npt.NDArray[Any]
    _confidences: npt.NDArray[Any]
    _regime: npt.NDArray[Any]
    _vol_regime: npt.NDArray[Any]
    _trend_regime: npt.NDArray[Any]
    _breaker: npt.NDArray[Any]
    _ready: npt.NDArray[Any]

    def __init__(
        self,
        strategy: MultiAgentStrategy,
        symbols: Sequence[str],
        timeframe: Timeframe,
        *,
        initial_balance: float | None = None,
        costs: CostParams | None = None,
        capacity: int = 1024,
        history: int | None = None,
        warmup: int | None = None,
        live: bool = False,
    ) -> None:
        """Prepare the loop for `symbols`.

        `history`: bars the agents see at each step (None: all); `warmup`: bars before the
        first decision (default `backtest.warmup_bars`); `live`: the loop decides but fills
        nothing — a venue does, and its fills are booked with `book_fill`.
        """
        settings = strategy.settings
        if history is not None and history < strategy.lookback():
            raise UserInputError(
                f"history of {history} bars is shorter than the agents' look-back "
                f"({strategy.lookback()} bars): they would never be ready; raise "
                "trading.history_bars"
            )
        self.history = history
        self.mode = LIVE if live else TOWER
        self.strategy = strategy
        self.symbols = tuple(symbols)
        self.timeframe = timeframe
        per_year = settings.backtest.periods_per_year or periods_per_year(
            timeframe.text, settings.backtest.calendar
        )
        self.model = CostParams.from_config(settings.costs, float(per_year))
        self.execution = Execution(
            costs or self.model,
            self.model,
            float(settings.costs.latency_ms),
            settings.agents.environment.cost_feedback_alpha,
            Slicing.from_config(settings.execution),
        )
        self.tower = strategy.tower()
        self.warmup = settings.backtest.warmup_bars if warmup is None else int(warmup)
        self._followers = [strategy.follow(s, timeframe.text) for s in self.symbols]
        self.cash = float(initial_balance or settings.backtest.initial_cash)
        self.t = 0
        self.times: list[int] = []
        self._history = {s: np.empty((0, 6)) for s in self.symbols}  # ts + OHLCV per row
        self._seen = {s: 0 for s in self.symbols}
        self._capacity = 0
        self._run = _Run(len(self.symbols), max(capacity, 2), self.cash)
        self._allocate(max(capacity, 2))

    @property
    def run(self) -> _Run:
        """Return the loop's arrays (book, pending orders, per-bar output, records)."""
        return self._run

    def step(self, bars: Sequence[tuple[str, int, float, float, float, float, float]]) -> Step:
        """Run the next closed bar: (symbol, open time ns, open, high, low, close, volume) rows."""
        if not bars:
            raise UserInputError("a step needs at least one symbol's bar")
        ts = int(bars[0][1])
        if any(int(b[1]) != ts for b in bars):
            raise UserInputError(
                f"a step's bars must share one time, got {sorted({b[1] for b in bars})}"
            )
        if self.times and ts <= self.times[-1]:
            raise UserInputError(f"bar time {ts} is not after the last one ({self.times[-1]})")
        if self.t + 1 >= self._capacity:  # the loop decides nothing on its array's last bar
            self._allocate(self._capacity * 2)
        t = self.t
        self._market[:, :, t] = math.nan
        for symbol, _ts, o, h, lo, c, v in bars:
            s = self.symbols.index(symbol)
            self._market[:, s, t] = (o, h, lo, c, v)
            self._append(symbol, ts, (o, h, lo, c, v))
            self._signals(s, t)
        cnt = self._run.book.cnt
        n_dec, n_fill = int(cnt[0]), int(cnt[1])
        done, m = t, self._market
        while done < t + 1:
            done = run_bars(
                done, t + 1, self.mode, self.warmup, m[0], m[1], m[2], m[3], m[4], _NO_TARGETS,
                math.nan, math.nan, self._inputs, self.execution, self._run.book,
                self._run.pending, self._run.track, self._run.room,
            )  # fmt: skip
            self._run.grow()
        self.times.append(ts)
        self.t = t + 1
        cnt = self._run.book.cnt
        return Step(t, range(n_dec, int(cnt[0])), range(n_fill, int(cnt[1])))

    def decision_rows(self, rows: range) -> tuple[I8, F8]:
        """Return decision rows (ints, floats) as the backtester records them."""
        return self._run.track.dec_i[rows.start : rows.stop], self._run.track.dec_f[
            rows.start : rows.stop
        ]

    def decision_frame(self, rows: range) -> pd.DataFrame:
        """Return decision rows as `BacktestResult.decisions` shows them (indexed by number)."""
        di, df = self.decision_rows(rows)
        n = self.t
        names = self.strategy.agent_names
        signals = [
            [
                AgentSignals(name, self._directions[s, :n, a], self._confidences[s, :n, a])
                for a, name in enumerate(names)
            ]
            for s in range(len(self.symbols))
        ]
        positions = [np.arange(n, dtype=np.int64)] * len(self.symbols)
        frame = decision_table(
            di, df, self.symbols, self.index(), names, self.tower.weights, signals, positions,
            "multi_agent",
        )  # fmt: skip
        frame.index = pd.RangeIndex(rows.start, rows.stop)
        return frame

    def fill_frame(self, rows: range) -> pd.DataFrame:
        """Return fill rows as `BacktestResult.fills` shows them (indexed by fill number)."""
        book = self._run.book
        frame = fill_table(
            book.fill_i[rows.start : rows.stop],
            book.fill_f[rows.start : rows.stop],
            self.symbols,
            self.index(),
            self.execution.latency_ms,
        )
        frame.index = pd.RangeIndex(rows.start, rows.stop)
        return frame

    def trade_frame(self, rows: range) -> pd.DataFrame:
        """Return closed-trade rows as `BacktestResult.trades` shows them (indexed by number)."""
        ti = self._run.book.trade_i[rows.start : rows.stop]
        tf = self._run.book.trade_f[rows.start : rows.stop]
        frame = trade_table(ti, tf, self.symbols, self.index())
        frame.index = pd.RangeIndex(rows.start, rows.stop)
        return frame

    def latest_signals(self) -> list[dict[str, Any]]:
        """Return each symbol's agent signals and tower vote on the last bar stepped."""
        t = self.t - 1
        if t < 0:
            return []
        track, out = self._run.track, []
        for s, symbol in enumerate(self.symbols):
            vote = float(track.vote[s, t])
            out.append({
                "symbol": symbol,
                "time": self.times[t],
                "ready": bool(self._ready[s, t]),
                "regime": Regime(int(self._regime[s, t])).name.lower(),
                "agents": [
                    {"agent": name, "signal": int(self._directions[s, t, a]),
                     "confidence": float(self._confidences[s, t, a])}
                    for a, name in enumerate(self.strategy.agent_names)
                ],
                "tower": {"direction": int(np.sign(vote)) if vote == vote else 0,
                          "confidence": abs(vote), "threshold": float(track.threshold[s, t])},
            })  # fmt: skip
        return out

    def index(self) -> pd.DatetimeIndex:
        """Return the bar times stepped so far (UTC)."""
        return pd.DatetimeIndex(np.asarray(self.times, dtype="datetime64[ns]")).tz_localize("UTC")

    def volumes(self, s: int) -> npt.NDArray[np.float64]:
        """Return symbol s's bar volumes seen so far (NaN where it had no bar)."""
        return self._market[4, s, : self.t]

    def book_fill(
        self,
        s: int,
        qty: float,
        price: float,
        fee: float,
        decision: int,
        exit_reason: int = 0,
        latency_ms: float | None = None,
    ) -> None:
        """Book a venue's fill of signed `qty` for symbol s into the loop's account (live).

        The slippage is measured from the close the order was decided on and fed back to the
        environment agent's cost estimate, as the simulator does with its own fills, with the
        order's measured `latency_ms` when the venue's was timed (else the assumed latency).
        """
        t = max(self.t - 1, 0)
        reference = float(self._market[3, s, t]) if self.t else price
        if not math.isfinite(reference):
            reference = price
        book = self._run.book
        apply_fill(book, s, t, qty, price, reference, fee, decision, 0, exit_reason)
        cp = self.model
        side = 1.0 if qty > 0 else -1.0
        predicted = reference * (1.0 + side * (cp.half_spread + cp.slippage_fixed))
        latency = self.execution.latency_ms if latency_ms is None else latency_ms
        observe_cost(book.pf, reference, price, predicted, latency, self.execution.alpha)
        self._run.grow()

    def protect(self, s: int, stop: float, take: float) -> None:
        """Set the stop and take-profit levels of symbol s's position (live)."""
        self._run.book.pos_f[s, STOP] = stop
        self._run.book.pos_f[s, TAKE] = take

    def record_exit(self, s: int, code: int, qty: float) -> int:
        """Write the decision row of a venue's stop or take-profit, or a manual exit; its number."""
        t = max(self.t - 1, 0)
        vote = Vote(0, 0.0, int(self._regime[s, t]), int(self._vol_regime[s, t]),
                    int(self._trend_regime[s, t]), 0)  # fmt: skip
        bit = _EXIT_BITS[code]
        run = self._run
        k = write_decision(
            run.track.dec_i, run.track.dec_f, run.book.cnt, t, s, int(Action.EXIT), vote,
            Sized(0.0, qty, math.nan, math.nan), bit, float(run.book.pf[COST_BPS]), math.nan,
            code,
        )  # fmt: skip
        run.grow()
        return int(k)

    def flatten(self, s: int) -> int:
        """Decide to close symbol s's whole position at the next bar's open; return the decision.

        An operator's request between bars: the decision row says so (`Reason.MANUAL`) and the
        pending close is filled like any other (in paper trading by the simulator; live, the
        engine sends it and books the venue's fill).
        """
        held = float(self._run.book.pos_f[s, QTY])
        if held == 0.0:
            raise UserInputError(f"{self.symbols[s]} has no position to flatten")
        k = self.record_exit(s, int(ExitReason.MANUAL), abs(held))
        pend_i = self._run.pending.pend_i
        pend_i[s, KIND] = CLOSE
        pend_i[s, DEC] = k
        pend_i[s, EXIT] = int(ExitReason.MANUAL)
        pend_i[s, ALGO] = 0  # an operator's flatten goes at once
        return k

    def breaker_at(self, t: int) -> npt.NDArray[np.bool_]:
        """Return which symbols' circuit breaker tripped on bar t."""
        return np.asarray(self._breaker[:, t], dtype=np.bool_)

    def withdraw(self, s: int) -> int:
        """Drop symbol s's pending order (decided but not to be sent); return its decision."""
        pend_i = self._run.pending.pend_i
        decision = int(pend_i[s, DEC]) if pend_i[s, KIND] != NONE else -1
        pend_i[s, KIND] = NONE
        return decision

    def signal_follower(self, symbol: str) -> SignalFollower:
        """Return the follower of a symbol's agents (to swap an agent's follower between bars)."""
        if symbol not in self.symbols:
            raise UserInputError(f"{symbol!r} is not stepped here ({', '.join(self.symbols)})")
        return self._followers[self.symbols.index(symbol)]

    def bars_of(self, symbol: str, last: int | None = None) -> Bars:
        """Return a symbol's bars seen so far (only the `last` ones, if given)."""
        seen = self._seen[symbol]
        rows = self._history[symbol][max(0, seen - (last or seen)) : seen]
        o, h, lo, c, v = (np.ascontiguousarray(rows[:, k]) for k in range(1, 6))
        ts = rows[:, 0].astype(np.int64)
        return Bars(ts, o, h, lo, c, v, symbol=symbol, timeframe=self.timeframe)

    # --- internals --------------------------------------------------------------------------
    def _append(self, symbol: str, ts: int, ohlcv: tuple[float, ...]) -> None:
        n = self._seen[symbol]
        table = self._history[symbol]
        if n == table.shape[0]:
            grown = np.empty((max(64, 2 * n), 6))
            grown[:n] = table[:n]
            self._history[symbol] = table = grown
        table[n, 0] = ts
        table[n, 1:] = ohlcv
        self._seen[symbol] = n + 1

    def _signals(self, s: int, t: int) -> None:
        """Compute symbol s's newest agent signals on its latest bars; store them at bar t."""
        symbol = self.symbols[s]
        latest = self._followers[s].update(self.bars_of(symbol, self.history), self._seen[symbol])
        self._directions[s, t] = latest.directions
        self._confidences[s, t] = latest.confidences
        self._regime[s, t] = latest.regime
        self._vol_regime[s, t] = latest.vol_regime
        self._trend_regime[s, t] = latest.trend_regime
        self._breaker[s, t] = latest.breaker
        self._ready[s, t] = latest.ready

    def _allocate(self, capacity: int) -> None:
        """Make room for `capacity` bars, keeping what was written."""
        n_sym, n_agents, old = len(self.symbols), len(self.tower.agents), self._capacity
        fresh = old == 0
        flat = (n_sym, capacity)
        deep = (n_sym, capacity, n_agents)
        self._market = _widen(
            None if fresh else self._market, (5, *flat), math.nan, np.float64, old
        )
        self._directions = _widen(None if fresh else self._directions, deep, 0, np.int8, old, 1)
        self._confidences = _widen(
            None if fresh else self._confidences, deep, 0.0, np.float64, old, 1
        )
        self._regime = _widen(None if fresh else self._regime, flat, 0, np.int8, old)
        self._vol_regime = _widen(None if fresh else self._vol_regime, flat, 1, np.int8, old)
        self._trend_regime = _widen(None if fresh else self._trend_regime, flat, 0, np.int8, old)
        self._breaker = _widen(None if fresh else self._breaker, flat, False, np.bool_, old)
        self._ready = _widen(None if fresh else self._ready, flat, False, np.bool_, old)
        if not fresh:
            self._run.extend(capacity)
        self._capacity = capacity
        self._inputs = TowerInputs(
            self._directions, self._confidences, self._regime, self._vol_regime,
            self._trend_regime, self._breaker, self._ready, self.tower.weights,
            self.tower.params, self.strategy.risk_params(),
        )  # fmt: skip


def _widen(
    before: npt.NDArray[Any] | None,
    shape: tuple[int, ...],
    fill: object,
    dtype: type,
    old: int,
    axis: int = -1,
) -> npt.NDArray[Any]:
    """Return an array of `shape` filled with `fill`, the first `old` bars (on `axis`) kept."""
    out: npt.NDArray[Any] = np.full(shape, fill, dtype=dtype)
    if before is not None:
        keep = [slice(None)] * len(shape)
        keep[axis] = slice(0, old)
        out[tuple(keep)] = before[tuple(keep)]
    return out
