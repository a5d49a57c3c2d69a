"""Batch input: prompts from JSONL or CSV, with every problem reported by line and nothing silently dropped.

A bad line (malformed JSON, no prompt, a duplicate id) is reported with its line number and skipped;
the other lines are still processed. Only a file with no usable line at all is an error.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

PAPER_LANGUAGES = ("en", "fr", "de", "es", "ru", "it", "pt", "ja", "ko", "zh", "ar")
KNOWN_LANGUAGES = frozenset(PAPER_LANGUAGES) | {
    "nl", "pl", "sv", "da", "no", "fi", "cs", "tr", "el", "he", "hi", "bn", "id", "vi", "th", "uk", "ro", "hu", "fa",
}  # fmt: skip
FIELDS = ("id", "prompt", "language", "reference", "answer", "task")
MAX_PROMPT_CHARS = 100_000
MAX_ID_CHARS = 128


@dataclass(frozen=True)
class BatchItem:
    """One prompt of a batch, with what is known about it."""

    id: str
    prompt: str
    line: int  # 1-based line (JSONL) or row (CSV, the header is line 1) in the input file
    language: str | None = None
    reference: str | None = None  # e.g. a reference translation: enables chrF++/BLEU and the oracle
    answer: str | None = None  # a short gold answer (math): enables accuracy
    task: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # other fields, kept with the results

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchItem:
        """Rebuild from `to_dict` output."""
        return cls(**{k: data.get(k) for k in ("id", "prompt", "line", "language", "reference", "answer", "task")},
                   extra=dict(data.get("extra") or {}))  # fmt: skip


@dataclass(frozen=True)
class InputProblem:
    """Something wrong with one line; `skipped` lines are not processed."""

    line: int
    message: str
    skipped: bool = True

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}" + ("" if self.skipped else " (kept)")


@dataclass
class LoadedInput:
    """The usable items of an input file and every problem found in it."""

    path: Path
    items: list[BatchItem]
    problems: list[InputProblem]
    sha256: str

    @property
    def skipped(self) -> list[InputProblem]:
        """Problems that kept a line out of the batch."""
        return [p for p in self.problems if p.skipped]

    @property
    def with_reference(self) -> int:
        """How many items carry a reference."""
        return sum(1 for i in self.items if i.reference)


def load_items(path: str | Path) -> LoadedInput:
    """Read a .jsonl or .csv batch file; ConfigError only when nothing in it can be used."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"input file {path} does not exist") from None
    except OSError as exc:
        raise ConfigError(f"cannot read input file {path}: {exc.strerror or exc}") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    if not text.strip():
        raise ConfigError(f"input file {path} is empty: write one JSON object per line with a 'prompt'")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        rows, problems = _csv_rows(text, path)
    elif suffix in (".jsonl", ".json", ".ndjson"):
        rows, problems = _jsonl_rows(text)
    else:
        raise ConfigError(f"cannot read {path.name}: use a .jsonl (one JSON object per line) or a .csv file")
    items = _items(rows, problems)
    problems.sort(key=lambda p: p.line)
    if not items:
        detail = "; ".join(str(p) for p in problems[:5])
        raise ConfigError(f"no usable prompt in {path}" + (f": {detail}" if detail else ""))
    return LoadedInput(path, items, problems, hashlib.sha256(raw).hexdigest())


def _jsonl_rows(text: str) -> tuple[list[tuple[int, dict[str, Any]]], list[InputProblem]]:
    rows, problems = [], []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            value = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(InputProblem(number, f"not valid JSON ({exc.msg} at column {exc.colno})"))
            continue
        if not isinstance(value, dict):
            problems.append(InputProblem(number, f"expected a JSON object, found {type(value).__name__}"))
            continue
        rows.append((number, value))
    return rows, problems


def _csv_rows(text: str, path: Path) -> tuple[list[tuple[int, dict[str, Any]]], list[InputProblem]]:
    reader = csv.DictReader(io.StringIO(text, newline=""))
    header = [h.strip() for h in (reader.fieldnames or [])]
    if "prompt" not in header:
        raise ConfigError(f"{path} has no 'prompt' column (columns: {', '.join(header) or 'none'})")
    reader.fieldnames = header
    rows, problems = [], []
    try:
        for row in reader:
            number = reader.line_num
            if None in row:
                problems.append(InputProblem(number, "more cells than columns in the header"))
                continue
            rows.append((number, {k: v for k, v in row.items() if v not in (None, "")}))
    except csv.Error as exc:
        problems.append(InputProblem(reader.line_num, f"malformed CSV ({exc}); the rest of the file was not read"))
    return rows, problems


def _items(rows: list[tuple[int, dict[str, Any]]], problems: list[InputProblem]) -> list[BatchItem]:
    items: list[BatchItem] = []
    seen: dict[str, int] = {}
    for number, row in rows:
        item = _item(number, row, problems)
        if item is None:
            continue
        if item.id in seen:
            problems.append(InputProblem(number, f"duplicate id {item.id!r} (first on line {seen[item.id]})"))
            continue
        seen[item.id] = number
        items.append(item)
    return items


def _item(number: int, row: dict[str, Any], problems: list[InputProblem]) -> BatchItem | None:
    prompt = row.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        what = "no 'prompt'" if prompt is None else "an empty or non-text 'prompt'"
        problems.append(InputProblem(number, f"{what}; every line needs a prompt"))
        return None
    if len(prompt) > MAX_PROMPT_CHARS:
        problems.append(InputProblem(number, f"the prompt is longer than {MAX_PROMPT_CHARS:,} characters"))
        return None
    texts: dict[str, str | None] = {}
    for name in ("reference", "answer", "task", "language"):
        value = row.get(name)
        if value is not None and not isinstance(value, (str, int, float)):
            problems.append(InputProblem(number, f"'{name}' must be text; ignored it", skipped=False))
            value = None
        texts[name] = str(value).strip() or None if value is not None else None
    language = texts["language"]
    if language is not None:
        language = language.replace("_", "-")
        if language.split("-")[0].lower() not in KNOWN_LANGUAGES:
            problems.append(InputProblem(number, f"unknown language {language!r}; kept as given", skipped=False))
    item_id = row.get("id")
    if item_id is None or (isinstance(item_id, str) and not item_id.strip()):
        item_id = "p-" + hashlib.sha1(prompt.encode("utf-8")).hexdigest()[:12]  # stable, so resuming finds it
    item_id = str(item_id).strip()
    if len(item_id) > MAX_ID_CHARS or any(ord(ch) < 32 for ch in item_id):
        problems.append(InputProblem(number, f"the id must be at most {MAX_ID_CHARS} printable characters"))
        return None
    extra = {k: v for k, v in row.items() if k not in FIELDS}
    return BatchItem(
        id=item_id,
        prompt=prompt,
        line=number,
        language=language,
        reference=texts["reference"],
        answer=texts["answer"],
        task=texts["task"],
        extra=extra,
    )
