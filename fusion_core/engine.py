"""One run end to end: sample N candidates, then Best-of-N selection and fusion concurrently."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .attribution import attribute
from .errors import FusionError
from .fusion import FusionOptions, fuse
from .llm import Completer
from .sampling import plan_samples, require_success, sample
from .selection import SelectorConfig, select, validate
from .types import Candidate, FusionResult, RunConfig, RunResult, Selection


def selector_config(config: RunConfig, **extra) -> SelectorConfig:
    """The Best-of-N selector a run configuration asks for."""
    return SelectorConfig(method=config.selector, judge_model=config.judge_model, reference=config.reference, **extra)


def preflight(config: RunConfig, completer: Completer, selector: SelectorConfig) -> FusionOptions:
    """Check everything that can be checked before a token is spent; return the fusion options."""
    plan_samples(config)
    validate(selector, completer)
    options = FusionOptions.from_dict(config.fusion)
    completer.check_model(config.fusor_model)
    if config.mode == "samples":
        completer.check_model(config.models[0])
    return options


async def run(
    config: RunConfig,
    completer: Completer,
    *,
    concurrency: int = 8,
    on_candidate: Callable[[Candidate], None] | None = None,
    on_delta: Callable[[int, str], None] | None = None,
    on_fusion_delta: Callable[[str], None] | None = None,
    selector: SelectorConfig | None = None,
) -> RunResult:
    """Sample, then select and fuse on the same candidates; raises only if no candidate succeeded.

    `on_delta(index, text)` streams each candidate and `on_fusion_delta(text)` the fusor's output so far.
    """
    selector = selector or selector_config(config)
    options = preflight(config, completer, selector)
    started = time.perf_counter()
    candidates = await sample(
        config.prompt,
        plan_samples(config),
        completer,
        concurrency=concurrency,
        on_candidate=on_candidate,
        on_delta=on_delta,
    )
    sampling_s = time.perf_counter() - started
    result = await finish_run(
        config,
        candidates,
        completer,
        selector=selector,
        options=options,
        sampling_s=sampling_s,
        on_fusion_delta=on_fusion_delta,
    )
    result.timings["total"] = time.perf_counter() - started
    return result


async def finish_run(
    config: RunConfig,
    candidates: list[Candidate],
    completer: Completer,
    *,
    selector: SelectorConfig,
    options: FusionOptions,
    attribution: bool = True,
    sampling_s: float = 0.0,
    on_fusion_delta: Callable[[str], None] | None = None,
) -> RunResult:
    """Select and fuse concurrently on candidates already sampled; raises only if none of them succeeded."""
    require_success(candidates)
    result = RunResult(config=config, candidates=candidates, timings={"sampling": sampling_s})
    await asyncio.gather(
        _select_into(result, selector, completer),
        _fuse_into(result, options, completer, messages=None, attribution=attribution, on_delta=on_fusion_delta),
    )
    return result


async def _select_into(result: RunResult, selector: SelectorConfig, completer: Completer) -> None:
    started = time.perf_counter()
    try:
        result.bon = await select(result.config.prompt, result.candidates, selector, completer)
        result.bon_error = None
    except FusionError as exc:
        result.bon, result.bon_error = None, str(exc)
    result.timings["selection"] = time.perf_counter() - started


async def _fuse_into(
    result: RunResult,
    options: FusionOptions,
    completer: Completer,
    messages,
    attribution: bool = True,
    on_delta: Callable[[str], None] | None = None,
) -> None:
    started = time.perf_counter()
    try:
        result.fusion = await fuse(
            result.config.prompt, result.candidates, result.config.fusor_model, completer, options, messages, on_delta
        )
        result.fusion_error = None
    except FusionError as exc:
        result.fusion, result.fusion_error = None, str(exc)
    result.timings["fusion"] = time.perf_counter() - started
    result.attribution = None
    if result.fusion is not None and attribution:
        started = time.perf_counter()
        result.attribution = attribute_fusion(result.fusion.text, result.candidates)
        result.timings["attribution"] = time.perf_counter() - started


def attribute_fusion(fused: str, candidates: list[Candidate]) -> dict[str, Any]:
    """The fused answer's attribution over the successful candidates; sources index `candidates`."""
    ok = [i for i, c in enumerate(candidates) if c.ok]
    attribution = attribute(fused, [candidates[i].text for i in ok])
    return attribution.remap(ok, len(candidates)).to_dict()


async def refuse(
    previous: RunResult,
    completer: Completer,
    *,
    fusor_model: str | None = None,
    options: FusionOptions | None = None,
    messages: list | None = None,
    on_delta: Callable[[str], None] | None = None,
) -> RunResult:
    """Fuse the same candidates again with other fusor settings (or an edited fusor prompt); no new sampling."""
    options = options or FusionOptions.from_dict(previous.config.fusion)
    config = replace(previous.config, fusor_model=fusor_model or previous.config.fusor_model, fusion=options.to_dict())
    completer.check_model(config.fusor_model)
    result = _copy(previous, config)
    await _fuse_into(result, options, completer, messages, on_delta=on_delta)
    return result


async def reselect(previous: RunResult, completer: Completer, selector: SelectorConfig) -> RunResult:
    """Select again on the same candidates with another selector; no new sampling."""
    validate(selector)
    config = replace(previous.config, selector=selector.method, judge_model=selector.judge_model)
    if selector.reference is not None:
        config = replace(config, reference=selector.reference)
    result = _copy(previous, config)
    await _select_into(result, selector, completer)
    return result


def _copy(previous: RunResult, config: RunConfig) -> RunResult:
    bon: Selection | None = previous.bon
    fusion: FusionResult | None = previous.fusion
    return RunResult(
        config=config,
        candidates=list(previous.candidates),
        bon=bon,
        bon_error=previous.bon_error,
        fusion=fusion,
        fusion_error=previous.fusion_error,
        attribution=previous.attribution,
        timings={"sampling": previous.timings.get("sampling", 0.0)},
    )


def is_self_fusion(config: RunConfig) -> bool:
    """True when the fusor is the sampling model itself (the paper's self-refinement case)."""
    return config.mode == "samples" and config.models[:1] == [config.fusor_model]
