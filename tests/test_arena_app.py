"""The Arena and Leaderboard pages and the admin gate through AppTest, on a temporary SQLite store."""

import pytest
from streamlit.testing.v1 import AppTest

from components import services
from fusion_core.settings import Settings
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter
from fusion_core.votes import VoteStore
from tests.vote_data import fill_votes, make_run

PASSWORD = "open sesame 42"


@pytest.fixture
def env(monkeypatch, sqlite_url):
    fake = FakeCompleter(default=lambda model, messages, params: "never called")
    store = Store(sqlite_url)
    votes = VoteStore(store, max_votes_per_minute=None)
    monkeypatch.setattr(services, "completer", lambda: fake)
    monkeypatch.setattr(services, "store", lambda: store)
    monkeypatch.setattr(services, "votes", lambda: votes)
    yield fake, store, votes
    store.close()


@pytest.fixture
def admin(monkeypatch):
    settings = Settings.from_env({"FUSION_ADMIN_PASSWORD": PASSWORD})
    monkeypatch.setattr(services, "settings", lambda: settings)


def app(page: str) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=30)
    at.switch_page(page)
    return at


def button(at, label):
    return next(b for b in at.button if b.label == label)


def labels(at):
    return {b.label for b in at.button}


def queued(store, votes, n=2):
    runs = [make_run(f"Prompt {i} about <b>tides</b>") for i in range(n)]
    for run in runs:
        store.save_run(run)
    votes.build_queue(runs, queue="demo")
    return runs


def test_vote_reveal_next_and_exhausted(env):
    fake, store, votes = env
    queued(store, votes, n=2)
    at = app("views/arena.py")
    at.run()
    assert not at.exception
    assert {"A", "B"} <= {h.value for h in at.subheader}
    shown = "\n".join(h.proto.body for h in at.get("html"))
    assert "&lt;b&gt;tides&lt;/b&gt;" in shown and "<b>tides" not in shown
    assert not any("written by" in s.value for s in at.success)

    button(at, "A is better").click().run()
    assert not at.exception
    reveal = next(s.value for s in at.success if "written by" in s.value)
    assert "fusion" in reveal and "bon" in reveal and "A is better" in reveal
    assert votes.count_votes() == 1
    frame = votes.votes_frame()
    assert frame["winner"].tolist() == ["left"] and frame["voter_id"].iloc[0] == at.session_state["fx_voter"]

    button(at, "Next").click().run()
    assert not at.exception
    assert not any("written by" in s.value for s in at.success)
    button(at, "Tie").click().run()
    button(at, "Next").click().run()
    assert not at.exception
    assert any("voted on every comparison" in s.value for s in at.success)
    assert votes.count_votes() == 2
    assert fake.history == []  # the Arena never calls a model


def test_a_rerun_keeps_the_pair_and_a_second_click_counts_once(env):
    _fake, store, votes = env
    queued(store, votes, n=3)
    at = app("views/arena.py")
    at.run()
    first = at.session_state["fx_arena"]["assignment"]
    at.run()
    assert at.session_state["fx_arena"]["assignment"] == first
    button(at, "B is better").click().run()
    button(at, "B is better").click().run()
    button(at, "A is better").click().run()
    assert not at.exception
    assert any("already voted" in i.value for i in at.info)
    assert votes.count_votes() == 1
    assert votes.votes_frame()["winner"].tolist() == ["right"]
    reveal = next(s.value for s in at.success if "written by" in s.value)
    assert "B is better" in reveal


def test_a_too_long_name_is_an_error_and_nothing_is_stored(env):
    _fake, store, votes = env
    queued(store, votes, n=1)
    at = app("views/arena.py")
    at.run()
    at.text_input(key="fx_voter_name").set_value("x" * 65)
    button(at, "A is better").click().run()
    assert not at.exception
    assert any("longer than 64" in e.value for e in at.error)
    assert votes.count_votes() == 0
    at.text_input(key="fx_voter_name").set_value("Ada")
    button(at, "A is better").click().run()
    assert votes.votes_frame()["voter_name"].tolist() == ["Ada"]


def test_a_rate_limited_voter_sees_a_warning(env, monkeypatch):
    _fake, store, votes = env
    queued(store, votes, n=2)
    limited = VoteStore(store, max_votes_per_minute=1)
    monkeypatch.setattr(services, "votes", lambda: limited)
    at = app("views/arena.py")
    at.run()
    button(at, "A is better").click().run()
    button(at, "Next").click().run()
    button(at, "A is better").click().run()
    assert not at.exception
    assert any("votes in a minute" in w.value for w in at.warning)
    assert limited.count_votes() == 1


def test_no_queue_says_so_and_organize_builds_and_deletes_one(env):
    _fake, store, votes = env
    for i in range(2):
        store.save_run(make_run(f"Stored {i}", language="de" if i else "en"))
    at = app("views/arena.py")
    at.run()
    assert any("No comparison queue yet" in i.value for i in at.info)
    at.multiselect(key="qb_pairs").set_value(["fusion vs bon", "bon vs sample"])
    at.text_input(key="qb_queue").set_value("talk")
    at.text_input(key="qb_task").set_value("qa")
    button(at, "Build queue").click().run()
    assert not at.exception
    assert any("Added 4 comparisons" in s.value for s in at.success)
    assert [(q.name, q.comparisons) for q in votes.queues()] == [("talk", 4)]
    assert at.selectbox(key="fx_arena_queue").value == "talk"

    at.selectbox(key="qb_language").set_value("de")
    at.text_input(key="qb_queue").set_value("german")
    button(at, "Build queue").click().run()
    assert {q.name: q.comparisons for q in votes.queues()} == {"talk": 4, "german": 2}

    at.selectbox(key="qb_delete").set_value("german")
    at.checkbox(key="qb_sure").check().run()
    button(at, "Delete queue").click().run()
    assert not at.exception
    assert [q.name for q in votes.queues()] == ["talk"]


def test_the_admin_gate_hides_organize_until_the_right_password(env, admin):
    _fake, store, votes = env
    queued(store, votes, n=1)
    at = app("views/arena.py")
    at.run()
    assert "Build queue" not in labels(at) and "Delete queue" not in labels(at)
    assert "A is better" in labels(at)  # voting stays open

    at.text_input(key="fx_admin_pw_organize_queues").set_value("wrong")
    button(at, "Unlock").click().run()
    assert not at.exception
    assert any("Wrong admin password" in e.value for e in at.error)
    assert "Build queue" not in labels(at)

    at.text_input(key="fx_admin_pw_organize_queues").set_value(PASSWORD)
    button(at, "Unlock").click().run()
    assert not at.exception
    assert {"Build queue", "Delete queue"} <= labels(at)
    assert PASSWORD not in str([e.proto for e in at.main]) + str([e.proto for e in at.sidebar])


def test_the_admin_gate_on_the_playground(env, admin):
    fake, _store, _votes = env
    at = app("views/playground.py")
    at.run()
    assert not at.exception
    assert "Run" not in labels(at)
    assert [link.proto.page for link in at.get("page_link")] == ["arena"]  # voters are sent to the Arena
    at.text_input(key="fx_admin_pw_run_models_in_the_playground").set_value(PASSWORD)
    button(at, "Unlock").click().run()
    assert "Run" in labels(at)
    assert fake.history == []


def test_the_password_setting_is_never_in_a_repr():
    settings = Settings.from_env({"FUSION_ADMIN_PASSWORD": PASSWORD})
    assert settings.admin_password == PASSWORD and PASSWORD not in repr(settings)
    assert Settings.from_env({"FUSION_ADMIN_PASSWORD": ""}).admin_password is None


def test_the_leaderboard_renders_tables_and_charts(env):
    _fake, store, _votes = env
    fill_votes(store)
    at = app("views/leaderboard.py")
    at.run()
    assert not at.exception
    assert at.metric[0].value == "120"
    ratings = at.dataframe[0].value
    assert set(ratings.index) == {"fusion", "bon", "sample"} and ratings.loc["bon", "rating"] == 1000
    assert len(at.dataframe[1].value) == 6
    assert set(at.dataframe[2].value.index) == {"en", "de"}
    assert len(at.get("plotly_chart")) == 2
    assert {"Bradley–Terry ratings", "Win rates", "Position bias", "Export"} <= {h.value for h in at.subheader}
    at.selectbox(key="lb_queue").set_value("demo").run()
    assert not at.exception and at.metric[0].value == "120"


def test_the_leaderboard_without_votes_and_export_behind_the_gate(env, admin):
    _fake, store, _votes = env
    at = app("views/leaderboard.py")
    at.run()
    assert any("No votes yet" in i.value for i in at.info)
    fill_votes(store)
    at.run()
    assert not at.exception
    assert not at.get("download_button")
    at.text_input(key="fx_admin_pw_export_the_votes").set_value(PASSWORD)
    button(at, "Unlock").click().run()
    assert len(at.get("download_button")) == 2


def test_deleting_a_run_in_history_needs_the_password(env, admin):
    _fake, store, _votes = env
    store.save_run(make_run("A stored run"))
    at = app("views/history.py")
    at.run()
    at.session_state["history_table"] = {"selection": {"rows": [0], "columns": [], "cells": []}}
    at.run()
    assert not at.exception
    assert "Delete this run" not in labels(at)
    at.text_input(key="fx_admin_pw_delete_runs").set_value(PASSWORD)
    button(at, "Unlock").click().run()
    button(at, "Delete this run").click().run()
    assert not at.exception
    assert store.count_runs() == 0
