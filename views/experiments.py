"""Experiments: start batch runs, follow them, and browse win rates, N-scaling, attribution and every item."""

import streamlit as st

from components import services
from components.admin import UNLOCKED, require_admin
from components.experiment_data import config_key, experiment_data
from components.experiment_export import export_tab
from components.experiment_items import items_tab
from components.experiment_launcher import launcher
from components.experiment_process import out_dirs
from components.experiment_progress import progress_panel, started_experiment
from components.experiment_tabs import attribution_tab, oracle_tab, overview_tab, scaling_tab, win_rates_tab
from fusion_core.errors import FusionError
from fusion_core.experiments import ExperimentStore
from fusion_core.judging import DEFAULT_JUDGE_PROMPT

CLI = "python -m fusion_core batch --input data/experiments/translation.jsonl --out data/runs/mt --n 4 --scaling"
TABS = ["Overview", "Win rates", "N-scaling", "Attribution", "Fusion vs oracle", "Items", "Export"]

st.title("Experiments")
st.caption("Fusion-of-N against Best-of-N over a whole data set: judge win rates by language, quality as N grows, "
           "where fused answers come from, and whether fusion beats the best single candidate.")  # fmt: skip
settings = services.settings()
experiments = ExperimentStore(services.store())
try:
    found = experiments.list()
    with st.expander("Start a batch", expanded=not found, icon=":material/rocket_launch:"):
        if require_admin("start batch experiments"):
            launcher(settings)
    started = started_experiment()
    if started:
        st.session_state["exp_choice"] = started
        found = experiments.list()
except FusionError as exc:
    st.error(str(exc))
    st.stop()

if not found:
    st.info("No experiments yet. Start a batch above, or run one from the command line (it resumes when run "
            "again, and shows up here when it uses the same database):", icon=":material/science:")  # fmt: skip
    st.code(CLI, language="bash")
    st.stop()

by_id = {e.id: e for e in found}
if st.session_state.get("exp_choice") not in by_id:
    st.session_state.pop("exp_choice", None)
choice = st.selectbox(
    "Experiment",
    list(by_id),
    format_func=lambda i: (
        f"{by_id[i].name} · {by_id[i].created_at:%Y-%m-%d %H:%M} UTC · "
        f"{by_id[i].counts.get('done', 0)}/{by_id[i].n_items} done"
    ),
    key="exp_choice",
)
experiment = by_id[choice]
may_control = not settings.admin_password or bool(st.session_state.get(UNLOCKED))
progress_panel(experiment, out_dirs(settings).get(experiment.id), settings, may_control)

with st.expander("Configuration"):
    st.json({k: v for k, v in experiment.config.items() if k != "judge_prompt"}, expanded=True)
    prompt = experiment.config.get("judge_prompt")
    st.markdown("**Pairwise judge prompt**" + ("" if prompt else " (the default)"))
    st.code(prompt or DEFAULT_JUDGE_PROMPT, language=None, wrap_lines=True)

try:
    data = experiment_data(
        experiments, settings.database_url, experiment.id, experiment.finished, config_key(experiment.config)
    )
    items = experiments.items(experiment.id)
except FusionError as exc:
    st.error(f"Cannot read experiment {experiment.name}: {exc}")
    st.stop()

overview, wins, scaling, attribution, oracle, item_list, export = st.tabs(TABS)
with overview:
    overview_tab(data, experiment)
with wins:
    win_rates_tab(data)
with scaling:
    scaling_tab(data)
with attribution:
    attribution_tab(data, experiment.id)
with oracle:
    oracle_tab(data)
with item_list:
    items_tab(experiment, items, data.records)
with export:
    export_tab(experiment, data.records, settings.database_url)
