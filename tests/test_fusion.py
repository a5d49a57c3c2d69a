import asyncio

import pytest

from fusion_core.errors import ConfigError, ContextOverflowError
from fusion_core.fusion import FusionOptions, build_fusor_prompt, estimate_tokens, extract_answer, fuse
from fusion_core.testing import FakeCompleter
from fusion_core.types import Candidate


def cands(*texts, failed=()):
    return [
        Candidate(i, f"model-{i}", text="" if i in failed else t, error="boom" if i in failed else None)
        for i, t in enumerate(texts)
    ]


def user_text(prompt):
    return prompt.messages[-1]["content"]


def test_default_prompt_follows_the_paper_and_labels_candidates_neutrally():
    built = build_fusor_prompt("Explain tides.", cands("Moon pulls water.", "Sun helps too."), FusionOptions())
    text = user_text(built)
    assert "strongest parts" in text
    assert "discard" in text.lower()
    assert "Do not mention the candidates" in text
    assert "language of the prompt" in text
    assert '<candidate id="1">\nMoon pulls water.\n</candidate>' in text
    assert "model-0" not in text and "model-1" not in text
    assert "<prompt>\nExplain tides.\n</prompt>" in text


def test_failed_candidates_are_left_out():
    built = build_fusor_prompt("q", cands("a", "b", "c", failed={1}), FusionOptions())
    assert built.order == [0, 2]
    assert "boom" not in user_text(built)


def test_no_successful_candidate_is_a_config_error():
    with pytest.raises(ConfigError):
        build_fusor_prompt("q", cands("a", failed={0}), FusionOptions())


def test_options_change_the_instructions():
    base = user_text(build_fusor_prompt("q", cands("a", "b"), FusionOptions()))
    for options, expected in [
        (FusionOptions(instructions="Cite sources."), "Cite sources."),
        (FusionOptions(persona="a pirate"), "a pirate"),
        (FusionOptions(reasoning=True), "<answer>"),
        (FusionOptions(strength="aggressive"), "Be selective"),
        (FusionOptions(strength="integrate"), "Integrate the useful content"),
    ]:
        text = user_text(build_fusor_prompt("q", cands("a", "b"), options))
        assert expected in text and expected not in base


def test_unknown_strength_is_rejected():
    with pytest.raises(ConfigError, match="strength"):
        FusionOptions(strength="max")


def test_shuffle_is_seeded_and_reorders():
    texts = [f"answer {i}" for i in range(8)]
    orders = {
        tuple(build_fusor_prompt("q", cands(*texts), FusionOptions(shuffle=True, seed=s)).order) for s in range(5)
    }
    assert len(orders) > 1
    again = build_fusor_prompt("q", cands(*texts), FusionOptions(shuffle=True, seed=3)).order
    assert again == build_fusor_prompt("q", cands(*texts), FusionOptions(shuffle=True, seed=3)).order
    assert sorted(again) == list(range(8))
    shown = user_text(build_fusor_prompt("q", cands(*texts), FusionOptions(shuffle=True, seed=3)))
    assert shown.index(f"answer {again[0]}") < shown.index(f"answer {again[1]}")


def test_long_candidates_are_truncated_with_a_warning_and_short_ones_kept():
    short, long = "short answer", "word " * 5000
    built = build_fusor_prompt("q", cands(short, long), FusionOptions(max_tokens=256), context_window=2048)
    text = user_text(built)
    assert short in text
    assert "[… truncated]" in text
    assert len(built.warnings) == 1 and "candidate 2 truncated" in built.warnings[0]
    assert estimate_tokens(text) < 2048


def test_nothing_is_truncated_when_it_fits():
    built = build_fusor_prompt("q", cands("a b c", "d e f"), FusionOptions(), context_window=100_000)
    assert built.warnings == []


def test_a_context_too_small_for_anything_is_a_clear_error():
    with pytest.raises(ContextOverflowError, match="fusor's context"):
        build_fusor_prompt("q", cands("a", "b"), FusionOptions(max_tokens=1000), context_window=1000)


@pytest.mark.parametrize(
    ("raw", "reasoning", "expected"),
    [
        ("<think>compare</think>\n<answer>Final.</answer>", True, "Final."),
        ("<answer>draft</answer> more <answer>Second.</answer>", True, "Second."),
        ("<think>hmm</think>Plain answer", False, "Plain answer"),
        ("No tags at all", True, "No tags at all"),
        ("<think>unterminated thinking", True, ""),
    ],
)
def test_the_final_answer_is_extracted(raw, reasoning, expected):
    assert extract_answer(raw, reasoning)[0] == expected


def test_candidate_tags_copied_from_the_fusor_prompt_are_removed_with_a_warning():
    raw = 'The sky is blue.\n</candidate>\n\n<candidate id="2">\nSunsets are red.\n</candidate>'
    text, warnings = extract_answer(raw, reasoning=False)
    assert "candidate" not in text and text.startswith("The sky is blue.") and text.endswith("Sunsets are red.")
    assert warnings == ["the fusor copied the <candidate> tags of its prompt; they were removed"]
    inside, warned = extract_answer("<answer>Blue. </candidate></answer>", reasoning=True)
    assert (inside, len(warned)) == ("Blue.", 1)
    assert extract_answer("A <candidates> list, not our tag", reasoning=False) == (
        "A <candidates> list, not our tag",
        [],
    )


def test_missing_answer_tags_give_a_warning_in_reasoning_mode():
    _, warnings = extract_answer("just text", reasoning=True)
    assert warnings and "<answer>" in warnings[0]


def test_fuse_sends_the_built_prompt_and_returns_what_was_sent():
    fake = FakeCompleter(default="<think>x</think><answer>Fused!</answer>")
    result = asyncio.run(fuse("q", cands("a", "b"), "fusor", fake, FusionOptions(reasoning=True, max_tokens=77)))
    assert result.text == "Fused!"
    assert result.raw_text.startswith("<think>")
    assert fake.history[0].model == "fusor"
    assert fake.history[0].messages == result.messages
    assert fake.history[0].params.max_tokens == 77
    assert result.order == [0, 1]


def test_an_edited_fusor_prompt_is_sent_verbatim():
    fake = FakeCompleter(default="ok")
    edited = [{"role": "user", "content": "My own fusor prompt"}]
    result = asyncio.run(fuse("q", cands("a", "b"), "fusor", fake, messages=edited))
    assert fake.history[0].messages == edited
    assert result.messages == edited
