"""Running core coroutines from a page, with live progress and errors shown in the page."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

import streamlit as st

from components import services
from fusion_core import engine
from fusion_core.errors import FusionError
from fusion_core.sampling import candidate_count
from fusion_core.types import Candidate, RunConfig, RunResult

log = logging.getLogger(__name__)
STREAM_EVERY_S = 0.25
MARKDOWN_CHARS = set("\\`*_{}[]()<>#+-.!|~:$")


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
    """Run with a status box in which each candidate streams in, then is marked done or failed, then the fusor."""
    planned = candidate_count(config)
    status = st.status(f"Sampling {planned} candidates…", expanded=True)
    lines = [status.empty() for _ in range(planned)]
    fusing = status.empty()
    done: list[Candidate] = []
    streaming = _throttled(lambda index, text: lines[index].caption(f"⏳ candidate {index + 1}: {_tail(text)}"))

    def arrived(candidate: Candidate) -> None:
        done.append(candidate)
        mark = "✅" if candidate.ok else "❌"
        what = f"{len(candidate.text.split())} words" if candidate.ok else (candidate.error or "")[:160]
        lines[candidate.index].markdown(
            f"{mark} candidate {candidate.index + 1} · `{candidate.model}` · {candidate.latency_s:.1f}s · {what}"
        )
        label = f"{len(done)}/{planned} candidates"
        # expanded=True again: an update without it collapses the box in the browser (Streamlit 1.67)
        status.update(label=label + (" — selecting and fusing…" if len(done) == planned else "…"), expanded=True)

    cfg = services.settings()
    result = guarded(
        "Run failed",
        lambda: engine.run(
            config,
            services.completer(),
            concurrency=cfg.concurrency,
            on_candidate=arrived,
            on_delta=streaming,
            on_fusion_delta=_fusor_streaming(fusing, f"fusor `{config.fusor_model}`: "),
        ),
    )
    _close(status, fusing, result)
    return result


def refuse_live(
    make: Callable[[Callable[[str], None]], Coroutine[Any, Any, RunResult]], fusor: str
) -> RunResult | None:
    """Re-fuse with the fusor's answer streaming into a status box; `make(on_delta)` builds the coroutine."""
    status = st.status(f"Fusing with `{fusor}`…", expanded=True)
    line = status.empty()
    result = guarded("Re-fuse failed", lambda: make(_fusor_streaming(line, "")))
    _close(status, line, result)
    return result


def _throttled(show: Callable[[int, str], None]) -> Callable[[int, str], None]:
    """`show(index, text)` at most every STREAM_EVERY_S per index: a repaint per token is wasted work."""
    shown: dict[int, float] = {}

    def maybe(index: int, text: str) -> None:
        now = time.perf_counter()
        if now - shown.get(index, 0.0) >= STREAM_EVERY_S:
            shown[index] = now
            show(index, text)

    return maybe


def _fusor_streaming(line: Any, prefix: str) -> Callable[[str], None]:
    """The fusor's output so far, throttled, as a caption in `line` after `prefix`."""
    show = _throttled(lambda _, text: line.caption(f"⏳ {prefix}{_tail(text)}"))
    return lambda text: show(0, text)


def _close(status: Any, fusor_line: Any, result: RunResult | None) -> None:
    """The fusor's final line, then the status box collapsed as done or failed."""
    if result is not None:
        fusor_line.markdown(_fusion_line(result))
    status.update(label="Done" if result else "Failed", state="complete" if result else "error", expanded=False)


def _fusion_line(result: RunResult) -> str:
    """The status line for the fusor once it has answered (or failed)."""
    if result.fusion is None:
        return f"❌ fusor `{result.config.fusor_model}` · {(result.fusion_error or '')[:160]}"
    seconds = result.timings.get("fusion", 0.0)
    words = len(result.fusion.text.split())
    return f"✅ fusor `{result.fusion.model}` · {seconds:.1f}s · {words} words"


def _tail(text: str, limit: int = 160) -> str:
    """The end of a streaming answer on one line, with Markdown characters neutralized (it is shown as a caption)."""
    flat = " ".join(text.split())
    flat = flat if len(flat) <= limit else "…" + flat[-limit:]
    return "".join("\\" + ch if ch in MARKDOWN_CHARS else ch for ch in flat)


def save(result: RunResult) -> None:
    """Store the run and point the URL at it; a store failure is shown, the result stays on screen."""
    try:
        services.store().save_run(result)
    except FusionError as exc:
        st.error(f"The run could not be saved: {exc}")
        return
    st.query_params["run"] = result.run_id
