"""Small typed values shared by sampling, selection, fusion and the store."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

Message = dict[str, str]


@dataclass(frozen=True)
class GenParams:
    """Sampling parameters of one call; None means the provider's default."""

    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    seed: int | None = None

    def as_kwargs(self) -> dict[str, Any]:
        """The parameters that are set, as litellm keyword arguments."""
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(kw_only=True)
class Metered:
    """What one or more model calls cost: tokens, dollars (None when unknown) and seconds."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    latency_s: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class Completion:
    """What one model call returned."""

    model: str
    text: str
    params: GenParams = field(default_factory=GenParams)
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None
    latency_s: float = 0.0
    finish_reason: str | None = None


@dataclass
class Candidate(Metered):
    """One sampled answer, or the error that replaced it."""

    index: int
    model: str
    text: str = ""
    error: str | None = None
    params: GenParams = field(default_factory=GenParams)

    @property
    def ok(self) -> bool:
        """True when the candidate has text and no error."""
        return self.error is None


@dataclass
class Selection(Metered):
    """A Best-of-N choice: the index into the candidates, a score for each, and why."""

    index: int
    method: str
    scores: list[float | None]
    rationale: str = ""
    model: str | None = None


@dataclass
class Usage:
    """Tokens and cost summed over several calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost: float | None = None

    def add(self, prompt_tokens: int, completion_tokens: int, cost: float | None) -> None:
        """Add one call; cost stays None only if no call had a known cost."""
        self.prompt_tokens += prompt_tokens
        self.completion_tokens += completion_tokens
        if cost is not None:
            self.cost = (self.cost or 0.0) + cost


@dataclass
class FusionResult(Metered):
    """The fusor's answer and exactly what it was sent."""

    text: str
    model: str
    messages: list[Message]
    order: list[int]  # candidate indices in the order the fusor saw them
    raw_text: str = ""  # the full output before the final answer was extracted
    warnings: list[str] = field(default_factory=list)


@dataclass
class RunConfig:
    """Everything that determines a run, stored with it so it can be re-run."""

    prompt: str
    models: list[str]  # one model (test-time scaling) or a teacher pool
    n: int = 4  # samples per model in test-time scaling; k per teacher in a pool
    mode: str = "samples"  # "samples" | "teachers"
    temperature: float | None = 0.8
    top_p: float | None = None
    max_tokens: int | None = 512
    seed: int | None = 0
    fusor_model: str = ""
    fusion: dict[str, Any] = field(default_factory=dict)  # FusionOptions as a dict
    selector: str = "judge"
    judge_model: str = ""
    reference: str | None = None
    language: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


@dataclass
class RunResult:
    """One complete run: candidates, the Best-of-N pick and the fused answer."""

    config: RunConfig
    candidates: list[Candidate]
    bon: Selection | None = None
    bon_error: str | None = None
    fusion: FusionResult | None = None
    fusion_error: str | None = None
    timings: dict[str, float] = field(default_factory=dict)  # seconds: sampling, selection, fusion, total
    run_id: str | None = None
    created_at: str | None = None  # ISO 8601, UTC
    attribution: dict[str, Any] | None = None  # Attribution.to_dict() of the fused answer; sources index candidates

    def usage(self) -> dict[str, Usage]:
        """Tokens and cost per stage: sampling, selection, fusion."""
        stages = {"sampling": Usage(), "selection": Usage(), "fusion": Usage()}
        for c in self.candidates:
            stages["sampling"].add(c.prompt_tokens, c.completion_tokens, c.cost)
        if self.bon:
            stages["selection"].add(self.bon.prompt_tokens, self.bon.completion_tokens, self.bon.cost)
        if self.fusion:
            stages["fusion"].add(self.fusion.prompt_tokens, self.fusion.completion_tokens, self.fusion.cost)
        return stages

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict of the whole run."""
        return {
            "run_id": self.run_id,
            "created_at": self.created_at,
            "config": self.config.to_dict(),
            "candidates": [c.to_dict() for c in self.candidates],
            "bon": self.bon.to_dict() if self.bon else None,
            "bon_error": self.bon_error,
            "fusion": self.fusion.to_dict() if self.fusion else None,
            "fusion_error": self.fusion_error,
            "attribution": self.attribution,
            "timings": dict(self.timings),
            "usage": {k: asdict(v) for k, v in self.usage().items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        """Rebuild a run from `to_dict` output (as stored)."""

        def params(d: dict[str, Any] | None) -> GenParams:
            return GenParams(**(d or {}))

        candidates = [Candidate(**{**c, "params": params(c.get("params"))}) for c in data["candidates"]]
        return cls(
            config=RunConfig(**data["config"]),
            candidates=candidates,
            bon=Selection(**data["bon"]) if data.get("bon") else None,
            bon_error=data.get("bon_error"),
            fusion=FusionResult(**data["fusion"]) if data.get("fusion") else None,
            fusion_error=data.get("fusion_error"),
            timings=dict(data.get("timings") or {}),
            attribution=data.get("attribution"),
            run_id=data.get("run_id"),
            created_at=data.get("created_at"),
        )
