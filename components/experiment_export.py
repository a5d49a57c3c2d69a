"""Downloads of an experiment: results.jsonl, SFT examples of the fused answers, DPO pairs, Parquet tables."""

from __future__ import annotations

import re
from typing import Any

import streamlit as st

from fusion_core.experiments import Experiment
from fusion_core.exports import export_bytes, jsonl_bytes, judge_pairs, sft_records

DOWNLOAD = ":material/download:"


@st.cache_data(ttl=3600, max_entries=8, show_spinner=False)
def export_files(
    _records: list[dict[str, Any]], experiment_id: str, finished: int, database: str
) -> dict[str, tuple[bytes, str]]:
    """Each download's bytes and a note on what it left out (experiment, finished prompts and database key it)."""
    sft = sft_records(_records, "fusion", experiment_id=experiment_id)
    dpo = judge_pairs(_records, experiment_id=experiment_id)
    return {
        "results": (jsonl_bytes(_records), ""),
        "sft": (jsonl_bytes(sft.rows), sft.skipped_text()),
        "dpo": (jsonl_bytes(dpo.rows), dpo.skipped_text()),
        "parquet": (export_bytes("parquet", _records), ""),
    }


def export_tab(experiment: Experiment, records: list[dict[str, Any]], database: str) -> None:
    """Download buttons; every file is built from the finished prompts' records."""
    if not records:
        st.caption("Nothing to export before a prompt has finished.")
        return
    files = export_files(records, experiment.id, len(records), database)
    stem = re.sub(r"[^A-Za-z0-9_-]+", "-", experiment.name).strip("-") or "experiment"
    rows = [
        ("results", "Results (JSONL)", f"{stem}-results.jsonl", "application/jsonl",
         "one line per finished prompt: candidates, picks, fused answers, metrics, verdicts"),
        ("sft", "SFT data (JSONL)", f"{stem}-sft.jsonl", "application/jsonl",
         "chat messages: the prompt and its fused answer"),
        ("dpo", "DPO pairs (JSONL)", f"{stem}-dpo.jsonl", "application/jsonl",
         "prompt / chosen / rejected from judge verdicts that agree in both orders"),
        ("parquet", "Tables (Parquet, zip)", f"{stem}-tables.zip", "application/zip",
         "items, candidates, systems, scaling, judgements, attribution"),
    ]  # fmt: skip
    for kind, label, filename, mime, what in rows:
        data, skipped = files[kind]
        left, right = st.columns([1, 3], vertical_alignment="center")
        left.download_button(label, data, filename, mime, icon=DOWNLOAD, key=f"exp_dl_{kind}", width="stretch")
        right.caption(what + (f" · {skipped}" if skipped else ""))
    st.caption(f"The same from the command line: `python -m fusion_core export --experiment {experiment.id} "
               "--format sft|dpo|parquet --out PATH`.")  # fmt: skip
