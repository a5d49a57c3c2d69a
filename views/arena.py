"""Arena: blind A/B votes on pairs from a prepared queue; the systems are revealed after the vote."""

import uuid

import streamlit as st

from components import services
from components.admin import require_admin
from components.candidate_card import text_block
from components.queue_builder import queue_builder, queue_table
from fusion_core.errors import FusionError
from fusion_core.votes import RateLimitError, VoteError

CHOICES = {"A is better": "left", "B is better": "right", "Tie": "tie", "Both are bad": "bad"}
VERDICT = {"left": "A is better", "right": "B is better", "tie": "a tie", "bad": "both are bad"}

st.title("Arena")
st.caption("Two anonymous answers to one prompt. Vote for the better one; you will see who wrote which afterwards.")
votes = services.votes()
voter = st.session_state.setdefault("fx_voter", uuid.uuid4().hex)  # anonymous, one per browser session

with st.expander("Organize", icon=":material/tune:"):
    if require_admin("organize queues"):
        queue_builder()
        st.divider()
        queue_table()

try:
    names = [q.name for q in votes.queues()]
except FusionError as exc:
    st.error(str(exc))
    st.stop()
if not names:
    st.info("No comparison queue yet: an organizer builds one from stored runs under Organize.")
    st.stop()

chooser, name_box = st.columns([1, 1])
queue = chooser.selectbox("Queue", names, key="fx_arena_queue")
name = name_box.text_input("Your name (optional)", key="fx_voter_name", placeholder="anonymous")

state = st.session_state.setdefault("fx_arena", {})
if state.get("queue") != queue:  # a new queue: forget the pair drawn from the old one
    state.clear()
    state["queue"] = queue
if "assignment" not in state:
    try:
        state["assignment"] = votes.next_comparison(voter, queue)
    except FusionError as exc:
        st.error(str(exc))
        st.stop()
pair = state["assignment"]
if pair is None:
    st.success(f"You have voted on every comparison in queue {queue!r}. Thank you!")
    if st.button("Check for new pairs", icon=":material/refresh:"):
        state.pop("assignment")
        st.rerun()
    st.stop()

st.subheader("Prompt")
text_block(pair.prompt)
left, right = st.columns(2)
for column, label, text in ((left, "A", pair.left_text), (right, "B", pair.right_text)):
    with column:
        st.subheader(label)
        text_block(text)

for column, (label, winner) in zip(st.columns(len(CHOICES)), CHOICES.items(), strict=True):
    if column.button(label, key=f"vote_{winner}", width="stretch"):
        try:
            state["result"] = votes.cast_vote(pair.comparison_id, voter, pair.left_output, winner, name or None)
        except RateLimitError as exc:
            st.warning(str(exc), icon=":material/hourglass_top:")
        except VoteError as exc:
            st.error(str(exc))
        except FusionError as exc:
            st.error(f"The vote could not be stored: {exc}")

result = state.get("result")
if result is not None:
    if result.duplicate:
        st.info("You already voted on this pair; your first vote was counted and nothing changed.")
    st.success(
        f"**A** was written by **{result.left_system}**, **B** by **{result.right_system}**. "
        f"Your vote: {VERDICT[result.winner]}."
    )
    if st.button("Next", type="primary", icon=":material/arrow_forward:"):
        state.pop("assignment")
        state.pop("result")
        st.rerun()
