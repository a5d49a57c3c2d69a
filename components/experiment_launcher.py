"""The Start-a-batch form: prompts (shipped or uploaded), models, N, selector, judge prompt; launches the CLI."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pandas as pd
import streamlit as st

from components import services
from components.experiment_process import (
    JUDGE_PROMPT_FILE,
    LaunchOptions,
    batch_command,
    launch,
    out_dir_for,
    write_judge_prompt,
)
from components.experiment_progress import STARTED
from components.run_form import SELECTOR_LABELS
from fusion_core.batch_config import BatchConfig
from fusion_core.batch_input import LoadedInput, load_items
from fusion_core.cli import build_parser
from fusion_core.cli_batch import config_from_args
from fusion_core.errors import ConfigError, FusionError
from fusion_core.judging import DEFAULT_JUDGE_PROMPT, validate_template
from fusion_core.sampling import MAX_CANDIDATES
from fusion_core.selection import SELECTORS
from fusion_core.settings import PROJECT_ROOT, Settings

SHIPPED = PROJECT_ROOT / "data" / "experiments"
SHIPPED_LABEL, UPLOAD_LABEL = "Shipped data set", "Upload a file"


def shipped_sets() -> list[Path]:
    """The data sets in data/experiments."""
    return sorted(SHIPPED.glob("*.jsonl"))


def save_upload(settings: Settings, name: str, data: bytes) -> Path:
    """Keep an uploaded input under DATA/uploads (named by its content, so the same file is kept once)."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name).name).strip("._") or "input.jsonl"
    folder = settings.data_dir / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{hashlib.sha256(data).hexdigest()[:10]}-{safe}"
    if not path.exists():
        path.write_bytes(data)
    return path


def batch_config(command: list[str], judge_prompt: str | None, settings: Settings) -> BatchConfig:
    """The configuration the CLI will build from `command` (read by the CLI's own parser), validated."""
    if judge_prompt is not None:
        validate_template(judge_prompt)
    args = build_parser().parse_args(command[3:])  # after `python -m fusion_core`
    args.judge_prompt = None  # the edited prompt's file is written only once the batch starts
    config = config_from_args(args, settings)
    config.judge_prompt = judge_prompt
    config.validate()
    return config


def _input_path(settings: Settings) -> Path | None:
    source = st.radio("Prompts", [SHIPPED_LABEL, UPLOAD_LABEL], horizontal=True, key="exp_source")
    if source == SHIPPED_LABEL:
        sets = shipped_sets()
        if not sets:
            st.warning(f"No data sets in {SHIPPED}.")
            return None
        return st.selectbox("Data set", sets, format_func=lambda p: p.name, key="exp_dataset")
    upload = st.file_uploader("JSONL or CSV (one prompt per line)", type=["jsonl", "csv"], key="exp_upload")
    return save_upload(settings, upload.name, upload.getvalue()) if upload is not None else None


def _describe(loaded: LoadedInput) -> None:
    facts = [f"{len(loaded.items)} prompts"]
    if loaded.with_reference:
        facts.append(f"{loaded.with_reference} with a reference (chrF++ / oracle)")
    answers = sum(1 for i in loaded.items if i.answer)
    if answers:
        facts.append(f"{answers} with an answer (accuracy)")
    languages = sorted({re.sub(r"[^\w-]", "", i.language) for i in loaded.items if i.language})  # markdown-safe
    if languages:
        facts.append(f"languages {', '.join(languages)}")
    st.caption(" · ".join(facts))
    if loaded.problems:
        skipped = len(loaded.skipped)
        st.warning(f"{len(loaded.problems)} problems in the file; {skipped} lines will be skipped.")
        problems = [{"line": p.line, "problem": p.message, "skipped": p.skipped} for p in loaded.problems]
        st.dataframe(pd.DataFrame(problems), hide_index=True, width="stretch")


def launcher(settings: Settings) -> Path | None:
    """Render the form; start a batch when asked and return its output folder (None otherwise)."""
    path = _input_path(settings)
    if path is None:
        return None
    try:
        loaded = load_items(path)
    except ConfigError as exc:
        st.error(str(exc))
        return None
    _describe(loaded)
    defaults = services.defaults()
    stem = path.stem.split("-", 1)[-1] if path.parent.name == "uploads" else path.stem  # without the upload's hash
    name = st.text_input("Experiment name", stem, key=f"exp_name_{path.name}")
    a, b, c, d = st.columns(4)
    n = a.number_input("N (samples per prompt)", 1, MAX_CANDIDATES, 4, key="exp_n")
    selector = b.selectbox("Best-of-N selector", SELECTORS, format_func=SELECTOR_LABELS.get, key="exp_selector")
    limit = c.number_input("Limit (0: all prompts)", 0, len(loaded.items), 0, key="exp_limit")
    concurrency = d.number_input("Prompts in flight", 1, 32, 4, key="exp_concurrency")
    scaling = st.toggle("N-scaling: also fuse and select on the first 1, 2, … N samples", True, key="exp_scaling")
    e, f, g = st.columns(3)
    model = e.text_input("Sampling model", defaults["model"], key="exp_model")
    fusor = f.text_input("Fusor model", defaults["fusor"], key="exp_fusor")
    judge = g.text_input("Best-of-N judge model", defaults["judge"], key="exp_judge")
    h, i, j = st.columns(3)
    eval_judge = h.text_input("Pairwise judge for win rates (blank: none)", defaults["judge"], key="exp_eval_judge")
    baseline = i.text_input("Baseline model (optional)", "", key="exp_baseline",
                            help="a fixed reference model every system is judged against")  # fmt: skip
    max_tokens = j.number_input("Max tokens per candidate", 8, 8192, 512, step=8, key="exp_max_tokens")
    template = st.text_area(
        "Pairwise judge prompt ({prompt}, {first}, {second}; write {{ and }} for literal braces)",
        DEFAULT_JUDGE_PROMPT, height=260, key="exp_judge_prompt", disabled=not eval_judge.strip(),
    )  # fmt: skip
    if not st.button("Start batch", type="primary", icon=":material/rocket_launch:", key="exp_start"):
        return None
    options = LaunchOptions(
        input_path=path.resolve(), name=name.strip() or path.stem, model=model.strip(), fusor=fusor.strip(),
        judge=judge.strip(), n=int(n), scaling=scaling, selector=selector, eval_judge=eval_judge.strip() or None,
        baseline=baseline.strip() or None, limit=int(limit) or None, concurrency=int(concurrency),
        max_tokens=int(max_tokens),
    )  # fmt: skip
    custom = template if options.eval_judge and template != DEFAULT_JUDGE_PROMPT else None
    out_dir = out_dir_for(settings, options.name)
    if custom is not None:
        options.judge_prompt_file = out_dir / JUDGE_PROMPT_FILE
    command = batch_command(options, out_dir)
    try:
        config = batch_config(command, custom, settings)
        for model_name in sorted(config.called_models()):
            services.completer().check_model(model_name)
    except FusionError as exc:
        st.error(f"Not started: {exc}")
        return None
    if custom is not None:
        write_judge_prompt(out_dir, custom)
    try:
        pid = launch(command, out_dir, settings)
    except OSError as exc:
        st.error(f"Could not start the batch: {exc}")
        return None
    st.session_state[STARTED] = str(out_dir)
    st.toast(f"Started batch {options.name} (process {pid})", icon=":material/rocket_launch:")
    return out_dir
