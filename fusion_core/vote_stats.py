"""Vote tables: win rates with confidence intervals, position bias, per-language results, votes over time.

Pure functions over a pandas DataFrame of battles, no I/O; ratings.py has the column
conventions and builds Bradley–Terry ratings on the same `battles()` reading.

Win rate counts a tie as half a win, and "both bad" as a tie (Chatbot Arena's convention;
`bad_as_tie=False` leaves those votes out of the rate); `bad` reports them either way. The
interval is the Wilson score interval for a proportion, applied to the tie-as-half rate
over n games. With ties the true variance is smaller than the binomial one, so the
interval is slightly conservative.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import pandas as pd

from .errors import ConfigError

A_WINS, B_WINS, TIE, BAD = 0, 1, 2, 3
_OUTCOMES = {"a": A_WINS, "b": B_WINS, "tie": TIE, "bad": BAD}


@dataclass(frozen=True)
class Battles:
    """Battles as integer codes: systems[a[i]] met systems[b[i]] with outcome[i] (A_WINS, B_WINS, TIE or BAD)."""

    systems: list[str]
    a: np.ndarray
    b: np.ndarray
    outcome: np.ndarray

    def score(self, bad_as_tie: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """a, b and a's score (1, ½ or 0) of every battle that counts (bad votes dropped unless bad_as_tie)."""
        keep = np.ones(len(self.a), bool) if bad_as_tie else self.outcome != BAD
        score = np.select([self.outcome == A_WINS, self.outcome == B_WINS], [1.0, 0.0], 0.5)
        return self.a[keep], self.b[keep], score[keep]


def battles(frame: pd.DataFrame) -> Battles:
    """Read the systems and outcomes of a battle table; ConfigError if columns or values are missing."""
    names = next((p for p in (("system_a", "system_b"), ("left_system", "right_system")) if set(p) <= set(frame)), None)
    if names is None:
        raise ConfigError("a battle table needs columns system_a and system_b (or left_system and right_system)")
    first, second = (frame[n].astype("str") for n in names)
    if "winner_system" in frame:
        winner = frame["winner_system"].astype("str")
        outcome = np.select(
            [winner == first, winner == second, winner == "tie", winner == "bad"], [A_WINS, B_WINS, TIE, BAD], -1
        )
    elif "outcome" in frame:
        outcome = frame["outcome"].astype("str").map(_OUTCOMES).fillna(-1).to_numpy(int)
    else:
        raise ConfigError("a battle table needs a winner_system column (or outcome: a, b, tie or bad)")
    invalid = (outcome < 0) | first.isna().to_numpy() | second.isna().to_numpy() | (first == second).to_numpy()
    if invalid.any():
        row = frame.index[np.argmax(invalid)]
        raise ConfigError(f"{int(invalid.sum())} battles have no valid systems or outcome (the first: row {row})")
    codes, systems = pd.factorize(pd.concat([first, second], ignore_index=True), sort=True)
    n = len(frame)
    return Battles([str(s) for s in systems], codes[:n], codes[n:], outcome.astype(np.int8))


@dataclass(frozen=True)
class PositionBias:
    """How often the left side won among decisive votes (neither tie nor both bad), with an interval."""

    votes: int
    decisive: int
    left_wins: int
    left_share: float
    lower: float
    upper: float


def wilson(successes: np.ndarray, n: np.ndarray, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of successes / n (successes may be fractional); NaN where n is 0."""
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    successes, n = np.asarray(successes, float), np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = successes / n
        denominator = 1 + z**2 / n
        center = (p + z**2 / (2 * n)) / denominator
        half = z * np.sqrt(p * (1 - p) / n + z**2 / (4 * n**2)) / denominator
    return np.clip(center - half, 0, 1), np.clip(center + half, 0, 1)


def win_rates(frame: pd.DataFrame, confidence: float = 0.95, bad_as_tie: bool = True) -> pd.DataFrame:
    """For every ordered pair of systems that met: games, wins, losses, ties, bad, win rate (ties half), interval."""
    data = battles(frame)
    k = len(data.systems)
    swapped = np.choose(data.outcome, [B_WINS, A_WINS, TIE, BAD]) if len(data.outcome) else data.outcome
    cell = (np.concatenate([data.a, data.b]) * k + np.concatenate([data.b, data.a])) * 4
    counts = np.bincount(cell + np.concatenate([data.outcome, swapped]), minlength=k * k * 4).reshape(k * k, 4)
    met = np.flatnonzero(counts.sum(axis=1))
    wins, losses, ties, bad = counts[met].T
    n = wins + losses + ties + (bad if bad_as_tie else 0)
    points = wins + 0.5 * (ties + (bad if bad_as_tie else 0))
    lower, upper = wilson(points, n, confidence)
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = points / n
    systems = np.array(data.systems, dtype=object)
    return pd.DataFrame(
        {
            "system": pd.array(systems[met // k], dtype="str"),
            "opponent": pd.array(systems[met % k], dtype="str"),
            "games": wins + losses + ties + bad,
            "wins": wins,
            "losses": losses,
            "ties": ties,
            "bad": bad,
            "win_rate": rate,
            "lower": lower,
            "upper": upper,
        }
    )


def by_language(
    frame: pd.DataFrame, system: str = "fusion", opponent: str = "bon", confidence: float = 0.95
) -> pd.DataFrame:
    """`system`'s record against `opponent` per language (missing language: "unknown"), most games first."""
    if "language" not in frame:
        raise ConfigError("a per-language breakdown needs a language column")
    languages = frame["language"].astype("str").fillna("unknown")
    rows = {}
    for language, group in frame.groupby(languages, sort=True):
        table = win_rates(group, confidence)
        match = table[(table["system"] == system) & (table["opponent"] == opponent)]
        if len(match):
            rows[language] = match.iloc[0].drop(["system", "opponent"])
    columns = ["games", "wins", "losses", "ties", "bad", "win_rate", "lower", "upper"]
    result = pd.DataFrame.from_dict(rows, orient="index", columns=columns)
    result.index.name = "language"
    return result.astype({c: "int64" for c in columns[:5]}).sort_values("games", ascending=False, kind="stable")


def position_bias(frame: pd.DataFrame, confidence: float = 0.95) -> PositionBias:
    """Share of decisive votes won by the left side; about 0.5 when voters ignore position."""
    left, right = _sides_won(frame)
    decisive, left_wins = int((left | right).sum()), int(left.sum())
    lower, upper = wilson(np.array(left_wins), np.array(decisive), confidence)
    share = left_wins / decisive if decisive else float("nan")
    return PositionBias(len(frame), decisive, left_wins, share, float(lower), float(upper))


def side_bias(frame: pd.DataFrame, min_votes: int = 10, threshold: float = 0.9) -> pd.DataFrame:
    """Per voter: votes, left and right wins, left share; flagged: ≥ min_votes decisive, ≥ threshold on one side."""
    if "voter_id" not in frame:
        raise ConfigError("side bias needs a voter_id column")
    left, right = _sides_won(frame)
    table = pd.DataFrame({"voter_id": frame["voter_id"].astype("str"), "left": left, "right": right})
    per_voter = table.groupby("voter_id").agg(votes=("left", "size"), left=("left", "sum"), right=("right", "sum"))
    decisive = per_voter["left"] + per_voter["right"]
    with np.errstate(invalid="ignore", divide="ignore"):
        per_voter["left_share"] = per_voter["left"] / decisive
    one_side = np.maximum(per_voter["left_share"], 1 - per_voter["left_share"])
    per_voter["flagged"] = (decisive >= min_votes) & (one_side >= threshold)
    return per_voter.sort_values(["flagged", "votes"], ascending=False)


def votes_over_time(frame: pd.DataFrame, freq: str = "D") -> pd.DataFrame:
    """Votes per period (UTC, pandas frequency such as "h", "D", "W") and the running total."""
    if "created_at" not in frame:
        raise ConfigError("votes over time need a created_at column")
    moments = pd.to_datetime(frame["created_at"], utc=True)
    counts = pd.Series(1, index=pd.DatetimeIndex(moments, name="period")).resample(freq).sum()
    return pd.DataFrame({"votes": counts.astype("int64"), "cumulative": counts.cumsum().astype("int64")})


def _sides_won(frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Whether the left and whether the right side won each vote: from `winner`, else from the system names."""
    if "winner" in frame:
        winner = frame["winner"].astype("str")
        return (winner == "left").to_numpy(bool), (winner == "right").to_numpy(bool)
    if {"left_system", "right_system", "winner_system"} <= set(frame):
        winner = frame["winner_system"].astype("str")
        left = (winner == frame["left_system"].astype("str")).to_numpy(bool)
        return left, (winner == frame["right_system"].astype("str")).to_numpy(bool)
    raise ConfigError("position bias needs a winner column (left, right, tie, bad) or left_system and winner_system")
