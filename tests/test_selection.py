"""Best-of-N selection with a fake judge: each method's pick, parsing tables, re-asks, errors."""

from __future__ import annotations

import asyncio
import json
import re
import threading
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from fusion_core.errors import ConfigError, ModelError
from fusion_core.selection import (
    PAIRWISE_PROMPT,
    SELECTORS,
    SelectorConfig,
    extract_final_answer,
    parse_score,
    parse_verdict,
    select,
    validate,
)
from fusion_core.testing import FakeCompleter
from fusion_core.types import Candidate, GenParams

PROMPT = "What is the capital of France?"


def cands(*texts: str | None) -> list[Candidate]:
    """Candidates from texts; None makes a failed candidate."""
    return [
        Candidate(index=i, model="m", text=t or "", error="boom" if t is None else None) for i, t in enumerate(texts)
    ]


def run(candidates, completer=None, **config):
    return asyncio.run(select(PROMPT, candidates, SelectorConfig(**config), completer or FakeCompleter()))


def response_of(messages) -> str:
    """The candidate text in a pointwise judge prompt."""
    return messages[0]["content"].split("[Response]\n", 1)[1].split("\n\nGive a brief reason", 1)[0]


def pair_of(messages) -> tuple[str, str]:
    """The (A, B) texts in a pairwise judge prompt."""
    content = messages[0]["content"]
    a = content.split("[Response A]\n", 1)[1].split("\n\n[Response B]", 1)[0]
    b = content.split("[Response B]\n", 1)[1].split("\n\nAfter a brief explanation", 1)[0]
    return a, b


# --- judge ---------------------------------------------------------------------------------------------


def test_judge_picks_highest_score_and_sums_usage():
    marks = {"Paris.": 9, "Lyon.": 3, "Paris is the capital of France.": 7}
    fake = FakeCompleter(default=lambda m, msgs, p: f"Reasonable answer.\nScore: {marks[response_of(msgs)]}")
    sel = run(cands("Lyon.", "Paris.", "Paris is the capital of France."), fake, judge_model="judge/x")
    assert sel.index == 1
    assert sel.scores == [3.0, 9.0, 7.0]
    assert sel.method == "judge" and sel.model == "judge/x"
    assert "3, 9, 7" in sel.rationale and "picked candidate 2" in sel.rationale
    assert len(fake.history) == 3
    assert all(
        c.model == "judge/x" and c.params == GenParams(temperature=0.0, max_tokens=256, seed=0) for c in fake.history
    )
    assert sel.prompt_tokens > 0 and sel.completion_tokens == 3 * 4 and sel.cost == 0.0
    assert sel.latency_s >= 0


class _NoCostCompleter(FakeCompleter):
    async def complete(self, model, messages, params):
        completion = await super().complete(model, messages, params)
        completion.cost = None
        return completion


def test_cost_stays_none_when_no_call_reports_one():
    sel = run(cands("a", "b"), _NoCostCompleter(default="Score: 5"))
    assert sel.cost is None and sel.completion_tokens == 4


def test_judge_prompt_contains_prompt_and_candidate_verbatim():
    text = "Paris {braces} and\n  indented lines"
    fake = FakeCompleter(default="Score: 5")
    run(cands(text, "Lyon"), fake)
    contents = [c.messages[0]["content"] for c in fake.history]
    assert any(text in c and PROMPT in c for c in contents)


def test_judge_runs_calls_concurrently():
    fake = FakeCompleter(default="Score: 5", delay=0.2)
    sel = run(cands("a", "b", "c", "d"), fake)
    assert sel.latency_s < 0.6  # four 0.2s calls, overlapped


def test_judge_skips_failed_candidates():
    fake = FakeCompleter(default=lambda m, msgs, p: "Score: 8" if response_of(msgs) == "good" else "Score: 2")
    sel = run(cands(None, "bad", None, "good"), fake)
    assert sel.index == 3
    assert sel.scores == [None, 2.0, None, 8.0]
    assert len(fake.history) == 2
    assert all("boom" not in c.messages[0]["content"] for c in fake.history)


def test_judge_tie_goes_to_lowest_index():
    sel = run(cands("x", "y", "z"), FakeCompleter(default="Score: 6"))
    assert sel.index == 0


def test_judge_reasks_once_on_unparseable_reply():
    fake = FakeCompleter().enqueue(["I think it is quite good overall.", "Score: 4", "Score: 6"])
    sel = run(cands("first", "second"), fake, scale=7)
    assert len(fake.history) == 3
    reask = [c for c in fake.history if len(c.messages) == 3]
    assert len(reask) == 1
    msgs = reask[0].messages
    assert msgs[1] == {"role": "assistant", "content": "I think it is quite good overall."}
    assert msgs[2] == {"role": "user", "content": "Reply with only: Score: <number from 1 to 7>"}
    assert sorted(s for s in sel.scores if s is not None) == [4.0, 6.0]


def test_judge_gives_none_after_second_failure_and_on_model_error():
    def judge(model, msgs, params):
        text = response_of(msgs)
        if text == "chatty":
            return "Hmm, hard to say." if len(msgs) == 1 else "Still thinking."
        return "Score: 5"

    fake = FakeCompleter(default=judge)
    sel = run(cands("chatty", "fine"), fake)
    assert sel.scores == [None, 5.0]
    assert sel.index == 1
    assert len(fake.history) == 3  # one call for "fine", two for "chatty", no third ask
    assert "no score" in sel.rationale

    errors = FakeCompleter().enqueue([ModelError("judge/x: rate limited"), "Score: 3"])
    sel = run(cands("a", "b"), errors)
    assert None in sel.scores and 3.0 in sel.scores
    assert "rate limited" in sel.rationale


def test_judge_falls_back_to_mbr_when_nothing_scored():
    fake = FakeCompleter(default=ModelError("judge down"))
    sel = run(cands("the cat sat on the mat", "a dog barked loudly", "the cat sat on a mat"), fake)
    assert sel.method == "judge→mbr"  # chrF scores, not the judge's: the label says so
    assert "mbr" in sel.rationale and "judge down" in sel.rationale
    assert sel.index in (0, 2)
    assert all(s is not None for s in sel.scores)


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("Score: 7", 7.0),
        ("The answer is fine.\nscore = 7/10", 7.0),
        ("**Score:** 8", 8.0),
        ("Solid work overall. 7/10", 7.0),
        ("Rating: 6.5", 6.5),
        ("Clear and correct.\n\n9", 9.0),
        ("Clear and correct.\n**9**", 9.0),
        ("Step 1: check facts. In 2023 this was true.\nScore: 6", 6.0),
        ("Score: 3 at first, but on reflection\nFinal score: 8", 8.0),
        ("Score: 15", 10.0),
        ("Score: 0", 1.0),
        ("score: 85/100", 8.5),
        ("Final score: 9 out of 10", 9.0),
        ("I would give this [[Rating: 4]]", 4.0),
        ("This answer is well written.", None),
        ("In 2023, step 1 was done.\n2024", None),
        ("", None),
    ],
)
def test_parse_score(reply, expected):
    assert parse_score(reply, 10) == expected


def test_parse_score_respects_scale():
    assert parse_score("Score: 9", 5) == 5.0
    assert parse_score("4/5", 5) == 4.0
    assert parse_score("4/10", 5) is None  # an x/10 is not a score out of 5 unless labelled


# --- pairwise ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        ("[[A]]", "A"),
        ("Response B is more accurate.\n[[B]]", "B"),
        ("Answer: B", "B"),
        ("Output (a)", "A"),
        ("Tie", "tie"),
        ("[[tie]]", "tie"),
        ("At first I thought [[A]] but actually [[B]]", "B"),
        ("A is long but B is right.\n**B**", "B"),
        ("Verdict: A", "A"),
        ("Both are bad and I cannot decide", None),
    ],
)
def test_parse_verdict(reply, expected):
    assert parse_verdict(reply) == expected


def test_pairwise_uses_both_orders_and_picks_best():
    quality = {"alpha": 1, "bravo": 4, "charlie": 2, "delta": 3}

    def judge(model, msgs, params):
        a, b = pair_of(msgs)
        return "[[A]]" if quality[a] > quality[b] else "[[B]]"

    fake = FakeCompleter(default=judge)
    sel = run(cands("alpha", "bravo", "charlie", "delta"), fake, method="pairwise")
    assert sel.index == 1
    seen = {pair_of(c.messages) for c in fake.history}
    for x, y in [("alpha", "bravo"), ("charlie", "delta"), ("bravo", "delta")]:
        assert (x, y) in seen and (y, x) in seen
    assert len(fake.history) == 6  # three matches, two orders each
    assert sel.scores == [0.0, 4.0, 0.0, 2.0]
    assert sel.model == "local/smollm2-135m"


def test_pairwise_prompt_is_impartial_and_verbatim():
    assert "order" in PAIRWISE_PROMPT and "length" in PAIRWISE_PROMPT
    fake = FakeCompleter(default="[[A]]")
    run(cands("left {x}", "right\n text"), fake, method="pairwise")
    assert {pair_of(c.messages) for c in fake.history} == {("left {x}", "right\n text"), ("right\n text", "left {x}")}


def test_pairwise_position_biased_judge_gives_ties_to_lowest_index():
    fake = FakeCompleter(default="After careful thought: [[A]]")
    sel = run(cands(None, "one", "two", "three"), fake, method="pairwise")
    assert sel.index == 1
    assert sel.scores[0] is None
    assert sel.scores[1:] == [2.0, 1.0, 1.0]  # 1 vs 2 tied, 3 had a bye, 1 vs 3 tied


def test_pairwise_bye_for_odd_count_and_errors_count_as_ties():
    def judge(model, msgs, params):
        a, b = pair_of(msgs)
        if "z" in (a, b):
            raise ModelError("judge timeout")
        return "[[A]]" if a > b else "[[B]]"

    sel = run(cands("x", "y", "z"), FakeCompleter(default=judge), method="pairwise")
    # round 1: y beats x 2-0; z has a bye; final y vs z: both orders errored -> tie -> y (lower index)
    assert sel.index == 1
    assert sel.scores == [0.0, 3.0, 1.0]
    assert "judge timeout" in sel.rationale


# --- mbr / oracle --------------------------------------------------------------------------------------


def test_mbr_picks_consensus_without_model_calls():
    fake = FakeCompleter()
    texts = (
        "The capital of France is Paris.",
        "Berlin is a city in Germany, far away.",
        "Paris is the capital of France.",
    )
    sel = run(cands(*texts, None), fake, method="mbr")
    assert sel.index in (0, 2)
    assert sel.scores[1] < min(sel.scores[0], sel.scores[2])
    assert sel.scores[3] is None
    assert fake.history == [] and sel.model is None and sel.cost is None


def test_mbr_two_candidates_tie_to_lowest_index():
    sel = run(cands("short answer", "a much longer answer with many more words"), method="mbr")
    assert sel.scores[0] == sel.scores[1]
    assert sel.index == 0


def test_oracle_picks_closest_to_reference():
    sel = run(
        cands("Berlin.", "The capital of France is Paris.", "France is in Europe."),
        method="oracle",
        reference="Paris is the capital of France.",
    )
    assert sel.index == 1
    assert sel.scores[1] == max(sel.scores)


# --- majority ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (r"So we get \boxed{42}.", "42"),
        (r"\boxed{\frac{1}{2}}", r"\frac{1}{2}"),
        ("first 3 then 4\n#### 42", "42"),
        ("The answer is 1,000.", "1000"),
        ("Answer: 3.0", "3"),
        ("The final answer is $12$.", "12"),
        ("Adding 2 and 5 gives 7", "7"),
        ("Answer: Paris.", "paris"),
        ("I think\nParis!", "paris"),
        ("   ", None),
    ],
)
def test_extract_final_answer(text, expected):
    assert extract_final_answer(text) == expected


def test_majority_picks_first_candidate_with_most_votes():
    texts = ("2 + 2 = 5", "so 2 + 2 = \\boxed{4}", "The answer is 4.0", None, "#### 4", "I get 5.")
    sel = run(cands(*texts), method="majority")
    assert sel.index == 1
    assert sel.scores == [0.4, 0.6, 0.6, None, 0.6, 0.4]
    assert "'4'" in sel.rationale and "3 of 5" in sel.rationale


# --- reward --------------------------------------------------------------------------------------------


def test_reward_fn_picks_max_and_records_errors():
    def reward(prompt: str, response: str) -> float:
        assert prompt == PROMPT
        if response == "bad":
            raise RuntimeError("reward model crashed")
        return float(len(response))

    sel = run(cands("tiny", "much longer text", "bad"), method="reward", reward_fn=reward)
    assert sel.index == 1
    assert sel.scores == [4.0, 16.0, None]
    assert "reward model crashed" in sel.rationale


class _RewardHandler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        if body["response"] == "explode":
            self.send_response(500)
            self.end_headers()
            return
        key = "reward" if body["response"].startswith("r:") else "score"
        payload = json.dumps({key: len(body["response"]), "prompt_seen": body["prompt"]}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def reward_server():
    server = HTTPServer(("127.0.0.1", 0), _RewardHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/score"
    server.shutdown()
    server.server_close()


def test_reward_url_posts_each_candidate(reward_server):
    sel = run(cands("ab", "r:longest one", "explode", None, "abcdef"), method="reward", reward_url=reward_server)
    assert sel.index == 1
    assert sel.scores == [2.0, 13.0, None, None, 6.0]
    assert re.search(r"candidate 3: .*500", sel.rationale)
    assert sel.model == reward_server


def test_reward_url_unreachable_falls_back():
    sel = run(cands("aaa", "bbb"), method="reward", reward_url="http://127.0.0.1:9/nothing")
    assert "fell back to mbr" in sel.rationale
    assert sel.index == 0
    assert sel.method == "reward→mbr"  # the label says which method decided


# --- config and edge cases -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "hint"),
    [
        (SelectorConfig(method="best"), "pass one of"),
        (SelectorConfig(method="oracle"), "reference="),
        (SelectorConfig(method="oracle", reference="  "), "reference="),
        (SelectorConfig(method="reward"), "reward_url="),
        (SelectorConfig(judge_model=""), "judge_model="),
        (SelectorConfig(scale=1), "scale"),
    ],
)
def test_bad_config_raises_before_any_call(config, hint):
    fake = FakeCompleter(default="Score: 5")
    with pytest.raises(ConfigError, match=re.escape(hint)):
        asyncio.run(select(PROMPT, cands("a", "b"), config, fake))
    with pytest.raises(ConfigError):
        validate(config)
    assert fake.history == []


def test_validate_checks_judge_model_with_completer():
    fake = FakeCompleter(unknown_models={"nope/model"})
    validate(SelectorConfig(judge_model="nope/model", method="mbr"), fake)  # mbr needs no judge
    with pytest.raises(ModelError):
        validate(SelectorConfig(judge_model="nope/model"), fake)


def test_no_successful_candidate_raises():
    with pytest.raises(ConfigError, match="no successful candidate"):
        run(cands(None, None))


@pytest.mark.parametrize("method", SELECTORS)
def test_single_success_needs_no_model_call(method):
    fake = FakeCompleter()
    config = {"method": method, "reference": "ref", "reward_fn": lambda p, r: pytest.fail("reward called")}
    sel = run(cands(None, "only one", None), fake, **config)
    assert sel.index == 1 and sel.method == method
    assert sel.scores == [None, 1.0, None]
    assert "only candidate 2" in sel.rationale
    assert fake.history == []


def test_config_equality_ignores_reward_fn():
    a = SelectorConfig(method="reward", reward_fn=len)
    assert a == replace(a, reward_fn=None)
    assert hash(a) == hash(replace(a, reward_fn=None))


def test_chrf_matrix_matches_sacrebleu_pair_by_pair():
    from sacrebleu.metrics import CHRF

    from fusion_core.selection import chrf_matrix

    texts = ["The cat sat on the mat.", "A cat was sitting on a mat!", "天空是蓝色的。", "", "the the the"]
    table = chrf_matrix(texts)
    for h, hyp in enumerate(texts):
        for r, ref in enumerate(texts):
            if h != r:
                assert table[h][r] == pytest.approx(CHRF().sentence_score(hyp, [ref]).score, abs=1e-9)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The answer is 3/4.", "0.75"),
        ("so x = 6 / 8", "0.75"),
        ("Answer: 1/3", "1/3"),
        ("#### 12/4", "3"),
        ("It costs $1,200.", "1200"),
    ],
)
def test_final_answers_read_fractions_as_one_number(text, expected):
    from fusion_core.selection import extract_final_answer

    assert extract_final_answer(text) == expected
