"""Time, tokens and cost per stage of a run."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from fusion_core.types import RunResult


def summary_table(result: RunResult) -> pd.DataFrame:
    """One row per stage: seconds, prompt and completion tokens, cost."""
    rows = []
    for stage, usage in result.usage().items():
        rows.append(
            {
                "stage": stage,
                "seconds": round(result.timings.get(stage, 0.0), 2),
                "prompt tokens": usage.prompt_tokens,
                "completion tokens": usage.completion_tokens,
                "cost ($)": usage.cost,
            }
        )
    return pd.DataFrame(rows)


def run_summary(result: RunResult) -> None:
    """Headline metrics and the per-stage table."""
    table = summary_table(result)
    ok = sum(1 for c in result.candidates if c.ok)
    costs = [c for c in table["cost ($)"] if c is not None and not pd.isna(c)]
    a, b, c, d = st.columns(4)
    a.metric("Candidates", f"{ok}/{len(result.candidates)}")
    b.metric("Total time", f"{result.timings.get('total', sum(table['seconds'])):.1f}s")
    c.metric("Tokens", f"{int(table['prompt tokens'].sum() + table['completion tokens'].sum()):,}")
    d.metric("Cost", f"${sum(costs):.4f}" if costs else "unknown")
    st.dataframe(table, hide_index=True, width="stretch")
