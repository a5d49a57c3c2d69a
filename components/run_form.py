"""The Playground's inputs: prompt, sampling mode, fusor options and presets, Best-of-N selector."""

from __future__ import annotations

import streamlit as st

from components import services
from fusion_core.fusion import PRESETS, STRENGTHS, FusionOptions
from fusion_core.sampling import MAX_CANDIDATES
from fusion_core.selection import SELECTORS
from fusion_core.types import RunConfig

SINGLE, POOL = "One model × N samples", "Teacher pool"
SELECTOR_LABELS = {
    "judge": "LLM judge (pointwise)",
    "pairwise": "LLM judge (pairwise, both orders)",
    "mbr": "MBR consensus (chrF)",
    "majority": "Majority vote (short answers)",
    "oracle": "Oracle (closest to a reference)",
    "reward": "Reward-model endpoint",
}


def _apply_preset() -> None:
    options = FusionOptions.from_dict(PRESETS[st.session_state["fx_preset"]])
    st.session_state.update(
        fx_strength=options.strength,
        fx_reasoning=options.reasoning,
        fx_shuffle=options.shuffle,
        fx_persona=options.persona,
        fx_instructions=options.instructions,
    )


def _use_example() -> None:
    choice = st.session_state.get("fx_example")
    if choice is not None:
        st.session_state["fx_prompt"] = services.examples()[choice]["prompt"]


def fusion_options_form() -> FusionOptions:
    """Preset plus editable fusor options; a preset fills the fields, which stay editable."""
    if "fx_strength" not in st.session_state:
        st.session_state["fx_preset"] = "Paper default"
        _apply_preset()
    st.selectbox("Preset", list(PRESETS), key="fx_preset", on_change=_apply_preset)
    st.radio(
        "Fusion strength",
        list(STRENGTHS),
        key="fx_strength",
        horizontal=True,
        help="integrate everything ↔ discard aggressively",
    )
    a, b = st.columns(2)
    a.toggle("Think first, keep only the final answer", key="fx_reasoning")
    b.toggle("Shuffle candidate order", key="fx_shuffle")
    st.text_input("Tone or persona", key="fx_persona", placeholder="e.g. a patient teacher")
    st.text_area("Extra instructions / constitution", key="fx_instructions", height=80)
    st.number_input("Fusor max tokens", 16, 8192, 512, step=16, key="fx_max_tokens")
    return current_options()


def current_options() -> FusionOptions:
    """The fusor options as the Playground's widgets hold them now."""
    state = st.session_state
    return FusionOptions(
        instructions=state.get("fx_instructions", ""),
        persona=state.get("fx_persona", ""),
        strength=state.get("fx_strength", "balanced"),
        reasoning=bool(state.get("fx_reasoning", False)),
        shuffle=bool(state.get("fx_shuffle", False)),
        max_tokens=int(state.get("fx_max_tokens", 512)),
    )


def run_form() -> RunConfig:
    """Render the inputs and return the configuration they describe."""
    defaults = services.defaults()
    examples = services.examples()
    st.selectbox(
        "Example prompts",
        range(len(examples)),
        index=None,
        key="fx_example",
        format_func=lambda i: f"[{examples[i]['language']}] {examples[i]['prompt']}",
        placeholder="Pick an example (English, français, Deutsch, español, 日本語, 中文, العربية …)",
        on_change=_use_example,
    )
    st.session_state.setdefault("fx_prompt", examples[0]["prompt"])
    prompt = st.text_area("Prompt", key="fx_prompt", height=110)
    sampling, fusor, selection = st.columns(3, gap="medium")
    with sampling:
        st.markdown("**Sampling**")
        mode = st.segmented_control("Mode", [SINGLE, POOL], default=SINGLE, key="fx_mode") or SINGLE
        if mode == SINGLE:
            models = [st.text_input("Model", defaults["model"], key="fx_model")]
            n = st.slider("Candidates (N)", 1, MAX_CANDIDATES, 4, key="fx_n")
        else:
            raw = st.text_area("Teachers (one litellm model per line)", defaults["model"], key="fx_teachers")
            models = [line.strip() for line in raw.splitlines() if line.strip()]
            n = st.number_input("Samples per teacher", 1, MAX_CANDIDATES, 1, key="fx_k")
        temperature = st.slider("Sampler temperature", 0.0, 2.0, 0.8, 0.05, key="fx_temperature")
        max_tokens = st.number_input("Max tokens per candidate", 16, 8192, 256, step=16, key="fx_cand_tokens")
    with fusor:
        st.markdown("**Fusor**")
        fusor_model = st.text_input("Fusor model", defaults["fusor"], key="fx_fusor")
        with st.expander("Fusor options", expanded=False):
            options = fusion_options_form()
    with selection:
        st.markdown("**Best-of-N**")
        selector = st.selectbox("Selector", SELECTORS, format_func=SELECTOR_LABELS.get, key="fx_selector")
        judge = st.text_input(
            "Judge model", defaults["judge"], key="fx_judge", disabled=selector not in ("judge", "pairwise")
        )
        reference = st.text_area(
            "Reference answer (oracle)", key="fx_reference", height=68, disabled=selector != "oracle"
        )
    return RunConfig(
        prompt=prompt,
        models=models,
        n=int(n),
        mode="teachers" if mode == POOL else "samples",
        temperature=temperature,
        max_tokens=int(max_tokens),
        fusor_model=fusor_model.strip(),
        fusion=options.to_dict(),
        selector=selector,
        judge_model=judge.strip(),
        reference=reference or None,
    )
