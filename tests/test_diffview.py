"""The word-level diff view: exact reconstruction, word and character granularity, bounded time."""

import time
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion_core.diffview import DiffOp, diff_texts, rebuild

WORDISH = st.text(alphabet=st.sampled_from([*"ab cd\n.,猫犬がي ث", "é", "\u0301", "😀"]), max_size=80)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=120), st.text(max_size=120))
def test_both_texts_rebuild_from_the_operations(old, new):
    ops = diff_texts(old, new)
    assert rebuild(ops) == (old, new)
    assert all(op.text for op in ops)
    assert all(a.op != b.op for a, b in pairwise(ops))  # neighbours are merged


@settings(max_examples=300, deadline=None)
@given(WORDISH, WORDISH)
def test_similar_texts_rebuild_too(old, new):
    assert rebuild(diff_texts(old, new)) == (old, new)
    assert rebuild(diff_texts(old, old + new)) == (old, old + new)


def test_spaced_scripts_change_whole_words():
    ops = diff_texts("The quick brown fox jumps over the lazy dog.", "The quick red fox jumps over the lazy dog!")
    assert ops == [
        DiffOp("equal", "The quick "),
        DiffOp("delete", "brown"),
        DiffOp("insert", "red"),
        DiffOp("equal", " fox jumps over the lazy dog"),
        DiffOp("delete", "."),
        DiffOp("insert", "!"),
    ]


def test_scripts_without_spaces_change_single_characters():
    ops = diff_texts("天空是蓝色的，因为空气散射光。", "天空是灰色的，因为空气散射光线。")
    changed = [DiffOp("delete", "蓝"), DiffOp("insert", "灰"), DiffOp("insert", "线")]
    assert [o for o in ops if o.op != "equal"] == changed
    ops = diff_texts("空が青く見えます。", "空が赤く見えます。")
    assert [o for o in ops if o.op != "equal"] == [DiffOp("delete", "青"), DiffOp("insert", "赤")]


def test_arabic_words_and_line_breaks():
    ops = diff_texts("تبدو السماء زرقاء\nاليوم", "تبدو السماء رمادية\nاليوم")
    assert [o for o in ops if o.op != "equal"] == [DiffOp("delete", "زرقاء"), DiffOp("insert", "رمادية")]


def test_unrelated_long_texts_return_quickly():
    words = [f"w{k}" for k in range(5000)]
    old = " ".join(words[k * 7919 % 5000] for k in range(20000))
    new = " ".join(words[k * 104729 % 5000] for k in range(20000))
    cjk_old = "".join(chr(0x4E00 + k * 7919 % 20000) for k in range(30000))
    cjk_new = "".join(chr(0x4E00 + k * 104729 % 20000) for k in range(30000))
    for a, b in ((old, new), (cjk_old, cjk_new)):
        started = time.perf_counter()
        ops = diff_texts(a, b, timeout=0.5)
        assert time.perf_counter() - started < 5
        assert rebuild(ops) == (a, b)


def test_timeout_must_be_positive():
    with pytest.raises(ValueError, match="above 0"):
        diff_texts("a", "b", timeout=0)
