"""Automated pairwise judging of experiment outputs, the Arena protocol run by an LLM judge.

Every pair of systems is judged twice, with the answers shown in both orders, so a judge that
prefers a position cancels out. A judgement is a record (one row per call); item outcomes and win
rates are pure functions over a table of records. An item's score for system A is the mean over
the orders with a verdict (win 1, tie 0.5, loss 0); win rates are mean item scores with a
percentile bootstrap interval that resamples items.
"""

from __future__ import annotations

import asyncio
import re
import string
from typing import Any, TypedDict

import numpy as np
import pandas as pd

from .errors import ConfigError, FusionError
from .llm import Completer
from .metrics import ALL, sort_by_language, with_all_language, with_languages
from .selection import explicit_verdict, last_line_verdict
from .types import GenParams, Message

PLACEHOLDERS = frozenset({"prompt", "first", "second"})
TIE = "tie"

DEFAULT_JUDGE_PROMPT = """Please act as an impartial judge and evaluate the quality of the two answers below to the \
user's prompt. Consider correctness, helpfulness, relevance, depth and clarity. Do not let the order in which the \
answers are presented, their length, or the names of any assistants influence your decision; be as objective as \
possible.

[User prompt]
{prompt}

[Start of answer A]
{first}
[End of answer A]

[Start of answer B]
{second}
[End of answer B]

Explain your comparison briefly, then end with exactly one final verdict on its own line: "[[A]]" if answer A is \
better, "[[B]]" if answer B is better, or "[[C]]" for a tie."""

DEFAULT_JUDGE_PARAMS = GenParams(temperature=0.0, max_tokens=1024, seed=0)

_BRACKETED = re.compile(r"\[\[\s*(A|B|C|tie)\s*\]\]", re.IGNORECASE)
_SINGLE = re.compile(r"(?<!\[)\[\s*(A|B|C)\s*\](?!\])")  # [A] but not [[A]]
_ECHO = re.compile(r"\[(?:start|end) of answer [AB]\]", re.IGNORECASE)  # the template's markers, echoed back
_POSITIONS = {"A": "first", "B": "second", "C": TIE, "TIE": TIE}


class Judgement(TypedDict):
    """One judge call: the pair, which system was shown first, and what the judge said."""

    system_a: str
    system_b: str
    first: str  # the system shown as answer A
    verdict: str | None  # "first" | "second" | "tie"; None when unparseable or the call failed
    winner: str | None  # a system name, "tie", or None
    raw: str
    model: str
    error: str | None
    prompt_tokens: int
    completion_tokens: int
    cost: float | None


def validate_template(template: str) -> None:
    """Raise ConfigError unless the template has exactly the placeholders {prompt}, {first} and {second}."""
    try:
        fields = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:
        raise ConfigError(
            f"the judge prompt has unbalanced braces ({exc}): write {{{{ and }}}} for literal braces"
        ) from None
    unknown = sorted({f or "{}" for f in fields} - PLACEHOLDERS)
    if unknown:
        raise ConfigError(
            f"the judge prompt has unknown placeholders {', '.join(unknown)}: use only {{prompt}}, {{first}} and "
            "{second}, and write {{ and }} for literal braces"
        )
    missing = sorted(PLACEHOLDERS - set(fields))
    if missing:
        raise ConfigError(
            f"the judge prompt lacks {', '.join('{' + m + '}' for m in missing)}: it must show the prompt and both "
            "answers"
        )
    try:
        template.format(prompt="", first="", second="")
    except (ValueError, KeyError, IndexError, AttributeError) as exc:
        raise ConfigError(
            f"the judge prompt cannot be filled in ({exc}): use plain {{prompt}}, {{first}} and {{second}}"
        ) from None


def position_verdict(text: str) -> str | None:
    """The position a judge's reply prefers ("first", "second", "tie"), or None.

    In order: its last [[A]]/[[B]]/[[C]]; a verdict it spells out ("verdict: B"); a single-bracket tag
    when it is the only one ([A], [C]: small judges drop a bracket); a bare letter as the last line.
    Different single-bracket tags ("[A] [B] [C] ...") are a list, not a verdict, and the template's
    own markers echoed back ("[Start of answer A]") are ignored.
    """
    text = _ECHO.sub(" ", text)  # "[End of answer A]" repeated by a small judge is not a vote for A
    bracketed = _BRACKETED.findall(text)
    verdict = bracketed[-1] if bracketed else explicit_verdict(text)
    if verdict is None:
        tags = {tag.upper() for tag in _SINGLE.findall(text)}
        if len(tags) > 1:
            return None
        verdict = tags.pop() if tags else last_line_verdict(text)
    return None if verdict is None else _POSITIONS[verdict.upper()]


async def _judge_once(
    prompt: str,
    first: tuple[str, str],
    second: tuple[str, str],
    pair: tuple[str, str],
    *,
    model: str,
    completer: Completer,
    template: str,
    params: GenParams,
) -> Judgement:
    record = Judgement(
        system_a=pair[0],
        system_b=pair[1],
        first=first[0],
        verdict=None,
        winner=None,
        raw="",
        model=model,
        error=None,
        prompt_tokens=0,
        completion_tokens=0,
        cost=None,
    )
    messages: list[Message] = [
        {"role": "user", "content": template.format(prompt=prompt, first=first[1], second=second[1])}
    ]
    try:
        reply = await completer.complete(model, messages, params)
    except FusionError as exc:
        record["error"] = str(exc)
        return record
    verdict = position_verdict(reply.text)
    names = {"first": first[0], "second": second[0], TIE: TIE}
    record.update(
        raw=reply.text,
        verdict=verdict,
        winner=None if verdict is None else names[verdict],
        prompt_tokens=reply.prompt_tokens,
        completion_tokens=reply.completion_tokens,
        cost=reply.cost,
    )
    return record


def _check_pair(system_a: str, system_b: str) -> None:
    if system_a == system_b:
        raise ConfigError(f"the pair ({system_a!r}, {system_b!r}) compares a system with itself: pick two systems")
    if TIE in (system_a, system_b):
        raise ConfigError(f"{TIE!r} is the name of a tied verdict: give that system another name")


async def judge_pair(
    prompt: str,
    system_a: str,
    text_a: str,
    system_b: str,
    text_b: str,
    *,
    model: str,
    completer: Completer,
    template: str = DEFAULT_JUDGE_PROMPT,
    params: GenParams = DEFAULT_JUDGE_PARAMS,
) -> list[Judgement]:
    """Judge two answers in both orders, concurrently: [A shown first, B shown first]. Model errors become records."""
    validate_template(template)
    _check_pair(system_a, system_b)
    a, b, pair = (system_a, text_a), (system_b, text_b), (system_a, system_b)
    options: dict[str, Any] = {"model": model, "completer": completer, "template": template, "params": params}
    return list(
        await asyncio.gather(_judge_once(prompt, a, b, pair, **options), _judge_once(prompt, b, a, pair, **options))
    )


async def judge_item(
    prompt: str,
    outputs: dict[str, str | None],
    pairs: list[tuple[str, str]],
    *,
    model: str,
    completer: Completer,
    template: str = DEFAULT_JUDGE_PROMPT,
    params: GenParams = DEFAULT_JUDGE_PARAMS,
) -> list[Judgement]:
    """Judge every pair whose outputs are both non-blank, both orders each, all concurrently; records in pair order."""
    validate_template(template)
    for a, b in pairs:
        _check_pair(a, b)
    usable = [(a, b) for a, b in pairs if (outputs.get(a) or "").strip() and (outputs.get(b) or "").strip()]
    options: dict[str, Any] = {"model": model, "completer": completer, "template": template, "params": params}
    results = await asyncio.gather(
        *(judge_pair(prompt, a, outputs[a] or "", b, outputs[b] or "", **options) for a, b in usable)
    )
    return [record for pair_records in results for record in pair_records]


_PAIR_KEYS = ["item_id", "language", "system_a", "system_b"]


def pair_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Per (item_id, language, system_a, system_b): system_a's mean score over the orders with a verdict
    (win 1, tie 0.5, loss 0; NaN when none), n_orders, and whether both orders agree (same winner or both tie)."""
    missing = [c for c in ("item_id", "system_a", "system_b", "winner") if c not in frame.columns]
    if missing:
        raise ConfigError(f"the judgements lack the columns {', '.join(missing)}: pass judge records plus item_id")
    rows = with_languages(frame)
    parsed = rows["winner"].notna()
    if "verdict" in rows.columns:
        parsed &= rows["verdict"].notna()
    score = np.where(rows["winner"].eq(rows["system_a"]), 1.0, np.where(rows["winner"].eq(TIE), 0.5, 0.0))
    rows = rows.assign(score=np.where(parsed, score, np.nan), verdict_winner=rows["winner"].where(parsed))
    grouped = rows.groupby(_PAIR_KEYS, sort=True, dropna=False)
    out = grouped.agg(
        score=("score", "mean"), n_orders=("score", "count"), distinct=("verdict_winner", "nunique")
    ).reset_index()
    out["consistent"] = out["n_orders"].ge(2) & out["distinct"].eq(1)
    return out.drop(columns="distinct")


def _item_scores(outcomes: pd.DataFrame) -> pd.DataFrame:
    """One row per (language, item, system, opponent): the system's item score, both directions of every pair."""
    judged = outcomes[outcomes["score"].notna()]
    forward = judged.rename(columns={"system_a": "system", "system_b": "opponent"})
    backward = judged.rename(columns={"system_b": "system", "system_a": "opponent"}).assign(score=1.0 - judged["score"])
    both = pd.concat([forward, backward], ignore_index=True)
    keys = ["language", "item_id", "system", "opponent"]
    return both.groupby(keys, sort=True, dropna=False)["score"].mean().reset_index()


def bootstrap_mean(scores: np.ndarray, rounds: int, rng: np.random.Generator, level: float) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of `scores`, resampling its entries with replacement."""
    n = len(scores)
    means = np.empty(rounds)
    chunk = max(1, 2_000_000 // max(n, 1))  # bound memory: rounds × n indices at a time
    for start in range(0, rounds, chunk):
        size = min(chunk, rounds - start)
        means[start : start + size] = scores[rng.integers(0, n, size=(size, n))].mean(axis=1)
    tail = (1.0 - level) / 2
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def win_rates(
    frame: pd.DataFrame, by_language: bool = True, rounds: int = 1000, seed: int = 0, level: float = 0.95
) -> pd.DataFrame:
    """Per language (and "all") and ordered pair (system, opponent): items, wins/ties/losses by item score,
    win_rate (mean item score, ties half) and a percentile bootstrap interval [lo, hi] over items."""
    if rounds < 1 or not 0.0 < level < 1.0:
        raise ConfigError(f"rounds={rounds}, level={level}: pass rounds >= 1 and a level between 0 and 1 (e.g. 0.95)")
    items = _item_scores(pair_outcomes(frame))
    items = with_all_language(items) if by_language else items.assign(language=ALL)
    columns = ["language", "system", "opponent", "n", "wins", "ties", "losses", "win_rate", "lo", "hi"]
    rows = []
    for (language, system, opponent), group in items.groupby(["language", "system", "opponent"], sort=True):
        scores = group["score"].to_numpy(dtype=float)
        # The same seed for every row: a pair's two directions draw the same items, so their intervals mirror.
        lo, hi = bootstrap_mean(scores, rounds, np.random.default_rng(seed), level)
        rows.append(
            {
                "language": language,
                "system": system,
                "opponent": opponent,
                "n": len(scores),
                "wins": int((scores > 0.5).sum()),
                "ties": int((scores == 0.5).sum()),
                "losses": int((scores < 0.5).sum()),
                "win_rate": float(scores.mean()),
                "lo": lo,
                "hi": hi,
            }
        )
    if not rows:
        return pd.DataFrame(columns=columns)
    return sort_by_language(pd.DataFrame(rows, columns=columns), "system", "opponent")


def position_bias(frame: pd.DataFrame) -> dict[str, float | int | None]:
    """How often parseable judgements chose the first / second position or a tie, and how often a pair's two
    orders agreed: {"n_judgements", "first", "second", "tie", "n_pairs", "consistent"} (shares None when n is 0)."""
    verdicts = frame["verdict"].dropna() if "verdict" in frame.columns else pd.Series(dtype=object)
    n = len(verdicts)
    shares = {v: (float(verdicts.eq(v).mean()) if n else None) for v in ("first", "second", TIE)}
    both = pair_outcomes(frame) if "item_id" in frame.columns else pd.DataFrame({"n_orders": [], "consistent": []})
    both = both[both["n_orders"] >= 2]
    return {
        "n_judgements": n,
        **shares,
        "n_pairs": len(both),
        "consistent": float(both["consistent"].mean()) if len(both) else None,
    }
