"""Tables over an experiment's result records (experiment_item.py describes one), for the app and reports.

Every function takes the records as read from the store or results.jsonl and returns pandas frames or
small dataclasses; nothing here reads files or calls models. Failed records are counted by `overview`
and left out of everything else. Intervals are percentile bootstraps over items (judging.bootstrap_mean).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from . import judging, metrics
from .batch_config import BatchConfig
from .experiment_item import scaling_candidates

Record = dict[str, Any]
METHODS = ("fusion", "bon", "oracle")
MEASURES = ("win_rate", "chrf", "accuracy")  # the order the page shows them in
CONTRIBUTES = 0.05  # a candidate "contributes" to a fused answer above this share
JUDGEMENT_COLUMNS = [
    "item_id", "language", "system_a", "system_b", "first", "verdict", "winner", "model", "error",
    "prompt_tokens", "completion_tokens", "cost", "raw",
]  # fmt: skip
SCALING_COLUMNS = ["n", "method", "measure", "value", "lo", "hi", "items"]


def done(records: Sequence[Record]) -> list[Record]:
    """The records of prompts that were processed (not failed)."""
    return [r for r in records if r.get("status") == "done"]


def _language(record: Record) -> str:
    value = record.get("language")
    return str(value).strip() if value and str(value).strip() else metrics.UNKNOWN_LANGUAGE


def judgement_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per judge call, with the item's id and language."""
    rows = [
        {**{k: j.get(k) for k in JUDGEMENT_COLUMNS}, "item_id": r["id"], "language": _language(r)}
        for r in done(records)
        for j in r.get("judgements") or []
    ]
    return pd.DataFrame(rows, columns=JUDGEMENT_COLUMNS)


def judge_win_rates(records: Sequence[Record], rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Win rates of every judged pair, both directions, per language and "all", with bootstrap intervals."""
    return judging.win_rates(judgement_frame(records), by_language=True, rounds=rounds, seed=seed)


def _system(method: str, k: int, n_max: int) -> str:
    return method if k == n_max else f"{method}@{k}"


def _interval(values: list[float], rounds: int, seed: int) -> tuple[float, float, float]:
    scores = np.asarray(values, dtype=float)
    lo, hi = judging.bootstrap_mean(scores, rounds, np.random.default_rng(seed), 0.95)
    return float(scores.mean()), lo, hi


def scaling_frame(records: Sequence[Record], config: BatchConfig, rounds: int = 1000, seed: int = 0) -> pd.DataFrame:
    """Quality against N, long: (n, method, measure, value, lo, hi, items) for fusion@k, bon@k and the oracle.

    Measures: `win_rate` against config.opponent() from the judgements; `chrf` (mean chrF++) where items have a
    reference, the oracle being the best of the first k candidates; `accuracy` where items have an answer, the
    oracle being right when any of the first k candidates is (a system without an output counts as wrong).
    """
    finished = done(records)
    ns = config.scaling_points()
    rows: list[dict[str, Any]] = []

    def add(k: int, method: str, measure: str, values: list[float]) -> None:
        if values:
            value, lo, hi = _interval(values, rounds, seed)
            rows.append({"n": k, "method": method, "measure": measure, "value": value, "lo": lo, "hi": hi,
                         "items": len(values)})  # fmt: skip

    judged = judgement_frame(finished)
    if not judged.empty:
        rates = judging.win_rates(judged, by_language=False, rounds=rounds, seed=seed)
        opponent = config.opponent()
        for k in ns:
            for method in ("fusion", "bon"):
                row = rates[rates["system"].eq(_system(method, k, config.n_max)) & rates["opponent"].eq(opponent)]
                if not row.empty:
                    found = row.iloc[0]
                    values = {"value": float(found["win_rate"]), "lo": float(found["lo"]), "hi": float(found["hi"])}
                    rows.append({"n": k, "method": method, "measure": "win_rate", **values, "items": int(found["n"])})
    scored = [r for r in finished if r.get("metrics")]
    answered = [r for r in finished if r.get("answer")]
    for k in ns:
        for method in ("fusion", "bon"):
            name = _system(method, k, config.n_max)
            chrf = [r["metrics"]["systems"][name]["chrf"] for r in scored if name in r["metrics"].get("systems", {})]
            add(k, method, "chrf", chrf)
            add(k, method, "accuracy", [float(bool((r.get("correct") or {}).get(name))) for r in answered])
        oracle = [e["oracle_chrf"] for r in scored for e in r.get("scaling") or [] if e["n"] == k]
        add(k, "oracle", "chrf", [v for v in oracle if v is not None])
        add(k, "oracle", "accuracy", [float(_any_correct(r, k)) for r in answered])
    frame = pd.DataFrame(rows, columns=SCALING_COLUMNS)
    return frame.sort_values(["measure", "method", "n"], key=_measure_order).reset_index(drop=True)


def _measure_order(column: pd.Series) -> pd.Series:
    if column.name == "measure":
        return column.map({m: i for i, m in enumerate(MEASURES)})
    if column.name == "method":
        return column.map({m: i for i, m in enumerate(METHODS)})
    return column


def _any_correct(record: Record, k: int) -> bool:
    entry = next((e for e in record.get("scaling") or [] if e["n"] == k), {"n": k})
    candidates = record.get("candidates", [])
    texts = [candidates[i].get("text") for i in scaling_candidates(entry) if not candidates[i].get("error")]
    return any(metrics.answer_correct(t, record["answer"]) for t in texts if t and t.strip())


@dataclass
class AttributionTables:
    """How much of each fused answer came from each candidate, and from none (novel)."""

    items: pd.DataFrame  # item_id, language, source ("0".."N-1" or "novel"), share
    by_index: pd.DataFrame  # index, share: the mean share of the candidate at each position
    by_rank: pd.DataFrame  # rank, share: the mean share of the largest, second largest, ... candidate
    contributors: pd.DataFrame  # item_id, language, contributors: candidates with a share above the threshold
    novel: float | None  # the mean novel share
    mean_contributors: float | None

    @property
    def empty(self) -> bool:
        """True when no record had attribution shares."""
        return self.items.empty


def attribution_frame(records: Sequence[Record], threshold: float = CONTRIBUTES) -> AttributionTables:
    """Shares of every candidate and of novel text per fused answer, and their means by index and by rank."""
    rows, ranked, counts = [], [], []
    for record in done(records):
        shares = ((record.get("attribution") or {}).get("shares")) or {}
        if not shares:
            continue
        item, language = record["id"], _language(record)
        candidates = sorted((int(k), float(v)) for k, v in shares.items() if k != "novel")
        rows += [{"item_id": item, "language": language, "source": str(i), "share": s} for i, s in candidates]
        rows.append({"item_id": item, "language": language, "source": "novel", "share": float(shares.get("novel", 0))})
        values = sorted((s for _, s in candidates), reverse=True)
        ranked += [{"rank": rank, "share": s} for rank, s in enumerate(values, start=1)]
        counts.append({"item_id": item, "language": language, "contributors": sum(s > threshold for s in values)})
    items = pd.DataFrame(rows, columns=["item_id", "language", "source", "share"])
    contributors = pd.DataFrame(counts, columns=["item_id", "language", "contributors"])
    candidates = items[items["source"].ne("novel")]
    by_index = candidates.assign(index=candidates["source"].astype(int)).groupby("index")["share"].mean().reset_index()
    ranks = pd.DataFrame(ranked, columns=["rank", "share"])
    by_rank = ranks.groupby("rank")["share"].mean().reset_index()
    novel = items.loc[items["source"].eq("novel"), "share"]
    return AttributionTables(
        items=items,
        by_index=by_index,
        by_rank=by_rank,
        contributors=contributors,
        novel=float(novel.mean()) if len(novel) else None,
        mean_contributors=float(contributors["contributors"].mean()) if len(contributors) else None,
    )


def metric_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per item and system with chrF++ and BLEU (for metrics.metric_summary and beats_oracle)."""
    rows = [
        {"item_id": r["id"], "language": _language(r), "system": system, "chrf": s.get("chrf"), "bleu": s.get("bleu")}
        for r in done(records)
        for system, s in ((r.get("metrics") or {}).get("systems") or {}).items()
    ]
    return pd.DataFrame(rows, columns=["item_id", "language", "system", *metrics.METRICS])


def accuracy_frame(records: Sequence[Record]) -> pd.DataFrame:
    """One row per item with a gold answer and system: whether the system's final answer was right."""
    rows = [
        {"item_id": r["id"], "language": _language(r), "system": system, "correct": bool(value)}
        for r in done(records)
        if r.get("answer")
        for system, value in (r.get("correct") or {}).items()
        if value is not None
    ]
    return pd.DataFrame(rows, columns=["item_id", "language", "system", "correct"])


def accuracy_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per language (and "all") and system: items and accuracy, from `accuracy_frame`."""
    rows = metrics.with_all_language(frame)
    out = rows.groupby(["language", "system"], sort=False).agg(n=("correct", "size"), accuracy=("correct", "mean"))
    return metrics.sort_by_language(out.reset_index(), "system")


@dataclass
class Overview:
    """What an experiment cost and how it went."""

    done: int
    failed: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None  # None when no call reported a cost
    time_s: float  # processing time summed over prompts (prompts run concurrently, so more than wall time)
    failures: pd.DataFrame  # error, items, ids

    @property
    def finished(self) -> int:
        """Prompts done or failed."""
        return self.done + self.failed

    @property
    def mean_time_s(self) -> float | None:
        """Processing time per processed prompt."""
        return self.time_s / self.done if self.done else None


def overview(records: Sequence[Record]) -> Overview:
    """Counts of done and failed prompts, tokens, cost, time, and the failures grouped by error."""
    prompt_tokens = completion_tokens = 0
    cost, time_s = None, 0.0
    failures: dict[str, list[str]] = {}
    for record in records:
        usage = record.get("usage") or {}
        prompt_tokens += int(usage.get("prompt_tokens") or 0)
        completion_tokens += int(usage.get("completion_tokens") or 0)
        if usage.get("cost") is not None:
            cost = (cost or 0.0) + float(usage["cost"])
        time_s += float(record.get("time_s") or 0.0)
        if record.get("status") == "failed":
            error = (record.get("error") or "unknown error").splitlines()[0][:200]
            failures.setdefault(error, []).append(str(record.get("id")))
    table = pd.DataFrame(
        [{"error": e, "items": len(ids), "ids": ", ".join(ids)} for e, ids in failures.items()],
        columns=["error", "items", "ids"],
    )
    n_failed = sum(1 for r in records if r.get("status") == "failed")
    return Overview(
        done=len(done(records)),
        failed=n_failed,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=cost,
        time_s=time_s,
        failures=table.sort_values("items", ascending=False, kind="stable").reset_index(drop=True),
    )
