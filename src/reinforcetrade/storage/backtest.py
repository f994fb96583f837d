"""A backtest's result tables into the journal, column-wise and in bulk.

Takes the DataFrames as `BacktestResult` exposes them (decisions, orders, fills, trades, equity),
so the journal needs nothing from `backtesting`. Order ids become ``bt<run>-<decision>`` client ids
and fill ids ``<run>-<row>`` trade ids under exchange ``backtest``, unique across runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sqlalchemy import Connection, select

from reinforcetrade.storage import schema
from reinforcetrade.storage.bulk import Values, bulk_insert
from reinforcetrade.storage.errors import JournalError

TABLES: Final[tuple[str, ...]] = ("decisions", "orders", "fills", "trades", "equity")
EXCHANGE: Final[str] = "backtest"
#: `BacktestResult.orders` statuses in the journal's order vocabulary
_STATUS: Final[dict[str, str]] = {
    "filled": "filled",
    "partial": "partially_filled",
    "unfilled": "expired",
}
_DECISION_COLUMNS: Final[tuple[str, ...]] = (
    "symbol",
    "action",
    "direction",
    "confidence",
    "threshold",
    "agreeing",
    "regime",
    "vol_regime",
    "trend_regime",
    "size",
    "qty",
    "stop",
    "take_profit",
    "reasons",
    "reason_codes",
    "reason_mask",
    "exit_reason",
    "cost_estimate_bps",
)


def client_order_id(run_id: int, order_id: int) -> str:
    """Return the client order id a backtest order gets in the journal.

    >>> client_order_id(7, 44)
    'bt7-44'
    """
    return f"bt{run_id}-{order_id}"


Columns = dict[str, Values]


def _column(frame: pd.DataFrame, name: str, *, blank_is_null: bool = False) -> list[Any]:
    """Return a column as Python values ([None…] when absent); '' becomes None if asked."""
    if name not in frame.columns:
        return [None] * len(frame)
    series = frame[name]
    if isinstance(series.dtype, pd.CategoricalDtype) or series.dtype == object:
        values = series.astype(object).tolist()
        if blank_is_null:
            return [None if v == "" or v is None or v is pd.NaT else v for v in values]
        return values
    return series.tolist()


def _times(values: Any) -> npt.NDArray[np.datetime64]:
    """Return times (a column or an index) as UTC datetime64[ns], NaT where missing."""
    stamps = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return stamps.tz_convert("UTC").tz_localize(None).to_numpy(dtype="datetime64[ns]")


def check_frames(frames: Mapping[str, Any]) -> None:
    """Raise `JournalError` when `frames` names a table `save_backtest` does not know."""
    unknown = sorted(set(frames) - set(TABLES))
    if unknown:
        raise JournalError(
            f"save_backtest: unknown table(s) {', '.join(unknown)} (known: {', '.join(TABLES)})"
        )


def decision_columns(frame: pd.DataFrame, run_id: int) -> Columns:
    """Return the decisions table's columns (the frame's index is the run's decision number)."""
    columns: Columns = {
        "run_id": [run_id] * len(frame),
        "number": np.asarray(frame.index, dtype=np.int64).tolist(),
        "time": _times(frame["time"]),
    }
    for name in _DECISION_COLUMNS:
        columns[name] = _column(frame, name, blank_is_null=name in ("exit_reason", "action"))
    columns["reason_mask"] = [0 if m is None else int(m) for m in columns["reason_mask"]]
    return columns


def agent_columns(frame: pd.DataFrame, ids: Mapping[int, int]) -> Columns:
    """Return each decision's agents (``signal_<a>`` columns), keyed by decision row id."""
    decision_ids = [ids[n] for n in np.asarray(frame.index, dtype=np.int64).tolist()]
    agents = [str(c).removeprefix("signal_") for c in frame.columns if str(c).startswith("signal_")]
    columns: dict[str, list[Any]] = {
        "decision_id": [],
        "agent": [],
        "signal": [],
        "confidence": [],
        "weight": [],
    }
    for agent in agents:
        columns["decision_id"] += decision_ids
        columns["agent"] += [agent] * len(frame)
        columns["signal"] += np.asarray(frame[f"signal_{agent}"], dtype=np.int64).tolist()
        columns["confidence"] += _column(frame, f"confidence_{agent}")
        columns["weight"] += _column(frame, f"weight_{agent}")
    return dict(columns)


def _fill_sides(fills: pd.DataFrame) -> dict[int, str]:
    """Return the side of each decision's first fill."""
    if not len(fills):
        return {}
    first = fills.drop_duplicates("decision")
    return dict(zip(first["decision"].tolist(), _column(first, "side"), strict=True))


def order_columns(
    frame: pd.DataFrame, fills: pd.DataFrame, decisions: pd.DataFrame, run_id: int
) -> Columns:
    """Return the orders table's columns; a ``close`` order takes its fills' side."""
    sides = _fill_sides(fills)
    direction = (
        dict(zip(decisions.index.tolist(), decisions["direction"].tolist(), strict=True))
        if "direction" in decisions.columns
        else {}
    )
    ids = np.asarray(frame["order_id"], dtype=np.int64).tolist()
    side: list[str] = []
    reason: list[str | None] = []
    for order_id, asked in zip(ids, _column(frame, "side"), strict=True):
        if asked == "close":
            fallback = "buy" if direction.get(order_id, 0) > 0 else "sell"
            side.append(sides.get(order_id, fallback))
            reason.append("close the position")
        else:
            side.append(asked)
            reason.append(None)
    times = _times(frame["time"])
    statuses = [_STATUS.get(s, s) for s in _column(frame, "status")]
    return {
        "client_order_id": [client_order_id(run_id, i) for i in ids],
        "run_id": [run_id] * len(frame),
        "decision_number": ids,
        "symbol": _column(frame, "symbol"),
        "side": side,
        "type": _column(frame, "type"),
        "qty": _column(frame, "qty"),
        "price": [None] * len(frame),
        "stop_price": [None] * len(frame),
        "status": statuses,
        "exchange_order_id": [None] * len(frame),
        "filled_qty": _column(frame, "filled_qty"),
        "avg_price": _column(frame, "avg_price"),
        "reason": reason,
        "created_at": times,
        "updated_at": times,
    }


def fill_columns(frame: pd.DataFrame, order_ids: set[int], run_id: int) -> Columns:
    """Return the fills table's columns, linked to their orders by decision number."""
    decisions = np.asarray(frame["decision"], dtype=np.int64).tolist() if len(frame) else []
    return {
        "run_id": [run_id] * len(frame),
        "client_order_id": [
            client_order_id(run_id, d) if d in order_ids else None for d in decisions
        ],
        "exchange": [EXCHANGE] * len(frame),
        "exchange_trade_id": [f"{run_id}-{i}" for i in range(len(frame))],
        "symbol": _column(frame, "symbol"),
        "side": _column(frame, "side"),
        "time": _times(frame["time"]),
        "qty": _column(frame, "qty"),
        "price": _column(frame, "price"),
        "fee": _column(frame, "commission"),
        "fee_currency": [None] * len(frame),
        "liquidity": [None] * len(frame),
        "reference_price": _column(frame, "reference_price"),
        "slippage": _column(frame, "slippage"),
        "slippage_bps": _column(frame, "slippage_bps"),
        "latency_ms": _column(frame, "latency_ms"),
        "reconciliation": [False] * len(frame),
    }


def trade_columns(frame: pd.DataFrame, run_id: int) -> Columns:
    """Return the trades table's columns (positions still open have no exit time)."""
    return {
        "run_id": [run_id] * len(frame),
        "number": list(range(len(frame))),
        "symbol": _column(frame, "symbol"),
        "side": _column(frame, "side"),
        "entry_time": _times(frame["entry_time"]),
        "exit_time": _times(frame["exit_time"]),
        "qty": _column(frame, "qty"),
        "entry_price": _column(frame, "entry_price"),
        "exit_price": _column(frame, "exit_price"),
        "commission": _column(frame, "commission"),
        "slippage": _column(frame, "slippage"),
        "borrow": _column(frame, "borrow"),
        "pnl": _column(frame, "pnl"),
        "ret": _column(frame, "return"),
        "exit_reason": _column(frame, "exit_reason", blank_is_null=True),
        "decision_number": _column(frame, "decision"),
    }


def equity_columns(equity: pd.Series | pd.DataFrame, run_id: int) -> Columns:
    """Return the equity table's columns from `BacktestResult.equity` (a Series) or a frame.

    A frame may carry ``cash`` and ``exposure`` next to ``equity``; times come from a ``time``
    column or the index.
    """
    frame = equity.to_frame("equity") if isinstance(equity, pd.Series) else equity
    if "equity" not in frame.columns:
        raise JournalError("save_backtest: the equity table needs an 'equity' column")
    times = _times(frame["time"] if "time" in frame.columns else frame.index)
    return {
        "run_id": [run_id] * len(frame),
        "time": times,
        "equity": _column(frame, "equity"),
        "cash": _column(frame, "cash"),
        "exposure": _column(frame, "exposure"),
    }


def store_tables(connection: Connection, frames: Mapping[str, Any], run_id: int) -> None:
    """Bulk-insert a backtest's tables for run `run_id` inside the connection's transaction."""
    empty = pd.DataFrame()
    decisions = frames.get("decisions", empty)
    orders = frames.get("orders", empty)
    fills = frames.get("fills", empty)
    if len(decisions):
        bulk_insert(connection, schema.decisions, decision_columns(decisions, run_id))
        ids = schema.decisions.c
        numbers = connection.execute(select(ids.number, ids.id).where(ids.run_id == run_id))
        bulk_insert(
            connection, schema.decision_agents, agent_columns(decisions, dict(numbers.all()))
        )
    if len(orders):
        bulk_insert(connection, schema.orders, order_columns(orders, fills, decisions, run_id))
    if len(fills):
        order_ids = set(orders["order_id"].tolist()) if len(orders) else set()
        bulk_insert(connection, schema.fills, fill_columns(fills, order_ids, run_id))
    if len(frames.get("trades", empty)):
        bulk_insert(connection, schema.trades, trade_columns(frames["trades"], run_id))
    if len(frames.get("equity", empty)):
        bulk_insert(connection, schema.equity, equity_columns(frames["equity"], run_id))
