"""Running core coroutines from a page, with live progress and errors shown in the page."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import streamlit as st

from components import services
from fusion_core import engine
from fusion_core.errors import FusionError
from fusion_core.types import Candidate, RunConfig, RunResult

log = logging.getLogger(__name__)


def guarded(label: str, make: Callable[[], Coroutine[Any, Any, RunResult]]) -> RunResult | None:
    """Run a core coroutine; show a FusionError (or any surprise) with st.error instead of a traceback."""
    try:
        return asyncio.run(make())
    except FusionError as exc:
        st.error(f"{label}: {exc}", icon=":material/error:")
    except Exception as exc:
        log.exception("%s failed", label)
        st.error(f"{label}: unexpected {type(exc).__name__}: {exc}", icon=":material/error:")
    return None


def run_live(config: RunConfig) -> RunResult | None:
    """Run with a status box in which each candidate appears as it finishes."""
    planned = config.n * (len(config.models) if config.mode == "teachers" else 1)
    status = st.status(f"Sampling {planned} candidates…", expanded=True)
    lines = [status.empty() for _ in range(planned)]
    done: list[Candidate] = []

    def arrived(candidate: Candidate) -> None:
        done.append(candidate)
        mark = "✅" if candidate.ok else "❌"
        what = f"{len(candidate.text.split())} words" if candidate.ok else (candidate.error or "")[:160]
        lines[candidate.index].markdown(
            f"{mark} candidate {candidate.index + 1} · `{candidate.model}` · {candidate.latency_s:.1f}s · {what}"
        )
        label = f"{len(done)}/{planned} candidates"
        status.update(label=label + (" — selecting and fusing…" if len(done) == planned else "…"))

    cfg = services.settings()
    result = guarded(
        "Run failed",
        lambda: engine.run(config, services.completer(), concurrency=cfg.concurrency, on_candidate=arrived),
    )
    status.update(label="Done" if result else "Failed", state="complete" if result else "error", expanded=False)
    return result


def save(result: RunResult) -> None:
    """Store the run and point the URL at it; a store failure is shown, the result stays on screen."""
    try:
        services.store().save_run(result)
    except FusionError as exc:
        st.error(f"The run could not be saved: {exc}")
        return
    st.query_params["run"] = result.run_id
