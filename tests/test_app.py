"""Every page through AppTest, with the fake completer and a temporary store behind our services seam."""

import pytest
from streamlit.testing.v1 import AppTest

from components import services
from fusion_core.errors import MissingKeyError, ModelError
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter
from fusion_core.types import Candidate, FusionResult, RunConfig, RunResult, Selection

SECRET = "sk-live-abcdefghijklmnopqrstuvwx"


def replies(model, messages, params):
    text = messages[-1]["content"]
    if model == "bad/teacher":
        raise ModelError("bad/teacher: server on fire")
    if "candidate responses" in text or "edited fusor prompt" in text:
        return "A fused <b>answer</b> from seed 0."
    if "impartial judge" in text:
        return "Score: 9" if "seed 1" in text else "Score: 4"
    return f"Candidate from {model} with seed {params.seed} <script>alert(1)</script>"


@pytest.fixture
def env(monkeypatch, sqlite_url):
    fake = FakeCompleter(default=replies, unknown_models={"anthropic/claude-nokey"})
    original = fake.check_model

    def check(model):
        if model == "anthropic/claude-nokey":
            raise MissingKeyError(model, ["ANTHROPIC_API_KEY"])
        original(model)

    fake.check_model = check
    store = Store(sqlite_url)
    monkeypatch.setattr(services, "completer", lambda: fake)
    monkeypatch.setattr(services, "store", lambda: store)
    yield fake, store
    store.close()


def app(page: str | None = None) -> AppTest:
    at = AppTest.from_file("../app.py", default_timeout=30)
    if page:
        at.switch_page(page)
    return at


def button(at, label):
    return next(b for b in at.button if b.label == label)


def texts(at):
    return [h.proto.body for h in at.get("html")]


def stored_run(**kw):
    candidates = [Candidate(i, "m", text=f"stored answer {i}") for i in range(3)]
    base = {
        "config": RunConfig(prompt="Stored prompt about tides", models=["m"], n=3, language="en"),
        "candidates": candidates,
        "bon": Selection(index=1, method="mbr", scores=[0.1, 0.9, 0.2]),
        "fusion": FusionResult(
            text="stored answer 1 and stored answer 2",
            model="f",
            messages=[{"role": "system", "content": "sys"}, {"role": "user", "content": "the fusor prompt"}],
            order=[0, 1, 2],
        ),
    }
    return RunResult(**{**base, **kw})


def test_the_playground_runs_a_fusion_shows_it_side_by_side_and_stores_it(env):
    fake, store = env
    at = app()
    at.run()
    assert not at.exception
    at.text_area(key="fx_prompt").set_value("Why is the sky blue?")
    at.number_input(key="fx_cand_tokens").set_value(64)
    button(at, "Run").click().run()
    assert not at.exception
    assert {"Candidates (4)", "Best-of-N", "Fusion-of-N"} <= {h.value for h in at.subheader}
    html = "\n".join(texts(at))
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    assert "A fused &lt;b&gt;answer&lt;/b&gt;" in html or "fused" in html
    assert any("badge[" in m.value and "Best-of-N" in m.value for m in at.markdown)
    assert any(m.value.startswith("✅ fusor `local/smollm2-135m`") for m in at.markdown)  # its status line
    assert store.count_runs() == 1
    assert (
        at.query_params["run"] == [store.list_runs()[0].run_id] or at.query_params["run"] == store.list_runs()[0].run_id
    )
    assert {c.params.max_tokens for c in fake.history if c.model == "local/smollm2-135m"} >= {64}
    assert any("self-refinement" in i.value for i in at.info)


@pytest.mark.parametrize(
    ("widget", "key", "value", "message"),
    [
        ("text_area", "fx_prompt", "   ", "prompt is empty"),
        ("text_input", "fx_fusor", "anthropic/claude-nokey", "ANTHROPIC_API_KEY"),
        ("text_input", "fx_model", "", "no sampling model"),
    ],
)
def test_bad_input_is_one_error_in_the_page_and_nothing_is_spent(env, widget, key, value, message):
    fake, store = env
    at = app()
    at.run()
    getattr(at, widget)(key=key).set_value(value)
    button(at, "Run").click().run()
    assert not at.exception
    assert any(message in e.value for e in at.error)
    assert fake.history == [] and store.count_runs() == 0


def test_a_teacher_pool_with_a_failing_teacher_still_shows_the_run(env):
    _fake, store = env
    at = app()
    at.run()
    at.get("button_group")[0].set_value("Teacher pool").run()
    at.text_area(key="fx_teachers").set_value("local/smollm2-135m\nbad/teacher\nother/teacher")
    button(at, "Run").click().run()
    assert not at.exception
    assert any("server on fire" in e.value for e in at.error)
    assert any("1 of 3 candidates failed" in w.value for w in at.warning)
    assert "Fusion-of-N" in {h.value for h in at.subheader}
    assert store.count_runs() == 1


def opened(store, run: RunResult) -> AppTest:
    """The Playground opened on a stored run through its URL."""
    at = app()
    at.query_params["run"] = store.save_run(run)
    at.run()
    return at


def test_a_run_reopens_from_its_url(env):
    fake, store = env
    at = opened(store, stored_run())
    assert not at.exception
    assert "stored answer 1" in "\n".join(texts(at))
    assert fake.history == []


def test_an_unknown_run_id_in_the_url_is_a_clear_error(env):
    at = app()
    at.query_params["run"] = "nope"
    at.run()
    assert not at.exception
    assert any("Cannot open run nope" in e.value for e in at.error)


def test_reselect_and_refuse_with_an_edited_prompt_reuse_the_candidates(env):
    fake, store = env
    at = opened(store, stored_run())
    at.selectbox(key="it_selector").set_value("oracle")
    at.text_area(key="it_reference").set_value("stored answer 2")
    button(at, "Re-select").click().run()
    assert not at.exception
    assert store.count_runs() == 2
    newest = store.get_run(store.list_runs()[0].run_id)
    assert newest.bon.method == "oracle" and newest.bon.index == 2
    assert fake.history == []

    edited = [t for t in at.text_area if t.key and t.key.startswith(f"it_msg_{newest.run_id}")]
    edited[-1].set_value("My edited fusor prompt")
    button(at, "Re-fuse with this prompt").click().run()
    assert not at.exception
    assert fake.history[-1].messages[-1]["content"] == "My edited fusor prompt"
    assert store.count_runs() == 3


def test_history_lists_searches_and_filters_runs(env):
    _fake, store = env
    store.save_run(stored_run())
    store.save_run(stored_run(config=RunConfig(prompt="Another about bread", models=["x"], n=3, language="fr")))
    at = app("views/history.py")
    at.run()
    assert not at.exception
    assert len(at.dataframe[0].value) == 2
    at.text_input[0].set_value("bread").run()
    assert list(at.dataframe[0].value["prompt"]) == ["Another about bread"]


def test_history_filters_by_exact_model_name(env):
    _fake, store = env
    store.save_run(stored_run(config=RunConfig(prompt="Small model", models=["x"], n=3)))
    store.save_run(stored_run(config=RunConfig(prompt="Larger model", models=["x-large"], n=3)))
    at = app("views/history.py")
    at.run()
    at.multiselect[0].set_value(["x"]).run()
    assert not at.exception
    assert list(at.dataframe[0].value["prompt"]) == ["Small model"]


def test_history_with_no_runs_says_so(env):
    at = app("views/history.py")
    at.run()
    assert not at.exception
    assert any("No runs yet" in i.value for i in at.info)


def test_settings_show_which_keys_are_set_but_never_a_key(env, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    at = app("views/settings.py")
    at.run()
    assert not at.exception
    providers = at.dataframe[0].value
    row = providers[providers["provider"] == "OpenAI"].iloc[0]
    assert row["key"] == "set"
    assert providers[providers["provider"] == "Anthropic"].iloc[0]["key"] == "not set"
    rendered = str([e.proto for e in at.main]) + str([e.proto for e in at.sidebar])
    assert SECRET not in rendered and SECRET not in providers.to_string()
    assert any("Paper default" in e.label for e in at.expander)
