"""Exports: SFT examples, DPO pairs (judge verdicts and human votes), Parquet tables, downloads and the CLI."""

import asyncio
import io
import json
import re
import zipfile

import pandas as pd
import pytest

from fusion_core import cli
from fusion_core.batch import RESULTS, BatchRunner, open_experiment
from fusion_core.batch_config import BatchConfig
from fusion_core.batch_input import load_items
from fusion_core.errors import ConfigError
from fusion_core.experiments import ExperimentStore
from fusion_core.exports import (
    TABLES,
    experiment_tables,
    export_bytes,
    jsonl_bytes,
    judge_pairs,
    parquet_bytes,
    preference_pairs,
    sft_records,
    vote_pairs,
    write_parquet,
)
from fusion_core.store import Store
from fusion_core.testing import FakeCompleter
from fusion_core.votes import VoteStore

SECRET = "sk-test-0123456789abcdefghijklmnop"
SKIP_ORACLE = "skipped 3 prompts without an answer from oracle"


def verdict(a, b, first, winner, verdict_=None):
    """One judge record: `winner` is a system name, "tie" or None (no verdict)."""
    if verdict_ is None:
        verdict_ = None if winner is None else "tie" if winner == "tie" else "first" if winner == first else "second"
    return {"system_a": a, "system_b": b, "first": first, "verdict": verdict_, "winner": winner, "error": None}


def record(item_id, language="en", **kw):
    """A done record with three candidates, fusion, Best-of-N (candidate 1) and a sample."""
    outputs = {"fusion": f"fused {item_id}", "bon": f"cand {item_id} 1", "sample": f"cand {item_id} 0"}
    base = {
        "id": item_id, "prompt": f"prompt {item_id}", "language": language, "task": "open", "reference": None,
        "answer": None, "extra": {}, "status": "done", "error": None,
        "candidates": [
            {"index": i, "model": "m", "text": f"cand {item_id} {i}", "error": None, "prompt_tokens": 3,
             "completion_tokens": 4, "cost": None, "latency_s": 0.1}
            for i in range(3)
        ],
        "bon": {"index": 1, "method": "mbr", "scores": [0.2, 0.9, 0.1], "rationale": "", "model": None},
        "fusion": {"text": f"fused {item_id}", "model": "fusor", "warnings": []},
        "attribution": {"shares": {"0": 0.5, "1": 0.25, "2": 0.0, "novel": 0.25}},
        "scaling": [
            {"n": 1, "bon_index": 0, "bon_error": None, "fusion_text": "f1", "fusion_error": None,
             "usage": {"fusion": {"prompt_tokens": 5, "completion_tokens": 6, "cost": None}}},
            {"n": 3, "bon_index": 1, "bon_error": None, "fusion_text": f"fused {item_id}", "fusion_error": None},
        ],
        "outputs": outputs, "judgements": [], "usage": {"prompt_tokens": 10, "completion_tokens": 20, "cost": 0.5},
        "time_s": 1.5, "run_id": None, "finished_at": "2026-01-02T03:04:05+00:00",
    }  # fmt: skip
    return base | kw


def failed(item_id):
    return {"id": item_id, "prompt": f"prompt {item_id}", "language": "en", "task": None, "status": "failed",
            "error": f"cannot reach m with key {SECRET}", "candidates": [], "outputs": {}}  # fmt: skip


def test_sft_lines_parse_back_with_the_exact_messages():
    records = [record("a"), failed("b"), record("c", outputs={"bon": "only bon"}), record("d", language="de")]
    export = sft_records(records, experiment_id="E1")
    lines = [json.loads(line) for line in jsonl_bytes(export.rows).decode("utf-8").splitlines()]
    assert [line["id"] for line in lines] == ["a", "d"]
    assert lines[0] == {
        "messages": [{"role": "user", "content": "prompt a"}, {"role": "assistant", "content": "fused a"}],
        "id": "a", "language": "en", "task": "open", "source": "fusion", "experiment_id": "E1",
    }  # fmt: skip
    assert export.skipped == {"failed prompts": 1, "prompts without a fused answer": 1}
    assert export.skipped_text() == "skipped 1 failed prompts, 1 prompts without a fused answer"


def test_sft_of_another_system_and_the_filters():
    warned = record("w", fusion={"text": "fused w", "model": "f", "warnings": ["the fusor hit max_tokens"]})
    records = [record("a"), record("d", language="de"), warned, record("s", outputs={"fusion": "tiny"}), failed("x")]
    bon = sft_records(records, "bon")
    assert [r["messages"][1]["content"] for r in bon.rows] == ["cand a 1", "cand d 1", "cand w 1"]
    assert bon.skipped["prompts without a Best-of-N answer"] == 1 and "experiment_id" not in bon.rows[0]
    kept = sft_records(records, languages=["en"], min_chars=5, skip_warnings=True, include_failed=True)
    assert [r["id"] for r in kept.rows] == ["a"]
    assert kept.skipped == {
        "prompts in other languages": 1, "fused answers with warnings": 1, "answers shorter than 5 characters": 1,
        "prompts without a fused answer": 1,
    }  # fmt: skip


def test_judge_pairs_keep_only_position_consistent_wins():
    judgements = [
        verdict("fusion", "bon", "fusion", "fusion"), verdict("fusion", "bon", "bon", "fusion"),  # consistent
        verdict("fusion", "sample", "fusion", "fusion"), verdict("fusion", "sample", "sample", "sample"),  # split
        verdict("bon", "sample", "bon", "tie"), verdict("bon", "sample", "sample", "tie"),  # tie
        verdict("fusion@1", "sample", "fusion@1", "sample"), verdict("fusion@1", "sample", "sample", None),  # one order
        verdict("bon@1", "sample", "bon@1", "tie"), verdict("bon@1", "sample", "sample", "bon@1"),  # tie + win: split
        verdict("sample", "bon", "bon", "sample"), verdict("bon", "sample", "sample", "sample"),  # re-judged, swapped
    ]  # fmt: skip
    outputs = {"fusion": "F", "bon": "B", "sample": "S", "fusion@1": "F1", "bon@1": "B1"}
    records = [record("a", judgements=judgements[:10], outputs=outputs), record("b"), failed("c")]
    records.append(record("d", judgements=judgements[10:], outputs=outputs))
    export = judge_pairs(records)
    assert [(r["id"], r["chosen_system"], r["rejected_system"]) for r in export.rows] == [
        ("a", "fusion", "bon"),
        ("d", "sample", "bon"),
    ]
    first = export.rows[0]
    assert (first["prompt"], first["chosen"], first["rejected"]) == ("prompt a", "F", "B")
    assert (first["source"], first["margin"], first["n_votes"], first["language"]) == ("judge", 2, 2, "en")
    assert export.skipped == {
        "pairs the judge split on (position-inconsistent)": 2, "tied pairs": 1,
        "pairs without a verdict in both orders": 1, "prompts without judgements": 1, "failed prompts": 1,
    }  # fmt: skip
    only = judge_pairs(records, systems={"bon", "sample"}, conversational=True)
    assert [r["chosen_system"] for r in only.rows] == ["sample"]
    assert only.rows[0]["prompt"] == [{"role": "user", "content": "prompt d"}]
    assert only.rows[0]["chosen"] == [{"role": "assistant", "content": "S"}]
    assert only.rows[0]["rejected"] == [{"role": "assistant", "content": "B"}]


def test_judge_pairs_skip_a_win_between_identical_answers():
    judgements = [verdict("fusion", "bon", "fusion", "bon"), verdict("fusion", "bon", "bon", "bon")]
    export = judge_pairs([record("a", judgements=judgements, outputs={"fusion": "same", "bon": "same "})])
    assert export.rows == [] and export.skipped == {"pairs with identical answers": 1}


def vote(votes, cid, system, a, b, voter, left="a"):
    """Vote for `system` (one of the comparison's systems a and b, "tie" or "bad"), output `left` on the left."""
    if system in ("tie", "bad"):
        return votes.cast_vote(cid, voter, left, system, voter_name=f"Name {voter}")
    winner_output = "a" if system == a else "b"
    return votes.cast_vote(cid, voter, left, "left" if winner_output == left else "right", voter_name=f"Name {voter}")


@pytest.fixture
def voted(sqlite_url):
    with Store(sqlite_url) as store:
        votes = VoteStore(store, max_votes_per_minute=None)
        ids = {
            name: votes.add_comparison(f"prompt {name}", f"{name} A", f"{name} B", a, b, language=lang, queue="q")
            for name, a, b, lang in [
                ("win", "fusion", "bon", "en"), ("even", "fusion", "sample", "en"), ("ties", "fusion", "bon", "de"),
                ("none", "bon", "sample", "en"), ("b_wins", "fusion", "bon", "de"),
            ]
        }  # fmt: skip
        votes.add_comparison("elsewhere", "x", "y", "fusion", "bon", queue="other")
        for voter, (system, left) in enumerate([("fusion", "a"), ("fusion", "b"), ("bon", "a"), ("tie", "b")]):
            vote(votes, ids["win"], system, "fusion", "bon", f"v{voter}", left)
        vote(votes, ids["even"], "fusion", "fusion", "sample", "v1", "b")
        vote(votes, ids["even"], "sample", "fusion", "sample", "v2", "a")
        vote(votes, ids["ties"], "tie", "fusion", "bon", "v1")
        vote(votes, ids["ties"], "bad", "fusion", "bon", "v2")
        vote(votes, ids["b_wins"], "bon", "fusion", "bon", "v3", "b")
        yield votes, ids


def test_comparisons_frame_counts_votes_per_system_without_voters(voted):
    votes, ids = voted
    frame = votes.comparisons_frame("q")
    assert list(frame["comparison_id"]) == list(ids.values())
    counts = frame.set_index("comparison_id").loc[ids["win"], ["n_votes", "votes_a", "votes_b", "ties", "bad"]]
    assert counts.tolist() == [4, 2, 1, 1, 0]
    assert frame.set_index("comparison_id").loc[ids["none"], "n_votes"] == 0
    assert not {"voter_id", "voter_name"} & set(frame.columns)
    assert len(votes.comparisons_frame()) == 6


def test_vote_pairs_pick_the_majority_and_skip_ties(voted):
    votes, ids = voted
    export = vote_pairs(votes.comparisons_frame("q"))
    assert [(r["id"], r["chosen_system"], r["chosen"], r["rejected"]) for r in export.rows] == [
        (ids["win"], "fusion", "win A", "win B"),
        (ids["b_wins"], "bon", "b_wins B", "b_wins A"),
    ]
    assert (export.rows[0]["margin"], export.rows[0]["n_votes"], export.rows[0]["source"]) == (1, 4, "votes")
    assert export.skipped == {"comparisons without a majority": 2, "comparisons without votes": 1}
    text = jsonl_bytes(export.rows).decode()
    assert "Name v" not in text and '"v1"' not in text and "voter" not in text
    german = vote_pairs(votes.comparisons_frame("q"), languages=["de"], conversational=True)
    assert [r["chosen"] for r in german.rows] == [[{"role": "assistant", "content": "b_wins B"}]]


def test_vote_pairs_of_an_experiment_keep_its_runs_only(voted):
    votes, _ids = voted
    frame = votes.comparisons_frame("q")
    assert preference_pairs("votes", [record("a", run_id="r1")], frame).rows == []
    assert len(preference_pairs("votes", None, frame).rows) == 2
    with pytest.raises(ConfigError, match="comparisons_frame"):
        preference_pairs("votes", [record("a")])
    with pytest.raises(ConfigError, match="judge or votes"):
        preference_pairs("people", [record("a")])


def translation(item_id):
    systems = {"fusion": {"chrf": 60.0, "bleu": 30.0}, "bon": {"chrf": 50.0, "bleu": 20.0}}
    scored = {"systems": systems, "candidates": [{"chrf": 40.0, "bleu": 10.0}, {"chrf": 50.0, "bleu": 20.0}, None]}
    return record(item_id, reference="ref", metrics=scored, correct={"fusion": True, "bon": False, "oracle": True})


def test_parquet_tables_round_trip(tmp_path, monkeypatch):
    monkeypatch.setenv("PROVIDER_API_KEY", SECRET)
    judgements = [verdict("fusion", "bon", "fusion", "fusion"), verdict("fusion", "bon", "bon", None)]
    judgements[1]["error"] = SECRET
    records = [translation("t"), record("a", judgements=judgements), failed("x")]
    records[1]["candidates"][2] |= {"text": "", "error": f"rate limited for {SECRET}"}
    tables = experiment_tables(records)
    paths = write_parquet(tables, tmp_path / "tables")
    assert [p.name for p in paths] == [f"{name}.parquet" for name in TABLES]
    back = {name: pd.read_parquet(tmp_path / "tables" / f"{name}.parquet") for name in TABLES}
    sizes = {name: len(frame) for name, frame in back.items()}
    assert sizes == {"items": 3, "candidates": 6, "systems": 7, "scaling": 4, "judgements": 2, "attribution": 8}
    for name in TABLES:
        pd.testing.assert_frame_equal(back[name], tables[name])
    items = back["items"].set_index("item_id")
    assert items.loc["t", "fusion_text"] == "fused t" and items.loc["t", "bon_text"] == "cand t 1"
    assert items.loc["x", "status"] == "failed" and pd.isna(items.loc["x", "bon_index"])
    assert items.loc["a", "finished_at"] == pd.Timestamp("2026-01-02T03:04:05Z")
    assert items.loc["a", "prompt_tokens"] == 10 and items.loc["a", "fusion_warnings"] == "[]"
    systems = back["systems"].set_index(["item_id", "system"])
    assert systems.loc[("t", "fusion"), "chrf"] == 60.0 and bool(systems.loc[("t", "fusion"), "correct"])
    assert pd.isna(systems.loc[("t", "oracle"), "text"]) and bool(systems.loc[("t", "oracle"), "correct"])
    candidates = back["candidates"]
    assert candidates.loc[candidates["item_id"].eq("t"), "chrf"].tolist()[:2] == [40.0, 50.0]
    assert candidates["is_bon"].tolist()[:3] == [False, True, False]
    assert candidates["share"].tolist()[:3] == [0.5, 0.25, 0.0]
    scaling = back["scaling"]
    assert scaling["n"].tolist() == [1, 3, 1, 3] and scaling["fusion_chrf"].tolist()[1] == 60.0
    assert scaling["prompt_tokens"].tolist()[:2] == [5, pd.NA]
    attribution = back["attribution"]
    assert attribution["source"].tolist()[:4] == ["0", "1", "2", "novel"]
    assert attribution["candidate"].tolist()[:4] == [0, 1, 2, pd.NA]
    everything = pd.concat([back["items"]["error"], back["candidates"]["error"], back["judgements"]["error"]])
    errors = everything.dropna().tolist()
    assert len(errors) == 3 and all(SECRET not in e and "[redacted]" in e for e in errors)


def test_tables_of_no_records_still_have_their_columns(tmp_path):
    tables = experiment_tables([])
    write_parquet(tables, tmp_path)
    back = pd.read_parquet(tmp_path / "judgements.parquet")
    assert len(back) == 0 and list(back.columns) == list(tables["judgements"].columns)


def test_download_bytes_for_every_kind():
    wins = [verdict("fusion", "bon", "fusion", "fusion"), verdict("fusion", "bon", "bon", "fusion")]
    records = [record("a", judgements=wins), record("b")]
    sft = export_bytes("sft", records, system="sample").decode().splitlines()
    assert [json.loads(line)["messages"][1]["content"] for line in sft] == ["cand a 0", "cand b 0"]
    dpo = [json.loads(line) for line in export_bytes("dpo", records, experiment_id="E").decode().splitlines()]
    assert [(d["chosen"], d["rejected"], d["experiment_id"]) for d in dpo] == [("fused a", "cand a 1", "E")]
    archive = zipfile.ZipFile(io.BytesIO(export_bytes("parquet", records)))
    assert archive.namelist() == [f"{name}.parquet" for name in TABLES]
    assert len(pd.read_parquet(io.BytesIO(archive.read("candidates.parquet")))) == 6
    one = pd.read_parquet(io.BytesIO(export_bytes("parquet", records, table="items")))
    assert one["item_id"].tolist() == ["a", "b"]
    with pytest.raises(ConfigError, match="choose one of items"):
        parquet_bytes(experiment_tables(records), "votes")
    with pytest.raises(ConfigError, match="sft, dpo, parquet"):
        export_bytes("csv", records)


def reply(model, messages, params):
    """Candidates name their seed; the fusor fuses; the judge prefers the fused answer in either position."""
    text = messages[-1]["content"]
    if model == "judge":
        first = re.search(r"\[Start of answer A\]\n(.*?)\n\[End of answer A\]", text, re.S).group(1)
        second = re.search(r"\[Start of answer B\]\n(.*?)\n\[End of answer B\]", text, re.S).group(1)
        return "[[A]]" if "fused" in first else "[[B]]" if "fused" in second else "[[C]]"
    if model == "fusor":
        return "the fused answer"
    return f"{text.split()[0]} cand-{params.seed} answer"


@pytest.fixture
def experiment(sqlite_url, tmp_path, monkeypatch):
    """A finished 3-prompt experiment (stored runs, judged) in the database FUSION_DATABASE_URL names."""
    monkeypatch.setenv("FUSION_DATABASE_URL", sqlite_url)
    rows = [{"id": f"p{i}", "prompt": f"prompt{i} please", "language": "en"} for i in range(3)]
    path = tmp_path / "in.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    cfg = BatchConfig(models=["m"], fusor_model="fusor", n=3, selector="mbr", eval_judge_model="judge")
    out = tmp_path / "out"
    with Store(sqlite_url) as store:
        experiments = ExperimentStore(store)
        eid, cfg, _notes = open_experiment(experiments, cfg, loaded=load_items(path), out_dir=out)
        runner = BatchRunner(experiments, eid, cfg, FakeCompleter(default=reply), store=store, out_dir=out)
        asyncio.run(runner.run())
    return eid, out / RESULTS


def test_cli_writes_sft_dpo_and_parquet_from_the_database(experiment, tmp_path, capsys):
    eid, _results = experiment
    sft, dpo, tables = tmp_path / "x" / "sft.jsonl", tmp_path / "dpo.jsonl", tmp_path / "tables"
    assert cli.main(["export", "--experiment", eid, "--format", "sft", "--out", str(sft)]) == 0
    assert capsys.readouterr().out == f"wrote 3 SFT examples to {sft}\n"
    lines = [json.loads(line) for line in sft.read_text().splitlines()]
    assert lines[0]["messages"][1] == {"role": "assistant", "content": "the fused answer"}
    assert {line["experiment_id"] for line in lines} == {eid}
    assert cli.main(["export", "--experiment", eid, "--format", "sft", "--system", "oracle", "--out", str(sft)]) == 0
    assert capsys.readouterr().out == f"wrote 0 SFT examples to {sft}; {SKIP_ORACLE}\n"
    assert cli.main(["export", "--experiment", eid, "--format", "dpo", "--out", str(dpo)]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote 6 preference pairs (judge) to {dpo}; skipped 3 tied pairs")
    pairs = [json.loads(line) for line in dpo.read_text().splitlines()]
    assert {(p["chosen_system"], p["chosen"]) for p in pairs} == {("fusion", "the fused answer")}
    assert cli.main(["export", "--experiment", eid, "--format", "parquet", "--out", str(tables)]) == 0
    assert "wrote 6 Parquet tables" in capsys.readouterr().out
    assert len(pd.read_parquet(tables / "candidates.parquet")) == 9


def test_cli_reads_results_jsonl_and_votes_of_the_experiment(experiment, sqlite_url, tmp_path, capsys):
    eid, results = experiment
    out = tmp_path / "from-file.jsonl"
    assert cli.main(["export", "--from-results", str(results), "--format", "sft", "--out", str(out)]) == 0
    assert capsys.readouterr().out == f"wrote 3 SFT examples to {out}\n"
    assert json.loads(out.read_text().splitlines()[0])["experiment_id"] == eid  # from experiment.json beside it
    with Store(sqlite_url) as store:
        runs = [store.get_run(r["run_id"]) for r in ExperimentStore(store).results(eid)]
        votes = VoteStore(store, max_votes_per_minute=None)
        assert votes.build_queue(runs, queue="q") == 3
        votes.add_comparison("not in the experiment", "x", "y", "fusion", "bon", queue="q")
        for i, c in enumerate(votes.comparisons_frame("q").itertuples()):
            votes.cast_vote(c.comparison_id, "voter", "a", "left" if i < 2 else "tie")
    args = ["export", "--experiment", eid, "--format", "dpo", "--source", "votes", "--queue", "q", "--out", str(out)]
    assert cli.main(args) == 0
    no_majority = "skipped 1 comparisons without a majority"
    assert capsys.readouterr().out == f"wrote 2 preference pairs (votes) to {out}; {no_majority}\n"
    assert [json.loads(line)["chosen"] for line in out.read_text().splitlines()] == ["the fused answer"] * 2
    assert cli.main(args[:1] + args[3:]) == 0  # no experiment: the whole queue
    assert capsys.readouterr().out.startswith(f"wrote 2 preference pairs (votes) to {out}; skipped 2 comparisons")


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--format", "xlsx", "--out", "{tmp}/x"], "unknown --format 'xlsx'; use sft, dpo, parquet"),
        (["--format", "sft", "--out", "{tmp}"], "is a folder; pass a file name such as"),
        (["--format", "sft", "--out", "{tmp}/file.txt/x.jsonl"], "cannot write"),
        (["--format", "parquet", "--out", "{tmp}/file.txt"], "is a file; for parquet pass a folder"),
        (["--format", "parquet", "--table", "votes", "--out", "{tmp}/t.parquet"], "unknown --table 'votes'"),
        (["--format", "dpo", "--source", "people", "--out", "{tmp}/x"], "unknown --source 'people'"),
        (["--format", "sft", "--source", "votes", "--out", "{tmp}/x"], "--source applies to --format dpo"),
        (["--format", "dpo", "--queue", "q", "--out", "{tmp}/x"], "add --source votes"),
        (["--format", "sft", "--from-results", "{tmp}/none.jsonl", "--out", "{tmp}/x"], "no such file"),
        (["--format", "sft", "--experiment", "nope", "--out", "{tmp}/x"], "no experiment 'nope'"),
    ],
)
def test_cli_bad_options_are_one_line_and_exit_2(experiment, tmp_path, capsys, extra, message):
    (tmp_path / "file.txt").write_text("not a folder")
    source = [] if {"--experiment", "--from-results"} & set(extra) else ["--experiment", experiment[0]]
    assert cli.main(["export", *source, *[e.format(tmp=tmp_path) for e in extra]]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err
    assert not (tmp_path / "x").exists()


def test_cli_needs_an_experiment_or_a_results_file(tmp_path, capsys):
    assert cli.main(["export", "--format", "parquet", "--out", str(tmp_path / "t")]) == 2
    assert "pass --experiment ID" in capsys.readouterr().err
