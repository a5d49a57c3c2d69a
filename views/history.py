"""History: stored runs as a searchable, filterable table; open one, or delete it."""

import pandas as pd
import streamlit as st

from components import services
from components.admin import require_admin
from components.run_view import run_view
from fusion_core.errors import FusionError

st.title("History")
store = services.store()

search, model, since = st.columns([2, 1, 1])
text = search.text_input("Search prompts", placeholder="words in the prompt")
try:
    rows = store.list_runs(limit=1000, search=text or None)
except FusionError as exc:
    st.error(str(exc))
    st.stop()

table = pd.DataFrame(
    [
        {
            "run": r.run_id,
            "created (UTC)": pd.Timestamp(r.created_at),
            "prompt": " ".join(r.prompt.split())[:120],
            "models": ", ".join(r.models),
            "fusor": r.fusor_model,
            "selector": r.selector,
            "language": r.language or "",
            "N": r.n_candidates,
            "failed": r.n_failed,
            "fused": r.has_fusion,
            "cost ($)": r.cost,
        }
        for r in rows
    ]
)
if table.empty:
    st.info("No runs yet: run one in the Playground.")
    st.stop()

all_models = sorted({m for r in rows for m in r.models} | {r.fusor_model for r in rows})
chosen = model.multiselect("Model", all_models)
languages = sorted({lang for lang in table["language"] if lang})
picked_languages = since.multiselect("Language", languages) if languages else []
first, last = table["created (UTC)"].min().date(), table["created (UTC)"].max().date()
dates = st.date_input("Date range", (first, last), min_value=first, max_value=last)

view = table
if chosen:
    wanted = set(chosen)
    using = {r.run_id for r in rows if wanted & {*r.models, r.fusor_model}}  # exact names, not substrings
    view = view[view["run"].isin(using)]
if picked_languages:
    view = view[view["language"].isin(picked_languages)]
if isinstance(dates, tuple) and len(dates) == 2:
    day = view["created (UTC)"].dt.date
    view = view[(day >= dates[0]) & (day <= dates[1])]

st.caption(f"{len(view)} of {len(table)} runs")
picked = st.dataframe(
    view,
    hide_index=True,
    width="stretch",
    on_select="rerun",
    selection_mode="single-row",
    key="history_table",
    column_config={"created (UTC)": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")},
)
selected = picked.selection.rows if picked else []
if selected:
    run_id = view.iloc[selected[0]]["run"]
    left, right = st.columns([1, 1])
    left.page_link(
        "views/playground.py",
        label="Open in the Playground",
        icon=":material/open_in_new:",
        query_params={"run": run_id},
    )
    with right:
        may_delete = require_admin("delete runs")
    if may_delete and right.button("Delete this run", icon=":material/delete:", type="secondary"):
        store.delete_run(run_id)
        st.toast(f"Deleted run {run_id}")
        st.rerun()
    try:
        run_view(store.get_run(run_id), key=f"hist-{run_id}")
    except FusionError as exc:
        st.error(str(exc))
