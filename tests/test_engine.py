import asyncio

import pytest

from fusion_core import engine
from fusion_core.errors import AllCandidatesFailedError, ConfigError, ModelError
from fusion_core.fusion import FusionOptions
from fusion_core.selection import SelectorConfig
from fusion_core.testing import FakeCompleter
from fusion_core.types import RunConfig


def replies(model, messages, params):
    """Samplers answer with their seed; the judge scores; the fusor fuses."""
    text = messages[-1]["content"]
    if model == "fusor":
        return "Fused answer."
    if model == "judge":
        return "Score: 9" if "answer from seed 2" in text else "Score: 3"
    return f"answer from seed {params.seed}"


def config(**kw):
    base = {"prompt": "Why?", "models": ["sampler"], "n": 4, "seed": 0, "fusor_model": "fusor", "judge_model": "judge"}
    return RunConfig(**{**base, **kw})


def test_a_run_samples_then_selects_and_fuses_the_same_candidates():
    fake = FakeCompleter(default=replies)
    result = asyncio.run(engine.run(config(), fake))
    assert [c.text for c in result.candidates] == [f"answer from seed {i}" for i in range(4)]
    assert result.bon.index == 2 and result.bon.method == "judge"
    assert result.fusion.text == "Fused answer."
    fusor_prompt = result.fusion.messages[-1]["content"]
    assert all(c.text in fusor_prompt for c in result.candidates)
    assert {"sampling", "selection", "fusion", "total"} <= set(result.timings)


def test_selection_and_fusion_run_concurrently():
    fake = FakeCompleter(default=replies, delays={"sampler": 0.05, "judge": 0.3, "fusor": 0.3})
    result = asyncio.run(engine.run(config(n=2), fake))
    fusor_call = next(c for c in fake.history if c.model == "fusor")
    judge_calls = [c for c in fake.history if c.model == "judge"]
    assert all(j.started < fusor_call.finished and fusor_call.started < j.finished for j in judge_calls)
    assert result.timings["total"] < 0.05 + 0.3 + 0.3


def test_a_failed_candidate_is_shown_and_excluded_from_fusion_and_selection():
    def flaky(model, messages, params):
        if model == "sampler" and params.seed == 1:
            raise ModelError("sampler: server on fire")
        return replies(model, messages, params)

    result = asyncio.run(engine.run(config(n=3), FakeCompleter(default=flaky)))
    assert result.candidates[1].error == "sampler: server on fire"
    assert result.bon.scores[1] is None
    assert 1 not in result.fusion.order


def test_the_run_fails_with_every_failure_listed_when_no_candidate_succeeds():
    fake = FakeCompleter(default=ModelError("sampler: nope"))
    with pytest.raises(AllCandidatesFailedError, match=r"candidate 1 .*nope.*candidate 2"):
        asyncio.run(engine.run(config(n=2), fake))


def test_a_fusor_failure_keeps_the_candidates_and_the_bon_pick():
    def broken_fusor(model, messages, params):
        if model == "fusor":
            raise ModelError("fusor: overloaded")
        return replies(model, messages, params)

    result = asyncio.run(engine.run(config(), FakeCompleter(default=broken_fusor)))
    assert result.fusion is None and "overloaded" in result.fusion_error
    assert result.bon.index == 2


def test_bad_models_fail_before_any_sampling():
    fake = FakeCompleter(default=replies, unknown_models={"bad-fusor"})
    with pytest.raises(ModelError, match="bad-fusor"):
        asyncio.run(engine.run(config(fusor_model="bad-fusor"), fake))
    assert fake.history == []


def test_bad_input_fails_before_any_model_call():
    fake = FakeCompleter(default=replies)
    for bad in (config(prompt=""), config(n=0), config(selector="oracle")):
        with pytest.raises(ConfigError):
            asyncio.run(engine.run(bad, fake))
    assert fake.history == []


def test_teacher_pool_mode_samples_every_teacher():
    fake = FakeCompleter(default=lambda m, msgs, p: f"{m} says hi" if m.startswith("t") else replies(m, msgs, p))
    result = asyncio.run(engine.run(config(mode="teachers", models=["t1", "t2", "t3"], n=1, selector="mbr"), fake))
    assert [c.model for c in result.candidates] == ["t1", "t2", "t3"]
    assert result.fusion.text == "Fused answer."


def test_refuse_and_reselect_reuse_the_candidates_without_sampling():
    fake = FakeCompleter(default=replies)
    first = asyncio.run(engine.run(config(), fake))
    calls = len(fake.history)
    again = asyncio.run(engine.refuse(first, fake, options=FusionOptions(strength="aggressive")))
    assert len(fake.history) == calls + 1 and fake.history[-1].model == "fusor"
    assert "Be selective" in again.fusion.messages[-1]["content"]
    assert again.candidates == first.candidates and again.config.fusion["strength"] == "aggressive"
    other = asyncio.run(engine.reselect(first, fake, SelectorConfig(method="mbr")))
    assert len(fake.history) == calls + 1
    assert other.bon.method == "mbr" and other.fusion == first.fusion


def test_self_fusion_is_detected():
    assert engine.is_self_fusion(config(fusor_model="sampler"))
    assert not engine.is_self_fusion(config())


def test_the_fusor_streams_its_answer_and_the_candidates_stream_separately():
    fused = "One fused answer, written word by word."
    fake = FakeCompleter(default=lambda m, msgs, p: fused if m == "fusor" else replies(m, msgs, p))
    candidate_deltas, fusion_deltas = [], []
    result = asyncio.run(
        engine.run(
            config(n=2, selector="mbr"),
            fake,
            on_delta=lambda i, text: candidate_deltas.append((i, text)),
            on_fusion_delta=fusion_deltas.append,
        )
    )
    assert fusion_deltas[-1] == result.fusion.text == fused
    assert len(fusion_deltas) == len(fused.split()) and all(fused.startswith(d) for d in fusion_deltas)
    assert {i for i, _ in candidate_deltas} == {0, 1}
    assert all("fused" not in text for _, text in candidate_deltas)
    again = []
    refused = asyncio.run(engine.refuse(result, fake, on_delta=again.append))
    assert again[-1] == refused.fusion.text and len(again) > 1
