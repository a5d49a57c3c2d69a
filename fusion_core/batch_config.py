"""What a batch experiment does to every prompt, stored with its results so it can be re-run exactly."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from .errors import ConfigError
from .fusion import FusionOptions
from .sampling import MAX_CANDIDATES, candidate_count, validate_config
from .selection import SELECTORS, SelectorConfig, validate
from .types import RunConfig

SYSTEMS = ("fusion", "bon", "sample", "oracle", "baseline")  # what an item's outputs can hold, plus fusion@k, bon@k
# Settings that change how fast a batch runs, not what it computes: they may differ when resuming.
NOT_IDENTITY = ("name", "concurrency", "call_concurrency")


@dataclass
class BatchConfig:
    """Sampling, fusion, selection and evaluation settings shared by every prompt of a batch."""

    models: list[str]
    fusor_model: str
    n: int = 4  # samples per model (N_max when scaling); per teacher in a pool
    mode: str = "samples"  # "samples" | "teachers"
    temperature: float | None = 0.8
    top_p: float | None = None
    max_tokens: int | None = 512
    seed: int | None = 0
    fusion: dict[str, Any] = field(default_factory=dict)  # FusionOptions as a dict
    selector: str = "judge"
    judge_model: str = ""  # the Best-of-N judge (judge / pairwise selectors)
    reward_url: str | None = None  # the reward selector's endpoint
    scaling: list[int] = field(default_factory=list)  # N values evaluated on subsets of the same samples
    eval_judge_model: str | None = None  # automated pairwise judging; None: no judging
    judge_prompt: str | None = None  # the pairwise judge template; None: judging.DEFAULT_JUDGE_PROMPT
    judge_max_tokens: int = 256
    baseline_model: str | None = None  # a fixed reference model whose answers every system is judged against
    pairs: list[list[str]] = field(default_factory=list)  # judged pairs; empty: the defaults (see judged_pairs)
    name: str = "batch"
    concurrency: int = 4  # prompts in flight
    call_concurrency: int = 8  # model calls in flight per prompt

    def __post_init__(self) -> None:
        self.models = [m.strip() for m in self.models if m and m.strip()]
        self.scaling = sorted({int(k) for k in self.scaling})
        self.pairs = [list(p) for p in self.pairs]
        # Every option spelled out, so a configuration that lists only some of them is the same configuration.
        self.fusion = FusionOptions.from_dict(self.fusion).to_dict()

    @property
    def n_max(self) -> int:
        """Candidates sampled per prompt."""
        return candidate_count(self.run_config(""))

    def validate(self) -> None:
        """ConfigError for anything that would fail on every prompt; checked before any model call."""
        if not self.models:
            raise ConfigError("a batch needs a sampling model (--model) or a teacher pool (--teachers)")
        if self.mode not in ("samples", "teachers"):
            raise ConfigError(f"unknown mode {self.mode!r}: use samples or teachers")
        if not 1 <= self.n_max <= MAX_CANDIDATES:
            raise ConfigError(f"a batch samples 1 to {MAX_CANDIDATES} candidates per prompt, not {self.n_max}")
        validate_config(self.run_config("every prompt"))  # temperature, top_p, max_tokens: the sampler's own rules
        if not self.fusor_model.strip():
            raise ConfigError("a batch needs a fusor model (--fusor)")
        if self.selector not in SELECTORS:
            raise ConfigError(f"unknown selector {self.selector!r}: pass one of {', '.join(SELECTORS)}")
        if self.selector != "oracle":
            validate(self.selector_config(None))
        bad = [k for k in self.scaling if not 1 <= k <= self.n_max]
        if bad:
            raise ConfigError(f"scaling values must be between 1 and N={self.n_max}, not {bad}")
        if self.concurrency < 1 or self.call_concurrency < 1:
            raise ConfigError("concurrency must be at least 1")
        if self.judge_prompt is not None:
            from .judging import validate_template

            validate_template(self.judge_prompt)
        for pair in self.pairs:
            if len(pair) != 2 or pair[0] == pair[1]:
                raise ConfigError(f"a judged pair names two different systems, e.g. fusion:bon, not {pair}")
            for name in pair:
                if _base(name) not in SYSTEMS:
                    raise ConfigError(f"unknown system {name!r} in a pair: use {', '.join(SYSTEMS)}, fusion@k, bon@k")
                if name == "baseline" and not self.baseline_model:
                    raise ConfigError("a pair names the baseline: pass a baseline model (--baseline)")

    def run_config(self, prompt: str, *, reference: str | None = None, language: str | None = None) -> RunConfig:
        """The run configuration of one prompt."""
        return RunConfig(
            prompt=prompt,
            models=list(self.models),
            n=self.n,
            mode=self.mode,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            seed=self.seed,
            fusor_model=self.fusor_model,
            fusion=dict(self.fusion),
            selector=self.selector,
            judge_model=self.judge_model,
            reference=reference,
            language=language,
        )

    def called_models(self) -> set[str]:
        """Every model the batch calls: samplers, fusor, the Best-of-N judge, the pairwise judge, the baseline."""
        models = {*self.models, self.fusor_model}
        if self.selector in ("judge", "pairwise"):
            models.add(self.judge_model)
        return models | {m for m in (self.eval_judge_model, self.baseline_model) if m}

    def selector_config(self, reference: str | None) -> SelectorConfig:
        """The Best-of-N selector of one prompt (the oracle needs the prompt's reference)."""
        return SelectorConfig(
            method=self.selector, judge_model=self.judge_model, reference=reference, reward_url=self.reward_url
        )

    def scaling_points(self) -> list[int]:
        """Every N a scaling curve has a point at: the --scaling values and N_max."""
        return sorted({*self.scaling, self.n_max})

    def scaling_ns(self) -> list[int]:
        """The N values evaluated besides N_max (whose result is the main one)."""
        return [k for k in self.scaling if k < self.n_max]

    def scaling_subset(self, k: int) -> list[int]:
        """The candidates (indices in sampling order) that N = k is evaluated on.

        The first k, except in a teacher pool with several samples per teacher: there the teachers take
        turns, so N = 2 is one answer from each of two teachers, not two answers of the first teacher.
        """
        if self.mode != "teachers" or self.n <= 1:
            return list(range(k))
        turns = [t * self.n + j for j in range(self.n) for t in range(len(self.models))]
        return sorted(turns[:k])

    def opponent(self) -> str:
        """What the scaling curves are judged against: the baseline model, else one sample."""
        return "baseline" if self.baseline_model else "sample"

    def judged_pairs(self) -> list[tuple[str, str]]:
        """The pairs of systems the pairwise judge compares on each prompt."""
        if self.pairs:
            return [(a, b) for a, b in self.pairs]
        if self.baseline_model:
            pairs = [("fusion", "baseline"), ("bon", "baseline"), ("sample", "baseline")]
        else:
            pairs = [("fusion", "bon"), ("fusion", "sample"), ("bon", "sample")]
        opponent = self.opponent()
        for k in self.scaling_ns():
            pairs += [(f"fusion@{k}", opponent), (f"bon@{k}", opponent)]
        return pairs

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BatchConfig:
        """Rebuild from `to_dict` output; unknown keys are an error (a newer version wrote them)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown batch settings {unknown}: this experiment was written by a newer version")
        return cls(**data)

    def identity(self) -> dict[str, Any]:
        """The settings that decide what is computed: a resumed batch must match them."""
        return {k: v for k, v in self.to_dict().items() if k not in NOT_IDENTITY}

    def differences(self, other: BatchConfig) -> list[str]:
        """The identity settings in which `other` differs from this one."""
        mine, theirs = self.identity(), other.identity()
        return [k for k in mine if mine[k] != theirs.get(k)]


def _base(system: str) -> str:
    name, _, k = system.partition("@")
    if k and name in ("fusion", "bon") and k.isdigit():
        return name
    return system if not k else "?"
