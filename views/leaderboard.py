"""Leaderboard: Bradley–Terry ratings, win rates, per-language results, votes over time and bias checks."""

import plotly.graph_objects as go
import streamlit as st

from components import services
from components.admin import require_admin
from fusion_core.errors import FusionError
from fusion_core.leaderboard import export_bytes, leaderboard
from fusion_core.ratings import by_language, position_bias, side_bias, votes_over_time

ALL = "all queues"

st.title("Leaderboard")
votes = services.votes()
try:
    names = [q.name for q in votes.queues()]
    queue = st.selectbox("Queue", [ALL, *names], key="lb_queue")
    frame = votes.votes_frame(None if queue == ALL else queue)
except FusionError as exc:
    st.error(str(exc))
    st.stop()
if frame.empty:
    st.info("No votes yet: share the Arena page with voters.")
    st.stop()

try:
    board = leaderboard(frame)
except FusionError as exc:
    st.error(f"Cannot rate these votes: {exc}")
    st.stop()

total, voters, pairs = st.columns(3)
total.metric("Votes", board.votes)
voters.metric("Voters", frame["voter_id"].nunique())
pairs.metric("Comparisons", frame["comparison_id"].nunique())

st.subheader("Bradley–Terry ratings")
st.caption("Elo scale, Best-of-N at 1000 when present; bars are 95% bootstrap intervals (200 rounds).")
ratings = board.ratings
above, below = ratings["upper"] - ratings["rating"], ratings["rating"] - ratings["lower"]
figure = go.Figure(
    go.Scatter(
        x=list(ratings.index),
        y=ratings["rating"],
        mode="markers",
        marker={"size": 12},
        error_y={"type": "data", "array": above, "arrayminus": below},
    )
)
figure.update_layout(yaxis_title="rating", xaxis_title="system", height=360, margin={"t": 20})
st.plotly_chart(figure, width="stretch")
st.dataframe(ratings.round(1), width="stretch")

st.subheader("Win rates")
st.caption("Each system against each other; ties and “both bad” count half; 95% Wilson intervals.")
st.dataframe(board.win_rates.round(3), hide_index=True, width="stretch")

st.subheader("By language")
systems = list(ratings.index)
first, second = st.columns(2)
system = first.selectbox("System", systems, index=systems.index("fusion") if "fusion" in systems else 0)
others = [s for s in systems if s != system]
opponent = second.selectbox("Against", others, index=others.index("bon") if "bon" in others else 0)
per_language = by_language(frame, system, opponent)
if per_language.empty:
    st.caption(f"{system} never met {opponent}.")
else:
    st.dataframe(per_language.round(3), width="stretch")

st.subheader("Votes over time")
freq = st.segmented_control("Per", ["hour", "day", "week"], default="day", key="lb_freq") or "day"
timeline = votes_over_time(frame, {"hour": "h", "day": "D", "week": "W"}[freq])
line = go.Figure(go.Scatter(x=timeline.index, y=timeline["cumulative"], mode="lines+markers", name="votes"))
line.update_layout(yaxis_title="votes so far", xaxis_title=f"{freq} (UTC)", height=300, margin={"t": 20})
st.plotly_chart(line, width="stretch")

st.subheader("Position bias")
bias = position_bias(frame)
if bias.decisive:
    st.metric("Left side wins", f"{bias.left_share:.1%}", help="among decisive votes; about 50% when unbiased")
    st.caption(f"95% interval {bias.lower:.1%}–{bias.upper:.1%} over {bias.decisive} decisive votes.")
else:
    st.caption("No decisive votes yet.")
voters_table = side_bias(frame)
flagged = voters_table[voters_table["flagged"]]
if flagged.empty:
    st.caption("No voter always picks the same side.")
else:
    st.warning(f"{len(flagged)} voters picked the same side in ≥ 90% of at least 10 decisive votes.")
    st.dataframe(flagged, width="stretch")

st.subheader("Export")
if require_admin("export the votes"):
    stem = "votes" if queue == ALL else f"votes-{queue}"
    csv_col, parquet_col = st.columns(2)
    csv_col.download_button("CSV", export_bytes(frame, "csv"), f"{stem}.csv", "text/csv", icon=":material/download:")
    parquet_col.download_button(
        "Parquet", export_bytes(frame, "parquet"), f"{stem}.parquet", "application/vnd.apache.parquet",
        icon=":material/download:",
    )  # fmt: skip
