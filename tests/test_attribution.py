"""Segment attribution: properties over generated texts, and examples in every language the paper covers."""

from __future__ import annotations

import asyncio
import random
import time
import unicodedata

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from fusion_core import engine
from fusion_core.attribution import Attribution, Segment, attribute
from fusion_core.errors import ModelError
from fusion_core.testing import FakeCompleter
from fusion_core.tokens import token_pattern
from fusion_core.types import RunConfig

# A small vocabulary, so that generated texts share words, phrases and sentences.
WORDS = ["the", "cat", "sat", "on", "mat", "dog", "ran", "far", "away", "Über", "naïve", "猫", "が", "好き", "كتاب"]
SEPARATORS = [" ", " ", " ", ". ", ", ", "\n", "\n- ", "。", ""]


@st.composite
def texts(draw, words=WORDS, min_size=0, max_size=40, separators=SEPARATORS):
    """Text made of words from a small vocabulary, with sentence ends, lists and line breaks."""
    tokens = draw(st.lists(st.sampled_from(words), min_size=min_size, max_size=max_size))
    seps = draw(st.lists(st.sampled_from(separators), min_size=len(tokens), max_size=len(tokens)))
    return "".join(t + s for t, s in zip(tokens, seps, strict=True))


@st.composite
def spliced(draw):
    """Candidates, and a fused text made of pieces of them, novel words and edits."""
    candidates = draw(st.lists(texts(), min_size=0, max_size=5))
    pieces = []
    for _ in range(draw(st.integers(0, 6))):
        if candidates and draw(st.booleans()):
            c = draw(st.sampled_from(candidates))
            a = draw(st.integers(0, len(c)))
            pieces.append(c[a : draw(st.integers(a, len(c)))])
        else:
            pieces.append(draw(texts(max_size=6)))
    return "".join(pieces), candidates


def check_cover(fused: str, result: Attribution, n: int) -> None:
    """Segments cover the text exactly, in order; sources are sound; shares sum to 1."""
    position = 0
    for seg in result.segments:
        assert seg.start == position and seg.end > seg.start
        position = seg.end
        if seg.source is None:
            assert seg.sources == ()
        else:
            assert 0 <= seg.source < n and seg.source in seg.sources
            assert list(seg.sources) == sorted(set(seg.sources)) and all(0 <= c < n for c in seg.sources)
    assert position == len(fused)
    assert len(result.shares) == n and all(0 <= s <= 1 for s in result.shares)
    if fused:
        assert abs(sum(result.shares) + result.novel - 1) < 1e-9


@settings(max_examples=300, deadline=None)
@given(spliced())
def test_segments_cover_the_fused_text_exactly(case):
    fused, candidates = case
    check_cover(fused, attribute(fused, candidates), len(candidates))


def _tokens(text: str) -> str:
    """The text's normalized tokens, delimited, so that containment means a contiguous token sequence."""
    return "".join(f"\0{unicodedata.normalize('NFKC', t).casefold()}\0" for t in token_pattern().findall(text))


@settings(max_examples=200, deadline=None)
@given(st.lists(texts(min_size=1), min_size=1, max_size=5), st.data())
def test_a_verbatim_copy_is_all_its_candidate(candidates, data):
    i = data.draw(st.integers(0, len(candidates) - 1))
    assume(candidates[i].strip())
    assume(not any(_tokens(candidates[i]) in _tokens(c) for j, c in enumerate(candidates) if j != i))
    result = attribute(candidates[i], candidates)
    assert abs(result.shares[i] - 1) < 1e-9, result
    assert {seg.source for seg in result.segments} == {i}


@settings(max_examples=150, deadline=None)
@given(st.lists(texts(), max_size=5), texts(["novel", "words", "only", "zebra"], 1, 20, [" ", "\n", "\n\n"]))
def test_text_in_no_candidate_is_novel(candidates, fused):
    result = attribute(fused, candidates)
    assert all(seg.source is None for seg in result.segments)
    assert result.novel == 1.0 and not any(result.shares)


@settings(max_examples=300, deadline=None)
@given(spliced(), st.randoms(use_true_random=False))
def test_candidate_order_only_changes_the_indices(case, rng):
    fused, candidates = case
    order = list(range(len(candidates)))
    rng.shuffle(order)
    shuffled = [candidates[k] for k in order]

    def described(result, cands):
        return [
            (s.start, s.end, None if s.source is None else cands[s.source], sorted(cands[c] for c in s.sources))
            for s in result.segments
        ]

    assert described(attribute(fused, candidates), candidates) == described(attribute(fused, shuffled), shuffled)


def sources_of(fused: str, result: Attribution, phrase: str) -> set[int | None]:
    """The primary sources of the non-whitespace characters of `phrase` in the fused text."""
    start = fused.index(phrase)
    return {
        seg.source
        for seg in result.segments
        for p in range(max(seg.start, start), min(seg.end, start + len(phrase)))
        if not fused[p].isspace()
    }


def test_reordered_sentences_keep_their_sources():
    c = [
        "The sky is blue because air scatters short wavelengths. Sunsets are red for the same reason.",
        "Water boils at one hundred degrees at sea level. It boils at lower temperatures on mountains.",
        "Photosynthesis turns light into chemical energy. Plants need water and carbon dioxide for it.",
    ]
    fused = (
        "Plants need water and carbon dioxide for it. The sky is blue because air scatters short wavelengths. "
        "Water boils at one hundred degrees at sea level."
    )
    result = attribute(fused, c)
    assert sources_of(fused, result, "Plants need water and carbon dioxide for it.") == {2}
    assert sources_of(fused, result, "The sky is blue because air scatters short wavelengths.") == {0}
    assert sources_of(fused, result, "Water boils at one hundred degrees at sea level.") == {1}


def test_one_changed_word_stays_with_its_span():
    c = ["Regular exercise lowers blood pressure and improves sleep quality in most adults.", "Cats sleep a lot."]
    for fused in (
        "Regular exercise reduces blood pressure and improves sleep quality in most adults.",
        "Daily exercise lowers blood pressure and improves sleep quality in most adults.",
        "Regular exercise lowers blood pressure and improves sleep quality in many adults.",
    ):
        result = attribute(fused, c)
        assert [(s.start, s.end, s.source) for s in result.segments] == [(0, len(fused), 0)], fused


def test_text_in_several_candidates_lists_them_all():
    shared = "Use a password manager so that every account gets a long and unique password."
    c = [f"Security first. {shared}", "Something else entirely, about cooking pasta.", f"{shared} Also enable 2FA."]
    result = attribute(shared, c)
    [seg] = result.segments
    assert seg.sources == (0, 2) and seg.source in (0, 2)
    swapped = attribute(shared, [c[2], c[1], c[0]])
    assert c[2 - swapped.segments[0].source] == c[seg.source]  # the same text wins, whatever its index


def test_a_novel_sentence_is_none():
    c = ["Glaciers store about two thirds of the fresh water on the planet. They are shrinking fast."]
    fused = "Glaciers store about two thirds of the fresh water on the planet. In short, the answer depends on you."
    result = attribute(fused, c)
    assert sources_of(fused, result, "Glaciers store about two thirds of the fresh water on the planet.") == {0}
    assert sources_of(fused, result, "In short, the answer depends on you.") == {None}
    assert 0 < result.novel < 0.5


# language: (candidate 1, candidate 2, candidate 1's sentence with one word changed, a novel sentence)
LANGUAGES = {
    "zh": (
        "天空看起来是蓝色的，因为空气分子对短波长光的散射更强。",
        "光合作用把光能转化为储存在葡萄糖中的化学能。",
        "天空看起来是灰色的，因为空气分子对短波长光的散射更强。",
        "这是融合模型自己写的新句子。",
    ),
    "ja": (
        "空が青く見えるのは、空気の分子が波長の短い光をより強く散乱させるからです。",
        "氷河は地球の淡水のおよそ三分の二をたくわえています。",
        "空が青く見えるのは、空気の粒子が波長の短い光をより強く散乱させるからです。",
        "ここは新しい文です。",
    ),
    "ar": (
        "تبدو السماء زرقاء لأن جزيئات الهواء تشتت الضوء ذا الطول الموجي القصير.",
        "يغطي المحيط الهادئ نحو ثلث سطح الأرض.",
        "تبدو السماء زرقاء لأن ذرات الهواء تشتت الضوء ذا الطول الموجي القصير.",
        "هذه جملة جديدة كتبها النموذج بنفسه.",
    ),
    "de": (
        "Der Himmel erscheint blau, weil Luftmoleküle kurzwelliges Licht stärker streuen.",
        "Gletscher speichern etwa zwei Drittel des Süßwassers.",
        "Der Himmel wirkt blau, weil Luftmoleküle kurzwelliges Licht stärker streuen.",
        "Diesen Satz hat das Modell selbst geschrieben.",
    ),
    "es": (
        "El cielo se ve azul porque las moléculas del aire dispersan la luz de onda corta.",
        "Los glaciares almacenan dos tercios del agua dulce.",
        "El cielo se ve gris porque las moléculas del aire dispersan la luz de onda corta.",
        "Esta frase la escribió el modelo por su cuenta.",
    ),
    "fr": (
        "Le ciel paraît bleu parce que les molécules de l'air diffusent davantage la lumière bleue.",
        "Les glaciers stockent deux tiers de l'eau douce.",
        "Le ciel semble bleu parce que les molécules de l'air diffusent davantage la lumière bleue.",
        "Cette phrase vient du modèle lui-même.",
    ),
    "ru": (
        "Небо кажется голубым, потому что молекулы воздуха сильнее рассеивают коротковолновый свет.",
        "Ледники хранят около двух третей пресной воды.",
        "Небо выглядит голубым, потому что молекулы воздуха сильнее рассеивают коротковолновый свет.",
        "Это предложение модель написала сама.",
    ),
    "ko": (
        "하늘이 파랗게 보이는 이유는 공기 분자가 짧은 파장의 빛을 더 강하게 산란시키기 때문이다.",
        "빙하는 지구 담수의 약 3분의 2를 저장하고 있다.",
        "하늘이 파랗게 보이는 까닭은 공기 분자가 짧은 파장의 빛을 더 강하게 산란시키기 때문이다.",
        "이 문장은 모델이 직접 썼다.",
    ),
}


def test_every_language_reorder_edit_and_novel():
    for lang, (first, second, edited, novel) in LANGUAGES.items():
        fused = ("" if lang in ("zh", "ja") else " ").join([second, edited, novel])  # candidate 2 first
        result = attribute(fused, [first, second])
        check_cover(fused, result, 2)
        assert sources_of(fused, result, second) == {1}, lang
        assert sources_of(fused, result, edited) == {0}, lang
        assert sources_of(fused, result, novel) == {None}, lang


def test_right_to_left_offsets_are_logical_character_offsets():
    first, second, _, novel = LANGUAGES["ar"]
    fused = f"{second} {novel}"
    segments = attribute(fused, [first, second]).segments
    assert [(fused[s.start : s.end], s.source) for s in segments] == [(second + " ", 1), (novel, None)]


def test_markdown_list_heading_and_code_block():
    recipe = (
        "# Making bread\n\nYou need flour, water, salt and yeast.\n\n- Mix the flour and the water.\n"
        "- Knead the dough for ten minutes.\n- Let it rise for two hours.\n\n"
        "```python\ndef bake(minutes):\n    return oven.run(minutes)\n```\n"
    )
    tips = "## Tips\n\nPreheat the oven to 230 degrees.\n1. Use a baking stone if you have one.\n"
    fused = (
        "# Making bread\n\nPreheat the oven to 230 degrees.\n\n- Mix the flour and the water.\n"
        "- Knead the dough for twelve minutes.\n- Use a baking stone if you have one.\n- Serve it warm with butter.\n\n"
        "```python\ndef bake(minutes):\n    return oven.run(minutes)\n```\n"
    )
    result = attribute(fused, [recipe, tips])
    check_cover(fused, result, 2)
    assert sources_of(fused, result, "# Making bread") == {0}
    assert sources_of(fused, result, "Preheat the oven to 230 degrees.") == {1}
    assert sources_of(fused, result, "- Knead the dough for twelve minutes.") == {0}
    assert sources_of(fused, result, "Use a baking stone if you have one.") == {1}
    assert sources_of(fused, result, "Serve it warm with butter.") == {None}
    assert sources_of(fused, result, "```python\ndef bake(minutes):\n    return oven.run(minutes)\n```") == {0}


def test_empty_inputs():
    assert attribute("", ["a b c"]) == Attribution([], [0.0], 0.0)
    assert attribute("", []) == Attribution([], [], 0.0)
    assert attribute("Some text.", []) == Attribution([Segment(0, 10, None)], [], 1.0)
    assert attribute("  \n", ["a"]) == Attribution([Segment(0, 3, None)], [0.0], 1.0)
    assert attribute("Hi.", ["", "Hi."]).shares == [0.0, 1.0]


def test_dict_round_trip_and_remap():
    fused = "The cat sat on the mat. A novel ending for this."
    result = attribute(fused, ["x y z", "The cat sat on the mat."])
    data = result.to_dict(fused)
    assert data["shares"]["1"] == result.shares[1] and data["shares"]["novel"] == result.novel
    assert [s["text"] for s in data["segments"]] == ["The cat sat on the mat. ", "A novel ending for this."]
    assert Attribution.from_dict(data) == result
    moved = result.remap([3, 5], 6)
    assert moved.shares == [0.0, 0.0, 0.0, result.shares[0], 0.0, result.shares[1]]
    assert [s.source for s in moved.segments] == [5, None]


def test_long_inputs_are_fast():
    rng = random.Random(7)
    vocab = [f"w{k}" for k in range(3000)]
    sentences = [" ".join(rng.choices(vocab, k=12)) + "." for _ in range(1500)]
    candidates = [" ".join(rng.sample(sentences, 170)) for _ in range(8)]  # about 2,000 words each
    fused = " ".join(rng.choice(c.split(". ")) + "." for c in candidates for _ in range(20))
    started = time.perf_counter()
    result = attribute(fused, candidates)
    assert time.perf_counter() - started < 2.0  # generous: the benchmark measures the real time
    assert result.novel < 0.01


def test_a_run_stores_an_attribution_that_indexes_its_candidates():
    def replies(model, messages, params):
        if model == "fusor":
            return "Answer two is here. Answer zero is here. Something new from the fusor."
        if params.seed == 1:
            raise ModelError("sampler: down")
        return f"Answer {['zero', 'one', 'two'][params.seed]} is here."

    config = RunConfig(prompt="Why?", models=["s"], n=3, seed=0, fusor_model="fusor", judge_model="s", selector="mbr")
    result = asyncio.run(engine.run(config, FakeCompleter(default=replies)))
    attribution = Attribution.from_dict(result.attribution)
    assert [s.source for s in attribution.segments] == [2, 0, None]
    assert len(attribution.shares) == 3 and attribution.shares[1] == 0.0  # the failed candidate is never a source
    assert "attribution" in result.timings
    again = asyncio.run(engine.refuse(result, FakeCompleter(default=lambda m, msgs, p: "Answer zero is here.")))
    assert Attribution.from_dict(again.attribution).shares[0] == 1.0
    failed = asyncio.run(engine.refuse(result, FakeCompleter(default=ModelError("fusor: down"))))
    assert failed.attribution is None and failed.fusion is None
