"""The vote tables (migration 0002) on the store's `Base`, the input rules, and which text each system wrote."""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from uuid import uuid4

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .errors import ConfigError
from .store import Base
from .types import RunResult

SYSTEMS = ("fusion", "bon", "sample", "oracle")  # what build_queue can take from a stored run
WINNERS = ("left", "right", "tie", "bad")  # "bad": both answers are bad


class VoteError(ConfigError):
    """A vote or comparison was rejected; nothing was stored."""


class RateLimitError(VoteError):
    """The voter cast too many votes in the last minute."""

    def __init__(self, message: str, retry_after: float):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class NewComparison:
    """A comparison to add: the prompt, two outputs and the systems that wrote them."""

    prompt: str
    output_a: str
    output_b: str
    system_a: str
    system_b: str
    run_id: str | None = None
    language: str | None = None
    task: str | None = None


@dataclass(frozen=True)
class Assignment:
    """One comparison to show a voter: the sides are randomized, the systems are not revealed."""

    comparison_id: str
    prompt: str
    left_text: str
    right_text: str
    left_output: str  # "a" or "b": which output is shown on the left


@dataclass(frozen=True)
class VoteResult:
    """The reveal after a vote: which system wrote which side, and the winner."""

    vote_id: int
    comparison_id: str
    voter_id: str
    left_output: str
    winner: str
    left_system: str
    right_system: str
    winner_system: str
    created_at: datetime
    duplicate: bool = False  # True when this voter had already voted on the comparison: nothing new was stored


@dataclass(frozen=True)
class QueueSummary:
    """One named queue: how many comparisons it holds and how many votes they received."""

    name: str
    comparisons: int
    votes: int


class ComparisonRow(Base):
    """Two outputs for one prompt, from two systems, waiting in a named queue."""

    __tablename__ = "comparisons"
    __table_args__ = (
        sa.Index("ix_comparisons_queue_position", "queue", "position"),
        sa.Index("ix_comparisons_queue_n_votes", "queue", "n_votes", "position"),
        sa.Index("ix_comparisons_run_id", "run_id"),
    )
    id: Mapped[str] = mapped_column(sa.String(32), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))
    run_id: Mapped[str | None] = mapped_column(sa.ForeignKey("runs.id", ondelete="SET NULL"))
    prompt: Mapped[str] = mapped_column(sa.Text)
    output_a: Mapped[str] = mapped_column(sa.Text)
    output_b: Mapped[str] = mapped_column(sa.Text)
    system_a: Mapped[str] = mapped_column(sa.String(128))  # "fusion", "bon", "sample", "oracle", "fusion:aggressive"
    system_b: Mapped[str] = mapped_column(sa.String(128))
    language: Mapped[str | None] = mapped_column(sa.String(64))
    task: Mapped[str | None] = mapped_column(sa.String(128))
    queue: Mapped[str] = mapped_column(sa.String(128), default="default", server_default="default")
    position: Mapped[int] = mapped_column(sa.Integer)
    n_votes: Mapped[int] = mapped_column(sa.Integer, default=0, server_default="0")  # kept by cast_vote, for ordering


class VoteRow(Base):
    """One voter's verdict on one comparison: the raw side and the system it resolves to. No IP addresses."""

    __tablename__ = "votes"
    __table_args__ = (
        sa.UniqueConstraint("comparison_id", "voter_id", name="uq_votes_comparison_voter"),
        sa.CheckConstraint("left_output IN ('a', 'b')", name="ck_votes_left_output"),
        sa.CheckConstraint("winner IN ('left', 'right', 'tie', 'bad')", name="ck_votes_winner"),
        sa.Index("ix_votes_voter_created", "voter_id", "created_at"),
    )
    id: Mapped[int] = mapped_column(sa.Integer, primary_key=True, autoincrement=True)
    comparison_id: Mapped[str] = mapped_column(sa.ForeignKey("comparisons.id", ondelete="CASCADE"))
    voter_id: Mapped[str] = mapped_column(sa.String(64))  # anonymous, one per browser session
    voter_name: Mapped[str | None] = mapped_column(sa.String(64))
    left_output: Mapped[str] = mapped_column(sa.String(1))  # "a" or "b": which output was shown on the left
    winner: Mapped[str] = mapped_column(sa.String(8))  # "left", "right", "tie" or "bad" (both bad)
    winner_system: Mapped[str] = mapped_column(sa.String(128))  # the left or right system, or "tie" / "bad"
    created_at: Mapped[datetime] = mapped_column(sa.DateTime(timezone=True))


def new_id() -> str:
    """A fresh comparison id."""
    return uuid4().hex


def check_name(value: object, what: str, limit: int, required: bool = True) -> str:
    """The name without surrounding spaces, or VoteError if it is empty, too long or has control characters."""
    if not isinstance(value, str):
        raise VoteError(f"the {what} must be text, not {type(value).__name__}; nothing was stored")
    value = value.strip()
    if required and not value:
        raise VoteError(f"the {what} is empty; nothing was stored")
    if len(value) > limit:
        raise VoteError(f"the {what} is longer than {limit} characters ({len(value)}); shorten it")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise VoteError(f"the {what} contains control characters; use plain text")
    return value


def system_outputs(run: RunResult) -> dict[str, str]:
    """The text each system wrote in a run: the fused answer, the Best-of-N pick, and another successful sample."""
    outputs = {}
    if run.fusion is not None and run.fusion.text.strip():
        outputs["fusion"] = run.fusion.text
    picked = run.bon.index if run.bon is not None else None
    for candidate in run.candidates:
        if not candidate.ok or not candidate.text.strip():
            continue
        if candidate.index == picked:
            outputs["bon"] = candidate.text
        else:
            outputs.setdefault("sample", candidate.text)
    return outputs


def check_voter(voter_id: object) -> str:
    """The anonymous voter id, or VoteError if there is none (no session) or it is malformed."""
    if not isinstance(voter_id, str) or not voter_id.strip():
        raise VoteError("a vote needs a session (an anonymous voter id); reload the page; nothing was stored")
    return check_name(voter_id, "voter id", 64)


def check_vote(comparison_id: object, left_output: object, winner: object) -> None:
    """VoteError unless the comparison id is text, left_output is "a" or "b" and the winner one of WINNERS."""
    if not isinstance(comparison_id, str) or not comparison_id:
        raise VoteError("a vote needs a comparison id; nothing was stored")
    if left_output not in ("a", "b"):
        raise VoteError(f"left_output must be 'a' or 'b', not {left_output!r}; nothing was stored")
    if winner not in WINNERS:
        raise VoteError(f"the winner must be one of {', '.join(WINNERS)}, not {winner!r}; nothing was stored")


def check_comparison(item: NewComparison) -> NewComparison:
    """The comparison with trimmed names, or VoteError if a system name or text is missing or malformed."""
    system_a, system_b = (check_name(s, "system name", 128) for s in (item.system_a, item.system_b))
    for name in (system_a, system_b):
        if name in ("tie", "bad"):
            raise VoteError(f"{name!r} cannot name a system: it is a vote outcome")
    if system_a == system_b:
        raise VoteError(f"a comparison needs two different systems, not {system_a!r} twice")
    for field in ("prompt", "output_a", "output_b"):
        if not isinstance(getattr(item, field), str) or not getattr(item, field).strip():
            raise VoteError(f"a comparison needs a non-empty {field.replace('_', ' ')}; nothing was stored")
    language = check_name(item.language, "language", 64, required=False) or None if item.language else None
    task = check_name(item.task, "task", 128, required=False) or None if item.task else None
    return replace(item, system_a=system_a, system_b=system_b, language=language, task=task)


def sides(system_a: str, system_b: str, left_output: str) -> tuple[str, str]:
    """The systems shown on the left and on the right."""
    return (system_a, system_b) if left_output == "a" else (system_b, system_a)
