"""One prompt of a batch: sample N_max once, then fuse and select on every k of them, score and judge.

The record this returns is one line of results.jsonl and one item's `result` in the store:
the item's fields; `candidates`; `bon` and `fusion` (N = N_max) with their errors; `attribution`
(shares of the fused answer per candidate and novel); `scaling` (fusion and Best-of-N on k of the
candidates for each k, with the indices of those k: the first k, or teachers in turn, see
BatchConfig.scaling_subset); `baseline` (a fixed reference model's answer); `outputs` (the text of
every system: fusion, bon, sample, oracle, baseline, fusion@k, bon@k); `metrics` (chrF++/BLEU
against a reference, with the oracle); `correct` (against a short gold answer); `judgements`
(pairwise verdicts, both orders); `usage` and `time_s`.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from typing import Any

from . import judging, metrics
from .batch_config import BatchConfig
from .batch_input import BatchItem
from .engine import finish_run
from .errors import FusionError
from .fusion import FusionOptions
from .llm import Completer, redact
from .sampling import plan_samples, prompt_messages, sample
from .selection import SelectorConfig
from .types import Candidate, GenParams, RunConfig, RunResult, Usage


async def process_item(item: BatchItem, config: BatchConfig, completer: Completer) -> tuple[dict[str, Any], RunResult]:
    """Run every stage for one prompt; model failures are recorded in the record, never raised.

    Raises AllCandidatesFailedError when no candidate could be sampled (the item failed).
    """
    started = time.perf_counter()
    run_config = config.run_config(item.prompt, reference=item.reference, language=item.language)
    options = FusionOptions.from_dict(config.fusion)
    selector = config.selector_config(item.reference)
    baseline = asyncio.ensure_future(_baseline(item, config, completer))
    try:
        candidates = await sample(item.prompt, plan_samples(run_config), completer, concurrency=config.call_concurrency)
        sampling_s = time.perf_counter() - started
        main, *prefixes = await asyncio.gather(
            finish_run(run_config, candidates, completer, selector=selector, options=options, sampling_s=sampling_s),
            *(
                _subset(run_config, candidates, config.scaling_subset(k), completer, selector, options)
                for k in config.scaling_ns()
            ),
        )
        base = await baseline
    finally:
        baseline.cancel()
    record = _record(item, main, prefixes, base, config)
    await judge_record(record, config, completer)
    record["time_s"] = round(time.perf_counter() - started, 3)
    return record, main


async def _subset(
    run_config: RunConfig,
    candidates: list[Candidate],
    chosen: list[int],
    completer: Completer,
    selector: SelectorConfig,
    options: FusionOptions,
) -> dict:
    """Select and fuse on the chosen candidates only; indices in the entry refer to all of them."""
    k = len(chosen)
    # Renumbered 0..k-1 so selection and fusion see an ordinary list of k candidates.
    subset = [replace(candidates[i], index=position) for position, i in enumerate(chosen)]
    try:
        run = await finish_run(run_config, subset, completer, selector=selector, options=options, attribution=False)
    except FusionError as exc:
        return {"n": k, "candidates": chosen, "bon_index": None, "bon_error": str(exc), "fusion_text": None,
                "fusion_error": str(exc)}  # fmt: skip
    usage = {stage: u.__dict__ for stage, u in run.usage().items() if stage != "sampling"}  # samples are shared
    entry = _scaling_entry(run)
    if entry["bon_index"] is not None:
        entry["bon_index"] = chosen[entry["bon_index"]]
    return {"n": k, "candidates": chosen, "usage": usage, **entry}


def _scaling_entry(run: RunResult) -> dict[str, Any]:
    """What a scaling point keeps of a run on k candidates: the pick and the fused text, or their errors."""
    return {
        "bon_index": run.bon.index if run.bon else None,
        "bon_error": run.bon_error,
        "fusion_text": run.fusion.text if run.fusion else None,
        "fusion_error": run.fusion_error,
    }


async def _baseline(item: BatchItem, config: BatchConfig, completer: Completer) -> dict | None:
    if not config.baseline_model:
        return None
    params = GenParams(temperature=0.0, max_tokens=config.max_tokens, seed=config.seed)
    try:
        done = await completer.complete(config.baseline_model, prompt_messages(item.prompt), params)
    except FusionError as exc:
        return {"model": config.baseline_model, "text": None, "error": redact(str(exc))}
    return {
        "model": config.baseline_model, "text": done.text, "error": None if done.text.strip() else "empty answer",
        "prompt_tokens": done.prompt_tokens, "completion_tokens": done.completion_tokens, "cost": done.cost,
    }  # fmt: skip


def _record(item: BatchItem, run: RunResult, prefixes: list[dict], baseline: dict | None, config: BatchConfig):
    candidates = [
        {k: getattr(c, k) for k in ("index", "model", "text", "error", "prompt_tokens", "completion_tokens", "cost")}
        | {"latency_s": round(c.latency_s, 3)}
        for c in run.candidates
    ]
    texts = [c.text if c.ok and c.text.strip() else None for c in run.candidates]
    bon = None
    if run.bon is not None:
        bon = {k: getattr(run.bon, k) for k in ("index", "method", "scores", "rationale", "model")}
    fusion = None
    if run.fusion is not None:
        fusion = {"text": run.fusion.text, "model": run.fusion.model, "warnings": list(run.fusion.warnings)}
    outputs: dict[str, str] = {}
    if fusion and fusion["text"].strip():
        outputs["fusion"] = fusion["text"]
    if bon is not None and texts[bon["index"]]:
        outputs["bon"] = texts[bon["index"]]
    first = next((t for t in texts if t), None)
    if first:
        outputs["sample"] = first
    if baseline and baseline.get("text") and not baseline.get("error"):
        outputs["baseline"] = baseline["text"]
    scaling = []
    for entry in prefixes:
        k = entry["n"]
        if entry.get("fusion_text"):
            outputs[f"fusion@{k}"] = entry["fusion_text"]
        if entry.get("bon_index") is not None and texts[entry["bon_index"]]:
            outputs[f"bon@{k}"] = texts[entry["bon_index"]]
        scaling.append(entry)
    scaling.append({"n": config.n_max, "candidates": list(range(config.n_max)), **_scaling_entry(run)})
    record: dict[str, Any] = {
        **item.to_dict(),
        "status": "done",
        "error": None,
        "candidates": candidates,
        "bon": bon,
        "bon_error": run.bon_error,
        "fusion": fusion,
        "fusion_error": run.fusion_error,
        "attribution": {"shares": (run.attribution or {}).get("shares")} if run.attribution else None,
        "scaling": scaling,
        "baseline": baseline,
        "timings": {k: round(v, 3) for k, v in run.timings.items()},
        "stage_usage": {stage: u.__dict__ for stage, u in run.usage().items()},
    }
    if item.reference:
        scored = metrics.reference_metrics(outputs, texts, item.reference, item.language)
        record["metrics"] = scored
        if scored.get("oracle_index") is not None:
            outputs["oracle"] = texts[scored["oracle_index"]]
            for entry in scaling:  # the oracle among the k candidates, for the scaling curves
                entry["oracle_chrf"] = _best_of([scored["candidates"][i] for i in scaling_candidates(entry)])
    if item.answer:
        correct = {name: metrics.answer_correct(text, item.answer) for name, text in outputs.items()}
        hits = [t for t in texts if t and metrics.answer_correct(t, item.answer)]
        correct["oracle"] = bool(hits)
        record["correct"] = correct
        if hits:
            outputs.setdefault("oracle", hits[0])
    record["outputs"] = outputs
    return record


def scaling_candidates(entry: dict[str, Any]) -> list[int]:
    """The candidates a scaling entry was evaluated on (records written before subsets: the first n)."""
    return entry.get("candidates") or list(range(entry["n"]))


def _best_of(scores: list[dict | None]) -> float | None:
    values = [s["chrf"] for s in scores if s]
    return max(values) if values else None


async def judge_record(record: dict[str, Any], config: BatchConfig, completer: Completer) -> None:
    """Judge the record's outputs pairwise in both orders (replacing earlier verdicts); update its usage."""
    record.pop("judgements", None)
    if config.eval_judge_model:
        record["judgements"] = await _judgements(record, config, completer)
    record["usage"] = _usage(record)


async def _judgements(record: dict[str, Any], config: BatchConfig, completer: Completer) -> list[dict[str, Any]]:
    outputs = record["outputs"]
    pairs, identical = [], []
    for a, b in config.judged_pairs():
        if a in outputs and b in outputs:
            (identical if outputs[a] == outputs[b] else pairs).append((a, b))
    template = config.judge_prompt or judging.DEFAULT_JUDGE_PROMPT
    params = GenParams(temperature=0.0, max_tokens=config.judge_max_tokens)
    found = await judging.judge_item(
        record["prompt"], outputs, pairs, model=config.eval_judge_model, completer=completer, template=template,
        params=params,
    )  # fmt: skip
    for a, b in identical:  # the same text twice is a tie without asking
        for first in (a, b):
            found.append({
                "system_a": a, "system_b": b, "first": first, "verdict": "tie", "winner": "tie",
                "raw": "", "model": None, "error": None, "identical": True,
                "prompt_tokens": 0, "completion_tokens": 0, "cost": None,
            })  # fmt: skip
    return found


def _usage(record: dict[str, Any]) -> dict[str, Any]:
    total = Usage()
    for usage in record["stage_usage"].values():
        total.add(usage["prompt_tokens"], usage["completion_tokens"], usage["cost"])
    for entry in record["scaling"]:
        for usage in (entry.get("usage") or {}).values():
            total.add(usage["prompt_tokens"], usage["completion_tokens"], usage["cost"])
    parts = [record.get("baseline") or {}, *(record.get("judgements") or [])]
    for part in parts:
        total.add(part.get("prompt_tokens") or 0, part.get("completion_tokens") or 0, part.get("cost"))
    return total.__dict__
