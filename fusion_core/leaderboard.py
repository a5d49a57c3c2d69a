"""The leaderboard's numbers, computed once for the page and the command line so both show the same.

Pure functions over `VoteStore.votes_frame()`; no I/O. Exports drop `voter_name`: a name a
voter typed is not needed to rate systems and should not leave the database.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import pandas as pd

from .errors import ConfigError
from .ratings import bootstrap_bt, win_rates

EXPORT_FORMATS = ("csv", "parquet")
PRIVATE_COLUMNS = ("voter_name",)


@dataclass(frozen=True)
class Leaderboard:
    """Bradley–Terry ratings with bootstrap intervals, and pairwise win rates with Wilson intervals."""

    votes: int
    ratings: pd.DataFrame  # index system; rating, lower, upper, games; best first
    win_rates: pd.DataFrame  # system, opponent, games, wins, losses, ties, bad, win_rate, lower, upper


def leaderboard(frame: pd.DataFrame, rounds: int = 200, seed: int = 0) -> Leaderboard:
    """Ratings (bootstrap_bt with `rounds` and `seed`) and win rates of a vote table."""
    return Leaderboard(len(frame), bootstrap_bt(frame, rounds=rounds, seed=seed), win_rates(frame))


def export_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """The vote table without the columns that identify people."""
    return frame.drop(columns=[c for c in PRIVATE_COLUMNS if c in frame])


def export_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """The vote table (without voter names) as CSV or Parquet bytes; ConfigError for another format."""
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; use {' or '.join(EXPORT_FORMATS)}")
    data = export_frame(frame)
    if fmt == "csv":
        return data.to_csv(index=False).encode("utf-8")
    buffer = io.BytesIO()
    data.to_parquet(buffer, index=False)
    return buffer.getvalue()
