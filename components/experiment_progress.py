"""A batch's progress from the database, refreshed every 2 s while its process runs; Resume and Stop."""

from __future__ import annotations

import json
from pathlib import Path

import streamlit as st

from components import services
from components.experiment_process import launch, log_tail, out_dir_for, resume_command, running_pid, stop
from fusion_core.batch import MANIFEST
from fusion_core.experiments import Experiment, ExperimentStore
from fusion_core.settings import Settings

STARTED = "exp_started"  # session key: the output folder of the batch this session launched last


def progress_text(experiment: Experiment) -> str:
    """A line like: 12 of 55 prompts finished · 11 done · 1 failed · 4 running · 39 pending."""
    counts = experiment.counts
    parts = [f"{experiment.finished} of {experiment.n_items} prompts finished"]
    parts += [f"{counts.get(s, 0)} {s}" for s in ("done", "failed", "running", "pending") if counts.get(s, 0)]
    return " · ".join(parts)


def _bar(experiment: Experiment) -> None:
    share = experiment.finished / experiment.n_items if experiment.n_items else 1.0
    st.progress(min(share, 1.0), text=progress_text(experiment))


def progress_panel(experiment: Experiment, out_dir: Path | None, settings: Settings, may_control: bool) -> None:
    """The progress bar; live with Stop while this experiment's process runs, else Resume when unfinished."""
    if out_dir is not None and running_pid(out_dir) is not None:
        _live(experiment.id, str(out_dir), may_control)
        return
    _bar(experiment)
    if experiment.complete:
        return
    target = out_dir or out_dir_for(settings, experiment.name)
    command = resume_command(experiment.id, target, int(experiment.config.get("concurrency", 4)))
    st.caption("No batch process started here is working on it. Resume runs the prompts left with the stored "
               "configuration; so does this command, from any machine on the same database:")  # fmt: skip
    st.code(" ".join(["python", *command[1:]]), language="bash", wrap_lines=True)
    if may_control and st.button("Resume", icon=":material/play_arrow:", key=f"exp_resume_{experiment.id}"):
        launch(command, target, settings)
        st.toast(f"Resumed {experiment.name}", icon=":material/play_arrow:")
        st.rerun()


@st.fragment(run_every=2)
def _live(experiment_id: str, out_dir: str, may_control: bool) -> None:
    folder = Path(out_dir)
    if running_pid(folder) is None:
        st.rerun()  # the process ended: refresh the whole page (results, tabs)
    _bar(ExperimentStore(services.store()).get(experiment_id))
    left, right = st.columns([3, 1])
    left.caption(f"Running in the background (process {running_pid(folder)}); results appear as prompts finish.")
    if may_control and right.button("Stop", icon=":material/stop:", key=f"exp_stop_{experiment_id}"):
        stop(folder)
        st.toast("Stopping: the batch gives its prompts back and exits; Resume continues it.")
    with st.expander("Output of the batch"):
        st.code(log_tail(folder) or "(nothing yet)", language=None)


def started_experiment() -> str | None:
    """The id of the batch this session launched, once its process has registered it; shows it starting till then."""
    folder = st.session_state.get(STARTED)
    if not folder:
        return None
    manifest = Path(folder) / MANIFEST
    if manifest.exists():
        del st.session_state[STARTED]
        try:
            return json.loads(manifest.read_text(encoding="utf-8"))["experiment_id"]
        except (OSError, ValueError, KeyError):
            return None
    _starting(folder)
    return None


@st.fragment(run_every=2)
def _starting(folder: str) -> None:
    out = Path(folder)
    if (out / MANIFEST).exists():
        st.rerun()
    if running_pid(out) is None:
        st.error("The batch exited before creating its experiment. Its output:")
        st.code(log_tail(out, 20) or "(no output)", language=None)
        if st.button("Dismiss", key="exp_dismiss"):
            st.session_state.pop(STARTED, None)
            st.rerun()
        return
    st.info(f"Starting the batch in {out} (loading the data and checking the models)…", icon=":material/hourglass:")
    st.code(log_tail(out) or "(no output yet)", language=None)
