"""Blind A/B votes: comparison queues built from stored runs, and one vote per voter per comparison.

The tables (vote_schema.py) live on the store's `Base` and are created by migration 0002,
so opening a `Store` brings them up to date. A vote records both the raw side (which output
was shown on the left, and whether the left or right one won) and the system it resolves
to, so position bias can be analysed.

Every write is one short transaction (transactions.py): BEGIN IMMEDIATE on SQLite, so a
read-then-write cannot fail halfway, and retried when the database is locked or busy or
reports a serialization failure or deadlock, so none of those reaches a voter. The
UNIQUE(comparison_id, voter_id) constraint makes a repeated vote count once even when two
copies race; `comparisons.n_votes` counts votes so the next comparison is found by index.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import UTC, datetime, timedelta

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from .store import Store, as_utc
from .transactions import Transactions
from .types import RunResult
from .vote_schema import (
    SYSTEMS,
    Assignment,
    ComparisonRow,
    NewComparison,
    QueueSummary,
    RateLimitError,
    VoteError,
    VoteResult,
    VoteRow,
    check_comparison,
    check_name,
    check_vote,
    check_voter,
    new_id,
    sides,
    system_outputs,
)

__all__ = ["Assignment", "NewComparison", "QueueSummary", "RateLimitError", "VoteError", "VoteResult", "VoteStore"]

log = logging.getLogger(__name__)

FRAME_COLUMNS = [
    "vote_id", "comparison_id", "run_id", "created_at", "voter_id", "voter_name", "system_a", "system_b",
    "left_output", "left_system", "right_system", "winner", "winner_system", "language", "task", "queue",
]  # fmt: skip
COMPARISON_COUNTS = ("n_votes", "votes_a", "votes_b", "ties", "bad")
COMPARISON_COLUMNS = [
    "comparison_id", "queue", "position", "created_at", "run_id", "language", "task", "prompt",
    "system_a", "system_b", "output_a", "output_b", *COMPARISON_COUNTS,
]  # fmt: skip


class VoteStore:
    """Comparisons and votes in the store's database (the store's engine, so one database holds everything)."""

    def __init__(
        self,
        store: Store,
        max_votes_per_minute: int | None = 30,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        max_connections: int = 8,
    ) -> None:
        self.store, self.engine = store, store.engine
        self.max_votes_per_minute = max_votes_per_minute  # None: no rate limit
        self.clock = clock
        self._transactions = Transactions(store.engine, store.masked_url, max_connections)  # fewer than the pool's

    def add_comparison(
        self,
        prompt: str,
        output_a: str,
        output_b: str,
        system_a: str,
        system_b: str,
        *,
        run_id: str | None = None,
        language: str | None = None,
        task: str | None = None,
        queue: str = "default",
    ) -> str:
        """Add one comparison at the end of a queue; return its id."""
        item = NewComparison(prompt, output_a, output_b, system_a, system_b, run_id, language, task)
        return self.add_comparisons([item], queue)[0]

    def add_comparisons(self, items: Sequence[NewComparison], queue: str = "default") -> list[str]:
        """Add comparisons at the end of a queue in one transaction; return their ids."""
        queue = check_name(queue, "queue name", 128)
        checked = [check_comparison(item) for item in items]
        if not checked:
            return []
        now, ids = as_utc(self.clock()), [new_id() for _ in checked]

        def work(conn: sa.Connection) -> list[str]:
            last = conn.scalar(sa.select(sa.func.max(ComparisonRow.position)).where(ComparisonRow.queue == queue))
            first = 0 if last is None else last + 1
            rows = [
                {**asdict(item), "id": cid, "created_at": now, "queue": queue, "position": first + i}
                for i, (cid, item) in enumerate(zip(ids, checked, strict=True))
            ]
            conn.execute(sa.insert(ComparisonRow), rows)
            return ids

        added = self._transactions.run(f"add comparisons to queue {queue!r}", work, write=True)
        log.info("added %d comparisons to queue %r", len(added), queue)
        return added

    def build_queue(
        self,
        runs: Iterable[RunResult],
        pairs: Sequence[tuple[str, str]] = (("fusion", "bon"),),
        queue: str = "default",
        language: str | None = None,
        task: str | None = None,
    ) -> int:
        """Queue each pair of systems of each stored run (of `language`, if given); return how many were added.

        A pair is skipped when a run lacks one of the outputs, when both are the same text, or when the
        queue already compares that pair (in either order) for that run. `task` labels the comparisons.
        """
        pairs = [(check_name(a, "system name", 128), check_name(b, "system name", 128)) for a, b in pairs]
        unknown = sorted({name for pair in pairs for name in pair} - set(SYSTEMS))
        if unknown:
            raise VoteError(f"unknown system {unknown[0]!r} in a pair; choose from {', '.join(SYSTEMS)}")
        if any(a == b for a, b in pairs):
            raise VoteError("a pair compares two different systems, e.g. ('fusion', 'bon')")
        queue = check_name(queue, "queue name", 128)
        existing = self._pairs_in_queue(queue)
        items = []
        for run in runs:
            if not run.run_id:
                raise VoteError("only stored runs can be queued; save the run first")
            if language is not None and run.config.language != language:
                continue
            outputs = system_outputs(run)
            for a, b in pairs:
                key = (run.run_id, *sorted((a, b)))
                if key in existing or a not in outputs or b not in outputs or outputs[a] == outputs[b]:
                    continue
                existing.add(key)
                prompt, lang = run.config.prompt, run.config.language
                items.append(NewComparison(prompt, outputs[a], outputs[b], a, b, run.run_id, lang, task))
        return len(self.add_comparisons(items, queue))

    def _pairs_in_queue(self, queue: str) -> set[tuple[str, ...]]:
        c = ComparisonRow
        query = sa.select(c.run_id, c.system_a, c.system_b).where(c.queue == queue, c.run_id.is_not(None))
        rows = self._transactions.run(f"read queue {queue!r}", lambda conn: conn.execute(query).all())
        return {(r.run_id, *sorted((r.system_a, r.system_b))) for r in rows}

    def next_comparison(
        self, voter_id: str, queue: str = "default", rng: random.Random | None = None
    ) -> Assignment | None:
        """The comparison with the fewest votes this voter has not voted on, sides randomized; None when done."""
        voter_id = check_voter(voter_id)
        keys = {"queue": queue, "voter_id": voter_id}
        row = self._transactions.run("pick the next comparison", lambda conn: conn.execute(_NEXT, keys).first())
        if row is None:
            return None
        flip = (rng or random.Random()).random() < 0.5
        left, right = (row.output_b, row.output_a) if flip else (row.output_a, row.output_b)
        return Assignment(row.id, row.prompt, left, right, "b" if flip else "a")

    def cast_vote(
        self, comparison_id: str, voter_id: str, left_output: str, winner: str, voter_name: str | None = None
    ) -> VoteResult:
        """Record a vote and return the reveal; a repeated vote by the same voter returns the first one, unchanged."""
        voter_id = check_voter(voter_id)
        check_vote(comparison_id, left_output, winner)
        if voter_name is not None:
            voter_name = check_name(voter_name, "voter name", 64, required=False) or None
        keys = {"comparison_id": comparison_id, "voter_id": voter_id}

        def work(conn: sa.Connection) -> VoteResult:
            found = conn.execute(_LOOKUP, keys).first()
            if found is None:
                raise VoteError(f"no comparison with id {comparison_id}; nothing was stored")
            if found.vote_id is not None:
                return _result(found, comparison_id, voter_id, duplicate=True)
            now = as_utc(self.clock())
            self._check_rate(conn, voter_id, now)
            left_system, right_system = sides(found.system_a, found.system_b, left_output)
            winner_system = {"left": left_system, "right": right_system}.get(winner, winner)
            values = {
                "comparison_id": comparison_id, "voter_id": voter_id, "voter_name": voter_name,
                "left_output": left_output, "winner": winner, "winner_system": winner_system, "created_at": now,
            }  # fmt: skip
            vote_id = conn.execute(sa.insert(VoteRow), values).inserted_primary_key[0]
            conn.execute(_COUNT_VOTE, {"comparison_id": comparison_id})
            return VoteResult(
                vote_id, comparison_id, voter_id, left_output, winner, left_system, right_system, winner_system, now
            )

        try:
            return self._transactions.run("record the vote", work, write=True, integrity_errors=True)
        except IntegrityError:  # a concurrent copy of this vote committed first: report that one
            found = self._transactions.run("read the vote", lambda conn: conn.execute(_LOOKUP, keys).first())
            if found is None or found.vote_id is None:
                raise VoteError(f"no comparison with id {comparison_id}; nothing was stored") from None
            return _result(found, comparison_id, voter_id, duplicate=True)

    def _check_rate(self, conn: sa.Connection, voter_id: str, now: datetime) -> None:
        """RateLimitError if this voter already cast max_votes_per_minute votes in the last 60 s."""
        if self.max_votes_per_minute is None:
            return
        recent = (VoteRow.voter_id == voter_id, VoteRow.created_at > now - timedelta(seconds=60))
        count, oldest = conn.execute(sa.select(sa.func.count(), sa.func.min(VoteRow.created_at)).where(*recent)).one()
        if count >= self.max_votes_per_minute:
            wait = max(1.0, 60 - (now - as_utc(oldest)).total_seconds())
            limit = self.max_votes_per_minute
            raise RateLimitError(f"more than {limit} votes in a minute; wait {wait:.0f} s and vote again", wait)

    def votes_frame(self, queue: str | None = None) -> pd.DataFrame:
        """One row per vote, oldest first, with the comparison's systems, language, task and queue."""
        c, v = ComparisonRow, VoteRow
        query = sa.select(
            v.id, v.comparison_id, c.run_id, v.created_at, v.voter_id, v.voter_name, c.system_a, c.system_b,
            v.left_output, v.winner, v.winner_system, c.language, c.task, c.queue,
        ).join(c, c.id == v.comparison_id).order_by(v.created_at, v.id)  # fmt: skip
        if queue is not None:
            query = query.where(c.queue == queue)
        rows = self._transactions.run("read votes", lambda conn: conn.execute(query).all())
        records = [(*r[:9], *sides(r.system_a, r.system_b, r.left_output), *r[9:]) for r in rows]
        frame = pd.DataFrame(records, columns=FRAME_COLUMNS)
        frame["vote_id"] = frame["vote_id"].astype("int64")
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        text = [name for name in FRAME_COLUMNS if name not in ("vote_id", "created_at")]
        return frame.astype(dict.fromkeys(text, "str"))  # missing values (no run, language, task, name) stay NaN

    def comparisons_frame(self, queue: str | None = None) -> pd.DataFrame:
        """One row per comparison, in queue order, with both texts and its votes per outcome (no voter ids or names).

        votes_a and votes_b count the votes for system_a and system_b; ties and bad count "tie" and "bad" votes.
        """
        c, v = ComparisonRow, VoteRow

        def tally(condition: sa.ColumnElement[bool]) -> sa.ColumnElement[int]:
            return sa.func.sum(sa.case((condition, 1), else_=0))

        counts = (
            sa.select(
                v.comparison_id, sa.func.count().label("n_votes"),
                tally(v.winner_system == c.system_a).label("votes_a"),
                tally(v.winner_system == c.system_b).label("votes_b"),
                tally(v.winner == "tie").label("ties"), tally(v.winner == "bad").label("bad"),
            )
            .join(c, c.id == v.comparison_id)
            .group_by(v.comparison_id)
            .subquery()
        )  # fmt: skip
        numbers = [sa.func.coalesce(counts.c[name], 0).label(name) for name in COMPARISON_COUNTS]
        query = sa.select(
            c.id.label("comparison_id"), c.queue, c.position, c.created_at, c.run_id, c.language, c.task, c.prompt,
            c.system_a, c.system_b, c.output_a, c.output_b, *numbers,
        ).outerjoin(counts, counts.c.comparison_id == c.id).order_by(c.queue, c.position)  # fmt: skip
        if queue is not None:
            query = query.where(c.queue == queue)
        rows = self._transactions.run("read comparisons", lambda conn: conn.execute(query).all())
        frame = pd.DataFrame([tuple(r) for r in rows], columns=COMPARISON_COLUMNS)
        frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
        numeric = dict.fromkeys(("position", *COMPARISON_COUNTS), "int64")
        text = {name: "str" for name in COMPARISON_COLUMNS if name not in numeric and name != "created_at"}
        return frame.astype({**numeric, **text})

    def count_votes(self, queue: str | None = None) -> int:
        """How many votes are stored (in one queue, or in all)."""
        query = sa.select(sa.func.count()).select_from(VoteRow)
        if queue is not None:
            query = query.join(ComparisonRow).where(ComparisonRow.queue == queue)
        return self._transactions.run("count votes", lambda conn: conn.scalar(query)) or 0

    def delete_queue(self, queue: str) -> int:
        """Delete a queue's comparisons and their votes; return how many comparisons were deleted."""
        query = sa.delete(ComparisonRow).where(ComparisonRow.queue == queue)
        deleted = self._transactions.run(
            f"delete queue {queue!r}", lambda conn: conn.execute(query).rowcount, write=True
        )
        log.info("deleted queue %r (%d comparisons)", queue, deleted)
        return deleted

    def queues(self) -> list[QueueSummary]:
        """Every queue by name, with its number of comparisons and of votes."""
        c = ComparisonRow
        per_comparison = sa.select(sa.func.count()).where(VoteRow.comparison_id == c.id).scalar_subquery()
        totals = (sa.func.count(), sa.func.coalesce(sa.func.sum(per_comparison), 0))
        query = sa.select(c.queue, *totals).group_by(c.queue).order_by(c.queue)
        rows = self._transactions.run("list queues", lambda conn: conn.execute(query).all())
        return [QueueSummary(name, int(n), int(votes)) for name, n, votes in rows]


def _lookup() -> sa.Select:
    """The comparison's systems and this voter's vote on it, if any (no row if there is no such comparison)."""
    c, v = ComparisonRow, VoteRow
    vote = (v.id.label("vote_id"), v.left_output, v.winner, v.winner_system, v.created_at)
    on = sa.and_(v.comparison_id == c.id, v.voter_id == sa.bindparam("voter_id"))
    return sa.select(c.system_a, c.system_b, *vote).outerjoin(v, on).where(c.id == sa.bindparam("comparison_id"))


def _next() -> sa.Select:
    """The queue's comparison with the fewest votes that this voter has not voted on, in queue order."""
    c, v = ComparisonRow, VoteRow
    mine = sa.exists().where(v.comparison_id == c.id, v.voter_id == sa.bindparam("voter_id"))
    query = sa.select(c.id, c.prompt, c.output_a, c.output_b).where(c.queue == sa.bindparam("queue"), ~mine)
    return query.order_by(c.n_votes, c.position, c.id).limit(1)


_LOOKUP, _NEXT = _lookup(), _next()  # built once: voting is the hot path
_COUNT_VOTE = (
    sa.update(ComparisonRow)
    .where(ComparisonRow.id == sa.bindparam("comparison_id"))
    .values(n_votes=ComparisonRow.n_votes + 1)
)


def _result(found: sa.Row, comparison_id: str, voter_id: str, duplicate: bool) -> VoteResult:
    left_system, right_system = sides(found.system_a, found.system_b, found.left_output)
    return VoteResult(
        found.vote_id, comparison_id, voter_id, found.left_output, found.winner, left_system, right_system,
        found.winner_system, as_utc(found.created_at), duplicate,
    )  # fmt: skip
