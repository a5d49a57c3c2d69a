"""Best-of-N selection: pick one of N candidate answers to a prompt.

Methods (all skip failed candidates, whose score is None):

- judge: an LLM judge scores each candidate 1..scale on its own (one call each, concurrent,
  one re-ask when the score cannot be parsed); the highest score wins. All-unscored falls back to mbr.
- pairwise: a knockout tournament; every match is judged twice with the positions swapped, so a
  judge that always prefers "A" produces ties (and the lower index advances) instead of a bias.
- mbr: minimum Bayes risk; the candidate with the highest mean (symmetric) chrF to the others.
- majority: a vote over extracted final answers (\\boxed{}, "answer is", "####", last number).
- oracle: the candidate closest (chrF) to a reference answer, the upper bound of any selector.
- reward: a reward model, called in process (`reward_fn`) or over HTTP (`reward_url`).

Ties go to the lowest index everywhere, so a selection is deterministic given the judge's replies.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from fractions import Fraction

import httpx

from .errors import ConfigError, ModelError
from .llm import Completer
from .types import Candidate, GenParams, Message, Selection, Usage

log = logging.getLogger(__name__)

SELECTORS: tuple[str, ...] = ("judge", "pairwise", "mbr", "majority", "oracle", "reward")
LLM_SELECTORS = ("judge", "pairwise")

JUDGE_PROMPT = """You are an impartial judge. Rate how well the response below answers the user's prompt, \
considering correctness, helpfulness and clarity, on a scale from 1 (worst) to {scale} (best).

[Prompt]
{prompt}

[Response]
{response}

Give a brief reason in one or two sentences, then end with a final line of the form \
"Score: <number from 1 to {scale}>"."""

REASK_PROMPT = "Reply with only: Score: <number from 1 to {scale}>"

PAIRWISE_PROMPT = """You are an impartial judge. Compare the two responses below to the same prompt and decide \
which one answers it better (correct, helpful, clear). Do not let the order in which the responses appear, \
or their length, influence your decision.

[Prompt]
{prompt}

[Response A]
{a}

[Response B]
{b}

After a brief explanation, give your verdict on the last line: "[[A]]" if A is better, "[[B]]" if B is better, \
or "[[tie]]" if they are equally good."""

REWARD_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class SelectorConfig:
    """How to pick the Best-of-N candidate."""

    method: str = "judge"
    judge_model: str = "local/smollm2-135m"
    reference: str | None = None  # required for "oracle"
    reward_url: str | None = None  # "reward": POST {"prompt", "response"} -> {"score"}
    max_tokens: int = 256  # for judge calls
    scale: int = 10  # pointwise score range 1..scale
    reward_fn: Callable[[str, str], float] | None = field(default=None, compare=False, hash=False)


@dataclass
class _Outcome:
    scores: list[float | None]
    note: str = ""
    index: int | None = None  # set when the method decides itself (pairwise); else the max score wins
    model: str | None = None
    fallback: str | None = None  # the method that decided instead (the judge never gave a usable score)


def validate(config: SelectorConfig, completer: Completer | None = None) -> None:
    """Raise ConfigError for a config `select` cannot run (and ModelError for an unusable judge, given a completer)."""
    if config.method not in SELECTORS:
        raise ConfigError(f"unknown selector {config.method!r}: pass one of {', '.join(SELECTORS)}")
    if config.method == "oracle" and not (config.reference or "").strip():
        raise ConfigError("the oracle selector needs a reference answer: pass reference=...")
    if config.method == "reward" and config.reward_fn is None and not (config.reward_url or "").strip():
        raise ConfigError("the reward selector needs a reward model: pass reward_url=http://... or reward_fn=...")
    if config.method in LLM_SELECTORS:
        if not config.judge_model.strip():
            raise ConfigError(f"the {config.method} selector needs a judge: pass judge_model=provider/name")
        if config.scale < 2 or config.max_tokens < 1:
            raise ConfigError("pass scale >= 2 and max_tokens >= 1 for the judge")
        if completer is not None:
            completer.check_model(config.judge_model)


async def select(prompt: str, candidates: list[Candidate], config: SelectorConfig, completer: Completer) -> Selection:
    """Pick the best successful candidate with `config.method`."""
    validate(config)
    started = time.perf_counter()
    ok = [c for c in candidates if c.ok]
    if not ok:
        raise ConfigError("no successful candidate to select from: sample again or check the models' errors")
    usage = Usage()
    if len(ok) == 1:
        only = ok[0].index
        scores = [1.0 if c.index == only else None for c in candidates]
        outcome = _Outcome(scores, f"only candidate {only + 1} succeeded; picked it without judging", only)
    elif config.method == "judge":
        outcome = await _judge(prompt, candidates, config, completer, usage)
    elif config.method == "pairwise":
        outcome = await _pairwise(prompt, candidates, config, completer, usage)
    elif config.method == "mbr":
        outcome = _mbr(candidates)
    elif config.method == "majority":
        outcome = _majority(candidates)
    elif config.method == "oracle":
        outcome = _oracle(candidates, config.reference or "")
    else:
        outcome = await _reward(prompt, candidates, config)
    index = outcome.index if outcome.index is not None else _argmax(outcome.scores)
    rationale = outcome.note if len(ok) == 1 else f"{outcome.note}; picked candidate {index + 1}"
    log.info("selection %s: %s", config.method, rationale)
    return Selection(
        index=index,
        method=f"{config.method}→{outcome.fallback}" if outcome.fallback else config.method,
        scores=outcome.scores,
        rationale=rationale,
        model=outcome.model,
        prompt_tokens=usage.prompt_tokens,
        completion_tokens=usage.completion_tokens,
        cost=usage.cost,
        latency_s=time.perf_counter() - started,
    )


def _argmax(scores: list[float | None]) -> int:
    scored = [(s, -i) for i, s in enumerate(scores) if s is not None]
    return -max(scored)[1]


def _fmt(scores: list[float | None]) -> str:
    return ", ".join("-" if s is None else f"{s:.3g}" for s in scores)


def _collect(
    label: str, candidates: list[Candidate], ok: list[Candidate], results: list[float | str]
) -> tuple[list[float | None], str]:
    """Scores aligned with `candidates` and a note; a str result is the reason a candidate has no score."""
    scores: list[float | None] = [None] * len(candidates)
    problems = []
    for c, result in zip(ok, results, strict=True):
        if isinstance(result, str):
            problems.append(f" (candidate {c.index + 1}: {result})")
        else:
            scores[c.index] = result
    return scores, f"{label} {_fmt(scores)}" + "".join(problems)


def _or_mbr(scores: list[float | None], note: str, candidates: list[Candidate], model: str | None) -> _Outcome:
    """The scores, or mbr's when no candidate got one (the judge or reward model failed throughout)."""
    if any(s is not None for s in scores):
        return _Outcome(scores, note, model=model)
    fallback = _mbr(candidates)
    note = f"{note}; nothing scored, fell back to {fallback.note}"
    return _Outcome(fallback.scores, note, model=model, fallback="mbr")


_NUM = r"(-?\d+(?:\.\d+)?)"
_LABELLED = re.compile(
    rf"\b(?:score|rating)\b[\s*_:=\[(]*(?:is|of)?[\s*_:=\[(]*{_NUM}(?:\s*(?:/|out of)\s*(\d+(?:\.\d+)?))?",
    re.IGNORECASE,
)
_FRACTION = re.compile(rf"{_NUM}\s*/\s*(\d+)\b")


def parse_score(text: str, scale: int = 10) -> float | None:
    """The judge's score in 1..scale: the last labelled one, else an x/scale, else a lone number on the last line."""
    labelled = list(_LABELLED.finditer(text))
    if labelled:
        value, denominator = float(labelled[-1].group(1)), labelled[-1].group(2)
        if denominator and float(denominator) > 0 and float(denominator) != scale:
            value = value / float(denominator) * scale
        return min(max(value, 1.0), float(scale))
    fractions = [m for m in _FRACTION.finditer(text) if int(m.group(2)) == scale]
    if fractions:
        return min(max(float(fractions[-1].group(1)), 1.0), float(scale))
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1].strip(" \t*_#>`.") if lines else ""
    if re.fullmatch(r"\d+(?:\.\d+)?", last) and 0 <= float(last) <= scale:
        return max(float(last), 1.0)
    return None


async def _ask(completer: Completer, model: str, messages: list[Message], params: GenParams, usage: Usage) -> str:
    reply = await completer.complete(model, messages, params)
    usage.add(reply.prompt_tokens, reply.completion_tokens, reply.cost)
    return reply.text


def _judge_params(config: SelectorConfig) -> GenParams:
    return GenParams(temperature=0.0, max_tokens=config.max_tokens, seed=0)


async def _score_one(prompt: str, text: str, config: SelectorConfig, completer: Completer, usage: Usage) -> float | str:
    """A score, or a short reason there is none."""
    params = _judge_params(config)
    messages: list[Message] = [
        {"role": "user", "content": JUDGE_PROMPT.format(scale=config.scale, prompt=prompt, response=text)}
    ]
    try:
        reply = await _ask(completer, config.judge_model, messages, params, usage)
        score = parse_score(reply, config.scale)
        if score is None:
            messages += [
                {"role": "assistant", "content": reply},
                {"role": "user", "content": REASK_PROMPT.format(scale=config.scale)},
            ]
            reply = await _ask(completer, config.judge_model, messages, params, usage)
            score = parse_score(reply, config.scale)
    except ModelError as exc:
        return f"judge error: {exc}"
    return "no score in the judge's reply" if score is None else score


async def _judge(
    prompt: str, candidates: list[Candidate], config: SelectorConfig, completer: Completer, usage: Usage
) -> _Outcome:
    ok = [c for c in candidates if c.ok]
    results = await asyncio.gather(*(_score_one(prompt, c.text, config, completer, usage) for c in ok))
    return _or_mbr(*_collect("judge scores", candidates, ok, results), candidates, config.judge_model)


_VERDICTS = (
    re.compile(r"\[\[\s*(A|B|tie)\s*\]\]", re.IGNORECASE),
    re.compile(
        r"(?i:\b(?:answer|verdict|output|winner|choice|decision)\b)[\s*_:=\-]*(?:\(\s*)?"
        r"(?i:(?:is\s+)?(?:response\s+|assistant\s+)?)([AB]|(?i:tie))\b"
    ),
    re.compile(r"\(\s*([abAB])\s*\)"),
    re.compile(r"\b(?i:response|assistant)\s+([AB])\s+(?i:is\s+better|wins)"),
    re.compile(r"\b(tie)\b", re.IGNORECASE),
)


def parse_verdict(text: str) -> str | None:
    """The verdict "A", "B" or "tie" from a pairwise judge's reply (the last verdict wins), or None."""
    return explicit_verdict(text) or last_line_verdict(text)


def explicit_verdict(text: str) -> str | None:
    """The last verdict the reply spells out ([[A]], "verdict: B", (a), "tie", ...), or None."""
    found = [(m.start(1), m.group(1)) for pattern in _VERDICTS for m in pattern.finditer(text)]
    if not found:
        return None
    verdict = max(found)[1]
    return "tie" if verdict.lower() == "tie" else verdict.upper()


def last_line_verdict(text: str) -> str | None:
    """A bare "A", "B" or "tie" as the reply's last line."""
    lines = [line for line in text.splitlines() if line.strip()]
    last = lines[-1].strip(" \t*_#.:'\"()[]`").lower() if lines else ""
    return {"a": "A", "b": "B", "tie": "tie"}.get(last)


async def _pairwise(
    prompt: str, candidates: list[Candidate], config: SelectorConfig, completer: Completer, usage: Usage
) -> _Outcome:
    params = _judge_params(config)
    scores: list[float | None] = [0.0 if c.ok else None for c in candidates]
    problems: list[str] = []

    async def order(a: int, b: int) -> str:
        content = PAIRWISE_PROMPT.format(prompt=prompt, a=candidates[a].text, b=candidates[b].text)
        try:
            reply = await _ask(completer, config.judge_model, [{"role": "user", "content": content}], params, usage)
        except ModelError as exc:
            problems.append(f"{a + 1} vs {b + 1}: judge error: {exc}")
            return "tie"
        verdict = parse_verdict(reply)
        if verdict is None:
            problems.append(f"{a + 1} vs {b + 1}: no verdict, counted as a tie")
        return verdict or "tie"

    async def match(i: int, j: int) -> int:
        points = {i: 0.0, j: 0.0}
        for (a, b), verdict in zip(((i, j), (j, i)), await asyncio.gather(order(i, j), order(j, i)), strict=True):
            if verdict == "tie":
                points[a] += 0.5
                points[b] += 0.5
            else:
                points[a if verdict == "A" else b] += 1.0
        for k, p in points.items():
            scores[k] = (scores[k] or 0.0) + p
        return i if points[i] > points[j] else j if points[j] > points[i] else min(i, j)

    alive = [c.index for c in candidates if c.ok]
    while len(alive) > 1:
        pairs = [(alive[k], alive[k + 1]) for k in range(0, len(alive) - 1, 2)]
        winners = await asyncio.gather(*(match(i, j) for i, j in pairs))
        alive = list(winners) + ([alive[-1]] if len(alive) % 2 else [])
    note = f"pairwise knockout points {_fmt(scores)}" + "".join(f" ({p})" for p in problems)
    return _Outcome(scores, note, alive[0], config.judge_model)


def _chrf(hypothesis: str, reference: str) -> float:
    from sacrebleu.metrics import CHRF

    return CHRF().sentence_score(hypothesis, [reference]).score


def chrf_matrix(texts: list[str]) -> list[list[float]]:
    """chrF of every text (hypothesis, row) against every other (reference, column), as `_chrf` scores them.

    Each text's character n-grams are extracted once instead of once per pair (sacrebleu's own
    per-segment steps), which halves MBR's cost at N=4 and more at larger N.
    """
    from sacrebleu.metrics import CHRF

    metric = CHRF()
    grams = [metric._extract_reference_info([t])["ref_ngrams"][0] for t in texts]

    def score(h: int, r: int) -> float:
        stats: list[int] = []
        for hyp, ref in zip(grams[h], grams[r], strict=True):
            stats.extend(metric._get_match_statistics(hyp, ref))
        return metric._compute_f_score(stats)

    return [[score(h, r) if h != r else 100.0 for r in range(len(texts))] for h in range(len(texts))]


def _mbr(candidates: list[Candidate]) -> _Outcome:
    ok = [c for c in candidates if c.ok]
    totals = {c.index: 0.0 for c in ok}
    table = chrf_matrix([c.text for c in ok])
    for n, a in enumerate(ok):
        for m in range(n + 1, len(ok)):
            b = ok[m]
            similarity = (table[n][m] + table[m][n]) / 2  # symmetric: chrF favours recall
            totals[a.index] += similarity
            totals[b.index] += similarity
    scores = [totals[c.index] / (len(ok) - 1) if c.ok else None for c in candidates]
    return _Outcome(scores, f"mbr mean chrF {_fmt(scores)}")


def _oracle(candidates: list[Candidate], reference: str) -> _Outcome:
    scores = [_chrf(c.text, reference) if c.ok else None for c in candidates]
    return _Outcome(scores, f"oracle chrF to the reference {_fmt(scores)}")


_ANSWER = re.compile(r"(?:####|\banswer\b(?:\s+is)?\s*[:=]?)\s*(.+)", re.IGNORECASE)
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?")  # a fraction such as 3/4 is one number


def _boxed(text: str) -> str | None:
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth, i = 1, start + len("\\boxed{")
    for j in range(i, len(text)):
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        if depth == 0:
            return text[i:j]
    return None


def _normalize(answer: str) -> str:
    answer = answer.strip().lower().strip("$ ").rstrip(".,;:!?$ ").strip()
    if re.fullmatch(r"-?\d{1,3}(?:,\d{3})+(?:\.\d+)?", answer):
        answer = answer.replace(",", "")
    if re.fullmatch(r"-?\d+(?:\.\d+)?", answer):
        answer = format(Decimal(answer).normalize(), "f")  # "3.0" -> "3", "100" stays "100"
    elif fraction := re.fullmatch(r"(-?\d+)\s*/\s*(\d+)", answer):
        answer = _fraction(int(fraction.group(1)), int(fraction.group(2)))
    return answer


def _fraction(numerator: int, denominator: int) -> str:
    """3/4 -> "0.75", 6/3 -> "2", 1/3 -> "1/3": the decimal when it is exact, else the reduced fraction."""
    if denominator == 0:
        return f"{numerator}/0"
    value = Fraction(numerator, denominator)
    rest = value.denominator
    for prime in (2, 5):
        while rest % prime == 0:
            rest //= prime
    if rest == 1:
        return format((Decimal(value.numerator) / Decimal(value.denominator)).normalize(), "f")
    return f"{value.numerator}/{value.denominator}"


def extract_final_answer(text: str) -> str | None:
    """The normalized final answer: \\boxed{}, else "answer is"/"Answer:"/"####", else the last number or line."""
    answer = _boxed(text)
    if answer is None:
        labelled = list(_ANSWER.finditer(text))
        if labelled:
            rest = labelled[-1].group(1).strip().lstrip("$*").strip()
            number = _NUMBER.match(rest)
            answer = number.group(0) if number else rest
    if answer is None:
        numbers = _NUMBER.findall(text)
        lines = [line for line in text.splitlines() if line.strip()]
        answer = numbers[-1] if numbers else (lines[-1] if lines else None)
    if answer is None:
        return None
    return _normalize(answer) or None


def _majority(candidates: list[Candidate]) -> _Outcome:
    ok = [c for c in candidates if c.ok]
    answers = {c.index: extract_final_answer(c.text) for c in ok}
    votes = Counter(a for a in answers.values() if a is not None)
    if not votes:
        return _or_mbr([None] * len(candidates), "majority found no final answers", candidates, None)
    scores = [
        votes[answers[c.index]] / len(ok) if c.ok and answers[c.index] is not None else (0.0 if c.ok else None)
        for c in candidates
    ]
    top = candidates[_argmax(scores)]
    counts = ", ".join(f"{a!r}: {n}" for a, n in votes.most_common())
    return _Outcome(
        scores, f"majority answer {answers[top.index]!r} with {votes[answers[top.index]]} of {len(ok)} votes ({counts})"
    )


async def _reward(prompt: str, candidates: list[Candidate], config: SelectorConfig) -> _Outcome:
    ok = [c for c in candidates if c.ok]
    if config.reward_fn is not None:
        fn = config.reward_fn

        async def one(c: Candidate) -> float | str:
            try:
                return float(fn(prompt, c.text))
            except Exception as exc:  # noqa: BLE001 - a user-supplied reward model may raise anything
                return f"reward_fn: {type(exc).__name__}: {exc}"

        results = await asyncio.gather(*(one(c) for c in ok))
        source = "reward_fn"
    else:
        url = (config.reward_url or "").strip()
        async with httpx.AsyncClient(timeout=REWARD_TIMEOUT_S) as client:
            results = await asyncio.gather(*(_post_reward(client, url, prompt, c.text) for c in ok))
        source = url
    return _or_mbr(*_collect("reward scores", candidates, ok, results), candidates, source)


async def _post_reward(client: httpx.AsyncClient, url: str, prompt: str, response: str) -> float | str:
    try:
        reply = await client.post(url, json={"prompt": prompt, "response": response})
        reply.raise_for_status()
        data = reply.json()
        value = data.get("score", data.get("reward")) if isinstance(data, dict) else None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return f"reward model at {url}: no numeric 'score' or 'reward' in {str(data)[:80]!r}"
        return float(value)
    except (httpx.HTTPError, ValueError) as exc:
        return f"reward model at {url}: {type(exc).__name__}: {exc}"
