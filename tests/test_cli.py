"""The command line as a user runs it: a subprocess, exit codes, one-line errors, no tracebacks."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(tmp_path, *args, env=None, timeout=300):
    environment = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k != "FUSION_DATABASE_URL"}
    environment.update({"FUSION_DATA_DIR": str(tmp_path), "LITELLM_LOCAL_MODEL_COST_MAP": "True", **(env or {})})
    return subprocess.run(
        [sys.executable, "-m", "fusion_core", *args],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def assert_one_line_error(done, *fragments):
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), done.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--prompt", "   "], "prompt is empty"),
        (["--prompt", "hi", "--n", "17"], "between 1 and 16"),
        (["--prompt", "hi", "--n", "0"], "between 1 and 16"),
        (["--prompt", "hi", "--selector", "oracle"], "reference"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path, args, fragment):
    assert_one_line_error(cli(tmp_path, "run", *args), fragment)


def test_unknown_model(tmp_path):
    assert_one_line_error(cli(tmp_path, "run", "--prompt", "hi", "--model", "nosuch/model"), "unknown model")


def test_missing_key_names_the_variable(tmp_path):
    done = cli(tmp_path, "run", "--prompt", "hi", "--fusor", "anthropic/claude-3-5-haiku-latest")
    assert_one_line_error(done, "ANTHROPIC_API_KEY")


def test_unreachable_api_base_fails_every_candidate_and_says_where(tmp_path):
    done = cli(
        tmp_path,
        "run",
        "--prompt",
        "hi",
        "--n",
        "2",
        "--model",
        "openai/x@http://127.0.0.1:9/v1",
        env={"FUSION_MAX_RETRIES": "0"},
    )
    assert_one_line_error(done, "every candidate failed", "cannot reach http://127.0.0.1:9/v1")


def test_a_database_that_cannot_be_opened(tmp_path):
    done = cli(tmp_path, "run", "--prompt", "hi", env={"FUSION_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/test"})
    assert_one_line_error(done, "cannot open database")


def test_a_run_on_the_embedded_model_is_printed_as_json_and_stored(tmp_path):
    done = cli(
        tmp_path,
        "run",
        "--prompt",
        "Why is the sky blue?",
        "--n",
        "3",
        "--max-tokens",
        "24",
        "--fusor-max-tokens",
        "48",
        "--json",
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout)
    assert len(out["candidates"]) == 3
    assert all(c["model"] == "local/smollm2-135m" and c["error"] is None and c["text"] for c in out["candidates"])
    assert all(c["latency_s"] > 0 for c in out["candidates"])
    assert out["bon"]["index"] in (0, 1, 2) and len(out["bon"]["scores"]) == 3
    assert out["bon"]["method"] in ("judge", "judge→mbr")  # a 135M judge often gives no usable score
    assert out["fusion"]["text"] and out["fusion"]["model"] == "local/smollm2-135m"
    assert (tmp_path / "fusion.db").is_file()

    shown = cli(tmp_path, "show", out["run_id"], "--json")
    assert shown.returncode == 0, shown.stderr
    stored = json.loads(shown.stdout)
    assert stored["fusion"]["text"] == out["fusion"]["text"]
    assert [c["text"] for c in stored["candidates"]] == [c["text"] for c in out["candidates"]]
    assert stored["run"]["fusion"]["messages"] == out["run"]["fusion"]["messages"]

    listed = cli(tmp_path, "runs")
    assert out["run_id"] in listed.stdout


def test_human_readable_output_marks_the_bon_pick(tmp_path):
    done = cli(
        tmp_path,
        "run",
        "--prompt",
        "Name a colour.",
        "--n",
        "2",
        "--max-tokens",
        "12",
        "--fusor-max-tokens",
        "24",
        "--selector",
        "mbr",
        "--no-store",
    )
    assert done.returncode == 0, done.stderr
    assert "<- Best-of-N" in done.stdout and "Fused answer" in done.stdout
    assert not (tmp_path / "fusion.db").exists()
