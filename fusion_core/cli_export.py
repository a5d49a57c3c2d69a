"""`export`: an experiment's results as SFT examples, DPO preference pairs or Parquet tables."""

from __future__ import annotations

import argparse
import json
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from .batch import read_results
from .errors import ConfigError
from .experiments import ExperimentStore
from .exports import (
    FORMATS,
    SOURCES,
    TABLES,
    experiment_tables,
    jsonl_bytes,
    parquet_bytes,
    preference_pairs,
    sft_records,
    write_parquet,
)
from .settings import Settings
from .store import Store
from .votes import VoteStore

# options that only one format reads: giving them with another is a mistake worth a clear message
_ONLY_FOR = {
    "system": "sft", "min_chars": "sft", "skip_warnings": "sft", "include_failed": "sft",
    "source": "dpo", "queue": "dpo", "systems": "dpo", "conversational": "dpo", "table": "parquet",
}  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    """Add the `export` subcommand."""
    export = sub.add_parser(
        "export",
        help="write an experiment's results as SFT or DPO training data, or as Parquet tables",
        description="sft: chat-messages JSONL of one system's answers. dpo: prompt/chosen/rejected JSONL from "
        "judge verdicts that agree in both orders, or from people's majority votes. parquet: one table per kind "
        "of row (items, candidates, systems, scaling, judgements, attribution).",
    )
    export.add_argument("--experiment", metavar="ID", help="a stored experiment (list them with `experiments`)")
    export.add_argument("--from-results", metavar="FILE", help="read OUT/results.jsonl instead of the database")
    export.add_argument("--format", required=True, help=", ".join(FORMATS))
    export.add_argument("--out", required=True, metavar="PATH", help="a .jsonl file; for parquet a folder or .zip")
    export.add_argument("--system", help="sft: whose answers (fusion, bon, sample, oracle, baseline, fusion@2...)")
    export.add_argument("--language", action="append", metavar="TAGS", help="only these languages, e.g. en,de")
    export.add_argument("--min-chars", type=int, help="sft: skip answers shorter than this")
    export.add_argument("--skip-warnings", action="store_true", help="sft: skip fused answers with warnings")
    export.add_argument("--include-failed", action="store_true", help="sft: do not count failed prompts apart")
    export.add_argument("--source", help="dpo: judge (default) or votes")
    export.add_argument("--queue", help="dpo --source votes: only this queue's comparisons")
    export.add_argument("--systems", metavar="LIST", help="dpo: only pairs of these systems, e.g. fusion,bon")
    export.add_argument("--conversational", action="store_true", help="dpo: prompt/chosen/rejected as messages")
    export.add_argument("--table", help=f"parquet: write only this table ({', '.join(TABLES)})")


def cmd_export(args: argparse.Namespace, settings: Settings) -> int:
    """`export`: read the records (database or results.jsonl), build the export, write it, say what was skipped."""
    _check_options(args)
    out = Path(args.out)
    _check_out(out, args.format, args.table)
    source = args.source or "judge"
    votes = args.format == "dpo" and source == "votes"
    with ExitStack() as stack:
        store = None
        if votes or not args.from_results:
            store = stack.enter_context(Store(settings.database_url))
        records, experiment_id = _records(args, store, optional=votes)
        if args.format == "parquet":
            return _write_tables(records or [], out, args.table)
        languages = _list(args.language)
        if args.format == "sft":
            system = args.system or "fusion"
            export = sft_records(
                records or [], system, include_failed=args.include_failed, languages=languages,
                min_chars=args.min_chars or 0, skip_warnings=args.skip_warnings, experiment_id=experiment_id,
            )  # fmt: skip
            what = "SFT examples"
        else:
            comparisons = VoteStore(store).comparisons_frame(args.queue) if votes and store else None
            options: dict[str, Any] = {"systems": _list([args.systems] if args.systems else None)}
            options |= {"languages": languages, "conversational": args.conversational, "experiment_id": experiment_id}
            export = preference_pairs(source, records, comparisons, **options)
            what = f"preference pairs ({source})"
    _write(out, jsonl_bytes(export.rows))
    skipped = export.skipped_text()
    print(f"wrote {len(export.rows)} {what} to {out}" + (f"; {skipped}" if skipped else ""))
    return 0


def _check_options(args: argparse.Namespace) -> None:
    if args.format not in FORMATS:
        raise ConfigError(f"unknown --format {args.format!r}; use {', '.join(FORMATS)}")
    for name, fmt in _ONLY_FOR.items():
        if getattr(args, name) not in (None, False) and fmt != args.format:
            raise ConfigError(f"--{name.replace('_', '-')} applies to --format {fmt}, not {args.format}")
    if args.source is not None and args.source not in SOURCES:
        raise ConfigError(f"unknown --source {args.source!r}; use {' or '.join(SOURCES)}")
    if args.queue is not None and args.source != "votes":
        raise ConfigError("--queue picks the comparisons of --source votes; add --source votes")
    if args.table is not None and args.table not in TABLES:
        raise ConfigError(f"unknown --table {args.table!r}; choose one of {', '.join(TABLES)}")
    if args.min_chars is not None and args.min_chars < 0:
        raise ConfigError("--min-chars must be 0 or more")


def _check_out(out: Path, fmt: str, table: str | None) -> None:
    """ConfigError before any work when --out cannot take this format's output."""
    if fmt == "parquet" and table is None and out.suffix != ".zip":
        if out.exists() and not out.is_dir():
            raise ConfigError(f"--out {out} is a file; for parquet pass a folder (one file per table) or a .zip")
    elif out.is_dir():
        example = f"{table}.parquet" if fmt == "parquet" else f"{fmt}.jsonl"
        raise ConfigError(f"--out {out} is a folder; pass a file name such as {out / example}")


def _records(
    args: argparse.Namespace, store: Store | None, optional: bool
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """The records and the experiment id, from --from-results or the database; None when optional and not asked."""
    if args.from_results:
        path = Path(args.from_results)
        if not path.is_file():
            raise ConfigError(f"--from-results {path}: no such file; pass the results.jsonl a batch wrote")
        return read_results(path), args.experiment or _manifest_id(path)
    if args.experiment and store is not None:
        experiments = ExperimentStore(store)
        experiment_id = experiments.get(args.experiment).id  # StoreError if there is none
        return experiments.results(experiment_id), experiment_id
    if optional:
        return None, None
    raise ConfigError("pass --experiment ID (a stored experiment) or --from-results OUT/results.jsonl")


def _manifest_id(results: Path) -> str | None:
    """The experiment id in the experiment.json beside a results.jsonl, if there is a readable one."""
    try:
        found = json.loads((results.parent / "experiment.json").read_text(encoding="utf-8")).get("experiment_id")
    except (OSError, ValueError, AttributeError):
        return None
    return found if isinstance(found, str) else None


def _list(values: list[str] | None) -> list[str] | None:
    """Repeated and comma-separated values as one list; None when none were given."""
    items = [v.strip() for value in values or [] for v in value.split(",") if v.strip()]
    return items or None


def _write_tables(records: list[dict[str, Any]], out: Path, table: str | None) -> int:
    tables = experiment_tables(records)
    if table is None and out.suffix != ".zip":
        write_parquet(tables, out)
    else:
        _write(out, parquet_bytes(tables, table))
    shown = {table: tables[table]} if table else tables
    sizes = ", ".join(f"{name} {len(frame)}" for name, frame in shown.items())
    print(f"wrote {len(shown)} Parquet {'table' if table else 'tables'} to {out} (rows: {sizes})")
    return 0


def _write(out: Path, data: bytes) -> None:
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(data)
    except OSError as exc:
        raise ConfigError(f"cannot write {out}: {exc.strerror or exc}; choose another --out") from exc


COMMANDS = {"export": cmd_export}
