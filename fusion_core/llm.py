"""The one way in to model calls: litellm, imported lazily, plus the embedded model.

Every model is a litellm model string. `provider/name@http://host:port/v1` sends
it to an explicit API base (any OpenAI-compatible server). `local/<name>` is the
embedded llama.cpp model, registered as a litellm custom provider.

Retries are ours: litellm's and the OpenAI SDK's own are off, transient errors
(rate limits, 5xx, connection drops, timeouts) are retried with exponential
backoff, and every attempt is bounded by `asyncio.wait_for`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .errors import (
    ContextOverflowError,
    FusionError,
    MissingKeyError,
    ModelError,
    ModelTimeoutError,
    ModelUnreachableError,
    UnknownModelError,
)
from .local_model import load_embedded
from .settings import LocalModelConfig, Settings
from .types import Completion, GenParams, Message

log = logging.getLogger(__name__)

LOCAL_PROVIDER = "local"
OnDelta = Callable[[str], None]
_import_lock = threading.Lock()
_litellm: Any = None


class Completer(Protocol):
    """What sampling, selection and fusion call; tests pass a fake with the same shape."""

    async def complete(
        self, model: str, messages: Sequence[Message], params: GenParams, on_delta: OnDelta | None = None
    ) -> Completion:
        """Run one chat completion, or raise a ModelError; `on_delta` receives the text so far as it streams."""
        ...

    def check_model(self, model: str) -> None:
        """Raise a ModelError now if `model` cannot be called (unknown, no key)."""
        ...

    def context_window(self, model: str) -> int | None:
        """Input tokens the model accepts, when known."""
        ...


@dataclass(frozen=True)
class ModelRef:
    """A model string split into the litellm model and an optional API base."""

    model: str
    api_base: str | None = None

    @classmethod
    def parse(cls, spec: str) -> ModelRef:
        """Split `provider/name@base` into its parts."""
        spec = spec.strip()
        if "@" in spec:
            model, base = spec.split("@", 1)
            return cls(model.strip(), base.strip() or None)
        return cls(spec)

    @property
    def is_local(self) -> bool:
        """True for the embedded model."""
        return self.model.startswith(LOCAL_PROVIDER + "/")


def litellm_module() -> Any:
    """litellm, imported once on first use (it takes seconds), quiet and offline-safe."""
    global _litellm
    with _import_lock:
        if _litellm is None:
            os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
            import litellm

            litellm.suppress_debug_info = True
            litellm.set_verbose = False
            litellm.telemetry = False
            litellm.drop_params = True
            for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
                logging.getLogger(name).setLevel(logging.WARNING)
            litellm.custom_provider_map = [
                *[p for p in litellm.custom_provider_map if p["provider"] != LOCAL_PROVIDER],
                {"provider": LOCAL_PROVIDER, "custom_handler": _embedded_handler(litellm)},
            ]
            _litellm = litellm
        return _litellm


def _embedded_handler(litellm: Any) -> Any:
    """A litellm CustomLLM that answers `local/...` with the in-process llama.cpp model."""

    class EmbeddedLLM(litellm.CustomLLM):
        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            server, request = await _local_request(messages, kwargs)
            result = await asyncio.to_thread(server.chat, request)
            result["model"] = f"{LOCAL_PROVIDER}/{model}"
            return litellm.ModelResponse(**result)

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> AsyncIterator[dict]:
            server, request = await _local_request(messages, kwargs)
            loop = asyncio.get_running_loop()
            chunks: asyncio.Queue = asyncio.Queue()
            end = object()
            worker = asyncio.ensure_future(
                asyncio.to_thread(
                    server.chat_stream, request, lambda c: loop.call_soon_threadsafe(chunks.put_nowait, c)
                )
            )
            worker.add_done_callback(lambda _: chunks.put_nowait(end))
            while (chunk := await chunks.get()) is not end:
                yield _generic_chunk(chunk)
            await worker  # re-raises the server's error, if any

    return EmbeddedLLM()


async def _local_request(messages: list, kwargs: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The embedded server for this call's configuration, and the request to send it."""
    options = dict(kwargs.get("optional_params") or {})
    config: LocalModelConfig = options.pop("local_config")
    # No prompt-cache reuse: a reused KV prefix changes the numerics, and the same seed must give
    # the same answer (runs are meant to be reproducible).
    request = {"messages": messages, "cache_prompt": False}
    for key in ("temperature", "top_p", "max_tokens", "seed", "stop"):
        if options.get(key) is not None:
            request[key] = options[key]
    return await asyncio.to_thread(load_embedded, config), request


def _generic_chunk(chunk: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI-style stream chunk from llama.cpp as litellm's GenericStreamingChunk."""
    choice = (chunk.get("choices") or [{}])[0]
    timings = chunk.get("timings")
    usage = None
    if timings:
        prompt, completion = timings.get("prompt_n", 0), timings.get("predicted_n", 0)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    finish = choice.get("finish_reason")
    text = (choice.get("delta") or {}).get("content") or ""
    return {
        "text": text,
        "is_finished": finish is not None,
        "finish_reason": finish or "",
        "usage": usage,
        "index": 0,
        "tool_use": None,
    }


class LiteLLMCompleter:
    """Calls any litellm model, or the embedded one, with timeouts and retries."""

    def __init__(self, settings: Settings, call_options: dict[str, Any] | None = None):
        """`call_options` are passed to every litellm call (e.g. `mock_response`, `mock_delay` in benchmarks)."""
        self.settings = settings
        self.call_options = dict(call_options or {})

    def check_model(self, model: str) -> None:
        """Fail fast on an unknown provider or a missing API key."""
        ref = ModelRef.parse(model)
        if ref.is_local:
            return
        litellm = litellm_module()
        try:
            litellm.get_llm_provider(ref.model, api_base=ref.api_base)
        except Exception:  # noqa: BLE001 - litellm raises several types for "no such provider"
            raise UnknownModelError(
                f"unknown model {ref.model!r}: use a litellm model string such as "
                f"openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest or {LOCAL_PROVIDER}/smollm2-135m",
                model=model,
            ) from None
        if ref.api_base:
            return
        env = litellm.validate_environment(ref.model)
        missing = [k for k in env.get("missing_keys", []) if any(w in k for w in ("KEY", "TOKEN", "SECRET"))]
        if missing:
            raise MissingKeyError(ref.model, missing)

    def context_window(self, model: str) -> int | None:
        """The model's input limit from litellm's model map, or the embedded model's."""
        ref = ModelRef.parse(model)
        if ref.is_local:
            return self.settings.local.context_per_request
        try:
            info = litellm_module().get_model_info(ref.model)
        except Exception:  # noqa: BLE001 - unknown to litellm's model map: the window is unknown
            return None
        return info.get("max_input_tokens") or info.get("max_tokens")

    async def complete(
        self, model: str, messages: Sequence[Message], params: GenParams, on_delta: OnDelta | None = None
    ) -> Completion:
        """One chat completion with our timeout and retry budget; streamed when `on_delta` is given."""
        ref = ModelRef.parse(model)
        self.check_model(model)
        litellm = litellm_module()
        kwargs: dict[str, Any] = {
            "model": ref.model,
            "messages": list(messages),
            "num_retries": 0,
            "max_retries": 0,  # the OpenAI SDK's hidden retries: the budget is ours
            **params.as_kwargs(),
            **self.call_options,
        }
        if ref.api_base:
            kwargs["api_base"] = ref.api_base
            if litellm.validate_environment(ref.model).get("missing_keys"):
                kwargs["api_key"] = "EMPTY"  # self-hosted OpenAI-compatible servers need none; the SDK insists
        if ref.is_local:
            kwargs["local_config"] = self.settings.local
        else:
            kwargs["timeout"] = self.settings.timeout_s
        attempts = self.settings.max_retries + 1
        for attempt in range(attempts):
            started = time.perf_counter()
            try:
                call = _streamed(litellm, kwargs, on_delta) if on_delta else litellm.acompletion(**kwargs)
                response = await asyncio.wait_for(call, self.settings.timeout_s)
                return _completion(litellm, model, params, response, time.perf_counter() - started)
            except Exception as exc:
                error = classify_error(exc, model, ref.api_base, self.settings.timeout_s)
                if not error.transient or attempt == attempts - 1:
                    raise error from exc
                delay = min(8.0, 0.5 * 2**attempt) * (0.5 + random.random())
                log.warning("%s: %s; retry %d/%d in %.1fs", model, error, attempt + 1, attempts - 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")


async def _streamed(litellm: Any, kwargs: dict[str, Any], on_delta: OnDelta) -> Any:
    """Stream one call, reporting the text so far, and rebuild the whole response (with usage) at the end."""
    stream = await litellm.acompletion(**kwargs, stream=True, stream_options={"include_usage": True})
    chunks, text = [], ""
    async for chunk in stream:
        chunks.append(chunk)
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            text += delta
            on_delta(text)
    return litellm.stream_chunk_builder(chunks, messages=kwargs["messages"])


def _completion(litellm: Any, model: str, params: GenParams, response: Any, latency: float) -> Completion:
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    cost: float | None
    if ModelRef.parse(model).is_local:
        cost = 0.0
    else:
        try:
            cost = float(litellm.completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - litellm does not know every model's price
            cost = None
    return Completion(
        model=model,
        text=choice.message.content or "",
        params=params,
        prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
        completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
        cost=cost,
        latency_s=latency,
        finish_reason=getattr(choice, "finish_reason", None),
    )


def classify_error(exc: BaseException, model: str, api_base: str | None, timeout_s: float) -> ModelError:
    """Turn a litellm/SDK/our own exception into one ModelError with an actionable message."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, FusionError):
        return ModelError(str(exc), model=model)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ModelTimeoutError(f"{model}: no answer within {timeout_s:g}s", model=model, transient=True)
    name = type(exc).__name__
    text = str(exc)
    if (
        "exceeds the available context size" in text
        or "context_length_exceeded" in text
        or name == "ContextWindowExceededError"
    ):
        return ContextOverflowError(
            f"{model}: the request does not fit in the context window ({_short(text)})", model=model
        )
    if name == "AuthenticationError":
        return ModelError(f"{model}: the API key was rejected ({_short(text)})", model=model)
    if name == "APIConnectionError" or _connection_failed(exc):
        where = api_base or "the provider"
        return ModelUnreachableError(f"{model}: cannot reach {where} ({_short(text)})", model=model, transient=True)
    if name == "Timeout":
        return ModelTimeoutError(f"{model}: no answer within {timeout_s:g}s", model=model, transient=True)
    if name in ("RateLimitError", "ServiceUnavailableError", "InternalServerError", "APIError"):
        return ModelError(f"{model}: {name} ({_short(text)})", model=model, transient=True)
    if name in ("NotFoundError", "BadRequestError", "UnprocessableEntityError", "PermissionDeniedError"):
        return ModelError(f"{model}: {name} ({_short(text)})", model=model)
    return ModelError(f"{model}: {name}: {_short(text)}", model=model)


_KEY_LIKE = re.compile(r"\b(sk|pk|key|api)[-_][A-Za-z0-9_\-*]{6,}", re.IGNORECASE)


def redact(text: str) -> str:
    """Remove API keys (the values of set *_KEY/*_TOKEN variables, and key-shaped words) from text."""
    for name, value in os.environ.items():
        if value and len(value) >= 8 and any(w in name for w in ("KEY", "TOKEN", "SECRET", "PASSWORD")):
            text = text.replace(value, "[redacted]")
    return _KEY_LIKE.sub("[redacted]", text)


def _connection_failed(exc: BaseException) -> bool:
    """True if the error chain shows the connection itself failed (litellm reports it as a 500)."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if type(seen).__name__ in (
            "APIConnectionError",
            "ConnectError",
            "ClientConnectorError",
            "ConnectionRefusedError",
        ):
            return True
        seen = seen.__cause__ or seen.__context__
    return "Connection error" in str(exc)


def _short(text: str, limit: int = 300) -> str:
    text = redact(" ".join(text.split()))
    return text if len(text) <= limit else text[: limit - 1] + "…"
