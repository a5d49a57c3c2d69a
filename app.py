"""Fusion Explorer: page config, shared settings, navigation."""

import streamlit as st

st.set_page_config(page_title="Fusion Explorer", page_icon="🧬", layout="wide")

pages = [st.Page("pages/playground.py", title="Playground", icon="🧪", default=True)]
st.navigation(pages).run()
