"""Model groups through a litellm Router config, offline: per-deployment mock replies, a closed port, an echo server."""

import asyncio
import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fusion_core.errors import ConfigError, MissingKeyError, ModelError
from fusion_core.llm import LiteLLMCompleter
from fusion_core.router import RouterConfig, Secret, load_router_config, parse_router_config
from fusion_core.settings import PROJECT_ROOT, Settings
from fusion_core.types import GenParams

MSG = [{"role": "user", "content": "hi"}]
LITERAL_KEY = "Zq8vLiteralSecret91x"  # not key-shaped: only the router config's own scrubbing can hide it
POOL = {"from node a", "from node b"}
ONE_GROUP = "model_list:\n  - model_name: g\n    litellm_params: {model: openai/x}\n"
CONFIG = f"""
model_list:
  - model_name: pool
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://node-a.invalid/v1
      api_key: os.environ/NODE_A_KEY
      mock_response: from node a
  - model_name: pool
    litellm_params:
      model: openai/gpt-4o-mini
      api_base: http://user:pw@node-b.invalid/v1?token=abcdef
      api_key: os.environ/NODE_B_KEY
      mock_response: from node b
  - model_name: flaky
    litellm_params: {{model: openai/flaky, api_key: {LITERAL_KEY}, mock_response: litellm.InternalServerError}}
  - model_name: down
    litellm_params: {{model: openai/down, api_base: "http://127.0.0.1:9/v1", api_key: {LITERAL_KEY}}}
  - model_name: lonely
    litellm_params: {{model: openai/lonely, api_key: {LITERAL_KEY}, mock_response: litellm.InternalServerError}}
    model_info: {{max_input_tokens: 4096}}
router_settings:
  num_retries: 0
  fallbacks:
    - flaky: [pool]
    - down: pool
"""


@pytest.fixture(autouse=True)
def _node_keys(monkeypatch):
    monkeypatch.setenv("NODE_A_KEY", "node-a-env-value")
    monkeypatch.setenv("NODE_B_KEY", "node-b-env-value")
    monkeypatch.delenv("FUSION_ROUTER_CONFIG", raising=False)


def write(tmp_path: Path, text: str, name: str = "router.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def completer(tmp_path: Path, text: str = CONFIG, **options) -> LiteLLMCompleter:
    env = {
        "FUSION_DATA_DIR": str(tmp_path),
        "FUSION_TIMEOUT_S": "5",
        "FUSION_MAX_RETRIES": "1",
        "FUSION_ROUTER_CONFIG": str(write(tmp_path, text)),
    }
    return LiteLLMCompleter(Settings.from_env(env), call_options=options)


def run(c: LiteLLMCompleter, model: str, n: int = 1, **kwargs) -> list:
    async def calls():
        return await asyncio.gather(*(c.complete(model, MSG, GenParams(max_tokens=10), **kwargs) for _ in range(n)))

    return asyncio.run(calls())


# (a) load balancing


def test_calls_to_a_group_spread_over_its_deployments(tmp_path):
    done = run(completer(tmp_path), "pool", n=30)
    assert {d.text for d in done} == POOL  # both deployments answered (p of one side only: 2⁻²⁹)
    assert all(d.model == "pool" and d.completion_tokens > 0 for d in done)


def test_the_router_is_built_once_per_completer_even_from_many_threads(tmp_path):
    c = completer(tmp_path)
    start = threading.Barrier(8)
    routers = []

    def build():
        start.wait()
        routers.append(c.router())

    threads = [threading.Thread(target=build) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(routers) == 8 and all(r is routers[0] for r in routers)
    run(c, "pool")
    assert c.router() is routers[0]


def test_a_group_streams_like_a_plain_model(tmp_path):
    seen = []
    (done,) = run(completer(tmp_path), "pool", on_delta=seen.append)
    assert done.text in POOL and seen and seen[-1] == done.text
    assert done.prompt_tokens > 0 and done.completion_tokens > 0


# (b) fallbacks and failures


def test_a_failing_group_falls_back_to_another_group(tmp_path):
    c = completer(tmp_path)
    assert {d.text for d in run(c, "flaky", n=4)} <= POOL


def test_an_unreachable_deployment_falls_back_to_another_group(tmp_path):
    (done,) = run(completer(tmp_path), "down")
    assert done.text in POOL and done.model == "down"


def test_without_a_fallback_the_router_error_is_reported_once_not_retried_by_us(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="fusion_core.llm"), pytest.raises(ModelError, match="lonely") as err:
        run(completer(tmp_path), "lonely")
    assert err.value.transient and "InternalServerError" in str(err.value)
    ours = [r for r in caplog.records if r.name == "fusion_core.llm" and "retry" in r.getMessage()]
    assert not ours  # the router's num_retries is the budget


def test_the_outer_bound_allows_every_retry_and_fallback(tmp_path):
    config = load_router_config(write(tmp_path, CONFIG.replace("num_retries: 0", "num_retries: 2")))
    assert config.fallbacks_for("flaky") == ("pool",) and config.fallbacks_for("pool") == ()
    assert config.call_budget("pool", 10, 5) == 3 * 10 + 2 * 8
    assert config.call_budget("flaky", 10, 5) == 6 * 10 + 5 * 8
    assert load_router_config(write(tmp_path, CONFIG)).call_budget("lonely", 10, 5) == 10


# the model seam's other questions


def test_check_model_accepts_groups_without_provider_keys(tmp_path, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    c = completer(tmp_path)
    c.check_model("pool")
    c.check_model(" lonely ")
    monkeypatch.delenv("NODE_A_KEY")
    c.check_model("pool")  # node b still has its key
    monkeypatch.delenv("NODE_B_KEY")
    with pytest.raises(MissingKeyError, match="NODE_A_KEY, NODE_B_KEY"):
        c.check_model("pool")


def test_context_window_of_a_group_is_its_first_deployments(tmp_path):
    c = completer(tmp_path)
    assert c.context_window("pool") == c.context_window("openai/gpt-4o-mini") > 0
    assert c.context_window("lonely") == 4096  # model_info wins


def test_unknown_models_name_the_router_groups(tmp_path):
    with pytest.raises(ModelError, match=r"router group .*pool"):
        completer(tmp_path).check_model("nosuchprovider/x")


# (e) models outside the router


def test_a_model_outside_the_router_still_goes_straight_to_litellm(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-123456")
    c = completer(tmp_path, mock_response="direct answer")
    (done,) = run(c, "openai/gpt-4o-mini")
    assert done.text == "direct answer" and done.cost is not None and done.cost > 0
    assert c._router is None  # no router was needed


def test_without_a_router_config_nothing_is_a_group(tmp_path):
    c = LiteLLMCompleter(Settings.from_env({"FUSION_DATA_DIR": str(tmp_path)}))
    assert c.router_config is None and c.router_group("pool") is None
    with pytest.raises(ConfigError, match="FUSION_ROUTER_CONFIG"):
        c.router()


@pytest.mark.integration
def test_the_embedded_model_works_as_a_deployment(tmp_path):
    text = "model_list:\n  - model_name: tiny\n    litellm_params: {model: local/smollm2-135m}\n"
    c = completer(tmp_path, text)
    c.settings = Settings.from_env({"FUSION_DATA_DIR": str(tmp_path), "FUSION_TIMEOUT_S": "120"})  # loads the model
    (done,) = run(c, "tiny")
    assert done.text and done.cost == 0.0 and done.completion_tokens > 0
    assert c.context_window("tiny") == c.settings.local.context_per_request


# (f) settings


def test_settings_read_fusion_router_config(tmp_path):
    path = write(tmp_path, CONFIG)
    assert Settings.from_env({"FUSION_ROUTER_CONFIG": str(path)}).router_config == path
    assert Settings.from_env({"FUSION_ROUTER_CONFIG": " "}).router_config is None
    assert Settings.from_env({}).router_config is None


def test_the_example_config_is_valid(monkeypatch):
    summary = load_router_config(PROJECT_ROOT / "data" / "router.example.yaml").describe().as_dict()
    assert [g["name"] for g in summary["groups"]] == ["my-llama", "my-backup"]
    assert summary["groups"][0]["deployments"] == 2 and len(summary["groups"][0]["api_bases"]) == 2
    assert summary["fallbacks"] == {"my-llama": ["my-backup"]}


# (c) validation


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("model_list: [\n  {model_name: x", r"not valid YAML \(line \d+, column \d+"),
        ("- a\n- b\n", "top level must be a mapping"),
        ("router_settings: {}\n", "model_list is missing or empty"),
        ("model_list: []\n", "model_list is missing or empty"),
        ("model_list:\n  - litellm_params: {model: openai/x}\n", r"model_list\[0\] has no model_name"),
        ("model_list:\n  - model_name: g\n", r"model_list\[0\] \(g\) has no litellm_params.model"),
        ("model_list:\n  - model_name: g\n    litellm_params: {api_base: http://x}\n", "has no litellm_params.model"),
        ("model_list:\n  - model_name: '*'\n    litellm_params: {model: openai/*}\n", "no '\\*' wildcard"),
        ("model_list:\n  - model_name: g\n    litellm_param: {model: openai/x}\n", "unknown key.*litellm_param"),
        ("model_list:\n  - model_name: g\n    litellm_params: {model: openai/x, rpm: -1}\n", "rpm must be a whole"),
        ("model_list:\n  - model_name: g\n    litellm_params: {model: openai/x, api_key: os.environ/}\n", "variable"),
        (ONE_GROUP + "router_setting: {}\n", "unknown top-level key.*router_setting; use model_list"),
        (ONE_GROUP + "router_settings: {fallbacks: [{g: [backup]}]}\n", "unknown model group 'backup'; known groups"),
        (ONE_GROUP + "router_settings: {fallbacks: {g: g}}\n", r"fallbacks must be a list of \{group: \[fallback"),
        (ONE_GROUP + "router_settings: {num_retries: x}\n", "num_retries must be a whole number"),
        (ONE_GROUP + "router_settings: [fallbacks]\n", "router_settings must be a mapping"),
    ],
)
def test_bad_configs_say_which_file_and_what_to_fix(tmp_path, text, match):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=match) as err:
        load_router_config(path)
    assert str(err.value).startswith(str(path))


def test_a_missing_file_and_bad_json_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="no such router config file; fix FUSION_ROUTER_CONFIG"):
        load_router_config(tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match=r"router.json: not valid JSON \(line 1, column 2"):
        load_router_config(write(tmp_path, "{model_list: []}", "router.json"))
    env = {"FUSION_ROUTER_CONFIG": str(tmp_path / "nope.yaml")}
    with pytest.raises(ConfigError, match=r"nope\.yaml: no such router config file"):
        LiteLLMCompleter(Settings.from_env(env))


def test_a_json_config_and_proxy_only_sections_are_accepted(tmp_path, caplog):
    raw = {"model_list": [{"model_name": "g", "litellm_params": {"model": "openai/x"}}], "litellm_settings": {}}
    with caplog.at_level(logging.WARNING, logger="fusion_core.router"):
        config = load_router_config(write(tmp_path, json.dumps(raw), "router.json"))
    assert list(config.groups) == ["g"]
    assert "litellm_settings is for the litellm proxy and is ignored" in caplog.text


def test_settings_litellm_rejects_are_config_errors_naming_the_file(tmp_path):
    text = CONFIG.replace("num_retries: 0", "num_retries: 0\n  bogus_setting: 1")
    with pytest.raises(ConfigError, match=r"router.yaml: litellm rejected the router config.*bogus_setting"):
        run(completer(tmp_path, text), "pool")
    text = "model_list:\n  - model_name: g\n    litellm_params: {model: nosuchprovider/x}\n"
    with pytest.raises(ConfigError, match=r"model_list\[0\] \(g\): unknown model 'nosuchprovider/x'"):
        run(completer(tmp_path, text), "g")


# (d) literal keys never leak


def test_describe_and_reprs_carry_no_literal_key(tmp_path):
    config = load_router_config(write(tmp_path, CONFIG))
    summary = config.describe()
    shown = json.dumps(summary.as_dict()) + repr(summary) + repr(config) + str(config) + repr(config.deployments)
    assert LITERAL_KEY not in shown and "node-a-env-value" not in shown
    assert "pw@" not in shown and "token=abcdef" not in shown  # user info and query are left off API bases
    assert "abcdef" in config.secrets()
    pool = next(g for g in summary.groups if g.name == "pool")
    assert pool.deployments == 2 and pool.models == ("openai/gpt-4o-mini",)
    assert pool.api_bases == ("http://node-a.invalid/v1", "http://node-b.invalid/v1")
    assert isinstance(config.groups["flaky"][0].params["api_key"], Secret)
    assert repr(config.groups["flaky"][0].params).count("***") == 1
    assert config.model_list()[2]["litellm_params"]["api_key"] == LITERAL_KEY  # for litellm only
    assert config.groups["pool"][0].params["api_key"] == "os.environ/NODE_A_KEY"  # references stay as written


@pytest.mark.parametrize(
    "text",
    [
        f"model_list:\n  - model_name: g\n    litellm_params: {{api_key: {LITERAL_KEY}}}\n",
        f"model_list:\n  - model_name: g\n    litellm_params: {{model: x, api_key: {LITERAL_KEY}: [}}\n",
        f"model_list:\n  - model_name: g\n    litellm_params: {{model: x, api_key: {LITERAL_KEY}, rpm: many}}\n",
        f"model_list:\n  - model_name: g\n    litellm_params: {{model: x, api_key: [{LITERAL_KEY}]}}\n",
    ],
)
def test_config_errors_carry_no_literal_key(tmp_path, text):
    with pytest.raises(ConfigError) as err:
        parse_router_config(text, tmp_path / "router.yaml")
    assert LITERAL_KEY not in str(err.value)


@pytest.fixture
def echo_server():
    """An OpenAI-compatible endpoint that rejects every key by quoting it back, as some servers do."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            key = self.headers.get("Authorization", "").removeprefix("Bearer ")
            body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}", "code": "invalid_api_key"}})
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_a_provider_quoting_the_literal_key_leaks_it_nowhere(tmp_path, echo_server, caplog):
    text = f"""
model_list:
  - model_name: echo
    litellm_params: {{model: openai/echo, api_base: "{echo_server}", api_key: {LITERAL_KEY}}}
  - model_name: echo-too
    litellm_params: {{model: openai/echo, api_base: "{echo_server}", api_key: {LITERAL_KEY}}}
router_settings: {{num_retries: 0, fallbacks: [{{echo: [echo-too]}}]}}
"""
    c = completer(tmp_path, text)
    with caplog.at_level(logging.DEBUG), pytest.raises(ModelError, match="API key was rejected") as err:
        run(c, "echo")
    assert "[redacted]" in str(err.value) and LITERAL_KEY not in str(err.value)
    assert err.value.__cause__ is None  # the provider's exception, which quotes the key, is not chained
    assert LITERAL_KEY not in caplog.text
    assert all(LITERAL_KEY not in r.getMessage() for r in caplog.records)


def test_router_config_is_importable_without_litellm():
    import subprocess
    import sys

    code = "import sys, fusion_core.router; assert 'litellm' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PROJECT_ROOT)
    assert RouterConfig.__module__ == "fusion_core.router"


def test_a_batch_spreads_over_the_pool_and_records_its_endpoints_without_keys(tmp_path, monkeypatch, capsys):
    from fusion_core import cli
    from fusion_core.batch import RESULTS, read_results

    monkeypatch.setenv("FUSION_ROUTER_CONFIG", str(write(tmp_path, CONFIG)))
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps({"id": f"p{i}", "prompt": f"question {i}"}) + "\n" for i in range(3)))
    out = tmp_path / "out"
    args = ["batch", "--input", str(path), "--out", str(out), "--model", "pool", "--fusor", "flaky", "--n", "4",
            "--selector", "mbr", "--no-eval", "--json"]  # fmt: skip
    assert cli.main(args) == 0, capsys.readouterr().err
    records = read_results(out / RESULTS)
    assert len(records) == 3
    answers = {c["text"] for r in records for c in r["candidates"]}
    assert answers == POOL  # 12 candidates from both deployments of the group
    assert all(r["fusion"]["text"] in POOL for r in records)  # the failing fusor group fell back to the pool
    manifest = (out / "experiment.json").read_text()
    assert LITERAL_KEY not in manifest and "node-a-env-value" not in manifest and "pw@" not in manifest
    groups = {g["name"]: g for g in json.loads(manifest)["router"]["groups"]}
    assert groups["pool"]["deployments"] == 2
