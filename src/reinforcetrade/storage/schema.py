"""The journal's tables as one SQLAlchemy `MetaData`; the initial migration creates exactly these.

Times are `UtcDateTime` (TIMESTAMPTZ on PostgreSQL), numbers `Number` (NaN stored as NULL),
enumerated words are guarded by CHECK constraints built from `vocabulary` and `orders`.
`uid` columns hold a key the journal draws once per write, so a write retried after a lost
connection never adds a second row.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from reinforcetrade.storage.orders import ORDER_STATUSES, ORDER_TYPES, SIDES
from reinforcetrade.storage.types import Id, Json, Number, UtcDateTime
from reinforcetrade.storage.vocabulary import (
    AUDIT_OUTCOMES,
    LIQUIDITY,
    RETRAIN_TRIGGERS,
    RETRAIN_VERDICTS,
    RISK_EVENT_KINDS,
    RISK_STATES,
    RUN_KINDS,
    RUN_STATUSES,
    TRADE_SIDES,
    VENUE_HEALTH,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)


def _one_of(column: str, words: Sequence[str], *, nullable: bool = False) -> CheckConstraint:
    """Return a CHECK that `column` holds one of `words` (or NULL when `nullable`)."""
    listed = ", ".join(f"'{w}'" for w in words)
    rule = f"{column} IN ({listed})"
    return CheckConstraint(f"{column} IS NULL OR {rule}" if nullable else rule, name=column)


def _run_id(*, nullable: bool = False) -> Column[int]:
    """Return the `run_id` column: a run's key, its rows deleted with it."""
    return Column("run_id", Id, ForeignKey("runs.id", ondelete="CASCADE"), nullable=nullable)


runs = Table(
    "runs",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    Column("kind", String(16), nullable=False),
    Column("name", String(200), nullable=False),
    Column("started_at", UtcDateTime, nullable=False),
    Column("ended_at", UtcDateTime),
    Column("status", String(16), nullable=False),
    Column("config_hash", String(128)),
    Column("settings", Json),
    Column("symbols", Json),
    Column("timeframe", String(16)),
    Column("host", String(255)),
    Column("pid", Integer),
    Column("version", String(64)),
    _one_of("kind", RUN_KINDS),
    _one_of("status", RUN_STATUSES),
    Index(None, "name", "started_at"),
    Index(None, "kind", "started_at"),
)

bars = Table(
    "bars",
    metadata,
    _run_id(),
    Column("symbol", String(64), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("open", Number, nullable=False),
    Column("high", Number, nullable=False),
    Column("low", Number, nullable=False),
    Column("close", Number, nullable=False),
    Column("volume", Number, nullable=False),
    UniqueConstraint("run_id", "symbol", "time"),
    Index(None, "symbol", "time"),
)

decisions = Table(
    "decisions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _run_id(),
    Column("number", Integer, nullable=False),  # the run's own decision id
    Column("time", UtcDateTime, nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("action", String(16), nullable=False),
    Column("direction", Integer, nullable=False),
    Column("confidence", Number),
    Column("threshold", Number),
    Column("agreeing", Integer),
    Column("regime", String(32)),
    Column("vol_regime", String(16)),
    Column("trend_regime", String(16)),
    Column("size", Number),
    Column("qty", Number),
    Column("stop", Number),
    Column("take_profit", Number),
    Column("reasons", Text),
    Column("reason_codes", Text),
    Column("reason_mask", Integer, nullable=False),
    Column("exit_reason", String(16)),
    Column("cost_estimate_bps", Number),
    Column("algo", String(16)),  # how its order is worked (immediate, twap, vwap); NULL: none
    UniqueConstraint("run_id", "number"),
    Index(None, "run_id", "time"),
    Index(None, "symbol", "time"),
)

decision_agents = Table(
    "decision_agents",
    metadata,
    Column("decision_id", Id, ForeignKey("decisions.id", ondelete="CASCADE"), nullable=False),
    Column("agent", String(64), nullable=False),
    Column("signal", Integer, nullable=False),
    Column("confidence", Number),
    Column("weight", Number),
    UniqueConstraint("decision_id", "agent"),
)

orders = Table(
    "orders",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("client_order_id", String(100), nullable=False, unique=True),
    _run_id(),
    Column("decision_number", Integer),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("type", String(16), nullable=False),
    Column("qty", Number, nullable=False),
    Column("price", Number),
    Column("stop_price", Number),
    Column("status", String(16), nullable=False),
    Column("exchange_order_id", String(100)),
    Column("filled_qty", Number, nullable=False),
    Column("avg_price", Number),
    Column("reason", Text),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("venue", String(200)),  # where it went (routed: the venues of its legs)
    Column("route", Json),  # the router's choice and every venue's figures behind it
    _one_of("side", SIDES),
    _one_of("type", ORDER_TYPES),
    _one_of("status", ORDER_STATUSES),
    Index(None, "run_id", "created_at"),
    Index(None, "symbol", "created_at"),
    Index(None, "status"),
)

order_events = Table(
    "order_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    Column(
        "client_order_id",
        String(100),
        ForeignKey("orders.client_order_id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("time", UtcDateTime, nullable=False),
    Column("from_status", String(16)),
    Column("to_status", String(16), nullable=False),
    Column("detail", Text),
    Index(None, "client_order_id", "time"),
)

fills = Table(
    "fills",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _run_id(nullable=True),
    Column("client_order_id", String(100)),  # no foreign key: a reconciled fill may be foreign
    Column("exchange", String(64), nullable=False),
    Column("exchange_trade_id", String(100), nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(4), nullable=False),
    Column("time", UtcDateTime, nullable=False),
    Column("qty", Number, nullable=False),
    Column("price", Number, nullable=False),
    Column("fee", Number),
    Column("fee_currency", String(16)),
    Column("liquidity", String(8)),
    Column("reference_price", Number),
    Column("slippage", Number),  # money lost against the reference price
    Column("slippage_bps", Number),
    Column("latency_ms", Number),
    Column("reconciliation", Boolean, nullable=False),
    UniqueConstraint("exchange", "symbol", "exchange_trade_id"),
    _one_of("side", SIDES),
    _one_of("liquidity", LIQUIDITY, nullable=True),
    Index(None, "run_id", "time"),
    Index(None, "symbol", "time"),
    Index(None, "client_order_id"),
)

trades = Table(
    "trades",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _run_id(),
    Column("number", Integer, nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("side", String(8), nullable=False),
    Column("entry_time", UtcDateTime, nullable=False),
    Column("exit_time", UtcDateTime),  # NULL while open
    Column("qty", Number, nullable=False),
    Column("entry_price", Number, nullable=False),
    Column("exit_price", Number),
    Column("commission", Number),
    Column("slippage", Number),
    Column("borrow", Number),
    Column("pnl", Number),
    Column("ret", Number),
    Column("exit_reason", String(16)),
    Column("decision_number", Integer),
    UniqueConstraint("run_id", "number"),
    _one_of("side", TRADE_SIDES),
    Index(None, "run_id", "entry_time"),
    Index(None, "symbol", "entry_time"),
)

positions = Table(
    "positions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _run_id(),
    Column("symbol", String(64), nullable=False),
    Column("qty", Number, nullable=False),  # signed: negative is short
    Column("avg_price", Number),
    Column("realised_pnl", Number, nullable=False),
    Column("opened_at", UtcDateTime, nullable=False),
    Column("closed_at", UtcDateTime),  # NULL while open
    Column("stop_client_order_id", String(100)),
    Column("updated_at", UtcDateTime, nullable=False),
)
#: at most one open position row per run and symbol
Index(
    "ix_positions_open",
    positions.c.run_id,
    positions.c.symbol,
    unique=True,
    sqlite_where=positions.c.closed_at.is_(None),
    postgresql_where=positions.c.closed_at.is_(None),
)

equity = Table(
    "equity",
    metadata,
    _run_id(),
    Column("time", UtcDateTime, nullable=False),
    Column("equity", Number, nullable=False),
    Column("cash", Number),
    Column("exposure", Number),
    UniqueConstraint("run_id", "time"),
)

risk_events = Table(
    "risk_events",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    _run_id(nullable=True),
    Column("time", UtcDateTime, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("state", String(16), nullable=False),
    Column("reason", Text),
    Column("actor", String(100)),
    _one_of("kind", RISK_EVENT_KINDS),
    _one_of("state", RISK_STATES),
    Index(None, "run_id", "time"),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    Column("time", UtcDateTime, nullable=False),
    Column("actor", String(100), nullable=False),
    Column("client", String(100)),  # the address the request came from
    Column("action", String(32), nullable=False),
    Column("target", String(200)),
    Column("reason", Text),
    Column("outcome", String(16), nullable=False),
    Column("detail", Text),
    _one_of("outcome", AUDIT_OUTCOMES),
    Index(None, "time"),
)

retrains = Table(
    "retrains",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("uid", String(32), nullable=False, unique=True),
    Column("time", UtcDateTime, nullable=False),  # when the retrain finished
    Column("started", UtcDateTime, nullable=False),
    Column("symbol", String(64), nullable=False),
    Column("timeframe", String(16), nullable=False),
    Column("algorithm", String(32), nullable=False),
    Column("trigger", String(16), nullable=False),
    Column("verdict", String(16), nullable=False),
    Column("reason", Text, nullable=False),
    Column("metric", String(64), nullable=False),
    Column("challenger", String(200)),  # model ids; no champion before the first promotion
    Column("champion", String(200)),
    Column("challenger_value", Number),
    Column("champion_value", Number),
    Column("margin", Number, nullable=False),
    Column("deflated_sharpe", Number),
    Column("trials", Integer, nullable=False),
    Column("tried", Json, nullable=False),  # hyperparameters, timesteps, seeds, data span, tuning
    Column("figures", Json, nullable=False),  # each fold's figures of both contenders
    Column("weights", Json),  # the tower weights estimated again, if they were
    Column("data", Json, nullable=False),  # fingerprint, bars, first and last bar
    _one_of("trigger", RETRAIN_TRIGGERS),
    _one_of("verdict", RETRAIN_VERDICTS),
    Index(None, "symbol", "timeframe", "time"),
)

venue_stats = Table(
    "venue_stats",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    _run_id(),
    Column("venue", String(64), nullable=False),
    Column("orders", Integer, nullable=False),
    Column("fills", Integer, nullable=False),
    Column("rejects", Integer, nullable=False),
    Column("errors", Integer, nullable=False),
    Column("fill_ratio", Number),  # filled / asked quantity
    Column("reject_rate", Number),  # of the last `routing.window` orders
    Column("slippage_bps", Number),  # EWMA against the arrival price
    Column("latency_p50_ms", Number),
    Column("latency_p99_ms", Number),
    Column("health", String(16), nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("run_id", "venue"),
    _one_of("health", VENUE_HEALTH),
)

model_versions = Table(
    "model_versions",
    metadata,
    Column("id", Id, primary_key=True, autoincrement=True),
    Column("model_id", String(200), nullable=False, unique=True),
    Column("algorithm", String(32), nullable=False),
    Column("symbol", String(64)),
    Column("timeframe", String(16)),
    Column("created", UtcDateTime, nullable=False),
    Column("metrics", Json),
    Column("path", Text),
    Index(None, "symbol", "timeframe"),
)

engine_locks = Table(
    "engine_locks",
    metadata,
    Column("name", String(200), primary_key=True),
    Column("token", String(32), nullable=False),  # one per acquisition: detects a takeover
    Column("owner", String(200), nullable=False),
    Column("host", String(255), nullable=False),
    Column("pid", Integer, nullable=False),
    Column("acquired_at", UtcDateTime, nullable=False),
    Column("heartbeat_at", UtcDateTime, nullable=False),
)
