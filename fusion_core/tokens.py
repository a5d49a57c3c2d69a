"""Tokens for attribution and the diff view, in every script.

A token is a run of word characters (with their combining marks) in scripts
written with spaces, a single character in scripts written without them (Han,
kana, Thai, Lao, Khmer, Myanmar), or a single other symbol. The diff view also
keeps whitespace runs as tokens so that texts rebuild exactly.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

# Scripts written without spaces: every character is a token.
CHAR_SCRIPTS = (
    "\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fdf\u3005-\u3007\u3021-\u3029\u3031-\u3035\u303b"
    "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003134f"
)
CHARS_RE = re.compile(f"[{CHAR_SCRIPTS}]")
SENTENCE_END = frozenset(".!?;。．｡！？؟۔।॥…")
_CJK_END = frozenset("。｡！？")


@cache
def _word() -> str:
    """A regex for one word: word characters and combining marks, outside the unspaced scripts."""
    marks, start = [], None
    for cp in range(0x10000):
        is_mark = unicodedata.category(chr(cp))[0] == "M" and not CHARS_RE.match(chr(cp))
        if is_mark and start is None:
            start = cp
        elif not is_mark and start is not None:
            marks.append(f"\\u{start:04x}-\\u{cp - 1:04x}")
            start = None
    m, w = "".join(marks), f"[^\\W{CHAR_SCRIPTS}]"
    return rf"(?:{w}|[{m}]){w}*(?:[{m}]+{w}*)*"


@cache
def token_pattern() -> re.Pattern[str]:
    """Words, single characters of unspaced scripts, single symbols; no whitespace."""
    return re.compile(rf"{_word()}|[{CHAR_SCRIPTS}]|\S")


@cache
def diff_pattern() -> re.Pattern[str]:
    """Like `token_pattern`, plus whitespace runs, so that the tokens of a text join back into it."""
    return re.compile(rf"\s+|{_word()}|[{CHAR_SCRIPTS}]|\S")


class Vocab:
    """Interns tokens to small integers (from 1); tokens equal after NFKC and casefold share an id."""

    def __init__(self) -> None:
        self.raw: dict[str, int] = {}
        self.norm: dict[str, int] = {}

    def ids(self, tokens: list[str]) -> list[int]:
        """The id of each token."""
        raw = self.raw
        return [raw[t] if t in raw else self._add(t) for t in tokens]

    def _add(self, token: str) -> int:
        key = unicodedata.normalize("NFKC", token).casefold()
        self.raw[token] = tid = self.norm.setdefault(key, len(self.norm) + 1)
        return tid


def as_text(ids: list[int]) -> str:
    """Token ids as a string, one character each, for fast substring search."""
    return "".join([chr(i if i < 0xD800 else i + 0x800) for i in ids])


def weights(spans: list[tuple[int, int]], raw: list[str]) -> list[float]:
    """Each token's weight in words.

    A whitespace-delimited word ("l'autre", "costs.") weighs 1, a short one ("of", "l'") 1/2, shared by its
    tokens that have letters or digits; punctuation and Markdown marks weigh nothing; a character of a script
    without spaces weighs 1/2.
    """
    out = [0.0] * len(raw)
    t = 0
    while t < len(raw):
        if CHARS_RE.match(raw[t]):
            out[t] = 0.5
            t += 1
            continue
        u = t + 1
        while u < len(raw) and spans[u][0] == spans[u - 1][1] and not CHARS_RE.match(raw[u]):
            u += 1
        wordy = [w for w in range(t, u) if raw[w][0].isalnum() or len(raw[w]) > 1]
        letters = sum(len(raw[w]) for w in wordy)
        for w in wordy:
            out[w] = (1.0 if letters > 2 else 0.5) / len(wordy)
        t = u
    return out


def sentence_starts(text: str, spans: list[tuple[int, int]], raw: list[str]) -> list[bool]:
    """For each token: does a sentence or a line start there? (A full stop needs a space after it.)"""
    starts = [True] * len(spans)
    for t in range(1, len(spans)):
        prev_end, here, prev = spans[t - 1][1], spans[t][0], raw[t - 1]
        if "\n" in text[prev_end:here]:
            continue
        if prev in SENTENCE_END and (prev in _CJK_END or here > prev_end):
            continue
        starts[t] = False
    return starts
