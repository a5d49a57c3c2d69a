"""Training data and tables from a batch experiment's per-prompt records (experiment_item.py).

SFT examples and DPO preference pairs are JSON lines in the shapes TRL reads: `{"messages": [...]}` and
`{"prompt", "chosen", "rejected"}` (strings, or message lists when conversational). A judged pair becomes a
preference only when every verdict, in both orders, names the same winner: a judge that prefers a position or
calls a tie teaches nothing. A human comparison becomes one when one system has more votes than the other;
"tie" and "both bad" votes count for neither. Every export says what it left out and why.

The tables flatten the records, one row per fact and one type per column (nested values JSON-encoded), so
pyarrow writes them and pandas reads them back unchanged. Error strings pass through `redact`; voter ids and
names are never read.
"""

from __future__ import annotations

import io
import json
import math
import zipfile
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from .errors import ConfigError
from .judging import TIE
from .llm import redact

FORMATS = ("sft", "dpo", "parquet")
SOURCES = ("judge", "votes")
_KEY = {"item_id": "str", "language": "str", "task": "str"}
COLUMNS: dict[str, dict[str, str]] = {
    "items": {
        **_KEY, "status": "str", "error": "str", "prompt": "str", "reference": "str", "answer": "str",
        "fusion_text": "str", "fusion_model": "str", "fusion_warnings": "str", "fusion_error": "str",
        "bon_index": "Int64", "bon_method": "str", "bon_text": "str", "bon_error": "str", "n_candidates": "Int64",
        "prompt_tokens": "Int64", "completion_tokens": "Int64", "cost": "float64", "time_s": "float64",
        "run_id": "str", "finished_at": "datetime", "extra": "str",
    },
    "candidates": {
        **_KEY, "index": "Int64", "model": "str", "text": "str", "error": "str", "prompt_tokens": "Int64",
        "completion_tokens": "Int64", "cost": "float64", "latency_s": "float64", "bon_score": "float64",
        "is_bon": "boolean", "chrf": "float64", "bleu": "float64", "share": "float64",
    },
    "systems": {**_KEY, "system": "str", "text": "str", "chrf": "float64", "bleu": "float64", "correct": "boolean"},
    "scaling": {
        **_KEY, "n": "Int64", "fusion_text": "str", "fusion_error": "str", "bon_index": "Int64", "bon_text": "str",
        "bon_error": "str", "fusion_chrf": "float64", "bon_chrf": "float64", "oracle_chrf": "float64",
        "fusion_correct": "boolean", "bon_correct": "boolean", "prompt_tokens": "Int64", "completion_tokens": "Int64",
    },
    "judgements": {
        **_KEY, "system_a": "str", "system_b": "str", "first": "str", "verdict": "str", "winner": "str", "raw": "str",
        "model": "str", "error": "str", "identical": "boolean", "prompt_tokens": "Int64",
        "completion_tokens": "Int64", "cost": "float64",
    },
    "attribution": {**_KEY, "source": "str", "candidate": "Int64", "share": "float64"},
}  # fmt: skip
TABLES = tuple(COLUMNS)


@dataclass
class Export:
    """The rows an export writes, and what it left out: reason -> count."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        """Count one thing left out for `reason`."""
        self.skipped[reason] = self.skipped.get(reason, 0) + 1

    def skipped_text(self) -> str:
        """`skipped 2 prompts without a fused answer, 1 tied pairs`, or "" when nothing was left out."""
        return "skipped " + ", ".join(f"{n} {reason}" for reason, n in self.skipped.items()) if self.skipped else ""


def sft_records(
    records: Iterable[dict[str, Any]],
    system: str = "fusion",
    *,
    include_failed: bool = False,
    languages: Collection[str] | None = None,
    min_chars: int = 0,
    skip_warnings: bool = False,
    experiment_id: str | None = None,
) -> Export:
    """Chat-format SFT examples: the prompt as the user turn, `system`'s answer as the assistant turn."""
    out = Export()
    for record in records:
        text = (record.get("outputs") or {}).get(system)
        if record.get("status") != "done" and not include_failed:
            out.skip("failed prompts")
        elif languages and record.get("language") not in languages:
            out.skip("prompts in other languages")
        elif not text or not text.strip():
            out.skip(f"prompts without {_answer_name(system)}")
        elif len(text.strip()) < min_chars:
            out.skip(f"answers shorter than {min_chars} characters")
        elif skip_warnings and system == "fusion" and (record.get("fusion") or {}).get("warnings"):
            out.skip("fused answers with warnings")
        else:
            messages = [{"role": "user", "content": record["prompt"]}, {"role": "assistant", "content": text}]
            row = {"messages": messages, **_labels(record), "source": system}
            out.rows.append(row | ({"experiment_id": experiment_id} if experiment_id else {}))
    return out


def _answer_name(system: str) -> str:
    return {"fusion": "a fused answer", "bon": "a Best-of-N answer"}.get(system, f"an answer from {system}")


def _labels(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": record.get("id"), "language": record.get("language"), "task": record.get("task")}


def judge_pairs(
    records: Iterable[dict[str, Any]],
    *,
    systems: Collection[str] | None = None,
    languages: Collection[str] | None = None,
    conversational: bool = False,
    experiment_id: str | None = None,
) -> Export:
    """Preference pairs from pairwise verdicts that name the same winner in both orders; ties and splits are skipped.

    `systems` keeps only pairs of those systems. margin and n_votes are the number of agreeing verdicts.
    """
    out = Export()
    for record in records:
        if record.get("status") != "done":
            out.skip("failed prompts")
            continue
        if languages and record.get("language") not in languages:
            out.skip("prompts in other languages")
            continue
        if not record.get("judgements"):
            out.skip("prompts without judgements")
            continue
        outputs = record.get("outputs") or {}
        for (a, b), found in _by_pair(record["judgements"]).items():
            if systems and not {a, b} <= set(systems):
                continue
            winner, reason = _agreed_winner(a, b, found)
            if winner is None:
                out.skip(reason)
                continue
            loser = b if winner == a else a
            agreed = sum(1 for j in found if _counts(j))
            pair = _pair(record["prompt"], outputs.get(winner), outputs.get(loser), conversational, out)
            if pair is not None:
                chosen = {"chosen_system": winner, "rejected_system": loser, "source": "judge"}
                out.rows.append(pair | _labels(record) | chosen | {"margin": agreed, "n_votes": agreed})
                if experiment_id:
                    out.rows[-1]["experiment_id"] = experiment_id
    return out


def _by_pair(judgements: list[dict[str, Any]]) -> dict[tuple[str, str], list[dict[str, Any]]]:
    pairs: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for j in judgements:
        a, b = j.get("system_a"), j.get("system_b")
        if a and b:
            key = (b, a) if (b, a) in pairs else (a, b)  # re-judging may store the pair the other way round
            pairs.setdefault(key, []).append(j)
    return pairs


def _counts(judgement: dict[str, Any]) -> bool:
    return judgement.get("verdict") is not None and judgement.get("winner") is not None and not judgement.get("error")


def _agreed_winner(a: str, b: str, found: list[dict[str, Any]]) -> tuple[str | None, str]:
    """The system every counted verdict names, with a verdict in both orders; else None and the reason."""
    counted = [j for j in found if _counts(j)]
    if not {a, b} <= {j.get("first") for j in counted}:
        return None, "pairs without a verdict in both orders"
    winners = {j["winner"] for j in counted}
    if winners == {TIE}:
        return None, "tied pairs"
    if len(winners) > 1 or not winners <= {a, b}:
        return None, "pairs the judge split on (position-inconsistent)"
    return winners.pop(), ""


def _pair(prompt: str, chosen: str | None, rejected: str | None, conversational: bool, out: Export) -> dict | None:
    """The TRL preference fields, or None (counted in `out`) when a text is missing or both are the same."""
    if not chosen or not rejected or not chosen.strip() or not rejected.strip():
        out.skip("pairs without both answers")
        return None
    if chosen.strip() == rejected.strip():
        out.skip("pairs with identical answers")
        return None
    if not conversational:
        return {"prompt": prompt, "chosen": chosen, "rejected": rejected}
    return {
        "prompt": [{"role": "user", "content": prompt}],
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
    }


def vote_pairs(
    comparisons: pd.DataFrame,
    *,
    run_ids: Collection[str] | None = None,
    systems: Collection[str] | None = None,
    languages: Collection[str] | None = None,
    conversational: bool = False,
    experiment_id: str | None = None,
) -> Export:
    """Preference pairs from `VoteStore.comparisons_frame()`: the system with more votes is chosen.

    `run_ids` keeps only comparisons of those runs (an experiment's). margin is the difference in votes;
    n_votes counts every vote, ties and "both bad" included. No voter id or name is read.
    """
    out = Export()
    for row in comparisons.to_dict(orient="records"):
        row = {k: _value(v) for k, v in row.items()}
        if (run_ids is not None and row["run_id"] not in run_ids) or (
            systems and not {row["system_a"], row["system_b"]} <= set(systems)
        ):
            continue
        if languages and row["language"] not in languages:
            out.skip("comparisons in other languages")
            continue
        votes_a, votes_b = int(row["votes_a"]), int(row["votes_b"])
        if not row["n_votes"]:
            out.skip("comparisons without votes")
            continue
        if votes_a == votes_b:
            out.skip("comparisons without a majority")
            continue
        a_won = votes_a > votes_b
        winner, loser = (row["system_a"], row["system_b"]) if a_won else (row["system_b"], row["system_a"])
        chosen, rejected = (row["output_a"], row["output_b"]) if a_won else (row["output_b"], row["output_a"])
        pair = _pair(row["prompt"], chosen, rejected, conversational, out)
        if pair is None:
            continue
        labels = {"id": row["comparison_id"], "language": row["language"], "task": row["task"]}
        votes = {"margin": abs(votes_a - votes_b), "n_votes": int(row["n_votes"]), "run_id": row["run_id"]}
        out.rows.append(pair | labels | {"chosen_system": winner, "rejected_system": loser, "source": "votes"} | votes)
        if experiment_id:
            out.rows[-1]["experiment_id"] = experiment_id
    return out


def _value(value: Any) -> Any:
    """A frame cell as a plain value: NaN and NA become None."""
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    return value.item() if hasattr(value, "item") else value


def experiment_tables(records: Iterable[dict[str, Any]]) -> dict[str, pd.DataFrame]:
    """The records as flat tables (items, candidates, systems, scaling, judgements, attribution), typed per COLUMNS."""
    rows: dict[str, list[dict[str, Any]]] = {name: [] for name in TABLES}
    for record in records:
        key = {"item_id": record.get("id"), "language": record.get("language"), "task": record.get("task")}
        rows["items"].append(_item_row(record, key))
        rows["candidates"] += _candidate_rows(record, key)
        rows["systems"] += _system_rows(record, key)
        rows["scaling"] += _scaling_rows(record, key)
        rows["judgements"] += [
            {**j, **key, "error": _error(j.get("error")), "identical": bool(j.get("identical"))}
            for j in record.get("judgements") or []
        ]
        shares = (record.get("attribution") or {}).get("shares") or {}
        rows["attribution"] += [
            {**key, "source": str(source), "candidate": None if source == "novel" else int(source), "share": share}
            for source, share in shares.items()
        ]
    return {name: _frame(rows[name], COLUMNS[name]) for name in TABLES}


def _item_row(record: dict[str, Any], key: dict[str, Any]) -> dict[str, Any]:
    fusion, bon, usage = record.get("fusion") or {}, record.get("bon") or {}, record.get("usage") or {}
    return {
        **key, **{k: record.get(k) for k in ("status", "prompt", "reference", "answer", "time_s", "run_id")},
        "error": _error(record.get("error")), "fusion_text": fusion.get("text"), "fusion_model": fusion.get("model"),
        "fusion_warnings": _json(fusion.get("warnings")), "fusion_error": _error(record.get("fusion_error")),
        "bon_index": bon.get("index"), "bon_method": bon.get("method"),
        "bon_text": _candidate_text(record, bon.get("index")), "bon_error": _error(record.get("bon_error")),
        "n_candidates": len(record.get("candidates") or []), "prompt_tokens": usage.get("prompt_tokens"),
        "completion_tokens": usage.get("completion_tokens"), "cost": usage.get("cost"),
        "finished_at": record.get("finished_at"), "extra": _json(record.get("extra")),
    }  # fmt: skip


def _candidate_rows(record: dict[str, Any], key: dict[str, Any]) -> list[dict[str, Any]]:
    bon = record.get("bon") or {}
    scores = bon.get("scores") or []
    scored = (record.get("metrics") or {}).get("candidates") or []
    shares = (record.get("attribution") or {}).get("shares") or {}
    rows = []
    for c in record.get("candidates") or []:
        i = c.get("index")
        metric = (scored[i] if isinstance(i, int) and i < len(scored) else None) or {}
        rows.append({
            **key, **c, "error": _error(c.get("error")), "is_bon": i == bon.get("index") if bon else None,
            "bon_score": _number(scores[i]) if isinstance(i, int) and i < len(scores) else None,
            "chrf": metric.get("chrf"), "bleu": metric.get("bleu"), "share": shares.get(str(i)),
        })  # fmt: skip
    return rows


def _system_rows(record: dict[str, Any], key: dict[str, Any]) -> list[dict[str, Any]]:
    outputs = record.get("outputs") or {}
    scored = (record.get("metrics") or {}).get("systems") or {}
    correct = record.get("correct") or {}
    names = list(dict.fromkeys([*outputs, *scored, *correct]))
    return [
        {**key, "system": name, "text": outputs.get(name), "chrf": (scored.get(name) or {}).get("chrf"),
         "bleu": (scored.get(name) or {}).get("bleu"), "correct": correct.get(name)}
        for name in names
    ]  # fmt: skip


def _scaling_rows(record: dict[str, Any], key: dict[str, Any]) -> list[dict[str, Any]]:
    scored = (record.get("metrics") or {}).get("systems") or {}
    correct = record.get("correct") or {}
    entries = record.get("scaling") or []
    rows = []
    for position, entry in enumerate(entries):
        n = entry.get("n")
        last = position == len(entries) - 1  # the full run (N_max) comes last and is named plain fusion / bon
        fusion, bon = ("fusion", "bon") if last else (f"fusion@{n}", f"bon@{n}")
        usage = (entry.get("usage") or {}).values()
        rows.append({
            **key, "n": n, "fusion_text": entry.get("fusion_text"), "fusion_error": _error(entry.get("fusion_error")),
            "bon_index": entry.get("bon_index"), "bon_text": _candidate_text(record, entry.get("bon_index")),
            "bon_error": _error(entry.get("bon_error")), "fusion_chrf": (scored.get(fusion) or {}).get("chrf"),
            "bon_chrf": (scored.get(bon) or {}).get("chrf"), "oracle_chrf": entry.get("oracle_chrf"),
            "fusion_correct": correct.get(fusion), "bon_correct": correct.get(bon),
            "prompt_tokens": sum(u.get("prompt_tokens") or 0 for u in usage) if usage else None,
            "completion_tokens": sum(u.get("completion_tokens") or 0 for u in usage) if usage else None,
        })  # fmt: skip
    return rows


def _candidate_text(record: dict[str, Any], index: Any) -> str | None:
    candidates = record.get("candidates") or []
    if not isinstance(index, int) or not 0 <= index < len(candidates):
        return None
    return candidates[index].get("text") or None


def _error(text: Any) -> str | None:
    return redact(str(text)) if text else None


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value, ensure_ascii=False, default=str)


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _frame(rows: list[dict[str, Any]], columns: dict[str, str]) -> pd.DataFrame:
    """A frame of exactly `columns`, each cast to its type (keys not in `columns` are dropped)."""
    frame = pd.DataFrame(rows, columns=list(columns))
    for name, dtype in columns.items():
        if dtype == "datetime":
            frame[name] = pd.to_datetime(frame[name], utc=True, format="ISO8601", errors="coerce")
        else:
            frame[name] = frame[name].astype(dtype)
    return frame


def write_parquet(tables: dict[str, pd.DataFrame], out_dir: str | Path) -> list[Path]:
    """Write each table to OUT_DIR/<name>.parquet; return the paths."""
    out_dir = Path(out_dir)
    paths = []
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        for name, frame in tables.items():
            paths.append(out_dir / f"{name}.parquet")
            frame.to_parquet(paths[-1], index=False)
    except OSError as exc:
        raise ConfigError(f"cannot write to {out_dir}: {exc.strerror or exc}; choose another folder") from exc
    return paths


def parquet_bytes(tables: dict[str, pd.DataFrame], table: str | None = None) -> bytes:
    """One table as Parquet bytes, or (table None) a zip with one <name>.parquet per table."""
    if table is not None:
        if table not in tables:
            raise ConfigError(f"unknown table {table!r}; choose one of {', '.join(tables)}")
        return _parquet(tables[table])
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, frame in tables.items():
            archive.writestr(f"{name}.parquet", _parquet(frame))
    return buffer.getvalue()


def _parquet(frame: pd.DataFrame) -> bytes:
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def jsonl_bytes(rows: Iterable[dict[str, Any]]) -> bytes:
    """UTF-8 JSON lines, one object per row."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows).encode("utf-8")


def preference_pairs(
    source: str,
    records: Sequence[dict[str, Any]] | None = None,
    comparisons: pd.DataFrame | None = None,
    **options: Any,
) -> Export:
    """DPO pairs from the judge's verdicts in `records`, or from the votes in `comparisons` (of records' runs)."""
    if source not in SOURCES:
        raise ConfigError(f"unknown preference source {source!r}; use {' or '.join(SOURCES)}")
    if source == "judge":
        return judge_pairs(records or [], **options)
    if comparisons is None:
        raise ConfigError("preference pairs from votes need the comparisons: pass VoteStore.comparisons_frame()")
    run_ids = None if records is None else {r["run_id"] for r in records if r.get("run_id")}
    return vote_pairs(comparisons, run_ids=run_ids, **options)


def export_bytes(
    kind: str,
    records: Sequence[dict[str, Any]] | None,
    *,
    system: str = "fusion",
    source: str = "judge",
    comparisons: pd.DataFrame | None = None,
    table: str | None = None,
    conversational: bool = False,
    experiment_id: str | None = None,
) -> bytes:
    """A download: SFT or DPO JSON lines, or the Parquet tables (a zip, or the one `table`)."""
    if kind == "sft":
        return jsonl_bytes(sft_records(records or [], system, experiment_id=experiment_id).rows)
    if kind == "dpo":
        options = {"conversational": conversational, "experiment_id": experiment_id}
        return jsonl_bytes(preference_pairs(source, records, comparisons, **options).rows)
    if kind == "parquet":
        return parquet_bytes(experiment_tables(records or []), table)
    raise ConfigError(f"unknown export {kind!r}; use {', '.join(FORMATS)}")
