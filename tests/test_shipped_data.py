"""The experiment data shipped in data/experiments: well-formed JSONL with the fields each task needs."""

from __future__ import annotations

import json
import math
from collections import Counter
from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "experiments"
LANGUAGES = {"en", "fr", "de", "es", "ru", "it", "pt", "ja", "ko", "zh", "ar"}
COMMON = ("id", "language", "task", "prompt")
FILES = {
    "multilingual.jsonl": ("open", ()),
    "math.jsonl": ("math", ("answer",)),
    "translation.jsonl": ("translation", ("source", "reference")),
}


def load(name: str) -> list[dict]:
    """Every line of one file, parsed; fails on a blank line or a line that is not a JSON object."""
    rows = []
    text = (DATA / name).read_text(encoding="utf-8")
    assert text.endswith("\n"), f"{name}: the last line has no newline"
    for number, line in enumerate(text.splitlines(), 1):
        assert line.strip(), f"{name}:{number}: blank line"
        row = json.loads(line)
        assert isinstance(row, dict), f"{name}:{number}: not a JSON object"
        rows.append(row)
    assert rows, f"{name} is empty"
    return rows


@pytest.mark.parametrize("name", sorted(FILES))
def test_rows_have_their_fields(name: str) -> None:
    task, extra = FILES[name]
    for row in load(name):
        for field in (*COMMON, *extra):
            value = row.get(field)
            assert isinstance(value, str) and value.strip(), f"{name} {row.get('id')}: {field} missing or empty"
            assert value == value.strip(), f"{name} {row['id']}: {field} has leading or trailing whitespace"
        assert row["task"] == task, f"{name} {row['id']}: task {row['task']!r}"
        assert row["language"] in LANGUAGES, f"{name} {row['id']}: language {row['language']!r}"


def test_ids_are_unique_across_files() -> None:
    ids = Counter(row["id"] for name in FILES for row in load(name))
    assert not [i for i, n in ids.items() if n > 1]


def test_multilingual_covers_every_language_five_times() -> None:
    rows = load("multilingual.jsonl")
    assert Counter(row["language"] for row in rows) == dict.fromkeys(LANGUAGES, 5)
    for row in rows:
        assert row["id"].startswith(f"ml-{row['language']}-")


def test_math_answers_are_numbers() -> None:
    rows = load("math.jsonl")
    assert len(rows) == 12
    for row in rows:
        assert row["language"] == "en"
        assert math.isfinite(float(row["answer"])), row["id"]
        assert row["prompt"].endswith("Give the final answer as a number."), row["id"]


def test_translations_have_source_and_reference() -> None:
    rows = load("translation.jsonl")
    assert len(rows) == 20
    assert Counter(row["language"] for row in rows) == dict.fromkeys(LANGUAGES - {"en"}, 2)
    for row in rows:
        assert row["id"].startswith(f"mt-en-{row['language']}-")
        assert row["prompt"].endswith(row["source"]), row["id"]
        assert row["reference"] != row["source"], row["id"]
