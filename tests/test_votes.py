"""The vote store on SQLite and PostgreSQL: queues from stored runs, blind assignments, votes and bad input."""

from __future__ import annotations

import random
import sqlite3
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import OperationalError

from fusion_core.errors import StoreError
from fusion_core.ratings import bradley_terry
from fusion_core.store import Store
from fusion_core.transactions import FairGate, Transactions
from fusion_core.types import Candidate, FusionResult, RunConfig, RunResult, Selection
from fusion_core.vote_schema import system_outputs
from fusion_core.votes import FRAME_COLUMNS, NewComparison, RateLimitError, VoteError, VoteStore


def make_run(
    prompt: str = "Name a prime", fused: str | None = "Seven", picked: str = "Two", language: str | None = "en"
) -> RunResult:
    """A run with a failed candidate, the Best-of-N pick (index 2), another good sample and a fused answer."""
    config = RunConfig(prompt=prompt, models=["local/m"], n=4, fusor_model="local/m", language=language)
    candidates = [
        Candidate(0, "local/m", "", "timeout"),
        Candidate(1, "local/m", "Three"),
        Candidate(2, "local/m", picked),
        Candidate(3, "local/m", "Five"),
    ]
    bon = Selection(2, "judge", [None, 0.4, 0.9, 0.5])
    fusion = FusionResult(fused, "local/m", [], [1, 2, 3]) if fused is not None else None
    return RunResult(config, candidates, bon, None, fusion)


@pytest.fixture
def store(store_url: str):
    with Store(store_url) as opened:
        yield opened


@pytest.fixture
def votes(store: Store) -> VoteStore:
    return VoteStore(store)


def test_system_outputs() -> None:
    assert system_outputs(make_run()) == {"fusion": "Seven", "bon": "Two", "sample": "Three"}
    run = make_run(fused=None)
    run.bon = None
    assert system_outputs(run) == {"sample": "Three"}  # the first successful candidate


def test_build_queue_from_stored_runs(store: Store, votes: VoteStore) -> None:
    runs = [make_run("p1"), make_run("p2", fused="Two"), make_run("p3", fused=None), make_run("p4", language="de")]
    for run in runs:
        store.save_run(run)
    assert votes.build_queue(runs) == 2  # p2: fusion equals the pick; p3: nothing fused
    assert votes.build_queue(runs) == 0  # already queued
    assert votes.build_queue(runs, pairs=[("bon", "fusion")]) == 0  # the same pair in the other order
    assert votes.build_queue(runs, pairs=[("fusion", "bon"), ("sample", "bon"), ("fusion", "oracle")]) == 4
    assert votes.build_queue(runs, queue="german", language="de", task="math") == 1
    assert [(q.name, q.comparisons, q.votes) for q in votes.queues()] == [("default", 6, 0), ("german", 1, 0)]
    with store.engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT run_id, prompt, output_a, output_b, system_a, system_b, language, task, position "
                    "FROM comparisons WHERE queue = 'german'")
        ).all()  # fmt: skip
    assert [tuple(r) for r in rows] == [(runs[3].run_id, "p4", "Seven", "Two", "fusion", "bon", "de", "math", 0)]


def test_build_queue_rejects_bad_requests(store: Store, votes: VoteStore) -> None:
    with pytest.raises(VoteError, match="save the run first"):
        votes.build_queue([make_run()])
    with pytest.raises(VoteError, match="unknown system 'best'"):
        votes.build_queue([], pairs=[("fusion", "best")])
    with pytest.raises(VoteError, match="two different systems"):
        votes.build_queue([], pairs=[("bon", "bon")])
    assert votes.queues() == []


def test_next_comparison_never_repeats_and_prefers_fewest_votes(votes: VoteStore) -> None:
    ids = votes.add_comparisons([NewComparison(f"p{i}", f"a{i}", f"b{i}", "fusion", "bon") for i in range(5)])
    votes.cast_vote(ids[0], "other", "a", "left")
    seen = []
    while (assignment := votes.next_comparison("me", rng=random.Random(len(seen)))) is not None:
        seen.append(assignment.comparison_id)
        votes.cast_vote(assignment.comparison_id, "me", assignment.left_output, "tie")
    assert seen == ids[1:] + ids[:1]  # queue order, the one already voted on last
    assert votes.next_comparison("me") is None
    assert votes.next_comparison("me", queue="empty") is None
    assert votes.next_comparison("third").comparison_id == ids[1]  # ids[0] has two votes, the rest one


def test_sides_are_randomized_and_recorded(votes: VoteStore) -> None:
    comparison = votes.add_comparison("Prompt", "output A", "output B", "fusion", "bon")
    rng = random.Random(0)
    draws = [votes.next_comparison("voter", rng=rng) for _ in range(100)]
    sides = {d.left_output for d in draws}
    assert sides == {"a", "b"}
    for d in draws:
        assert d.comparison_id == comparison and d.prompt == "Prompt"
        expected = ("output A", "output B") if d.left_output == "a" else ("output B", "output A")
        assert (d.left_text, d.right_text) == expected
    assert 30 < sum(d.left_output == "a" for d in draws) < 70


@pytest.mark.parametrize(
    ("left_output", "winner", "left", "right", "winner_system"),
    [
        ("a", "left", "fusion", "bon", "fusion"),
        ("a", "right", "fusion", "bon", "bon"),
        ("b", "left", "bon", "fusion", "bon"),
        ("b", "right", "bon", "fusion", "fusion"),
        ("b", "tie", "bon", "fusion", "tie"),
        ("a", "bad", "fusion", "bon", "bad"),
    ],
)
def test_cast_vote_reveals_the_systems(
    votes: VoteStore, left_output: str, winner: str, left: str, right: str, winner_system: str
) -> None:
    comparison = votes.add_comparison("p", "fused text", "picked text", "fusion", "bon")
    before = datetime.now(UTC)
    result = votes.cast_vote(comparison, "voter-1", left_output, winner, voter_name="  Ada  ")
    assert (result.left_system, result.right_system, result.winner_system) == (left, right, winner_system)
    assert (result.comparison_id, result.voter_id, result.left_output, result.winner) == (
        comparison, "voter-1", left_output, winner,
    )  # fmt: skip
    assert result.duplicate is False and before <= result.created_at <= datetime.now(UTC)
    [row] = votes.votes_frame().to_dict("records")
    assert (row["left_system"], row["right_system"], row["winner_system"]) == (left, right, winner_system)
    assert (row["voter_name"], row["left_output"], row["winner"]) == ("Ada", left_output, winner)


def test_duplicate_vote_counts_once(votes: VoteStore) -> None:
    comparison = votes.add_comparison("p", "x", "y", "fusion", "bon")
    first = votes.cast_vote(comparison, "voter", "a", "left")
    again = votes.cast_vote(comparison, "voter", "b", "right")  # a re-submitted form with other values
    assert again.duplicate is True
    assert (again.vote_id, again.left_output, again.winner, again.winner_system) == (
        first.vote_id,
        "a",
        "left",
        "fusion",
    )
    assert again.created_at == first.created_at
    assert votes.count_votes() == 1


def test_racing_copies_of_one_vote_store_one(votes: VoteStore) -> None:
    comparison = votes.add_comparison("p", "x", "y", "fusion", "bon")
    barrier, results, errors = threading.Barrier(8), [], []

    def click() -> None:
        barrier.wait()
        try:
            results.append(votes.cast_vote(comparison, "double-clicker", "a", "left"))
        except Exception as exc:  # noqa: BLE001 - any error is a failure of the test
            errors.append(exc)

    threads = [threading.Thread(target=click) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len({r.vote_id for r in results}) == 1
    assert sorted(r.duplicate for r in results) == [False] + [True] * 7
    assert votes.count_votes() == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"comparison_id": "0" * 32}, "no comparison with id 0{32}; nothing was stored"),
        ({"comparison_id": ""}, "needs a comparison id"),
        ({"winner": "A"}, "winner must be one of left, right, tie, bad, not 'A'"),
        ({"winner": None}, "winner must be one of"),
        ({"left_output": "c"}, "left_output must be 'a' or 'b'"),
        ({"voter_name": "n" * 65}, "voter name is longer than 64 characters"),
        ({"voter_name": "Ada\x00"}, "voter name contains control characters"),
        ({"voter_name": "Ada\nLovelace"}, "voter name contains control characters"),
        ({"voter_name": "Ada\u202eecalevol"}, "voter name contains control characters"),
        ({"voter_id": ""}, "a vote needs a session"),
        ({"voter_id": "   "}, "a vote needs a session"),
        ({"voter_id": None}, "a vote needs a session"),
        ({"voter_id": "v" * 65}, "voter id is longer than 64"),
    ],
)
def test_bad_votes_are_rejected_and_store_nothing(votes: VoteStore, kwargs: dict, message: str) -> None:
    comparison = votes.add_comparison("p", "x", "y", "fusion", "bon")
    vote = {"comparison_id": comparison, "voter_id": "voter", "left_output": "a", "winner": "left", **kwargs}
    with pytest.raises(VoteError, match=message):
        votes.cast_vote(**vote)
    assert votes.count_votes() == 0
    assert votes.cast_vote(comparison, "voter", "a", "left", voter_name="").duplicate is False  # a blank name is none


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"system_b": "fusion"}, "two different systems"),
        ({"system_a": "tie"}, "cannot name a system"),
        ({"system_a": ""}, "system name is empty"),
        ({"output_b": "  "}, "non-empty output b"),
        ({"prompt": ""}, "non-empty prompt"),
        ({"queue": "q" * 129}, "queue name is longer than 128"),
    ],
)
def test_bad_comparisons_are_rejected(votes: VoteStore, change: dict, message: str) -> None:
    comparison = {"prompt": "p", "output_a": "x", "output_b": "y", "system_a": "fusion", "system_b": "bon", **change}
    with pytest.raises(VoteError, match=message):
        votes.add_comparison(**comparison)
    assert votes.queues() == []


def test_rate_limit_per_voter(store: Store) -> None:
    now = [datetime(2025, 1, 1, 12, 0, tzinfo=UTC)]
    votes = VoteStore(store, max_votes_per_minute=3, clock=lambda: now[0])
    ids = votes.add_comparisons([NewComparison("p", f"x{i}", "y", "fusion", "bon") for i in range(6)])
    for i in range(3):
        votes.cast_vote(ids[i], "fast", "a", "left")
        now[0] += timedelta(seconds=5)
    with pytest.raises(RateLimitError, match=r"more than 3 votes in a minute; wait 45 s") as info:
        votes.cast_vote(ids[3], "fast", "a", "left")
    assert info.value.retry_after == pytest.approx(45)
    assert votes.cast_vote(ids[0], "fast", "b", "tie").duplicate is True  # a repeat is not a new vote
    assert votes.cast_vote(ids[3], "slow", "a", "left").duplicate is False  # other voters are unaffected
    assert votes.count_votes() == 4
    now[0] += timedelta(seconds=46)  # the first vote is now more than a minute old
    assert votes.cast_vote(ids[3], "fast", "a", "left").duplicate is False
    unlimited = VoteStore(store, max_votes_per_minute=None, clock=lambda: now[0])
    for i in (4, 5):
        unlimited.cast_vote(ids[i], "fast", "a", "left")
    assert votes.count_votes() == 7


def test_deleting_a_run_keeps_its_comparisons_and_votes(store: Store, votes: VoteStore) -> None:
    run = make_run()
    store.save_run(run)
    votes.build_queue([run])
    assignment = votes.next_comparison("voter")
    votes.cast_vote(assignment.comparison_id, "voter", assignment.left_output, "left")
    assert store.delete_run(run.run_id) is True
    frame = votes.votes_frame()
    assert len(frame) == 1 and frame["run_id"].isna().all()
    assert votes.next_comparison("another").comparison_id == assignment.comparison_id


def test_delete_queue_removes_its_comparisons_and_votes(votes: VoteStore) -> None:
    keep = votes.add_comparison("p", "x", "y", "fusion", "bon", queue="keep")
    gone = votes.add_comparisons([NewComparison("p", "x", "y", "fusion", "bon")] * 3, queue="gone")
    votes.cast_vote(keep, "v", "a", "left")
    votes.cast_vote(gone[0], "v", "a", "left")
    assert votes.delete_queue("gone") == 3
    assert votes.delete_queue("gone") == 0
    assert [(q.name, q.comparisons, q.votes) for q in votes.queues()] == [("keep", 1, 1)]
    assert votes.count_votes() == 1 and votes.count_votes("keep") == 1 and votes.count_votes("gone") == 0


def test_votes_frame(votes: VoteStore) -> None:
    empty = votes.votes_frame()
    assert list(empty.columns) == FRAME_COLUMNS and empty.empty
    first = votes.add_comparison("p", "x", "y", "fusion", "bon", language="de", task="math")
    second = votes.add_comparison("q", "x", "y", "sample", "bon", queue="other")
    votes.cast_vote(first, "v1", "b", "left", voter_name="Ada")
    votes.cast_vote(first, "v2", "a", "bad")
    votes.cast_vote(second, "v1", "a", "right")
    frame = votes.votes_frame()
    assert list(frame.columns) == FRAME_COLUMNS
    assert str(frame["created_at"].dtype) == "datetime64[us, UTC]"
    assert frame["created_at"].is_monotonic_increasing
    assert frame[["voter_id", "left_system", "right_system", "winner", "winner_system", "queue"]].values.tolist() == [
        ["v1", "bon", "fusion", "left", "bon", "default"],
        ["v2", "fusion", "bon", "bad", "bad", "default"],
        ["v1", "sample", "bon", "right", "bon", "other"],
    ]
    assert frame["language"].tolist()[0] == "de" and frame["language"].isna().tolist() == [False, False, True]
    assert frame["voter_name"].isna().tolist() == [False, True, True]
    assert len(votes.votes_frame(queue="other")) == 1
    ratings = bradley_terry(frame)  # the frame is a battle table as it is
    assert set(ratings.index) == {"bon", "fusion", "sample"}


def test_vote_store_reports_database_errors(store: Store, votes: VoteStore) -> None:
    with store.engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE votes"))
    with pytest.raises(StoreError, match=r"cannot count votes in .*: .*votes") as info:
        votes.count_votes()
    assert "\n" not in str(info.value)


def test_a_held_sqlite_write_lock_delays_a_vote_but_does_not_fail_it(sqlite_url: str) -> None:
    with Store(sqlite_url) as store:
        votes = VoteStore(store)
        comparison = votes.add_comparison("p", "x", "y", "fusion", "bon")
        other = sqlite3.connect(sqlite_url.removeprefix("sqlite:///"), isolation_level=None, check_same_thread=False)
        other.execute("BEGIN IMMEDIATE")  # another process writing
        release = threading.Timer(0.3, other.execute, ["COMMIT"])
        release.start()
        started = time.perf_counter()
        assert votes.cast_vote(comparison, "voter", "a", "left").duplicate is False
        assert time.perf_counter() - started >= 0.25
        release.join()
        other.close()


def test_transient_errors_are_retried_and_others_are_reported(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    transactions = Transactions(store.engine, store.masked_url)
    attempts = []

    def flaky(conn: sa.Connection) -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise OperationalError("INSERT ...", {}, sqlite3.OperationalError("database is locked"))
        return "done"

    assert transactions.run("vote", flaky, write=True) == "done" and len(attempts) == 3

    class SerializationFailure(Exception):
        sqlstate = "40001"

    def always(conn: sa.Connection) -> None:
        raise OperationalError("UPDATE ...", {}, SerializationFailure("could not serialize access"))

    with pytest.raises(StoreError, match=r"cannot vote in .*: could not serialize access"):
        transactions.run("vote", always)

    def broken(conn: sa.Connection) -> None:
        raise OperationalError("SELECT ...", {}, sqlite3.OperationalError("no such column: nope"))

    attempts.clear()
    with pytest.raises(StoreError, match="no such column: nope"):
        transactions.run("read", lambda conn: attempts.append(1) or broken(conn))
    assert len(attempts) == 1  # not retried


def test_fair_gate_admits_in_arrival_order() -> None:
    gate, inside, order, most = FairGate(2), [0], [], [0]
    lock = threading.Lock()
    first_in = threading.Event()

    def worker(number: int) -> None:
        with gate:
            with lock:
                order.append(number)
                inside[0] += 1
                most[0] = max(most[0], inside[0])
            first_in.set()
            time.sleep(0.01)
            with lock:
                inside[0] -= 1

    threads = []
    for number in range(8):
        threads.append(threading.Thread(target=worker, args=(number,)))
        threads[-1].start()
        time.sleep(0.002)  # arrive one after another
    for t in threads:
        t.join()
    assert most[0] <= 2 and sorted(order) == list(range(8))
    assert order == list(range(8))
