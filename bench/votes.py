"""Vote throughput with 16 concurrent writers (SQLite, PostgreSQL) and leaderboard time over 100,000 votes.

Writes: 16 threads, each its own voter, cast votes on distinct comparisons through one
VoteStore (as a Streamlit server's sessions share one), rate limit off. A vote is the whole
`cast_vote`: validation, lookup, insert, vote counter, commit. The stored count is checked
against the votes cast. Baseline: one writer alone, measured in the same run. Target ≥ 500
votes/s on each database.

Leaderboard: Bradley–Terry plus 200 bootstrap rounds over 100,000 synthetic votes. Baseline:
the naive bootstrap, resampling the DataFrame and regrouping it with pandas every round (the
same solver fits each round). Target ≤ 2 s.

Temporary databases only: a SQLite file in a temporary folder and a fresh PostgreSQL database
on FUSION_TEST_PG (default postgresql://postgres@127.0.0.1:5432), dropped afterwards.
"""

from __future__ import annotations

import os
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import numpy as np
import pandas as pd

from fusion_core.ratings import _fit as fit_bradley_terry
from fusion_core.ratings import bootstrap_bt
from fusion_core.store import Store
from fusion_core.votes import NewComparison, VoteStore

WRITERS = 16
VOTES_EACH = 250
SINGLE_VOTES = 1_000
LEADERBOARD_VOTES = 100_000
ROUNDS = 200
PG_SERVER = os.environ.get("FUSION_TEST_PG", "postgresql://postgres@127.0.0.1:5432")


@contextmanager
def sqlite_database() -> Iterator[str]:
    """A SQLite file in a temporary folder."""
    with tempfile.TemporaryDirectory() as folder:
        yield f"sqlite:///{folder}/bench.db"


@contextmanager
def postgres_database() -> Iterator[str]:
    """A fresh PostgreSQL database, dropped afterwards."""
    import psycopg

    name = f"fx_bench_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True, connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def cast_votes(votes: VoteStore, writers: int, each: int, tag: str) -> float:
    """Votes per second of `writers` threads casting `each` votes on distinct comparisons; the count is checked."""
    before = votes.count_votes()
    items = [NewComparison(f"prompt {i}", f"fused {i}", f"picked {i}", "fusion", "bon") for i in range(each)]
    comparisons = votes.add_comparisons(items, queue=tag)
    barrier, errors = threading.Barrier(writers + 1), []

    def writer(number: int) -> None:
        voter = f"{tag}-{number}"
        barrier.wait()
        try:
            for i, comparison in enumerate(comparisons):
                votes.cast_vote(comparison, voter, "ab"[i % 2], ("left", "right", "tie", "bad")[(i + number) % 4])
        except Exception as exc:  # noqa: BLE001 - reported below, with the count
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(writers)]
    for t in threads:
        t.start()
    barrier.wait()
    started = time.perf_counter()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    stored = votes.count_votes() - before
    if errors or stored != writers * each:
        raise RuntimeError(f"{tag}: {stored} of {writers * each} votes stored; errors: {errors[:3]}")
    return stored / elapsed


def measure_writes(label: str, database: Callable[[], AbstractContextManager[str]]) -> None:
    """Print sustained votes/s for 16 writers and the single-writer baseline on one backend."""
    try:
        with database() as url, Store(url) as store:
            votes = VoteStore(store, max_votes_per_minute=None)
            cast_votes(votes, 2, 50, "warmup")
            single = cast_votes(votes, 1, SINGLE_VOTES, "single")
            many = cast_votes(votes, WRITERS, VOTES_EACH, "many")
    except Exception as exc:  # noqa: BLE001 - a missing server is one line of output, not a crash
        print(f"  {label:11} failed: {exc}")
        return
    status = "ok" if many >= 500 else "BELOW TARGET"
    total = WRITERS * VOTES_EACH
    print(
        f"  {label:11} {WRITERS} writers {many:6.0f} votes/s ({total} stored, none lost)   "
        f"single writer {single:6.0f} votes/s   ratio {many / single:4.2f}×   [{status}]"
    )


def synthetic_votes(n: int, seed: int = 0) -> pd.DataFrame:
    """Votes between four systems with fixed strengths, ties and "both bad" included, on random sides."""
    rng = np.random.default_rng(seed)
    names = np.array(["bon", "fusion", "sample", "oracle"])
    strength = np.array([1000.0, 1080.0, 940.0, 1150.0])
    i = rng.integers(0, 4, n)
    j = (i + rng.integers(1, 4, n)) % 4
    p = 1 / (1 + 10 ** ((strength[j] - strength[i]) / 400))
    u = rng.random(n)
    decisive = np.where(rng.random(n) < (p - 0.08) / 0.84, names[i], names[j])
    winner = np.where(u < 0.12, "tie", np.where(u < 0.16, "bad", decisive))
    return pd.DataFrame({"system_a": names[i], "system_b": names[j], "winner_system": winner})


def naive_bootstrap(frame: pd.DataFrame, rounds: int) -> pd.DataFrame:
    """The baseline: resample rows and regroup them with pandas every round, one fit per round."""
    systems = sorted(set(frame["system_a"]) | set(frame["system_b"]))
    base = systems.index("bon")
    ratings = []
    for r in range(rounds + 1):
        sample = frame if r == 0 else frame.sample(len(frame), replace=True, random_state=r)
        winner = sample["winner_system"]
        score = np.where(winner == sample["system_a"], 1.0, np.where(winner == sample["system_b"], 0.0, 0.5))
        both = pd.concat(
            [
                pd.DataFrame({"i": sample["system_a"].to_numpy(), "j": sample["system_b"].to_numpy(), "s": score}),
                pd.DataFrame({"i": sample["system_b"].to_numpy(), "j": sample["system_a"].to_numpy(), "s": 1 - score}),
            ]
        )
        table = both.groupby(["i", "j"])["s"].sum().unstack(fill_value=0).reindex(index=systems, columns=systems)
        theta = fit_bradley_terry(table.fillna(0).to_numpy()[None], base, prior=1.0)[0]
        ratings.append(1000 + 400 * theta / np.log(10))
    point, samples = ratings[0], np.array(ratings[1:])
    lower, upper = np.percentile(samples, [2.5, 97.5], axis=0)
    return pd.DataFrame({"rating": point, "lower": lower, "upper": upper}, index=systems)


def measure_leaderboard() -> None:
    """Print the leaderboard time over 100,000 votes against the naive bootstrap."""
    frame = synthetic_votes(LEADERBOARD_VOTES)
    bootstrap_bt(frame.head(1000), rounds=10)  # warm-up
    times = []
    for _ in range(3):
        started = time.perf_counter()
        table = bootstrap_bt(frame, rounds=ROUNDS)
        times.append(time.perf_counter() - started)
    ours = statistics.median(times)
    started = time.perf_counter()
    naive = naive_bootstrap(frame, ROUNDS)
    base = time.perf_counter() - started
    gap = float(np.max(np.abs(naive["rating"] - table.loc[naive.index, "rating"])))
    status = "ok" if ours <= 2 else "ABOVE TARGET"
    print(
        f"  BT + {ROUNDS} bootstrap rounds over {LEADERBOARD_VOTES:,} votes: {ours:5.2f} s   "
        f"naive pandas bootstrap {base:5.2f} s   ratio {ours / base:5.3f}× ({base / ours:.0f}× faster)   [{status}]"
    )
    fusion = table.loc["fusion", ["rating", "lower", "upper"]].round(1).to_dict()
    print(f"  same point ratings as the baseline within {gap:.1e} Elo; fusion {fusion}")


def main() -> None:
    """Run the write and leaderboard benchmarks."""
    print(f"Votes: sustained votes/s, {WRITERS} concurrent writers × {VOTES_EACH} (target ≥ 500 votes/s)")
    measure_writes("SQLite", sqlite_database)
    measure_writes("PostgreSQL", postgres_database)
    print("Leaderboard (target ≤ 2 s)")
    measure_leaderboard()


if __name__ == "__main__":
    main()
