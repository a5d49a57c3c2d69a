"""`python -m fusion_core attribute`: text, JSON and HTML output, and one-line errors for unreadable files."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fusion_core.cli import main

ROOT = Path(__file__).resolve().parent.parent
CANDIDATES = [
    "The sky is blue because air scatters short wavelengths. Sunsets are red.",
    "Water boils at one hundred degrees at sea level. <script>alert(1)</script>",
]
FUSED = "Water boils at one hundred degrees at sea level. The sky is blue because air scatters short wavelengths.\n"
FUSED += "Here is a sentence the fusor wrote itself.\n"


@pytest.fixture
def files(tmp_path: Path) -> list[str]:
    paths = []
    for name, text in [("fused.txt", FUSED), ("c1.txt", CANDIDATES[0]), ("c2.txt", CANDIDATES[1])]:
        (tmp_path / name).write_text(text, encoding="utf-8")
        paths.append(str(tmp_path / name))
    return paths


def attribute_args(files: list[str], *extra: str) -> list[str]:
    return ["attribute", "--fused", files[0], "--candidate", files[1], "--candidate", files[2], *extra]


def test_json_output(files, capsys):
    assert main(attribute_args(files, "--json")) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"segments", "shares"}
    assert "".join(s["text"] for s in data["segments"]) == FUSED
    assert [s["source"] for s in data["segments"]] == [1, 0, None]
    assert all(set(s) == {"start", "end", "source", "sources", "text"} for s in data["segments"])
    assert data["segments"][0]["sources"] == [1] and data["segments"][2]["sources"] == []
    assert set(data["shares"]) == {"0", "1", "novel"}
    assert sum(data["shares"].values()) == pytest.approx(1)


def test_text_output(files, capsys):
    assert main(attribute_args(files)) == 0
    out = capsys.readouterr().out
    assert out.startswith("Shares: Candidate 1 ") and "[2]\n    Water boils" in out and "[novel]" in out


def test_html_output_is_a_safe_page(files, capsys):
    assert main(attribute_args(files, "--html")) == 0
    page = capsys.readouterr().out
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script" not in page
    assert "Diff against Candidate 2" in page


def test_fused_answer_from_stdin(files, monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", __import__("io").StringIO(FUSED))
    assert main(["attribute", "--fused", "-", "--candidate", files[1], "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["segments"][1]["source"] == 0


@pytest.mark.parametrize("bad", ["missing.txt", "binary.bin", "."])
def test_unreadable_file_is_one_line_and_exit_2(files, tmp_path, capsys, bad):
    (tmp_path / "binary.bin").write_bytes(b"\xff\xfe\x00\xc3(")
    path = str(tmp_path / bad)
    assert main(["attribute", "--fused", files[0], "--candidate", path]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: cannot read {path}: ")


def run_cli(*args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "fusion_core", *args]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)


def test_as_a_user_runs_it(files, tmp_path):
    missing = tmp_path / "nope.txt"
    done = run_cli("attribute", "--fused", str(missing), "--candidate", files[1])
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: cannot read {missing}: No such file or directory; pass a UTF-8 text file"
    done = run_cli(*attribute_args(files, "--json"))
    assert done.returncode == 0 and json.loads(done.stdout)["shares"]["novel"] > 0


def test_json_and_html_together_are_refused(files, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(attribute_args(files, "--json", "--html"))
    assert exit_info.value.code == 2
