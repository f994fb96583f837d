"""Backtesters: `EnhancedBacktester` runs the multi-agent strategy; `Backtester` runs plain targets.

Both align the symbols on one timeline, hand whole arrays to a compiled loop (`kernel`), grow its
output buffers when they fill, and wrap what comes back in a `BacktestResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.agents.tower import TowerParams
from reinforcetrade.backtesting.kernel import TARGETS, TOWER, TowerInputs, Track, run_bars
from reinforcetrade.backtesting.records import DEC_F, DEC_I
from reinforcetrade.backtesting.result import BacktestResult, RunOutput
from reinforcetrade.config import RiskConfig, Settings
from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.timeframes import Timeframe
from reinforcetrade.data.bars import Bars
from reinforcetrade.data.schema import timeframe_of
from reinforcetrade.data.validate import validate
from reinforcetrade.risk.params import RiskParams
from reinforcetrade.simulation.account import (
    COST_BPS,
    EXCESS_BPS,
    LATENCY,
    N_DEC,
    N_FILL,
    N_TRADE,
    new_book,
    records,
)
from reinforcetrade.simulation.costs import CostParams
from reinforcetrade.simulation.orders import Execution, new_pending
from reinforcetrade.simulation.slicing import Slicing
from reinforcetrade.strategies.multi_agent import MultiAgentStrategy

F8 = npt.NDArray[np.float64]
Data = pd.DataFrame | Mapping[str, pd.DataFrame]
#: rows an output buffer keeps free before the loop pauses to let it grow
ROOM_PER_SYMBOL = 4


@runtime_checkable
class TargetStrategy(Protocol):
    """A user strategy object: target positions (fraction of equity in [-1, 1]) per bar."""

    def targets(self, frame: pd.DataFrame) -> pd.Series:
        """Return the target position for every bar of `frame` (NaN keeps the previous one)."""
        ...


TargetFunction = Callable[[pd.DataFrame], pd.Series | npt.ArrayLike]


@dataclass(frozen=True)
class Timeline:
    """Symbols aligned on the union of their bar times; a symbol's missing bars are NaN."""

    symbols: tuple[str, ...]
    index: pd.DatetimeIndex
    positions: tuple[npt.NDArray[np.int64], ...]  # where each symbol's bars sit on the index
    frames: tuple[pd.DataFrame, ...]
    timeframe: Timeframe | None

    def matrix(self, column: str) -> F8:
        """Return one OHLCV column as a (symbols, bars) array, NaN where a symbol has no bar."""
        if len(self.frames) == 1 and len(self.frames[0]) == len(self.index):
            values = self.frames[0][column].to_numpy(dtype=np.float64)
            return np.ascontiguousarray(values).reshape(1, -1)  # one symbol: no copy needed
        out = np.full((len(self.symbols), len(self.index)), np.nan, dtype=np.float64)
        for s, (frame, where) in enumerate(zip(self.frames, self.positions, strict=True)):
            out[s, where] = frame[column].to_numpy(dtype=np.float64)
        return out

    def since(self, start: pd.Timestamp) -> tuple[Timeline, tuple[int, ...]]:
        """Return the timeline from `start` on, and how many bars each symbol had before it."""
        first = int(self.index.searchsorted(start))
        before = tuple(int(f.index.searchsorted(start)) for f in self.frames)
        timeline = Timeline(
            symbols=self.symbols,
            index=self.index[first:],
            positions=tuple(p[k:] - first for p, k in zip(self.positions, before, strict=True)),
            frames=tuple(f.iloc[k:] for f, k in zip(self.frames, before, strict=True)),
            timeframe=self.timeframe,
        )
        return timeline, before

    def scatter(self, s: int, values: npt.NDArray[Any], fill: Any, dtype: Any) -> npt.NDArray[Any]:
        """Return one symbol's per-bar values placed on the shared timeline."""
        out = np.full(len(self.index), fill, dtype=dtype)
        out[self.positions[s]] = values
        return out


def align(data: Data, *, symbol: str | None = None) -> Timeline:
    """Validate every frame and align the symbols on the union of their bar times."""
    if isinstance(data, pd.DataFrame):
        name = symbol or str(data.attrs.get("symbol") or "SYMBOL")
        items: list[tuple[str, pd.DataFrame]] = [(name, data)]
    elif isinstance(data, Mapping):
        items = [(str(k), v) for k, v in data.items()]
    else:
        raise UserInputError(
            f"data must be an OHLCV DataFrame or a dict of symbol → DataFrame, got {type(data)}"
        )
    if not items:
        raise UserInputError("no data to backtest")
    frames = []
    for name, frame in items:
        if not isinstance(frame, pd.DataFrame):
            raise UserInputError(f"data[{name!r}] is {type(frame).__name__}, not a DataFrame")
        checked = validate(frame, gaps="keep", source=name)
        if len(checked) < 2:
            raise UserInputError(f"{name}: a backtest needs at least 2 bars, got {len(checked)}")
        frames.append(checked)
    index = frames[0].index
    for frame in frames[1:]:
        index = index.union(frame.index)
    index = pd.DatetimeIndex(index)
    positions = tuple(
        np.asarray(index.get_indexer(frame.index), dtype=np.int64) for frame in frames
    )
    timeframes = {str(timeframe_of(f)) for f in frames if timeframe_of(f) is not None}
    if len(timeframes) > 1:
        raise UserInputError(
            f"all symbols must share one timeframe, got {sorted(timeframes)}; resample first"
        )
    return Timeline(
        symbols=tuple(name for name, _ in items),
        index=index,
        positions=positions,
        frames=tuple(frames),
        timeframe=timeframe_of(frames[0]),
    )


def unused_tower_inputs() -> TowerInputs:
    """Return one-element placeholders of the right types for the tower inputs (TARGETS mode)."""
    one_i1 = np.zeros((1, 1), dtype=np.int8)
    one_b = np.zeros((1, 1), dtype=np.bool_)
    return TowerInputs(
        np.zeros((1, 1, 1), dtype=np.int8),
        np.zeros((1, 1, 1), dtype=np.float64),
        one_i1,
        one_i1,
        one_i1,
        one_b,
        one_b,
        np.zeros((3, 1), dtype=np.float64),
        TowerParams(0.6, 0.6, 1, 0.0, 0.0),
        RiskParams.from_config(RiskConfig(), allow_short=True),
    )


class _Run:
    """The arrays of one run: the book, pending orders, per-bar output and decision rows."""

    def __init__(self, symbols: int, bars: int, cash: float) -> None:
        # Sized for the usual worst case (a decision on every bar) so that growing is rare; the
        # operating system only backs the rows actually written with memory.
        cells = symbols * bars
        self.book = new_book(symbols, cash, fills=cells // 4 + 1024, trades=cells // 8 + 1024)
        self.pending = new_pending(symbols)
        dec_i, dec_f = records(cells + 1024, DEC_I, DEC_F)
        self.track = Track(
            mark=np.full(symbols, np.nan, dtype=np.float64),
            breaker_until=np.full(symbols, -1, dtype=np.int64),
            current=np.zeros(symbols, dtype=np.float64),
            equity=np.full(bars, np.nan, dtype=np.float64),
            cash=np.full(bars, np.nan, dtype=np.float64),
            exposure=np.zeros((symbols, bars), dtype=np.float64),
            vote=np.full((symbols, bars), np.nan, dtype=np.float64),
            threshold=np.full((symbols, bars), np.nan, dtype=np.float64),
            state=np.zeros(bars, dtype=np.int8),
            dec_i=dec_i,
            dec_f=dec_f,
        )
        self.room = ROOM_PER_SYMBOL * symbols + 8

    @property
    def pf(self) -> F8:
        """Return the portfolio figures (cash, peak, state, cost estimates …)."""
        return self.book.pf

    def grow(self) -> None:
        """Double every record table that is close to full (keeping the rows written)."""
        cnt = self.book.cnt

        def bigger(table: np.ndarray, used: int) -> np.ndarray:
            if used + self.room <= table.shape[0]:
                return table
            grown = np.empty((table.shape[0] * 2 + self.room, table.shape[1]), table.dtype)
            grown[: table.shape[0]] = table
            return grown

        book, track = self.book, self.track
        self.book = book._replace(
            fill_i=bigger(book.fill_i, cnt[N_FILL]),
            fill_f=bigger(book.fill_f, cnt[N_FILL]),
            trade_i=bigger(book.trade_i, cnt[N_TRADE]),
            trade_f=bigger(book.trade_f, cnt[N_TRADE]),
        )
        self.track = track._replace(
            dec_i=bigger(track.dec_i, cnt[N_DEC]), dec_f=bigger(track.dec_f, cnt[N_DEC])
        )

    def extend(self, bars: int) -> None:
        """Give every per-bar array room for `bars` bars (keeping the bars written)."""
        track = self.track

        def longer(array: np.ndarray, fill: float) -> np.ndarray:
            out = np.full((*array.shape[:-1], bars), fill, dtype=array.dtype)
            out[..., : array.shape[-1]] = array
            return out

        self.track = track._replace(
            equity=longer(track.equity, np.nan),
            cash=longer(track.cash, np.nan),
            exposure=longer(track.exposure, 0.0),
            vote=longer(track.vote, np.nan),
            threshold=longer(track.threshold, np.nan),
            state=longer(track.state, 0),
        )

    def run_all(
        self,
        mode: int,
        warmup: int,
        market: tuple[F8, F8, F8, F8, F8],
        targets: F8,
        stop: float,
        take: float,
        signals: TowerInputs,
        execution: Execution,
    ) -> None:
        """Run the compiled loop over every bar, growing the record tables when they fill."""
        bars = market[0].shape[1]
        t = 0
        while t < bars:
            t = run_bars(
                t, bars, mode, warmup, *market, targets, stop, take, signals, execution,
                self.book, self.pending, self.track, self.room,
            )  # fmt: skip
            self.grow()

    def output(self, breaker: npt.NDArray[np.bool_] | None = None) -> RunOutput:
        """Return what the loop wrote, trimmed to the rows used (and the breaker trips seen)."""
        n_dec, n_fill, n_trade = (int(x) for x in self.book.cnt[:3])
        book, track = self.book, self.track
        return RunOutput(
            dec_i=track.dec_i[:n_dec],
            dec_f=track.dec_f[:n_dec],
            fill_i=book.fill_i[:n_fill],
            fill_f=book.fill_f[:n_fill],
            trade_i=book.trade_i[:n_trade],
            trade_f=book.trade_f[:n_trade],
            equity=track.equity,
            cash=track.cash,
            exposure=track.exposure,
            positions=book.pos_f.copy(),
            position_ints=book.pos_i.copy(),
            vote=track.vote,
            threshold=track.threshold,
            state=track.state,
            breaker=np.zeros_like(track.vote, dtype=np.bool_) if breaker is None else breaker,
        )


def _utc(value: str | pd.Timestamp, name: str) -> pd.Timestamp:
    """Return a time as a UTC timestamp (naive times are UTC), or a clear error."""
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError):
        raise UserInputError(f"{name} {value!r} is not a date or time") from None
    if pd.isna(stamp):
        raise UserInputError(f"{name} {value!r} is not a date or time")
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def _bars_per_year(settings: Settings, timeline: Timeline) -> float:
    """Return the bars per year used for borrow costs and annualised metrics."""
    from reinforcetrade.backtesting.metrics import periods_per_year

    if settings.backtest.periods_per_year is not None:
        return float(settings.backtest.periods_per_year)
    if timeline.timeframe is None:
        raise UserInputError("cannot tell the bar length; set frame.attrs['timeframe']")
    return float(periods_per_year(timeline.timeframe.text, settings.backtest.calendar))


class EnhancedBacktester:
    """Runs `MultiAgentStrategy` bar by bar through tower, risk and the simulated broker.

    The broker charges `costs` (default: the config's cost model, which the strategy also
    assumes); pass harsher costs to see how the strategy copes when execution is worse than it
    expects — the Execution Agent's feedback then raises the tower's entry threshold.

    >>> from reinforcetrade.data import DataLoader
    >>> data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=2_000, seed=7)
    >>> result = EnhancedBacktester(MultiAgentStrategy(), initial_balance=10_000).run(data)
    >>> result.equity.index.equals(data.index)
    True
    """

    def __init__(
        self,
        strategy: MultiAgentStrategy | None = None,
        initial_balance: float | None = None,
        *,
        settings: Settings | None = None,
        costs: CostParams | None = None,
    ) -> None:
        self.strategy = strategy or MultiAgentStrategy(settings=settings)
        self.settings = settings or self.strategy.settings
        balance = (
            self.settings.backtest.initial_cash if initial_balance is None else initial_balance
        )
        if not balance > 0:
            raise UserInputError(f"initial_balance must be positive, got {balance!r}")
        self.initial_balance = float(balance)
        self._costs = costs

    def run(
        self,
        data: Data,
        *,
        symbol: str | None = None,
        start: str | pd.Timestamp | None = None,
    ) -> BacktestResult:
        """Backtest a frame, or a dict of symbol → frame sharing one timeframe.

        With `start`, trading begins at the first bar at or after it: the bars before only
        warm the agents up (they count toward `backtest.warmup_bars`), and the result — equity,
        tables, metrics — covers `start` to the end. That is how an out-of-sample span is run
        without losing its first bars to the warm-up, and without any look-ahead.
        """
        full = align(data, symbol=symbol)
        timeline, before = full, tuple(0 for _ in full.symbols)
        if start is not None:
            timeline, before = full.since(_utc(start, "start"))
            if len(timeline.index) < 2:
                raise UserInputError(
                    f"start {start} leaves {len(timeline.index)} bar(s) to trade; "
                    f"the data ends at {full.index[-1]}"
                )
        history = len(full.index) - len(timeline.index)
        settings = self.settings
        per_year = _bars_per_year(settings, timeline)
        model = CostParams.from_config(settings.costs, per_year)  # what the strategy assumes
        costs = self._costs or model  # what the simulated broker charges
        strategy = self.strategy
        tower = strategy.tower()
        n_sym, n_bars, n_agents = len(timeline.symbols), len(timeline.index), len(tower.agents)
        # (symbol, bar, agent): one bar's votes sit together in memory
        directions = np.zeros((n_sym, n_bars, n_agents), dtype=np.int8)
        confidences = np.zeros((n_sym, n_bars, n_agents), dtype=np.float64)
        regime = np.zeros((n_sym, n_bars), dtype=np.int8)
        vol_regime = np.ones((n_sym, n_bars), dtype=np.int8)
        trend_regime = np.zeros((n_sym, n_bars), dtype=np.int8)
        breaker = np.zeros((n_sym, n_bars), dtype=np.bool_)
        ready = np.zeros((n_sym, n_bars), dtype=np.bool_)
        prepared = []
        for s, frame in enumerate(full.frames):
            p = strategy.prepare(Bars.from_frame(frame, timeline.symbols[s]))
            p = p.since(before[s]) if before[s] else p
            prepared.append(p)
            where = timeline.positions[s]
            directions[s][where] = p.directions.T
            confidences[s][where] = p.confidences.T
            regime[s, where] = p.perception.regime
            vol_regime[s, where] = p.perception.vol_regime
            trend_regime[s, where] = p.perception.trend_regime
            breaker[s, where] = p.perception.breaker
            ready[s, where] = p.ready
        o, h, lo, c, v = (
            timeline.matrix(name) for name in ("open", "high", "low", "close", "volume")
        )
        run = _Run(n_sym, n_bars, self.initial_balance)
        alpha = settings.agents.environment.cost_feedback_alpha
        latency = float(settings.costs.latency_ms)
        signals = TowerInputs(
            directions, confidences, regime, vol_regime, trend_regime, breaker, ready,
            tower.weights, tower.params, strategy.risk_params(),
        )  # fmt: skip
        market = (o, h, lo, c, v)
        no_targets = np.zeros((1, 1), dtype=np.float64)
        execution = Execution(costs, model, latency, alpha, Slicing.from_config(settings.execution))
        warmup = max(0, settings.backtest.warmup_bars - history)
        run.run_all(TOWER, warmup, market, no_targets, np.nan, np.nan, signals, execution)
        # the loop's execution feedback, handed back to the agent it belongs to
        strategy.environment.cost_estimate_bps = float(run.pf[COST_BPS])
        strategy.environment.cost_excess_bps = float(run.pf[EXCESS_BPS])
        strategy.environment.latency_estimate_ms = float(run.pf[LATENCY])
        return BacktestResult.build(
            timeline=timeline,
            output=run.output(breaker),
            initial_balance=self.initial_balance,
            settings=settings,
            periods_per_year=per_year,
            models=strategy.model_records(),
            agent_names=tower.agents,
            weights=tower.weights,
            agent_signals=tuple(tuple(p.agents) for p in prepared),
            close=c,
            mode="multi_agent",
        )


class Backtester:
    """Runs plain target-position strategies (or `MultiAgentStrategy`) on the same kernel.

    `strategy(frame)` (or `strategy.targets(frame)`) returns the target position per bar as a
    fraction of equity in [-1, 1] (NaN keeps the previous target). An order goes out only when
    the target changes, at the next bar's open; flat to 1.0 buys cash / (open × (1 + commission))
    units, fractional unless `lot_size` is set — the convention backtrader, backtesting.py,
    vectorbt and nautilus_trader agree on, so results compare trade for trade. Costs are one
    commission per side and a fixed slippage, or any `CostParams` passed as `costs` (e.g. the
    config's full cost model: `CostParams.from_config(settings.costs, bars_per_year)`).

    >>> import numpy as np, pandas as pd
    >>> from reinforcetrade.data import DataLoader
    >>> data = DataLoader().load_synthetic("BTC/USDT", timeframe="1h", bars=500, seed=1)
    >>> hold = Backtester(lambda f: pd.Series(1.0, index=f.index), commission=0.0).run(data)
    >>> growth = data.close.iloc[-1] / data.open.iloc[1]  # in at bar 1's open, marked at the end
    >>> bool(abs(hold.equity.iloc[-1] / 10_000 - growth) < 1e-9)
    True
    """

    def __init__(
        self,
        strategy: TargetFunction | TargetStrategy | MultiAgentStrategy,
        initial_balance: float = 10_000.0,
        commission: float = 0.001,
        slippage: float = 0.0,
        *,
        stop_loss: float | None = None,
        take_profit: float | None = None,
        lot_size: float = 0.0,
        settings: Settings | None = None,
        costs: CostParams | None = None,
    ) -> None:
        if not initial_balance > 0:
            raise UserInputError(f"initial_balance must be positive, got {initial_balance!r}")
        for name, value in (("stop_loss", stop_loss), ("take_profit", take_profit)):
            if value is not None and not 0.0 < value < 1.0:
                raise UserInputError(f"{name} is a fraction in (0, 1), got {value!r}")
        self.strategy = strategy
        self.initial_balance = float(initial_balance)
        self.costs = costs or CostParams.simple(commission, slippage)._replace(
            lot_size=float(lot_size)
        )
        self.stop_loss = stop_loss
        self.take_profit = take_profit
        self.settings = settings or Settings()

    def _targets(self, frame: pd.DataFrame) -> F8:
        """Return the strategy's targets for one frame as a float array, checked."""
        strategy = self.strategy
        raw = strategy.targets(frame) if isinstance(strategy, TargetStrategy) else strategy(frame)  # type: ignore[operator]
        if isinstance(raw, pd.Series):
            if not raw.index.equals(frame.index):
                raw = raw.reindex(frame.index)
            values = raw.to_numpy(dtype=np.float64, na_value=np.nan)
        else:
            values = np.asarray(raw, dtype=np.float64)
        if values.shape != (len(frame),):
            raise UserInputError(
                f"the strategy returned {values.shape} targets for {len(frame)} bars; "
                "return one target per bar (a Series on the frame's index)"
            )
        finite = values[np.isfinite(values)]
        if finite.size and (finite.min() < -1.0 or finite.max() > 1.0):
            raise UserInputError(
                "targets are fractions of equity in [-1, 1]; got values from "
                f"{finite.min():g} to {finite.max():g}"
            )
        if np.isinf(values).any():
            raise UserInputError("targets must be finite numbers or NaN (keep the previous one)")
        return values

    def run(self, data: Data, *, symbol: str | None = None) -> BacktestResult:
        """Backtest the strategy on a frame or a dict of symbol → frame."""
        if isinstance(self.strategy, MultiAgentStrategy):
            return EnhancedBacktester(
                self.strategy, self.initial_balance, settings=self.settings, costs=self.costs
            ).run(data, symbol=symbol)
        timeline = align(data, symbol=symbol)
        n_sym, n_bars = len(timeline.symbols), len(timeline.index)
        targets = np.full((n_sym, n_bars), np.nan, dtype=np.float64)
        for s, frame in enumerate(timeline.frames):
            targets[s] = timeline.scatter(s, self._targets(frame), np.nan, np.float64)
        o, h, lo, c, v = (
            timeline.matrix(name) for name in ("open", "high", "low", "close", "volume")
        )
        run = _Run(n_sym, n_bars, self.initial_balance)
        stop = np.nan if self.stop_loss is None else self.stop_loss
        take = np.nan if self.take_profit is None else self.take_profit
        execution = Execution(self.costs, self.costs, 0.0, 0.1)
        run.run_all(TARGETS, 0, (o, h, lo, c, v), targets, stop, take, unused_tower_inputs(),
                    execution)  # fmt: skip
        return BacktestResult.build(
            timeline=timeline,
            output=run.output(),
            initial_balance=self.initial_balance,
            settings=self.settings,
            periods_per_year=_bars_per_year(self.settings, timeline),
            agent_names=(),
            weights=np.zeros((0, 0)),
            agent_signals=(),
            close=c,
            mode="targets",
        )
