"""What the commands share: the sampling pool, generation parameters, the fusor's options, reading a text file."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from .errors import ConfigError
from .fusion import STRENGTHS
from .selection import SELECTORS
from .settings import Settings


def add_model_options(parser: argparse.ArgumentParser, n_help: str) -> None:
    """The sampling model or teacher pool, the fusor and the Best-of-N selector (read by sampling_models)."""
    parser.add_argument("--model", help="sampling model, a litellm model string (default: FUSION_MODEL or the "
                        "embedded model)")  # fmt: skip
    parser.add_argument("--n", type=int, default=4, help=n_help)
    parser.add_argument("--teachers", help="comma-separated teacher pool (synthetic-data mode); --n per teacher")
    parser.add_argument("--fusor", help="fusor model (default: FUSION_FUSOR_MODEL or the sampling default)")
    parser.add_argument("--selector", choices=SELECTORS, default="judge", help="Best-of-N selector (default judge)")
    parser.add_argument("--judge", help="Best-of-N judge model for the judge/pairwise selectors (default: "
                        "FUSION_JUDGE_MODEL)")  # fmt: skip


def add_generation_options(parser: argparse.ArgumentParser) -> None:
    """Sampling parameters of the candidates and the fusor's options."""
    parser.add_argument("--temperature", type=float, default=0.8)
    parser.add_argument("--top-p", type=float)
    parser.add_argument("--max-tokens", type=int, default=512, help="per candidate")
    parser.add_argument("--seed", type=int, default=0, help="first sample's seed; sample i uses seed+i")
    parser.add_argument("--strength", choices=list(STRENGTHS), default="balanced", help="fusion strength")
    parser.add_argument("--instructions", default="", help="extra fusor instructions or a constitution")
    parser.add_argument("--persona", default="", help="tone or persona of the fused answer")
    parser.add_argument("--reasoning", action="store_true", help="fusor thinks first; only its final answer is kept")
    parser.add_argument("--shuffle", action="store_true", help="shuffle the candidates shown to the fusor")
    parser.add_argument("--fusor-max-tokens", type=int, default=1024)


def sampling_models(args: argparse.Namespace, settings: Settings) -> tuple[list[str], str]:
    """The models to sample and the mode: a --teachers pool, else --model (or the default) alone."""
    teachers = [t.strip() for t in (args.teachers or "").split(",") if t.strip()]
    if teachers:
        return teachers, "teachers"
    return [args.model or settings.default_model], "samples"


def fusion_options(args: argparse.Namespace) -> dict[str, Any]:
    """The fusor's options (FusionOptions as a dict) from the command line."""
    return {
        "strength": args.strength,
        "instructions": args.instructions,
        "persona": args.persona,
        "reasoning": args.reasoning,
        "shuffle": args.shuffle,
        "seed": args.seed,
        "max_tokens": args.fusor_max_tokens,
    }


def read_text(path: str) -> str:
    """A UTF-8 text file, or stdin for "-"; ConfigError saying why it cannot be read."""
    try:
        if path == "-":
            return sys.stdin.read()
        with open(path, encoding="utf-8") as f:
            return f.read()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read {path}: {reason}; pass a UTF-8 text file") from exc
