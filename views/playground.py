"""Playground: one prompt, N candidates, the Best-of-N pick and the fused answer side by side."""

import streamlit as st

from components import runner, services
from components.admin import require_admin
from components.iterate import iterate_panel
from components.run_form import run_form
from components.run_view import run_view
from fusion_core.errors import FusionError

st.title("Playground")
st.caption("Best-of-N *takes* one candidate; Fusion-of-N *makes* a new answer from all of them.")
if not require_admin("run models in the Playground"):
    st.page_link("views/arena.py", label="Vote in the Arena (open to everyone)", icon=":material/how_to_vote:")
    st.stop()

wanted = st.query_params.get("run")
current = st.session_state.get("run")
if wanted and (current is None or current.run_id != wanted):
    try:
        st.session_state["run"] = services.store().get_run(wanted)
    except FusionError as exc:
        st.error(f"Cannot open run {wanted}: {exc}")

config = run_form()
if st.button("Run", type="primary", icon=":material/play_arrow:"):
    result = runner.run_live(config)
    if result is not None:
        runner.save(result)
        st.session_state["run"] = result

result = st.session_state.get("run")
if result is not None:
    st.divider()
    run_view(result)
    iterate_panel(result)
