"""The embedded model for real: SmolLM2-135M through llama.cpp, offline, small max_tokens."""

import asyncio
import dataclasses
import threading

import pytest

from fusion_core import engine
from fusion_core.errors import ContextOverflowError, ModelError, ModelTimeoutError
from fusion_core.llm import LiteLLMCompleter
from fusion_core.local_model import EmbeddedModel, load_embedded
from fusion_core.settings import Settings
from fusion_core.types import GenParams, RunConfig

pytestmark = pytest.mark.integration
LOCAL = "local/smollm2-135m"


@pytest.fixture(scope="module")
def completer():
    return LiteLLMCompleter(Settings.from_env({}))


def test_sample_select_and_fuse_end_to_end_offline(completer):
    config = RunConfig(
        prompt="Give one tip for learning a language.",
        models=[LOCAL],
        n=3,
        max_tokens=24,
        fusor_model=LOCAL,
        judge_model=LOCAL,
        fusion={"max_tokens": 48},
        seed=7,
    )
    seen = []
    result = asyncio.run(engine.run(config, completer, on_candidate=seen.append))
    assert len(seen) == 3
    assert all(c.ok and c.text.strip() for c in result.candidates)
    assert all(0 < c.completion_tokens <= 24 and c.cost == 0.0 for c in result.candidates)
    assert [c.params.seed for c in result.candidates] == [7, 8, 9]
    assert result.bon is not None and 0 <= result.bon.index < 3
    assert result.fusion is not None and result.fusion.text
    assert result.fusion.completion_tokens <= 48


def test_same_seed_same_answer_other_seed_other_answer(completer):
    messages = [{"role": "user", "content": "Write a short poem about rain."}]

    async def go(seed):
        return (await completer.complete(LOCAL, messages, GenParams(temperature=1.0, max_tokens=16, seed=seed))).text

    a, b, c = (asyncio.run(go(seed)) for seed in (1, 1, 2))
    assert a == b
    assert a != c


def test_a_prompt_larger_than_the_context_is_a_clear_error():
    settings = Settings.from_env({})
    small = dataclasses.replace(settings, local=dataclasses.replace(settings.local, n_ctx=512, n_parallel=1))
    messages = [{"role": "user", "content": "word " * 2000}]
    with pytest.raises(ContextOverflowError, match="exceeds the available context size"):
        asyncio.run(LiteLLMCompleter(small).complete(LOCAL, messages, GenParams(max_tokens=4)))


def test_the_embedded_model_streams_the_same_answer_it_returns(completer):
    messages = [{"role": "user", "content": "Name three fruits."}]
    params = GenParams(temperature=0.8, max_tokens=16, seed=5)
    seen = []
    streamed = asyncio.run(completer.complete(LOCAL, messages, params, on_delta=seen.append))
    whole = asyncio.run(completer.complete(LOCAL, messages, params))
    assert len(seen) > 1 and seen[-1] == streamed.text
    assert streamed.text == whole.text
    assert streamed.completion_tokens == whole.completion_tokens > 0
    assert streamed.prompt_tokens == whole.prompt_tokens > 0


LONG = {"messages": [{"role": "user", "content": "Tell a long story."}], "max_tokens": 400, "ignore_eos": True,
        "seed": 3, "cache_prompt": False}  # fmt: skip


def test_setting_stop_ends_generation_at_the_next_token():
    model = load_embedded(Settings.from_env({}).local)
    stop, chunks = threading.Event(), []

    def receive(chunk):
        chunks.append(chunk)
        if len(chunks) == 5:
            stop.set()

    model.chat_stream(LONG, receive, stop)
    assert len(chunks) == 5  # not the 400 tokens asked for
    whole = []
    model.chat_stream({**LONG, "max_tokens": 12}, whole.append)
    assert len(whole) > 10  # without stop it runs to max_tokens
    stop.set()
    with pytest.raises(ModelError, match="stopped before the answer was complete"):
        model.chat(LONG, stop)


def test_a_timed_out_embedded_call_stops_generating(monkeypatch):
    """The timed-out request is cancelled inside llama.cpp, not left decoding 4,000 tokens in a thread."""
    streamed, finished = [], threading.Event()
    real = EmbeddedModel.chat_stream

    def endless(self, request, on_chunk, stop=None):
        try:
            real(self, {**request, "ignore_eos": True}, lambda c: (streamed.append(c), on_chunk(c)), stop)
        finally:
            finished.set()

    monkeypatch.setattr(EmbeddedModel, "chat_stream", endless)
    settings = Settings.from_env({"FUSION_TIMEOUT_S": "1", "FUSION_MAX_RETRIES": "0"})
    load_embedded(settings.local)  # loaded beforehand: the 1 s must time out the generation, not the loading
    completer = LiteLLMCompleter(settings)
    messages = [{"role": "user", "content": "Count from one to one thousand in words."}]
    with pytest.raises(ModelTimeoutError):
        asyncio.run(completer.complete(LOCAL, messages, GenParams(max_tokens=4000, seed=1)))
    assert finished.wait(120), "the generation thread never ended"
    assert 0 < len(streamed) < 4000
