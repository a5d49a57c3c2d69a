"""The Streamlit app through AppTest, with the fake completer behind our services seam."""

import pytest
from streamlit.testing.v1 import AppTest

from components import services
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter


def replies(model, messages, params):
    text = messages[-1]["content"]
    if "candidate responses" in text:
        return "A fused <b>answer</b>."
    if "impartial judge" in text:
        return "Score: 8"
    return f"Candidate with seed {params.seed} <script>alert(1)</script>"


@pytest.fixture
def app(monkeypatch, sqlite_url):
    fake = FakeCompleter(default=replies)
    store = Store(sqlite_url)
    monkeypatch.setattr(services, "completer", lambda: fake)
    monkeypatch.setattr(services, "store", lambda: store)
    at = AppTest.from_file("../app.py", default_timeout=30)
    yield at, fake, store
    store.close()


def test_the_playground_runs_a_fusion_and_stores_it(app):
    at, fake, store = app
    at.run()
    assert not at.exception
    at.text_area[0].set_value("Why is the sky blue?")
    at.button[0].click().run()
    assert not at.exception
    shown = [t.value for t in at.text]
    assert "A fused <b>answer</b>." in shown
    assert any("seed 0" in t and "<script>" in t for t in shown)  # shown as text, not markup
    assert {"Candidates", "Best-of-N", "Fusion-of-N"} <= {h.value for h in at.subheader}
    assert store.count_runs() == 1
    assert any(c.model == "local/smollm2-135m" for c in fake.history)


def test_an_empty_prompt_shows_an_error_not_a_traceback(app):
    at, fake, store = app
    at.run()
    at.text_area[0].set_value("   ")
    at.button[0].click().run()
    assert not at.exception
    assert any("prompt is empty" in e.value for e in at.error)
    assert fake.history == [] and store.count_runs() == 0
