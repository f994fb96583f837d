"""The report's data: every section, built from a result's records (nothing is recomputed).

`build_report_data` reads a `BacktestResult` (or a `SavedResult`) and returns plain data with
numpy arrays at the leaves: the summary, downsampled chart series, the risk events, the key
decisions, model cards, in/out-of-sample segments and the complete decision log. The HTML packs
the arrays (`encode.pack`); the JSON sidecar lists them.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from reinforcetrade.backtesting.saved import ResultView
from reinforcetrade.core.codes import Reason
from reinforcetrade.core.plain import plain
from reinforcetrade.features.curves import buy_and_hold, monthly_returns, rolling_sharpe
from reinforcetrade.features.stats import drawdown
from reinforcetrade.ml.performance import AgentPerformance
from reinforcetrade.reports.downsample import minmax_indices

F8 = npt.NDArray[np.float64]
I8 = npt.NDArray[np.int64]

#: chart points per series: 4 per bucket (first, low, high, last)
MAX_POINTS = 2_000
KEY_TRADES = 5
TOP_PEAKS = 5
MAX_EPISODES = 100  # listed per kind of risk event; the counts cover all of them
DECISION_FLOATS = ("size", "qty", "stop", "take_profit", "cost_estimate_bps")
AGENT_HORIZON = 24  # bars after a decision at which the agents' votes are scored


#: what a report reads: a `BacktestResult` or a `SavedResult`
ResultLike = ResultView


@dataclass(frozen=True)
class Series:
    """A chart series: times (epoch ns) and values, already downsampled."""

    x: I8
    y: F8


def ns(index: pd.Index | pd.Series) -> I8:
    """Return times as int64 epoch nanoseconds whatever their stored unit."""
    values = pd.DatetimeIndex(index)
    return values.as_unit("ns").asi8


def series(times: I8, values: npt.ArrayLike, max_points: int = MAX_POINTS) -> Series:
    """Return a chart series keeping each bucket's extremes (`minmax_indices`)."""
    y = np.asarray(values, dtype=np.float64)
    keep = minmax_indices(y, max_points)
    return Series(times[keep], y[keep])


def is_(column: pd.Series, value: str) -> npt.NDArray[np.bool_]:
    """Return where a (categorical or text) column equals `value` (codes compared, no copies)."""
    return np.asarray(column == value, dtype=bool)


def versions(models: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Return the versions behind the result: Python, ours, the numeric stack, the models'."""
    found = {"python": platform.python_version()}
    for package in ("reinforcetrade", "numpy", "pandas", "numba"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "unknown"
    for model in models:
        for name, value in dict(model.get("versions", {})).items():
            found.setdefault(str(name), str(value))
    return found


def summary(result: ResultLike) -> dict[str, Any]:
    """Return the summary section: metrics, hash, seed, data range, models, versions."""
    info = result.info
    return {
        "metrics": {k: plain(float(v)) for k, v in result.metrics.items()},
        "config_hash": result.config_hash,
        "seed": result.seed,
        "symbols": list(result.symbols),
        "start": info.get("start"),
        "end": info.get("end"),
        "bars": info.get("bars"),
        "timeframe": info.get("timeframe"),
        "initial_balance": result.initial_balance,
        "mode": result.mode,
        "agents": list(info.get("agents", [])),
        "models": [str(m.get("id")) for m in result.models],
        "versions": versions(result.models),
        "periods_per_year": info.get("periods_per_year"),
    }


def limits(result: ResultLike) -> dict[str, Any]:
    """Return the risk and tower limits the charts draw."""
    config = result.public_config()
    risk, tower = config.get("risk", {}), config.get("tower", {})
    return {
        "max_trade_fraction": risk.get("max_trade_fraction"),
        "max_symbol_exposure": risk.get("max_symbol_exposure"),
        "max_total_exposure": risk.get("max_total_exposure"),
        "max_drawdown_halt": risk.get("max_drawdown_halt"),
        "loss_streak_limit": risk.get("loss_streak_limit"),
        "entry_confidence": tower.get("entry_confidence"),
        "exit_confidence": tower.get("exit_confidence"),
        "consensus_agents": tower.get("consensus_agents"),
    }


def overview(result: ResultLike) -> dict[str, Any]:
    """Return the portfolio charts (equity, drawdown, Sharpe, exposure, months, trades)."""
    times = ns(result.equity.index)
    equity = result.equity.to_numpy(dtype=np.float64)
    per_year = float(result.info.get("periods_per_year") or 1.0)
    close = _close_matrix(result, times)
    window = max(20, round(per_year / 12))  # about a month of bars
    months = monthly_returns(equity, times)
    trades = result.trades
    closed = trades[~is_(trades["exit_reason"], "open")]
    duration_h = (ns(closed["exit_time"]) - ns(closed["entry_time"])) / 3.6e12
    exposure = result.exposure
    return {
        "equity": series(times, equity),
        "buy_and_hold": series(times, buy_and_hold(close, float(equity[0]) if len(equity) else 0)),
        "drawdown": series(times, drawdown(equity) if len(equity) else equity),
        "rolling_sharpe": series(times, rolling_sharpe(equity, window, per_year)),
        "rolling_window": int(window),
        "exposure": {
            "total": series(times, exposure["total"].to_numpy(dtype=np.float64)),
            "per_symbol": {
                s: series(times, exposure[s].to_numpy(dtype=np.float64)) for s in result.symbols
            },
        },
        "monthly": {
            "years": [int(y) for y in months.index],
            "values": months.to_numpy(dtype=np.float64),
        },
        "trade_returns": closed["return"].to_numpy(dtype=np.float64),
        "trade_durations_hours": np.asarray(duration_h, dtype=np.float64),
        "exit_reasons": {
            str(k): int(v) for k, v in closed["exit_reason"].value_counts().items() if v
        },
        "open_trades": int(len(trades) - len(closed)),
    }


def _close_matrix(result: ResultLike, times: I8) -> F8:
    """Return close per symbol on the result's timeline (NaN where a symbol has no bar)."""
    bars = result.bars
    out = np.full((len(result.symbols), times.size), np.nan)
    if not len(bars):
        return out
    bar_times = ns(bars["time"])
    for s, name in enumerate(result.symbols):
        rows = is_(bars["symbol"], name)
        where = np.searchsorted(times, bar_times[rows])
        out[s, where] = bars["close"].to_numpy(dtype=np.float64)[rows]
    return out


def per_symbol(result: ResultLike, agents: Sequence[str]) -> dict[str, Any]:
    """Return each symbol's price with entries and exits, agents' signals and the tower's vote."""
    bars = result.bars
    decisions = result.decisions
    out: dict[str, Any] = {}
    for name in result.symbols:
        rows = bars[is_(bars["symbol"], name)] if len(bars) else bars
        times = ns(rows["time"])
        close = rows["close"].to_numpy(dtype=np.float64)
        agent_series = {}
        for agent in agents:
            signal = rows[f"signal_{agent}"].to_numpy(dtype=np.float64)
            confidence = rows[f"confidence_{agent}"].to_numpy(dtype=np.float64)
            agent_series[agent] = series(times, signal * np.nan_to_num(confidence))
        mine = decisions[is_(decisions["symbol"], name)] if len(decisions) else decisions
        out[name] = {
            "price": series(times, close),
            "agents": agent_series,
            "vote": series(times, rows["vote"].to_numpy(dtype=np.float64))
            if "vote" in rows
            else None,
            "threshold": series(times, rows["threshold"].to_numpy(dtype=np.float64))
            if "threshold" in rows
            else None,
            "marks": {
                kind: _marks(mine[is_(mine["action"], kind)] if len(mine) else mine, times, close)
                for kind in ("enter_long", "enter_short", "exit")
            },
        }
    return out


def _marks(rows: pd.DataFrame, times: I8, close: F8) -> dict[str, Any]:
    """Return decision markers: time, the close they were decided at, and the decision id."""
    at = ns(rows["time"])
    where = np.clip(np.searchsorted(times, at), 0, max(times.size - 1, 0))
    price = close[where] if times.size else np.zeros(0)
    return {"at": Series(at, price), "id": rows.index.to_numpy(dtype=np.int64)}


def risk_events(result: ResultLike) -> dict[str, Any]:
    """Return drawdown halts, circuit-breaker trips, loss-streak size cuts and exposure peaks."""
    times = ns(result.equity.index)
    state = result.risk_state
    equity = result.equity.to_numpy(dtype=np.float64)
    dd = drawdown(equity) if len(equity) else equity
    halts = [
        {"start": int(times[a]), "end": int(times[b]), "bars": int(b - a + 1),
         "drawdown": plain(float(dd[a]))}
        for a, b in _runs(is_(state, "halted"))
    ]  # fmt: skip
    reducing = _runs(is_(state, "reducing"))
    masks = result.decisions["reason_mask"].to_numpy() if len(result.decisions) else np.zeros(0)
    cut = (masks.astype(np.int64) & int(Reason.LOSS_STREAK_CUT)) != 0
    bars = result.bars
    breaker: dict[str, Any] = {}
    if len(bars) and "breaker" in bars:
        for name in result.symbols:
            rows = is_(bars["symbol"], name)
            trips = _runs(bars["breaker"].to_numpy(dtype=bool)[rows])
            bar_times = ns(bars["time"])[rows]
            breaker[name] = {
                "trips": int(bars["breaker"].to_numpy(dtype=bool)[rows].sum()),
                "episode_count": len(trips),
                "episodes": [
                    {"start": int(bar_times[a]), "end": int(bar_times[b])}
                    for a, b in trips[:MAX_EPISODES]
                ],
            }
    total = result.exposure["total"].to_numpy(dtype=np.float64)
    order = np.argsort(-np.nan_to_num(total, nan=-np.inf), kind="stable")
    peaks: list[dict[str, Any]] = []
    used = np.zeros(total.size, dtype=bool)
    spacing = max(1, total.size // 50)
    for i in order:
        if len(peaks) == TOP_PEAKS or not np.isfinite(total[i]) or total[i] <= 0:
            break
        if used[max(0, i - spacing) : i + spacing].any():
            continue  # one peak per episode
        used[i] = True
        per = {s: float(result.exposure[s].iloc[i]) for s in result.symbols}
        peaks.append({"time": int(times[i]), "total": float(total[i]), "per_symbol": per})
    return {
        "halts": halts,
        "reducing_periods": [
            {"start": int(times[a]), "end": int(times[b]), "bars": int(b - a + 1)}
            for a, b in reducing[:MAX_EPISODES]
        ],
        "reducing_count": len(reducing),
        "reducing_bars": int(is_(state, "reducing").sum()),
        "streak_cut_decisions": int(cut.sum()),
        "breaker": breaker,
        "exposure_peaks": peaks,
        "max_exposure": {
            s: plain(float(np.nanmax(np.abs(result.exposure[s].to_numpy()))))
            if len(total)
            else None
            for s in result.symbols
        },
    }


def _runs(flags: npt.NDArray[np.bool_]) -> list[tuple[int, int]]:
    """Return the (first, last) positions of each run of True."""
    f = np.asarray(flags, dtype=np.int8)
    if not f.size:
        return []
    edges = np.diff(np.r_[0, f, 0])
    starts = np.flatnonzero(edges == 1)
    ends = np.flatnonzero(edges == -1) - 1
    return list(zip(starts.tolist(), ends.tolist(), strict=True))


def key_decisions(result: ResultLike) -> list[dict[str, Any]]:
    """Return the decisions worth a first look: largest wins and losses, halts, reversals."""
    trades = result.trades
    decisions = result.decisions
    picked: list[dict[str, Any]] = []
    closed = trades[~is_(trades["exit_reason"], "open")]
    by_pnl = closed.sort_values("pnl", kind="stable")
    for label, rows in (
        ("largest win", by_pnl[by_pnl["pnl"] > 0].iloc[::-1].head(KEY_TRADES)),
        ("largest loss", by_pnl[by_pnl["pnl"] < 0].head(KEY_TRADES)),
    ):
        for _, trade in rows.iterrows():
            picked.append(
                {
                    "kind": label,
                    "decision": int(trade["decision"]),
                    "symbol": str(trade["symbol"]),
                    "time": int(ns(pd.Index([trade["entry_time"]]))[0]),
                    "exit_time": int(ns(pd.Index([trade["exit_time"]]))[0]),
                    "pnl": float(trade["pnl"]),
                    "return": float(trade["return"]),
                    "exit_reason": str(trade["exit_reason"]),
                }
            )
    if len(decisions):
        masks = decisions["reason_mask"].to_numpy().astype(np.int64)
        halted = np.flatnonzero((masks & int(Reason.HALTED_DRAWDOWN)) != 0)
        reversal = decisions.index[
            is_(decisions["action"], "exit") & ((masks & int(Reason.REVERSAL)) != 0)
        ]
        if halted.size:
            first = decisions.iloc[halted[0]]
            picked.append(_decision_pick("first halt", decisions.index[halted[0]], first))
        reversals = closed[is_(closed["exit_reason"], "reversal")]
        biggest = reversals.iloc[np.argsort(-reversals["pnl"].abs().to_numpy(), kind="stable")]
        rev_rows = decisions.loc[reversal]
        rev_times = ns(rev_rows["time"])
        for _, trade in biggest.head(KEY_TRADES).iterrows():
            # the reversal decision: the symbol's last reversal exit decided before the exit fill
            mine = np.flatnonzero(is_(rev_rows["symbol"], str(trade["symbol"])))
            exit_ns = int(ns(pd.Index([trade["exit_time"]]))[0])
            k = int(np.searchsorted(rev_times[mine], exit_ns)) - 1
            if k >= 0:
                ident = reversal[mine[k]]
                pick = _decision_pick("reversal", ident, decisions.loc[ident])
                pick["pnl"] = float(trade["pnl"])
                picked.append(pick)
    return picked


def _decision_pick(kind: str, ident: Any, row: pd.Series) -> dict[str, Any]:
    return {
        "kind": kind,
        "decision": int(ident),
        "symbol": str(row["symbol"]),
        "time": int(ns(pd.Index([row["time"]]))[0]),
        "reasons": str(row["reasons"]),
    }


def model_cards(result: ResultLike) -> list[dict[str, Any]]:
    """Return a card per RL model: algorithm, hyperparameters, metrics, data range."""
    cards = []
    for m in result.models:
        data = dict(m.get("data", {}))
        cards.append(
            {
                "id": m.get("id"),
                "algorithm": m.get("algorithm"),
                "symbol": m.get("symbol"),
                "timeframe": m.get("timeframe"),
                "created": m.get("created"),
                "seed": m.get("seed"),
                "hyperparameters": dict(m.get("hyperparameters", {})),
                "metrics": {k: plain(v) for k, v in dict(m.get("metrics", {})).items()},
                "data": data,
                "features": dict(m.get("feature_spec", {})).get("names", []),
                "feature_fingerprint": dict(m.get("feature_spec", {})).get("fingerprint"),
                "window": dict(m.get("env_config", {})).get("window"),
            }
        )
    return cards


def segments(parts: Mapping[str, ResultLike]) -> list[dict[str, Any]]:
    """Return named results (in-sample, out-of-sample, walk-forward folds) side by side."""
    out = []
    for name, part in parts.items():
        times = ns(part.equity.index)
        equity = part.equity.to_numpy(dtype=np.float64)
        out.append(
            {
                "name": str(name),
                "start": part.info.get("start"),
                "end": part.info.get("end"),
                "bars": part.info.get("bars"),
                "metrics": {k: plain(float(v)) for k, v in part.metrics.items()},
                "equity": series(times, equity / equity[0] if len(equity) else equity),
            }
        )
    return out


def decision_log(result: ResultLike, agents: Sequence[str]) -> dict[str, Any]:
    """Return the complete decision log as columns (labels as indices into word lists)."""
    d = result.decisions
    columns: dict[str, Any] = {"id": d.index.to_numpy(dtype=np.int64)}
    labels: dict[str, list[str]] = {}
    for name in ("symbol", "action", "regime", "reasons", "exit_reason"):
        if name in d:
            column = d[name]
            cat = column.array if isinstance(column.dtype, pd.CategoricalDtype) else None
            if cat is None:
                cat = pd.Categorical(column.astype(str))
            labels[name] = [str(c) for c in cat.categories]
            columns[name] = np.asarray(cat.codes, dtype=np.int64)
    columns["time"] = ns(d["time"]) if len(d) else np.zeros(0, dtype=np.int64)
    columns["direction"] = d["direction"].to_numpy(dtype=np.int64)
    columns["confidence"] = d["confidence"].to_numpy(dtype=np.float64)
    if "threshold" in d:
        columns["threshold"] = d["threshold"].to_numpy(dtype=np.float64)
        columns["agreeing"] = d["agreeing"].to_numpy(dtype=np.int64)
    for name in DECISION_FLOATS:
        if name in d:
            columns[name] = d[name].to_numpy(dtype=np.float64)
    for agent in agents:
        columns[f"signal_{agent}"] = d[f"signal_{agent}"].to_numpy(dtype=np.int64)
        columns[f"confidence_{agent}"] = d[f"confidence_{agent}"].to_numpy(dtype=np.float64)
        columns[f"weight_{agent}"] = d[f"weight_{agent}"].to_numpy(dtype=np.float64)
    return {"count": len(d), "columns": columns, "labels": labels, "agents": list(agents)}


def agent_performance(result: ResultLike, horizon: int = AGENT_HORIZON) -> dict[str, Any]:
    """Return each agent's hit rate by regime, its calibration and its share of the P&L."""
    return AgentPerformance.from_result(result, horizon=horizon).to_dict()


def detail_prices(result: ResultLike) -> dict[str, Any]:
    """Return every close per symbol (for the chart around a clicked decision)."""
    bars = result.bars
    out: dict[str, Any] = {}
    if not len(bars):
        return out
    for name in result.symbols:
        rows = bars[is_(bars["symbol"], name)]
        out[name] = {"x": ns(rows["time"]), "y": rows["close"].to_numpy(dtype=np.float64)}
    return out


def build_report_data(
    result: ResultLike,
    *,
    title: str | None = None,
    segments_of: Mapping[str, ResultLike] | None = None,
) -> dict[str, Any]:
    """Return every section of the report for `result` (and optional named segments)."""
    agents = list(result.info.get("agents", []))
    symbols = ", ".join(result.symbols)
    return {
        "title": title or f"Backtest report — {symbols}",
        "summary": summary(result),
        "limits": limits(result),
        "overview": overview(result),
        "symbols": per_symbol(result, agents),
        "agent_performance": agent_performance(result),
        "risk": risk_events(result),
        "key_decisions": key_decisions(result),
        "models": model_cards(result),
        "segments": segments(segments_of or {}),
        "optimization": plain(result.info.get("optimization")),
        "walk_forward": plain(result.info.get("walk_forward")),
        "decisions": decision_log(result, agents),
        "detail": detail_prices(result),
    }
