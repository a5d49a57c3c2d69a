"""Reference metrics: sacrebleu's own numbers, the oracle, CJK tokenizers, short answers, summary tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import sacrebleu

from fusion_core.errors import ConfigError
from fusion_core.metrics import (
    answer_correct,
    beats_oracle,
    bleu,
    chrf_pp,
    corpus_scores,
    metric_summary,
    normalize_answer,
    reference_metrics,
    tokenizer_for,
)

REF = "The quick brown fox jumps over the lazy dog."
HYP = "A quick brown fox jumped over a lazy dog."


def test_sentence_scores_equal_sacrebleu():
    assert chrf_pp(HYP, REF) == pytest.approx(sacrebleu.sentence_chrf(HYP, [REF], word_order=2).score)
    assert bleu(HYP, REF) == pytest.approx(sacrebleu.sentence_bleu(HYP, [REF], tokenize="13a").score)
    assert bleu(HYP, REF, "fr") == pytest.approx(sacrebleu.sentence_bleu(HYP, [REF]).score)
    assert 0 < bleu(HYP, REF) < chrf_pp(HYP, REF) < 100
    assert chrf_pp(REF, REF) == pytest.approx(100.0)


@pytest.mark.parametrize("blank", ["", "   \n"])
def test_blank_hypothesis_scores_zero(blank):
    assert chrf_pp(blank, REF) == 0.0
    assert bleu(blank, REF) == 0.0


def test_corpus_scores_equal_sacrebleu():
    hyps = [HYP, "Hello world.", "It is raining today."]
    refs = [REF, "Hello, world!", "Today it rains."]
    scores = corpus_scores(hyps, refs)
    assert scores["chrf"] == pytest.approx(sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hyps, [refs]).score)
    zh = corpus_scores(["我喜欢猫。", "今天下雨。"], ["我很喜欢猫。", "今天下雨了。"], "zh-CN")
    assert zh["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(["我喜欢猫。", "今天下雨。"], [["我很喜欢猫。", "今天下雨了。"]], tokenize="zh").score
    )


def test_corpus_scores_reject_misaligned_input():
    with pytest.raises(ConfigError, match="one reference per hypothesis"):
        corpus_scores(["a", "b"], ["a"])
    with pytest.raises(ConfigError, match="at least one"):
        corpus_scores([], [])


@pytest.mark.parametrize(
    ("language", "tokenizer"),
    [
        ("zh", "zh"),
        ("zh-CN", "zh"),
        ("ZH_tw", "zh"),
        ("ja", "char"),
        ("ja-JP", "char"),
        ("KO", "char"),
        ("fr", "13a"),
        ("en-US", "13a"),
        (None, "13a"),
        ("", "13a"),
    ],
)
def test_tokenizer_for(language, tokenizer):
    assert tokenizer_for(language) == tokenizer


def test_cjk_tokenizers_need_no_extras_and_score_a_close_translation():
    cases = [
        ("ja", "私は毎朝コーヒーを飲みます。", "私は毎朝コーヒーを飲む。"),
        ("zh", "我每天早上喝咖啡。", "我每天早晨喝咖啡。"),
    ]
    for language, reference, hypothesis in cases:
        score = bleu(hypothesis, reference, language)
        expected = sacrebleu.sentence_bleu(hypothesis, [reference], tokenize=tokenizer_for(language)).score
        assert score == pytest.approx(expected)
        assert score > 20
        assert bleu(hypothesis, reference) < score  # 13a sees one "word" per sentence
        assert chrf_pp(hypothesis, reference) > 30
    assert bleu("안녕하세요 만나서 반갑습니다", "안녕하세요 만나서 반가워요", "ko") > 20


def test_reference_metrics_scores_systems_candidates_and_the_oracle():
    candidates = ["A fox jumps.", None, HYP, "The dog sleeps."]
    result = reference_metrics({"fusion": REF, "bon": "A fox jumps."}, candidates, REF)
    assert result["candidates"][1] is None
    assert result["candidates"][2] == {"chrf": pytest.approx(chrf_pp(HYP, REF)), "bleu": pytest.approx(bleu(HYP, REF))}
    assert result["oracle_index"] == 2
    assert result["oracle"] == result["candidates"][2]
    assert set(result["systems"]) == {"fusion", "bon", "oracle"}
    assert result["systems"]["oracle"] == result["oracle"]
    assert result["systems"]["fusion"]["chrf"] == pytest.approx(100.0)
    assert result["systems"]["bon"] == result["candidates"][0]


def test_oracle_ties_go_to_the_lowest_index_and_failed_systems_are_left_out():
    result = reference_metrics({"fusion": None}, [None, "Hello there.", "Hello there.", ""], "Hello there.", "en")
    assert result["oracle_index"] == 1
    assert result["candidates"][3] == {"chrf": 0.0, "bleu": 0.0}
    assert result["systems"] == {"oracle": result["candidates"][1]}


def test_reference_metrics_without_successful_candidates():
    result = reference_metrics({"fusion": "Hi."}, [None, None], "Hi.")
    assert result["oracle_index"] is None and result["oracle"] is None
    assert set(result["systems"]) == {"fusion"}
    with pytest.raises(ConfigError, match="another name"):
        reference_metrics({"oracle": "x"}, ["x"], "x")


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("42", "42"),
        ("42.0", "42"),
        ("1,000", "1000"),
        ("$12", "12"),
        ("3/4", "0.75"),
        ("\\frac{3}{4}", "0.75"),
        ("-1/3", "-1/3"),
        (".5", "0.5"),
        ("  New York! ", "newyork"),
        ("\\text{Paris}", "paris"),
    ],
)
def test_normalize_answer(raw, normal):
    assert normalize_answer(raw) == normal


@pytest.mark.parametrize(
    ("text", "answer", "correct"),
    [
        ("6 times 7 is 42.", "42", True),
        ("So the answer is \\boxed{42}.", "42.0", True),
        ("The total is $1,000.", "1000", True),
        ("Answer: $12", "$12", True),
        ("The answer is 3/4", "0.75", True),
        ("The answer is 0.75.", "3/4", True),
        ("\\boxed{\\frac{1}{3}}", "1/3", True),
        ("The answer is 1/3", "1/3", True),
        ("Final answer: New York.", "new york", True),
        ("#### 41", "42", False),
        ("The answer is 0.333", "1/3", False),
        ("Answer: London", "Paris", False),
        ("", "42", None),
        ("   ", "42", None),
        ("42", "", None),
    ],
)
def test_answer_correct(text, answer, correct):
    assert answer_correct(text, answer) is correct


def long_frame() -> pd.DataFrame:
    rows = [
        ("1", "de", "fusion", 60.0, 30.0),
        ("1", "de", "oracle", 50.0, 20.0),
        ("1", "de", "bon", 40.0, 10.0),
        ("2", "de", "fusion", 50.0, 25.0),
        ("2", "de", "oracle", 50.0, 30.0),
        ("2", "de", "bon", 50.0, 30.0),
        ("3", "ja", "fusion", 30.0, 5.0),
        ("3", "ja", "oracle", 40.0, 15.0),
        ("3", "ja", "bon", 20.0, 0.0),
        ("4", None, "fusion", 70.0, 35.0),
    ]
    return pd.DataFrame(rows, columns=["item_id", "language", "system", "chrf", "bleu"])


def test_metric_summary_per_language_and_all():
    summary = metric_summary(long_frame())
    assert list(summary.columns) == ["language", "system", "n", "chrf", "bleu"]
    assert list(zip(summary["language"], summary["system"], strict=True)) == [
        ("de", "bon"),
        ("de", "fusion"),
        ("de", "oracle"),
        ("ja", "bon"),
        ("ja", "fusion"),
        ("ja", "oracle"),
        ("unknown", "fusion"),
        ("all", "bon"),
        ("all", "fusion"),
        ("all", "oracle"),
    ]
    row = summary.set_index(["language", "system"])
    assert row.loc[("de", "fusion")].to_dict() == {"n": 2, "chrf": 55.0, "bleu": 27.5}
    assert row.loc[("all", "fusion")].to_dict() == {"n": 4, "chrf": 52.5, "bleu": 23.75}
    assert row.loc[("all", "oracle")].to_dict() == {
        "n": 3,
        "chrf": pytest.approx(140 / 3),
        "bleu": pytest.approx(65 / 3),
    }


def test_beats_oracle_counts_wins_and_ties():
    table = beats_oracle(long_frame()).set_index("language")
    assert list(table.index) == ["de", "ja", "all"]  # item 4 has no oracle
    assert table.loc["de"].to_dict() == {"n": 2, "beats": 0.5, "at_least": 1.0, "mean_diff": 5.0}
    assert table.loc["ja"].to_dict() == {"n": 1, "beats": 0.0, "at_least": 0.0, "mean_diff": -10.0}
    assert table.loc["all"].to_dict() == {
        "n": 3,
        "beats": pytest.approx(1 / 3),
        "at_least": pytest.approx(2 / 3),
        "mean_diff": 0.0,
    }
    bon = beats_oracle(long_frame(), system="bon").set_index("language")
    assert bon.loc["all", "at_least"] == pytest.approx(1 / 3)


def test_beats_oracle_without_oracle_rows_is_empty():
    frame = long_frame()
    table = beats_oracle(frame[frame["system"] != "oracle"])
    assert table.empty and list(table.columns) == ["language", "n", "beats", "at_least", "mean_diff"]
    with pytest.raises(ConfigError, match="chrf"):
        metric_summary(frame.drop(columns="chrf"))
    assert not math.isnan(metric_summary(frame.drop(columns="language"))["chrf"].iloc[0])
