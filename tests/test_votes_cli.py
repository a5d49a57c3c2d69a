"""`votes export` and `leaderboard` on a SQLite store with a synthetic vote set."""

import json

import pandas as pd
import pytest

from fusion_core import cli
from fusion_core.ratings import bootstrap_bt, win_rates
from fusion_core.store import Store
from tests.vote_data import fill_votes


@pytest.fixture
def voted(monkeypatch, sqlite_url):
    monkeypatch.setenv("FUSION_DATABASE_URL", sqlite_url)
    with Store(sqlite_url) as store:
        frame = fill_votes(store).votes_frame()
    return frame


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_export_parses_back_with_every_vote_and_no_voter_name(voted, tmp_path, capsys, fmt):
    out = tmp_path / f"votes.{fmt}"
    assert cli.main(["votes", "export", "--format", fmt, "--out", str(out)]) == 0
    back = pd.read_csv(out) if fmt == "csv" else pd.read_parquet(out)
    assert len(back) == len(voted) == 120
    assert "voter_name" not in back.columns
    assert {"voter_id", "winner_system", "left_system", "created_at"} <= set(back.columns)
    assert "wrote 120 votes" in capsys.readouterr().out


def test_export_of_one_queue(voted, tmp_path):
    out = tmp_path / "none.csv"
    assert cli.main(["votes", "export", "--out", str(out), "--queue", "nope"]) == 0
    assert out.read_text().strip().startswith("vote_id")
    assert len(pd.read_csv(out)) == 0


def test_a_bad_format_is_one_line_and_exit_2(voted, tmp_path, capsys):
    assert cli.main(["votes", "export", "--format", "xlsx", "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "xlsx" in err and "csv or parquet" in err
    assert not (tmp_path / "x").exists()


def test_leaderboard_json_equals_the_ratings_functions(voted, capsys):
    assert cli.main(["leaderboard", "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    expected = bootstrap_bt(voted, rounds=200, seed=0)
    assert board["votes"] == 120
    assert [r["system"] for r in board["ratings"]] == list(expected.index)
    for row in board["ratings"]:
        for column in ("rating", "lower", "upper", "games"):
            assert row[column] == pytest.approx(expected.loc[row["system"], column])
    rates = win_rates(voted)
    assert len(board["win_rates"]) == len(rates)
    for row, (_, want) in zip(board["win_rates"], rates.iterrows(), strict=True):
        assert (row["system"], row["opponent"]) == (want["system"], want["opponent"])
        assert row["win_rate"] == pytest.approx(want["win_rate"])
        assert (row["lower"], row["upper"]) == pytest.approx((want["lower"], want["upper"]))


def test_leaderboard_table_shows_the_same_numbers(voted, capsys):
    assert cli.main(["leaderboard"]) == 0
    out = capsys.readouterr().out
    expected = bootstrap_bt(voted, rounds=200, seed=0)
    best = expected.iloc[0]
    assert f"{expected.index[0]:16} {best.rating:8.1f}  {best.lower:8.1f}–" in out
    assert "fusion" in out and "bon" in out and "win rate" in out


def test_leaderboard_without_votes(monkeypatch, sqlite_url, capsys):
    monkeypatch.setenv("FUSION_DATABASE_URL", sqlite_url)
    assert cli.main(["leaderboard", "--queue", "empty"]) == 0
    assert "no votes yet" in capsys.readouterr().out
