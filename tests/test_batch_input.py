"""Batch input files: every problem reported by line, good lines kept, nothing silently dropped."""

import json

import pytest

from fusion_core.batch_input import load_items
from fusion_core.errors import ConfigError


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_malformed_lines_are_reported_with_line_numbers_and_the_rest_is_read(tmp_path):
    lines = [
        json.dumps({"id": "a", "prompt": "first"}),
        "{not json",
        "",
        json.dumps(["a", "list"]),
        json.dumps({"id": "b", "prompt": "second", "language": "fr"}),
        json.dumps({"id": "c"}),
        json.dumps({"id": "d", "prompt": "   "}),
    ]
    loaded = load_items(write(tmp_path, "in.jsonl", "\n".join(lines) + "\n"))
    assert [i.id for i in loaded.items] == ["a", "b"]
    assert [i.line for i in loaded.items] == [1, 5]
    problems = {p.line: p.message for p in loaded.problems}
    assert set(problems) == {2, 4, 6, 7}
    assert "not valid JSON" in problems[2]
    assert "JSON object" in problems[4]
    assert "no 'prompt'" in problems[6]
    assert "empty" in problems[7]
    assert all(p.skipped for p in loaded.problems)


def test_an_empty_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="empty"):
        load_items(write(tmp_path, "in.jsonl", "\n \n"))


def test_a_file_without_any_usable_line_names_the_problems(tmp_path):
    with pytest.raises(ConfigError, match=r"no usable prompt.*line 1"):
        load_items(write(tmp_path, "in.jsonl", '{"text": "no prompt key"}\n'))


def test_missing_file_and_unknown_extension(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_items(tmp_path / "nope.jsonl")
    with pytest.raises(ConfigError, match=r"\.jsonl.*\.csv"):
        load_items(write(tmp_path, "in.txt", "hello"))


def test_unknown_language_is_kept_with_a_warning(tmp_path):
    loaded = load_items(write(tmp_path, "in.jsonl", json.dumps({"prompt": "p", "language": "klingon"}) + "\n"))
    assert loaded.items[0].language == "klingon"
    [problem] = loaded.problems
    assert not problem.skipped and "unknown language" in problem.message


def test_reference_on_some_rows_only(tmp_path):
    rows = [{"prompt": "p1", "reference": "r1"}, {"prompt": "p2"}, {"prompt": "p3", "reference": ""}]
    loaded = load_items(write(tmp_path, "in.jsonl", "".join(json.dumps(r) + "\n" for r in rows)))
    assert [i.reference for i in loaded.items] == ["r1", None, None]
    assert loaded.with_reference == 1
    assert loaded.problems == []


def test_ids_are_derived_from_the_prompt_so_a_resume_finds_them(tmp_path):
    path = write(tmp_path, "in.jsonl", '{"prompt": "same"}\n{"prompt": "other"}\n')
    first = [i.id for i in load_items(path).items]
    path.write_text('{"prompt": "other"}\n{"prompt": "same"}\n', encoding="utf-8")
    assert sorted(first) == sorted(i.id for i in load_items(path).items)


def test_duplicate_ids_keep_the_first(tmp_path):
    loaded = load_items(write(tmp_path, "in.jsonl", '{"id": 1, "prompt": "a"}\n{"id": "1", "prompt": "b"}\n'))
    assert [i.prompt for i in loaded.items] == ["a"]
    assert "duplicate id '1' (first on line 1)" in loaded.problems[0].message


def test_csv_with_extra_columns_and_a_bad_row(tmp_path):
    text = 'id,prompt,language,reference,source\nx,"Hello, world",fr,Bonjour,en\ny,,de,,\nz,Third,,,,extra\n'
    loaded = load_items(write(tmp_path, "in.csv", text))
    assert [i.id for i in loaded.items] == ["x"]
    item = loaded.items[0]
    assert (item.prompt, item.language, item.reference) == ("Hello, world", "fr", "Bonjour")
    assert item.extra == {"source": "en"}
    assert {p.line for p in loaded.problems} == {3, 4}


def test_csv_without_a_prompt_column(tmp_path):
    with pytest.raises(ConfigError, match=r"no 'prompt' column.*question"):
        load_items(write(tmp_path, "in.csv", "id,question\n1,why\n"))


def test_non_utf8_input(tmp_path):
    path = tmp_path / "in.jsonl"
    path.write_bytes('{"prompt": "caf\u00e9"}\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_items(path)


def test_the_shipped_sets_load_without_problems():
    from fusion_core.settings import PROJECT_ROOT

    for name in ("multilingual", "math", "translation"):
        loaded = load_items(PROJECT_ROOT / "data" / "experiments" / f"{name}.jsonl")
        assert loaded.problems == [] and loaded.items
