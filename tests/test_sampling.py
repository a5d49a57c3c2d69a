import asyncio

import pytest

from fusion_core.errors import AllCandidatesFailedError, ConfigError, ModelError, ModelTimeoutError
from fusion_core.sampling import plan_samples, require_success, sample
from fusion_core.testing import FakeCompleter
from fusion_core.types import RunConfig


def config(**kw):
    base = {"prompt": "Why is the sky blue?", "models": ["m"], "n": 4, "temperature": 0.7, "seed": 10}
    return RunConfig(**{**base, **kw})


def test_samples_mode_gives_each_sample_its_own_seed_and_the_temperature():
    specs = plan_samples(config(n=3))
    assert [s.model for s in specs] == ["m", "m", "m"]
    assert [s.params.seed for s in specs] == [10, 11, 12]
    assert {s.params.temperature for s in specs} == {0.7}


def test_teacher_pool_takes_k_samples_from_every_teacher():
    specs = plan_samples(config(mode="teachers", models=["a", "b", "c"], n=2))
    assert [s.model for s in specs] == ["a", "a", "b", "b", "c", "c"]
    assert len({s.params.seed for s in specs}) == 6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"prompt": "   "}, "prompt is empty"),
        ({"n": 0}, "between 1 and 16"),
        ({"n": 17}, "between 1 and 16"),
        ({"models": []}, "no sampling model"),
        ({"models": ["a", "b"]}, "teachers"),
        ({"mode": "teachers", "models": ["a", "b", "c"], "n": 6}, "at most 16"),
        ({"temperature": 3.0}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"mode": "vote"}, "unknown mode"),
    ],
)
def test_bad_configurations_are_rejected_with_a_clear_message(change, message):
    with pytest.raises(ConfigError, match=message):
        plan_samples(config(**change))


def test_all_candidates_are_requested_concurrently():
    fake = FakeCompleter(default="answer", delay=0.2)
    candidates = asyncio.run(sample("p", plan_samples(config(n=8)), fake, concurrency=8))
    assert len(candidates) == 8 and all(c.ok for c in candidates)
    # every call started before the first one finished
    first_finish = min(call.finished for call in fake.history)
    assert all(call.started < first_finish for call in fake.history)


def test_concurrency_is_bounded():
    fake = FakeCompleter(default="answer", delay=0.05)
    asyncio.run(sample("p", plan_samples(config(n=6)), fake, concurrency=2))
    calls = sorted(fake.history, key=lambda c: c.started)
    for call in calls:
        running = sum(1 for other in calls if other.started <= call.started < other.finished)
        assert running <= 2


def test_a_failed_candidate_is_kept_with_its_error_and_the_rest_continue():
    fake = FakeCompleter().enqueue(["one", ModelTimeoutError("m: no answer within 1s", transient=True), "three"])
    seen = []
    candidates = asyncio.run(sample("p", plan_samples(config(n=3)), fake, concurrency=1, on_candidate=seen.append))
    assert [c.ok for c in candidates] == [True, False, True]
    assert "no answer within" in candidates[1].error
    assert [c.text for c in candidates if c.ok] == ["one", "three"]
    assert len(seen) == 3
    require_success(candidates)


def test_an_empty_answer_counts_as_a_failure():
    fake = FakeCompleter().enqueue(["   ", "fine"])
    candidates = asyncio.run(sample("p", plan_samples(config(n=2)), fake, concurrency=1))
    assert candidates[0].error == "empty answer" and candidates[1].ok


def test_the_run_fails_only_when_every_candidate_failed_and_lists_each_failure():
    fake = FakeCompleter().enqueue([ModelError("m: boom one"), ModelError("m: boom two")])
    candidates = asyncio.run(sample("p", plan_samples(config(n=2)), fake, concurrency=1))
    with pytest.raises(AllCandidatesFailedError) as info:
        require_success(candidates)
    assert "boom one" in str(info.value) and "boom two" in str(info.value)


def test_sampler_receives_the_prompt_and_the_recorded_parameters():
    fake = FakeCompleter(default="x")
    asyncio.run(sample("What is 2+2?", plan_samples(config(n=2, max_tokens=33)), fake))
    assert fake.history[0].messages == [{"role": "user", "content": "What is 2+2?"}]
    assert {c.params.max_tokens for c in fake.history} == {33}


def test_candidates_can_stream_their_text_as_it_arrives():
    fake = FakeCompleter(default=lambda m, msgs, p: f"answer number {p.seed} in words")
    deltas: dict[int, list[str]] = {}
    candidates = asyncio.run(
        sample("p", plan_samples(config(n=3)), fake, on_delta=lambda i, text: deltas.setdefault(i, []).append(text))
    )
    assert sorted(deltas) == [0, 1, 2]
    for c in candidates:
        assert len(deltas[c.index]) > 1
        assert deltas[c.index][-1] == c.text
        assert all(c.text.startswith(partial) for partial in deltas[c.index])


def test_the_candidate_count_is_n_or_k_per_teacher():
    from fusion_core.sampling import candidate_count

    assert candidate_count(config(n=5)) == 5
    assert candidate_count(config(mode="teachers", models=["a", " ", "b"], n=3)) == 6
    assert candidate_count(config(mode="teachers", models=["a", "b"], n=3)) == len(
        plan_samples(config(mode="teachers", models=["a", "b"], n=3))
    )
