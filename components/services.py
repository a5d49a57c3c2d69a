"""Process-wide resources for the app, built once with st.cache_resource (never mutated)."""

from __future__ import annotations

import streamlit as st

from fusion_core.llm import LiteLLMCompleter
from fusion_core.settings import Settings
from fusion_core.store import Store


@st.cache_resource
def settings() -> Settings:
    """Settings from the environment."""
    return Settings.from_env()


@st.cache_resource
def completer() -> LiteLLMCompleter:
    """The model seam (litellm is imported on the first call, not here)."""
    return LiteLLMCompleter(settings())


@st.cache_resource
def store() -> Store:
    """The run store."""
    return Store(settings().database_url)
