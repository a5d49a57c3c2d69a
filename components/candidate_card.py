"""A candidate's card: model, latency, tokens, cost, Best-of-N score and badge, or its error."""

from __future__ import annotations

import html

import streamlit as st

from fusion_core.types import Candidate

BOX = (
    "white-space:pre-wrap;overflow-wrap:anywhere;font-size:0.92rem;line-height:1.45;"
    "padding:0.5rem 0.6rem;border-radius:0.4rem;border-left:6px solid {color};background:#fafafa"
)


def text_block(text: str, color: str = "#d0d0d0") -> None:
    """Untrusted text (LLM output) as escaped, line-preserving HTML."""
    st.html(f'<div class="fx-text" style="{BOX.format(color=color)}">{html.escape(text, quote=True)}</div>')


def candidate_card(candidate: Candidate, *, score: float | None, is_pick: bool, color: str) -> None:
    """One bordered card for one candidate."""
    with st.container(border=True):
        pick = " :orange-badge[:material/star: Best-of-N]" if is_pick else ""
        st.markdown(f"**Candidate {candidate.index + 1}**{pick}  \n`{candidate.model}`")
        facts = [f"{candidate.latency_s:.1f}s", f"{candidate.prompt_tokens}+{candidate.completion_tokens} tok"]
        if candidate.cost:
            facts.append(f"${candidate.cost:.4f}")
        if score is not None:
            facts.append(f"score {score:.3g}")
        if candidate.params.seed is not None:
            facts.append(f"seed {candidate.params.seed}")
        st.caption(" · ".join(facts))
        if candidate.error:
            st.error(candidate.error, icon=":material/error:")
        else:
            text_block(candidate.text, color)
