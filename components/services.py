"""Process-wide resources for the app, built once with st.cache_resource (never mutated)."""

from __future__ import annotations

import json
import os

import streamlit as st

from fusion_core.llm import LiteLLMCompleter
from fusion_core.settings import PROJECT_ROOT, Settings
from fusion_core.store import Store
from fusion_core.votes import VoteStore

PROVIDER_KEYS = {
    "OpenAI": "OPENAI_API_KEY",
    "Anthropic": "ANTHROPIC_API_KEY",
    "Google Gemini": "GEMINI_API_KEY",
    "Mistral": "MISTRAL_API_KEY",
    "Cohere": "COHERE_API_KEY",
    "Groq": "GROQ_API_KEY",
    "Together AI": "TOGETHERAI_API_KEY",
    "OpenRouter": "OPENROUTER_API_KEY",
    "DeepSeek": "DEEPSEEK_API_KEY",
    "xAI": "XAI_API_KEY",
}


@st.cache_resource
def settings() -> Settings:
    """Settings from the environment, after Streamlit secrets have filled in missing API keys."""
    load_secret_keys()
    return Settings.from_env()


def load_secret_keys() -> None:
    """Copy provider keys from Streamlit secrets into the environment (where litellm reads them), never over one set."""
    try:
        secrets = dict(st.secrets)
    except Exception:  # noqa: BLE001 - a missing or malformed secrets.toml must not break the app
        return
    for name in PROVIDER_KEYS.values():
        value = secrets.get(name)
        if isinstance(value, str) and value and not os.environ.get(name):
            os.environ[name] = value


@st.cache_resource
def completer() -> LiteLLMCompleter:
    """The model seam (litellm is imported on the first model call, not here)."""
    return LiteLLMCompleter(settings())


@st.cache_resource
def store() -> Store:
    """The run store."""
    return Store(settings().database_url)


@st.cache_resource
def votes() -> VoteStore:
    """The vote store, on the run store's database."""
    return VoteStore(store())


@st.cache_data
def examples() -> list[dict]:
    """Example prompts shipped in data/examples.jsonl."""
    path = PROJECT_ROOT / "data" / "examples.jsonl"
    with path.open(encoding="utf-8") as lines:
        return [json.loads(line) for line in lines if line.strip()]


def defaults() -> dict[str, str]:
    """This session's default models (changed on the Settings page)."""
    if "fx_defaults" not in st.session_state:
        cfg = settings()
        st.session_state["fx_defaults"] = {
            "model": cfg.default_model,
            "fusor": cfg.fusor_model,
            "judge": cfg.judge_model,
        }
    return st.session_state["fx_defaults"]
