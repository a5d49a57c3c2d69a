"""The fused answer coloured by source candidate, a legend of shares, and a diff against any candidate."""

from __future__ import annotations

import streamlit as st

from fusion_core import render
from fusion_core.attribution import Attribution, attribute
from fusion_core.diffview import diff_texts


def attribution_view(
    fused: str,
    candidates: list[str],
    labels: list[str] | None = None,
    attribution: dict | Attribution | None = None,
    key: str = "attr",
) -> None:
    """Render the attributed answer with `st.html` (sanitized); `labels` are display names, one per candidate."""
    names = labels if labels and len(labels) == len(candidates) else render.labels(len(candidates))
    if isinstance(attribution, dict):
        attribution = Attribution.from_dict(attribution)
    if attribution is None:
        attribution = attribute(fused, candidates)
    st.html(render.legend_html(attribution, names) + render.attributed_html(fused, attribution, names))
    choice = st.selectbox(
        "Diff against",
        [None, *range(len(candidates))],
        format_func=lambda i: "None" if i is None else names[i],
        key=f"{key}-diff",
    )
    if choice is not None:
        st.caption(f"Green: only in the fused answer · red, struck through: only in {names[choice]}")
        st.html(render.diff_html(diff_texts(candidates[choice], fused)))
