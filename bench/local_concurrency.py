"""Embedded model: N=5 candidates requested concurrently vs one after another.

Same prompt, seeds and token limit in both; llama.cpp's continuous batching
decodes concurrent requests together. Reports the speed-up (sequential ÷
concurrent wall time, median of 3) and the tokens per second of each.
"""

from __future__ import annotations

import asyncio
import statistics
import time

from fusion_core.llm import LiteLLMCompleter
from fusion_core.sampling import plan_samples, sample
from fusion_core.settings import LOCAL_MODEL, Settings
from fusion_core.types import RunConfig

N = 5
MAX_TOKENS = 64
ROUNDS = 3


def run_once(completer: LiteLLMCompleter, concurrency: int) -> tuple[float, int]:
    """Wall time and completion tokens of N samples at this concurrency."""
    cfg = RunConfig(prompt="Write a short paragraph about autumn.", models=[LOCAL_MODEL], n=N, max_tokens=MAX_TOKENS)
    started = time.perf_counter()
    candidates = asyncio.run(sample(cfg.prompt, plan_samples(cfg), completer, concurrency=concurrency))
    wall = time.perf_counter() - started
    failed = [c.error for c in candidates if not c.ok]
    if failed:
        raise SystemExit(f"embedded model failed: {failed[0]}")
    return wall, sum(c.completion_tokens for c in candidates)


def main() -> None:
    """Measure and print the speed-up."""
    completer = LiteLLMCompleter(Settings.from_env())
    run_once(completer, N)  # warm-up: litellm import, model load
    conc, seq = [], []
    for _ in range(ROUNDS):
        conc.append(run_once(completer, N))
        seq.append(run_once(completer, 1))
    c_wall = statistics.median(w for w, _ in conc)
    s_wall = statistics.median(w for w, _ in seq)
    c_tps = statistics.median(t / w for w, t in conc)
    s_tps = statistics.median(t / w for w, t in seq)
    print(f"Embedded model ({LOCAL_MODEL}), N={N}, max_tokens={MAX_TOKENS}: concurrent vs sequential")
    print(f"  concurrent {c_wall:.2f}s ({c_tps:.0f} tok/s)   sequential {s_wall:.2f}s ({s_tps:.0f} tok/s)")
    print(f"  speed-up {s_wall / c_wall:.2f}×")


if __name__ == "__main__":
    main()
