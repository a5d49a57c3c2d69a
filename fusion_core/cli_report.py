"""`report`: an experiment's tables in the terminal (or as JSON): win rates, N-scaling, metrics, attribution."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pandas as pd

from . import analysis, metrics
from .batch_config import BatchConfig
from .errors import ConfigError
from .experiments import ExperimentStore
from .settings import Settings
from .store import Store


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `report` subcommand."""
    report = sub.add_parser("report", help="an experiment's win rates, N-scaling, metrics and attribution")
    report.add_argument("experiment", metavar="ID")
    report.add_argument("--rounds", type=int, default=1000, help="bootstrap rounds for the intervals (default 1000)")
    report.add_argument("--by-language", action="store_true", help="per-language rows too (default: all languages)")
    report.add_argument("--json", action="store_true", help="print one JSON object of tables (every row)")


def tables(records: list[dict[str, Any]], config: BatchConfig, rounds: int) -> dict[str, pd.DataFrame]:
    """The report's tables, each possibly empty."""
    wins = analysis.judge_win_rates(records, rounds=rounds)
    scaling = analysis.scaling_frame(records, config, rounds=rounds)
    metric_rows = analysis.metric_frame(records)
    attribution = analysis.attribution_frame(records)
    out = {
        "win_rates": wins,
        "scaling": scaling,
        "metrics": metrics.metric_summary(metric_rows) if not metric_rows.empty else metric_rows,
        "beats_oracle": metrics.beats_oracle(metric_rows) if not metric_rows.empty else pd.DataFrame(),
        "accuracy": analysis.accuracy_summary(analysis.accuracy_frame(records)),
        "attribution_by_rank": attribution.by_rank,
    }
    return out


def cmd_report(args: argparse.Namespace, settings: Settings) -> int:
    """`report`: print an experiment's analysis."""
    if args.rounds < 1:
        raise ConfigError("--rounds must be at least 1")
    with Store(settings.database_url) as store:
        experiments = ExperimentStore(store)
        experiment = experiments.get(args.experiment)
        records = experiments.results(args.experiment)
    config = BatchConfig.from_dict(experiment.config)
    found = tables(records, config, args.rounds)
    summary = analysis.overview(records)
    if args.json:
        payload = {name: json.loads(frame.to_json(orient="records")) for name, frame in found.items()}
        payload["overview"] = {"done": summary.done, "failed": summary.failed, "n_items": experiment.n_items,
                               "prompt_tokens": summary.prompt_tokens, "completion_tokens": summary.completion_tokens,
                               "cost": summary.cost}  # fmt: skip
        print(json.dumps(payload, ensure_ascii=False))
        return 0
    cost = f"${summary.cost:.4f}" if summary.cost is not None else "cost unknown"
    print(f"{experiment.name} ({experiment.id}): {summary.done} done, {summary.failed} failed of {experiment.n_items}"
          f" · {summary.prompt_tokens + summary.completion_tokens:,} tokens · {cost}")  # fmt: skip
    titles = {
        "win_rates": f"Pairwise judge win rates (ties count half; {args.rounds} bootstrap rounds, 95% interval)",
        "scaling": f"N-scaling against {config.opponent()} (win rate), reference (chrF++) and answers (accuracy)",
        "metrics": "Reference metrics (mean sentence chrF++ and BLEU)",
        "beats_oracle": "Fusion vs the oracle (best candidate by chrF++)",
        "accuracy": "Accuracy against the gold answers",
        "attribution_by_rank": "Mean share of the fused answer by candidate rank (largest first)",
    }
    for name, frame in found.items():
        frame = _shown(name, frame, config, args.by_language)
        if frame.empty:
            continue
        print(f"\n{titles[name]}")
        print(frame.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    return 0


def _shown(name: str, frame: pd.DataFrame, config: BatchConfig, by_language: bool) -> pd.DataFrame:
    """The rows worth a terminal: pooled languages unless asked, win rates in the judged direction only."""
    if not by_language and "language" in frame.columns:
        frame = frame[frame["language"].eq(metrics.ALL)]
    if name == "win_rates" and not frame.empty:
        judged = set(config.judged_pairs())
        frame = frame[[(s, o) in judged for s, o in zip(frame["system"], frame["opponent"], strict=True)]]
    return frame


COMMANDS = {"report": cmd_report}
