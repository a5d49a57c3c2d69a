"""The Experiments page through AppTest on an experiment made with the fake completer; the launcher and its process."""

import asyncio
import json
import os
import sys
import time

import pytest
from streamlit.testing.v1 import AppTest

from components import experiment_launcher, services
from components.experiment_process import (
    LOG_FILE,
    LaunchOptions,
    batch_command,
    launch,
    log_tail,
    out_dirs,
    resume_command,
    running_pid,
    stop,
)
from fusion_core.batch import BatchRunner, open_experiment
from fusion_core.batch_config import BatchConfig
from fusion_core.batch_input import load_items
from fusion_core.experiments import ExperimentStore
from fusion_core.settings import DEFAULT_GGUF, LOCAL_MODEL, Settings
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter

PASSWORD = "batch sesame 7"
XSS = "<script>alert(1)</script>"
ROWS = [
    {"id": "xss", "prompt": "xss please", "language": "en"},
    {"id": "fr1", "prompt": "bonjour question", "language": "fr"},
    {"id": "mt1", "prompt": "translate hello", "language": "de", "reference": "Hallo Welt, wie geht es dir?"},
    {"id": "math1", "prompt": "math problem", "language": "en", "answer": "18"},
]


def reply(model, messages, params):
    text = messages[-1]["content"]
    if model == "judge":
        return "The first one is better. [[A]]" if params.max_tokens else "[[B]]"
    if model == "fusor":
        return "Fused answer from <b>all</b> candidates"
    word = text.split()[0]
    if word == "xss":
        return f"candidate {params.seed} {XSS}"
    if word == "translate":
        return f"Hallo Welt {params.seed}, wie geht es?"
    if word == "math":
        return f"The answer is {17 + params.seed}"
    return f"réponse {params.seed}"


def write_input(folder, rows):
    path = folder / "prompts.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def make_experiment(store, settings, name, limit=None, folder="demo", replies=reply):
    experiments = ExperimentStore(store)
    config = BatchConfig(
        models=["m"], fusor_model="fusor", n=3, selector="mbr", scaling=[1, 2, 3], eval_judge_model="judge",
        name=name, concurrency=2,
    )  # fmt: skip
    out = settings.data_dir / "runs" / folder
    loaded = load_items(write_input(settings.data_dir, ROWS))
    experiment_id, config, _ = open_experiment(experiments, config, loaded=loaded, out_dir=out)
    runner = BatchRunner(experiments, experiment_id, config, FakeCompleter(default=replies), store=store, out_dir=out,
                         limit=limit)  # fmt: skip
    asyncio.run(runner.run())
    return experiment_id


@pytest.fixture
def settings(tmp_path, sqlite_url):
    return Settings.from_env({"FUSION_DATA_DIR": str(tmp_path), "FUSION_DATABASE_URL": sqlite_url})


@pytest.fixture
def env(monkeypatch, settings):
    store = Store(settings.database_url)
    fake = FakeCompleter(default=reply)
    monkeypatch.setattr(services, "settings", lambda: settings)
    monkeypatch.setattr(services, "store", lambda: store)
    monkeypatch.setattr(services, "completer", lambda: fake)
    yield store
    store.close()


@pytest.fixture
def launched(monkeypatch):
    """The launcher's launches, recorded instead of started."""
    calls = []
    monkeypatch.setattr(experiment_launcher, "launch", lambda command, out, settings: calls.append((command, out)))
    return calls


def app() -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=60)
    at.switch_page("views/experiments.py")
    return at


def button(at, label):
    return next(b for b in at.button if b.label == label)


def labels(at):
    return {b.label for b in at.button}


def html(at):
    return "\n".join(h.proto.body for h in at.get("html"))


def charts(at):
    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def test_every_tab_renders_with_win_rate_and_scaling_charts_and_the_items_table(env, settings):
    experiment_id = make_experiment(env, settings, "demo <b>exp</b>")
    at = app()
    at.run()
    assert not at.exception
    assert [t.label for t in at.tabs] == ["Overview", "Win rates", "N-scaling", "Attribution", "Fusion vs oracle",
                                          "Items", "Export"]  # fmt: skip
    assert "demo <b>exp</b>" in at.selectbox(key="exp_choice").format_func(experiment_id)
    figures = charts(at)
    names = [{t.get("name") for t in f["data"]} for f in figures]
    assert any({"fusion vs bon", "fusion vs sample", "bon vs sample"} <= n for n in names)  # win rates
    scaling = [f for f in figures if "N (candidates)" in json.dumps(f["layout"])]
    assert len(scaling) == 3  # win rate, chrF++ (translation) and accuracy (math)
    assert all({"Fusion-of-N", "Best-of-N"} <= {t.get("name") for t in f["data"]} for f in scaling)
    support = [c.value for c in at.caption if "rests on" in c.value]
    assert "Each point rests on 4 prompts." in support  # judge win rate: every prompt judged at every N
    assert "Each point rests on 1 prompt." in support  # chrF++ and accuracy: one prompt has a reference / answer
    assert any("Candidate 1" in n and "novel" in n for n in names)  # attribution
    items = at.dataframe
    table = next(d.value for d in items if "status" in d.value.columns)
    assert list(table["id"]) == ["xss", "fr1", "mt1", "math1"] and set(table["status"]) == {"done"}
    assert {m.label for m in at.metric} >= {"Prompts", "Done", "Failed", "Tokens", "Cost"}
    assert any("Fusion beats the oracle" in m.value for m in at.markdown)
    assert {b.label for b in at.get("download_button")} >= {"Results (JSONL)", "SFT data (JSONL)"}
    assert "<b>exp</b>" not in html(at)


def test_pairs_the_judge_never_gave_a_verdict_for_are_named_not_dropped_silently(env, settings):
    def mute_on_fusion(model, messages, params):
        if model == "judge" and "Fused answer" in messages[-1]["content"]:
            return "Both answers are interesting."
        return reply(model, messages, params)

    make_experiment(env, settings, "mute", replies=mute_on_fusion)
    at = app()
    at.run()
    assert not at.exception
    [warning] = [w.value for w in at.warning if "No usable verdict" in w.value]
    assert "fusion vs bon, fusion vs sample:" in warning and "bon vs sample" not in warning
    support = [c.value for c in at.caption if "rest on" in c.value or "rests on" in c.value]
    assert any("3 of 6 points have no data" in c for c in support)  # fusion@1..3 never judged; bon@k were


def test_an_opened_item_shows_candidates_pick_and_fused_answer_escaped(env, settings):
    experiment_id = make_experiment(env, settings, "xss")
    at = app()
    at.run()
    at.selectbox(key=f"exp_item_{experiment_id}").set_value("xss").run()
    assert not at.exception
    shown = html(at)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown and "<script>" not in shown
    assert "Fused answer from &lt;b&gt;all&lt;/b&gt; candidates" in shown
    assert any("Best-of-N" in m.value and "badge" in m.value for m in at.markdown)
    links = at.get("page_link")
    assert any(link.proto.page_script_hash and "run=" in link.proto.query_string for link in links)


def test_an_unfinished_experiment_offers_resume(env, settings):
    experiment_id = make_experiment(env, settings, "half", limit=1)
    at = app()
    at.run()
    assert not at.exception
    assert "Resume" in labels(at) and "Stop" not in labels(at)
    assert any(f"--experiment {experiment_id}" in c.value for c in at.code)
    assert any("1 of 4 prompts finished" in p.proto.text for p in at.get("progress"))


def test_no_experiments_explains_and_shows_the_command(env):
    at = app()
    at.run()
    assert not at.exception
    assert any("No experiments yet" in i.value for i in at.info)
    assert any("python -m fusion_core batch --input" in c.value for c in at.code)
    assert "Start batch" in labels(at)  # the launcher is open when there is nothing to browse


def test_a_broken_judge_prompt_is_refused_before_launching(env, launched):
    at = app()
    at.run()
    at.text_area(key="exp_judge_prompt").set_value("Which is better, {first} or {second}?")
    button(at, "Start batch").click().run()
    assert not at.exception
    assert any("Not started" in e.value and "{prompt}" in e.value for e in at.error)
    assert launched == []


def test_a_model_without_a_key_is_refused_before_launching(env, launched, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    fake = services.completer()
    fake.unknown_models.add("anthropic/none")
    at = app()
    at.run()
    at.text_input(key="exp_fusor").set_value("anthropic/none")
    button(at, "Start batch").click().run()
    assert any("Not started" in e.value and "anthropic/none" in e.value for e in at.error)
    assert launched == []


def test_start_launches_the_batch_command_with_an_edited_judge_prompt(env, settings, launched):
    at = app()
    at.run()
    at.selectbox(key="exp_dataset").set_value(next(p for p in experiment_launcher.shipped_sets()
                                                   if p.name == "translation.jsonl"))  # fmt: skip
    at.number_input(key="exp_n").set_value(2)
    at.number_input(key="exp_limit").set_value(3)
    at.text_area(key="exp_judge_prompt").set_value("Prompt: {prompt}\nA: {first}\nB: {second}\nSay [[A]] or [[B]].")
    button(at, "Start batch").click().run()
    assert not at.exception
    [(command, out)] = launched
    assert out.parent == settings.data_dir / "runs" and out.name.startswith("translation-")
    assert command[1:4] == ["-m", "fusion_core", "batch"]
    flags = dict(zip(command[4::2], command[5::2], strict=False))
    assert flags["--input"].endswith("data/experiments/translation.jsonl") and flags["--out"] == str(out)
    assert flags["--n"] == "2" and flags["--limit"] == "3" and flags["--selector"] == "judge"
    assert (out / "judge_prompt.txt").read_text(encoding="utf-8").startswith("Prompt: {prompt}")
    assert command[command.index("--judge-prompt") + 1] == str(out / "judge_prompt.txt")
    assert command[command.index("--scaling") + 1] == "all"
    assert at.session_state["exp_started"] == str(out)


def test_bad_lines_in_the_input_are_shown_before_launching(env, settings, launched, monkeypatch):
    path = experiment_launcher.save_upload(settings, "my set.jsonl", b'{"prompt": "one"}\nnot json\n{"id": 3}\n')
    assert path.parent == settings.data_dir / "uploads" and path.name.endswith("-my_set.jsonl")
    monkeypatch.setattr(experiment_launcher, "shipped_sets", lambda: [path])
    at = app()
    at.run()
    assert not at.exception
    assert any("2 problems in the file; 2 lines will be skipped" in w.value for w in at.warning)
    problems = next(d.value for d in at.dataframe if "problem" in d.value.columns)
    assert list(problems["line"]) == [2, 3] and "not valid JSON" in problems["problem"][0]
    assert at.text_input(key=f"exp_name_{path.name}").value == "my_set"
    at.radio(key="exp_source").set_value("Upload a file").run()
    assert not at.exception and "Start batch" not in labels(at)  # nothing uploaded yet


def test_starting_or_resuming_a_batch_needs_the_admin_password_when_one_is_set(env, settings, monkeypatch, launched):
    make_experiment(env, settings, "half", limit=1)
    locked = Settings.from_env({"FUSION_DATA_DIR": str(settings.data_dir), "FUSION_DATABASE_URL": settings.database_url,
                                "FUSION_ADMIN_PASSWORD": PASSWORD})  # fmt: skip
    monkeypatch.setattr(services, "settings", lambda: locked)
    at = app()
    at.run()
    assert not at.exception
    assert "Start batch" not in labels(at) and "Resume" not in labels(at)
    at.text_input(key="fx_admin_pw_start_batch_experiments").set_value("wrong")
    button(at, "Unlock").click().run()
    assert any("Wrong admin password" in e.value for e in at.error) and "Start batch" not in labels(at)
    at.text_input(key="fx_admin_pw_start_batch_experiments").set_value(PASSWORD)
    button(at, "Unlock").click().run()
    assert {"Start batch", "Resume"} <= labels(at)
    button(at, "Start batch").click().run()
    assert len(launched) == 1


def test_the_batch_command_has_every_option_and_no_secret(settings, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-value")
    options = LaunchOptions(
        input_path=tmp_path / "in.jsonl", name="mt", model="openai/gpt-4o-mini", fusor="openai/gpt-4o",
        judge="openai/gpt-4o", n=4, scaling=True, selector="pairwise", eval_judge="openai/gpt-4o", baseline="base/m",
        limit=5, concurrency=3, max_tokens=256, fusor_max_tokens=None, judge_prompt_file=tmp_path / "judge.txt",
    )  # fmt: skip
    command = batch_command(options, tmp_path / "out")
    assert command == [
        sys.executable, "-m", "fusion_core", "batch", "--input", str(tmp_path / "in.jsonl"),
        "--out", str(tmp_path / "out"), "--name", "mt", "--model", "openai/gpt-4o-mini", "--fusor", "openai/gpt-4o",
        "--judge", "openai/gpt-4o", "--n", "4", "--selector", "pairwise", "--concurrency", "3", "--scaling", "all",
        "--eval-judge", "openai/gpt-4o", "--baseline", "base/m", "--limit", "5", "--max-tokens", "256",
        "--judge-prompt", str(tmp_path / "judge.txt"),
    ]  # fmt: skip
    assert "sk-secret-value" not in " ".join(command)
    quiet = LaunchOptions(input_path=tmp_path / "in.jsonl", name="x", model="m", fusor="f", judge="j", scaling=False)
    assert "--no-eval" in batch_command(quiet, tmp_path) and "--scaling" not in batch_command(quiet, tmp_path)
    assert resume_command("abc", tmp_path, 2)[3:] == ["batch", "--experiment", "abc", "--out", str(tmp_path),
                                                      "--concurrency", "2"]  # fmt: skip


SLEEPER = """
import sys, time
print("sleeping", flush=True)
try:
    time.sleep(60)
except KeyboardInterrupt:
    print("interrupted: giving prompts back", flush=True)
    sys.exit(130)
"""


def test_stop_interrupts_the_process_group_and_the_pid_file_tracks_it(settings, tmp_path):
    out = tmp_path / "run"
    pid = launch([sys.executable, "-c", SLEEPER, "fusion_core", "batch"], out, settings)
    assert running_pid(out) == pid and json.loads((out / "batch.pid").read_text())["pid"] == pid
    assert os.getpgid(pid) == pid  # its own session: Stop reaches it and its children, not the app
    deadline = time.monotonic() + 20
    while "sleeping" not in log_tail(out) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stop(out)
    while running_pid(out) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert running_pid(out) is None and not stop(out)
    assert "interrupted" in (out / LOG_FILE).read_text()


@pytest.mark.integration
@pytest.mark.skipif(not DEFAULT_GGUF.exists(), reason="the embedded model is not downloaded (make model)")
def test_a_launched_batch_runs_the_cli_in_the_background_on_the_embedded_model(settings, tmp_path):
    path = write_input(tmp_path, [{"id": "hi", "prompt": "Say hello in one word.", "language": "en"}])
    options = LaunchOptions(
        input_path=path, name="tiny", model=LOCAL_MODEL, fusor=LOCAL_MODEL, judge=LOCAL_MODEL, n=1, scaling=False,
        selector="mbr", eval_judge=None, limit=1, concurrency=1, max_tokens=8, fusor_max_tokens=8,
    )  # fmt: skip
    out = settings.data_dir / "runs" / "tiny"
    launch(batch_command(options, out), out, settings)
    deadline = time.monotonic() + 180
    done = 0
    with Store(settings.database_url) as store:
        experiments = ExperimentStore(store)
        while time.monotonic() < deadline:
            found = experiments.list() if (out / "experiment.json").exists() else []
            done = found[0].counts.get("done", 0) if found else 0
            if done == 1 and running_pid(out) is None:
                break
            time.sleep(0.5)
    assert done == 1, log_tail(out, 40)
    assert running_pid(out) is None
    assert list(out_dirs(settings).values()) == [out]
    assert (out / "results.jsonl").read_text(encoding="utf-8").count("\n") == 1
