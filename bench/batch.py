"""Batch throughput: prompts per minute at prompt concurrency 1, 8 and 32 against simulated latency.

Every prompt runs the pipeline of a typical comparison batch: N=4 samples, the mbr selector (no
judge calls), one fusor call, and pairwise eval judging of fusion:bon, fusion:sample and bon:sample
in both orders (6 concurrent calls): 11 model calls in three sequential stages (sampling; fusion,
with mbr beside it; judging), so one prompt's critical path is 3 × the per-call delay. Ideal
prompts/min at concurrency c = c × 60 ÷ critical path. Reported: the ratio to that ideal (target
≥ 0.8 at concurrency 8, stated, not enforced), the speed-up over concurrency 1 measured in the
same run, and the CPU time per prompt (this process, all threads), whose inverse caps what one
process can do at any concurrency.

The batch runs as the CLI runs it: `open_experiment` on a fresh database, then a `BatchRunner`
that saves every run to the history and mirrors results.jsonl into an output folder (a temporary
one). Providers: the fake completer (our overhead only) and real litellm with
`mock_response`/`mock_delay` (its overhead too), at 50 ms per call on a SQLite file and on a fresh
PostgreSQL database (FUSION_TEST_PG, dropped afterwards); and litellm at 500 ms per call on SQLite,
nearer real latency, where our overhead matters less.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from fusion_core.batch import RESULTS, BatchRunner, open_experiment
from fusion_core.batch_config import BatchConfig
from fusion_core.batch_input import load_items
from fusion_core.experiments import ExperimentStore
from fusion_core.llm import LiteLLMCompleter
from fusion_core.settings import Settings
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter
from fusion_core.types import Completion, GenParams, Message

from .votes import postgres_database, sqlite_database

N = 4
PROMPTS = 64  # two waves at concurrency 32
SINGLE_S = 1.5  # concurrency 1 runs about this long (at least 4 prompts): a stable per-prompt time
CONCURRENCY = (1, 8, 32)
STAGES = 3  # sampling, fusion (mbr beside it), pairwise judging
JUDGE_CALLS = 6  # fusion:bon, fusion:sample, bon:sample, both orders each
TARGET = 0.8  # ratio to ideal at concurrency 8
SAMPLER, FUSOR, JUDGE = "openai/gpt-4o-mini", "openai/gpt-4o", "openai/gpt-4.1-mini"
SAMPLES = [  # the first (the "sample" system) is the least central, so mbr picks another
    "Because of how light interacts with the atmosphere. The gases in air scatter blue light more than other "
    "colours, so when you look anywhere except at the sun you mostly see that scattered blue light.",
    "The sky looks blue because air molecules scatter short wavelengths of sunlight far more than long ones "
    "(Rayleigh scattering, which grows as the inverse fourth power of the wavelength). Blue light is "
    "scattered all over the sky, so it reaches our eyes from every direction.",
    "Sunlight contains every colour. Nitrogen and oxygen molecules are much smaller than the wavelength of "
    "light, and they scatter blue light about five times more strongly than red. That scattered blue light "
    "fills the sky; violet is scattered even more, but our eyes are less sensitive to it.",
    "Rayleigh scattering: small molecules redirect short (blue) wavelengths much more than long (red) ones. "
    "At noon the scattered blue dominates what we see overhead; at sunset the light crosses more air, the "
    "blue is scattered away, and the remaining reds and oranges colour the horizon.",
]
FUSED = (
    "The sky is blue because of Rayleigh scattering: nitrogen and oxygen molecules, much smaller than the "
    "wavelength of light, scatter short (blue) wavelengths far more than long (red) ones, roughly as the inverse "
    "fourth power of the wavelength. The scattered blue light reaches us from every direction. Violet is "
    "scattered even more, but our eyes are less sensitive to it, and at sunset the longer path through the air "
    "scatters the blue away, leaving reds and oranges."
)
VERDICT = "Both answers are correct; the first explains the mechanism more clearly. [[A]]"


def reply(model: str, messages: Sequence[Message], params: GenParams) -> str:
    """Four different samples (by seed), one fused answer, and a judge that prefers the first answer shown."""
    if model == FUSOR:
        return FUSED
    if model == JUDGE:
        return VERDICT
    return SAMPLES[(params.seed or 0) % len(SAMPLES)]


class MockedLiteLLM:
    """The real litellm completer, with `mock_response` set to the reply each call should get.

    One LiteLLMCompleter per distinct reply, since its call options are fixed; each call goes
    through its `complete` as in production (model check, retries, response parsing).
    """

    def __init__(self, settings: Settings, delay: float) -> None:
        self.settings, self.delay = settings, delay
        self._by_reply: dict[str, LiteLLMCompleter] = {}

    def _completer(self, text: str) -> LiteLLMCompleter:
        if text not in self._by_reply:
            options = {"mock_response": text, "mock_delay": self.delay}
            self._by_reply[text] = LiteLLMCompleter(self.settings, call_options=options)
        return self._by_reply[text]

    def check_model(self, model: str) -> None:
        """As the real completer."""
        self._completer(VERDICT).check_model(model)

    def context_window(self, model: str) -> int | None:
        """As the real completer."""
        return self._completer(VERDICT).context_window(model)

    async def complete(self, model: str, messages: Sequence[Message], params: GenParams, on_delta=None) -> Completion:
        """One litellm call answering `reply(...)` after the mock delay."""
        return await self._completer(reply(model, messages, params)).complete(model, messages, params, on_delta)


@dataclass
class Throughput:
    """One batch: prompts, wall time and the CPU time this process spent on it."""

    prompts: int
    wall_s: float
    cpu_s: float

    @property
    def per_minute(self) -> float:
        """Prompts per minute."""
        return self.prompts * 60 / self.wall_s


def run_batch(store: Store, folder: Path, completer, prompts: int, concurrency: int, tag: str) -> Throughput:
    """Create an experiment of `prompts` prompts and run it to the end at this prompt concurrency."""
    source = folder / f"{tag}.jsonl"
    rows = [{"id": f"{tag}-{i}", "prompt": f"Question {i}: why is the sky blue?"} for i in range(prompts)]
    source.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    config = BatchConfig(
        models=[SAMPLER], fusor_model=FUSOR, n=N, selector="mbr", eval_judge_model=JUDGE,
        concurrency=concurrency, call_concurrency=8, name=tag,
    )  # fmt: skip
    experiments = ExperimentStore(store)
    out = folder / tag
    experiment_id, config, _notes = open_experiment(experiments, config, loaded=load_items(source), out_dir=out)
    runner = BatchRunner(experiments, experiment_id, config, completer, store=store, out_dir=out)
    cpu, started = time.process_time(), time.perf_counter()
    summary = asyncio.run(runner.run())
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    if summary.progress.done != prompts or summary.failures:
        raise RuntimeError(f"{tag}: {summary.progress.done} of {prompts} prompts done; failures {summary.failures}")
    records = [json.loads(line) for line in (out / RESULTS).read_text(encoding="utf-8").splitlines()]
    asked = sum(1 for r in records for j in r["judgements"] if not j.get("identical"))
    if len(records) != prompts or asked != JUDGE_CALLS * prompts:
        raise RuntimeError(f"{tag}: {len(records)} results, {asked} judge calls for {prompts} prompts")
    return Throughput(prompts, wall, cpu)


def measure(
    label: str,
    make_completer: Callable[[], object],
    delay: float,
    database: Callable[[], AbstractContextManager[str]],
    single: int,
) -> None:
    """Print prompts/min, ratio to ideal and speed-up over concurrency 1 for one provider on one database."""
    critical = STAGES * delay
    try:
        with database() as url, Store(url) as store, tempfile.TemporaryDirectory() as folder:
            run_batch(store, Path(folder), make_completer(), 4, 4, "warmup")  # imports, first-call costs, schema
            results = {
                c: run_batch(store, Path(folder), make_completer(), single if c == 1 else PROMPTS, c, f"c{c}")
                for c in CONCURRENCY
            }
    except Exception as exc:  # noqa: BLE001 - a missing server is one line of output, not a crash
        print(f"  {label:40} failed: {exc}")
        return
    cpu = statistics.median(r.cpu_s / r.prompts for r in results.values())
    print(f"  {label}: critical path {critical:.2f} s; CPU {1000 * cpu:.0f} ms/prompt caps one process at "
          f"{60 / cpu:.0f} prompts/min")  # fmt: skip
    single_rate = results[1].per_minute
    for c, r in results.items():
        ratio = r.per_minute / (c * 60 / critical)
        status = "" if c != 8 else "   [ok]" if ratio >= TARGET else "   [BELOW TARGET]"
        print(
            f"    concurrency {c:2}  {r.per_minute:6.0f} prompts/min   ratio to ideal {ratio:4.2f}   "
            f"speed-up {r.per_minute / single_rate:5.2f}×   ({r.prompts} prompts in {r.wall_s:5.2f} s){status}"
        )


def main() -> None:
    """Run the fake completer and litellm at 50 ms per call on both databases, and litellm at 500 ms on SQLite."""
    print(
        f"Batch throughput, N={N} + mbr + fusor + pairwise judging ({STAGES} stages): prompts/min at prompt "
        f"concurrency {', '.join(map(str, CONCURRENCY))} vs ideal c × 60 ÷ critical path (target ratio ≥ {TARGET} at 8)"
    )
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:  # CPU-bound rows read low when other processes share the cores
        print(f"  (load average {load:.1f} on {cores} cores: other processes compete for the CPU)")
    os.environ.setdefault("OPENAI_API_KEY", "sk-bench-not-a-real-key")
    settings = Settings.from_env()
    short, long = 0.05, 0.5
    cases = [
        ("SQLite", sqlite_database, "fake completer", lambda: FakeCompleter(default=reply, delay=short), short),
        ("SQLite", sqlite_database, "litellm mock", lambda: MockedLiteLLM(settings, short), short),
        ("PostgreSQL", postgres_database, "fake completer", lambda: FakeCompleter(default=reply, delay=short), short),
        ("PostgreSQL", postgres_database, "litellm mock", lambda: MockedLiteLLM(settings, short), short),
        ("SQLite", sqlite_database, "litellm mock", lambda: MockedLiteLLM(settings, long), long),
    ]
    for database_name, database, provider, make_completer, delay in cases:
        label = f"{database_name}, {provider}, {delay * 1000:.0f} ms/call"
        measure(label, make_completer, delay, database, single=max(4, round(SINGLE_S / (STAGES * delay))))


if __name__ == "__main__":
    main()
