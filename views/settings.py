"""Settings: which providers have keys (never the keys), default models, fusor presets, database."""

import os

import streamlit as st
from sqlalchemy.engine import make_url

from components import services
from fusion_core.fusion import PRESETS, FusionOptions, instructions
from fusion_core.settings import LOCAL_MODEL

st.title("Settings")
cfg = services.settings()

st.subheader("Providers")
st.caption(
    "Keys come from environment variables or `.streamlit/secrets.toml`. They are used for calls only: "
    "never shown, stored, logged or exported."
)
st.dataframe(
    [
        {"provider": name, "environment variable": var, "key": "set" if os.environ.get(var) else "not set"}
        for name, var in services.PROVIDER_KEYS.items()
    ],
    hide_index=True,
    width="stretch",
)
present = cfg.local.gguf_path.is_file()
st.markdown(
    f"Embedded model `{LOCAL_MODEL}` ({cfg.local.gguf_path.name}): "
    + ("available offline." if present else "**missing** — run `make model`.")
)

st.subheader("Default models")
st.caption("For this browser session; any litellm model string, `provider/name@http://host/v1` for a custom server.")
defaults = services.defaults()
with st.form("default_models"):
    model = st.text_input("Sampling model", defaults["model"])
    fusor = st.text_input("Fusor model", defaults["fusor"])
    judge = st.text_input("Judge model", defaults["judge"])
    if st.form_submit_button("Save defaults"):
        defaults.update(model=model.strip(), fusor=fusor.strip(), judge=judge.strip())
        for key in ("fx_model", "fx_fusor", "fx_judge"):
            st.session_state.pop(key, None)
        st.success("Defaults saved for this session.")

st.subheader("Fusor prompt presets")
for name, values in PRESETS.items():
    with st.expander(name):
        st.code(instructions(FusionOptions.from_dict(values), k=4), language=None, wrap_lines=True)

st.subheader("Database")
url = make_url(cfg.database_url)
st.code(url.render_as_string(hide_password=True), language=None)
st.caption("Set `FUSION_DATABASE_URL` (e.g. `postgresql://user@host/db`) to share runs; SQLite is the default.")
