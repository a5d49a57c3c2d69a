"""A fake completer for tests and benchmarks: queued replies, recorded calls, simulated latency."""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from .errors import ModelError
from .types import Completion, GenParams, Message

Reply = str | BaseException | Callable[[str, Sequence[Message], GenParams], str]


@dataclass
class Call:
    """One recorded call."""

    model: str
    messages: list[Message]
    params: GenParams
    started: float
    finished: float = 0.0


@dataclass
class FakeCompleter:
    """Answers from a queue (or a default function), after `delay` seconds, and records every call.

    A reply may be a string, an exception to raise, or a function of
    (model, messages, params) returning a string. `delays` maps a model to its
    own latency; `unknown_models` fail `check_model`.
    """

    default: Reply | None = None
    delay: float = 0.0
    delays: dict[str, float] = field(default_factory=dict)
    unknown_models: set[str] = field(default_factory=set)
    window: int | None = None
    history: list[Call] = field(default_factory=list)
    _queue: deque = field(default_factory=deque)

    def enqueue(self, replies: Sequence[Reply]) -> FakeCompleter:
        """Queue replies, consumed in call order."""
        self._queue.extend(replies)
        return self

    def check_model(self, model: str) -> None:
        """Reject models listed in `unknown_models`."""
        if model in self.unknown_models:
            raise ModelError(f"unknown model {model!r}", model=model)

    def context_window(self, model: str) -> int | None:
        """The configured window, the same for every model."""
        return self.window

    async def complete(
        self,
        model: str,
        messages: Sequence[Message],
        params: GenParams,
        on_delta: Callable[[str], None] | None = None,
    ) -> Completion:
        """Return the next queued reply, or the default one; with `on_delta`, stream it word by word."""
        call = Call(model, [dict(m) for m in messages], params, time.perf_counter())
        self.history.append(call)
        self.check_model(model)
        wait = self.delays.get(model, self.delay)
        if wait:
            await asyncio.sleep(wait)
        reply = self._queue.popleft() if self._queue else self.default
        if reply is None:
            raise AssertionError(f"FakeCompleter: no reply queued for call {len(self.history)}")
        call.finished = time.perf_counter()
        if isinstance(reply, BaseException):
            raise reply
        text = reply(model, messages, params) if callable(reply) else reply
        if on_delta is not None:
            words = text.split(" ")
            for n in range(1, len(words) + 1):
                on_delta(" ".join(words[:n]))
        return Completion(
            model=model,
            text=text,
            params=params,
            prompt_tokens=sum(len(m["content"].split()) for m in messages),
            completion_tokens=len(text.split()),
            cost=0.0,
            latency_s=call.finished - call.started,
            finish_reason="stop",
        )
