"""Starting the real app and a real browser, shared by the browser tests and bench/app_start.py."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, env: dict[str, str] | None = None, script: str = "app.py") -> subprocess.Popen:
    """`make run`'s command on another port (the same flags), with extra environment variables."""
    command = [
        sys.executable, "-m", "streamlit", "run", script,
        "--server.address", "127.0.0.1", "--server.port", str(port),
        "--server.headless", "true", "--browser.gatherUsageStats", "false",
    ]  # fmt: skip
    environment = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})}
    return subprocess.Popen(command, cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_healthy(port: int, process: subprocess.Popen, timeout: float = 90.0) -> float:
    """Seconds until the health endpoint answers ok; raises if the app dies or never answers."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        if process.poll() is not None:
            output = process.stdout.read().decode(errors="replace") if process.stdout else ""
            raise RuntimeError(f"the app exited with {process.returncode}:\n{output[-2000:]}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2) as answer:
                if answer.read().strip() == b"ok":
                    return time.perf_counter() - started
        except OSError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"the app did not become healthy on port {port} within {timeout:.0f}s")


def stop_app(process: subprocess.Popen) -> None:
    """Terminate the app, killing it if it does not stop."""
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def launch_chromium(playwright):
    """Debian's Chromium, headless, with background networking off (never a downloaded browser)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)


@contextmanager
def running_app(folder: Path) -> Iterator[tuple[str, str]]:
    """The app on a free port with its own SQLite database in `folder`; yields (base URL, database URL)."""
    url = f"sqlite:///{folder / 'fusion.db'}"
    port = free_port()
    process = start_app(port, {"FUSION_DATABASE_URL": url, "FUSION_DATA_DIR": str(folder)})
    try:
        wait_healthy(port, process)
        yield f"http://127.0.0.1:{port}", url
    finally:
        stop_app(process)
