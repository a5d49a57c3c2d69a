"""Playground: one prompt, N candidates, the Best-of-N pick and the fused answer side by side."""

import asyncio

import streamlit as st

from components import services
from fusion_core import engine
from fusion_core.errors import FusionError
from fusion_core.types import RunConfig

cfg = services.settings()
st.title("Fusion Explorer")
st.caption("Best-of-N *takes* one candidate; Fusion-of-N *makes* a new answer from all of them.")

with st.form("run"):
    prompt = st.text_area("Prompt", "Why is the sky blue?", height=100)
    left, mid, right = st.columns(3)
    n = left.slider("Candidates (N)", 1, 16, 3)
    model = mid.text_input("Sampling model", cfg.default_model)
    fusor = right.text_input("Fusor model", cfg.fusor_model)
    max_tokens = left.number_input("Max tokens per candidate", 16, 4096, 256, step=16)
    selector = mid.selectbox("Best-of-N selector", ["judge", "mbr", "pairwise", "majority"])
    submitted = st.form_submit_button("Run", type="primary")

if submitted:
    config = RunConfig(
        prompt=prompt,
        models=[model],
        n=n,
        max_tokens=int(max_tokens),
        fusor_model=fusor,
        selector=selector,
        judge_model=cfg.judge_model,
        fusion={"max_tokens": 2 * int(max_tokens)},
    )
    try:
        with st.spinner("Sampling, selecting and fusing…"):
            result = asyncio.run(engine.run(config, services.completer(), concurrency=cfg.concurrency))
        services.store().save_run(result)
    except FusionError as exc:
        st.error(str(exc))
        st.stop()
    st.session_state["result"] = result

result = st.session_state.get("result")
if result is not None:
    cands, bon_col, fused_col = st.columns(3)
    with cands:
        st.subheader("Candidates")
        for c in result.candidates:
            pick = " ⭐ Best-of-N" if result.bon and result.bon.index == c.index else ""
            with st.container(border=True):
                st.markdown(f"**Candidate {c.index + 1}**{pick} · {c.latency_s:.1f}s")
                if c.error:
                    st.error(c.error)
                else:
                    st.text(c.text)
    with bon_col:
        st.subheader("Best-of-N")
        if result.bon:
            st.caption(result.bon.rationale)
            st.text(result.candidates[result.bon.index].text)
        else:
            st.error(result.bon_error)
    with fused_col:
        st.subheader("Fusion-of-N")
        if result.fusion:
            for warning in result.fusion.warnings:
                st.warning(warning)
            st.text(result.fusion.text)
        else:
            st.error(result.fusion_error)
