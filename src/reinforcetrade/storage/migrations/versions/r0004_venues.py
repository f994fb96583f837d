"""Routing and execution algorithms: orders' venues and routes, venue figures, decisions' algo.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24

Types are spelled out here (not imported from `schema`) so this revision never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
NUMBER: sa.Double[float] = sa.Double()
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Add the venue and route of each order, the per-venue figures, each decision's algo."""
    op.add_column("decisions", sa.Column("algo", sa.String(length=16), nullable=True))
    op.add_column("orders", sa.Column("venue", sa.String(length=200), nullable=True))
    op.add_column("orders", sa.Column("route", JSON, nullable=True))
    op.create_table(
        "venue_stats",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("run_id", ID, nullable=False),
        sa.Column("venue", sa.String(length=64), nullable=False),
        sa.Column("orders", sa.Integer(), nullable=False),
        sa.Column("fills", sa.Integer(), nullable=False),
        sa.Column("rejects", sa.Integer(), nullable=False),
        sa.Column("errors", sa.Integer(), nullable=False),
        sa.Column("fill_ratio", NUMBER, nullable=True),
        sa.Column("reject_rate", NUMBER, nullable=True),
        sa.Column("slippage_bps", NUMBER, nullable=True),
        sa.Column("latency_p50_ms", NUMBER, nullable=True),
        sa.Column("latency_p99_ms", NUMBER, nullable=True),
        sa.Column("health", sa.String(length=16), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.CheckConstraint(
            "health IN ('ok', 'degraded', 'down')", name=op.f("ck_venue_stats_health")
        ),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_venue_stats_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_venue_stats")),
        sa.UniqueConstraint("run_id", "venue", name=op.f("uq_venue_stats_run_id_venue")),
    )


def downgrade() -> None:
    """Drop the per-venue figures and the orders' venue and route."""
    op.drop_table("venue_stats")
    with op.batch_alter_table("orders") as batch:
        batch.drop_column("route")
        batch.drop_column("venue")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("algo")
