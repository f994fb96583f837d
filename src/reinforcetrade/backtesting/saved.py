"""`load_result`: a backtest result read back from the folder `BacktestResult.save` wrote.

A `SavedResult` has the same tables, metrics and facts as the `BacktestResult` it was saved
from, so reports and tools read either one alike. `stitch` joins consecutive results — the
out-of-sample spans of a walk-forward — into one `SavedResult`.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import pandas as pd
import yaml

from reinforcetrade.core.errors import UserInputError
from reinforcetrade.core.files import atomic_path, atomic_write_bytes
from reinforcetrade.features.performance import compute_metrics

TABLES = ("equity", "bars", "trades", "orders", "fills", "decisions", "exposure")


@dataclass(frozen=True)
class SavedResult:
    """A saved backtest: equity, returns, risk state, tables, metrics, settings and facts."""

    folder: Path | None
    equity: pd.Series
    returns: pd.Series
    risk_state: pd.Series
    trades: pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    decisions: pd.DataFrame
    exposure: pd.DataFrame
    bars: pd.DataFrame
    metrics: dict[str, float]
    config_hash: str
    seed: int
    symbols: tuple[str, ...]
    initial_balance: float
    mode: str
    info: dict[str, Any]
    settings: dict[str, Any] = field(repr=False)

    @property
    def models(self) -> list[dict[str, Any]]:
        """Return the records of the RL models the strategy used."""
        return list(self.info.get("models", []))

    @property
    def final_equity(self) -> float:
        """Return the equity after the last bar."""
        return float(self.equity.iloc[-1])

    def public_config(self) -> dict[str, Any]:
        """Return the run's settings as saved (secrets masked)."""
        return self.settings

    def save(self, directory: str | Path) -> Path:
        """Write the result as `BacktestResult.save` does (so `load_result` reads it back)."""
        equity = self.equity.to_frame("equity").assign(
            returns=self.returns, state=self.risk_state.astype(str).to_numpy()
        )
        return write_result(directory, self, equity, yaml.safe_dump(self.settings, sort_keys=False))


def write_result(
    directory: str | Path, result: ResultView, equity: pd.DataFrame, config_yaml: str
) -> Path:
    """Write a result folder: a Parquet file per table, metrics.json, config.yaml; atomically.

    `equity` is the equity table (equity, returns, state and whatever else the result has).
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    tables = {
        "equity": equity,
        "bars": result.bars,
        "trades": result.trades,
        "orders": result.orders,
        "fills": result.fills,
        "decisions": result.decisions,
        "exposure": result.exposure,
    }
    for name, table in tables.items():
        with atomic_path(folder / f"{name}.parquet") as temp:
            table.to_parquet(temp)
    summary = {
        "metrics": {
            k: (None if not math.isfinite(float(v)) else float(v))
            for k, v in result.metrics.items()
        },
        "config_hash": result.config_hash,
        "seed": result.seed,
        "symbols": list(result.symbols),
        "initial_balance": result.initial_balance,
        "mode": result.mode,
        **result.info,
    }
    text = json.dumps(summary, indent=2, default=str)
    atomic_write_bytes(folder / "metrics.json", text.encode())
    atomic_write_bytes(folder / "config.yaml", config_yaml.encode())
    return folder


class ResultView(Protocol):
    """What tools read of a result: a `BacktestResult` or a `SavedResult` alike."""

    @property
    def equity(self) -> pd.Series: ...  # noqa: D102
    @property
    def returns(self) -> pd.Series: ...  # noqa: D102
    @property
    def risk_state(self) -> pd.Series: ...  # noqa: D102
    @property
    def trades(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def orders(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def fills(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def decisions(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def exposure(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def bars(self) -> pd.DataFrame: ...  # noqa: D102
    @property
    def metrics(self) -> dict[str, float]: ...  # noqa: D102
    @property
    def config_hash(self) -> str: ...  # noqa: D102
    @property
    def seed(self) -> int: ...  # noqa: D102
    @property
    def symbols(self) -> tuple[str, ...]: ...  # noqa: D102
    @property
    def initial_balance(self) -> float: ...  # noqa: D102
    @property
    def mode(self) -> str: ...  # noqa: D102
    @property
    def info(self) -> dict[str, Any]: ...  # noqa: D102
    @property
    def models(self) -> list[dict[str, Any]]: ...  # noqa: D102
    def public_config(self) -> dict[str, Any]: ...  # noqa: D102


MONEY = ("qty", "commission", "slippage", "borrow", "pnl", "filled_qty")


def stitch(parts: Sequence[ResultView], *, name: str = "stitched") -> SavedResult:
    """Return consecutive results joined into one, as if one account had traded them in turn.

    Each part starts from the equity the one before ended with: its equity and money columns
    (quantities, costs, P&L) are scaled by that ratio; returns, exposures and prices are kept.
    Decision ids are renumbered to stay unique, and every table gains a `segment` column.
    Metrics are computed afresh on the joined equity and trades.
    """
    _check_consecutive(parts)
    initial = float(parts[0].initial_balance)
    scales, level = [], initial
    for p in parts:
        scales.append(level / float(p.initial_balance))
        level = float(p.equity.iloc[-1]) * scales[-1]
    offsets = [int(x) for x in np.cumsum([0] + [len(p.decisions) for p in parts[:-1]])]
    layout = list(zip(parts, scales, offsets, strict=True))
    equity = pd.concat([p.equity * s for p, s in zip(parts, scales, strict=True)])
    trades = _join(layout, "trades", ("decision",))
    fills = _join(layout, "fills", ("decision",))
    exposure = _join(layout, "exposure").drop(columns="segment")
    decisions = _join(layout, "decisions")
    metrics = _stitched_metrics(parts, equity, trades, fills, exposure, decisions)
    last = parts[-1]
    info = {
        **{k: v for k, v in parts[0].info.items() if k not in {"end", "bars", "models"}},
        "start": equity.index[0].isoformat(),
        "end": equity.index[-1].isoformat(),
        "bars": len(equity),
        "models": _unique_models(parts),
        "stitched": name,
        "segments_of": [
            {
                "segment": k,
                "start": p.equity.index[0].isoformat(),
                "end": p.equity.index[-1].isoformat(),
                "bars": len(p.equity),
                "config_hash": p.config_hash,
                "scale": scales[k],
            }
            for k, p in enumerate(parts)
        ],
    }
    return SavedResult(
        folder=None,
        equity=equity.rename("equity"),
        returns=pd.concat([p.returns for p in parts]).rename("returns"),
        risk_state=pd.concat([p.risk_state.astype(str) for p in parts]).rename("state"),
        trades=trades,
        orders=_join(layout, "orders", ("order_id",)),
        fills=fills,
        decisions=decisions,
        exposure=exposure,
        bars=_join(layout, "bars"),
        metrics=metrics,
        config_hash="+".join(p.config_hash[:8] for p in parts),
        seed=last.seed,
        symbols=parts[0].symbols,
        initial_balance=initial,
        mode=last.mode,
        info=info,
        settings=last.public_config(),
    )


def _check_consecutive(parts: Sequence[ResultView]) -> None:
    if not parts:
        raise UserInputError("nothing to stitch: give at least one result")
    for a, b in itertools.pairwise(parts):
        if b.symbols != a.symbols:
            raise UserInputError(f"cannot stitch results of {b.symbols} onto {a.symbols}")
        if b.equity.index[0] <= a.equity.index[-1]:
            raise UserInputError(
                f"results overlap: one ends at {a.equity.index[-1]}, the next starts at "
                f"{b.equity.index[0]}; stitch consecutive spans"
            )


def _join(
    layout: Sequence[tuple[ResultView, float, int]], table: str, ids: tuple[str, ...] = ()
) -> pd.DataFrame:
    """Return one table of every part: money scaled, ids offset, a `segment` column added."""
    frames = []
    for k, (part, scale, offset) in enumerate(layout):
        frame = getattr(part, table).copy()
        for column in MONEY if table != "bars" else ():
            if column in frame:
                frame[column] = frame[column] * scale
        for column in ids:
            if column in frame:
                frame[column] = frame[column] + offset
        if table == "decisions":
            frame.index = frame.index + offset
        frame["segment"] = k
        frames.append(frame)
    out = pd.concat(frames, ignore_index=table not in {"decisions", "exposure"})
    for column in out.columns:
        if isinstance(frames[0][column].dtype, pd.CategoricalDtype):
            out[column] = out[column].astype("category")
    joined: pd.DataFrame = out
    return joined


def _stitched_metrics(
    parts: Sequence[ResultView],
    equity: pd.Series,
    trades: pd.DataFrame,
    fills: pd.DataFrame,
    exposure: pd.DataFrame,
    decisions: pd.DataFrame,
) -> dict[str, float]:
    """Return the metrics of the joined equity and trades, computed as a backtest does."""
    closed = trades[trades["exit_reason"].astype(str) != "open"] if len(trades) else trades
    times = pd.DatetimeIndex(equity.index).asi8
    traded = np.zeros(times.size)
    if len(fills):
        at = np.clip(np.searchsorted(times, pd.DatetimeIndex(fills["time"]).asi8), 0, None)
        np.add.at(traded, np.minimum(at, times.size - 1), (fills["qty"] * fills["price"]).abs())
    empty = np.zeros(0)
    metrics = compute_metrics(
        equity.to_numpy(dtype=np.float64),
        times,
        closed["pnl"].to_numpy(dtype=np.float64) if len(closed) else empty,
        closed["return"].to_numpy(dtype=np.float64) if len(closed) else empty,
        pd.DatetimeIndex(closed["entry_time"]).asi8 if len(closed) else empty,
        pd.DatetimeIndex(closed["exit_time"]).asi8 if len(closed) else empty,
        float(parts[0].info.get("periods_per_year") or 1.0),
        exposure=exposure["total"].to_numpy(dtype=np.float64),
        traded_notional=traded,
    )
    actions = decisions["action"].astype(str) if len(decisions) else pd.Series(dtype=str)
    metrics["trades_open_at_end"] = float(parts[-1].metrics.get("trades_open_at_end", 0.0))
    metrics["decisions"] = float(len(decisions))
    metrics["blocked_entries"] = float((actions == "blocked").sum())
    metrics["final_equity"] = float(equity.iloc[-1])
    return metrics


def _unique_models(parts: Sequence[ResultView]) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for p in parts:
        for m in p.info.get("models", []):
            seen.setdefault(str(m.get("id")), dict(m))
    return list(seen.values())


def load_result(directory: str | Path) -> SavedResult:
    """Read a result folder; a missing or unreadable file is named in the error."""
    folder = Path(directory)
    if not folder.is_dir():
        raise UserInputError(f"{folder}: no such result folder (write one with --out)")
    missing = [
        name
        for name in (*(f"{t}.parquet" for t in TABLES), "metrics.json", "config.yaml")
        if not (folder / name).is_file()
    ]
    if missing:
        raise UserInputError(
            f"{folder} is not a complete backtest result: missing {', '.join(missing)}; "
            "write one with `reinforcetrade backtest --out DIR` or BacktestResult.save(DIR)"
        )
    tables = {name: _read_parquet(folder / f"{name}.parquet") for name in TABLES}
    summary = _read_json(folder / "metrics.json")
    try:
        settings = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise UserInputError(f"{folder / 'config.yaml'}: not valid YAML ({exc})") from None
    equity_table = tables["equity"]
    try:
        metrics = {
            str(k): (math.nan if v is None else float(v)) for k, v in summary["metrics"].items()
        }
        config_hash = str(summary["config_hash"])
        seed = int(summary["seed"])
        symbols = tuple(str(s) for s in summary["symbols"])
        initial_balance = float(summary["initial_balance"])
        mode = str(summary["mode"])
    except (KeyError, TypeError, ValueError) as exc:
        raise UserInputError(f"{folder / 'metrics.json'}: missing or bad field {exc}") from None
    facts = {"metrics", "config_hash", "seed", "symbols", "initial_balance", "mode"}
    info = {k: v for k, v in summary.items() if k not in facts}
    return SavedResult(
        folder=folder,
        equity=equity_table["equity"],
        returns=equity_table["returns"],
        risk_state=equity_table["state"].astype(str),
        trades=tables["trades"],
        orders=tables["orders"],
        fills=tables["fills"],
        decisions=tables["decisions"],
        exposure=tables["exposure"],
        bars=tables["bars"],
        metrics=metrics,
        info=info,
        settings=settings,
        config_hash=config_hash,
        seed=seed,
        symbols=symbols,
        initial_balance=initial_balance,
        mode=mode,
    )


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise UserInputError(f"{path}: cannot read it as Parquet ({exc})") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise UserInputError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: expected an object")
    return data
