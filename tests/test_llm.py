"""The litellm seam, through real litellm (no network: mock responses, closed ports)."""

import asyncio
import logging
import time

import pytest

from fusion_core.errors import MissingKeyError, ModelError, ModelTimeoutError, ModelUnreachableError, UnknownModelError
from fusion_core.llm import LiteLLMCompleter, ModelRef, classify_error, litellm_module, redact
from fusion_core.settings import Settings
from fusion_core.types import GenParams

MSG = [{"role": "user", "content": "hi"}]


def completer(tmp_path, **options):
    env = {"FUSION_DATA_DIR": str(tmp_path), "FUSION_TIMEOUT_S": "2", "FUSION_MAX_RETRIES": "2"}
    return LiteLLMCompleter(Settings.from_env(env), call_options=options)


def test_model_ref_splits_an_api_base():
    assert ModelRef.parse("openai/qwen@http://127.0.0.1:8000/v1") == ModelRef("openai/qwen", "http://127.0.0.1:8000/v1")
    assert ModelRef.parse(" openai/gpt-4o-mini ") == ModelRef("openai/gpt-4o-mini")
    assert ModelRef.parse("local/smollm2-135m").is_local


def test_unknown_model_is_rejected_with_examples(tmp_path):
    with pytest.raises(UnknownModelError, match="litellm model string"):
        completer(tmp_path).check_model("nosuchprovider/some-model")


def test_missing_key_names_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(MissingKeyError, match="ANTHROPIC_API_KEY"):
        completer(tmp_path).check_model("anthropic/claude-3-5-haiku-latest")


def test_a_set_key_passes_the_check(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    completer(tmp_path).check_model("openai/gpt-4o-mini")


def test_a_mocked_call_returns_a_typed_completion_with_tokens_cost_and_params(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    params = GenParams(temperature=0.3, top_p=0.9, max_tokens=20, seed=4)
    done = asyncio.run(completer(tmp_path, mock_response="Hello!").complete("openai/gpt-4o-mini", MSG, params))
    assert done.text == "Hello!"
    assert done.params == params
    assert done.prompt_tokens > 0 and done.completion_tokens > 0
    assert done.cost is not None and done.cost > 0
    assert done.latency_s >= 0


def test_timeouts_are_enforced_and_retried(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    slow = completer(tmp_path, mock_response="late", mock_delay=30)
    slow.settings = Settings.from_env(
        {"FUSION_DATA_DIR": str(tmp_path), "FUSION_TIMEOUT_S": "0.2", "FUSION_MAX_RETRIES": "1"}
    )
    started = time.perf_counter()
    with caplog.at_level(logging.WARNING, logger="fusion_core.llm"), pytest.raises(ModelTimeoutError, match=r"0\.2s"):
        asyncio.run(slow.complete("openai/gpt-4o-mini", MSG, GenParams()))
    assert time.perf_counter() - started < 10
    assert sum("retry 1/1" in r.getMessage() for r in caplog.records) == 1


def test_transient_provider_errors_are_retried_then_reported(tmp_path, monkeypatch, caplog):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    litellm = litellm_module()
    error = litellm.RateLimitError("slow down", llm_provider="openai", model="gpt-4o-mini")
    flaky = completer(tmp_path, mock_response=error)
    with caplog.at_level(logging.WARNING, logger="fusion_core.llm"), pytest.raises(ModelError, match="RateLimitError"):
        asyncio.run(flaky.complete("openai/gpt-4o-mini", MSG, GenParams()))
    assert sum("retry" in r.getMessage() for r in caplog.records) == 2


def test_an_unreachable_api_base_says_where(tmp_path):
    dead = completer(tmp_path)
    dead.settings = Settings.from_env(
        {"FUSION_DATA_DIR": str(tmp_path), "FUSION_TIMEOUT_S": "5", "FUSION_MAX_RETRIES": "0"}
    )
    with pytest.raises(ModelUnreachableError, match=r"127\.0\.0\.1:9"):
        asyncio.run(dead.complete("openai/any@http://127.0.0.1:9/v1", MSG, GenParams(max_tokens=5)))


def test_errors_never_carry_api_keys(monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "supersecretvalue42")
    assert "supersecretvalue42" not in redact("bad key supersecretvalue42 given")
    assert "sk-abcdefghijklmnop" not in redact("Incorrect API key provided: sk-abcdefghijklmnop.")
    err = classify_error(RuntimeError("auth failed for sk-abcdefghijklmnop"), "openai/x", None, 5)
    assert "sk-abcdefghijklmnop" not in str(err)


def test_asyncio_timeouts_classify_as_transient_timeouts():
    err = classify_error(TimeoutError(), "m", None, 3)
    assert isinstance(err, ModelTimeoutError) and err.transient


def test_a_streamed_call_reports_text_as_it_arrives_and_returns_the_same_typed_completion(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    streaming = completer(tmp_path, mock_response="Hello there, this streams in pieces.")
    seen = []
    done = asyncio.run(streaming.complete("openai/gpt-4o-mini", MSG, GenParams(max_tokens=20), on_delta=seen.append))
    assert done.text == "Hello there, this streams in pieces."
    assert len(seen) > 1 and seen[-1] == done.text
    assert all(done.text.startswith(part) for part in seen)
    assert done.prompt_tokens > 0 and done.completion_tokens > 0 and done.cost is not None
