"""Fusion Explorer: page config, shared settings and sidebar, navigation."""

import streamlit as st

from components import services

st.set_page_config(page_title="Fusion Explorer", page_icon="🧬", layout="wide")

pages = [
    st.Page("views/playground.py", title="Playground", icon=":material/science:", default=True),
    st.Page("views/history.py", title="History", icon=":material/history:"),
    st.Page("views/arena.py", title="Arena", icon=":material/how_to_vote:"),
    st.Page("views/leaderboard.py", title="Leaderboard", icon=":material/leaderboard:"),
    st.Page("views/experiments.py", title="Experiments", icon=":material/experiment:"),
    st.Page("views/settings.py", title="Settings", icon=":material/settings:"),
]
page = st.navigation(pages)

cfg = services.settings()
with st.sidebar:
    st.markdown("### 🧬 Fusion Explorer")
    st.caption(
        "Best-of-N *selects* one of N answers; Fusion-of-N *writes* one new answer from all of them, "
        "keeping the best segments and discarding the worst."
    )
    defaults = services.defaults()
    st.caption(f"Sampler `{defaults['model']}` · fusor `{defaults['fusor']}` · judge `{defaults['judge']}`")

page.run()
