"""Experiments in the store's database, shared by any number of batch workers.

Workers claim items one at a time in a short transaction: a pending item, or a running one whose
worker stopped refreshing its heartbeat (it crashed), moves to `running` under the claiming worker.
The claim is a conditional UPDATE on the status and heartbeat it read, so two workers racing for
the same item cannot both win, on SQLite or PostgreSQL (where the read also skips rows another
claim has locked). Finishing is conditional on still holding the claim, so a worker presumed dead
cannot overwrite the result of the worker that took its item over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import sqlalchemy as sa

from .batch_input import BatchItem
from .errors import StoreError
from .experiment_schema import STATUSES, ExperimentItemRow, ExperimentRow
from .store import Store, as_utc
from .transactions import Transactions

log = logging.getLogger(__name__)

STALE_AFTER_S = 90.0  # a running item whose heartbeat is older than this is taken over


@dataclass
class Experiment:
    """An experiment's identity, configuration and progress."""

    id: str
    name: str
    created_at: datetime
    config: dict[str, Any]
    input_path: str | None
    input_sha256: str | None
    n_items: int
    counts: dict[str, int] = field(default_factory=dict)  # status -> items

    @property
    def finished(self) -> int:
        """Items done or failed."""
        return self.counts.get("done", 0) + self.counts.get("failed", 0)

    @property
    def complete(self) -> bool:
        """True when no item is pending or running."""
        return self.finished >= self.n_items


class ExperimentStore:
    """Create experiments, claim and finish their items, read their results."""

    def __init__(self, store: Store, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.store, self.clock = store, clock
        self._tx = Transactions(store.engine, store.masked_url)

    def create(
        self,
        name: str,
        config: dict[str, Any],
        items: Sequence[BatchItem],
        *,
        input_path: str | None = None,
        input_sha256: str | None = None,
        experiment_id: str | None = None,
    ) -> str:
        """Store a new experiment with all its items pending; return its id."""
        experiment_id = experiment_id or uuid4().hex
        now = as_utc(self.clock())
        row = {
            "id": experiment_id, "name": name[:200], "created_at": now, "config": config,
            "input_path": input_path, "input_sha256": input_sha256, "n_items": len(items),
        }  # fmt: skip

        def work(conn: sa.Connection) -> str:
            conn.execute(sa.insert(ExperimentRow), [row])
            if items:
                rows = [_item_row(experiment_id, item, position) for position, item in enumerate(items)]
                conn.execute(sa.insert(ExperimentItemRow), rows)
            return experiment_id

        self._tx.run(f"create experiment {name!r}", work, write=True)
        log.info("created experiment %s (%s, %d items)", experiment_id, name, len(items))
        return experiment_id

    def get(self, experiment_id: str) -> Experiment:
        """The experiment with its item counts, or StoreError if there is none."""
        found = self.find(experiment_id)
        if found is None:
            raise StoreError(f"no experiment {experiment_id!r}; list them with `python -m fusion_core experiments`")
        return found

    def find(self, experiment_id: str) -> Experiment | None:
        """The experiment with its item counts, or None."""

        def work(conn: sa.Connection) -> Experiment | None:
            row = conn.execute(sa.select(ExperimentRow).where(ExperimentRow.id == experiment_id)).first()
            if row is None:
                return None
            return _experiment(row, self._counts(conn, experiment_id).get(experiment_id, {}))

        return self._tx.run(f"read experiment {experiment_id}", work)

    def list(self) -> list[Experiment]:
        """Every experiment, newest first, with its item counts."""

        def work(conn: sa.Connection) -> list[Experiment]:
            rows = conn.execute(sa.select(ExperimentRow).order_by(ExperimentRow.created_at.desc())).all()
            counts = self._counts(conn)
            return [_experiment(r, counts.get(r.id, {})) for r in rows]

        return self._tx.run("list experiments", work)

    @staticmethod
    def _counts(conn: sa.Connection, experiment_id: str | None = None) -> dict[str, dict[str, int]]:
        """Items per status, per experiment (only `experiment_id`'s when given: progress polls it often)."""
        e = ExperimentItemRow
        query = sa.select(e.experiment_id, e.status, sa.func.count()).group_by(e.experiment_id, e.status)
        if experiment_id is not None:
            query = query.where(e.experiment_id == experiment_id)
        rows = conn.execute(query)
        counts: dict[str, dict[str, int]] = {}
        for experiment_id, status, n in rows:
            counts.setdefault(experiment_id, dict.fromkeys(STATUSES, 0))[status] = int(n)
        return counts

    def add_items(self, experiment_id: str, items: Sequence[BatchItem]) -> int:
        """Add the items the experiment does not have yet (by id), after its last one; return how many."""

        def work(conn: sa.Connection) -> int:
            e = ExperimentItemRow
            have = set(conn.scalars(sa.select(e.item_id).where(e.experiment_id == experiment_id)))
            last = conn.scalar(sa.select(sa.func.max(e.position)).where(e.experiment_id == experiment_id))
            new = [i for i in items if i.id not in have]
            start = 0 if last is None else last + 1
            if new:
                conn.execute(sa.insert(e), [_item_row(experiment_id, i, start + k) for k, i in enumerate(new)])
                total = len(have) + len(new)
                conn.execute(sa.update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(n_items=total))
            return len(new)

        return self._tx.run(f"add items to experiment {experiment_id}", work, write=True)

    def retry_failed(self, experiment_id: str) -> int:
        """Put failed items back in the queue; return how many."""
        e = ExperimentItemRow
        query = (
            sa.update(e)
            .where(e.experiment_id == experiment_id, e.status == "failed")
            .values(status="pending", worker=None, error=None)
        )
        return self._tx.run("retry failed items", lambda conn: conn.execute(query).rowcount, write=True)

    def claim(self, experiment_id: str, worker: str, stale_after_s: float = STALE_AFTER_S) -> BatchItem | None:
        """Take the first pending (or abandoned) item for `worker`; None when nothing is left to take."""
        e = ExperimentItemRow
        for _attempt in range(20):
            now = as_utc(self.clock())
            stale = now - timedelta(seconds=stale_after_s)

            def work(conn: sa.Connection, now=now, stale=stale) -> tuple[bool, BatchItem | None]:
                open_ = sa.or_(e.status == "pending", sa.and_(e.status == "running", e.heartbeat_at < stale))
                query = sa.select(e.item_id, e.status, e.heartbeat_at, e.item).where(e.experiment_id == experiment_id)
                query = query.where(open_).order_by(e.position).limit(1).with_for_update(skip_locked=True)
                row = conn.execute(query).first()
                if row is None:
                    return True, None
                same = e.heartbeat_at.is_(None) if row.heartbeat_at is None else e.heartbeat_at == row.heartbeat_at
                taken = conn.execute(
                    sa.update(e)
                    .where(e.experiment_id == experiment_id, e.item_id == row.item_id, e.status == row.status, same)
                    .values(status="running", worker=worker, heartbeat_at=now, attempts=e.attempts + 1)
                ).rowcount
                if row.status == "running" and taken:
                    log.warning("took over item %s: its worker stopped sending heartbeats", row.item_id)
                return bool(taken), BatchItem.from_dict(row.item) if taken else None

            done, item = self._tx.run("claim an item", work, write=True)
            if done or item is not None:
                return item
        raise StoreError("could not claim an item after 20 attempts: too many workers racing; try again")

    def heartbeat(self, experiment_id: str, worker: str, item_ids: Sequence[str]) -> None:
        """Tell other workers this worker is still working on these items."""
        if not item_ids:
            return
        e = ExperimentItemRow
        query = (
            sa.update(e)
            .where(e.experiment_id == experiment_id, e.worker == worker, e.status == "running")
            .where(e.item_id.in_(list(item_ids)))
            .values(heartbeat_at=as_utc(self.clock()))
        )
        self._tx.run("refresh heartbeats", lambda conn: conn.execute(query), write=True)

    def finish(
        self,
        experiment_id: str,
        item_id: str,
        worker: str,
        result: dict[str, Any],
        *,
        failed: bool = False,
        run_id: str | None = None,
    ) -> bool:
        """Store an item's result if `worker` still holds it; False when another worker took it over."""
        e = ExperimentItemRow
        values = {
            "status": "failed" if failed else "done", "result": result, "error": result.get("error"),
            "run_id": run_id, "finished_at": as_utc(self.clock()), "heartbeat_at": None,
        }  # fmt: skip
        query = (
            sa.update(e)
            .where(e.experiment_id == experiment_id, e.item_id == item_id, e.worker == worker, e.status == "running")
            .values(**values)
        )
        stored = self._tx.run(f"store the result of {item_id}", lambda conn: conn.execute(query).rowcount, write=True)
        if not stored:
            log.warning("item %s was taken over by another worker; dropped this worker's result", item_id)
        return bool(stored)

    def release(self, experiment_id: str, worker: str, item_ids: Sequence[str] | None = None) -> int:
        """Give this worker's unfinished items back (all of them by default); return how many."""
        if item_ids is not None and not item_ids:
            return 0
        e = ExperimentItemRow
        query = sa.update(e).where(e.experiment_id == experiment_id, e.worker == worker, e.status == "running")
        if item_ids is not None:
            query = query.where(e.item_id.in_(list(item_ids)))
        query = query.values(status="pending", worker=None, heartbeat_at=None)
        return self._tx.run("release items", lambda conn: conn.execute(query).rowcount, write=True)

    def claim_item(self, experiment_id: str, item_id: str, worker: str) -> bool:
        """Claim one pending item by id (restoring results); False if it is not pending."""
        e = ExperimentItemRow
        query = (
            sa.update(e)
            .where(e.experiment_id == experiment_id, e.item_id == item_id, e.status == "pending")
            .values(status="running", worker=worker, heartbeat_at=as_utc(self.clock()), attempts=e.attempts + 1)
        )
        return bool(self._tx.run(f"claim {item_id}", lambda conn: conn.execute(query).rowcount, write=True))

    def results(self, experiment_id: str, statuses: Sequence[str] = ("done", "failed")) -> list[dict[str, Any]]:
        """The finished items' result records, in input order."""
        e = ExperimentItemRow
        query = (
            sa.select(e.result)
            .where(e.experiment_id == experiment_id, e.status.in_(list(statuses)), e.result.is_not(None))
            .order_by(e.position)
        )
        return self._tx.run("read results", lambda conn: list(conn.scalars(query)))

    def items(self, experiment_id: str) -> list[dict[str, Any]]:
        """Every item's id, status, worker, attempts and error, in input order (for progress views)."""
        e = ExperimentItemRow
        columns = (e.item_id, e.position, e.language, e.status, e.worker, e.attempts, e.error, e.run_id)
        query = sa.select(*columns).where(e.experiment_id == experiment_id).order_by(e.position)
        return self._tx.run("read items", lambda conn: [dict(r._mapping) for r in conn.execute(query)])

    def update_config(self, experiment_id: str, config: dict[str, Any]) -> None:
        """Replace the stored configuration (e.g. after re-judging with another prompt)."""
        query = sa.update(ExperimentRow).where(ExperimentRow.id == experiment_id).values(config=config)
        self._tx.run("update the experiment", lambda conn: conn.execute(query), write=True)

    def replace_result(self, experiment_id: str, item_id: str, result: dict[str, Any]) -> None:
        """Overwrite a finished item's record (re-judging adds verdicts to it)."""
        e = ExperimentItemRow
        query = sa.update(e).where(e.experiment_id == experiment_id, e.item_id == item_id).values(result=result)
        self._tx.run(f"update the result of {item_id}", lambda conn: conn.execute(query), write=True)

    def delete(self, experiment_id: str) -> bool:
        """Delete an experiment and its items; False if there was none."""
        query = sa.delete(ExperimentRow).where(ExperimentRow.id == experiment_id)
        return bool(self._tx.run("delete experiment", lambda conn: conn.execute(query).rowcount, write=True))


def _item_row(experiment_id: str, item: BatchItem, position: int) -> dict[str, Any]:
    return {
        "experiment_id": experiment_id, "item_id": item.id, "position": position,
        "language": item.language, "item": item.to_dict(), "status": "pending", "attempts": 0,
    }  # fmt: skip


def _experiment(row: Any, counts: dict[str, int]) -> Experiment:
    return Experiment(
        id=row.id,
        name=row.name,
        created_at=as_utc(row.created_at),
        config=dict(row.config or {}),
        input_path=row.input_path,
        input_sha256=row.input_sha256,
        n_items=row.n_items,
        counts=counts or dict.fromkeys(STATUSES, 0),
    )
