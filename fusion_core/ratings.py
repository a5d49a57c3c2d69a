"""Ratings from a table of battles: Bradley–Terry by maximum likelihood, bootstrap intervals, online Elo.

Pure functions over a pandas DataFrame, no I/O. A battle names two systems, in columns
`system_a`/`system_b` (or `left_system`/`right_system`), and its outcome, either as
`winner_system` (one of the two names, "tie" or "bad") or as `outcome` ("a", "b", "tie",
"bad", relative to the two name columns). `VoteStore.votes_frame()` has all of these.

"Both bad" counts as a tie, as in Chatbot Arena: both answers failed the voter equally, so
neither gained on the other (pass `bad_as_tie=False` to drop those votes instead). A tie
counts as half a win and half a loss.

Bradley–Terry: system i beats system j with probability σ(θᵢ − θⱼ), σ the logistic
function. The strengths θ maximize the log-likelihood Σᵢⱼ Wᵢⱼ log σ(θᵢ − θⱼ), where Wᵢⱼ is
i's score against j (wins plus half the ties). The likelihood is concave; we maximize it
by Newton's method with step halving, holding the base system at θ = 0. When one system
won (or lost) every game, the plain maximum is at infinity; `prior` adds that many
virtual ties between every two systems (one by default, negligible against hundreds of
votes), which keeps every rating finite. Ratings are on the Elo scale:
R = init_rating + scale · θ / ln 10, so a 400-point gap means 10:1 odds and the base
system sits at init_rating.

Bootstrap: resampling n battles with replacement draws the count of each (pair, outcome)
cell from a multinomial over the observed cell frequencies, so each round is one
multinomial draw over a few dozen cells rather than a regrouping of n rows, and all rounds
are fitted together as one batch of small Newton problems. Intervals are the percentiles
of the bootstrap ratings (relative to the base system, which has none).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .errors import ConfigError
from .vote_stats import (
    PositionBias,
    battles,
    by_language,
    position_bias,
    side_bias,
    votes_over_time,
    wilson,
    win_rates,
)

__all__ = [
    "PositionBias",
    "battles",
    "bootstrap_bt",
    "bradley_terry",
    "by_language",
    "online_elo",
    "position_bias",
    "side_bias",
    "votes_over_time",
    "wilson",
    "win_rates",
]  # fmt: skip


def bradley_terry(
    frame: pd.DataFrame,
    base: str | None = "bon",
    scale: float = 400,
    init_rating: float = 1000,
    prior: float = 1.0,
    bad_as_tie: bool = True,
) -> pd.Series:
    """Bradley–Terry maximum-likelihood ratings, best first; `base` (or the first system by name) at init_rating."""
    data = battles(frame)
    a, b, score = data.score(bad_as_tie)
    wins = _win_matrix(a, b, score, len(data.systems))[None]
    ratings = _to_ratings(_fit(wins, _base_index(data.systems, base), prior), scale, init_rating)[0]
    return pd.Series(ratings, index=_index(data.systems), name="rating").sort_values(ascending=False)


def bootstrap_bt(
    frame: pd.DataFrame,
    rounds: int = 200,
    seed: int = 0,
    base: str | None = "bon",
    scale: float = 400,
    init_rating: float = 1000,
    prior: float = 1.0,
    confidence: float = 0.95,
    bad_as_tie: bool = True,
) -> pd.DataFrame:
    """Bradley–Terry rating, bootstrap interval (lower, upper) and number of battles per system, best first."""
    data = battles(frame)
    a, b, score = data.score(bad_as_tie)
    k, n = len(data.systems), len(a)
    if n == 0:
        return pd.DataFrame({"rating": [], "lower": [], "upper": [], "games": pd.array([], "int64")}, index=_index([]))
    base_index = _base_index(data.systems, base)
    # Cells (a, b, score); a round draws how many of the n battles fall in each cell.
    cells, counts = np.unique(np.stack([a * k + b, (score * 2).astype(int)]), axis=1, return_counts=True)
    pair, half_points = cells
    draws = np.random.default_rng(seed).multinomial(n, counts / max(n, 1), size=rounds).astype(float)
    to_matrix = np.zeros((len(counts), k * k))  # a cell's battles add score to W[a, b] and 1 - score to W[b, a]
    to_matrix[np.arange(len(counts)), pair] = half_points / 2
    to_matrix[np.arange(len(counts)), (pair % k) * k + pair // k] = 1 - half_points / 2
    sampled = (draws @ to_matrix).reshape(rounds, k, k)
    full = _win_matrix(a, b, score, k)[None]
    thetas = _fit(np.concatenate([full, sampled]), base_index, prior)
    ratings = _to_ratings(thetas, scale, init_rating)
    tail = (1 - confidence) / 2 * 100
    lower, upper = np.percentile(ratings[1:], [tail, 100 - tail], axis=0)
    games = np.bincount(a, minlength=k) + np.bincount(b, minlength=k)
    table = pd.DataFrame(
        {"rating": ratings[0], "lower": lower, "upper": upper, "games": games},
        index=_index(data.systems),
    )
    return table.sort_values("rating", ascending=False)


def online_elo(frame: pd.DataFrame, k: float = 4, scale: float = 400, init_rating: float = 1000) -> pd.Series:
    """Elo ratings updated battle by battle in the table's order (ties half), best first."""
    data = battles(frame)
    a, b, score = data.score()
    ratings = np.full(len(data.systems), float(init_rating))
    for i, j, s in zip(a.tolist(), b.tolist(), score.tolist(), strict=True):
        expected = 1 / (1 + 10 ** ((ratings[j] - ratings[i]) / scale))
        ratings[i] += k * (s - expected)
        ratings[j] -= k * (s - expected)
    return pd.Series(ratings, index=_index(data.systems), name="rating").sort_values(ascending=False)


def _index(systems: list[str]) -> pd.Index:
    return pd.Index(systems, name="system", dtype="str")


def _win_matrix(a: np.ndarray, b: np.ndarray, score: np.ndarray, k: int) -> np.ndarray:
    """W[i, j]: i's score against j, summed over battles."""
    flat = np.bincount(a * k + b, score, k * k) + np.bincount(b * k + a, 1 - score, k * k)
    return flat.reshape(k, k)


def _base_index(systems: list[str], base: str | None) -> int:
    return systems.index(base) if base in systems else 0


def _fit(wins: np.ndarray, base: int, prior: float, max_iter: int = 100) -> np.ndarray:
    """θ maximizing Σ W log σ(θᵢ − θⱼ) for each of a batch of win matrices (R, k, k), θ[base] = 0."""
    rounds, k, _ = wins.shape
    if k == 0:
        return np.zeros((rounds, 0))
    wins = wins + prior / 2 * (1 - np.eye(k))
    if not _strongly_connected(wins > 0).all():
        raise ConfigError(
            "no finite Bradley–Terry ratings: some systems won (or lost) every game against the rest, or never met "
            "them; collect more votes or use prior > 0"
        )
    games = wins + wins.transpose(0, 2, 1)
    free = np.array([i for i in range(k) if i != base], dtype=int)
    theta = np.zeros((rounds, k))
    current = _log_likelihood(wins, theta)
    for _ in range(max_iter):
        p = _sigmoid(theta[:, :, None] - theta[:, None, :])
        gradient = (wins - games * p).sum(axis=2)
        curvature = games * p * (1 - p)
        negative_hessian = -curvature  # its diagonal is 0: a system never meets itself
        negative_hessian[:, np.arange(k), np.arange(k)] = curvature.sum(axis=2)
        try:
            step = np.linalg.solve(negative_hessian[:, free][:, :, free], gradient[:, free, None])[..., 0]
        except np.linalg.LinAlgError:
            raise ConfigError("cannot fit Bradley–Terry ratings to these votes; use prior > 0") from None
        shrink = np.ones(rounds)
        for _ in range(40):  # halve the step where it would lower the likelihood
            trial = theta.copy()
            trial[:, free] += shrink[:, None] * step
            value = _log_likelihood(wins, trial)
            worse = value < current - 1e-12 * np.abs(current)
            if not worse.any():
                break
            shrink = np.where(worse, shrink / 2, shrink)
        theta, current = trial, value
        if np.max(np.abs(shrink[:, None] * step), initial=0) < 1e-10:
            return theta
    return theta


def _strongly_connected(beats: np.ndarray) -> np.ndarray:
    """Per win matrix: can every system be reached from every other along "scored against" edges?

    This is Zermelo's condition for a finite maximum-likelihood solution: otherwise some group of
    systems never scored against the rest, and its ratings run off to infinity.
    """
    k = beats.shape[-1]
    reach = beats | np.eye(k, dtype=bool)
    for _ in range(max(1, math.ceil(math.log2(k)))):
        reach = (reach.astype(np.int64) @ reach.astype(np.int64)) > 0
    return reach.all(axis=(1, 2))


def _log_likelihood(wins: np.ndarray, theta: np.ndarray) -> np.ndarray:
    diff = theta[:, :, None] - theta[:, None, :]
    return -(wins * np.logaddexp(0, -diff)).sum(axis=(1, 2))


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1 + np.tanh(x / 2))


def _to_ratings(theta: np.ndarray, scale: float, init_rating: float) -> np.ndarray:
    return init_rating + scale * theta / math.log(10)
