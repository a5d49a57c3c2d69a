"""Runs in SQLite or PostgreSQL through SQLAlchemy; Alembic keeps the schema current.

Opening a Store upgrades the schema under a lock (a PostgreSQL advisory lock, or
SQLite's write lock taken by BEGIN IMMEDIATE), so two processes opening the same
new database at once do not both try to create the tables.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy.engine import URL, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError, StatementError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column, relationship

from .errors import StoreError
from .llm import redact
from .types import FusionResult, RunResult

log = logging.getLogger(__name__)

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
_PG_LOCK_KEY = 0x66_75_73_69_6F_6E  # "fusion": one constant every process migrating this schema shares
SQLITE_IMMEDIATE = "fusion_sqlite_immediate"  # execution option: begin SQLite transactions with BEGIN IMMEDIATE
NULLABLE_JSON = sa.JSON(none_as_null=True)  # Python None is SQL NULL, not the JSON value null
_CANDIDATE_FIELDS = ("model", "text", "error", "params", "prompt_tokens", "completion_tokens", "cost", "latency_s")


class Base(DeclarativeBase):
    """Declarative base of the store's tables."""


class RunRow(Base):
    """One run: its configuration, Best-of-N pick, fused answer and totals."""

    __tablename__ = "runs"
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True), index=True)
    prompt: Mapped[str] = mapped_column(sa.Text)
    language: Mapped[str | None] = mapped_column(sa.String(64))
    mode: Mapped[str] = mapped_column(sa.String(32))
    models: Mapped[str] = mapped_column(sa.Text)  # comma-joined, for listing and search
    fusor_model: Mapped[str] = mapped_column(sa.String(512))
    selector: Mapped[str] = mapped_column(sa.String(64))
    judge_model: Mapped[str] = mapped_column(sa.String(512))
    config: Mapped[dict[str, Any]] = mapped_column(NULLABLE_JSON)
    fusor_messages: Mapped[list[dict[str, str]]] = mapped_column(NULLABLE_JSON)
    bon: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    bon_error: Mapped[str | None] = mapped_column(sa.Text)
    fused_text: Mapped[str | None] = mapped_column(sa.Text)
    fusion: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)  # FusionResult without text and messages
    fusion_error: Mapped[str | None] = mapped_column(sa.Text)
    attribution: Mapped[dict[str, Any] | None] = mapped_column(NULLABLE_JSON)
    timings: Mapped[dict[str, float]] = mapped_column(NULLABLE_JSON)
    prompt_tokens: Mapped[int] = mapped_column(sa.Integer)
    completion_tokens: Mapped[int] = mapped_column(sa.Integer)
    cost: Mapped[float | None] = mapped_column(sa.Float)
    candidates: Mapped[list[CandidateRow]] = relationship(
        order_by="CandidateRow.idx", lazy="selectin", cascade="all, delete-orphan", passive_deletes=True
    )


class CandidateRow(Base):
    """One sampled candidate of a run."""

    __tablename__ = "candidates"
    run_id: Mapped[str] = mapped_column(sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    idx: Mapped[int] = mapped_column(sa.Integer, primary_key=True)
    model: Mapped[str] = mapped_column(sa.String(512))
    text: Mapped[str] = mapped_column(sa.Text)
    error: Mapped[str | None] = mapped_column(sa.Text)
    params: Mapped[dict[str, Any]] = mapped_column(NULLABLE_JSON)
    prompt_tokens: Mapped[int] = mapped_column(sa.Integer)
    completion_tokens: Mapped[int] = mapped_column(sa.Integer)
    cost: Mapped[float | None] = mapped_column(sa.Float)
    latency_s: Mapped[float] = mapped_column(sa.Float)


@dataclass
class RunSummary:
    """One line of the run history."""

    run_id: str
    created_at: str
    prompt: str
    models: list[str]
    fusor_model: str
    selector: str
    n_candidates: int
    n_failed: int
    bon_index: int | None
    has_fusion: bool
    cost: float | None
    language: str | None


class Store:
    """The run history in one database; opening it brings the schema up to date."""

    def __init__(self, url: str) -> None:
        self.masked_url = _mask(url)
        engine = None
        try:
            self.url = _normalize(url)
            self.masked_url = self.url.render_as_string(hide_password=True)
            engine = self.engine = _create_engine(self.url)
            self._upgrade()
        except (SQLAlchemyError, CommandError, ImportError, OSError) as exc:
            if engine is not None:
                engine.dispose()
            message = f"cannot open database {self.masked_url}: {error_reason(exc)}; check FUSION_DATABASE_URL"
            raise StoreError(message) from exc

    def _upgrade(self) -> None:
        with self.engine.connect().execution_options(**{SQLITE_IMMEDIATE: True}) as conn, conn.begin():
            if conn.dialect.name == "postgresql":
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_PG_LOCK_KEY)))
            command.upgrade(alembic_config(conn), "head")

    @contextmanager
    def _session(self, action: str) -> Iterator[Session]:
        """A session in one transaction: committed on success, rolled back on any error."""
        try:
            with Session(self.engine, expire_on_commit=False) as session, session.begin():
                yield session
        except (SQLAlchemyError, TypeError, ValueError) as exc:  # also a value the column cannot hold (JSON, time)
            raise StoreError(f"cannot {action} in {self.masked_url}: {error_reason(exc)}") from exc

    def save_run(self, run: RunResult) -> str:
        """Write the run and its candidates in one transaction; return its id."""
        before = (run.run_id, run.created_at)
        run.run_id = run.run_id or uuid4().hex
        run.created_at = run.created_at or datetime.now(UTC).isoformat()
        try:
            with self._session(f"save run {run.run_id}") as session:
                session.add(_to_row(run))
        except StoreError:
            run.run_id, run.created_at = before
            raise
        log.info("saved run %s", run.run_id)
        return run.run_id

    def get_run(self, run_id: str) -> RunResult:
        """The stored run with this id, or StoreError."""
        with self._session(f"read run {run_id}") as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise StoreError(f"no run with id {run_id} in {self.masked_url}")
            return _from_row(row)

    def list_runs(
        self, limit: int = 100, offset: int = 0, search: str | None = None, model: str | None = None
    ) -> list[RunSummary]:
        """Runs newest first; `search` matches the prompt, `model` a sampled or fusor model."""
        per_run = sa.select(sa.func.count()).where(CandidateRow.run_id == RunRow.id).correlate(RunRow)
        query = sa.select(
            RunRow.id,
            RunRow.created_at,
            RunRow.prompt,
            RunRow.models,
            RunRow.fusor_model,
            RunRow.selector,
            per_run.scalar_subquery(),
            per_run.where(CandidateRow.error.is_not(None)).scalar_subquery(),
            RunRow.bon["index"].as_integer(),
            RunRow.fused_text.is_not(None),
            RunRow.cost,
            RunRow.language,
        )
        if search:
            query = query.where(RunRow.prompt.icontains(search, autoescape=True))
        if model:
            query = query.where(sa.or_(RunRow.fusor_model == model, RunRow.candidates.any(CandidateRow.model == model)))
        query = query.order_by(RunRow.created_at.desc(), RunRow.id.desc()).limit(limit).offset(offset)
        with self._session("list runs") as session:
            rows = session.execute(query).all()
        return [
            RunSummary(r[0], as_utc(r[1]).isoformat(), r[2], _split(r[3]), *r[4:9], bool(r[9]), r[10], r[11])
            for r in rows
        ]

    def delete_run(self, run_id: str) -> bool:
        """Delete a run and its candidates; False if there was no such run."""
        with self._session(f"delete run {run_id}") as session:
            return session.execute(sa.delete(RunRow).where(RunRow.id == run_id)).rowcount > 0

    def set_attribution(self, run_id: str, attribution: dict[str, Any]) -> None:
        """Store the attribution computed for a run, replacing any earlier one."""
        with self._session(f"save attribution of run {run_id}") as session:
            row = session.get(RunRow, run_id)
            if row is None:
                raise StoreError(f"no run with id {run_id} in {self.masked_url}")
            row.attribution = attribution

    def count_runs(self) -> int:
        """How many runs are stored."""
        with self._session("count runs") as session:
            return session.scalar(sa.select(sa.func.count()).select_from(RunRow)) or 0

    def close(self) -> None:
        """Close every pooled connection."""
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _to_row(run: RunResult) -> RunRow:
    config, fusion, usage = run.config, run.fusion, run.usage().values()
    fusion_meta = {k: v for k, v in fusion.to_dict().items() if k not in ("text", "messages")} if fusion else None
    if fusion_meta:
        fusion_meta["warnings"] = [redact(w) for w in fusion_meta["warnings"]]
    costs = [u.cost for u in usage if u.cost is not None]
    candidates = []
    for c in run.candidates:
        data = c.to_dict()
        data["error"] = _scrub(data["error"])
        candidates.append(CandidateRow(idx=c.index, **{k: data[k] for k in _CANDIDATE_FIELDS}))
    return RunRow(
        id=run.run_id,
        created_at=as_utc(datetime.fromisoformat(run.created_at or "")),
        models=",".join(config.models),
        **{k: getattr(config, k) for k in ("prompt", "language", "mode", "fusor_model", "selector", "judge_model")},
        config=config.to_dict(),
        fusor_messages=fusion.messages if fusion else [],
        bon=run.bon.to_dict() if run.bon else None,
        bon_error=_scrub(run.bon_error),
        fused_text=fusion.text if fusion else None,
        fusion=fusion_meta,
        fusion_error=_scrub(run.fusion_error),
        attribution=run.attribution,
        timings=dict(run.timings),
        prompt_tokens=sum(u.prompt_tokens for u in usage),
        completion_tokens=sum(u.completion_tokens for u in usage),
        cost=sum(costs) if costs else None,
        candidates=candidates,
    )


def _from_row(row: RunRow) -> RunResult:
    fusion = None
    if row.fusion is not None:
        fusion = FusionResult(**{**row.fusion, "text": row.fused_text or "", "messages": row.fusor_messages}).to_dict()
    candidates = [{"index": c.idx, **{k: getattr(c, k) for k in _CANDIDATE_FIELDS}} for c in row.candidates]
    return RunResult.from_dict(
        {
            "run_id": row.id,
            "created_at": as_utc(row.created_at).isoformat(),
            "config": row.config,
            "candidates": candidates,
            "bon": row.bon,
            "bon_error": row.bon_error,
            "fusion": fusion,
            "fusion_error": row.fusion_error,
            "attribution": row.attribution,
            "timings": row.timings,
        }
    )


def _normalize(url: str) -> URL:
    """Parse the URL; plain postgres URLs use psycopg 3."""
    parsed = make_url(url)
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
    return parsed


def _create_engine(url: URL) -> Engine:
    if url.get_backend_name() != "sqlite":
        args = {"connect_timeout": 5} if url.get_backend_name() == "postgresql" else {}
        return sa.create_engine(url, pool_pre_ping=True, connect_args=args)
    if url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url, pool_pre_ping=True)
    sa.event.listen(engine, "connect", _sqlite_connect)
    sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """The programmatic Alembic configuration the store migrates with, bound to one connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def _sqlite_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    # The driver's implicit transactions skip DDL and SELECT; we emit BEGIN ourselves (see _sqlite_begin).
    if hasattr(dbapi_connection, "autocommit"):  # Python 3.12+
        dbapi_connection.autocommit = sqlite3.LEGACY_TRANSACTION_CONTROL
    dbapi_connection.isolation_level = None
    for pragma in ("busy_timeout = 30000", "foreign_keys = ON"):
        dbapi_connection.execute(f"PRAGMA {pragma}").close()
    _enable_wal(dbapi_connection)


def _enable_wal(dbapi_connection: sqlite3.Connection, attempts: int = 50) -> None:
    """Switch to WAL unless already there. Switching needs a moment's exclusive lock that busy_timeout does not
    wait for, so connections racing to open a brand-new file retry briefly instead of failing."""
    for attempt in range(attempts):
        try:
            mode = dbapi_connection.execute("PRAGMA journal_mode").fetchone()[0]
            if str(mode).lower() != "wal":
                dbapi_connection.execute("PRAGMA journal_mode = WAL").close()
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.02 * (attempt + 1))


def _sqlite_begin(connection: sa.Connection) -> None:
    # IMMEDIATE takes the write lock up front, so a read-then-write (the migration) cannot deadlock.
    immediate = connection.get_execution_options().get(SQLITE_IMMEDIATE)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _mask(url: str) -> str:
    return re.sub(r"(://[^:/@]*:)[^@/]*@", r"\1***@", url)


def error_reason(exc: BaseException) -> str:
    """The first line of what went wrong, without SQLAlchemy's statement dump."""
    if isinstance(exc, ArgumentError) and "plugin" in str(exc):
        return "unsupported URL scheme; use sqlite:///path/to/file.db or postgresql://user@host/db"
    cause = exc.orig if isinstance(exc, StatementError) and exc.orig is not None else exc
    lines = [line.strip() for line in str(cause).splitlines() if line.strip()]
    return redact(lines[0] if lines else type(cause).__name__)


def as_utc(moment: datetime) -> datetime:
    """Naive times (SQLite returns them, callers may pass them) are UTC already."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _scrub(text: str | None) -> str | None:
    """Error text can quote a request, and with it an API key."""
    return redact(text) if text else text


def _split(models: str) -> list[str]:
    return [m for m in models.split(",") if m]
