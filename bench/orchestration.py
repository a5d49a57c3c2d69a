"""Orchestration overhead: a full run (N=8, pointwise judge, fusor) against simulated latency.

Reports wall time ÷ critical path, where the critical path is the slowest
candidate plus the slower of judge and fusor (the best any orchestration can
do). Target ≤ 1.10. A sequential baseline (every call one after another) is
measured in the same run. Two providers: the fake completer (our own overhead
only) and real litellm with `mock_response`/`mock_delay` (litellm's overhead too).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time

from fusion_core import engine
from fusion_core.fusion import fuse
from fusion_core.llm import LiteLLMCompleter
from fusion_core.sampling import plan_samples, sample
from fusion_core.selection import JUDGE_PROMPT
from fusion_core.settings import Settings
from fusion_core.testing import FakeCompleter
from fusion_core.types import GenParams, RunConfig

N = 8
ROUNDS = 3
REPLY = "Score: 7\nThe sky is blue because air scatters short (blue) wavelengths of sunlight more than long ones."


def config(model: str) -> RunConfig:
    """The benchmarked run: N samples, pointwise judge, one fusor call."""
    return RunConfig(prompt="Why is the sky blue?", models=[model], n=N, fusor_model=model, judge_model=model)


async def sequential(cfg: RunConfig, completer) -> None:
    """The baseline: the same calls (N samples, N judge calls, one fusor call), one after another."""
    candidates = await sample(cfg.prompt, plan_samples(cfg), completer, concurrency=1)
    judge = GenParams(temperature=0.0, max_tokens=256, seed=0)
    for c in candidates:
        content = JUDGE_PROMPT.format(scale=10, prompt=cfg.prompt, response=c.text)
        await completer.complete(cfg.judge_model, [{"role": "user", "content": content}], judge)
    await fuse(cfg.prompt, candidates, cfg.fusor_model, completer)


def measure(label: str, make_completer, model: str, critical_path: float) -> None:
    """Print median wall ÷ critical path for the engine and for the sequential baseline."""
    cfg = config(model)
    asyncio.run(engine.run(cfg, make_completer(), concurrency=N))  # warm-up: imports, first-call costs
    ours, base = [], []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        asyncio.run(engine.run(cfg, make_completer(), concurrency=N))
        ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        asyncio.run(sequential(cfg, make_completer()))
        base.append(time.perf_counter() - started)
    r_ours, r_base = statistics.median(ours) / critical_path, statistics.median(base) / critical_path
    print(
        f"  {label:34} engine {r_ours:5.2f}×   sequential baseline {r_base:5.2f}×"
        f"   (critical path {critical_path:.2f}s)"
    )


def main() -> None:
    """Run both providers."""
    print(f"Orchestration overhead, N={N}, judge + fusor: wall ÷ critical path (target ≤ 1.10)")
    rng = random.Random(0)
    sample_delays = [rng.uniform(0.2, 0.5) for _ in range(N)]

    def fake() -> FakeCompleter:
        delays = iter(sample_delays)

        def reply(model, messages, params):
            return REPLY

        completer = FakeCompleter(default=reply)
        # samplers get their own latency; judge calls 0.3 s, fusor 0.4 s
        base_complete = completer.complete

        async def complete(model, messages, params, on_delta=None):
            text = messages[-1]["content"]
            wait = 0.4 if "candidate responses" in text else 0.3 if "impartial judge" in text else next(delays, 0.3)
            await asyncio.sleep(wait)
            return await base_complete(model, messages, params)

        completer.complete = complete
        return completer

    measure("fake completer (varied latency)", fake, "fake", max(sample_delays) + max(0.3, 0.4))

    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    settings = Settings.from_env()
    delay = 0.4
    measure(
        "litellm mock_response, 0.4 s/call",
        lambda: LiteLLMCompleter(settings, call_options={"mock_response": REPLY, "mock_delay": delay}),
        "openai/gpt-4o-mini",
        2 * delay,
    )


if __name__ == "__main__":
    main()
