"""`batch` and `experiments`: many prompts through the same pipeline, from the command line."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from .batch import BatchRunner, BatchSummary, Progress, open_experiment, update_manifest_config, write_results
from .batch_config import BatchConfig
from .batch_input import LoadedInput, load_items
from .cli_options import add_generation_options, add_model_options, fusion_options, read_text, sampling_models
from .errors import ConfigError
from .experiments import ExperimentStore
from .llm import LiteLLMCompleter
from .rejudge import rejudge
from .router import load_router_config
from .sampling import MAX_CANDIDATES
from .settings import Settings
from .store import Store


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `batch` and `experiments` subcommands."""
    batch = sub.add_parser(
        "batch",
        help="run fusion and Best-of-N over a file of prompts (resumable)",
        description="Run every prompt of a JSONL/CSV file; re-run the same command to resume after a crash or "
        "Ctrl-C. Other machines join with --experiment ID against the same FUSION_DATABASE_URL.",
    )
    batch.add_argument("--input", metavar="FILE", help=".jsonl or .csv with a prompt per line (id, language, "
                       "reference, answer optional)")  # fmt: skip
    batch.add_argument("--out", metavar="DIR", help="where results.jsonl, experiment.json and summary.json go")
    batch.add_argument("--experiment", metavar="ID", help="join (or resume) a stored experiment instead")
    batch.add_argument("--rerun", metavar="EXPERIMENT_JSON", help="a new experiment with the exact settings (and, "
                       "without --input, the input) of an earlier one's experiment.json")  # fmt: skip
    batch.add_argument("--name", help="a name for the experiment (default: the input file's name)")
    add_model_options(batch, n_help=f"samples per model, N_max when scaling (≤ {MAX_CANDIDATES})")
    batch.add_argument("--reward-url", help="reward model endpoint for --selector reward")
    batch.add_argument("--scaling", nargs="?", const="all", metavar="LIST",
                       help="also evaluate on k of the samples (teachers in turn in a pool): 'all' (1..N) or "
                            "e.g. 1,2,4")  # fmt: skip
    batch.add_argument("--eval-judge", metavar="MODEL", help="pairwise judge for win rates (default: --judge)")
    batch.add_argument("--no-eval", action="store_true", help="skip the automated pairwise judging")
    batch.add_argument("--baseline", metavar="MODEL", help="a fixed reference model every system is judged against")
    batch.add_argument("--pairs", help="judged pairs, e.g. fusion:bon,fusion:baseline (default: see docs)")
    batch.add_argument("--judge-prompt", metavar="FILE", help="the pairwise judge's template ({prompt} {first} "
                       "{second})")  # fmt: skip
    add_generation_options(batch)
    batch.add_argument("--judge-max-tokens", type=int, default=256)
    batch.add_argument("--concurrency", type=int, default=4, help="prompts in flight (default 4)")
    batch.add_argument("--limit", type=int, help="process at most this many prompts in this run")
    batch.add_argument("--no-retry-failed", action="store_true", help="do not retry prompts that failed before")
    batch.add_argument("--no-wait", action="store_true", help="exit when only other workers' prompts are left")
    batch.add_argument("--json", action="store_true", help="print the summary as one JSON object")

    judge = sub.add_parser("judge", help="judge a finished experiment again: another judge model, prompt or pairs")
    judge.add_argument("--experiment", required=True, metavar="ID")
    judge.add_argument("--eval-judge", metavar="MODEL", help="the pairwise judge (default: the experiment's)")
    judge.add_argument("--judge-prompt", metavar="FILE", help="a new judge template ({prompt} {first} {second})")
    judge.add_argument("--pairs", help="judged pairs, e.g. fusion:bon,fusion:oracle (default: the experiment's)")
    judge.add_argument("--out", metavar="DIR", help="rewrite DIR/results.jsonl afterwards")
    judge.add_argument("--concurrency", type=int, default=4, help="prompts judged at once")

    experiments = sub.add_parser("experiments", help="list stored batch experiments")
    experiments.add_argument("--json", action="store_true")


def coverage_notes(loaded: LoadedInput) -> list[str]:
    """Say when only some prompts carry a reference or an answer, so partial metrics are not a surprise."""
    notes, total = [], len(loaded.items)
    with_answer = sum(1 for i in loaded.items if i.answer)
    if 0 < loaded.with_reference < total:
        notes.append(f"{loaded.with_reference} of {total} prompts have a reference: chrF++/BLEU and the oracle "
                     "are computed for those only")  # fmt: skip
    if 0 < with_answer < total:
        notes.append(f"{with_answer} of {total} prompts have an answer: accuracy is computed for those only")
    return notes


def config_from_args(args: argparse.Namespace, settings: Settings) -> BatchConfig:
    """The batch configuration the options ask for."""
    models, mode = sampling_models(args, settings)
    judge = args.judge or settings.judge_model
    config = BatchConfig(
        models=models,
        mode=mode,
        n=args.n,
        fusor_model=args.fusor or settings.fusor_model,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        fusion=fusion_options(args),
        selector=args.selector,
        judge_model=judge,
        reward_url=args.reward_url,
        eval_judge_model=None if args.no_eval else (args.eval_judge or judge),
        judge_prompt=read_text(args.judge_prompt) if args.judge_prompt else None,
        judge_max_tokens=args.judge_max_tokens,
        baseline_model=args.baseline,
        pairs=[_pair(p) for p in (args.pairs or "").split(",") if p.strip()],
        name=args.name or (Path(args.input).stem if args.input else "batch"),
        concurrency=args.concurrency,
        call_concurrency=settings.concurrency,
    )
    config.scaling = _scaling(args.scaling, config.n_max)
    return config


def _scaling(value: str | None, n_max: int) -> list[int]:
    if value is None:
        return []
    if value == "all":
        return list(range(1, n_max + 1))
    try:
        return sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise ConfigError(f"--scaling takes 'all' or numbers like 1,2,4, not {value!r}") from None


def _pair(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(":")]
    if len(parts) != 2 or not all(parts):
        raise ConfigError(f"a pair is written a:b, e.g. fusion:bon, not {text!r}")
    return parts


def cmd_batch(args: argparse.Namespace, settings: Settings) -> int:
    """`batch`: create or resume an experiment and process its prompts."""
    rerun = _rerun_manifest(args.rerun) if args.rerun else None
    if rerun is not None:
        if args.experiment:
            raise ConfigError("pass --rerun or --experiment, not both")
        args.input = args.input or rerun.get("input")
    if not args.input and not args.experiment:
        raise ConfigError("pass --input FILE (a new or resumed batch) or --experiment ID (join a stored one)")
    if args.input and not args.out and not args.experiment:
        raise ConfigError("pass --out DIR: results.jsonl and experiment.json are written there")
    if args.concurrency < 1 or (args.limit is not None and args.limit < 1):
        raise ConfigError("--concurrency and --limit must be at least 1")
    loaded = load_items(args.input) if args.input else None
    if loaded is not None:
        for problem in loaded.problems:
            print(f"{loaded.path}: {problem}", file=sys.stderr)
        if loaded.skipped:
            print(f"{len(loaded.skipped)} lines skipped; {len(loaded.items)} prompts read", file=sys.stderr)
        for note in coverage_notes(loaded):
            print(note, file=sys.stderr)
    config = config_from_args(args, settings)
    if rerun is not None:
        config = BatchConfig.from_dict({**rerun["config"], "concurrency": args.concurrency})
        config.validate()
    out_dir = Path(args.out) if args.out else None
    completer = LiteLLMCompleter(settings)
    with Store(settings.database_url) as store:
        experiments = ExperimentStore(store)
        experiment_id, config, notes = open_experiment(
            experiments, config, loaded=loaded, out_dir=out_dir, experiment_id=args.experiment,
            environment=_environment(settings),
        )  # fmt: skip
        for note in notes:
            print(note, file=sys.stderr)
        _check_models(config, completer)
        if not args.no_retry_failed and (retried := experiments.retry_failed(experiment_id)):
            print(f"retrying {retried} prompts that failed before", file=sys.stderr)
        bar = ProgressLine(sys.stderr)
        runner = BatchRunner(
            experiments, experiment_id, config, completer, store=store, out_dir=out_dir, on_progress=bar,
            wait_for_others=not args.no_wait, limit=args.limit,
        )  # fmt: skip
        summary = asyncio.run(runner.run())
        bar.close()
    print(json.dumps(summary.to_dict(), ensure_ascii=False) if args.json else summary_text(summary))
    if summary.interrupted:
        return 130
    return 0 if not summary.progress.failed else 1


def _environment(settings: Settings) -> dict[str, Any] | None:
    """What experiment.json records about where the models ran: the router's groups and endpoints, never keys."""
    if settings.router_config is None:
        return None
    return {"router": load_router_config(settings.router_config).describe().as_dict()}


def _rerun_manifest(path: str) -> dict[str, Any]:
    """An earlier experiment's experiment.json (its configuration and input)."""
    try:
        data = json.loads(read_text(path))
    except ValueError:
        raise ConfigError(f"{path} is not JSON: pass an experiment.json written by `batch`") from None
    if not isinstance(data, dict) or not isinstance(data.get("config"), dict):
        raise ConfigError(f"{path} has no configuration: pass an experiment.json written by `batch`")
    return data


def _check_models(config: BatchConfig, completer: LiteLLMCompleter) -> None:
    """Fail before any call when a model is unknown or lacks its key."""
    for model in sorted(config.called_models()):
        completer.check_model(model)


class ProgressLine:
    """A one-line progress bar on a terminal; one line per finished prompt otherwise."""

    def __init__(self, stream: TextIO, width: int = 28) -> None:
        self.stream, self.width = stream, width
        self.tty = stream.isatty()
        self._last_finished = -1
        self._drawn = False

    def __call__(self, p: Progress) -> None:
        if not self.tty and p.finished == self._last_finished:
            return
        self._last_finished = p.finished
        line = progress_text(p, self.width)
        if self.tty:
            self.stream.write("\r\x1b[2K" + line)
            self._drawn = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def progress_text(p: Progress, width: int = 28) -> str:
    """`[#####.....] 12/55 prompts · 1 failed · 3 running · 12,345 tokens · $0.0123 · 1m02s, ~3m left`."""
    share = p.finished / p.total if p.total else 1.0
    filled = round(share * width)
    parts = [f"[{'#' * filled}{'.' * (width - filled)}] {p.finished}/{p.total} prompts"]
    if p.failed:
        parts.append(f"{p.failed} failed")
    if p.in_flight:
        parts.append(f"{p.in_flight} running")
    if p.waiting:
        parts.append(f"waiting for {p.waiting} held by other workers")
    parts.append(f"{p.prompt_tokens + p.completion_tokens:,} tokens")
    if p.cost is not None:
        parts.append(f"${p.cost:.4f}")
    timing = _duration(p.elapsed_s)
    if p.processed and p.finished < p.total:
        left = p.elapsed_s / p.processed * (p.total - p.finished)
        timing += f", ~{_duration(left)} left"
    parts.append(timing)
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 60:
        return f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def summary_text(summary: BatchSummary) -> str:
    """What the batch did, its totals and a failure summary."""
    p = summary.progress
    cost = f"${p.cost:.4f}" if p.cost is not None else "cost unknown"
    lines = [
        f"experiment {summary.experiment_id}: {p.finished}/{p.total} prompts finished "
        f"({p.done} done and {p.failed} failed in this run, {p.already} before)",
        f"tokens {p.prompt_tokens:,} in + {p.completion_tokens:,} out · {cost} · {_duration(p.elapsed_s)}",
    ]
    if summary.out_dir:
        lines.append(f"results: {Path(summary.out_dir) / 'results.jsonl'}")
    if summary.failures:
        lines.append("failures:")
        for error, ids in sorted(summary.failures.items(), key=lambda kv: -len(kv[1])):
            shown = ", ".join(ids[:5]) + (f" and {len(ids) - 5} more" if len(ids) > 5 else "")
            lines.append(f"  {len(ids)} × {error}  ({shown})")
    if summary.interrupted:
        lines.append(f"interrupted with {summary.left} prompts left: run the same command again to resume")
    else:
        if summary.held:
            lines.append(f"other workers are still processing {_count(summary.held, 'prompt')}")
        if summary.left - summary.held > 0:
            lines.append(
                f"{_count(summary.left - summary.held, 'prompt')} not started yet: run the same command again to go on"
            )
    return "\n".join(lines)


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def cmd_judge(args: argparse.Namespace, settings: Settings) -> int:
    """`judge`: replace an experiment's pairwise verdicts."""
    if args.concurrency < 1:
        raise ConfigError("--concurrency must be at least 1")
    pairs = [_pair(p) for p in args.pairs.split(",") if p.strip()] if args.pairs else None
    prompt = read_text(args.judge_prompt) if args.judge_prompt else None
    completer = LiteLLMCompleter(settings)
    with Store(settings.database_url) as store:
        experiments = ExperimentStore(store)

        def report(done: int, total: int) -> None:
            print(f"judged {done}/{total} prompts", file=sys.stderr)

        config = asyncio.run(
            rejudge(experiments, args.experiment, completer, judge_model=args.eval_judge, judge_prompt=prompt,
                    pairs=pairs, concurrency=args.concurrency, on_item=report)
        )  # fmt: skip
        if args.out:
            update_manifest_config(Path(args.out), config)
            written = write_results(experiments, args.experiment, Path(args.out))
            print(f"rewrote {Path(args.out) / 'results.jsonl'} ({written} prompts)", file=sys.stderr)
    print(f"experiment {args.experiment} judged again by {config.eval_judge_model}: {len(config.judged_pairs())} pairs")
    return 0


def cmd_experiments(args: argparse.Namespace, settings: Settings) -> int:
    """`experiments`: the stored experiments, newest first."""
    with Store(settings.database_url) as store:
        found = ExperimentStore(store).list()
    if args.json:
        print(json.dumps([_experiment_json(e) for e in found], ensure_ascii=False, default=str))
        return 0
    if not found:
        print("no experiments yet: run `python -m fusion_core batch --input FILE --out DIR`")
    for e in found:
        counts = e.counts
        print(f"{e.id}  {e.created_at:%Y-%m-%d %H:%M}  {e.name[:30]:30}  {counts.get('done', 0)} done, "
              f"{counts.get('failed', 0)} failed, {e.n_items} prompts")  # fmt: skip
    return 0


def _experiment_json(e) -> dict[str, Any]:
    return {"id": e.id, "name": e.name, "created_at": e.created_at.isoformat(), "n_items": e.n_items,
            "counts": e.counts, "config": e.config}  # fmt: skip


COMMANDS = {"batch": cmd_batch, "judge": cmd_judge, "experiments": cmd_experiments}
