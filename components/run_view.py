"""A whole run side by side: candidates, the Best-of-N pick, the fused answer with attribution."""

from __future__ import annotations

import streamlit as st

from components.attribution_view import attribution_view
from components.candidate_card import candidate_card, text_block
from components.run_summary import run_summary
from fusion_core.engine import is_self_fusion
from fusion_core.render import colour
from fusion_core.types import RunResult


def run_view(result: RunResult, key: str = "run") -> None:
    """Render a run; every model output is shown as escaped text."""
    if is_self_fusion(result.config):
        st.info(
            "The fusor is the sampling model itself: this is the paper's self-refinement case "
            "(one model fusing its own samples).",
            icon=":material/info:",
        )
    ok = [c for c in result.candidates if c.ok]
    failed = len(result.candidates) - len(ok)
    if failed:
        st.warning(f"{failed} of {len(result.candidates)} candidates failed; the run used the other {len(ok)}.")
    scores = result.bon.scores if result.bon else [None] * len(result.candidates)
    pick = result.bon.index if result.bon else None
    left, middle, right = st.columns([1.1, 1, 1.2], gap="medium")
    with left:
        st.subheader(f"Candidates ({len(result.candidates)})")
        with st.container(height=720, border=False):
            for c in result.candidates:
                score = scores[c.index] if c.index < len(scores) else None
                candidate_card(c, score=score, is_pick=c.index == pick, color=colour(c.index))
    with middle:
        st.subheader("Best-of-N")
        if result.bon:
            st.caption(f"{result.bon.method} · {result.bon.rationale}")
            st.badge(f"Candidate {pick + 1}", icon=":material/star:", color="orange")
            text_block(result.candidates[pick].text, colour(pick))
        else:
            st.error(f"Best-of-N selection failed: {result.bon_error}")
    with right:
        st.subheader("Fusion-of-N")
        if result.fusion:
            st.caption(f"fused by `{result.fusion.model}`")
            for warning in result.fusion.warnings:
                st.warning(warning, icon=":material/warning:")
            attribution_view(
                result.fusion.text,
                [c.text for c in result.candidates],
                labels=[f"Candidate {c.index + 1}" for c in result.candidates],
                attribution=result.attribution,
                key=f"{key}-attr",
            )
        else:
            st.error(f"Fusion failed: {result.fusion_error}")
    st.divider()
    run_summary(result)
