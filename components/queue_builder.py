"""Organizer tools: build a comparison queue from stored runs, list queues, delete one."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from components import services
from fusion_core.errors import FusionError

PAIRS = {f"{a} vs {b}": (a, b) for a, b in (("fusion", "bon"), ("fusion", "sample"), ("bon", "sample"))}
ALL_LANGUAGES = "all languages"


def queue_builder() -> None:
    """Choose runs and system pairs, name the queue and build it."""
    store, votes = services.store(), services.votes()
    search = st.text_input("Search prompts", key="qb_search", placeholder="words in the prompt")
    try:
        rows = store.list_runs(limit=1000, search=search or None)
    except FusionError as exc:
        st.error(str(exc))
        return
    if not rows:
        st.info("No stored runs match: run some in the Playground (or with `python -m fusion_core run`) first.")
        return
    languages = sorted({r.language for r in rows if r.language})
    language = st.selectbox("Language", [ALL_LANGUAGES, *languages], key="qb_language")
    if language != ALL_LANGUAGES:
        rows = [r for r in rows if r.language == language]
    labels = {r.run_id: f"{r.run_id[:8]} · {' '.join(r.prompt.split())[:80]}" for r in rows}
    chosen = st.multiselect(
        "Runs (none chosen: all matching runs)", list(labels), format_func=labels.get, key="qb_runs"
    )
    pairs = st.multiselect("System pairs", list(PAIRS), default=["fusion vs bon"], key="qb_pairs")
    name, task = st.columns(2)
    queue = name.text_input("Queue name", value="default", max_chars=128, key="qb_queue")
    label = task.text_input("Task label (optional)", max_chars=128, key="qb_task")
    ids = chosen or list(labels)
    st.caption(f"{len(ids)} runs × {len(pairs)} pairs")
    if st.button("Build queue", type="primary", icon=":material/playlist_add:", disabled=not pairs):
        try:
            runs = [store.get_run(run_id) for run_id in ids]
            added = votes.build_queue(runs, [PAIRS[p] for p in pairs], queue, task=label or None)
        except FusionError as exc:
            st.error(str(exc))
            return
        st.success(f"Added {added} comparisons to queue {queue.strip()!r} (pairs already queued are skipped).")


def queue_table() -> None:
    """Every queue with its counts, and a guarded delete."""
    votes = services.votes()
    summaries = votes.queues()
    if not summaries:
        st.caption("No queues yet.")
        return
    table = pd.DataFrame([{"queue": q.name, "comparisons": q.comparisons, "votes": q.votes} for q in summaries])
    st.dataframe(table, hide_index=True, width="stretch")
    doomed = st.selectbox("Queue to delete", [q.name for q in summaries], key="qb_delete")
    sure = st.checkbox("Also delete its votes", key="qb_sure")
    if st.button("Delete queue", icon=":material/delete:", disabled=not sure):
        try:
            deleted = votes.delete_queue(doomed)
        except FusionError as exc:
            st.error(str(exc))
            return
        st.session_state.pop("qb_sure", None)
        st.toast(f"Deleted queue {doomed!r} ({deleted} comparisons)")
        st.rerun()
