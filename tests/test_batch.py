"""Batch runs with the fake completer: results, resume, interruption, workers, N-scaling reuse, judging."""

import asyncio
import json
import re
import threading
from datetime import UTC, datetime, timedelta

import pytest

from fusion_core import analysis
from fusion_core.batch import RESULTS, BatchRunner, open_experiment, read_results
from fusion_core.batch_config import BatchConfig
from fusion_core.batch_input import load_items
from fusion_core.errors import ConfigError, ModelUnreachableError
from fusion_core.experiments import ExperimentStore
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter

N_PROMPTS = 6


def reply(model, messages, params):
    """Candidates name their seed; the fusor, judges and baseline say who they are."""
    text = messages[-1]["content"]
    if model == "judge":
        return "The first is better. [[A]]"
    if model == "fusor":
        shown = re.findall(r"cand-(\d+)", text)
        return f"fused from {len(set(shown))} candidates"
    if "FAIL" in text and model == "m":
        raise ModelUnreachableError("cannot reach m at http://127.0.0.1:9", model="m")
    return f"{text.split()[0]} cand-{params.seed} answer"


def input_file(tmp_path, n=N_PROMPTS, extra=None):
    rows = [{"id": f"p{i}", "prompt": f"prompt{i} please", "language": "en"} for i in range(n)]
    rows += extra or []
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def config(**kw):
    base = dict(models=["m"], fusor_model="fusor", n=3, selector="mbr", concurrency=2, eval_judge_model=None)
    return BatchConfig(**{**base, **kw})


@pytest.fixture
def store(sqlite_url):
    with Store(sqlite_url) as s:
        yield s


def start(store, tmp_path, cfg=None, out=None, path=None):
    experiments = ExperimentStore(store)
    loaded = load_items(path or input_file(tmp_path))
    out = out or tmp_path / "out"
    experiment_id, cfg, _notes = open_experiment(experiments, cfg or config(), loaded=loaded, out_dir=out)
    return experiments, experiment_id, cfg, out


def run(experiments, experiment_id, cfg, completer, out, **kw):
    runner = BatchRunner(experiments, experiment_id, cfg, completer, out_dir=out, **kw)
    return asyncio.run(runner.run())


def sampled_prompts(completer):
    return [c.messages[-1]["content"].split()[0] for c in completer.history if c.model == "m"]


def test_a_batch_writes_one_line_per_prompt_with_everything(store, tmp_path):
    experiments, eid, cfg, out = start(store, tmp_path)
    fake = FakeCompleter(default=reply)
    summary = run(experiments, eid, cfg, fake, out)
    records = read_results(out / RESULTS)
    assert [r["id"] for r in records] == [f"p{i}" for i in range(N_PROMPTS)]
    first = records[0]
    assert [c["text"] for c in first["candidates"]] == [f"prompt0 cand-{s} answer" for s in range(3)]
    assert first["fusion"]["text"] == "fused from 3 candidates"
    assert first["bon"]["method"] == "mbr"
    assert first["outputs"]["bon"] == first["candidates"][first["bon"]["index"]]["text"]
    assert set(first["attribution"]["shares"]) == {"0", "1", "2", "novel"}
    assert summary.progress.done == N_PROMPTS and summary.progress.failed == 0 and summary.left == 0
    assert summary.progress.prompt_tokens == sum(r["usage"]["prompt_tokens"] for r in records) > 0
    manifest = json.loads((out / "experiment.json").read_text())
    assert manifest["experiment_id"] == eid and manifest["config"]["n"] == 3
    assert json.loads((out / "summary.json").read_text())["progress"]["done"] == N_PROMPTS


def test_the_configuration_is_stored_and_rebuilds_the_batch(store, tmp_path):
    experiments, eid, cfg, _out = start(store, tmp_path, config(scaling=[1, 2], name="exp"))
    stored = BatchConfig.from_dict(experiments.get(eid).config)
    assert stored == cfg and stored.scaling == [1, 2] and stored.name == "exp"


def test_resume_skips_finished_prompts_without_duplicates(store, tmp_path):
    experiments, eid, cfg, out = start(store, tmp_path)
    first = FakeCompleter(default=reply)
    partial = run(experiments, eid, cfg, first, out, limit=2)
    assert partial.progress.done == 2 and partial.left == N_PROMPTS - 2
    assert len(read_results(out / RESULTS)) == 2
    # the same command again: the manifest in OUT names the experiment
    experiments2, eid2, cfg2, _ = start(store, tmp_path)
    assert eid2 == eid
    second = FakeCompleter(default=reply)
    summary = run(experiments2, eid2, cfg2, second, out)
    assert summary.progress.already == 2 and summary.progress.done == N_PROMPTS - 2
    done_before = set(sampled_prompts(first))
    assert done_before.isdisjoint(sampled_prompts(second))
    ids = [r["id"] for r in read_results(out / RESULTS)]
    assert ids == [f"p{i}" for i in range(N_PROMPTS)]


def test_resume_with_other_settings_is_refused(store, tmp_path):
    _experiments, eid, _cfg, _out = start(store, tmp_path)
    with pytest.raises(ConfigError, match=r"different settings \(n\)"):
        start(store, tmp_path, config(n=4))
    # speed settings may change
    _, same, cfg2, _ = start(store, tmp_path, config(concurrency=7))
    assert same == eid and cfg2.concurrency == 7


def test_an_interrupted_batch_gives_its_prompts_back_and_resumes(store, tmp_path):
    experiments, eid, cfg, out = start(store, tmp_path)
    slow = FakeCompleter(default=reply, delay=0.05)

    async def interrupt():
        task = asyncio.ensure_future(BatchRunner(experiments, eid, cfg, slow, out_dir=out).run())
        while len(read_results(out / RESULTS)) < 2:
            await asyncio.sleep(0.01)
        task.cancel()  # what Ctrl-C does to asyncio.run's task
        return await task

    summary = asyncio.run(interrupt())
    assert summary.interrupted and 0 < summary.left < N_PROMPTS
    assert experiments.get(eid).counts["running"] == 0  # nothing stays claimed by the stopped worker
    finished = {r["id"] for r in read_results(out / RESULTS)}
    resumed = FakeCompleter(default=reply)
    run(experiments, eid, cfg, resumed, out)
    assert finished.isdisjoint(sampled_prompts(resumed))
    assert sorted(r["id"] for r in read_results(out / RESULTS)) == sorted(f"p{i}" for i in range(N_PROMPTS))


def test_a_crashed_workers_prompt_is_taken_over_after_its_heartbeat_stops(store, tmp_path):
    experiments, eid, cfg, out = start(store, tmp_path)
    old = ExperimentStore(store, clock=lambda: datetime.now(UTC) - timedelta(minutes=10))
    crashed = old.claim(eid, "dead-worker")
    assert crashed.id == "p0"
    fake = FakeCompleter(default=reply)
    summary = run(experiments, eid, cfg, fake, out)
    assert summary.progress.done == N_PROMPTS and "prompt0" in sampled_prompts(fake)
    assert not old.finish(eid, "p0", "dead-worker", {"late": True})  # the dead worker cannot overwrite it


def test_a_live_workers_prompt_is_waited_for_not_duplicated(store, tmp_path):
    experiments, eid, cfg, out = start(store, tmp_path)
    held = experiments.claim(eid, "other-worker")
    fake = FakeCompleter(default=reply)

    def other_finishes():
        experiments.finish(eid, held.id, "other-worker", {"id": held.id, "status": "done", "by": "other"})

    timer = threading.Timer(0.5, other_finishes)
    timer.start()
    seen = []
    summary = run(
        experiments, eid, cfg, fake, out, stale_after_s=60, poll_s=0.1, on_progress=lambda p: seen.append(p.waiting)
    )
    timer.join()
    assert 1 in seen  # the progress said it was waiting for the other worker's prompt
    assert "prompt0" not in sampled_prompts(fake)
    assert summary.progress.done == N_PROMPTS - 1 and summary.left == 0
    assert read_results(out / RESULTS)[0]["by"] == "other"


def test_failed_prompts_do_not_sink_the_batch_and_are_retried(store, tmp_path):
    path = input_file(tmp_path, extra=[{"id": "bad", "prompt": "FAIL this one"}])
    experiments, eid, cfg, out = start(store, tmp_path, path=path)
    summary = run(experiments, eid, cfg, FakeCompleter(default=reply), out)
    assert summary.progress.done == N_PROMPTS and summary.progress.failed == 1
    [(error, ids)] = summary.failures.items()
    assert ids == ["bad"] and "cannot reach" in error
    bad = next(r for r in read_results(out / RESULTS) if r["id"] == "bad")
    assert bad["status"] == "failed" and "cannot reach" in bad["error"]
    assert experiments.retry_failed(eid) == 1
    again = run(experiments, eid, cfg, FakeCompleter(default=reply), out)
    assert again.progress.failed == 1 and again.progress.done == 0
    assert [r["id"] for r in read_results(out / RESULTS)].count("bad") == 1


def test_scaling_samples_once_and_fuses_every_prefix(store, tmp_path):
    experiments, eid, cfg, out = start(store, tmp_path, config(n=4, scaling=[1, 2, 3, 4]), path=input_file(tmp_path, 1))
    fake = FakeCompleter(default=reply)
    run(experiments, eid, cfg, fake, out)
    assert len([c for c in fake.history if c.model == "m"]) == 4  # N_max samples, reused by every k
    fusor_calls = [c.messages[-1]["content"] for c in fake.history if c.model == "fusor"]
    assert sorted(len(set(re.findall(r"cand-(\d+)", text))) for text in fusor_calls) == [1, 2, 3, 4]
    for text in fusor_calls:  # each prefix shows the first k candidates
        seeds = sorted(int(s) for s in set(re.findall(r"cand-(\d+)", text)))
        assert seeds == list(range(len(seeds)))
    [record] = read_results(out / RESULTS)
    assert [e["n"] for e in record["scaling"]] == [1, 2, 3, 4]
    assert record["outputs"]["fusion@2"] == "fused from 2 candidates"
    assert record["outputs"]["bon@1"] == record["candidates"][0]["text"]


def test_pairwise_judging_asks_both_orders(store, tmp_path):
    cfg = config(eval_judge_model="judge", scaling=[1, 3])
    experiments, eid, cfg, out = start(store, tmp_path, cfg, path=input_file(tmp_path, 1))
    fake = FakeCompleter(default=reply)
    run(experiments, eid, cfg, fake, out)
    [record] = read_results(out / RESULTS)
    judged = {(j["system_a"], j["system_b"], j["first"]) for j in record["judgements"]}
    for a, b in cfg.judged_pairs():
        if record["outputs"].get(a) != record["outputs"].get(b):
            assert {(a, b, a), (a, b, b)} <= judged
    asked = [j for j in record["judgements"] if not j.get("identical")]
    assert asked and all(j["winner"] == j["first"] for j in asked)  # the fake judge always prefers position A
    assert any(j.get("identical") for j in record["judgements"])  # bon@1 is the first sample: a tie unasked


def test_metrics_and_accuracy_use_references_and_answers(store, tmp_path):
    extra = [{"id": "t", "prompt": "prompt9 translate", "reference": "prompt9 cand-1 answer", "language": "fr"},
             {"id": "q", "prompt": "prompt8 math", "answer": "8"}]  # fmt: skip
    experiments, eid, cfg, out = start(store, tmp_path, path=input_file(tmp_path, 0, extra))
    run(experiments, eid, cfg, FakeCompleter(default=reply), out)
    by_id = {r["id"]: r for r in read_results(out / RESULTS)}
    metrics = by_id["t"]["metrics"]
    assert metrics["oracle_index"] == 1 and metrics["systems"]["oracle"]["chrf"] == pytest.approx(100.0)
    assert by_id["t"]["outputs"]["oracle"] == "prompt9 cand-1 answer"
    assert by_id["q"]["correct"]["fusion"] is False and "metrics" not in by_id["q"]


def test_restored_from_results_when_the_database_is_new(tmp_path, sqlite_url):
    with Store(sqlite_url) as store:
        experiments, eid, cfg, out = start(store, tmp_path)
        run(experiments, eid, cfg, FakeCompleter(default=reply), out, limit=3)
    with Store(f"sqlite:///{tmp_path / 'other.db'}") as fresh:
        experiments, eid2, cfg2, _ = start(fresh, tmp_path)
        assert eid2 == eid and experiments.get(eid).counts["done"] == 3
        fake = FakeCompleter(default=reply)
        run(experiments, eid, cfg2, fake, out)
        assert len(set(sampled_prompts(fake))) == N_PROMPTS - 3
    assert len(read_results(out / RESULTS)) == N_PROMPTS


def test_two_workers_share_an_experiment_without_duplicating_work(store_url, tmp_path):
    with Store(store_url) as store:
        experiments, eid, cfg, _ = start(store, tmp_path, path=input_file(tmp_path, 12))
        fakes = [FakeCompleter(default=reply, delay=0.01) for _ in range(2)]

        def worker(fake, name):
            out = tmp_path / name
            runner = BatchRunner(ExperimentStore(store), eid, cfg, fake, out_dir=out, worker=name, poll_s=0.1)
            asyncio.run(runner.run())

        threads = [threading.Thread(target=worker, args=(f, f"w{i}")) for i, f in enumerate(fakes)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        per_worker = [set(sampled_prompts(f)) for f in fakes]
        assert per_worker[0].isdisjoint(per_worker[1])
        assert len(per_worker[0] | per_worker[1]) == 12
        assert experiments.get(eid).counts["done"] == 12
        for name in ("w0", "w1"):  # every worker's results file ends with all of them
            assert len(read_results(tmp_path / name / RESULTS)) == 12


def test_a_database_error_stops_the_batch_without_losing_or_holding_anything(store, tmp_path, monkeypatch):
    from fusion_core.errors import StoreError

    experiments, eid, cfg, out = start(store, tmp_path, config(concurrency=1))
    finish, calls = experiments.finish, []

    def flaky(*args, **kwargs):
        calls.append(args)
        if len(calls) == 3:
            raise StoreError("cannot store the result: disk full")
        return finish(*args, **kwargs)

    monkeypatch.setattr(experiments, "finish", flaky)
    with pytest.raises(StoreError, match="disk full"):
        run(experiments, eid, cfg, FakeCompleter(default=reply), out)
    counts = experiments.get(eid).counts
    assert counts["done"] == 2 and counts["running"] == 0 and counts["pending"] == N_PROMPTS - 2
    assert [r["id"] for r in read_results(out / RESULTS)] == ["p0", "p1"]


def test_a_teacher_pool_batch_gives_fused_sft_data(store, tmp_path):
    from fusion_core.exports import sft_records

    def teacher_reply(model, messages, params):
        if model in ("t1", "t2", "t3"):
            return f"{model} says {messages[-1]['content'].split()[0]}"
        return reply(model, messages, params)

    cfg = config(models=["t1", "t2", "t3"], mode="teachers", n=1, eval_judge_model=None)
    experiments, eid, cfg, out = start(store, tmp_path, cfg, path=input_file(tmp_path, 2))
    fake = FakeCompleter(default=teacher_reply)
    run(experiments, eid, cfg, fake, out)
    records = read_results(out / RESULTS)
    assert [[c["model"] for c in r["candidates"]] for r in records] == [["t1", "t2", "t3"]] * 2
    fused = sft_records(records)
    assert [row["messages"][0]["content"] for row in fused.rows] == ["prompt0 please", "prompt1 please"]
    assert all(row["messages"][1] == {"role": "assistant", "content": r["fusion"]["text"]}
               for row, r in zip(fused.rows, records, strict=True))  # fmt: skip


def test_a_configuration_listing_only_some_fusion_options_is_the_same_configuration():
    partial = config(fusion={"strength": "balanced", "max_tokens": 1024})
    assert partial.differences(config(fusion={})) == []
    assert partial.fusion["persona"] == "" and partial.fusion["reasoning"] is False
    assert config(fusion={"strength": "aggressive"}).differences(partial) == ["fusion"]


def test_in_a_teacher_pool_the_teachers_take_turns_as_n_grows(store, tmp_path):
    cfg = config(models=["a", "b", "c"], mode="teachers", n=2, scaling=[1, 2, 3, 4])
    assert [cfg.scaling_subset(k) for k in (1, 2, 3, 4, 6)] == [[0], [0, 2], [0, 2, 4], [0, 1, 2, 4], list(range(6))]
    assert config(n=4).scaling_subset(2) == [0, 1]  # one model: the first k samples
    reference = "prompt0 cand-2 answer"  # the first sample of teacher b
    item = {"id": "t", "prompt": "prompt0 x", "reference": reference, "answer": "-2", "language": "en"}
    path = input_file(tmp_path, 0, [item])
    experiments, eid, cfg, out = start(store, tmp_path, cfg, path=path)
    fake = FakeCompleter(default=reply)
    run(experiments, eid, cfg, fake, out)
    assert sorted(c.params.seed for c in fake.history if c.model in ("a", "b", "c")) == list(range(6))  # sampled once
    shown = sorted(sorted({int(s) for s in re.findall(r"cand-(\d+)", c.messages[-1]["content"])})
                   for c in fake.history if c.model == "fusor")  # fmt: skip
    assert shown == [[0], [0, 1, 2, 3, 4, 5], [0, 1, 2, 4], [0, 2], [0, 2, 4]]
    [record] = read_results(out / RESULTS)
    by_n = {e["n"]: e for e in record["scaling"]}
    assert by_n[2]["candidates"] == [0, 2] and by_n[6]["candidates"] == list(range(6))
    assert by_n[1]["oracle_chrf"] < by_n[2]["oracle_chrf"] == pytest.approx(100.0)  # b's answer is in from N = 2
    assert record["outputs"]["bon@2"] in {record["candidates"][i]["text"] for i in (0, 2)}
    assert by_n[2]["bon_index"] in (0, 2)
    frame = analysis.scaling_frame([record], cfg, rounds=10)
    oracle = frame[frame["method"].eq("oracle") & frame["measure"].eq("accuracy")].set_index("n")["value"]
    assert oracle[1] == 0.0 and oracle[2] == 1.0  # only "cand-2" (teacher b) reads as -2
