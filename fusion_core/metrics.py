"""Reference metrics for experiments: chrF++ and BLEU against a reference, and short-answer correctness.

Scores are sacrebleu's, on its 0–100 scale. Sentence BLEU uses the effective order (short
sentences are not zeroed by missing 4-grams); corpus BLEU uses the standard definition. The
tokenizer follows the reference's language: Chinese gets sacrebleu's "zh" tokenizer, Japanese and
Korean the character tokenizer (no MeCab needed), everything else "13a".

The oracle is the candidate closest (chrF++) to the reference: the best any Best-of-N selector
could have picked, so "fusion beats the oracle" means fusion wrote something no candidate had.
"""

from __future__ import annotations

import math
import re
from fractions import Fraction
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import pandas as pd

from .errors import ConfigError
from .selection import extract_final_answer

if TYPE_CHECKING:
    from sacrebleu.metrics import BLEU, CHRF

ALL = "all"  # the language of the rows that pool every language
UNKNOWN_LANGUAGE = "unknown"
ORACLE = "oracle"
METRICS = ("chrf", "bleu")
_CHAR_LANGUAGES = frozenset({"ja", "ko"})


def tokenizer_for(language: str | None) -> str:
    """sacrebleu's BLEU tokenizer for a language tag ("zh-CN", "ja", "fr"): "zh", "char" for ja/ko, else "13a"."""
    primary = re.split(r"[-_]", (language or "").strip().lower(), maxsplit=1)[0]
    if primary == "zh":
        return "zh"
    return "char" if primary in _CHAR_LANGUAGES else "13a"


@lru_cache(maxsize=1)
def _chrf() -> CHRF:
    from sacrebleu.metrics import CHRF

    return CHRF(word_order=2)


@lru_cache(maxsize=16)
def _bleu(tokenize: str, effective_order: bool) -> BLEU:
    from sacrebleu.metrics import BLEU

    return BLEU(tokenize=tokenize, effective_order=effective_order)


def chrf_pp(hypothesis: str, reference: str) -> float:
    """Sentence-level chrF++ (0–100); a blank hypothesis scores 0."""
    if not (hypothesis or "").strip():
        return 0.0
    return float(_chrf().sentence_score(hypothesis, [reference]).score)


def bleu(hypothesis: str, reference: str, language: str | None = None) -> float:
    """Sentence-level BLEU (0–100, effective order) with the language's tokenizer; a blank hypothesis scores 0."""
    if not (hypothesis or "").strip():
        return 0.0
    return float(_bleu(tokenizer_for(language), True).sentence_score(hypothesis, [reference]).score)


def corpus_scores(hypotheses: list[str], references: list[str], language: str | None = None) -> dict[str, float]:
    """Corpus chrF++ and corpus BLEU of aligned hypotheses and references: {"chrf": ..., "bleu": ...}."""
    if len(hypotheses) != len(references):
        raise ConfigError(
            f"{len(hypotheses)} hypotheses but {len(references)} references: pass one reference per hypothesis"
        )
    if not hypotheses:
        raise ConfigError("no hypotheses to score: pass at least one hypothesis and its reference")
    hyps = [h or "" for h in hypotheses]
    return {
        "chrf": float(_chrf().corpus_score(hyps, [references]).score),
        "bleu": float(_bleu(tokenizer_for(language), False).corpus_score(hyps, [references]).score),
    }


def _scores(text: str, reference: str, language: str | None) -> dict[str, float]:
    return {"chrf": chrf_pp(text, reference), "bleu": bleu(text, reference, language)}


def reference_metrics(
    systems: dict[str, str | None], candidates: list[str | None], reference: str, language: str | None = None
) -> dict[str, Any]:
    """chrF++/BLEU of each system's output and each candidate, plus the oracle (the best candidate by chrF++).

    Returns {"systems": {name: {"chrf", "bleu"}}, "candidates": [{"chrf", "bleu"} | None], "oracle_index",
    "oracle"}. Failed candidates (None) score None; a system whose output is None is left out; the oracle
    (ties to the lowest index) is also added to "systems" when some candidate succeeded.
    """
    if ORACLE in systems:
        raise ConfigError(f"{ORACLE!r} is the name of the best candidate: give that system another name")
    scored = [None if text is None else _scores(text, reference, language) for text in candidates]
    ranked = [(s["chrf"], -i) for i, s in enumerate(scored) if s is not None]
    oracle_index = -max(ranked)[1] if ranked else None
    oracle = None if oracle_index is None else scored[oracle_index]
    by_system = {name: _scores(text, reference, language) for name, text in systems.items() if text is not None}
    if oracle is not None:
        by_system[ORACLE] = dict(oracle)
    return {"systems": by_system, "candidates": scored, "oracle_index": oracle_index, "oracle": oracle}


_LATEX_FRAC = re.compile(r"\\[dt]?frac\{\s*([^{}]+?)\s*\}\{\s*([^{}]+?)\s*\}")
_LATEX_WRAP = re.compile(r"\\(?:text|textbf|mathrm|mathbf)\{([^{}]*)\}")
_NUMERIC = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:/\d+(?:\.\d*)?)?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")


def _as_number(answer: str) -> Fraction | None:
    """The value of a numeric answer ("1,000", "$12", "3/4", "\\frac{3}{4}", "-0.5"), else None."""
    text = _LATEX_FRAC.sub(r"\1/\2", answer.strip().lower())
    text = text.replace("\\$", "").replace("$", "").replace("\\!", "").replace(" ", "").rstrip(".")
    text = _THOUSANDS.sub("", text)
    if not _NUMERIC.fullmatch(text):
        return None
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def normalize_answer(text: str) -> str:
    """A canonical form of a short answer: numbers as "1000", "0.75" or "1/3"; else lowercase alphanumerics only."""
    number = _as_number(text)
    if number is not None:
        if number.denominator == 1:
            return str(number.numerator)
        twos, fives = _multiplicity(number.denominator, 2), _multiplicity(number.denominator, 5)
        if 2**twos * 5**fives == number.denominator:  # a terminating decimal: write it out exactly
            places = max(twos, fives)
            digits = str(abs(number.numerator) * 10**places // number.denominator).rjust(places + 1, "0")
            sign = "-" if number < 0 else ""
            return f"{sign}{digits[:-places]}.{digits[-places:]}".rstrip("0")
        return f"{number.numerator}/{number.denominator}"
    text = _LATEX_WRAP.sub(r"\1", text.strip().lower())
    return re.sub(r"[\W_]+", "", text)


def _multiplicity(n: int, p: int) -> int:
    count = 0
    while n % p == 0:
        n //= p
        count += 1
    return count


def answer_correct(text: str | None, answer: str | None) -> bool | None:
    """Whether the final answer in a model's text equals the gold answer; None when either is blank."""
    text, answer = text or "", answer or ""
    if not text.strip() or not answer.strip():
        return None
    extracted = extract_final_answer(text)
    if extracted is None:
        return False
    got, gold = _as_number(extracted), _as_number(answer)
    if got is not None and gold is not None:
        return math.isclose(float(got), float(gold), rel_tol=1e-9, abs_tol=1e-12)
    return normalize_answer(extracted) == normalize_answer(answer)


def with_languages(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame with a string language column; a missing column or blank value becomes "unknown"."""
    if "language" not in frame.columns:
        return frame.assign(language=UNKNOWN_LANGUAGE)
    clean = frame["language"].map(lambda v: UNKNOWN_LANGUAGE if pd.isna(v) else str(v).strip() or UNKNOWN_LANGUAGE)
    return frame.assign(language=clean.astype(str))


def with_all_language(frame: pd.DataFrame) -> pd.DataFrame:
    """The frame, then a copy of every row under language "all" (for pooled rows)."""
    return pd.concat([frame, frame.assign(language=ALL)], ignore_index=True)


def sort_by_language(frame: pd.DataFrame, *by: str) -> pd.DataFrame:
    """Sorted by language with "all" last, then by the `by` columns; a fresh index."""
    order = frame.assign(_pooled=frame["language"].eq(ALL)).sort_values(["_pooled", "language", *by])
    return order.drop(columns="_pooled").reset_index(drop=True)


def _require(frame: pd.DataFrame, columns: tuple[str, ...]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ConfigError(f"the frame lacks the columns {', '.join(missing)}: pass one row per item and system")


def metric_summary(frame: pd.DataFrame) -> pd.DataFrame:
    """Per language (and "all") and system: n scored items, mean chrF++ and mean sentence BLEU."""
    _require(frame, ("item_id", "system", *METRICS))
    rows = with_all_language(with_languages(frame))
    summary = (
        rows.groupby(["language", "system"], sort=False)
        .agg(n=("chrf", "count"), chrf=("chrf", "mean"), bleu=("bleu", "mean"))
        .reset_index()
    )
    return sort_by_language(summary, "system")


def beats_oracle(frame: pd.DataFrame, system: str = "fusion", oracle: str = ORACLE) -> pd.DataFrame:
    """Per language (and "all"): items with both scores, share where `system` chrF++ beats / at least matches
    the oracle's, and the mean difference (system − oracle)."""
    _require(frame, ("item_id", "system", "chrf"))
    rows = with_languages(frame)
    rows = rows[rows["system"].isin([system, oracle]) & rows["chrf"].notna()]
    wide = rows.pivot_table(index=["language", "item_id"], columns="system", values="chrf", aggfunc="mean")
    columns = ["language", "n", "beats", "at_least", "mean_diff"]
    if system not in wide.columns or oracle not in wide.columns:
        return pd.DataFrame(columns=columns)
    wide = wide.dropna(subset=[system, oracle]).reset_index()
    diff = wide[system] - wide[oracle]
    items = with_all_language(pd.DataFrame({"language": wide["language"], "diff": diff}))
    out = (
        items.assign(beats=items["diff"] > 0, at_least=items["diff"] >= 0)
        .groupby("language", sort=False)
        .agg(n=("diff", "size"), beats=("beats", "mean"), at_least=("at_least", "mean"), mean_diff=("diff", "mean"))
        .reset_index()
    )
    return sort_by_language(out)[columns]
