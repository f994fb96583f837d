"""The journal's first schema: runs, market data, decisions, orders, fills, risk, models, locks.

Revision ID: 0001
Revises:
Create Date: 2026-01-01

Types are spelled out here (not imported from `schema`) so this revision never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
NUMBER: sa.Double[float] = sa.Double()
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create every table of the journal."""
    op.create_table(
        "engine_locks",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("token", sa.String(length=32), nullable=False),
        sa.Column("owner", sa.String(length=200), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("acquired_at", TIME, nullable=False),
        sa.Column("heartbeat_at", TIME, nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_engine_locks")),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=True),
        sa.Column("timeframe", sa.String(length=16), nullable=True),
        sa.Column("created", TIME, nullable=False),
        sa.Column("metrics", JSON, nullable=True),
        sa.Column("path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_model_versions")),
        sa.UniqueConstraint("model_id", name=op.f("uq_model_versions_model_id")),
    )
    op.create_index(
        op.f("ix_model_versions_symbol_timeframe"),
        "model_versions",
        ["symbol", "timeframe"],
        unique=False,
    )
    op.create_table(
        "runs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("started_at", TIME, nullable=False),
        sa.Column("ended_at", TIME, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("config_hash", sa.String(length=128), nullable=True),
        sa.Column("settings", JSON, nullable=True),
        sa.Column("symbols", JSON, nullable=True),
        sa.Column("timeframe", sa.String(length=16), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=True),
        sa.Column("pid", sa.Integer(), nullable=True),
        sa.Column("version", sa.String(length=64), nullable=True),
        sa.CheckConstraint("kind IN ('backtest', 'paper', 'live')", name=op.f("ck_runs_kind")),
        sa.CheckConstraint(
            "status IN ('running', 'completed', 'stopped', 'failed')", name=op.f("ck_runs_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_runs")),
        sa.UniqueConstraint("uid", name=op.f("uq_runs_uid")),
    )
    op.create_index(op.f("ix_runs_kind_started_at"), "runs", ["kind", "started_at"], unique=False)
    op.create_index(op.f("ix_runs_name_started_at"), "runs", ["name", "started_at"], unique=False)
    op.create_table(
        "bars",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("time", TIME, nullable=False),
        sa.Column("open", NUMBER, nullable=False),
        sa.Column("high", NUMBER, nullable=False),
        sa.Column("low", NUMBER, nullable=False),
        sa.Column("close", NUMBER, nullable=False),
        sa.Column("volume", NUMBER, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_bars_run_id_runs"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "symbol", "time", name=op.f("uq_bars_run_id_symbol_time")),
    )
    op.create_index(op.f("ix_bars_symbol_time"), "bars", ["symbol", "time"], unique=False)
    op.create_table(
        "decisions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("time", TIME, nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("direction", sa.Integer(), nullable=False),
        sa.Column("confidence", NUMBER, nullable=True),
        sa.Column("threshold", NUMBER, nullable=True),
        sa.Column("agreeing", sa.Integer(), nullable=True),
        sa.Column("regime", sa.String(length=32), nullable=True),
        sa.Column("vol_regime", sa.String(length=16), nullable=True),
        sa.Column("trend_regime", sa.String(length=16), nullable=True),
        sa.Column("size", NUMBER, nullable=True),
        sa.Column("qty", NUMBER, nullable=True),
        sa.Column("stop", NUMBER, nullable=True),
        sa.Column("take_profit", NUMBER, nullable=True),
        sa.Column("reasons", sa.Text(), nullable=True),
        sa.Column("reason_codes", sa.Text(), nullable=True),
        sa.Column("reason_mask", sa.Integer(), nullable=False),
        sa.Column("exit_reason", sa.String(length=16), nullable=True),
        sa.Column("cost_estimate_bps", NUMBER, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_decisions_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decisions")),
        sa.UniqueConstraint("run_id", "number", name=op.f("uq_decisions_run_id_number")),
    )
    op.create_index(op.f("ix_decisions_run_id_time"), "decisions", ["run_id", "time"], unique=False)
    op.create_index(op.f("ix_decisions_symbol_time"), "decisions", ["symbol", "time"], unique=False)
    op.create_table(
        "equity",
        sa.Column("run_id", ID, nullable=False),
        sa.Column("time", TIME, nullable=False),
        sa.Column("equity", NUMBER, nullable=False),
        sa.Column("cash", NUMBER, nullable=True),
        sa.Column("exposure", NUMBER, nullable=True),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_equity_run_id_runs"), ondelete="CASCADE"
        ),
        sa.UniqueConstraint("run_id", "time", name=op.f("uq_equity_run_id_time")),
    )
    op.create_table(
        "fills",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("client_order_id", sa.String(length=100), nullable=True),
        sa.Column("exchange", sa.String(length=64), nullable=False),
        sa.Column("exchange_trade_id", sa.String(length=100), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("time", TIME, nullable=False),
        sa.Column("qty", NUMBER, nullable=False),
        sa.Column("price", NUMBER, nullable=False),
        sa.Column("fee", NUMBER, nullable=True),
        sa.Column("fee_currency", sa.String(length=16), nullable=True),
        sa.Column("liquidity", sa.String(length=8), nullable=True),
        sa.Column("reference_price", NUMBER, nullable=True),
        sa.Column("slippage", NUMBER, nullable=True),
        sa.Column("slippage_bps", NUMBER, nullable=True),
        sa.Column("latency_ms", NUMBER, nullable=True),
        sa.Column("reconciliation", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "liquidity IS NULL OR liquidity IN ('maker', 'taker')", name=op.f("ck_fills_liquidity")
        ),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_fills_side")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_fills_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_fills")),
        sa.UniqueConstraint(
            "exchange",
            "symbol",
            "exchange_trade_id",
            name=op.f("uq_fills_exchange_symbol_exchange_trade_id"),
        ),
    )
    op.create_index(op.f("ix_fills_client_order_id"), "fills", ["client_order_id"], unique=False)
    op.create_index(op.f("ix_fills_run_id_time"), "fills", ["run_id", "time"], unique=False)
    op.create_index(op.f("ix_fills_symbol_time"), "fills", ["symbol", "time"], unique=False)
    op.create_table(
        "orders",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("client_order_id", sa.String(length=100), nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("decision_number", sa.Integer(), nullable=True),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("qty", NUMBER, nullable=False),
        sa.Column("price", NUMBER, nullable=True),
        sa.Column("stop_price", NUMBER, nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("exchange_order_id", sa.String(length=100), nullable=True),
        sa.Column("filled_qty", NUMBER, nullable=False),
        sa.Column("avg_price", NUMBER, nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_orders_side")),
        sa.CheckConstraint(
            "status IN ('pending', 'submitted', 'partially_filled', 'filled', 'cancelled', "
            "'rejected', 'expired')",
            name=op.f("ck_orders_status"),
        ),
        sa.CheckConstraint(
            "type IN ('market', 'limit', 'stop', 'stop_limit')", name=op.f("ck_orders_type")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_orders_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_orders")),
        sa.UniqueConstraint("client_order_id", name=op.f("uq_orders_client_order_id")),
    )
    op.create_index(
        op.f("ix_orders_run_id_created_at"), "orders", ["run_id", "created_at"], unique=False
    )
    op.create_index(op.f("ix_orders_status"), "orders", ["status"], unique=False)
    op.create_index(
        op.f("ix_orders_symbol_created_at"), "orders", ["symbol", "created_at"], unique=False
    )
    op.create_table(
        "positions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("qty", NUMBER, nullable=False),
        sa.Column("avg_price", NUMBER, nullable=True),
        sa.Column("realised_pnl", NUMBER, nullable=False),
        sa.Column("opened_at", TIME, nullable=False),
        sa.Column("closed_at", TIME, nullable=True),
        sa.Column("stop_client_order_id", sa.String(length=100), nullable=True),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_positions_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_positions")),
    )
    op.create_index(
        "ix_positions_open",
        "positions",
        ["run_id", "symbol"],
        unique=True,
        sqlite_where=sa.text("closed_at IS NULL"),
        postgresql_where=sa.text("closed_at IS NULL"),
    )
    op.create_table(
        "risk_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("run_id", ID, nullable=True),
        sa.Column("time", TIME, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=100), nullable=True),
        sa.CheckConstraint(
            "kind IN ('halt', 'resume', 'reducing', 'breaker', 'streak_cut', 'reconcile', "
            "'alert', 'stale_data')",
            name=op.f("ck_risk_events_kind"),
        ),
        sa.CheckConstraint(
            "state IN ('active', 'reducing', 'halted')", name=op.f("ck_risk_events_state")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_risk_events_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_events")),
        sa.UniqueConstraint("uid", name=op.f("uq_risk_events_uid")),
    )
    op.create_index(
        op.f("ix_risk_events_run_id_time"), "risk_events", ["run_id", "time"], unique=False
    )
    op.create_table(
        "trades",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("side", sa.String(length=8), nullable=False),
        sa.Column("entry_time", TIME, nullable=False),
        sa.Column("exit_time", TIME, nullable=True),
        sa.Column("qty", NUMBER, nullable=False),
        sa.Column("entry_price", NUMBER, nullable=False),
        sa.Column("exit_price", NUMBER, nullable=True),
        sa.Column("commission", NUMBER, nullable=True),
        sa.Column("slippage", NUMBER, nullable=True),
        sa.Column("borrow", NUMBER, nullable=True),
        sa.Column("pnl", NUMBER, nullable=True),
        sa.Column("ret", NUMBER, nullable=True),
        sa.Column("exit_reason", sa.String(length=16), nullable=True),
        sa.Column("decision_number", sa.Integer(), nullable=True),
        sa.CheckConstraint("side IN ('long', 'short')", name=op.f("ck_trades_side")),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_trades_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_trades")),
        sa.UniqueConstraint("run_id", "number", name=op.f("uq_trades_run_id_number")),
    )
    op.create_index(
        op.f("ix_trades_run_id_entry_time"), "trades", ["run_id", "entry_time"], unique=False
    )
    op.create_index(
        op.f("ix_trades_symbol_entry_time"), "trades", ["symbol", "entry_time"], unique=False
    )
    op.create_table(
        "decision_agents",
        sa.Column("decision_id", ID, nullable=False),
        sa.Column("agent", sa.String(length=64), nullable=False),
        sa.Column("signal", sa.Integer(), nullable=False),
        sa.Column("confidence", NUMBER, nullable=True),
        sa.Column("weight", NUMBER, nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["decisions.id"],
            name=op.f("fk_decision_agents_decision_id_decisions"),
            ondelete="CASCADE",
        ),
        sa.UniqueConstraint(
            "decision_id", "agent", name=op.f("uq_decision_agents_decision_id_agent")
        ),
    )
    op.create_table(
        "order_events",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("client_order_id", sa.String(length=100), nullable=False),
        sa.Column("time", TIME, nullable=False),
        sa.Column("from_status", sa.String(length=16), nullable=True),
        sa.Column("to_status", sa.String(length=16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["client_order_id"],
            ["orders.client_order_id"],
            name=op.f("fk_order_events_client_order_id_orders"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_order_events")),
        sa.UniqueConstraint("uid", name=op.f("uq_order_events_uid")),
    )
    op.create_index(
        op.f("ix_order_events_client_order_id_time"),
        "order_events",
        ["client_order_id", "time"],
        unique=False,
    )


def downgrade() -> None:
    """Drop every table of the journal."""
    op.drop_table("order_events")
    op.drop_table("decision_agents")
    op.drop_table("trades")
    op.drop_table("risk_events")
    op.drop_table("positions")
    op.drop_table("orders")
    op.drop_table("fills")
    op.drop_table("equity")
    op.drop_table("decisions")
    op.drop_table("bars")
    op.drop_table("runs")
    op.drop_table("model_versions")
    op.drop_table("engine_locks")
