"""Pairwise LLM judging with a fake judge: both orders, verdicts, errors, templates, win rates, position bias."""

from __future__ import annotations

import asyncio
import time

import numpy as np
import pandas as pd
import pytest

from fusion_core.errors import ConfigError, ModelError
from fusion_core.judging import (
    DEFAULT_JUDGE_PARAMS,
    DEFAULT_JUDGE_PROMPT,
    judge_item,
    judge_pair,
    pair_outcomes,
    position_bias,
    position_verdict,
    validate_template,
    win_rates,
)
from fusion_core.testing import FakeCompleter

PROMPT = "Translate 'good morning' into French."
FUSED, PICKED = "Bonjour.", "Bon matin."


def pair(completer, template=DEFAULT_JUDGE_PROMPT):
    return asyncio.run(
        judge_pair(PROMPT, "fusion", FUSED, "bon", PICKED, model="judge/m", completer=completer, template=template)
    )


def prefers(text: str):
    """A judge reply function that picks whichever position shows `text`."""

    def reply(model, messages, params):
        content = messages[-1]["content"]
        first = content.index("[Start of answer A]")
        second = content.index("[Start of answer B]")
        return "[[A]]" if first < content.index(text) < second else "[[B]]"

    return reply


def test_default_prompt_is_valid_and_asks_for_the_three_verdicts():
    validate_template(DEFAULT_JUDGE_PROMPT)
    for verdict in ("[[A]]", "[[B]]", "[[C]]"):
        assert verdict in DEFAULT_JUDGE_PROMPT


def test_both_orders_are_asked_with_the_texts_swapped():
    fake = FakeCompleter(default="[[A]]")
    records = pair(fake)
    assert len(fake.history) == 2
    contents = [call.messages[-1]["content"] for call in fake.history]
    assert contents[0].index(FUSED) < contents[0].index(PICKED)
    assert contents[1].index(PICKED) < contents[1].index(FUSED)
    assert all(PROMPT in c for c in contents)
    assert all(call.model == "judge/m" and call.params == DEFAULT_JUDGE_PARAMS for call in fake.history)
    assert [r["first"] for r in records] == ["fusion", "bon"]
    assert all(r["system_a"] == "fusion" and r["system_b"] == "bon" for r in records)
    # A judge that always says "A" prefers each system once: a position bias, not a winner.
    assert [(r["verdict"], r["winner"]) for r in records] == [("first", "fusion"), ("first", "bon")]


def test_both_orders_run_concurrently():
    fake = FakeCompleter(default="[[C]]", delay=0.2)
    started = time.perf_counter()
    pair(fake)
    assert time.perf_counter() - started < 0.35


def test_a_consistent_judge_names_the_same_winner_in_both_orders():
    records = pair(FakeCompleter(default=prefers(FUSED)))
    assert [(r["verdict"], r["winner"]) for r in records] == [("first", "fusion"), ("second", "fusion")]
    records = pair(FakeCompleter(default=prefers(PICKED)))
    assert [(r["verdict"], r["winner"]) for r in records] == [("second", "bon"), ("first", "bon")]


def test_record_shape_and_usage():
    record = pair(FakeCompleter().enqueue(["Both fine. [[C]]", "B is better.\n[[B]]"]))[0]
    assert set(record) == {
        "system_a",
        "system_b",
        "first",
        "verdict",
        "winner",
        "raw",
        "model",
        "error",
        "prompt_tokens",
        "completion_tokens",
        "cost",
    }
    assert record["verdict"] == "tie" and record["winner"] == "tie"
    assert record["raw"] == "Both fine. [[C]]" and record["error"] is None and record["model"] == "judge/m"
    assert record["prompt_tokens"] > 0 and record["completion_tokens"] == 3 and record["cost"] == 0.0


@pytest.mark.parametrize(
    ("reply", "verdict"),
    [
        ("[[A]]", "first"),
        ("[[b]]", "second"),
        ("[[C]]", "tie"),
        ("[[tie]]", "tie"),
        ("Answer A is better overall. [[C]]", "tie"),  # the bracketed verdict beats prose
        ("[[A]] ... on reflection [[B]]", "second"),  # the last one counts
        ("Verdict: B", "second"),  # selection's parser as the fallback
        ("[A]\n\nThe answer is clearer.", "first"),  # a small judge's single bracket, the only tag
        ("[C]", "tie"),
        ("Answer [B] reads better. [B]", "second"),
        ("[A]\n\n[B]\n\n[C]\n\n[D]", None),  # a list of letters is not a verdict
        ("[A]\n\n[B]", None),  # was read as B from its last line
        ("[Start of answer A]\nBonjour\n[End of answer A]", None),  # an echo of the template
        ("Both are fine.\nB", "second"),  # a bare letter as the last line
        ("I cannot decide.", None),
        ("", None),
    ],
)
def test_position_verdict(reply, verdict):
    assert position_verdict(reply) == verdict


def test_unparseable_reply_has_no_verdict_or_winner():
    records = pair(FakeCompleter().enqueue(["Both are nice.", "[[A]]"]))
    assert records[0]["verdict"] is None and records[0]["winner"] is None and records[0]["error"] is None
    assert records[1]["winner"] == "bon"


def test_completer_error_becomes_a_record():
    records = pair(FakeCompleter().enqueue([ModelError("judge/m: rate limited", model="judge/m"), "[[B]]"]))
    failed = records[0]
    assert failed["error"] == "judge/m: rate limited"
    assert failed["verdict"] is None and failed["winner"] is None and failed["raw"] == ""
    assert failed["prompt_tokens"] == 0 and failed["cost"] is None
    assert records[1]["winner"] == "fusion"


@pytest.mark.parametrize(
    ("template", "message"),
    [
        ("{prompt} {first}", r"lacks \{second\}"),
        ("{prompt} {first} {second} {reference}", "unknown placeholders.*reference"),
        ("{prompt} {first} {second} {}", "unknown placeholders"),
        ("{prompt} {first} {second} {", "unbalanced braces"),
        ("{prompt} {first} {second} }", "unbalanced braces"),
        ("{prompt} {first:{x}} {second}", "cannot be filled in"),
        ("{prompt.upper} {first} {second}", "unknown placeholders"),
    ],
)
def test_template_validation(template, message):
    with pytest.raises(ConfigError, match=message):
        validate_template(template)
    with pytest.raises(ConfigError):
        pair(FakeCompleter(default="[[A]]"), template)


def test_custom_template_with_literal_braces_and_texts_with_braces():
    fake = FakeCompleter(default="[[A]]")
    template = 'Reply in JSON {{"v": ...}}.\nQ: {prompt}\n1: {first}\n2: {second}'
    validate_template(template)
    asyncio.run(judge_pair("{x}", "a", "{first}", "b", "}", model="m", completer=fake, template=template))
    assert fake.history[0].messages[0]["content"] == 'Reply in JSON {"v": ...}.\nQ: {x}\n1: {first}\n2: }'


def test_judge_item_judges_every_usable_pair_in_both_orders():
    fake = FakeCompleter(default=prefers("FUSED"))
    outputs = {"fusion": "FUSED", "bon": "PICKED", "oracle": "ORACLE", "failed": "  "}
    pairs = [("fusion", "bon"), ("fusion", "oracle"), ("fusion", "failed"), ("fusion", "missing")]
    records = asyncio.run(judge_item(PROMPT, outputs, pairs, model="m", completer=fake))
    assert len(fake.history) == 4
    assert [(r["system_a"], r["system_b"], r["first"]) for r in records] == [
        ("fusion", "bon", "fusion"),
        ("fusion", "bon", "bon"),
        ("fusion", "oracle", "fusion"),
        ("fusion", "oracle", "oracle"),
    ]
    assert {r["winner"] for r in records} == {"fusion"}
    with pytest.raises(ConfigError, match="itself"):
        asyncio.run(judge_item(PROMPT, outputs, [("bon", "bon")], model="m", completer=fake))


def record(item, language, a, b, first, winner):
    verdict = None if winner is None else "tie" if winner == "tie" else "first" if winner == first else "second"
    return {
        "item_id": item,
        "language": language,
        "system_a": a,
        "system_b": b,
        "first": first,
        "verdict": verdict,
        "winner": winner,
    }


def both_orders(item, language, a, b, winners):
    return [record(item, language, a, b, first, w) for first, w in zip((a, b), winners, strict=True)]


def judged_frame() -> pd.DataFrame:
    rows = [
        *both_orders(1, "de", "fusion", "bon", ["fusion", "fusion"]),  # fusion 1, consistent
        *both_orders(2, "de", "fusion", "bon", ["fusion", "bon"]),  # 0.5, inconsistent (position bias)
        *both_orders(3, "de", "fusion", "bon", ["tie", "tie"]),  # 0.5, consistent
        *both_orders(4, "ja", "fusion", "bon", ["bon", "bon"]),  # 0, consistent
        *both_orders(5, "ja", "fusion", "bon", ["fusion", None]),  # 1 over one order
        *both_orders(6, "ja", "fusion", "bon", [None, None]),  # nothing parseable: no item score
    ]
    return pd.DataFrame(rows)


def test_pair_outcomes():
    out = pair_outcomes(judged_frame()).set_index("item_id")
    assert list(out["score"].iloc[:5]) == [1.0, 0.5, 0.5, 0.0, 1.0]
    assert np.isnan(out.loc[6, "score"])
    assert list(out["n_orders"]) == [2, 2, 2, 2, 1, 0]
    assert list(out["consistent"]) == [True, False, True, True, False, False]
    assert set(out["language"]) == {"de", "ja"}


def test_win_rates_exact_in_both_directions():
    rates = win_rates(judged_frame(), rounds=200)
    assert list(zip(rates["language"], rates["system"], strict=True)) == [
        ("de", "bon"),
        ("de", "fusion"),
        ("ja", "bon"),
        ("ja", "fusion"),
        ("all", "bon"),
        ("all", "fusion"),
    ]
    row = rates.set_index(["language", "system"])
    assert row.loc[("de", "fusion"), ["n", "wins", "ties", "losses"]].tolist() == [3, 1, 2, 0]
    assert row.loc[("de", "fusion"), "win_rate"] == pytest.approx(2 / 3)
    assert row.loc[("de", "bon"), "win_rate"] == pytest.approx(1 / 3)
    assert row.loc[("ja", "fusion"), ["n", "wins", "ties", "losses"]].tolist() == [2, 1, 0, 1]
    assert row.loc[("all", "fusion"), "win_rate"] == pytest.approx(3 / 5)
    assert row.loc[("all", "bon"), ["wins", "ties", "losses"]].tolist() == [1, 2, 2]
    assert row.loc[("all", "fusion"), "opponent"] == "bon" and row.loc[("all", "bon"), "opponent"] == "fusion"
    # The two directions draw the same items, so their intervals mirror each other.
    assert row.loc[("all", "bon"), "lo"] == pytest.approx(1 - row.loc[("all", "fusion"), "hi"])


def test_win_rates_pooled_only():
    rates = win_rates(judged_frame(), by_language=False, rounds=100)
    assert list(rates["language"]) == ["all", "all"]
    assert rates.set_index("system").loc["fusion", "win_rate"] == pytest.approx(3 / 5)


def repeated(copies: int) -> pd.DataFrame:
    rows = []
    for k in range(copies):
        for j, winners in enumerate((["fusion", "fusion"], ["bon", "bon"], ["fusion", "bon"], ["fusion", "fusion"])):
            rows += both_orders(f"{k}-{j}", "en", "fusion", "bon", winners)
    return pd.DataFrame(rows)


def test_intervals_contain_the_estimate_and_narrow_with_more_items():
    widths = []
    for copies in (5, 50):
        fusion = win_rates(repeated(copies)).set_index(["language", "system"]).loc[("all", "fusion")]
        assert fusion["win_rate"] == pytest.approx(0.625)
        assert fusion["lo"] <= fusion["win_rate"] <= fusion["hi"]
        assert 0.0 <= fusion["lo"] and fusion["hi"] <= 1.0
        widths.append(fusion["hi"] - fusion["lo"])
    assert widths[1] < widths[0] / 2


def test_win_rates_are_deterministic_for_a_seed():
    frame = repeated(10)
    pd.testing.assert_frame_equal(win_rates(frame, seed=3), win_rates(frame, seed=3))
    assert not win_rates(frame, seed=3)["lo"].equals(win_rates(frame, seed=4)["lo"])


def test_win_rates_are_fast_for_hundreds_of_items():
    frame = repeated(100)  # 400 items, 800 judgements
    started = time.perf_counter()
    win_rates(frame, rounds=1000)
    assert time.perf_counter() - started < 2.0


def test_win_rates_bad_arguments_and_empty_input():
    with pytest.raises(ConfigError, match="rounds"):
        win_rates(judged_frame(), rounds=0)
    with pytest.raises(ConfigError, match="level"):
        win_rates(judged_frame(), level=1.5)
    unparsed = judged_frame().assign(verdict=None, winner=None)
    assert win_rates(unparsed).empty


def test_position_bias():
    bias = position_bias(judged_frame())
    assert bias["n_judgements"] == 9
    assert bias["first"] == pytest.approx(5 / 9)  # items 1 and 4 once, item 2 twice, item 5's one parsed order
    assert bias["second"] == pytest.approx(2 / 9)
    assert bias["tie"] == pytest.approx(2 / 9)
    assert bias["n_pairs"] == 4
    assert bias["consistent"] == pytest.approx(3 / 4)
    empty = position_bias(pd.DataFrame(columns=["item_id", "system_a", "system_b", "verdict", "winner"]))
    assert empty["n_judgements"] == 0 and empty["first"] is None and empty["consistent"] is None


def test_records_from_judge_item_feed_win_rates():
    fake = FakeCompleter(default=prefers("FUSED"))
    rows = []
    for item in range(3):
        outputs = {"fusion": "FUSED", "bon": f"PICKED {item}"}
        for r in asyncio.run(judge_item(PROMPT, outputs, [("fusion", "bon")], model="m", completer=fake)):
            rows.append({**r, "item_id": item, "language": "fr"})
    rates = win_rates(pd.DataFrame(rows), rounds=50).set_index(["language", "system"])
    assert rates.loc[("fr", "fusion"), "win_rate"] == 1.0 and rates.loc[("fr", "bon"), "win_rate"] == 0.0
    assert position_bias(pd.DataFrame(rows))["consistent"] == 1.0
