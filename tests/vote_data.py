"""Synthetic stored runs and votes for the Arena, Leaderboard and vote CLI tests."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from fusion_core.store import Store
from fusion_core.types import Candidate, FusionResult, RunConfig, RunResult, Selection
from fusion_core.votes import NewComparison, VoteStore


def make_run(prompt: str, language: str = "en") -> RunResult:
    """A run whose fusion, Best-of-N pick and other sample are three different texts."""
    config = RunConfig(prompt=prompt, models=["m"], n=3, language=language)
    candidates = [Candidate(i, "m", text=f"{prompt}: sample answer {i}") for i in range(3)]
    bon = Selection(index=1, method="mbr", scores=[0.1, 0.9, 0.2])
    fusion = FusionResult(text=f"{prompt}: the fused answer", model="f", messages=[], order=[0, 1, 2])
    return RunResult(config=config, candidates=candidates, bon=bon, fusion=fusion)


def fill_votes(store: Store, n: int = 120, seed: int = 3) -> VoteStore:
    """n votes in queue "demo" over three systems and two languages, by 12 voters, over three days."""
    rng = random.Random(seed)
    moments = iter(datetime(2026, 1, 1, tzinfo=UTC) + timedelta(minutes=40 * i) for i in range(10 * n))
    votes = VoteStore(store, max_votes_per_minute=None, clock=lambda: next(moments))
    pairs = [("fusion", "bon"), ("fusion", "sample"), ("bon", "sample")]
    items = [
        NewComparison(f"prompt {i}", f"answer {i}a", f"answer {i}b", *pairs[i % 3], language=("en", "de")[i % 2])
        for i in range(n)
    ]
    ids = votes.add_comparisons(items, "demo")
    for i, (cid, item) in enumerate(zip(ids, items, strict=True)):
        p_a = _chance(item.system_a, item.system_b)
        roll = rng.random()
        winner_output = "a" if roll < p_a * 0.9 else "b" if roll < 0.9 else rng.choice(["tie", "bad"])
        left = rng.choice("ab")
        winner = winner_output if winner_output in ("tie", "bad") else ("left" if winner_output == left else "right")
        votes.cast_vote(cid, f"voter{i % 12}", left, winner, voter_name=f"Name {i % 12}")
    return votes


def _chance(a: str, b: str) -> float:
    strength = {"bon": 1.0, "fusion": 0.7 / 0.3, "sample": 0.4 / 0.6}
    return strength[a] / (strength[a] + strength[b])
