"""Judge a finished experiment again (another judge model, prompt or pairs) without sampling or fusing again."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from .batch_config import BatchConfig
from .experiment_item import judge_record
from .experiments import ExperimentStore
from .llm import Completer


async def rejudge(
    experiments: ExperimentStore,
    experiment_id: str,
    completer: Completer,
    *,
    judge_model: str | None = None,
    judge_prompt: str | None = None,
    pairs: list[list[str]] | None = None,
    concurrency: int = 4,
    on_item: Callable[[int, int], None] | None = None,
) -> BatchConfig:
    """Replace every finished prompt's judgements; store and return the updated configuration."""
    stored = BatchConfig.from_dict(experiments.get(experiment_id).config)
    config = replace(
        stored,
        eval_judge_model=judge_model or stored.eval_judge_model or stored.judge_model,
        judge_prompt=judge_prompt if judge_prompt is not None else stored.judge_prompt,
        pairs=[list(p) for p in pairs] if pairs is not None else stored.pairs,
    )
    config.validate()
    completer.check_model(config.eval_judge_model)
    records = experiments.results(experiment_id, ("done",))
    gate = asyncio.Semaphore(max(1, concurrency))
    finished = 0

    async def one(record: dict[str, Any]) -> None:
        nonlocal finished
        async with gate:
            await judge_record(record, config, completer)
        experiments.replace_result(experiment_id, record["id"], record)
        finished += 1
        if on_item is not None:
            on_item(finished, len(records))

    await asyncio.gather(*(one(r) for r in records))
    experiments.update_config(experiment_id, config.to_dict())
    return config
