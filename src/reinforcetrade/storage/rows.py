"""Frozen records the journal returns, one per row: runs, orders, fills, events, retrains."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any, TypeVar

from reinforcetrade.storage.orders import OPEN_STATUSES

R = TypeVar("R")


def from_row(cls: type[R], row: Mapping[Any, Any]) -> R:
    """Return a record of type `cls` built from a database row's mapping."""
    names = [f.name for f in fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: row[name] for name in names})


@dataclass(frozen=True, slots=True)
class RunRow:
    """One run: a backtest, a paper or a live session."""

    id: int
    kind: str
    name: str
    started_at: datetime
    ended_at: datetime | None
    status: str
    config_hash: str | None
    settings: dict[str, Any] | None
    symbols: list[str] | None
    timeframe: str | None
    host: str | None
    pid: int | None
    version: str | None


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One order as the journal last recorded it."""

    client_order_id: str
    run_id: int
    decision_number: int | None
    symbol: str
    side: str
    type: str
    qty: float
    price: float | None
    stop_price: float | None
    status: str
    exchange_order_id: str | None
    filled_qty: float
    avg_price: float | None
    reason: str | None
    created_at: datetime
    updated_at: datetime
    venue: str | None = None  # where it went (a routed order: the venues of its legs)
    route: dict[str, Any] | None = None  # the router's choice and the figures behind it

    @property
    def is_open(self) -> bool:
        """Return whether the order may still fill."""
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class OrderEventRow:
    """One status change of an order."""

    client_order_id: str
    time: datetime
    from_status: str | None
    to_status: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class FillRow:
    """One execution reported by a broker (or simulated in a backtest)."""

    id: int
    run_id: int | None
    client_order_id: str | None
    exchange: str
    exchange_trade_id: str
    symbol: str
    side: str
    time: datetime
    qty: float
    price: float
    fee: float | None
    fee_currency: str | None
    liquidity: str | None
    reference_price: float | None
    slippage: float | None
    slippage_bps: float | None
    latency_ms: float | None
    reconciliation: bool


@dataclass(frozen=True, slots=True)
class PositionRow:
    """A position's life in one run and symbol: open while `closed_at` is None."""

    id: int
    run_id: int
    symbol: str
    qty: float
    avg_price: float | None
    realised_pnl: float
    opened_at: datetime
    closed_at: datetime | None
    stop_client_order_id: str | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RiskEventRow:
    """A change of the risk state, or a risk alert, with who caused it and why."""

    id: int
    run_id: int | None
    time: datetime
    kind: str
    state: str
    reason: str | None
    actor: str | None


@dataclass(frozen=True, slots=True)
class VenueStatsRow:
    """One venue's execution figures in a run, as of its last order outcome."""

    id: int
    run_id: int
    venue: str
    orders: int
    fills: int
    rejects: int
    errors: int
    fill_ratio: float | None
    reject_rate: float | None
    slippage_bps: float | None
    latency_p50_ms: float | None
    latency_p99_ms: float | None
    health: str
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class RetrainRow:
    """One retrain of the self-reinforcement loop: what was tried, the evidence, the verdict."""

    id: int
    uid: str
    time: datetime
    started: datetime
    symbol: str
    timeframe: str
    algorithm: str
    trigger: str
    verdict: str
    reason: str
    metric: str
    challenger: str | None
    champion: str | None
    challenger_value: float | None
    champion_value: float | None
    margin: float
    deflated_sharpe: float | None
    trials: int
    tried: dict[str, Any]
    figures: dict[str, Any]
    weights: dict[str, Any] | None
    data: dict[str, Any]
