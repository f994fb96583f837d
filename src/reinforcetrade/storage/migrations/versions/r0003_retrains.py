"""The retrain journal: every retrain of the self-reinforcement loop, its evidence and its verdict.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01

Types are spelled out here (not imported from `schema`) so this revision never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TIME = sa.DateTime(timezone=True)
NUMBER: sa.Double[float] = sa.Double()
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the retrain journal."""
    op.create_table(
        "retrains",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("uid", sa.String(length=32), nullable=False),
        sa.Column("time", TIME, nullable=False),
        sa.Column("started", TIME, nullable=False),
        sa.Column("symbol", sa.String(length=64), nullable=False),
        sa.Column("timeframe", sa.String(length=16), nullable=False),
        sa.Column("algorithm", sa.String(length=32), nullable=False),
        sa.Column("trigger", sa.String(length=16), nullable=False),
        sa.Column("verdict", sa.String(length=16), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("metric", sa.String(length=64), nullable=False),
        sa.Column("challenger", sa.String(length=200), nullable=True),
        sa.Column("champion", sa.String(length=200), nullable=True),
        sa.Column("challenger_value", NUMBER, nullable=True),
        sa.Column("champion_value", NUMBER, nullable=True),
        sa.Column("margin", NUMBER, nullable=False),
        sa.Column("deflated_sharpe", NUMBER, nullable=True),
        sa.Column("trials", sa.Integer(), nullable=False),
        sa.Column("tried", JSON, nullable=False),
        sa.Column("figures", JSON, nullable=False),
        sa.Column("weights", JSON, nullable=True),
        sa.Column("data", JSON, nullable=False),
        sa.CheckConstraint("trigger IN ('manual', 'schedule')", name=op.f("ck_retrains_trigger")),
        sa.CheckConstraint(
            "verdict IN ('promoted', 'kept', 'failed')", name=op.f("ck_retrains_verdict")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_retrains")),
        sa.UniqueConstraint("uid", name=op.f("uq_retrains_uid")),
    )
    op.create_index(
        op.f("ix_retrains_symbol_timeframe_time"),
        "retrains",
        ["symbol", "timeframe", "time"],
        unique=False,
    )


def downgrade() -> None:
    """Drop the retrain journal."""
    op.drop_index(op.f("ix_retrains_symbol_timeframe_time"), table_name="retrains")
    op.drop_table("retrains")
