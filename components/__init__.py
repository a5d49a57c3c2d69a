"""Reusable Streamlit UI pieces; they call fusion_core, never litellm directly."""
