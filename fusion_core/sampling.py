"""Sampling candidates: N samples of one model (test-time scaling) or a teacher pool.

All candidates are requested at once, bounded by a semaphore. A failed or
timed-out candidate is kept with its error; the run fails only if none succeeded.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass

from .errors import AllCandidatesFailedError, ConfigError, FusionError
from .llm import Completer
from .types import Candidate, GenParams, Message, RunConfig

MAX_CANDIDATES = 16
MODES = ("samples", "teachers")


@dataclass(frozen=True)
class SampleSpec:
    """One candidate to request: which model, with which parameters."""

    model: str
    params: GenParams


def candidate_count(config: RunConfig) -> int:
    """How many candidates a configuration asks for: N, or k from each (non-blank) teacher."""
    if config.mode == "teachers":
        return config.n * len([m for m in config.models if m and m.strip()])
    return config.n


def validate_config(config: RunConfig) -> None:
    """Raise ConfigError for input no run could succeed with."""
    if not config.prompt or not config.prompt.strip():
        raise ConfigError("the prompt is empty: type a question or task for the models to answer")
    if config.mode not in MODES:
        raise ConfigError(f"unknown mode {config.mode!r}: use one of {', '.join(MODES)}")
    models = [m for m in config.models if m and m.strip()]
    if not models:
        raise ConfigError("no sampling model given: pass --model or --teachers")
    if config.mode == "samples" and len(models) != 1:
        raise ConfigError("test-time scaling samples one model; use mode 'teachers' for a pool")
    if not 1 <= config.n <= MAX_CANDIDATES:
        raise ConfigError(f"N must be between 1 and {MAX_CANDIDATES} (got {config.n})")
    total = candidate_count(config)
    if total > MAX_CANDIDATES:
        raise ConfigError(f"{len(models)} teachers × {config.n} samples = {total} candidates; at most {MAX_CANDIDATES}")
    if config.temperature is not None and not 0.0 <= config.temperature <= 2.0:
        raise ConfigError(f"temperature must be between 0 and 2 (got {config.temperature})")
    if config.top_p is not None and not 0.0 < config.top_p <= 1.0:
        raise ConfigError(f"top_p must be in (0, 1] (got {config.top_p})")
    if config.max_tokens is not None and config.max_tokens < 1:
        raise ConfigError(f"max_tokens must be at least 1 (got {config.max_tokens})")


def plan_samples(config: RunConfig) -> list[SampleSpec]:
    """The candidates a configuration asks for, each with its own seed."""
    validate_config(config)
    models = [m.strip() for m in config.models if m and m.strip()]
    if config.mode == "teachers":
        pairs = [(m, k) for m in models for k in range(config.n)]
    else:
        pairs = [(models[0], k) for k in range(config.n)]
    specs = []
    for i, (model, _k) in enumerate(pairs):
        seed = None if config.seed is None else config.seed + i
        params = GenParams(temperature=config.temperature, top_p=config.top_p, max_tokens=config.max_tokens, seed=seed)
        specs.append(SampleSpec(model, params))
    return specs


def prompt_messages(prompt: str) -> list[Message]:
    """The chat messages a sampler receives for a prompt."""
    return [{"role": "user", "content": prompt}]


async def sample(
    prompt: str,
    specs: list[SampleSpec],
    completer: Completer,
    *,
    concurrency: int = 8,
    on_candidate: Callable[[Candidate], None] | None = None,
    on_delta: Callable[[int, str], None] | None = None,
) -> list[Candidate]:
    """Request every candidate concurrently; failures are kept as candidates with an error.

    `on_candidate` gets each candidate as it finishes; `on_delta` (index, text so far) makes the calls stream.
    """
    gate = asyncio.Semaphore(max(1, concurrency))
    messages = prompt_messages(prompt)

    async def one(index: int, spec: SampleSpec) -> Candidate:
        async with gate:
            started = time.perf_counter()
            try:
                stream = (lambda text: on_delta(index, text)) if on_delta else None
                done = await completer.complete(spec.model, messages, spec.params, on_delta=stream)
            except FusionError as exc:
                candidate = Candidate(index, spec.model, error=str(exc), params=spec.params)
                candidate.latency_s = time.perf_counter() - started
            else:
                candidate = Candidate(
                    index,
                    spec.model,
                    text=done.text,
                    params=spec.params,
                    prompt_tokens=done.prompt_tokens,
                    completion_tokens=done.completion_tokens,
                    cost=done.cost,
                    latency_s=done.latency_s,
                )
                if not done.text.strip():
                    candidate.error = "empty answer"
        if on_candidate is not None:
            on_candidate(candidate)
        return candidate

    return list(await asyncio.gather(*(one(i, s) for i, s in enumerate(specs))))


def require_success(candidates: list[Candidate]) -> None:
    """Raise AllCandidatesFailedError, listing every failure, if no candidate succeeded."""
    if not any(c.ok for c in candidates):
        raise AllCandidatesFailedError([f"candidate {c.index + 1} ({c.model}): {c.error}" for c in candidates])
