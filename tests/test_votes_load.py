"""16 voters voting at once, 500 votes each, on SQLite and PostgreSQL: every vote stored exactly once."""

from __future__ import annotations

import random
import threading
import time

from fusion_core.store import Store
from fusion_core.votes import NewComparison, VoteResult, VoteStore

VOTERS = 16
VOTES_EACH = 500


def test_concurrent_voters_lose_nothing(store_url: str) -> None:
    with Store(store_url) as store:
        votes = VoteStore(store, max_votes_per_minute=None)
        items = [NewComparison(f"prompt {i}", f"fused {i}", f"picked {i}", "fusion", "bon") for i in range(VOTES_EACH)]
        comparisons = set(votes.add_comparisons(items))  # every voter votes on every comparison once
        barrier = threading.Barrier(VOTERS)
        results: dict[str, list[VoteResult]] = {}
        errors: list[BaseException] = []

        def voter(number: int) -> None:
            voter_id, rng, mine = f"voter-{number:02d}", random.Random(number), []
            results[voter_id] = mine
            barrier.wait()
            try:
                while (assignment := votes.next_comparison(voter_id, rng=rng)) is not None:
                    winner = rng.choice(["left", "right", "tie", "bad"])
                    mine.append(votes.cast_vote(assignment.comparison_id, voter_id, assignment.left_output, winner))
            except Exception as exc:  # noqa: BLE001 - whatever reached a voter fails the test
                errors.append(exc)

        threads = [threading.Thread(target=voter, args=(n,)) for n in range(VOTERS)]
        started = time.perf_counter()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started

        assert errors == []
        assert votes.count_votes() == VOTERS * VOTES_EACH
        for voter_id, mine in results.items():
            assert len(mine) == VOTES_EACH and not any(r.duplicate for r in mine), voter_id
            assert {r.comparison_id for r in mine} == comparisons, voter_id
        frame = votes.votes_frame()
        assert len(frame) == VOTERS * VOTES_EACH
        assert not frame.duplicated(["comparison_id", "voter_id"]).any()
        assert frame.groupby("comparison_id").size().eq(VOTERS).all()
        assert frame["vote_id"].is_unique
        stored = {(r.comparison_id, r.voter_id): (r.left_output, r.winner) for r in frame.itertuples()}
        for mine in results.values():
            for r in mine:
                assert stored[(r.comparison_id, r.voter_id)] == (r.left_output, r.winner)
        assert elapsed < 300, f"{VOTERS * VOTES_EACH} votes took {elapsed:.0f} s"  # a hang, not a benchmark
