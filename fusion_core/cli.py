"""The command line over the same core the app uses.

Output is for people by default and one JSON object with --json. Every
FusionError becomes one line on stderr and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from typing import Any

from . import cli_batch, cli_export, cli_report, cli_votes, engine
from .attribution import attribute
from .cli_options import add_generation_options, add_model_options, fusion_options, read_text, sampling_models
from .errors import FusionError
from .llm import LiteLLMCompleter, redact
from .model_fetch import fetch_model
from .render import attribution_text, report_html
from .render import labels as candidate_labels
from .sampling import MAX_CANDIDATES
from .settings import Settings
from .store import Store
from .types import RunConfig, RunResult

log = logging.getLogger("fusion_core")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(prog="python -m fusion_core", description="Fusion-of-N vs Best-of-N")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True)

    run = sub.add_parser("run", help="sample N candidates, select Best-of-N and fuse them")
    run.add_argument("--prompt", required=True, help="the prompt to answer")
    add_model_options(run, n_help=f"samples per model, 1 to {MAX_CANDIDATES} (default 4)")
    run.add_argument("--reference", help="reference answer (oracle selector)")
    add_generation_options(run)
    run.add_argument("--language", help="language tag stored with the run (e.g. en, zh)")
    run.add_argument("--concurrency", type=int, help="parallel model calls (default FUSION_CONCURRENCY)")
    run.add_argument("--no-store", action="store_true", help="do not save the run")
    run.add_argument("--json", action="store_true", help="print one JSON object")

    runs = sub.add_parser("runs", help="list stored runs")
    runs.add_argument("--limit", type=int, default=20)
    runs.add_argument("--json", action="store_true")
    show = sub.add_parser("show", help="print one stored run")
    show.add_argument("run_id")
    show.add_argument("--json", action="store_true")

    sub.add_parser("fetch-model", help="download the embedded model if it is missing")

    attr = sub.add_parser("attribute", help="show which parts of a fused answer came from which candidate")
    attr.add_argument("--fused", required=True, metavar="FILE", help="the fused answer (UTF-8 text; - for stdin)")
    attr.add_argument("--candidate", required=True, action="append", metavar="FILE", help="a candidate; repeat")
    shape = attr.add_mutually_exclusive_group()
    shape.add_argument("--json", action="store_true", help="print segments and shares as one JSON object")
    shape.add_argument("--html", action="store_true", help="print a self-contained HTML page")
    cli_votes.register(sub)
    cli_batch.register(sub)
    cli_export.register(sub)
    cli_report.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        settings = Settings.from_env()
        return COMMANDS[args.command](args, settings)
    except FusionError as exc:
        print(f"error: {redact(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def cmd_run(args: argparse.Namespace, settings: Settings) -> int:
    """`run`: one fusion and one Best-of-N choice on the same candidates."""
    models, mode = sampling_models(args, settings)
    config = RunConfig(
        prompt=args.prompt,
        models=models,
        n=args.n,
        mode=mode,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=args.seed,
        fusor_model=args.fusor or settings.fusor_model,
        fusion=fusion_options(args),
        selector=args.selector,
        judge_model=args.judge or settings.judge_model,
        reference=args.reference,
        language=args.language,
    )
    completer = LiteLLMCompleter(settings)
    store = None if args.no_store else Store(settings.database_url)  # a bad URL fails before any model call
    try:
        result = asyncio.run(engine.run(config, completer, concurrency=args.concurrency or settings.concurrency))
        if store is not None:
            store.save_run(result)
    finally:
        if store is not None:
            store.close()
    print(json.dumps(run_json(result), ensure_ascii=False) if args.json else render(result))
    return 0 if result.fusion and result.bon else 1


def run_json(result: RunResult) -> dict[str, Any]:
    """The CLI's JSON shape: the headline fields first, then the whole run."""
    return {
        "run_id": result.run_id,
        "candidates": [
            {"text": c.text, "model": c.model, "error": c.error, "latency_s": round(c.latency_s, 3)}
            for c in result.candidates
        ],
        "bon": (
            {"index": result.bon.index, "method": result.bon.method, "scores": result.bon.scores}
            if result.bon
            else {"index": None, "method": result.config.selector, "scores": [], "error": result.bon_error}
        ),
        "fusion": (
            {"text": result.fusion.text, "model": result.fusion.model, "warnings": result.fusion.warnings}
            if result.fusion
            else {"text": None, "model": result.config.fusor_model, "error": result.fusion_error}
        ),
        "timings": result.timings,
        "run": result.to_dict(),
    }


def render(result: RunResult) -> str:
    """A plain-text report of one run."""
    lines = [f"Run {result.run_id or '(not stored)'}", f"Prompt: {result.config.prompt}", ""]
    for c in result.candidates:
        score = result.bon.scores[c.index] if result.bon and c.index < len(result.bon.scores) else None
        mark = "  <- Best-of-N" if result.bon and result.bon.index == c.index else ""
        head = f"[{c.index + 1}] {c.model}  {c.latency_s:.1f}s"
        head += f"  score {score:g}" if isinstance(score, (int, float)) else ""
        lines += [head + mark, f"    error: {c.error}" if c.error else _indent(c.text), ""]
    if result.bon:
        lines += [f"Best-of-N ({result.bon.method}): candidate {result.bon.index + 1}. {result.bon.rationale}", ""]
    else:
        lines += [f"Best-of-N failed: {result.bon_error}", ""]
    if result.fusion:
        lines += [f"Fused answer ({result.fusion.model}):", _indent(result.fusion.text)]
        lines += [f"  warning: {w}" for w in result.fusion.warnings]
    else:
        lines += [f"Fusion failed: {result.fusion_error}"]
    t = result.timings
    lines += ["", "Time: " + ", ".join(f"{k} {v:.1f}s" for k, v in t.items())]
    usage = result.usage()
    tokens = sum(u.prompt_tokens + u.completion_tokens for u in usage.values())
    costs = [u.cost for u in usage.values() if u.cost is not None]
    lines.append(f"Tokens: {tokens:,}" + (f", cost ${sum(costs):.4f}" if costs else ", cost unknown"))
    return "\n".join(lines)


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines()) or "    (empty)"


def cmd_runs(args: argparse.Namespace, settings: Settings) -> int:
    """`runs`: the newest stored runs."""
    with Store(settings.database_url) as store:
        rows = store.list_runs(limit=args.limit)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], default=str, ensure_ascii=False))
        return 0
    for r in rows:
        prompt = " ".join(r.prompt.split())[:60]
        models = ",".join(r.models)[:30]
        print(f"{r.run_id}  {str(r.created_at)[:19]}  {models:30}  n={r.n_candidates}  {prompt}")
    return 0


def cmd_show(args: argparse.Namespace, settings: Settings) -> int:
    """`show`: one stored run."""
    with Store(settings.database_url) as store:
        result = store.get_run(args.run_id)
    print(json.dumps(run_json(result), ensure_ascii=False) if args.json else render(result))
    return 0


def cmd_fetch_model(args: argparse.Namespace, settings: Settings) -> int:
    """`fetch-model`: put the embedded GGUF where the settings expect it."""
    path = fetch_model(settings.local.gguf_path)
    print(path)
    return 0


def cmd_attribute(args: argparse.Namespace, settings: Settings) -> int:
    """`attribute`: attribute a fused answer in a file to candidates in files."""
    fused, candidates = read_text(args.fused), [read_text(path) for path in args.candidate]
    attribution = attribute(fused, candidates)
    names = candidate_labels(len(candidates))
    if args.json:
        print(json.dumps(attribution.to_dict(fused), ensure_ascii=False))
    elif args.html:
        print(report_html(fused, candidates, attribution, names), end="")
    else:
        print(attribution_text(fused, attribution, names))
    return 0


COMMANDS = {
    "run": cmd_run,
    "runs": cmd_runs,
    "show": cmd_show,
    "fetch-model": cmd_fetch_model,
    "attribute": cmd_attribute,
    **cli_votes.COMMANDS,
    **cli_batch.COMMANDS,
    **cli_export.COMMANDS,
    **cli_report.COMMANDS,
}
