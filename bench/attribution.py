"""Segment attribution: accuracy on spliced fusions with known truth, and speed on 8 candidates × 2,000 words.

Texts come from the project's own sentence banks (data/attribution_bench/*.json):
about 30 hand-written sentences per language plus 1,000 generated from templates
(subject × action × circumstance), and separate "novel" sentences that appear in
no candidate. A case has N candidates (different sentence sequences drawn from a
shared pool, so some sentences are in several candidates) and a fused answer made
of blocks of 1-3 consecutive sentences taken from random candidates, in random
order; a block is sometimes shuffled, a sentence has one word replaced 30% of the
time, and 15% of the fused sentences are novel. Sentences are joined by spaces,
blank lines, list markers or headings.

Truth per character: the candidates that contain the (unedited) sentence, or None
for a novel sentence; a prediction is right when it is in that set. Only the
non-whitespace characters of sentences are scored (not the list markers or
headings between them). For Chinese and Japanese, 2,000 words means 3,000
characters. The baseline runs one character-level diff-match-patch diff per
candidate (default 1 s timeout) and gives each fused character to the candidate
with the longest equal run covering it.

Linearity is measured twice: on independent passages (the bank with its letters
rotated per passage, so passages share no words: more text, same repetitiveness)
and on longer answers drawn from the same sentence pool (more text, and every
phrase recurs more often, so the index's occurrence lists grow too).
"""

from __future__ import annotations

import json
import random
import statistics
import time
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from diff_match_patch import diff_match_patch

from fusion_core.attribution import attribute

BANKS = Path(__file__).resolve().parent.parent / "data" / "attribution_bench"
LANGUAGES = ("en", "de", "es", "fr", "ru", "ko", "zh", "ja", "ar")
TRIALS = 80
BASELINE_TRIALS = 10
WORDS = 2000
CANDIDATES = 8


@dataclass
class Bank:
    """One language's sentences."""

    name: str
    spaced: bool
    sentences: list[str]  # hand-written and generated
    novel: list[str]

    def words(self, text: str) -> float:
        """Words in a text (characters / 1.5 for scripts without spaces)."""
        return len(text.split()) if self.spaced else len("".join(text.split())) / 1.5

    def joiner(self, rng: random.Random) -> str:
        """What goes between two sentences: mostly a space, sometimes Markdown structure."""
        r = rng.random()
        if r < 0.7:
            return " " if self.spaced else ""
        return "\n\n" if r < 0.8 else "\n- " if r < 0.93 else "\n\n## "


@dataclass
class Case:
    """Candidates, a fused answer, and the accepted sources of each scored character span."""

    candidates: list[str]
    fused: str
    truth: list[tuple[int, int, frozenset[int | None]]]


def load(lang: str) -> Bank:
    """A language's bank: hand-written sentences plus every template combination."""
    data = json.loads((BANKS / f"{lang}.json").read_text(encoding="utf-8"))
    a, b, c = data["slots"]
    generated = [data["template"].format(x, y, z) for x in a for y in b for z in c]
    return Bank(data["name"], data["spaced"], data["sentences"] + generated, data["novel"])


def edit(bank: Bank, sentence: str, rng: random.Random) -> str:
    """Replace one word (two characters in scripts without spaces) with a word from a novel sentence."""
    donor = rng.choice(bank.novel)
    if bank.spaced:
        words = sentence.split(" ")
        k = rng.randrange(len(words))
        body = words[k].rstrip(".,;:!?")
        new = rng.choice([w.strip(".,;:!?") for w in donor.split(" ") if len(w.strip(".,;:!?")) > 2] or ["x"])
        words[k] = new + words[k][len(body) :]
        return " ".join(words)
    spots = [i for i in range(len(sentence) - 2) if sentence[i].isalnum() and sentence[i + 1].isalnum()]
    i, d = rng.choice(spots), rng.randrange(len(donor) - 3)
    return sentence[:i] + donor[d : d + 2] + sentence[i + 2 :]


def join(bank: Bank, sentences: list[str], rng: random.Random) -> str:
    """Sentences as one text with varied separators."""
    out = sentences[:1]
    for s in sentences[1:]:
        out += [bank.joiner(rng), s]
    return "".join(out)


def splice(bank: Bank, rng: random.Random, n: int, pool: list[str], per_candidate: int, fused_words: float) -> Case:
    """Candidates drawn from a shared pool, and a fused answer spliced from them with known truth."""
    cands = [rng.sample(pool, min(per_candidate, len(pool))) for _ in range(n)]
    where: dict[str, set[int]] = {}
    for j, sentences in enumerate(cands):
        for s in sentences:
            where.setdefault(s, set()).add(j)
    parts: list[tuple[str, frozenset[int | None]]] = []
    while sum(bank.words(p) for p, _ in parts) < fused_words:
        if rng.random() < 0.15:
            parts.append((rng.choice(bank.novel), frozenset([None])))
            continue
        j = rng.randrange(n)
        k = rng.randrange(len(cands[j]))
        block = cands[j][k : k + rng.randint(1, 3)]
        if rng.random() < 0.3:
            rng.shuffle(block)
        for s in block:
            parts.append((edit(bank, s, rng) if rng.random() < 0.3 else s, frozenset(where[s])))
    fused, truth = "", []
    for k, (text, accepted) in enumerate(parts):
        fused += bank.joiner(rng) if k else ""
        truth.append((len(fused), len(fused) + len(text), accepted))
        fused += text
    return Case([join(bank, c, rng) for c in cands], fused, truth)


def sized(bank: Bank, rng: random.Random, scale: float = 1.0) -> Case:
    """The timing case: 8 candidates of about 2,000 words each (times `scale`), fused answer as long."""
    per = round(WORDS * scale / statistics.mean(bank.words(s) for s in bank.sentences))
    return splice(bank, rng, CANDIDATES, bank.sentences, per, WORDS * scale)


def ours(case: Case) -> list[int | None]:
    """Predicted source of every fused character, by fusion_core.attribution."""
    pred: list[int | None] = [None] * len(case.fused)
    for seg in attribute(case.fused, case.candidates).segments:
        pred[seg.start : seg.end] = [seg.source] * (seg.end - seg.start)
    return pred


def baseline(case: Case) -> list[int | None]:
    """One monotonic character diff per candidate; the longest equal run covering a character wins."""
    dmp = diff_match_patch()
    best = [0] * len(case.fused)
    pred: list[int | None] = [None] * len(case.fused)
    for j, cand in enumerate(case.candidates):
        pos = 0
        for op, text in dmp.diff_main(cand, case.fused):
            if op == 0:
                for p in range(pos, pos + len(text)):
                    if len(text) > best[p]:
                        best[p], pred[p] = len(text), j
            if op != -1:
                pos += len(text)
    return pred


def score(case: Case, pred: list[int | None]) -> tuple[int, int]:
    """(right, scored) over the non-whitespace characters of the fused sentences."""
    right = total = 0
    for start, end, accepted in case.truth:
        for p in range(start, end):
            if not case.fused[p].isspace():
                total += 1
                right += pred[p] in accepted
    return right, total


def timed(fn, case: Case, repeat: int) -> tuple[float, list[int | None]]:
    """Median wall time of `repeat` calls, and the last prediction."""
    times, pred = [], []
    for _ in range(repeat):
        started = time.perf_counter()
        pred = fn(case)
        times.append(time.perf_counter() - started)
    return statistics.median(times), pred


def trial_cases(bank: Bank, rng: random.Random, count: int) -> list[Case]:
    """Small and medium cases: 2-8 candidates of 4-14 sentences from a pool of 12-40 sentences."""
    cases = []
    for _ in range(count):
        pool = rng.sample(bank.sentences, rng.randint(12, 40))
        n = rng.randint(2, 8)
        cases.append(splice(bank, rng, n, pool, rng.randint(4, 14), rng.randint(40, 200)))
    return cases


def enciphered(text: str, shift: int) -> str:
    """The text with its letters rotated within their script, so that passages with different shifts share no
    words but keep their structure (the linearity check grows the text without growing its repetition)."""
    table = {}
    for low, high in _LETTERS:
        size = high - low + 1
        table.update({cp: low + (cp - low + shift) % size for cp in range(low, high + 1)})
    return text.translate(table)


_LETTERS = [(0x61, 0x7A), (0x41, 0x5A), (0x430, 0x44F), (0x410, 0x42F), (0x621, 0x63A), (0x3041, 0x3096),
            (0x30A1, 0x30FA), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3)]  # fmt: skip


def passages(bank: Bank, rng: random.Random, count: int) -> Case:
    """`count` independent 8 × 2,000-word cases, each in its own cipher, joined passage by passage."""
    parts = [sized(bank, rng) for _ in range(count)]
    candidates = [
        "\n\n".join(enciphered(p.candidates[j], 7 * k) for k, p in enumerate(parts)) for j in range(CANDIDATES)
    ]
    return Case(candidates, "\n\n".join(enciphered(p.fused, 7 * k) for k, p in enumerate(parts)), [])


def row(name: str, acc: float, t_ours: float, base_acc: float, t_base: float) -> str:
    """One line of the table."""
    return f"  {name:10} {acc:8.2%} {t_ours * 1000:9.1f} ms   {base_acc:12.2%} {t_base:11.2f} s {t_base / t_ours:8.0f}×"


def main() -> None:
    """Print accuracy and speed per language, overall, and a linearity check."""
    print(f"Segment attribution: {TRIALS} spliced cases per language + one of {CANDIDATES} candidates × {WORDS} words")
    print("  targets: accuracy ≥ 99% overall and ≥ 98% per language; ≤ 0.1 s and ≥ 50× faster than the baseline")
    print(
        f"  {'language':10} {'accuracy':>9} {'time 8×2000':>12}   {'baseline acc':>12} {'baseline time':>13} speed-up"
    )
    totals = {"ours": [0, 0], "base": [0, 0]}
    times: dict[str, list[float]] = {"ours": [], "base": []}
    for lang in LANGUAGES:
        bank, rng = load(lang), random.Random(f"attribution-{lang}")
        cases = trial_cases(bank, rng, TRIALS)
        big = sized(bank, rng)
        t_ours, pred = timed(ours, big, 7)
        counts = [score(big, pred), *(score(c, ours(c)) for c in cases)]
        t_base, pred = timed(baseline, big, 1)
        base_counts = [score(big, pred), *(score(c, baseline(c)) for c in cases[:BASELINE_TRIALS])]
        times["ours"].append(t_ours)
        times["base"].append(t_base)
        print(row(bank.name, _add(totals["ours"], counts), t_ours, _add(totals["base"], base_counts), t_base))
    t_ours, t_base = statistics.mean(times["ours"]), statistics.mean(times["base"])
    acc, base_acc = (totals[k][0] / totals[k][1] for k in ("ours", "base"))
    print(row("overall", acc, t_ours, base_acc, t_base))
    slowest = max(times["ours"]) * 1000
    print(f"  (times: median of 7 runs, the baseline 1; overall: mean over languages, slowest {slowest:.1f} ms;")
    print(f"   baseline accuracy over the 8×2000 case and the first {BASELINE_TRIALS} spliced cases per language)")
    print("  linearity, time at 1×, 2×, 4× the length (ideal ratio 2.0 per doubling):")
    for lang in ("en", "zh", "ar"):
        bank = load(lang)
        fresh = [timed(ours, passages(bank, random.Random(f"linear-{lang}"), k), 3)[0] for k in (1, 2, 4)]
        reused = [timed(ours, sized(bank, random.Random(f"linear-{lang}"), k), 3)[0] for k in (1, 2, 4)]
        for label, series in (("new text", fresh), ("same pool", reused)):
            ratios = " ".join(f"{b / a:.2f}" for a, b in pairwise(series))
            shown = "  ".join(f"{t * 1000:7.1f} ms" for t in series)
            print(f"    {bank.name:9} {label:10} {shown}   ratios {ratios}")
    print("  (new text: independent passages that share no words; same pool: longer answers drawn from the same")
    print("   1,032 sentences, so every phrase recurs more often as the text grows)")


def _add(total: list[int], counts: list[tuple[int, int]]) -> float:
    right, scored = sum(r for r, _ in counts), sum(t for _, t in counts)
    total[0] += right
    total[1] += scored
    return right / scored


if __name__ == "__main__":
    main()
