"""Word-level diff (character-level in scripts without spaces) between two texts, with diff-match-patch.

Each distinct token (words, single CJK/Thai characters, symbols and whitespace
runs, see fusion_core.tokens) becomes one Unicode character, as in
diff-match-patch's line mode; the encoded texts are diffed, cleaned up
semantically at token granularity, and decoded, so every operation is made of
whole tokens and the texts rebuild exactly from the operations.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from diff_match_patch import diff_match_patch

from .tokens import diff_pattern

TIMEOUT_S = 1.0  # diff-match-patch gives up on a minimal diff after this; 0 would mean "never", tens of seconds
_OPS: dict[int, Literal["equal", "insert", "delete"]] = {0: "equal", 1: "insert", -1: "delete"}


@dataclass(frozen=True)
class DiffOp:
    """One operation turning the old text into the new one."""

    op: Literal["equal", "insert", "delete"]
    text: str


def diff_texts(old: str, new: str, timeout: float = TIMEOUT_S) -> list[DiffOp]:
    """The operations turning `old` into `new`: equal, delete (only in old), insert (only in new)."""
    if timeout <= 0:
        raise ValueError("timeout must be above 0, or unrelated texts can take tens of seconds")
    pattern, codes, tokens = diff_pattern(), {}, {}

    def encode(text: str) -> str:
        out = []
        for token in pattern.findall(text):
            code = codes.get(token)
            if code is None:
                code = codes[token] = chr(_codepoint(len(tokens)))
                tokens[code] = token
            out.append(code)
        return "".join(out)

    a, b = encode(old), encode(new)
    dmp = diff_match_patch()
    dmp.Diff_Timeout = timeout
    diffs = dmp.diff_main(a, b, False)
    dmp.diff_cleanupSemantic(diffs)
    ops: list[DiffOp] = []
    for code, encoded in diffs:
        text = "".join([tokens[ch] for ch in encoded])
        if not text:
            continue
        if ops and ops[-1].op == _OPS[code]:
            ops[-1] = DiffOp(ops[-1].op, ops[-1].text + text)
        else:
            ops.append(DiffOp(_OPS[code], text))
    return ops


def rebuild(ops: list[DiffOp]) -> tuple[str, str]:
    """The old and the new text, from the operations."""
    old = "".join(o.text for o in ops if o.op != "insert")
    new = "".join(o.text for o in ops if o.op != "delete")
    return old, new


def _codepoint(index: int) -> int:
    """The private-use character standing for the index-th distinct token (neither letter nor space, so
    diff-match-patch's boundary scoring treats every token alike)."""
    for start, size in ((0xE000, 0x1900), (0xF0000, 0xFFFE), (0x100000, 0xFFFE)):
        if index < size:
            return start + index
        index -= size
    return 0x20000 + index  # beyond 137,000 distinct tokens: any other characters will do
