"""Segment attribution: which parts of a fused answer came from which candidate.

Works on tokens (fusion_core.tokens): words, single characters of scripts written
without spaces, single symbols; compared after NFKC and casefold, interned to ints.

1. Index every 3-gram of every candidate.
2. Match. Scan the fused tokens left to right and take one run at a time, never
   past the end of a sentence (or line). The longest match over all occurrences
   of the gram at that position wins; continuing the previous run's candidate
   (which may skip a few tokens: the changed word) counts as an option too.
   When no run reaches the sentence end, each near-longest run is scored by how
   many tokens still line up after the mismatch, so a run is chosen for the
   sentence it belongs to, not for a common phrase. A run starting up to three
   tokens later replaces the run if it explains clearly more of the sentence.
   Ties go to the run whose candidate also has the words before it in the
   sentence, then to the continuation, then to the run that goes on matching
   past the sentence end, then to the candidate whose text sorts first, so that
   permuting the candidates only permutes the indices.
3. Drop chance matches: runs linked across changed words form a chain, and a
   chain lighter than four words that covers less than half of its sentence is a
   common phrase a novel sentence shares with some candidate ("of the same").
4. Fill changed words: an unmatched stretch of at most three words inside one
   sentence, between two linked runs of one candidate or at the sentence's start
   or end next to a run, goes to that run's candidate. Whole sentences stay None.
5. Segments cover the fused text exactly: whitespace joins tokens of the same
   source and goes to the left segment at a change. Each sentence piece lists in
   `sources` every candidate containing all of its verbatim runs; neighbours with
   the same source and sources are merged.

Shares are over non-whitespace characters (all characters when the fused text is
only whitespace), so indentation and line breaks do not count; for non-empty
text they sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise
from typing import Any

from .tokens import Vocab, as_text, sentence_starts, token_pattern, weights

K = 3  # tokens per indexed gram
GAP = 3.0  # largest changed stretch, in words, that stays with the surrounding span
MIN_RUN = 4.0  # lighter chains of runs are chance matches unless they cover most of their sentence
SKIP = 6  # tokens a candidate may skip while its run continues
LAZY = 3  # later start positions tried before a run is taken
CAP = 256  # occurrences of one gram that are considered (keeps repetitive text fast)
_PAD = "\0" * (K - 1)  # no token id is 0


@dataclass(frozen=True)
class Segment:
    """A stretch of the fused text [start, end) and the candidate(s) it came from."""

    start: int
    end: int
    source: int | None  # primary candidate index, None for text found in no candidate
    sources: tuple[int, ...] = ()  # every candidate that contains it, sorted

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return {"start": self.start, "end": self.end, "source": self.source, "sources": list(self.sources)}


@dataclass
class Attribution:
    """Segments covering the fused text, each candidate's share of it and the novel share."""

    segments: list[Segment]
    shares: list[float]  # one per candidate, by index
    novel: float

    def share_map(self) -> dict[str, float]:
        """Shares keyed by candidate index as a string, plus "novel"."""
        return {**{str(i): s for i, s in enumerate(self.shares)}, "novel": self.novel}

    def to_dict(self, fused: str | None = None) -> dict[str, Any]:
        """A JSON-ready dict; given the fused text, each segment also carries its text."""
        segments = [s.to_dict() for s in self.segments]
        if fused is not None:
            for d in segments:
                d["text"] = fused[d["start"] : d["end"]]
        return {"segments": segments, "shares": self.share_map()}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Attribution:
        """Rebuild from `to_dict` output."""
        shares = dict(data.get("shares") or {})
        novel = float(shares.pop("novel", 0.0))
        per_candidate = [0.0] * (max((int(k) for k in shares), default=-1) + 1)
        for k, v in shares.items():
            per_candidate[int(k)] = float(v)
        segments = [
            Segment(int(s["start"]), int(s["end"]), s.get("source"), tuple(s.get("sources") or ()))
            for s in data.get("segments") or ()
        ]
        return cls(segments, per_candidate, novel)

    def remap(self, indices: list[int], n: int) -> Attribution:
        """The same attribution with candidate i renamed indices[i], among n candidates."""
        shares = [0.0] * n
        for i, share in enumerate(self.shares):
            shares[indices[i]] = share
        segments = [
            Segment(
                s.start,
                s.end,
                None if s.source is None else indices[s.source],
                tuple(sorted(indices[c] for c in s.sources)),
            )
            for s in self.segments
        ]
        return Attribution(segments, shares, self.novel)


def attribute(fused: str, candidates: list[str]) -> Attribution:
    """Attribute every character of `fused` to the candidate it came from (or None)."""
    pattern, vocab = token_pattern(), Vocab()
    spans = [(m.start(), m.end()) for m in pattern.finditer(fused)]
    raw = [fused[a:b] for a, b in spans]
    F = as_text(vocab.ids(raw))  # one character per token: slicing, hashing and comparing run in C
    cands = [as_text(vocab.ids(pattern.findall(c))) for c in candidates]
    rank = sorted(range(len(cands)), key=lambda j: (candidates[j], j))
    weight, brk = weights(spans, raw), sentence_starts(fused, spans, raw)
    runs = _drop_chance(_match(F, cands, rank, brk), weight, brk)
    src, run_of = _fill(runs, len(F), weight, brk)
    return _with_shares(fused, _segments(fused, spans, src, run_of, F, cands, brk), len(candidates))


@dataclass
class _Run:
    start: int  # fused token index
    end: int
    cand: int
    pos: int  # token index in the candidate where the run starts


def _index(cands: list[str], rank: list[int]) -> dict[str, list[tuple[int, int]]]:
    """Every K-gram of every candidate (padded, so that its last tokens are indexed too), in candidate rank order."""
    index: dict[str, list[tuple[int, int]]] = {}
    for j in rank:
        C = cands[j] + _PAD
        for q in range(len(cands[j])):
            gram = C[q : q + K]
            occ = index.get(gram)
            if occ is None:
                index[gram] = [(j, q)]
            elif len(occ) < CAP:
                occ.append((j, q))
    return index


def _extend(F: str, i: int, end: int, C: str, q: int, start: int) -> int:
    """Length of the common prefix of F[i:end] and C[q:], knowing the first `start` tokens match."""
    length, limit = start, min(end - i, len(C) - q)
    while length < limit and length < start + 8:  # most matches are short
        if F[i + length] != C[q + length]:
            return length
        length += 1
    if length == limit or F[i + length : i + limit] == C[q + length : q + limit]:
        return limit
    low, high = length, limit  # F and C agree on [0, low) and differ somewhere in [low, high)
    while high - low > 1:
        mid = (low + high) // 2
        if F[i + low : i + mid] == C[q + low : q + mid]:
            low = mid
        else:
            high = mid
    return low


def _lookahead(F: str, i: int, end: int, C: str, q: int) -> int:
    """How many tokens of F[i:end] still line up with C after a changed word at F[i], C[q] (at most 16)."""
    nxt, best = F[i : min(i + 5, end)], 0
    for s in range(q, min(q + 5, len(C))):
        token = C[s]
        if token not in nxt:
            continue
        for g, f in enumerate(nxt):
            if f == token:
                length = _extend(F, i + g, min(end, i + g + 16), C, s, 1)
                if length > best:
                    best = length
    return best


def _lookbehind(F: str, start: int, i: int, C: str, q: int) -> int:
    """How many tokens of F[start:i] line up with C before q (at most 16), allowing a changed word before i."""
    before, best = F[max(start, i - 5) : i][::-1], 0
    for s in range(1, min(5, q) + 1):
        token = C[q - s]
        if token not in before:
            continue
        for g, f in enumerate(before):
            if f == token:
                length, top = 1, min(i - g - start, q - s + 1, 16)
                while length < top and F[i - g - 1 - length] == C[q - s - length]:
                    length += 1
                if length > best:
                    best = length
    return best


class _Matcher:
    """Finds the run to take at a fused position, given the run before it. Runs end at sentence ends."""

    def __init__(self, F: str, cands: list[str], rank: list[int], brk: list[bool]) -> None:
        self.F, self.cands, self.index = F, cands, _index(cands, rank)
        self.padded = F + _PAD
        self.starts, self.ends = _sentences(brk)

    def best(self, i: int, prev: _Run | None) -> tuple[_Run, int] | None:
        """The best run starting at i, and how far into the sentence it explains the text.

        The longest run wins if it reaches the sentence end. Otherwise the run stopped at a changed word or a
        change of source, and what follows the mismatch decides between runs of nearly equal length. Options
        are (length, candidate, position, is the continuation of `prev`).
        """
        F, cands, end = self.F, self.cands, self.ends[i]
        options: list[tuple[int, int, int, bool]] = []
        if prev is not None:
            C, cont_len, cont_pos = cands[prev.cand], 0, 0
            after = prev.pos + prev.end - prev.start
            for q in range(after, min(after + SKIP + 1, len(C))):
                if C[q] == F[i]:
                    length = _extend(F, i, end, C, q, 1)
                    if length > cont_len:
                        cont_len, cont_pos = length, q
            gap = i - prev.end
            if cont_len >= K or (cont_len and cont_pos - after <= gap + 2 and (gap <= GAP or i + cont_len == end)):
                if i + cont_len == end and self.starts[i] == i:
                    return _Run(i, end, prev.cand, cont_pos), end  # a whole sentence, continuing: nothing beats it
                options.append((cont_len, prev.cand, cont_pos, True))
        known = min(K, end - i)  # a sentence shorter than K is found by the gram that runs past its end
        options += [
            (_extend(F, i, end, cands[j], q, known), j, q, False)
            for j, q in self.index.get(self.padded[i : i + K], ())
            if known == K or cands[j][q : q + known] == F[i : i + known]
        ]
        if not options:
            return None
        longest = max(o[0] for o in options)
        if i + longest == end:
            length, j, q, _ = self._pick(i, [o for o in options if o[0] == longest], past_end=True)
            return _Run(i, end, j, q), end
        near = [o for o in options if o[0] >= longest - 2]
        scored = [(o[0] + _lookahead(F, i + o[0], end, cands[o[1]], o[2] + o[0]), o) for o in near]
        top = max((score, o[0]) for score, o in scored)
        length, j, q, _ = self._pick(i, [o for score, o in scored if (score, o[0]) == top], past_end=False)
        return _Run(i, i + length, j, q), i + top[0]

    def _pick(self, i: int, tied: list[tuple[int, int, int, bool]], past_end: bool) -> tuple[int, int, int, bool]:
        """Among equally good runs: the one whose candidate also has the sentence's words before i, then the
        continuation of the previous run, then the one that goes on matching past the sentence end, then the
        candidate whose text sorts first (the order of the options)."""
        F, cands, start = self.F, self.cands, self.starts[i]
        if tied[0][3] and _lookbehind(F, start, i, cands[tied[0][1]], tied[0][2]) == min(i - start, 16):
            return tied[0]  # the continuation, and it explains the whole sentence so far
        if len(tied) > 1 and start < i:
            behind = [_lookbehind(F, start, i, cands[o[1]], o[2]) for o in tied]
            most = max(behind)
            tied = [o for o, b in zip(tied, behind, strict=True) if b == most]
        if len(tied) == 1 or tied[0][3] or not past_end:
            return tied[0]
        end = self.ends[i]
        return max(tied, key=lambda o: _extend(F, end, len(F), cands[o[1]], o[2] + end - i, 0))


def _sentences(brk: list[bool]) -> tuple[list[int], list[int]]:
    """For each token, where its sentence starts and where the next one starts (or the token count)."""
    starts, ends, last = [], [len(brk)] * len(brk), 0
    for t, b in enumerate(brk):
        if b:
            ends[last:t] = [t] * (t - last)
            last = t
        starts.append(last)
    return starts, ends


def _match(F: str, cands: list[str], rank: list[int], brk: list[bool]) -> list[_Run]:
    """Greedy runs left to right; a run starting a little later wins if it explains clearly more."""
    matcher, runs, i = _Matcher(F, cands, rank, brk), [], 0
    while i < len(F):
        prev = runs[-1] if runs else None
        found = matcher.best(i, prev)
        if found is None:
            i += 1
            continue
        run, reach = found
        for t in range(i + 1, min(i + LAZY + 1, run.end)):
            if reach == matcher.ends[i]:
                break
            later = matcher.best(t, prev)
            if later is not None and later[1] > reach + 1:
                run, reach = later
        runs.append(run)
        i = run.end
    return runs


def _linked(a: _Run, b: _Run, weight: list[float], brk: list[bool]) -> bool:
    """Is b the continuation of a across at most a changed word?"""
    if a.cand != b.cand or sum(weight[a.end : b.start]) > GAP:
        return False
    skipped = b.pos - (a.pos + a.end - a.start)
    if not 0 <= skipped <= (b.start - a.end) + SKIP:
        return False
    return not any(brk[a.end : b.start + 1])  # in one sentence


def _drop_chance(runs: list[_Run], weight: list[float], brk: list[bool]) -> list[_Run]:
    """Drop short lone runs: common phrases ("of the same") a novel sentence happens to share with a candidate.

    Runs linked across changed words form a chain; a chain is kept if it weighs at least MIN_RUN words or
    covers most of its sentence.
    """
    (starts, ends), kept, chain = _sentences(brk), [], []
    for k, run in enumerate(runs):
        chain.append(run)
        after = runs[k + 1] if k + 1 < len(runs) else None
        if after is not None and _linked(run, after, weight, brk):
            continue
        matched = sum(sum(weight[r.start : r.end]) for r in chain)
        first, last = chain[0].start, chain[-1].end
        start, end = starts[first], ends[last - 1]
        sentence = sum(weight[start:end])
        most = matched > sentence - matched if sentence else (first, last) == (start, end)  # or a line of marks
        if matched >= MIN_RUN or (most and not any(brk[first + 1 : last])):
            kept += chain
        chain = []
    return kept


def _fill(runs: list[_Run], n: int, weight: list[float], brk: list[bool]) -> tuple[list[int], list[int]]:
    """Source per token (-1: none) and run per token (-1: filled or none), after filling changed words."""
    src, run_of = [-1] * n, [-1] * n
    for k, run in enumerate(runs):
        src[run.start : run.end] = [run.cand] * (run.end - run.start)
        run_of[run.start : run.end] = [k] * (run.end - run.start)
    for left, right in pairwise([None, *runs, None]):
        a, b = left.end if left else 0, right.start if right else n
        cuts = [a, *(t for t in range(a + 1, b) if brk[t]), b]
        for p, q in pairwise(cuts):  # one piece per sentence
            if q <= p:
                continue
            starts, ends = brk[p], q == n or brk[q]
            if (starts and ends) or sum(weight[p:q]) > GAP:
                continue  # a whole sentence in no candidate, or more than a changed word
            near_left, near_right = left is not None and p == a, right is not None and q == b
            cand = -1
            if near_left and near_right and not starts and not ends and _linked(left, right, weight, brk):
                cand = left.cand
            elif near_right and starts:
                cand = right.cand  # the sentence starts with a changed word
            elif near_left and ends:
                cand = left.cand  # the sentence ends with a changed word
            if cand >= 0:
                src[p:q] = [cand] * (q - p)
    return src, run_of


def _segments(
    fused: str,
    spans: list[tuple[int, int]],
    src: list[int],
    run_of: list[int],
    F: str,
    cands: list[str],
    brk: list[bool],
) -> list[Segment]:
    """Character segments: split at source changes and sentence breaks, then merged by (source, sources)."""
    if not spans:
        return [Segment(0, len(fused), None)] if fused else []
    starts = [t for t in range(len(spans)) if t == 0 or brk[t] or src[t] != src[t - 1]]
    segments: list[Segment] = []
    for a, b in pairwise([*starts, len(spans)]):
        lo = 0 if a == 0 else spans[a][0]
        hi = len(fused) if b == len(spans) else spans[b][0]
        source = src[a]
        if source < 0:
            seg = Segment(lo, hi, None)
        else:
            parts = [F[p:q] for p, q in _parts(run_of, a, b)]
            found = {j for j, text in enumerate(cands) if parts and all(p in text for p in parts)}
            seg = Segment(lo, hi, source, tuple(sorted(found | {source})))
        last = segments[-1] if segments else None
        if last and (last.source, last.sources) == (seg.source, seg.sources):
            segments[-1] = Segment(last.start, hi, last.source, last.sources)
        else:
            segments.append(seg)
    return segments


def _parts(run_of: list[int], a: int, b: int) -> list[tuple[int, int]]:
    """The verbatim-matched stretches of tokens [a, b): one per run, filled tokens excluded."""
    parts, t = [], a
    while t < b:
        if run_of[t] < 0:
            t += 1
            continue
        u = t
        while u < b and run_of[u] == run_of[t]:
            u += 1
        parts.append((t, u))
        t = u
    return parts


def _with_shares(fused: str, segments: list[Segment], n: int) -> Attribution:
    sizes = [len("".join(fused[s.start : s.end].split())) for s in segments]
    if not any(sizes):
        sizes = [s.end - s.start for s in segments]
    counts, total = [0] * (n + 1), sum(sizes)  # counts[n]: novel
    for seg, size in zip(segments, sizes, strict=True):
        counts[n if seg.source is None else seg.source] += size
    shares = [c / total if total else 0.0 for c in counts]
    return Attribution(segments, shares[:n], shares[n])
