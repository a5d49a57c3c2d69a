"""The embedded offline model: a GGUF served in-process by llama.cpp (xllamacpp).

One server per process and configuration. llama.cpp batches concurrent requests
(continuous batching), so N candidates requested at once decode together; the
server is thread-safe, callers run `chat` in worker threads. The KV cache is
unified, so one request may use the whole per-request context while several
short ones share it.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from typing import Any

from .errors import ContextOverflowError, LocalModelMissingError, ModelError
from .settings import LocalModelConfig

log = logging.getLogger(__name__)

# Loading weights is per process by nature; this cache is the one place that holds them.
_servers: dict[LocalModelConfig, EmbeddedModel] = {}
_lock = threading.Lock()


class EmbeddedModel:
    """A loaded GGUF chat model answering OpenAI-style chat requests."""

    def __init__(self, config: LocalModelConfig):
        if not config.gguf_path.is_file():
            raise LocalModelMissingError(
                f"embedded model not found at {config.gguf_path}; run `make model` "
                "(or point FUSION_LOCAL_GGUF at a GGUF chat model)"
            )
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(config.gguf_path)
        params.n_ctx = config.n_ctx
        params.n_parallel = config.n_parallel
        params.kv_unified = True
        threads = config.n_threads or os.cpu_count() or 1
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.warmup = False
        params.verbosity = -1  # llama.cpp logs nothing, neither to stdout nor stderr
        log.info("loading embedded model %s (ctx %d, %d slots)", config.gguf_path, config.n_ctx, config.n_parallel)
        self.config = config
        self._server = xllamacpp.Server(params)

    def chat(self, request: dict[str, Any], stop: threading.Event) -> dict[str, Any]:
        """Run one chat completion; blocks, safe to call from several threads at once.

        The answer is streamed internally so that setting `stop` (a timed-out or cancelled caller)
        ends generation at the next token and frees the slot; that raises ModelError("... stopped").
        """
        chunks: list[dict[str, Any]] = []
        self.chat_stream(request, chunks.append, stop)
        if stop.is_set():
            raise ModelError("embedded model: stopped before the answer was complete")
        return _assembled(chunks)

    def chat_stream(
        self,
        request: dict[str, Any],
        on_chunk: Callable[[dict[str, Any]], None],
        stop: threading.Event | None = None,
    ) -> None:
        """Run one chat completion, calling `on_chunk` with each OpenAI-style chunk; blocks.

        Once `stop` is set, generation ends at the next token (llama.cpp cancels the request).
        """
        failure: list[dict[str, Any]] = []

        def receive(chunk: Any) -> bool:
            if stop is not None and stop.is_set():
                return True  # tells llama.cpp to stop reading: the request is cancelled
            if isinstance(chunk, dict) and chunk.get("error"):
                failure.append(chunk)
            else:
                on_chunk(chunk)
            return False

        result = self._server.handle_chat_completions({**request, "stream": True}, receive)
        _raise_for_error(failure[0] if failure else result)


def chunk_parts(chunk: dict[str, Any]) -> tuple[str, str | None, dict[str, int] | None]:
    """An OpenAI-style stream chunk from llama.cpp as (text, finish reason, usage from its timings)."""
    choice = (chunk.get("choices") or [{}])[0]
    text = (choice.get("delta") or {}).get("content") or ""
    timings = chunk.get("timings")
    usage = None
    if timings:
        prompt, completion = timings.get("prompt_n", 0), timings.get("predicted_n", 0)
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return text, choice.get("finish_reason"), usage


def _assembled(chunks: list[dict[str, Any]]) -> dict[str, Any]:
    """One chat.completion from a stream's chunks, as the non-streaming call returns it."""
    if not chunks:
        raise ModelError("embedded model: the answer stream was empty")
    texts, finish, usage = [], None, None
    for chunk in chunks:
        text, chunk_finish, chunk_usage = chunk_parts(chunk)
        texts.append(text)
        finish, usage = chunk_finish or finish, chunk_usage or usage
    last = chunks[-1]
    return {
        "id": last.get("id"), "object": "chat.completion", "created": last.get("created"), "model": last.get("model"),
        "choices": [{"index": 0, "finish_reason": finish, "message": {"role": "assistant", "content": "".join(texts)}}],
        "usage": usage,
    }  # fmt: skip


def _raise_for_error(result: Any) -> None:
    """Raise the ModelError a server answer carries, if any."""
    error = result.get("error") if isinstance(result, dict) else None
    if not error:
        return
    message = error.get("message", str(error)) if isinstance(error, dict) else str(error)
    if isinstance(error, dict) and error.get("type") == "exceed_context_size_error":
        raise ContextOverflowError(
            f"embedded model: {message}; use fewer or shorter candidates, or raise FUSION_LOCAL_CTX",
        )
    raise ModelError(f"embedded model: {message}")


def load_embedded(config: LocalModelConfig) -> EmbeddedModel:
    """The process's embedded model for this configuration, loaded on first use."""
    with _lock:
        model = _servers.get(config)
        if model is None:
            model = EmbeddedModel(config)
            _servers[config] = model
        return model
