"""`BacktestResult`: what a backtest produced, as tables a user, a report or a journal can read.

Everything here is built from the records the compiled loop wrote; nothing is recomputed. Numeric
codes (actions, regimes, reasons) become words only in these tables.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade import __version__
from reinforcetrade.agents.base import AgentSignals
from reinforcetrade.backtesting.metrics import compute_metrics
from reinforcetrade.backtesting.records import (
    D_ACTION,
    D_AGREEING,
    D_ALGO,
    D_CONFIDENCE,
    D_COST,
    D_DIRECTION,
    D_EXIT,
    D_QTY,
    D_REASONS,
    D_REGIME,
    D_SIZE,
    D_STOP,
    D_SYMBOL,
    D_T,
    D_TAKE,
    D_THRESHOLD,
    D_TREND,
    D_VOL,
)
from reinforcetrade.backtesting.saved import write_result
from reinforcetrade.config import Settings
from reinforcetrade.core.codes import (
    REGIME_KEYS,
    Action,
    ExitReason,
    Reason,
    TradingState,
    TrendRegime,
    VolRegime,
    reason_names,
    reason_words,
)
from reinforcetrade.simulation.account import (
    BORROW,
    COMM,
    ENTRY_DEC,
    ENTRY_PX,
    ENTRY_T,
    F_ALGO,
    F_CHILD,
    F_COMMISSION,
    F_DECISION,
    F_EXIT,
    F_FLAGS,
    F_PRICE,
    F_QTY,
    F_REFERENCE,
    F_SIDE,
    F_SLIPPAGE,
    F_SYMBOL,
    F_T,
    MAX_QTY,
    QTY,
    REALIZED,
    SLIP,
    T_BORROW,
    T_COMMISSION,
    T_DECISION,
    T_ENTRY_PX,
    T_ENTRY_T,
    T_EXIT,
    T_EXIT_PX,
    T_EXIT_T,
    T_PNL,
    T_QTY,
    T_RET,
    T_SIDE,
    T_SLIPPAGE,
    T_SYMBOL,
)
from reinforcetrade.simulation.slicing import Algo

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class RunOutput:
    """The raw arrays a run of the compiled loop wrote (columns as in the kernel's field lists)."""

    dec_i: I8
    dec_f: F8
    fill_i: I8
    fill_f: F8
    trade_i: I8
    trade_f: F8
    equity: F8
    cash: F8
    exposure: F8
    positions: F8
    position_ints: npt.NDArray[np.int64]
    vote: F8  # (symbols, bars) the tower's signed confidence, NaN where it did not vote
    threshold: F8  # (symbols, bars) the entry threshold in force
    state: npt.NDArray[np.int8]  # (bars,) TradingState at each close
    breaker: npt.NDArray[np.bool_]  # (symbols, bars) circuit-breaker trips the run saw


def _categorical(codes: np.ndarray, names: Sequence[str]) -> pd.Categorical[str]:
    """Return integer codes 0…n-1 as a categorical of `names` (no string per row is built)."""
    return pd.Categorical.from_codes(np.asarray(codes, dtype=np.int64), categories=pd.Index(names))


def _labels(codes: np.ndarray, enum: type[IntEnum]) -> pd.Categorical[str]:
    """Return an IntEnum's codes as lower-case names ('' for codes the enum does not define)."""
    members = list(enum)
    names = ["", *[m.name.lower() for m in members]]
    lookup = np.zeros(max(int(m) for m in members) + 2, dtype=np.int64)
    for position, member in enumerate(members, start=1):
        lookup[int(member)] = position
    clipped = np.clip(codes.astype(np.int64), 0, lookup.size - 1)
    return _categorical(lookup[clipped], names)


def _pick(words: Sequence[str], codes: np.ndarray) -> pd.Categorical[str]:
    """Return codes 0…n-1 as the words they index (symbols, regimes)."""
    return _categorical(codes, list(dict.fromkeys(words)))


def _per_mask(masks: np.ndarray, render: Callable[[int], str]) -> pd.Categorical[str]:
    """Render each distinct reason bitmask once and spread the text over the rows."""
    distinct, where = np.unique(masks, return_inverse=True)
    return _categorical(where.reshape(-1), [render(int(m)) for m in distinct])


def _side(signs: np.ndarray, positive: str, negative: str) -> pd.Categorical[str]:
    """Return +1/-1 signs as two words."""
    return _categorical((signs < 0).astype(np.int64), [positive, negative])


@dataclass(frozen=True)
class RunContext:
    """What the result tables are built from: the run's arrays and what they refer to."""

    timeline: Any
    output: RunOutput
    settings: Settings
    agent_names: tuple[str, ...]
    weights: F8
    agent_signals: tuple[tuple[AgentSignals, ...], ...]
    close: F8


@dataclass(frozen=True)
class BacktestResult:
    """A backtest's equity, returns, trades, orders, fills, decisions, exposure and metrics.

    Equity and returns are ready when the run ends; the metrics and the tables (trades, orders,
    fills, decisions, exposure) are computed from the recorded arrays the first time they are
    read, so a caller pays only for what it looks at.
    """

    equity: pd.Series
    returns: pd.Series
    config: Settings
    config_hash: str
    seed: int
    initial_balance: float
    symbols: tuple[str, ...]
    mode: str
    info: dict[str, Any]
    context: RunContext = field(repr=False)

    @classmethod
    def build(
        cls,
        *,
        timeline: Any,
        output: RunOutput,
        initial_balance: float,
        settings: Settings,
        periods_per_year: float,
        agent_names: Sequence[str],
        weights: F8,
        agent_signals: Sequence[Sequence[AgentSignals]],
        close: F8,
        mode: str,
        models: Sequence[Mapping[str, Any]] = (),
    ) -> BacktestResult:
        """Wrap a run's arrays: equity and returns now, everything else when first read.

        `models` are the records of the RL models the strategy used (for the report's cards).
        """
        index: pd.DatetimeIndex = timeline.index
        equity = pd.Series(output.equity, index=index, name="equity")
        previous = np.concatenate(([initial_balance], output.equity[:-1]))
        returns = pd.Series(output.equity / previous - 1.0, index=index, name="returns")
        context = RunContext(
            timeline=timeline,
            output=output,
            settings=settings,
            agent_names=tuple(agent_names),
            weights=weights,
            agent_signals=tuple(tuple(a) for a in agent_signals),
            close=close,
        )
        return cls(
            equity=equity,
            returns=returns,
            config=settings,
            config_hash=settings.config_hash(),
            seed=settings.backtest.seed,
            initial_balance=initial_balance,
            symbols=tuple(timeline.symbols),
            mode=mode,
            info={
                "version": __version__,
                "periods_per_year": periods_per_year,
                "timeframe": str(timeline.timeframe) if timeline.timeframe else None,
                "start": index[0].isoformat(),
                "end": index[-1].isoformat(),
                "bars": len(index),
                "agents": list(agent_names),
                "models": [dict(m) for m in models],
            },
            context=context,
        )

    @cached_property
    def metrics(self) -> dict[str, float]:
        """Return every performance metric (see `backtesting.metrics.METRIC_KEYS`) and counts."""
        output = self.context.output
        times = self.context.timeline.index.asi8
        gross = np.abs(output.exposure).sum(axis=0)
        traded = np.zeros(times.size, dtype=np.float64)
        fi, ff = output.fill_i, output.fill_f
        np.add.at(traded, fi[:, F_T], ff[:, F_QTY] * ff[:, F_PRICE])
        metrics = compute_metrics(
            output.equity,
            times,
            output.trade_f[:, T_PNL],
            output.trade_f[:, T_RET],
            times[output.trade_i[:, T_ENTRY_T]],
            times[output.trade_i[:, T_EXIT_T]],
            float(self.info["periods_per_year"]),
            exposure=gross,
            traded_notional=traded,
        )
        actions = output.dec_i[:, D_ACTION]
        metrics["trades_open_at_end"] = float(np.count_nonzero(output.positions[:, QTY]))
        metrics["decisions"] = float(len(actions))
        metrics["blocked_entries"] = float(np.count_nonzero(actions == int(Action.BLOCKED)))
        metrics["final_equity"] = float(output.equity[-1])
        return metrics

    @cached_property
    def trades(self) -> pd.DataFrame:
        """Return closed round trips, then positions still open (exit_reason 'open', no exit).

        `algo` is how the entry was worked (immediate, twap, vwap; see `orders`).
        """
        c = self.context
        trades = _trades(c.output, self.symbols, c.timeline.index, c.close)
        entry = trades["decision"].to_numpy(dtype=np.int64)
        known = (entry >= 0) & (entry < len(c.output.dec_i))
        codes = np.zeros(len(entry), dtype=np.int64)
        codes[known] = c.output.dec_i[entry[known], D_ALGO]
        trades["algo"] = _labels(codes, Algo)
        return trades

    @cached_property
    def fills(self) -> pd.DataFrame:
        """Return every fill: price, reference price, commission, slippage, latency.

        `decision` is its order; `algo` how that order was worked and `child` the fill's
        number in it (1, 2, …; 0 for an order sent whole).
        """
        c = self.context
        o = c.output
        return fill_table(
            o.fill_i, o.fill_f, self.symbols, c.timeline.index, c.settings.costs.latency_ms
        )

    @cached_property
    def decisions(self) -> pd.DataFrame:
        """Return one row per Decision, with everything it recorded and its reasons in words.

        Each agent's signal, confidence and weight, the regime, the tower's confidence and
        threshold, size, stops and reason codes.
        """
        c = self.context
        return decision_table(
            c.output.dec_i,
            c.output.dec_f,
            self.symbols,
            c.timeline.index,
            c.agent_names,
            c.weights,
            c.agent_signals,
            c.timeline.positions,
            self.mode,
        )

    @cached_property
    def orders(self) -> pd.DataFrame:
        """Return one row per order: what was asked, what filled, average price, status.

        With how it was worked (`algo`, `children` filled; see `docs/execution.md`), what was
        left unfilled, and what execution cost against the close it was decided on
        (`decision_price`, `shortfall_bps`: positive when it paid more / received less).
        """
        c = self.context
        di = c.output.dec_i
        price = c.close[di[:, D_SYMBOL], di[:, D_T]] if len(di) else np.zeros(0)
        return _orders(self.decisions, self.fills, di[:, D_ALGO], price)

    @cached_property
    def exposure(self) -> pd.DataFrame:
        """Return each symbol's signed exposure (fraction of equity) and the gross total."""
        c = self.context
        exposure = pd.DataFrame(
            c.output.exposure.T, index=c.timeline.index, columns=list(self.symbols)
        )
        exposure["total"] = np.abs(c.output.exposure).sum(axis=0)
        return exposure

    @cached_property
    def bars(self) -> pd.DataFrame:
        """Return per symbol and bar: close, tower vote and threshold, breaker, agents' signals.

        Long format (one row per symbol and bar); each agent has `signal_<name>` and
        `confidence_<name>`. The vote is the tower's signed confidence (NaN where it did not vote).
        """
        c = self.context
        index = c.timeline.index
        parts = []
        for s, symbol in enumerate(self.symbols):
            where = np.asarray(c.timeline.positions[s])
            columns: dict[str, Any] = {
                "time": index[where],
                "symbol": symbol,
                "close": c.close[s, where],
                "vote": c.output.vote[s, where],
                "threshold": c.output.threshold[s, where],
                "breaker": c.output.breaker[s, where],
            }
            for a, name in enumerate(c.agent_names):
                signal = c.agent_signals[s][a]
                columns[f"signal_{name}"] = signal.direction
                columns[f"confidence_{name}"] = signal.confidence
            parts.append(pd.DataFrame(columns))
        frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
        if len(frame):
            frame["symbol"] = pd.Categorical(frame["symbol"], categories=list(self.symbols))
        return frame

    @cached_property
    def risk_state(self) -> pd.Series:
        """Return the risk state at each close: active, reducing (after a loss streak), halted."""
        codes = self.context.output.state
        return pd.Series(
            _labels(codes.astype(np.int64), TradingState), index=self.equity.index, name="state"
        )

    @property
    def models(self) -> list[dict[str, Any]]:
        """Return the records of the RL models the strategy used (empty without RL agents)."""
        return list(self.info.get("models", []))

    def public_config(self) -> dict[str, Any]:
        """Return the run's settings as plain data, secrets masked."""
        return self.config.public_dict()

    @property
    def final_equity(self) -> float:
        """Return the equity after the last bar (open positions marked at the last close)."""
        return float(self.equity.iloc[-1])

    def blocked_by_reason(self) -> pd.Series:
        """Return how many entries each reason blocked (a blocked entry may have several)."""
        blocked = (
            self.decisions[self.decisions["action"] == "blocked"]
            if len(self.decisions)
            else self.decisions
        )
        counts: dict[str, int] = {}
        for mask in blocked.get("reason_mask", pd.Series(dtype=np.int64)).to_numpy():
            for name in reason_names(int(mask)):
                if name.endswith("_OK") or name == "COST_PENALTY":
                    continue
                counts[name] = counts.get(name, 0) + 1
        return pd.Series(counts, dtype=np.int64).sort_values(ascending=False)

    def save(self, directory: str | Path) -> Path:
        """Write every table as Parquet, the metrics as JSON and the settings as YAML (masked)."""
        equity = self.equity.to_frame().assign(
            returns=self.returns,
            cash=self.context.output.cash,
            state=self.risk_state.to_numpy(),
        )
        return write_result(directory, self, equity, self.config.to_yaml())


def _time(index: pd.DatetimeIndex, positions: np.ndarray) -> pd.DatetimeIndex:
    """Return the bar times at loop positions (-1 becomes NaT)."""
    stamps = index.asi8[np.clip(positions, 0, None)] if len(index) else positions
    values = np.where(positions >= 0, stamps, np.iinfo(np.int64).min)
    return pd.DatetimeIndex(values.view("datetime64[ns]")).tz_localize("UTC")


def trade_table(
    ti: npt.NDArray[np.int64],
    tf: npt.NDArray[np.float64],
    symbols: Sequence[str],
    index: pd.DatetimeIndex,
) -> pd.DataFrame:
    """Return closed trade records as a table (one row per round trip)."""
    return pd.DataFrame(
        {
            "symbol": _pick(symbols, ti[:, T_SYMBOL]),
            "side": _side(ti[:, T_SIDE], "long", "short"),
            "entry_time": _time(index, ti[:, T_ENTRY_T]),
            "exit_time": _time(index, ti[:, T_EXIT_T]),
            "qty": tf[:, T_QTY],
            "entry_price": tf[:, T_ENTRY_PX],
            "exit_price": tf[:, T_EXIT_PX],
            "commission": tf[:, T_COMMISSION],
            "slippage": tf[:, T_SLIPPAGE],
            "borrow": tf[:, T_BORROW],
            "pnl": tf[:, T_PNL],
            "return": tf[:, T_RET],
            "exit_reason": _labels(ti[:, T_EXIT], ExitReason),
            "decision": ti[:, T_DECISION],
        }
    )


def _trades(
    output: RunOutput, symbols: Sequence[str], index: pd.DatetimeIndex, close: F8
) -> pd.DataFrame:
    """Return closed trades, then positions still open at the end (marked at the last close)."""
    frame = trade_table(output.trade_i, output.trade_f, symbols, index)
    rows = []
    for s, symbol in enumerate(symbols):
        p = output.positions[s]
        qty = p[QTY]
        if qty == 0.0:
            continue
        last = close[s][np.isfinite(close[s])][-1]
        entry, max_qty = p[ENTRY_PX], p[MAX_QTY]
        pnl = p[REALIZED] + qty * (last - entry) - p[COMM] - p[BORROW]
        rows.append(
            {
                "symbol": symbol,
                "side": "long" if qty > 0 else "short",
                "entry_time": _time(index, np.array([output.position_ints[s, ENTRY_T]]))[0],
                "exit_time": pd.NaT,
                "qty": max_qty,
                "entry_price": entry,
                "exit_price": last,
                "commission": p[COMM],
                "slippage": p[SLIP],
                "borrow": p[BORROW],
                "pnl": pnl,
                "return": pnl / (entry * max_qty) if entry * max_qty > 0 else 0.0,
                "exit_reason": "open",
                "decision": int(output.position_ints[s, ENTRY_DEC]),
            }
        )
    if rows:
        frame = pd.concat([frame, pd.DataFrame(rows)], ignore_index=True)
        for name in ("symbol", "side", "exit_reason"):
            frame[name] = frame[name].astype("category")
    return frame


def fill_table(
    fi: npt.NDArray[np.int64],
    ff: F8,
    symbols: Sequence[str],
    index: pd.DatetimeIndex,
    latency_ms: float,
) -> pd.DataFrame:
    """Return fill rows with their cost against the reference price (`index`: bar times)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        bps = np.abs(ff[:, F_PRICE] - ff[:, F_REFERENCE]) / ff[:, F_REFERENCE] * 1e4
    return pd.DataFrame(
        {
            "time": _time(index, fi[:, F_T]),
            "symbol": _pick(symbols, fi[:, F_SYMBOL]),
            "side": _side(fi[:, F_SIDE], "buy", "sell"),
            "qty": ff[:, F_QTY],
            "price": ff[:, F_PRICE],
            "reference_price": ff[:, F_REFERENCE],
            "commission": ff[:, F_COMMISSION],
            "slippage": ff[:, F_SLIPPAGE],
            "slippage_bps": bps,
            "latency_ms": np.full(len(fi), float(latency_ms)),
            "decision": fi[:, F_DECISION],
            "partial": (fi[:, F_FLAGS] & int(Reason.PARTIAL_FILL)) != 0,
            "exit_reason": _labels(fi[:, F_EXIT], ExitReason),
            "algo": _labels(fi[:, F_ALGO], Algo),
            "child": fi[:, F_CHILD],
        }
    )


def _algo_words(di: npt.NDArray[np.int64]) -> npt.NDArray[np.object_]:
    """Return how each decision's order is worked (None where it placed no order)."""
    words = np.asarray(_labels(di[:, D_ALGO], Algo), dtype=object)
    ordered = np.isin(di[:, D_ACTION], [int(Action.ENTER_LONG), int(Action.ENTER_SHORT),
                                        int(Action.EXIT)])  # fmt: skip
    words[~ordered] = None
    return words


def decision_table(
    di: npt.NDArray[np.int64],
    df: F8,
    symbols: Sequence[str],
    index: pd.DatetimeIndex,
    agent_names: Sequence[str],
    weights: F8,
    agent_signals: Sequence[Sequence[AgentSignals]],
    positions: Sequence[npt.NDArray[np.int64]],
    mode: str,
) -> pd.DataFrame:
    """Return decision rows with every input they recorded, reasons in words.

    `index` holds the bar times; `agent_signals[s][a]` symbol s's agent a's signals, whose
    i-th value belongs to bar `positions[s][i]`.
    """
    masks = di[:, D_REASONS]
    columns: dict[str, Any] = {
        "time": _time(index, di[:, D_T]),
        "symbol": _pick(symbols, di[:, D_SYMBOL]),
        "action": _labels(di[:, D_ACTION], Action),
        "direction": di[:, D_DIRECTION].astype(np.int8),
        "confidence": df[:, D_CONFIDENCE],
        "size": df[:, D_SIZE],
        "qty": df[:, D_QTY],
        "stop": df[:, D_STOP],
        "take_profit": df[:, D_TAKE],
        "reasons": _per_mask(masks, lambda m: "; ".join(reason_words(m))),
        "reason_codes": _per_mask(masks, lambda m: "|".join(reason_names(m))),
        "reason_mask": masks,
        "exit_reason": _labels(di[:, D_EXIT], ExitReason),
        "algo": _algo_words(di),
    }
    if mode == "multi_agent":
        regimes = di[:, D_REGIME]
        columns |= {
            "regime": _pick(REGIME_KEYS, regimes),
            "vol_regime": _labels(di[:, D_VOL], VolRegime),
            "trend_regime": _labels(di[:, D_TREND], TrendRegime),
            "agreeing": di[:, D_AGREEING].astype(np.int8),
            "threshold": df[:, D_THRESHOLD],
            "cost_estimate_bps": df[:, D_COST],
        }
        rows_of = [di[:, D_SYMBOL] == s for s in range(len(symbols))]
        locals_of = [np.searchsorted(positions[s], di[rows, D_T]) for s, rows in enumerate(rows_of)]
        for a, name in enumerate(agent_names):
            direction = np.zeros(len(di), dtype=np.int8)
            confidence = np.full(len(di), np.nan)
            for s, rows in enumerate(rows_of):
                signal = agent_signals[s][a]
                direction[rows] = signal.direction[locals_of[s]]
                confidence[rows] = signal.confidence[locals_of[s]]
            columns[f"signal_{name}"] = direction
            columns[f"confidence_{name}"] = confidence
            columns[f"weight_{name}"] = weights[regimes, a] if len(di) else np.array([])
    return pd.DataFrame(columns)


_ORDER_COLUMNS = [
    "order_id", "time", "symbol", "side", "type", "qty", "filled_qty", "avg_price", "status",
    "algo", "children", "unfilled_qty", "decision_price", "shortfall_bps",
]  # fmt: skip


def _orders(
    decisions: pd.DataFrame, fills: pd.DataFrame, algo: npt.NDArray[np.int64], decision_price: F8
) -> pd.DataFrame:
    """Return one row per order: what was asked, what filled, at what average price.

    `algo` and `decision_price` hold each decision row's algorithm code and decision close.
    """
    if not len(decisions):
        return pd.DataFrame(columns=_ORDER_COLUMNS)
    acted = decisions[decisions["action"] != "blocked"]
    by_order = fills.groupby("decision")
    quantity = by_order["qty"].sum()
    notional = (fills["qty"] * fills["price"]).groupby(fills["decision"]).sum()
    partial = by_order["partial"].any()
    children = (fills["child"] > 0).groupby(fills["decision"]).sum()
    ids = acted.index.to_numpy()
    filled_qty = quantity.reindex(ids).fillna(0.0).to_numpy()
    avg = (notional.reindex(ids) / quantity.reindex(ids)).to_numpy()
    was_partial = partial.reindex(ids).fillna(False).to_numpy(dtype=bool)
    worked = children.reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    kinds = np.where(
        acted["exit_reason"].to_numpy() == "stop_loss",
        "stop",
        np.where(acted["exit_reason"].to_numpy() == "take_profit", "limit", "market"),
    )
    entering = acted["action"].isin(["enter_long", "enter_short"]).to_numpy()
    side = np.where(
        entering,
        np.where(acted["direction"].to_numpy() > 0, "buy", "sell"),
        "close",
    )
    asked = acted["qty"].to_numpy(dtype=np.float64)
    # a worked order's children add up to what was asked: what they did not reach is left over
    was_partial = was_partial | ((worked > 0) & (filled_qty < asked * (1.0 - 1e-9)))
    status = np.where(filled_qty <= 0.0, "unfilled", np.where(was_partial, "partial", "filled"))
    unfilled = np.where(status == "filled", 0.0, np.maximum(asked - filled_qty, 0.0))
    buys = by_order["side"].first().reindex(ids).astype(object).to_numpy() == "buy"
    price = np.where(kinds == "market", decision_price[ids], np.nan)  # a stop has its own level
    with np.errstate(invalid="ignore", divide="ignore"):
        shortfall = np.where(buys, 1.0, -1.0) * (avg / price - 1.0) * 1e4
    return pd.DataFrame(
        {
            "order_id": ids,
            "time": acted["time"].to_numpy(),
            "symbol": acted["symbol"].to_numpy(),
            "side": side.astype(object),
            "type": kinds.astype(object),
            "qty": asked,
            "filled_qty": filled_qty,
            "avg_price": avg,
            "status": status.astype(object),
            "algo": _labels(algo[ids], Algo),
            "children": worked,
            "unfilled_qty": unfilled,
            "decision_price": price,
            "shortfall_bps": shortfall,
        }
    )
