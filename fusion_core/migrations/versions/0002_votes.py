"""Blind A/B comparisons and the votes cast on them.

Revision ID: 0002
Revises: 0001
Create Date: 2025-01-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "comparisons",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("runs.id", ondelete="SET NULL"), nullable=True),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("output_a", sa.Text(), nullable=False),
        sa.Column("output_b", sa.Text(), nullable=False),
        sa.Column("system_a", sa.String(128), nullable=False),
        sa.Column("system_b", sa.String(128), nullable=False),
        sa.Column("language", sa.String(64), nullable=True),
        sa.Column("task", sa.String(128), nullable=True),
        sa.Column("queue", sa.String(128), nullable=False, server_default="default"),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("n_votes", sa.Integer(), nullable=False, server_default="0"),
    )
    op.create_index("ix_comparisons_queue_position", "comparisons", ["queue", "position"])
    op.create_index("ix_comparisons_queue_n_votes", "comparisons", ["queue", "n_votes", "position"])
    op.create_index("ix_comparisons_run_id", "comparisons", ["run_id"])
    op.create_table(
        "votes",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("comparison_id", sa.String(32), sa.ForeignKey("comparisons.id", ondelete="CASCADE"), nullable=False),
        sa.Column("voter_id", sa.String(64), nullable=False),
        sa.Column("voter_name", sa.String(64), nullable=True),
        sa.Column("left_output", sa.String(1), nullable=False),
        sa.Column("winner", sa.String(8), nullable=False),
        sa.Column("winner_system", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("comparison_id", "voter_id", name="uq_votes_comparison_voter"),
        sa.CheckConstraint("left_output IN ('a', 'b')", name="ck_votes_left_output"),
        sa.CheckConstraint("winner IN ('left', 'right', 'tie', 'bad')", name="ck_votes_winner"),
    )
    op.create_index("ix_votes_voter_created", "votes", ["voter_id", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_votes_voter_created", table_name="votes")
    op.drop_table("votes")
    op.drop_index("ix_comparisons_run_id", table_name="comparisons")
    op.drop_index("ix_comparisons_queue_n_votes", table_name="comparisons")
    op.drop_index("ix_comparisons_queue_position", table_name="comparisons")
    op.drop_table("comparisons")
