"""The one way in to model calls: litellm, imported lazily, plus the embedded model.

Every model is a litellm model string. `provider/name@http://host:port/v1` sends
it to an explicit API base (any OpenAI-compatible server). `local/<name>` is the
embedded llama.cpp model, registered as a litellm custom provider.

Retries are ours: litellm's and the OpenAI SDK's own are off, transient errors
(rate limits, 5xx, connection drops, timeouts) are retried with exponential
backoff, and every attempt is bounded by `asyncio.wait_for`.

A router config (FUSION_ROUTER_CONFIG, parsed in router.py) adds model groups. A model
string that names a group goes to one `litellm.Router`, built on first use, which spreads
the calls over the group's deployments, keeps to their rpm/tpm, cools failing ones down
and falls back to other groups. For those calls the router is the retry layer: it retries
within the group (router_settings.num_retries, else FUSION_MAX_RETRIES), then tries the
fallback groups, and our loop makes a single attempt, so the two never multiply. Each
deployment attempt is bounded by router_settings.timeout (else FUSION_TIMEOUT_S) inside the
router; our `asyncio.wait_for` bounds the whole routed call, sized to allow every retry on
the group and its fallbacks plus litellm's backoffs, so it never cuts a fallback short but
a call can never hang. Any other model string goes straight to litellm as before.
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
from dataclasses import dataclass, field
from typing import Any, Protocol

from .errors import (
    ConfigError,
    ContextOverflowError,
    FusionError,
    MissingKeyError,
    ModelError,
    ModelTimeoutError,
    ModelUnreachableError,
    UnknownModelError,
)
from .local_model import chunk_parts, load_embedded
from .router import RouterConfig, load_router_config
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
        # A call that times out or is cancelled (Ctrl-C) sets `stop`: llama.cpp then ends that
        # generation at its next token instead of decoding to max_tokens in a thread nobody awaits.
        async def acompletion(self, model: str, messages: list, *args: Any, **kwargs: Any) -> Any:
            server, request = await _local_request(messages, kwargs)
            stop = threading.Event()
            try:
                result = await asyncio.to_thread(server.chat, request, stop)
            finally:
                stop.set()
            result["model"] = f"{LOCAL_PROVIDER}/{model}"
            return litellm.ModelResponse(**result)

        async def astreaming(self, model: str, messages: list, *args: Any, **kwargs: Any) -> AsyncIterator[dict]:
            server, request = await _local_request(messages, kwargs)
            loop = asyncio.get_running_loop()
            chunks: asyncio.Queue = asyncio.Queue()
            end = object()
            stop = threading.Event()
            worker = asyncio.ensure_future(
                asyncio.to_thread(
                    server.chat_stream, request, lambda c: loop.call_soon_threadsafe(chunks.put_nowait, c), stop
                )
            )
            worker.add_done_callback(lambda _: chunks.put_nowait(end))
            try:
                while (chunk := await chunks.get()) is not end:
                    yield _generic_chunk(chunk)
                await worker  # re-raises the server's error, if any
            finally:
                stop.set()

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
    text, finish, usage = chunk_parts(chunk)
    return {
        "text": text,
        "is_finished": finish is not None,
        "finish_reason": finish or "",
        "usage": usage,
        "index": 0,
        "tool_use": None,
    }


@dataclass(frozen=True)
class _Call:
    """How one completion is sent: the function, its arguments, our attempts and the bound on each."""

    acompletion: Callable[..., Any]
    kwargs: dict[str, Any]
    attempts: int
    timeout_s: float
    where: str | None = None  # what "cannot reach ..." names
    free: bool = False  # the embedded model: no cost
    secrets: tuple[str, ...] = field(default=(), repr=False)  # literal keys to scrub from errors


class LiteLLMCompleter:
    """Calls any litellm model, a router model group, or the embedded model, with timeouts and retries."""

    def __init__(self, settings: Settings, call_options: dict[str, Any] | None = None):
        """`call_options` are passed to every litellm call (e.g. `mock_response`, `mock_delay` in benchmarks)."""
        self.settings = settings
        self.call_options = dict(call_options or {})
        self.router_config: RouterConfig | None = (
            load_router_config(settings.router_config) if settings.router_config else None
        )
        self._router: Any = None
        self._router_lock = threading.Lock()

    def router_group(self, model: str) -> str | None:
        """The router model group `model` names, or None (no router config, or not one of its groups)."""
        return self.router_config.group_for(model) if self.router_config else None

    def router(self) -> Any:
        """The litellm Router for the router config, built on first use (once per completer, thread-safe)."""
        if self.router_config is None:
            raise ConfigError("no router config: set FUSION_ROUTER_CONFIG to a router config file")
        with self._router_lock:
            if self._router is None:
                self._router = _build_router(litellm_module(), self.router_config, self.settings)
            return self._router

    def check_model(self, model: str) -> None:
        """Fail fast on an unknown provider or a missing API key (for a router group: an unset os.environ/ key)."""
        group = self.router_group(model)
        if group is not None:
            assert self.router_config is not None
            missing = self.router_config.missing_env(group)
            if missing:
                raise MissingKeyError(group, missing)
            return  # deployments may carry their own keys: no provider key is demanded
        ref = ModelRef.parse(model)
        if ref.is_local:
            return
        litellm = litellm_module()
        try:
            litellm.get_llm_provider(ref.model, api_base=ref.api_base)
        except Exception:  # noqa: BLE001 - litellm raises several types for "no such provider"
            groups = f" or a router group ({', '.join(self.router_config.groups)})" if self.router_config else ""
            raise UnknownModelError(
                f"unknown model {ref.model!r}: use a litellm model string such as "
                f"openai/gpt-4o-mini, anthropic/claude-3-5-haiku-latest or {LOCAL_PROVIDER}/smollm2-135m{groups}",
                model=model,
            ) from None
        if ref.api_base:
            return
        env = litellm.validate_environment(ref.model)
        missing = [k for k in env.get("missing_keys", []) if any(w in k for w in ("KEY", "TOKEN", "SECRET"))]
        if missing:
            raise MissingKeyError(ref.model, missing)

    def context_window(self, model: str) -> int | None:
        """The model's input limit from litellm's model map, or the embedded model's; a group's first deployment's."""
        group = self.router_group(model)
        if group is not None:
            assert self.router_config is not None
            first = self.router_config.groups[group][0]
            declared = (first.extra.get("model_info") or {}).get("max_input_tokens")
            if isinstance(declared, int) and declared > 0:
                return declared
            model = first.model
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
        self.check_model(model)
        litellm = litellm_module()
        group = self.router_group(model)
        call = self._routed(group, messages, params) if group else self._direct(litellm, model, messages, params)
        for attempt in range(call.attempts):
            started = time.perf_counter()
            try:
                pending = _streamed(litellm, call, on_delta) if on_delta else call.acompletion(**call.kwargs)
                response = await asyncio.wait_for(pending, call.timeout_s)
                return _completion(litellm, model, params, response, time.perf_counter() - started, call.free)
            except Exception as exc:
                error = classify_error(exc, model, call.where, call.timeout_s, secrets=call.secrets)
                if not error.transient or attempt == call.attempts - 1:
                    if call.secrets:  # the provider's error may quote a literal key from the router config
                        raise error from None
                    raise error from exc
                delay = min(8.0, 0.5 * 2**attempt) * (0.5 + random.random())
                log.warning("%s: %s; retry %d/%d in %.1fs", model, error, attempt + 1, call.attempts - 1, delay)
                await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _direct(self, litellm: Any, model: str, messages: Sequence[Message], params: GenParams) -> _Call:
        """A call straight to litellm, retried by our loop."""
        ref = ModelRef.parse(model)
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
        return _Call(
            acompletion=litellm.acompletion,
            kwargs=kwargs,
            attempts=self.settings.max_retries + 1,
            timeout_s=self.settings.timeout_s,
            where=ref.api_base,
            free=ref.is_local,
        )

    def _routed(self, group: str, messages: Sequence[Message], params: GenParams) -> _Call:
        """A call through the router: it retries and falls back, our loop only bounds it (see the module docstring)."""
        config = self.router_config
        assert config is not None
        kwargs: dict[str, Any] = {
            "model": group,
            "messages": list(messages),
            "max_retries": 0,  # the OpenAI SDK's hidden retries: the router's num_retries is the budget
            **params.as_kwargs(),
            **self.call_options,
        }
        return _Call(
            acompletion=self.router().acompletion,
            kwargs=kwargs,
            attempts=1,
            timeout_s=config.call_budget(group, self.settings.timeout_s, self.settings.max_retries),
            where=f"the deployments of router group {group!r}",
            free=all(ModelRef(d.model).is_local for d in config.groups[group]),
            secrets=config.secrets(),
        )


def _build_router(litellm: Any, config: RouterConfig, settings: Settings) -> Any:
    """A litellm Router for `config`; the embedded model and key-less self-hosted servers work as deployments."""
    model_list = config.model_list()
    for index, deployment in enumerate(model_list):
        params = deployment["litellm_params"]
        ref = ModelRef(params["model"], params.get("api_base"))
        if ref.is_local:
            params["local_config"] = settings.local  # read by the embedded handler, as on the direct path
            continue
        try:
            litellm.get_llm_provider(ref.model, api_base=ref.api_base)
        except Exception:  # noqa: BLE001 - litellm raises several types for "no such provider"
            raise ConfigError(
                f"{config.path}: model_list[{index}] ({deployment['model_name']}): unknown model {ref.model!r}; "
                "use a litellm model string such as openai/<served model name>"
            ) from None
        if ref.api_base and not params.get("api_key") and litellm.validate_environment(ref.model).get("missing_keys"):
            params["api_key"] = "EMPTY"  # self-hosted OpenAI-compatible servers need none; the SDK insists
    options = {"num_retries": settings.max_retries, "timeout": settings.timeout_s, **config.router_settings()}
    try:
        router = litellm.Router(model_list=model_list, **options)
    except Exception as exc:  # noqa: BLE001 - TypeError, ValueError, pydantic errors: all mean "fix the file"
        raise ConfigError(
            f"{config.path}: litellm rejected the router config ({_short(str(exc), secrets=config.secrets())}); "
            "fix the setting it names"
        ) from None
    _scrub_logs(config.secrets())
    return router


class _ScrubSecrets(logging.Filter):
    """Removes a router config's literal keys from log records (a provider's error may quote the key it got)."""

    def __init__(self, secrets: tuple[str, ...]):
        super().__init__()
        self.secrets = secrets

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        clean = _scrub(text, self.secrets)
        if clean != text:
            record.msg, record.args = clean, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = _scrub(logging.Formatter().formatException(record.exc_info), self.secrets)
        return True


def _scrub_logs(secrets: tuple[str, ...]) -> None:
    """Install one _ScrubSecrets per set of secrets on the loggers litellm and its HTTP clients write to."""
    if not secrets:
        return
    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "openai._base_client", "httpx", "httpcore"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _ScrubSecrets) and f.secrets == secrets for f in logger.filters):
            logger.addFilter(_ScrubSecrets(secrets))


def _scrub(text: str, secrets: Sequence[str]) -> str:
    for value in secrets:
        text = text.replace(value, "[redacted]")
    return text


async def _streamed(litellm: Any, call: _Call, on_delta: OnDelta) -> Any:
    """Stream one call, reporting the text so far, and rebuild the whole response (with usage) at the end."""
    stream = await call.acompletion(**call.kwargs, stream=True, stream_options={"include_usage": True})
    chunks, text = [], ""
    async for chunk in stream:
        chunks.append(chunk)
        delta = chunk.choices[0].delta.content if chunk.choices else None
        if delta:
            text += delta
            on_delta(text)
    return litellm.stream_chunk_builder(chunks, messages=call.kwargs["messages"])


def _completion(
    litellm: Any, model: str, params: GenParams, response: Any, latency: float, free: bool = False
) -> Completion:
    choice = response.choices[0]
    usage = getattr(response, "usage", None)
    cost: float | None
    known = (getattr(response, "_hidden_params", None) or {}).get("response_cost")
    if free:
        cost = 0.0
    elif isinstance(known, (int, float)):  # litellm priced it already; pricing again costs ~3 ms of CPU
        cost = float(known)
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


def classify_error(
    exc: BaseException, model: str, api_base: str | None, timeout_s: float, secrets: Sequence[str] = ()
) -> ModelError:
    """Turn a litellm/SDK/our own exception into one ModelError with an actionable message, `secrets` scrubbed."""
    if isinstance(exc, ModelError):
        return exc
    if isinstance(exc, FusionError):
        return ModelError(str(exc), model=model)
    if isinstance(exc, (asyncio.TimeoutError, TimeoutError)):
        return ModelTimeoutError(f"{model}: no answer within {timeout_s:g}s", model=model, transient=True)
    name = type(exc).__name__
    text = _scrub(str(exc), secrets)
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


def redact(text: str, secrets: Sequence[str] = ()) -> str:
    """Remove API keys (literal `secrets`, the values of set *_KEY/*_TOKEN variables, key-shaped words) from text."""
    text = _scrub(text, secrets)
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


def _short(text: str, limit: int = 300, secrets: Sequence[str] = ()) -> str:
    text = redact(" ".join(text.split()), secrets)
    return text if len(text) <= limit else text[: limit - 1] + "…"
