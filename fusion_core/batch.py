"""Batch runs: many prompts through the same pipeline, resumable, shared by any number of workers.

The database is the source of truth: every prompt is an item that a worker claims, processes and
finishes (experiments.py). `OUT/results.jsonl` mirrors the finished items: rewritten from the
database when a batch starts and ends, appended as items finish in between, so a crash at any
point leaves at most a missing line that the next start restores, never a duplicate.
`OUT/experiment.json` names the experiment and its configuration, so the same command resumes it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import socket
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import uuid4

from .batch_config import BatchConfig
from .batch_input import BatchItem, LoadedInput
from .errors import ConfigError, FusionError, StoreError
from .experiment_item import process_item
from .experiments import STALE_AFTER_S, ExperimentStore
from .llm import Completer, redact
from .store import Store

log = logging.getLogger(__name__)

RESULTS = "results.jsonl"
MANIFEST = "experiment.json"
SUMMARY = "summary.json"


@dataclass
class Progress:
    """Where a batch is: items finished (in this run and before), in flight, tokens, cost and time."""

    total: int
    done: int = 0
    failed: int = 0
    already: int = 0  # finished before this run started (resumed)
    in_flight: int = 0
    waiting: int = 0  # held by other workers
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    elapsed_s: float = 0.0
    last: str | None = None  # the id of the item that finished last

    @property
    def finished(self) -> int:
        """Items done or failed, including those finished before this run."""
        return self.already + self.done + self.failed

    @property
    def processed(self) -> int:
        """Items this run finished."""
        return self.done + self.failed


@dataclass
class BatchSummary:
    """The outcome of one `batch` invocation."""

    experiment_id: str
    out_dir: str | None
    progress: Progress
    interrupted: bool = False
    failures: dict[str, list[str]] = field(default_factory=dict)  # error -> item ids
    left: int = 0  # items not finished (interrupted, left by --limit, or held by another worker)
    held: int = 0  # of those, items another worker is processing right now

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {**asdict(self), "finished": self.progress.finished}


def new_worker_id() -> str:
    """A worker name unique across machines: host, process and a random suffix."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid4().hex[:6]}"


def open_experiment(
    experiments: ExperimentStore,
    config: BatchConfig,
    *,
    loaded: LoadedInput | None = None,
    out_dir: Path | None = None,
    experiment_id: str | None = None,
    environment: dict[str, Any] | None = None,
) -> tuple[str, BatchConfig, list[str]]:
    """Create the experiment, or find the one to resume; return its id, its configuration and notes for the user.

    With `experiment_id`, join that experiment (another worker, or a page) with its stored configuration.
    Otherwise OUT/experiment.json, if present, names the experiment to resume; its configuration must match.
    `environment` (e.g. the router's endpoints, never keys) is recorded in experiment.json for reference.
    """
    notes: list[str] = []
    manifest = _read_manifest(out_dir) if out_dir else None
    if experiment_id is None and manifest is not None:
        experiment_id = manifest["experiment_id"]
        stored = BatchConfig.from_dict(manifest["config"])
        differs = stored.differences(config)
        if differs:
            raise ConfigError(
                f"{out_dir} holds experiment {experiment_id} with different settings ({', '.join(differs)}); "
                "repeat the original options to resume it, or pass another --out for a new experiment"
            )
        if experiments.find(experiment_id) is None:
            _restore(experiments, experiment_id, manifest, out_dir, loaded)
            notes.append(f"restored experiment {experiment_id} from {out_dir} into this database")
    if experiment_id is not None:
        found = experiments.get(experiment_id)
        stored = BatchConfig.from_dict(found.config)
        stored.concurrency, stored.call_concurrency = config.concurrency, config.call_concurrency
        config = stored
        if loaded is not None:
            added = experiments.add_items(experiment_id, loaded.items)
            if added:
                notes.append(f"added {added} new prompts from {loaded.path}")
        if found.finished:
            notes.append(f"resuming experiment {experiment_id}: {found.finished} of {found.n_items} prompts finished")
    else:
        if loaded is None:
            raise ConfigError("pass --input FILE to start an experiment, or --experiment ID to join one")
        config.validate()
        experiment_id = experiments.create(
            config.name, config.to_dict(), loaded.items, input_path=str(loaded.path), input_sha256=loaded.sha256
        )
        notes.append(f"created experiment {experiment_id} with {len(loaded.items)} prompts")
    if out_dir is not None:
        found = experiments.get(experiment_id)
        _write_manifest(out_dir, experiment_id, config, found, experiments.store.masked_url, environment or {})
    return experiment_id, config, notes


def _restore(experiments: ExperimentStore, experiment_id: str, manifest: dict, out_dir: Path, loaded) -> None:
    """Recreate an experiment this database lacks from OUT: its manifest, input and finished results."""
    records = read_results(out_dir / RESULTS)
    items = {r["id"]: BatchItem.from_dict(r) for r in records}
    for item in loaded.items if loaded else []:
        items.setdefault(item.id, item)
    experiments.create(
        manifest.get("name", "batch"), manifest["config"], list(items.values()),
        input_path=manifest.get("input"), input_sha256=manifest.get("input_sha256"), experiment_id=experiment_id,
    )  # fmt: skip
    worker = "restore:" + uuid4().hex[:6]
    for record in records:
        if record.get("status") == "done" and experiments.claim_item(experiment_id, record["id"], worker):
            experiments.finish(experiment_id, record["id"], worker, record, run_id=None)


class BatchRunner:
    """Claims items of one experiment and processes up to `config.concurrency` of them at once."""

    def __init__(
        self,
        experiments: ExperimentStore,
        experiment_id: str,
        config: BatchConfig,
        completer: Completer,
        *,
        store: Store | None = None,
        out_dir: Path | None = None,
        worker: str | None = None,
        on_progress: Callable[[Progress], None] | None = None,
        heartbeat_s: float = 20.0,
        stale_after_s: float = STALE_AFTER_S,
        wait_for_others: bool = True,
        limit: int | None = None,
        poll_s: float = 5.0,
    ) -> None:
        self.experiments, self.experiment_id, self.config = experiments, experiment_id, config
        self.completer, self.store, self.out_dir = completer, store, out_dir
        self.worker = worker or new_worker_id()
        self.on_progress = on_progress
        self.heartbeat_s, self.stale_after_s, self.wait_for_others = heartbeat_s, stale_after_s, wait_for_others
        self.limit = limit  # process at most this many items in this run
        self.poll_s = poll_s  # how often to look again while other workers hold the last items
        self._in_flight: set[str] = set()
        self._failures: dict[str, list[str]] = {}
        self._claimed = 0
        self._started = time.perf_counter()  # reset when run() starts
        self._db = ThreadPoolExecutor(max_workers=4, thread_name_prefix="batch-db")

    async def _call(self, fn, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(self._db, lambda: fn(*args, **kwargs))

    async def run(self) -> BatchSummary:
        """Process items until none is left (or `limit` is reached); Ctrl-C stops cleanly and can be resumed."""
        experiment = await self._call(self.experiments.get, self.experiment_id)
        self._started = time.perf_counter()
        self.progress = Progress(total=experiment.n_items, already=experiment.finished)
        if self.out_dir is not None:
            await self._call(self.write_results, ("done",))
        interrupted = False
        beat = asyncio.ensure_future(self._heartbeats())
        workers = [asyncio.ensure_future(self._work()) for _ in range(self.config.concurrency)]
        try:
            await asyncio.gather(*workers)
        except asyncio.CancelledError:
            interrupted = True
        finally:
            for task in [beat, *workers]:  # one worker's error must not leave the others running
                task.cancel()
            await asyncio.gather(beat, *workers, return_exceptions=True)
            self._db.shutdown(wait=True)  # a claim still running in a thread commits before the release below
            released = self.experiments.release(self.experiment_id, self.worker, None)
            if released:
                log.info("gave %d unfinished prompts back for the next run", released)
        if self.out_dir is not None:
            self.write_results(("done", "failed"))
        final = self.experiments.get(self.experiment_id)
        summary = BatchSummary(
            self.experiment_id,
            str(self.out_dir) if self.out_dir else None,
            self.progress,
            interrupted,
            dict(self._failures),
            left=final.n_items - final.finished,
            held=final.counts.get("running", 0),
        )
        if self.out_dir is not None:
            _atomic_write(self.out_dir / SUMMARY, json.dumps(summary.to_dict(), indent=2, ensure_ascii=False))
        return summary

    async def _work(self) -> None:
        while True:
            if self.limit is not None and self._claimed >= self.limit:
                return
            self._claimed += 1  # reserved before the claim, so `limit` holds with several coroutines
            item = await self._call(self.experiments.claim, self.experiment_id, self.worker, self.stale_after_s)
            if item is None:
                self._claimed -= 1
                if not self.wait_for_others or not await self._others_pending():
                    return
                continue
            self._in_flight.add(item.id)
            self._report()
            try:
                await self._process(item)
            finally:
                self._in_flight.discard(item.id)
            self._report(last=item.id)

    async def _others_pending(self) -> bool:
        """Wait a moment while other workers hold items; False once nothing is held."""
        experiment = await self._call(self.experiments.get, self.experiment_id)
        if experiment.counts.get("pending", 0):  # released by another worker since the claim looked
            return True
        held = experiment.counts.get("running", 0) - len(self._in_flight)  # this worker's own are not waited for
        self.progress.waiting = max(0, held)
        self._report()
        if held <= 0:
            return False
        await asyncio.sleep(min(self.poll_s, self.stale_after_s / 4))
        return True

    async def _process(self, item: BatchItem) -> None:
        failed, run = False, None
        try:
            record, run = await process_item(item, self.config, self.completer)
        except FusionError as exc:
            failed, record = True, failure_record(item, str(exc))
        except (ValueError, TypeError, KeyError, IndexError, ArithmeticError) as exc:  # a bug must not stop the batch
            log.exception("prompt %s failed unexpectedly", item.id)
            failed, record = True, failure_record(item, f"internal error: {type(exc).__name__}: {exc}")
        run_id = None
        if run is not None and self.store is not None:
            try:
                run_id = await self._call(self.store.save_run, run)
            except StoreError as exc:
                log.warning("could not save the run of %s to the history: %s", item.id, exc)
        record.update(run_id=run_id, worker=self.worker, finished_at=datetime.now(UTC).isoformat())
        stored = await self._call(
            self.experiments.finish, self.experiment_id, item.id, self.worker, record, failed=failed, run_id=run_id
        )
        if not stored:
            return
        if failed:
            self.progress.failed += 1
            self._failures.setdefault(_short(record["error"]), []).append(item.id)
        else:
            self.progress.done += 1
        usage = record.get("usage") or {}
        self.progress.prompt_tokens += usage.get("prompt_tokens", 0)
        self.progress.completion_tokens += usage.get("completion_tokens", 0)
        if usage.get("cost") is not None:
            self.progress.cost = (self.progress.cost or 0.0) + usage["cost"]
        if self.out_dir is not None:
            await self._call(_append_line, self.out_dir / RESULTS, record)

    async def _heartbeats(self) -> None:
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self._call(self.experiments.heartbeat, self.experiment_id, self.worker, list(self._in_flight))
            except StoreError as exc:
                log.warning("heartbeat failed (will retry): %s", exc)

    def _report(self, last: str | None = None) -> None:
        self.progress.in_flight = len(self._in_flight)
        self.progress.elapsed_s = time.perf_counter() - self._started
        if last is not None:
            self.progress.last = last
        if self.on_progress is not None:
            self.on_progress(self.progress)

    def write_results(self, statuses: tuple[str, ...]) -> None:
        """Rewrite OUT/results.jsonl from the database."""
        write_results(self.experiments, self.experiment_id, self.out_dir, statuses)


def write_results(
    experiments: ExperimentStore, experiment_id: str, out_dir: Path, statuses: tuple[str, ...] = ("done", "failed")
) -> int:
    """Rewrite OUT/results.jsonl from the database: one line per finished prompt, in input order; return the count."""
    records = experiments.results(experiment_id, statuses)
    _atomic_write(out_dir / RESULTS, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return len(records)


def failure_record(item: BatchItem, error: str) -> dict[str, Any]:
    """The results line of a prompt that could not be processed."""
    return {**item.to_dict(), "status": "failed", "error": redact(error), "candidates": [], "outputs": {}}


def read_results(path: Path) -> list[dict[str, Any]]:
    """The records of a results.jsonl file; a torn last line (a crash mid-write) is ignored."""
    if not path.exists():
        return []
    records = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s line %d is incomplete; ignored it", path, number)
    return records


def _short(error: str | None) -> str:
    first = (error or "unknown error").splitlines()[0]
    return first[:200]


def _append_line(path: Path, record: dict[str, Any]) -> None:
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _atomic_write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def update_manifest_config(out_dir: Path, config: BatchConfig) -> bool:
    """Record a changed configuration (re-judged) in OUT/experiment.json; False when OUT has none."""
    manifest = _read_manifest(out_dir)
    if manifest is None:
        return False
    manifest["config"] = config.to_dict()
    _atomic_write(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
    return True


def _read_manifest(out_dir: Path) -> dict[str, Any] | None:
    path = out_dir / MANIFEST
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or "experiment_id" not in data or "config" not in data:
            raise ValueError("no experiment_id or config")
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{path} is damaged ({exc}); remove it to start a new experiment in {out_dir}") from None
    return data


def _write_manifest(
    out_dir: Path, experiment_id: str, config: BatchConfig, experiment, database: str, environment: dict[str, Any]
) -> None:
    manifest = {
        "experiment_id": experiment_id,
        "name": experiment.name,
        "created_at": experiment.created_at.isoformat(),
        "config": config.to_dict(),
        "input": experiment.input_path,
        "input_sha256": experiment.input_sha256,
        "database": database,
        **environment,
    }
    _atomic_write(out_dir / MANIFEST, json.dumps(manifest, indent=2, ensure_ascii=False))
