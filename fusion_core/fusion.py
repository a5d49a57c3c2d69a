"""Fusion-of-N: a fusor model reads the prompt and all candidates and writes one new answer.

The default instructions follow "Making, Not Taking, the Best of N": combine
the strongest parts of every candidate and explicitly discard the incorrect,
weak or redundant ones (the paper found the discard instruction necessary),
never mention the candidates, answer in the prompt's language. Candidates are
labelled neutrally (no model names). What was sent is returned so it can be
stored, shown and edited.
"""

from __future__ import annotations

import math
import random
import re
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from .errors import ConfigError, ContextOverflowError
from .llm import Completer, OnDelta
from .types import Candidate, FusionResult, GenParams, Message

STRENGTHS = {
    "integrate": (
        "Integrate the useful content of every candidate: keep each correct point, example and detail, "
        "merged without repetition. Drop only what is clearly incorrect or redundant."
    ),
    "balanced": (
        "Keep the strongest segments of each candidate. Explicitly discard any part that is incorrect, weak, "
        "unsupported or redundant, even if several candidates contain it."
    ),
    "aggressive": (
        "Be selective: keep only segments that are clearly correct and valuable, and discard everything else. "
        "A focused answer built from a few strong segments is better than a long one that keeps weak material."
    ),
}

SYSTEM_PROMPT = "You are an expert writer and careful fact-checker. You write the best possible answer to a prompt."

TASK = "\n".join(
    [
        "Below is a prompt and {k} candidate responses to it. Write one new response to the prompt that combines "
        "the strongest parts of the candidates into a single answer that is better than any of them.",
        "",
        "- {strength}",
        "- Where the candidates disagree, follow the one that is correct.",
        "- Do not mention the candidates, other responses or that this answer was combined; "
        "write it as your own direct answer to the prompt.",
        "- Answer in the language of the prompt.",
    ]
)

REASONING = (
    "First think step by step inside <think></think>: judge each candidate's segments as correct or wrong, "
    "strong or weak. Then write the final response between <answer> and </answer>. "
    "Only the text inside <answer></answer> is kept."
)

# Named starting points for the fusor's options, shown in the app and accepted by the CLI.
PRESETS: dict[str, dict[str, Any]] = {
    "Paper default": {},
    "Integrate everything": {"strength": "integrate"},
    "Discard aggressively": {"strength": "aggressive"},
    "Think first (reasoning)": {"reasoning": True},
    "Concise": {"instructions": "Be concise: at most five sentences or a short list."},
    "SFT teacher": {
        "instructions": "Write a complete, well-structured answer suitable as supervised fine-tuning data; "
        "use Markdown headings or lists where they help."
    },
}

TRUNCATION_MARK = "\n[… truncated]"
# Safety margin for the prompt scaffolding and the chat template.
OVERHEAD_TOKENS = 64


@dataclass(frozen=True)
class FusionOptions:
    """How the fusor is instructed and called."""

    instructions: str = ""  # extra instructions or a constitution
    persona: str = ""  # tone or persona of the answer
    strength: str = "balanced"  # integrate | balanced | aggressive
    reasoning: bool = False  # think first, keep only the final answer
    shuffle: bool = False  # present candidates in a random (seeded) order
    seed: int = 0
    temperature: float | None = 0.2
    max_tokens: int | None = 1024

    def __post_init__(self) -> None:
        if self.strength not in STRENGTHS:
            raise ConfigError(f"unknown fusion strength {self.strength!r}: use one of {', '.join(STRENGTHS)}")
        if self.max_tokens is not None and self.max_tokens < 1:
            raise ConfigError(f"fusor max_tokens must be at least 1 (got {self.max_tokens})")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> FusionOptions:
        """Options from a dict, ignoring unknown keys."""
        known = {f for f in cls.__dataclass_fields__}
        return cls(**{k: v for k, v in (data or {}).items() if k in known})


@dataclass
class FusorPrompt:
    """The messages for the fusor, the candidate order it shows, and any truncation warnings."""

    messages: list[Message]
    order: list[int]
    warnings: list[str] = field(default_factory=list)


def estimate_tokens(text: str) -> int:
    """A deliberately high token estimate: ~3 ASCII chars per token, 2 tokens per other char."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / 3) + 2 * (len(text) - ascii_chars)


def instructions(options: FusionOptions, k: int) -> str:
    """The fusor's task text for k candidates under these options."""
    parts = [TASK.format(k=k, strength=STRENGTHS[options.strength])]
    if options.persona.strip():
        parts.append(f"Write in this tone or persona: {options.persona.strip()}")
    if options.instructions.strip():
        parts.append(f"Additional instructions:\n{options.instructions.strip()}")
    if options.reasoning:
        parts.append(REASONING)
    return "\n\n".join(parts)


def build_fusor_prompt(
    prompt: str, candidates: list[Candidate], options: FusionOptions, context_window: int | None = None
) -> FusorPrompt:
    """The fusor's messages for the successful candidates, truncated (with warnings) to fit the context."""
    usable = [c for c in candidates if c.ok]
    if not usable:
        raise ConfigError("there is no successful candidate to fuse")
    order = [c.index for c in usable]
    if options.shuffle:
        random.Random(options.seed).shuffle(order)
    by_index = {c.index: c for c in usable}
    task = instructions(options, len(order))
    texts = [by_index[i].text for i in order]
    warnings: list[str] = []
    if context_window:
        reserve = (options.max_tokens or 1024) + OVERHEAD_TOKENS * (len(order) + 1)
        budget = context_window - reserve - estimate_tokens(SYSTEM_PROMPT + task + prompt)
        if budget < 32 * len(order):
            raise ContextOverflowError(
                f"the fusor's context ({context_window} tokens) cannot hold the prompt and {len(order)} candidates; "
                "use a fusor with a larger context, fewer candidates, or a smaller fusor max_tokens"
            )
        texts, warnings = _fit(texts, order, budget, context_window)
    body = [task, f"<prompt>\n{prompt}\n</prompt>"]
    body += [f'<candidate id="{pos + 1}">\n{text}\n</candidate>' for pos, text in enumerate(texts)]
    body.append("Now write the final response." if not options.reasoning else "Now think, then answer.")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n\n".join(body)}]
    return FusorPrompt(messages, order, warnings)


def _fit(texts: list[str], order: list[int], budget: int, window: int) -> tuple[list[str], list[str]]:
    """Share the token budget fairly: short candidates stay whole, long ones are cut to an equal share."""
    costs = [estimate_tokens(t) for t in texts]
    if sum(costs) <= budget:
        return texts, []
    share, remaining = budget, len(texts)
    for cost in sorted(costs):
        if cost * remaining > share:
            break
        share -= cost
        remaining -= 1
    cap = share // max(remaining, 1)
    fitted, warnings = [], []
    for text, cost, index in zip(texts, costs, order, strict=True):
        if cost <= cap:
            fitted.append(text)
            continue
        keep = max(1, int(len(text) * cap / cost))
        fitted.append(text[:keep] + TRUNCATION_MARK)
        warnings.append(
            f"candidate {index + 1} truncated from {len(text):,} to {keep:,} characters "
            f"to fit the fusor's context ({window:,} tokens)"
        )
    return fitted, warnings


_ANSWER = re.compile(r"<answer>(.*?)(?:</answer>|$)", re.DOTALL | re.IGNORECASE)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL | re.IGNORECASE)


_SCAFFOLD = re.compile(r"""</?candidate(?:\s+id=["']?\d+["']?)?\s*>""", re.IGNORECASE)


def extract_answer(raw: str, reasoning: bool) -> tuple[str, list[str]]:
    """The final answer from the fusor's output: the last <answer> block, without any <think> block.

    The <candidate> tags of the fusor's own prompt, when it copies them, are removed (with a warning):
    they are scaffolding, not answer text. The raw output keeps everything.
    """
    warnings: list[str] = []
    answers = _ANSWER.findall(raw) if reasoning else []
    if answers and answers[-1].strip():
        text = answers[-1]
    else:
        if reasoning:
            warnings.append("the fusor gave no <answer></answer> block; kept its whole output without the thinking")
        text = re.sub(r"</?answer>", "", _THINK.sub("", raw), flags=re.IGNORECASE)
    cleaned = _SCAFFOLD.sub("", text)
    if cleaned != text:
        warnings.append("the fusor copied the <candidate> tags of its prompt; they were removed")
    return cleaned.strip(), warnings


async def fuse(
    prompt: str,
    candidates: list[Candidate],
    fusor_model: str,
    completer: Completer,
    options: FusionOptions | None = None,
    messages: list[Message] | None = None,
    on_delta: OnDelta | None = None,
) -> FusionResult:
    """Ask the fusor for one new answer; `messages` replaces the built prompt (an edited fusor prompt).

    With `on_delta`, the fusor's raw output so far is passed on as it streams (thinking included).
    """
    options = options or FusionOptions()
    if messages is None:
        built = build_fusor_prompt(prompt, candidates, options, completer.context_window(fusor_model))
    else:
        built = FusorPrompt([dict(m) for m in messages], [c.index for c in candidates if c.ok], [])
    params = GenParams(temperature=options.temperature, max_tokens=options.max_tokens, seed=options.seed)
    started = time.perf_counter()
    done = await completer.complete(fusor_model, built.messages, params, on_delta)
    text, extra = extract_answer(done.text, options.reasoning)
    warnings = built.warnings + extra
    if done.finish_reason == "length":
        warnings.append("the fused answer stopped at the fusor's max_tokens limit")
    if not text:
        warnings.append("the fusor returned an empty answer")
    return FusionResult(
        text=text,
        model=fusor_model,
        messages=built.messages,
        order=built.order,
        raw_text=done.text,
        warnings=warnings,
        prompt_tokens=done.prompt_tokens,
        completion_tokens=done.completion_tokens,
        cost=done.cost,
        latency_s=time.perf_counter() - started,
    )
