"""The experiment tables (migration 0003) on the store's `Base`.

An experiment is a batch configuration plus its items, one row per input prompt. An item is
`pending`, `running` (claimed by a worker, which refreshes `heartbeat_at` while it works),
`done` or `failed`; its `result` holds the whole per-prompt record written to results.jsonl.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .store import NULLABLE_JSON, Base

STATUSES = ("pending", "running", "done", "failed")


class ExperimentRow(Base):
    """One batch experiment: its name and the configuration that re-runs it exactly."""

    __tablename__ = "experiments"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    config: Mapped[dict[str, Any]] = mapped_column(NULLABLE_JSON)
    input_path: Mapped[str | None] = mapped_column(sa.Text)
    input_sha256: Mapped[str | None] = mapped_column(sa.String(64))
    n_items: Mapped[int] = mapped_column(sa.Integer)


class ExperimentItemRow(Base):
    """One prompt of an experiment, its status and, once finished, its result record."""

    __tablename__ = "experiment_items"
    __table_args__ = (
        sa.Index("ix_experiment_items_status", "experiment_id", "status", "position"),
        sa.CheckConstraint("status IN ('pending', 'running', 'done', 'failed')", name="ck_experiment_items_status"),
    )
    experiment_id: Mapped[str] = mapped_column(sa.ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    position: Mapped[int] = mapped_column(sa.Integer)
    language: Mapped[str | None] = mapped_column(sa.String(64))
    item: Mapped[dict[str, Any]] = mapped_column(NULLABLE_JSON)  # BatchItem.to_dict()
    status: Mapped[str] = mapped_column(sa.String(16), default="pending", server_default="pending")
    worker: Mapped[str | None] = mapped_column(sa.String(128))
    heartbeat_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")
    error: Mapped[str | None] = mapped_column(sa.Text)
    result: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    run_id: Mapped[str | None] = mapped_column(sa.ForeignKey("runs.id", ondelete="SET NULL"))
    finished_at: Mapped[datetime | None] = mapped_column(sa.DateTime(timezone=True))
