"""Batch experiments as background processes: the `batch` CLI command, its pid file, start, stop and resume.

A launched batch runs `python -m fusion_core batch ...` in its own session, so it outlives reruns, page
changes and the browser tab. Its output folder holds everything needed to find it again: experiment.json
(written by the CLI), batch.pid (the process) and batch.log (its output). Nothing is kept in memory.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fusion_core.batch import MANIFEST
from fusion_core.settings import PROJECT_ROOT, Settings

RUNS = "runs"  # DATA/runs/<name>-<time>: batch output, apart from the shipped data sets in data/experiments
PID_FILE = "batch.pid"
LOG_FILE = "batch.log"
JUDGE_PROMPT_FILE = "judge_prompt.txt"


@dataclass
class LaunchOptions:
    """What the launcher form asks for; None leaves the CLI's default."""

    input_path: Path
    name: str
    model: str
    fusor: str
    judge: str
    n: int = 4
    scaling: bool = True
    selector: str = "judge"
    eval_judge: str | None = None  # None: no automated pairwise judging
    baseline: str | None = None
    limit: int | None = None
    concurrency: int = 4
    max_tokens: int | None = None
    fusor_max_tokens: int | None = None
    judge_prompt_file: Path | None = None  # None: the default judge prompt


def out_dir_for(settings: Settings, name: str, now: datetime | None = None) -> Path:
    """A fresh output folder under DATA/runs, named after the experiment and the time."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-")[:60] or "batch"
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    return settings.data_dir / RUNS / f"{slug}-{stamp}"


def batch_command(options: LaunchOptions, out_dir: Path) -> list[str]:
    """The `batch` command line for a new experiment (never an API key: those stay in the environment)."""
    o = options
    command = [
        sys.executable, "-m", "fusion_core", "batch", "--input", str(o.input_path), "--out", str(out_dir),
        "--name", o.name, "--model", o.model, "--fusor", o.fusor, "--judge", o.judge, "--n", str(o.n),
        "--selector", o.selector, "--concurrency", str(o.concurrency),
    ]  # fmt: skip
    if o.scaling:
        command += ["--scaling", "all"]
    command += ["--eval-judge", o.eval_judge] if o.eval_judge else ["--no-eval"]
    optional = {
        "--baseline": o.baseline,
        "--limit": o.limit,
        "--max-tokens": o.max_tokens,
        "--fusor-max-tokens": o.fusor_max_tokens,
        "--judge-prompt": o.judge_prompt_file,
    }
    for flag, value in optional.items():
        if value not in (None, ""):
            command += [flag, str(value)]
    return command


def resume_command(experiment_id: str, out_dir: Path, concurrency: int = 4) -> list[str]:
    """The command that continues a stored experiment with its stored configuration."""
    return [
        sys.executable, "-m", "fusion_core", "batch", "--experiment", experiment_id, "--out", str(out_dir),
        "--concurrency", str(concurrency),
    ]  # fmt: skip


def write_judge_prompt(out_dir: Path, template: str) -> Path:
    """Save an edited judge prompt beside the results, for --judge-prompt."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / JUDGE_PROMPT_FILE
    path.write_text(template, encoding="utf-8")
    return path


def launch(command: list[str], out_dir: Path, settings: Settings) -> int:
    """Start the command in its own session, output to OUT/batch.log, and record it in OUT/batch.pid."""
    out_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FUSION_DATABASE_URL": settings.database_url, "FUSION_DATA_DIR": str(settings.data_dir)}
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    with (out_dir / LOG_FILE).open("ab") as log:
        process = subprocess.Popen(
            command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    record = {"pid": process.pid, "started_at": datetime.now(UTC).isoformat(), "command": command}
    (out_dir / PID_FILE).write_text(json.dumps(record), encoding="utf-8")
    return process.pid


def _pid(out_dir: Path) -> int | None:
    try:
        return int(json.loads((out_dir / PID_FILE).read_text(encoding="utf-8"))["pid"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def running_pid(out_dir: Path) -> int | None:
    """The pid of this folder's batch process while it runs, else None."""
    pid = _pid(out_dir)
    if pid is None:
        return None
    try:
        finished, _status = os.waitpid(pid, os.WNOHANG)  # reaps it when this server started it and it has ended
        if finished:
            return None
    except ChildProcessError:  # started by another server process: ask the system
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        except PermissionError:
            pass
    return pid if _is_batch(pid) else None


def _is_batch(pid: int) -> bool:
    """False when the pid was reused by an unrelated process (checked where /proc exists)."""
    if not Path("/proc").is_dir():
        return True
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    words = cmdline.split(b"\0")
    return not cmdline or (b"fusion_core" in words and b"batch" in words)  # empty for a moment while it execs


def stop(out_dir: Path) -> bool:
    """Interrupt the folder's batch like Ctrl-C (it gives its prompts back and exits); False if none runs."""
    pid = running_pid(out_dir)
    if pid is None:
        return False
    os.killpg(pid, signal.SIGINT)  # its own session: the group id is its pid
    return True


def log_tail(out_dir: Path, lines: int = 12) -> str:
    """The last lines of the batch's output (progress, notes, errors)."""
    try:
        text = (out_dir / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.replace("\r", "\n").splitlines()[-lines:])


def out_dirs(settings: Settings) -> dict[str, Path]:
    """Experiment id -> output folder, for every folder under DATA/runs with an experiment.json."""
    found: dict[str, Path] = {}
    root = settings.data_dir / RUNS
    for manifest in sorted(root.glob(f"*/{MANIFEST}")) if root.is_dir() else []:
        try:
            found[json.loads(manifest.read_text(encoding="utf-8"))["experiment_id"]] = manifest.parent
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return found
