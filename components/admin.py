"""The admin gate for public demos: pages that spend model calls or change data ask for FUSION_ADMIN_PASSWORD."""

from __future__ import annotations

import hmac
import re

import streamlit as st

from components import services

UNLOCKED = "fx_admin_unlocked"


def require_admin(feature: str) -> bool:
    """True when no admin password is set or this session entered it; otherwise show a password form, False."""
    password = services.settings().admin_password
    if not password or st.session_state.get(UNLOCKED):
        return True
    slug = re.sub(r"\W+", "_", feature.lower()).strip("_")
    with st.form(f"fx_admin_{slug}", clear_on_submit=True):
        st.caption(f"An admin password is needed to {feature}.")
        typed = st.text_input("Admin password", type="password", key=f"fx_admin_pw_{slug}")
        submitted = st.form_submit_button("Unlock", icon=":material/lock_open:")
    if not submitted:
        return False
    if hmac.compare_digest(typed.encode("utf-8"), password.encode("utf-8")):
        st.session_state[UNLOCKED] = True
        st.rerun()
    st.error("Wrong admin password.")
    return False
