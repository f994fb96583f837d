"""`load_result`: a backtest result read back from the folder `BacktestResult.save` wrote.

A `SavedResult` has the same tables, metrics and facts as the `BacktestResult` it was saved
from, so reports and tools read either one alike.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from reinforcetrade.core.errors import UserInputError

TABLES = ("equity", "bars", "trades", "orders", "fills", "decisions", "exposure")


@dataclass(frozen=True)
class SavedResult:
    """A saved backtest: equity, returns, risk state, tables, metrics, settings and facts."""

    folder: Path
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
