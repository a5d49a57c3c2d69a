"""Ratings and vote tables against known strengths and an independent reference computation."""

from __future__ import annotations

import math
import time

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fusion_core.errors import ConfigError
from fusion_core.ratings import (
    bootstrap_bt,
    bradley_terry,
    by_language,
    online_elo,
    position_bias,
    side_bias,
    votes_over_time,
    wilson,
    win_rates,
)

TRUE = {"bon": 1000.0, "fusion": 1080.0, "sample": 940.0, "oracle": 1150.0}


def simulate(n: int, seed: int, tie: float = 0.12, bad: float = 0.04, truth: dict[str, float] = TRUE) -> pd.DataFrame:
    """Battles between random pairs of systems with known Bradley–Terry ratings, shown on random sides.

    A tie or "both bad" happens with a fixed probability; the decisive outcomes are drawn so that a's
    expected score (ties half) is exactly σ((Rₐ − R_b) · ln 10 / 400), which is what the model with ties
    as half a win estimates.
    """
    rng = np.random.default_rng(seed)
    names = np.array(list(truth))
    strength = np.array(list(truth.values()))
    i = rng.integers(0, len(names), n)
    j = (i + rng.integers(1, len(names), n)) % len(names)
    expected = 1 / (1 + 10 ** ((strength[j] - strength[i]) / 400))
    u = rng.random(n)
    a_wins = rng.random(n) < (expected - (tie + bad) / 2) / (1 - tie - bad)
    winner = np.where(u < tie, "tie", np.where(u < tie + bad, "bad", np.where(a_wins, names[i], names[j])))
    left_is_a = rng.random(n) < 0.5
    return pd.DataFrame(
        {
            "system_a": names[i],
            "system_b": names[j],
            "left_system": np.where(left_is_a, names[i], names[j]),
            "right_system": np.where(left_is_a, names[j], names[i]),
            "winner_system": winner,
            "language": rng.choice(["en", "de"], n),
        }
    )


def reference_mle(frame: pd.DataFrame) -> dict[str, float]:
    """Zermelo's (Hunter's MM) iteration for the Bradley–Terry MLE, on scores aggregated by pandas (ties half)."""
    winner, first, second = frame["winner_system"], frame["system_a"], frame["system_b"]
    score = np.select([winner == first, winner == second], [1.0, 0.0], 0.5)
    both_ways = pd.concat(
        [pd.DataFrame({"i": first, "j": second, "s": score}), pd.DataFrame({"i": second, "j": first, "s": 1 - score})]
    )
    totals = both_ways.groupby("i")["s"].sum().to_dict()  # each system's wins, ties half
    games = both_ways.groupby(["i", "j"]).size().to_dict()  # games between i and j
    systems = sorted(totals)
    gamma = dict.fromkeys(systems, 1.0)
    for _ in range(100_000):
        new = {i: totals[i] / sum(n / (gamma[i] + gamma[j]) for (x, j), n in games.items() if x == i) for i in systems}
        new = {s: g / sum(new.values()) for s, g in new.items()}
        done = max(abs(new[s] - gamma[s]) for s in systems) < 1e-15
        gamma = new
        if done:
            break
    return {s: 1000 + 400 * math.log10(gamma[s] / gamma["bon"]) for s in systems}


def test_bradley_terry_recovers_known_strengths() -> None:
    ratings = bradley_terry(simulate(20_000, seed=7))
    assert list(ratings.index) == ["oracle", "fusion", "bon", "sample"]
    assert ratings["bon"] == 1000
    for system, truth in TRUE.items():
        assert ratings[system] == pytest.approx(truth, abs=20)


def test_bradley_terry_matches_reference_mle() -> None:
    frame = simulate(20_000, seed=3)
    reference = reference_mle(frame)
    exact = bradley_terry(frame, prior=0)
    for system, value in reference.items():
        assert exact[system] == pytest.approx(value, abs=1e-6)
    default = bradley_terry(frame)  # one virtual tie per pair: negligible against 20,000 battles
    for system, value in reference.items():
        assert default[system] == pytest.approx(value, abs=0.5)


def test_bootstrap_intervals_contain_truth() -> None:
    frame = simulate(20_000, seed=11)
    table = bootstrap_bt(frame, rounds=200, seed=0)
    assert list(table.columns) == ["rating", "lower", "upper", "games"]
    assert table["rating"].equals(bradley_terry(frame).loc[table.index])
    assert table.loc["bon", ["lower", "rating", "upper"]].tolist() == [1000, 1000, 1000]  # the anchor
    for system, truth in TRUE.items():
        row = table.loc[system]
        assert row["lower"] <= row["rating"] <= row["upper"]
        assert row["lower"] <= truth <= row["upper"], system
        if system != "bon":
            assert 5 < row["upper"] - row["lower"] < 60
    assert table["games"].sum() == 2 * len(frame)
    assert bootstrap_bt(frame, rounds=50, seed=0).equals(bootstrap_bt(frame, rounds=50, seed=0))
    assert not bootstrap_bt(frame, rounds=50, seed=1).equals(bootstrap_bt(frame, rounds=50, seed=0))


def test_bootstrap_is_fast_on_100k_votes() -> None:
    frame = simulate(100_000, seed=5)
    started = time.perf_counter()
    bootstrap_bt(frame, rounds=200)
    assert time.perf_counter() - started < 2.0


def test_ties_count_as_half_and_both_bad_as_tie() -> None:
    outcomes = ["fusion", "fusion", "bon", "tie", "tie", "bad"]
    frame = pd.DataFrame({"system_a": "fusion", "system_b": "bon", "winner_system": outcomes})
    rates = win_rates(frame).set_index(["system", "opponent"])
    row = rates.loc[("fusion", "bon")]
    assert row[["games", "wins", "losses", "ties", "bad"]].tolist() == [6, 2, 1, 2, 1]
    assert row["win_rate"] == pytest.approx(3.5 / 6)
    assert rates.loc[("bon", "fusion"), "win_rate"] == pytest.approx(2.5 / 6)
    assert win_rates(frame, bad_as_tie=False).set_index(["system", "opponent"]).loc[
        ("fusion", "bon"), "win_rate"
    ] == pytest.approx(3 / 5)
    ratings = bradley_terry(frame, prior=0)
    assert ratings["fusion"] - ratings["bon"] == pytest.approx(400 * math.log10(3.5 / 2.5))
    assert bradley_terry(frame, prior=0, bad_as_tie=False)["fusion"] == pytest.approx(1000 + 400 * math.log10(3 / 2))


def test_outcome_column_and_left_right_columns_give_the_same_ratings() -> None:
    frame = simulate(3_000, seed=1)
    by_system = bradley_terry(frame[["system_a", "system_b", "winner_system"]])
    by_side = bradley_terry(frame[["left_system", "right_system", "winner_system"]])
    outcome = np.select(
        [frame["winner_system"] == frame["system_a"], frame["winner_system"] == frame["system_b"]],
        ["a", "b"],
        frame["winner_system"],
    )
    by_outcome = bradley_terry(frame[["system_a", "system_b"]].assign(outcome=outcome))
    pd.testing.assert_series_equal(by_system, by_side)
    pd.testing.assert_series_equal(by_system, by_outcome)


def test_wilson_interval() -> None:
    lower, upper = wilson(np.array([50]), np.array([100]))
    assert (lower[0], upper[0]) == (pytest.approx(0.4038, abs=1e-4), pytest.approx(0.5962, abs=1e-4))
    lower, upper = wilson(np.array([0, 10]), np.array([10, 10]))
    assert (
        lower[0] == pytest.approx(0, abs=1e-12)
        and upper[1] == pytest.approx(1)
        and 0 < upper[0] < 0.35
        and 0.65 < lower[1] < 1
    )
    assert np.isnan(wilson(np.array([0]), np.array([0]))[0][0])
    rng = np.random.default_rng(0)  # coverage: about 95% of intervals contain the true rate
    successes = rng.binomial(60, 0.3, size=4000)
    lower, upper = wilson(successes, np.full(4000, 60))
    assert 0.93 < np.mean((lower <= 0.3) & (0.3 <= upper)) < 0.97


def test_win_rate_intervals_narrow_with_more_votes_and_contain_the_truth() -> None:
    small = win_rates(simulate(2_000, seed=2)).set_index(["system", "opponent"])
    large = win_rates(simulate(40_000, seed=2)).set_index(["system", "opponent"])
    widths_small = small["upper"] - small["lower"]
    widths_large = large["upper"] - large["lower"]
    assert (widths_large < widths_small).all()
    truth = 1 / (1 + 10 ** ((TRUE["bon"] - TRUE["fusion"]) / 400))
    row = large.loc[("fusion", "bon")]
    assert row["lower"] < truth < row["upper"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["x", "y", "z"]), st.sampled_from(["x", "y", "z"]), st.sampled_from(["a", "b", "t"])),
        min_size=1,
        max_size=60,
    )
)
def test_tables_are_symmetric_and_order_free(rows: list[tuple[str, str, str]]) -> None:
    rows = [(a, b, o) for a, b, o in rows if a != b]
    if not rows:
        return
    frame = pd.DataFrame(rows, columns=["system_a", "system_b", "o"])
    frame["winner_system"] = np.where(frame["o"] == "a", frame["system_a"], frame["system_b"])
    frame.loc[frame["o"] == "t", "winner_system"] = "tie"
    rates = win_rates(frame).set_index(["system", "opponent"])
    for (system, opponent), row in rates.iterrows():
        mirror = rates.loc[(opponent, system)]
        assert (row["wins"], row["ties"], row["games"]) == (mirror["losses"], mirror["ties"], mirror["games"])
        assert row["win_rate"] + mirror["win_rate"] == pytest.approx(1)
    swapped = frame.rename(columns={"system_a": "system_b", "system_b": "system_a"}).iloc[::-1]
    pd.testing.assert_series_equal(bradley_terry(frame), bradley_terry(swapped), atol=1e-6)


def test_separated_votes_need_the_prior() -> None:
    frame = pd.DataFrame({"system_a": ["fusion"] * 5, "system_b": ["bon"] * 5, "winner_system": ["fusion"] * 5})
    ratings = bradley_terry(frame)
    assert ratings["fusion"] == pytest.approx(1000 + 400 * math.log10(5.5 / 0.5))
    with pytest.raises(ConfigError, match=r"won \(or lost\) every game against the rest"):
        bradley_terry(frame, prior=0)
    apart = pd.DataFrame({"system_a": ["a", "c"], "system_b": ["b", "d"], "winner_system": ["tie", "tie"]})
    with pytest.raises(ConfigError, match="never met"):
        bradley_terry(apart, prior=0)
    assert bradley_terry(apart).tolist() == pytest.approx([1000] * 4)  # the prior joins the two groups


def test_empty_table() -> None:
    empty = pd.DataFrame({"system_a": [], "system_b": [], "winner_system": []})
    assert bradley_terry(empty).empty
    assert bootstrap_bt(empty).empty and list(bootstrap_bt(empty).columns) == ["rating", "lower", "upper", "games"]
    assert win_rates(empty).empty


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (pd.DataFrame({"model_a": ["x"], "model_b": ["y"], "winner_system": ["x"]}), "needs columns system_a"),
        (pd.DataFrame({"system_a": ["x"], "system_b": ["y"]}), "needs a winner_system column"),
        (pd.DataFrame({"system_a": ["x", "x"], "system_b": ["y", "y"], "winner_system": ["x", "z"]}), "row 1"),
        (pd.DataFrame({"system_a": ["x"], "system_b": ["x"], "winner_system": ["x"]}), "no valid systems"),
        (pd.DataFrame({"system_a": ["x"], "system_b": [None], "winner_system": ["tie"]}), "no valid systems"),
    ],
)
def test_malformed_battles(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        bradley_terry(frame)


def test_online_elo_orders_systems_and_conserves_points() -> None:
    frame = simulate(20_000, seed=4)
    elo = online_elo(frame, k=4)
    assert list(elo.index) == ["oracle", "fusion", "bon", "sample"]
    assert elo.sum() == pytest.approx(4000)


def test_position_bias() -> None:
    rng = np.random.default_rng(0)
    winner = rng.choice(["left", "right", "tie", "bad"], 2_000, p=[0.56, 0.24, 0.15, 0.05])
    bias = position_bias(pd.DataFrame({"winner": winner}))
    assert bias.votes == 2_000 and bias.decisive == int(np.isin(winner, ["left", "right"]).sum())
    assert bias.left_share == pytest.approx(0.7, abs=0.03)
    assert 0.5 < bias.lower < bias.left_share < bias.upper
    fair = simulate(4_000, seed=9)  # sides are random, so no bias
    from_systems = position_bias(fair)
    assert from_systems.lower < 0.5 < from_systems.upper


def test_by_language() -> None:
    frame = pd.DataFrame(
        {
            "system_a": ["fusion"] * 7 + ["sample"],
            "system_b": ["bon"] * 7 + ["bon"],
            "winner_system": ["fusion", "fusion", "bon", "tie", "fusion", "bon", "bad", "sample"],
            "language": ["en", "en", "en", "en", "de", "de", None, "en"],
        }
    )
    table = by_language(frame)
    assert list(table.index) == ["en", "de", "unknown"]
    assert table.loc["en", ["games", "wins", "losses", "ties"]].tolist() == [4, 2, 1, 1]
    assert table.loc["en", "win_rate"] == pytest.approx(2.5 / 4)
    assert table.loc["de", "win_rate"] == pytest.approx(0.5)
    assert table.loc["unknown", "bad"] == 1
    assert (table["lower"] <= table["win_rate"]).all() and (table["win_rate"] <= table["upper"]).all()
    assert by_language(frame, "bon", "sample").loc["en", "win_rate"] == 0


def test_side_bias_flags_voters_who_always_pick_one_side() -> None:
    voters = ["always_left"] * 12 + ["few"] * 9 + ["fair"] * 20 + ["mostly_right"] * 10
    winners = ["left"] * 12 + ["left"] * 9 + ["left", "right"] * 10 + ["right"] * 9 + ["tie"]
    table = side_bias(pd.DataFrame({"voter_id": voters, "winner": winners}))
    assert table.loc["always_left", ["votes", "left", "right"]].tolist() == [12, 12, 0]
    assert bool(table.loc["always_left", "flagged"]) is True
    assert bool(table.loc["few", "flagged"]) is False  # too few votes to tell
    assert bool(table.loc["fair", "flagged"]) is False and table.loc["fair", "left_share"] == 0.5
    assert bool(table.loc["mostly_right", "flagged"]) is False  # 9 decisive votes: below the minimum
    assert table.index[0] == "always_left"


def test_votes_over_time() -> None:
    created = ["2025-01-01T10:00Z", "2025-01-02T01:00+02:00", "2025-01-03T00:00Z"]  # the second is Jan 1, 23:00 UTC
    table = votes_over_time(pd.DataFrame({"created_at": pd.to_datetime(created, utc=True)}))
    assert table["votes"].tolist() == [2, 0, 1]
    assert table["cumulative"].tolist() == [2, 2, 3]
    assert str(table.index[0]) == "2025-01-01 00:00:00+00:00"
    assert votes_over_time(pd.DataFrame({"created_at": pd.to_datetime([], utc=True)})).empty
