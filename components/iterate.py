"""Re-fuse and re-select the same candidates without sampling again."""

from __future__ import annotations

import streamlit as st

from components import runner, services
from components.run_form import SELECTOR_LABELS, current_options
from fusion_core import engine
from fusion_core.selection import SELECTORS, SelectorConfig
from fusion_core.types import RunResult


def _adopt(result: RunResult | None) -> None:
    if result is not None:
        runner.save(result)
        st.session_state["run"] = result
        st.rerun()


def iterate_panel(result: RunResult) -> None:
    """Edit the fusor prompt or options, or pick another selector, on this run's candidates."""
    st.subheader("Iterate on the same candidates")
    refuse_tab, prompt_tab, reselect_tab = st.tabs(["Re-fuse with options", "Edit the fusor prompt", "Re-select"])
    completer = services.completer()
    with refuse_tab:
        fusor = st.text_input("Fusor model", result.config.fusor_model, key="it_fusor")
        st.caption("Uses the fusor options set above (preset, strength, reasoning, persona, instructions).")
        if st.button("Re-fuse", key="it_refuse"):
            options = current_options()
            _adopt(
                runner.refuse_live(
                    lambda on_delta: engine.refuse(
                        result, completer, fusor_model=fusor, options=options, on_delta=on_delta
                    ),
                    fusor,
                )
            )
    with prompt_tab:
        if result.fusion is None:
            st.info("This run has no fusor prompt yet (the fusion failed); re-fuse with options first.")
        else:
            edited = []
            for i, message in enumerate(result.fusion.messages):
                text = st.text_area(
                    f"{message['role']} message",
                    message["content"],
                    height=220 if i else 68,
                    key=f"it_msg_{result.run_id}_{i}",
                )
                edited.append({"role": message["role"], "content": text})
            if st.button("Re-fuse with this prompt", key="it_prompt"):
                _adopt(
                    runner.refuse_live(
                        lambda on_delta: engine.refuse(result, completer, messages=edited, on_delta=on_delta),
                        result.config.fusor_model,
                    )
                )
    with reselect_tab:
        method = st.selectbox("Selector", SELECTORS, format_func=SELECTOR_LABELS.get, key="it_selector")
        judge = st.text_input("Judge model", result.config.judge_model, key="it_judge")
        reference = st.text_area("Reference (oracle)", result.config.reference or "", key="it_reference")
        if st.button("Re-select", key="it_reselect"):
            selector = SelectorConfig(method=method, judge_model=judge, reference=reference or None)
            _adopt(runner.guarded("Re-select failed", lambda: engine.reselect(result, completer, selector)))
