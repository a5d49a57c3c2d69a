"""The `batch` and `experiments` commands: in-process with the fake completer; one real embedded-model run."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from fusion_core import cli, cli_batch
from fusion_core.batch import RESULTS, read_results
from fusion_core.testing import FakeCompleter
from tests.test_batch import reply
from tests.test_cli import ROOT


@pytest.fixture
def fake(monkeypatch):
    completer = FakeCompleter(default=reply)
    monkeypatch.setattr(cli_batch, "LiteLLMCompleter", lambda settings: completer)
    return completer


def write_lines(tmp_path, lines, name="in.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


BASE = ["--model", "m", "--fusor", "fusor", "--judge", "judge", "--selector", "mbr", "--n", "2"]


def test_bad_lines_are_reported_with_line_numbers_and_the_rest_runs(tmp_path, fake, capsys):
    lines = ['{"id": "a", "prompt": "pa x", "reference": "r"}', "{oops", '{"id": "b"}', '{"id": "c", "prompt": "pc"}']
    path = write_lines(tmp_path, lines)
    code = cli.main(["batch", "--input", str(path), "--out", str(tmp_path / "out"), *BASE])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "line 2: not valid JSON" in err and "line 3: no 'prompt'" in err
    assert "2 lines skipped; 2 prompts read" in err
    assert "1 of 2 prompts have a reference" in err
    assert "2/2 prompts finished" in out
    assert [r["id"] for r in read_results(tmp_path / "out" / RESULTS)] == ["a", "c"]


@pytest.mark.parametrize(
    ("lines", "args", "message"),
    [
        (["  "], [], "is empty"),
        (['{"prompt": "p"}'], ["--n", "0"], "1 to 16 candidates"),
        (['{"prompt": "p"}'], ["--scaling", "1,x"], "--scaling takes"),
        (['{"prompt": "p"}'], ["--pairs", "fusion"], "a pair is written a:b"),
        (['{"prompt": "p"}'], ["--pairs", "fusion:baseline"], "pass a baseline model"),
        (['{"prompt": "p"}'], ["--concurrency", "0"], "at least 1"),
        (['{"prompt": "p"}'], ["--temperature", "5"], "temperature must be between 0 and 2"),
        (['{"prompt": "p"}'], ["--max-tokens", "0"], "max_tokens must be at least 1"),
    ],
)
def test_bad_options_and_files_are_one_line_errors(tmp_path, fake, capsys, lines, args, message):
    path = write_lines(tmp_path, lines)
    code = cli.main(["batch", "--input", str(path), "--out", str(tmp_path / "out"), *BASE, *args])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1


def test_a_missing_out_dir_or_input_is_explained(tmp_path, fake, capsys):
    assert cli.main(["batch", *BASE]) == 2
    assert "pass --input FILE" in capsys.readouterr().err
    assert cli.main(["batch", "--input", "x.jsonl", *BASE]) == 2
    assert "pass --out DIR" in capsys.readouterr().err


def test_failures_are_summarized_and_the_exit_code_says_so(tmp_path, fake, capsys):
    path = write_lines(tmp_path, ['{"id": "ok", "prompt": "fine"}', '{"id": "bad", "prompt": "FAIL me"}'])
    code = cli.main(["batch", "--input", str(path), "--out", str(tmp_path / "out"), *BASE])
    out = capsys.readouterr().out
    assert code == 1
    assert "1 done and 1 failed" in out and "failures:" in out
    assert "1 × " in out and "cannot reach m" in out and "(bad)" in out


def test_resume_with_other_settings_is_a_clear_error_and_experiments_lists_it(tmp_path, fake, capsys):
    path = write_lines(tmp_path, ['{"id": "a", "prompt": "pa"}'])
    out_dir = str(tmp_path / "out")
    assert cli.main(["batch", "--input", str(path), "--out", out_dir, *BASE, "--json", "--no-eval"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["progress"]["done"] == 1
    assert cli.main(["batch", "--input", str(path), "--out", out_dir, *BASE, "--no-eval", "--n", "3"]) == 2
    assert "different settings (n)" in capsys.readouterr().err
    assert cli.main(["experiments", "--json"]) == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["id"] == summary["experiment_id"] and listed["counts"]["done"] == 1


def test_another_worker_joins_by_experiment_id(tmp_path, fake, capsys):
    path = write_lines(tmp_path, [json.dumps({"id": f"p{i}", "prompt": f"p{i}"}) for i in range(4)])
    assert cli.main(["batch", "--input", str(path), "--out", str(tmp_path / "a"), *BASE, "--limit", "1", "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    experiment_id = first["experiment_id"]
    assert (first["left"], first["held"]) == (3, 0)
    assert "3 prompts not started yet: run the same command again" in cli_batch.summary_text(
        cli_batch.BatchSummary(experiment_id, None, cli_batch.Progress(total=4, done=1), left=3)
    )
    assert cli.main(["batch", "--experiment", experiment_id, "--out", str(tmp_path / "b"), "--json"]) == 0
    joined = json.loads(capsys.readouterr().out)
    assert joined["progress"]["already"] == 1 and joined["progress"]["done"] == 3
    assert len(read_results(tmp_path / "b" / RESULTS)) == 4


def test_progress_text():
    from fusion_core.batch import Progress

    line = cli_batch.progress_text(Progress(total=10, done=3, failed=1, already=2, elapsed_s=60, prompt_tokens=900))
    assert line.startswith("[" + "#" * 17) and "6/10 prompts" in line and "1 failed" in line
    assert "900 tokens" in line and "1m00s, ~1m00s left" in line


def test_progress_says_when_other_workers_hold_the_last_prompts():
    from fusion_core.batch import Progress

    line = cli_batch.progress_text(Progress(total=4, done=3, waiting=1, elapsed_s=5))
    assert "waiting for 1 held by other workers" in line
    held = cli_batch.summary_text(cli_batch.BatchSummary("e", None, Progress(total=4, done=3), left=1, held=1))
    assert "other workers are still processing 1 prompt\n" in held + "\n" and "not started" not in held


def test_a_batch_on_the_embedded_model_is_interrupted_and_resumed(tmp_path):
    """The real thing: the CLI on the embedded model, Ctrl-C after the first prompt, then the same command again."""
    rows = [{"id": f"q{i}", "prompt": p, "language": "en"} for i, p in enumerate(["Name a colour.", "Say hello."])]
    path = write_lines(tmp_path, [json.dumps(r) for r in rows])
    out = tmp_path / "out"
    command = [sys.executable, "-m", "fusion_core", "batch", "--input", str(path), "--out", str(out), "--n", "2",
               "--scaling", "--max-tokens", "12", "--fusor-max-tokens", "12", "--judge-max-tokens", "8",
               "--selector", "mbr", "--concurrency", "1", "--pairs", "fusion:bon,fusion@1:sample"]  # fmt: skip
    env = {**os.environ, "FUSION_DATA_DIR": str(tmp_path), "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    first = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not read_results(out / RESULTS) and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    first.send_signal(signal.SIGINT)
    stdout, stderr = first.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    if first.returncode == 130:  # stopped before the second prompt finished
        assert "run the same command again to resume" in stdout
    else:
        assert first.returncode == 0, stderr
    before = {r["id"] for r in read_results(out / RESULTS)}
    assert "q0" in before
    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert second.returncode == 0, second.stderr
    records = read_results(out / RESULTS)
    assert [r["id"] for r in records] == ["q0", "q1"]
    for record in records:
        assert record["status"] == "done" and record["fusion"]["text"].strip()
        assert [e["n"] for e in record["scaling"]] == [1, 2]
        assert record["judgements"], "the pairwise judge ran"
    if first.returncode == 130:
        assert "1 of 2 prompts finished" in second.stderr


def test_judge_again_with_another_prompt_and_pairs(tmp_path, fake, capsys):
    path = write_lines(tmp_path, ['{"id": "a", "prompt": "pa"}', '{"id": "b", "prompt": "pb"}'])
    out_dir = tmp_path / "out"
    assert cli.main(["batch", "--input", str(path), "--out", str(out_dir), *BASE, "--json"]) == 0
    experiment_id = json.loads(capsys.readouterr().out)["experiment_id"]
    before = {(j["system_a"], j["system_b"]) for j in read_results(out_dir / RESULTS)[0]["judgements"]}
    assert before == {("fusion", "bon"), ("fusion", "sample"), ("bon", "sample")}
    template = tmp_path / "judge.txt"
    template.write_text("CUSTOM JUDGE. Q: {prompt}\nFirst: {first}\nSecond: {second}\nSay [[A]], [[B]] or [[C]].")
    fake.history.clear()
    args = ["judge", "--experiment", experiment_id, "--judge-prompt", str(template), "--pairs", "fusion:bon"]
    assert cli.main([*args, "--out", str(out_dir)]) == 0
    assert "judged again by judge: 1 pairs" in capsys.readouterr().out
    judged = [c for c in fake.history if c.model == "judge"]
    assert len(judged) == 4 and all(c.messages[-1]["content"].startswith("CUSTOM JUDGE") for c in judged)
    for record in read_results(out_dir / RESULTS):
        assert {(j["system_a"], j["system_b"]) for j in record["judgements"]} == {("fusion", "bon")}
    manifest = json.loads((out_dir / "experiment.json").read_text())
    assert manifest["config"]["pairs"] == [["fusion", "bon"]]  # a --rerun repeats the new judging
    cli.main(["experiments", "--json"])
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["config"]["judge_prompt"].startswith("CUSTOM JUDGE")
    assert listed["config"]["pairs"] == [["fusion", "bon"]]
    template.write_text("no placeholders here")
    assert cli.main(args) == 2
    assert "the judge prompt lacks {first}" in capsys.readouterr().err


def test_report_prints_win_rates_and_scaling(tmp_path, fake, capsys):
    rows = [
        {"id": "t", "prompt": "pt x", "reference": "pt cand-1 answer", "language": "fr"},
        {"id": "u", "prompt": "pu"},
    ]
    path = write_lines(tmp_path, [json.dumps(r) for r in rows])
    assert cli.main(["batch", "--input", str(path), "--out", str(tmp_path / "o"), *BASE, "--scaling", "--json"]) == 0
    experiment_id = json.loads(capsys.readouterr().out)["experiment_id"]
    assert cli.main(["report", experiment_id, "--rounds", "50", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["overview"]["done"] == 2
    # the fake judge always prefers the answer shown first, so over both orders every asked pair is a tie
    fusion_vs_bon = [r for r in report["win_rates"] if (r["system"], r["opponent"], r["language"]) ==
                     ("fusion", "bon", "all")]  # fmt: skip
    assert fusion_vs_bon[0]["win_rate"] == 0.5 and fusion_vs_bon[0]["n"] == 2
    assert {(r["n"], r["method"]) for r in report["scaling"] if r["measure"] == "win_rate"} == {
        (1, "fusion"), (2, "fusion"), (1, "bon"), (2, "bon")}  # fmt: skip
    assert next(r for r in report["beats_oracle"] if r["language"] == "all")["n"] == 1
    assert cli.main(["report", experiment_id, "--rounds", "50"]) == 0
    text = capsys.readouterr().out
    assert "Pairwise judge win rates" in text and "N-scaling against sample" in text and "Fusion vs the oracle" in text
    assert cli.main(["report", "nope"]) == 2
    assert "no experiment 'nope'" in capsys.readouterr().err


def test_rerun_starts_a_new_experiment_with_the_same_settings(tmp_path, fake, capsys):
    path = write_lines(tmp_path, ['{"id": "a", "prompt": "pa"}'])
    first = tmp_path / "first"
    args = ["batch", "--input", str(path), "--out", str(first), *BASE, "--n", "3", "--scaling", "1,3", "--json"]
    assert cli.main(args) == 0
    original = json.loads(capsys.readouterr().out)["experiment_id"]
    second = tmp_path / "second"
    assert cli.main(["batch", "--rerun", str(first / "experiment.json"), "--out", str(second), "--json"]) == 0
    rerun = json.loads(capsys.readouterr().out)["experiment_id"]
    assert rerun != original
    manifests = [json.loads((d / "experiment.json").read_text()) for d in (first, second)]
    assert manifests[0]["config"] == manifests[1]["config"] and manifests[1]["input"] == str(path)
    a, b = (read_results(d / RESULTS)[0] for d in (first, second))
    assert [c["text"] for c in a["candidates"]] == [c["text"] for c in b["candidates"]]  # same seeds, same samples
    assert cli.main(["batch", "--rerun", str(path), "--out", str(tmp_path / "x")]) == 2
    assert "has no configuration" in capsys.readouterr().err
