"""Experiment analysis tables from hand-built records, with numbers worked out by hand."""

import numpy as np
import pytest

from fusion_core import analysis, judging
from fusion_core.batch_config import BatchConfig
from fusion_core.metrics import beats_oracle, metric_summary

CONFIG = BatchConfig(models=["m"], fusor_model="f", n=2, scaling=[1, 2], eval_judge_model="j", selector="mbr")


def verdicts(a, b, winners):
    """Both orders of one pair; `winners` are the winning systems (or "tie"), first order first."""
    return [
        {"system_a": a, "system_b": b, "first": first, "verdict": "x", "winner": w, "model": "j", "error": None}
        for first, w in zip((a, b), winners, strict=True)
    ]


def scores(systems):
    return {name: {"chrf": chrf, "bleu": chrf / 10} for name, chrf in systems.items()}


def records():
    a = {
        "id": "a", "language": "en", "status": "done", "reference": "ref",
        "judgements": verdicts("fusion", "sample", ["fusion", "fusion"])  # 1
        + verdicts("fusion@1", "sample", ["tie", "tie"])  # 0.5
        + verdicts("bon", "sample", ["bon", "sample"])  # 0.5
        + verdicts("bon@1", "sample", ["tie", "tie"]),  # 0.5
        "metrics": {"systems": scores({"fusion": 60, "bon": 50, "fusion@1": 40, "bon@1": 30, "oracle": 55})},
        "scaling": [{"n": 1, "oracle_chrf": 30.0}, {"n": 2, "oracle_chrf": 55.0}],
        "attribution": {"shares": {"0": 0.6, "1": 0.3, "novel": 0.1}},
        "usage": {"prompt_tokens": 100, "completion_tokens": 10, "cost": 0.01}, "time_s": 1.5,
    }  # fmt: skip
    b = {
        "id": "b", "language": "fr", "status": "done", "reference": "ref",
        "judgements": verdicts("fusion", "sample", ["sample", "sample"])  # 0
        + verdicts("fusion@1", "sample", ["fusion@1", "fusion@1"])  # 1
        + verdicts("bon", "sample", ["bon", "bon"])  # 1
        + verdicts("bon@1", "sample", ["tie", "tie"]),  # 0.5
        "metrics": {"systems": scores({"fusion": 40, "bon": 50, "fusion@1": 20, "bon@1": 10, "oracle": 50})},
        "scaling": [{"n": 1, "oracle_chrf": 10.0}, {"n": 2, "oracle_chrf": 50.0}],
        "attribution": {"shares": {"1": 0.9, "0": 0.02, "novel": 0.08}},
        "usage": {"prompt_tokens": 50, "completion_tokens": 5, "cost": None}, "time_s": 0.5,
    }  # fmt: skip
    c = {
        "id": "c", "language": "en", "status": "done", "answer": "18",
        "candidates": [{"index": 0, "text": "The answer is 17", "error": None},
                       {"index": 1, "text": "The answer is 18", "error": None}],
        "correct": {"fusion": True, "bon": False, "sample": False, "fusion@1": False, "bon@1": False, "oracle": True},
        "attribution": None,
        "usage": {"prompt_tokens": 20, "completion_tokens": 2, "cost": 0.02}, "time_s": 1.0,
    }  # fmt: skip
    d = {"id": "d", "language": "de", "status": "failed", "error": "every candidate failed: boom\ndetails"}
    return [a, b, c, d]


def test_the_judgement_frame_has_one_row_per_call_with_item_and_language():
    frame = analysis.judgement_frame(records())
    assert len(frame) == 16
    assert frame.groupby("item_id")["language"].first().to_dict() == {"a": "en", "b": "fr"}
    assert set(frame.columns) >= {"item_id", "language", "system_a", "system_b", "first", "winner"}


def test_judge_win_rates_are_per_language_and_pooled():
    rates = analysis.judge_win_rates(records(), rounds=200, seed=3).set_index(["language", "system", "opponent"])
    assert rates.loc[("en", "fusion", "sample"), "win_rate"] == 1.0
    assert rates.loc[("fr", "fusion", "sample"), "win_rate"] == 0.0
    pooled = rates.loc[("all", "fusion", "sample")]
    assert pooled["win_rate"] == 0.5 and pooled["n"] == 2 and (pooled["wins"], pooled["losses"]) == (1, 1)
    lo, hi = judging.bootstrap_mean(np.array([1.0, 0.0]), 200, np.random.default_rng(3), 0.95)
    assert (pooled["lo"], pooled["hi"]) == (lo, hi)
    assert rates.loc[("all", "sample", "fusion"), "win_rate"] == 0.5


def test_no_judgements_give_an_empty_win_rate_table():
    assert analysis.judge_win_rates([records()[2]]).empty


def value(frame, n, method, measure):
    row = frame[frame["n"].eq(n) & frame["method"].eq(method) & frame["measure"].eq(measure)]
    assert len(row) == 1, (n, method, measure)
    return row.iloc[0]


def test_scaling_curves_for_win_rate_chrf_and_accuracy():
    frame = analysis.scaling_frame(records(), CONFIG, rounds=100)
    assert list(frame.columns[:6]) == ["n", "method", "measure", "value", "lo", "hi"]
    expected = {
        (1, "fusion", "win_rate"): 0.75, (2, "fusion", "win_rate"): 0.5,
        (1, "bon", "win_rate"): 0.5, (2, "bon", "win_rate"): 0.75,
        (1, "fusion", "chrf"): 30.0, (2, "fusion", "chrf"): 50.0,
        (1, "bon", "chrf"): 20.0, (2, "bon", "chrf"): 50.0,
        (1, "oracle", "chrf"): 20.0, (2, "oracle", "chrf"): 52.5,
        (1, "fusion", "accuracy"): 0.0, (2, "fusion", "accuracy"): 1.0,
        (1, "bon", "accuracy"): 0.0, (2, "bon", "accuracy"): 0.0,
        (1, "oracle", "accuracy"): 0.0, (2, "oracle", "accuracy"): 1.0,
    }  # fmt: skip
    assert {(r.n, r.method, r.measure): r.value for r in frame.itertuples()} == pytest.approx(expected)
    assert len(frame) == len(expected)
    assert value(frame, 1, "bon", "win_rate")[["lo", "hi"]].tolist() == [0.5, 0.5]  # a tie on every item
    chrf = value(frame, 2, "oracle", "chrf")
    assert chrf["lo"] <= 52.5 <= chrf["hi"] and chrf["items"] == 2
    assert value(frame, 2, "oracle", "accuracy")["items"] == 1
    assert list(dict.fromkeys(frame["measure"])) == ["win_rate", "chrf", "accuracy"]


def test_scaling_win_rates_use_the_baseline_when_there_is_one():
    config = BatchConfig(models=["m"], fusor_model="f", n=2, scaling=[1, 2], baseline_model="base")
    record = {
        "id": "x", "status": "done",
        "judgements": verdicts("fusion", "baseline", ["fusion", "tie"]) + verdicts("fusion", "sample", ["sample"] * 2),
    }  # fmt: skip
    frame = analysis.scaling_frame([record], config, rounds=50)
    assert frame[["n", "method", "measure", "value"]].values.tolist() == [[2, "fusion", "win_rate", 0.75]]


def test_attribution_shares_by_index_rank_novel_and_contributors():
    tables = analysis.attribution_frame(records())
    assert len(tables.items) == 6 and set(tables.items["source"]) == {"0", "1", "novel"}
    assert tables.by_index.set_index("index")["share"].to_dict() == pytest.approx({0: 0.31, 1: 0.6})
    assert tables.by_rank.set_index("rank")["share"].to_dict() == pytest.approx({1: 0.75, 2: 0.16})
    assert tables.novel == pytest.approx(0.09)
    assert tables.contributors.set_index("item_id")["contributors"].to_dict() == {"a": 2, "b": 1}
    assert tables.mean_contributors == 1.5
    assert analysis.attribution_frame([records()[2]]).empty


def test_the_metric_frame_feeds_the_summaries_and_beats_oracle():
    frame = analysis.metric_frame(records())
    assert len(frame) == 10 and set(frame["item_id"]) == {"a", "b"}
    summary = metric_summary(frame).set_index(["language", "system"])
    assert summary.loc[("all", "fusion"), "chrf"] == 50.0 and summary.loc[("all", "fusion"), "bleu"] == 5.0
    beats = beats_oracle(frame).set_index("language")
    assert beats.loc["all", "beats"] == 0.5 and beats.loc["all", "mean_diff"] == -2.5
    assert beats.loc["en", "beats"] == 1.0 and beats.loc["fr", "at_least"] == 0.0


def test_accuracy_rows_and_summary():
    frame = analysis.accuracy_frame(records())
    assert len(frame) == 6 and set(frame["item_id"]) == {"c"}
    summary = analysis.accuracy_summary(frame).set_index(["language", "system"])
    assert summary.loc[("all", "fusion"), "accuracy"] == 1.0 and summary.loc[("en", "bon"), "accuracy"] == 0.0
    assert summary.loc[("all", "oracle"), "n"] == 1


def test_the_overview_counts_tokens_cost_time_and_failures():
    found = analysis.overview(records())
    assert (found.done, found.failed, found.finished) == (3, 1, 4)
    assert (found.prompt_tokens, found.completion_tokens) == (170, 17)
    assert found.cost == pytest.approx(0.03) and found.time_s == 3.0 and found.mean_time_s == 1.0
    assert found.failures.to_dict("records") == [{"error": "every candidate failed: boom", "items": 1, "ids": "d"}]


def test_an_overview_without_costs_says_unknown():
    found = analysis.overview([{"id": "x", "status": "done", "usage": {"prompt_tokens": 1, "cost": None}}])
    assert found.cost is None and found.failures.empty
