"""Runs and their candidates.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("language", sa.String(64), nullable=True),
        sa.Column("mode", sa.String(32), nullable=False),
        sa.Column("models", sa.Text(), nullable=False),
        sa.Column("fusor_model", sa.String(512), nullable=False),
        sa.Column("selector", sa.String(64), nullable=False),
        sa.Column("judge_model", sa.String(512), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("fusor_messages", sa.JSON(), nullable=False),
        sa.Column("bon", sa.JSON(), nullable=True),
        sa.Column("bon_error", sa.Text(), nullable=True),
        sa.Column("fused_text", sa.Text(), nullable=True),
        sa.Column("fusion", sa.JSON(), nullable=True),
        sa.Column("fusion_error", sa.Text(), nullable=True),
        sa.Column("attribution", sa.JSON(), nullable=True),
        sa.Column("timings", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
    )
    op.create_index("ix_runs_created_at", "runs", ["created_at"])
    op.create_table(
        "candidates",
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("idx", sa.Integer(), nullable=False),
        sa.Column("model", sa.String(512), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("params", sa.JSON(), nullable=False),
        sa.Column("prompt_tokens", sa.Integer(), nullable=False),
        sa.Column("completion_tokens", sa.Integer(), nullable=False),
        sa.Column("cost", sa.Float(), nullable=True),
        sa.Column("latency_s", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("run_id", "idx"),
    )


def downgrade() -> None:
    op.drop_table("candidates")
    op.drop_index("ix_runs_created_at", table_name="runs")
    op.drop_table("runs")
