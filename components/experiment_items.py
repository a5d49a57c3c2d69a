"""An experiment's prompts as a table with their status; one opened with its candidates, pick and fused answer."""

from __future__ import annotations

import re
from typing import Any

import pandas as pd
import streamlit as st

from components.candidate_card import text_block
from fusion_core.batch_input import load_items
from fusion_core.errors import ConfigError
from fusion_core.experiments import Experiment
from fusion_core.render import colour

FUSION_COLOUR, BON_COLOUR = "#1c7ed6", "#f08c00"


def _one_line(text: str | None, width: int = 100) -> str:
    flat = " ".join((text or "").split())
    return flat if len(flat) <= width else flat[: width - 1] + "…"


def _input_prompts(experiment: Experiment) -> dict[str, str]:
    """Prompts of unfinished items, from the input file when it is still there."""
    if not experiment.input_path:
        return {}
    try:
        return {item.id: item.prompt for item in load_items(experiment.input_path).items}
    except ConfigError:
        return {}


def items_table(rows: list[dict[str, Any]], records: dict[str, dict[str, Any]], prompts: dict[str, str]):
    """One row per item: position, id, language, status, prompt and what it produced."""
    table = []
    for row in rows:
        record = records.get(row["item_id"]) or {}
        bon = record.get("bon") or {}
        table.append({
            "#": row["position"] + 1, "id": row["item_id"], "language": row["language"] or "", "status": row["status"],
            "prompt": _one_line(record.get("prompt") or prompts.get(row["item_id"])),
            "BON pick": None if bon.get("index") is None else bon["index"] + 1,
            "fused": bool((record.get("outputs") or {}).get("fusion")), "attempts": row["attempts"],
            "error": _one_line(row["error"], 160),
        })  # fmt: skip
    return pd.DataFrame(table)


def items_tab(experiment: Experiment, rows: list[dict[str, Any]], records: list[dict[str, Any]]) -> None:
    """The table of prompts; the chosen one (a row click or the picker) opened below."""
    by_id = {r["id"]: r for r in records}
    unfinished = any(r["item_id"] not in by_id for r in rows)
    table = items_table(rows, by_id, _input_prompts(experiment) if unfinished else {})
    key = f"exp_item_{experiment.id}"
    opened = [i for i in table["id"] if i in by_id] if not table.empty else []

    def pick() -> None:
        selected = st.session_state[f"{key}_table"].selection.rows
        if selected and table.iloc[selected[0]]["id"] in by_id:
            st.session_state[key] = table.iloc[selected[0]]["id"]

    st.dataframe(
        table, hide_index=True, width="stretch", height=300, on_select=pick, selection_mode="single-row",
        key=f"{key}_table",
    )  # fmt: skip
    if not opened:
        st.caption("No prompt has finished yet.")
        return
    labels = {i: f"{i} · {_one_line(by_id[i].get('prompt'), 70)}" for i in opened}
    chosen = st.selectbox("Open a prompt", opened, index=None, format_func=labels.get, key=key,
                          placeholder="Click a row or choose a finished prompt")  # fmt: skip
    if chosen is not None:
        item_view(by_id[chosen])


def _candidate(candidate: dict[str, Any], is_pick: bool, share: float | None) -> None:
    i = candidate["index"]
    with st.container(border=True):
        badge = " :orange-badge[:material/star: Best-of-N]" if is_pick else ""
        st.markdown(f"**Candidate {i + 1}**{badge}")
        facts = [f"{candidate.get('prompt_tokens', 0)}+{candidate.get('completion_tokens', 0)} tok"]
        if candidate.get("latency_s") is not None:
            facts.append(f"{candidate['latency_s']:.1f}s")
        if share is not None:
            facts.append(f"{share:.0%} of the fused answer")
        st.caption(" · ".join(facts))
        if candidate.get("error"):
            st.error(candidate["error"], icon=":material/error:")
        else:
            text_block(candidate.get("text") or "", colour(i))


def item_view(record: dict[str, Any]) -> None:
    """One finished prompt: prompt, candidates, the Best-of-N pick and the fused answer, all escaped."""
    language = re.sub(r"[^\w-]", "", record.get("language") or "")  # shown as markdown: keep it a plain tag
    facts = [language or "no language", record.get("status", "")]
    if record.get("time_s") is not None:
        facts.append(f"{record['time_s']:.1f} s")
    st.caption(" · ".join(facts))
    if record.get("run_id"):
        st.page_link("views/playground.py", label="Open this run in the Playground", icon=":material/open_in_new:",
                     query_params={"run": record["run_id"]})  # fmt: skip
    st.markdown("**Prompt**")
    text_block(record.get("prompt") or "")
    for field, label in (("reference", "Reference"), ("answer", "Gold answer")):
        if record.get(field):
            st.markdown(f"**{label}**")
            text_block(record[field], "#37b24d")
    if record.get("status") == "failed":
        st.error(f"This prompt failed: {record.get('error')}")
        return
    shares = (record.get("attribution") or {}).get("shares") or {}
    bon = record.get("bon") or {}
    outputs = record.get("outputs") or {}
    left, middle, right = st.columns([1.1, 1, 1.1], gap="medium")
    with left:
        st.markdown(f"**Candidates ({len(record.get('candidates') or [])})**")
        with st.container(height=560, border=False):
            for c in record.get("candidates") or []:
                _candidate(c, c["index"] == bon.get("index"), shares.get(str(c["index"])))
    with middle:
        st.markdown("**Best-of-N**")
        if bon:
            st.caption(f"{bon.get('method')} · candidate {bon['index'] + 1}")
            text_block(outputs.get("bon") or "", BON_COLOUR)
            if bon.get("rationale"):
                with st.expander("Why this one"):
                    text_block(bon["rationale"])
        else:
            st.error(f"Best-of-N selection failed: {record.get('bon_error')}")
    with right:
        st.markdown("**Fusion-of-N**")
        fusion = record.get("fusion") or {}
        if fusion.get("text"):
            novel = shares.get("novel")
            st.caption(f"fused by {fusion.get('model')}" + ("" if novel is None else f" · {novel:.0%} novel"))
            for warning in fusion.get("warnings") or []:
                st.warning(warning, icon=":material/warning:")
            text_block(fusion["text"], FUSION_COLOUR)
        else:
            st.error(f"Fusion failed: {record.get('fusion_error')}")
    _details(record)


def _details(record: dict[str, Any]) -> None:
    outputs = record.get("outputs") or {}
    scaled = [e for e in record.get("scaling") or [] if f"fusion@{e['n']}" in outputs or f"bon@{e['n']}" in outputs]
    if scaled:
        with st.expander(f"N-scaling: fusion and Best-of-N on the first 1…{scaled[-1]['n']} candidates"):
            for entry in scaled:
                k = entry["n"]
                st.caption(f"N = {k} · Best-of-N picked candidate {(entry.get('bon_index') or 0) + 1}")
                text_block(outputs.get(f"fusion@{k}") or entry.get("fusion_error") or "", FUSION_COLOUR)
    if (record.get("baseline") or {}).get("text"):
        with st.expander("Baseline answer"):
            text_block(record["baseline"]["text"])
    systems = (record.get("metrics") or {}).get("systems")
    if systems:
        with st.expander("chrF++ and BLEU"):
            st.dataframe(pd.DataFrame(systems).T.round(2), width="stretch")
    if record.get("correct"):
        with st.expander("Correct answers"):
            st.dataframe(pd.Series(record["correct"], name="correct").to_frame(), width="stretch")
    if record.get("judgements"):
        with st.expander(f"Judge verdicts ({len(record['judgements'])})"):
            columns = ["system_a", "system_b", "first", "verdict", "winner", "error", "raw"]
            st.dataframe(pd.DataFrame(record["judgements"]).reindex(columns=columns), hide_index=True, width="stretch")
