"""The analysis tabs of an experiment: overview, judge win rates, N-scaling, attribution, fusion vs the oracle."""

from __future__ import annotations

import streamlit as st

from components.experiment_charts import (
    attribution_figure,
    beats_oracle_figure,
    rank_figure,
    scaling_figure,
    win_rate_figure,
)
from components.experiment_data import ExperimentData
from fusion_core import analysis, judging
from fusion_core.experiments import Experiment
from fusion_core.metrics import ALL, beats_oracle, metric_summary

MAIN_SYSTEMS = ("fusion", "bon", "sample", "oracle", "baseline")
MEASURE_HEADINGS = {
    "win_rate": "Judge win rate",
    "chrf": "chrF++ against the reference",
    "accuracy": "Accuracy against the gold answer",
}


def _main(frame, column: str = "system"):
    return frame[frame[column].isin(MAIN_SYSTEMS)]


def overview_tab(data: ExperimentData, experiment: Experiment) -> None:
    """Counts, tokens, cost, time and the failures."""
    o = data.overview
    a, b, c, d, e = st.columns(5)
    a.metric("Prompts", experiment.n_items)
    b.metric("Done", o.done)
    c.metric("Failed", o.failed)
    d.metric("Tokens", f"{o.prompt_tokens + o.completion_tokens:,}", help=f"{o.prompt_tokens:,} in, "
             f"{o.completion_tokens:,} out (sampling, selection, fusion, baseline and judging)")  # fmt: skip
    e.metric("Cost", "unknown" if o.cost is None else f"${o.cost:.4f}")
    per_prompt = "–" if o.mean_time_s is None else f"{o.mean_time_s:.1f} s per prompt"
    st.caption(f"Processing time {o.time_s:,.1f} s summed over prompts ({per_prompt}; prompts run concurrently).")
    if o.failures.empty:
        st.caption("No prompt failed.")
    else:
        st.markdown("**Failures**")
        st.dataframe(o.failures, hide_index=True, width="stretch")


def win_rates_tab(data: ExperimentData) -> None:
    """Win rates of the judged pairs by language with 95% bootstrap intervals, and the judge's position bias."""
    if data.win_rates.empty:
        st.info("No pairwise judgements: this experiment ran without a judge for win rates (no eval judge).")
        return
    pairs = [(a, b) for a, b in data.config.judged_pairs() if "@" not in a + b]
    st.caption(
        "Each pair judged twice, once in each order; an item scores 1 for a win, ½ for a tie or split verdict. "
        "Bars are 95% bootstrap intervals over items; the dashed line is a draw."
    )
    st.plotly_chart(win_rate_figure(data.win_rates, pairs), width="stretch", key="exp_win_rates")
    pooled = data.win_rates[data.win_rates["language"].eq(ALL)]
    wanted = pooled[[(s, o) in pairs for s, o in zip(pooled["system"], pooled["opponent"], strict=True)]]
    st.dataframe(wanted.round(3), hide_index=True, width="stretch")
    found = set(zip(wanted["system"], wanted["opponent"], strict=True))
    silent = [f"{a} vs {b}" for a, b in pairs if (a, b) not in found]
    if silent:
        st.warning(
            f"No usable verdict for {', '.join(silent)}: every judge reply for these pairs lacked a verdict or "
            "failed, so they have no win rate. A larger judge model (or an edited judge prompt) usually fixes this; "
            "see the Items tab for the judge's replies.",
            icon=":material/help:",
        )
    with st.expander("Every pair and language (N-scaling pairs included)"):
        st.dataframe(data.win_rates.round(3), hide_index=True, width="stretch")
    bias = judging.position_bias(data.judgements)
    if bias["n_judgements"]:
        a, b, c = st.columns(3)
        a.metric("Judge picks answer A", f"{bias['first']:.0%}", help="among parseable verdicts; ~50% when unbiased")
        b.metric("Ties", f"{bias['tie']:.0%}")
        consistent = bias["consistent"]
        c.metric("Same verdict in both orders", "–" if consistent is None else f"{consistent:.0%}")
    unparsed = int(data.judgements["verdict"].isna().sum())
    if unparsed:
        st.caption(f"{unparsed} of {len(data.judgements)} judge replies had no verdict (or failed) and were left out.")


def scaling_tab(data: ExperimentData) -> None:
    """Fusion vs Best-of-N against N, one chart per measure the data allow."""
    frame = data.scaling
    if frame.empty:
        st.info("Nothing to plot yet: no judgements, references or answers among the finished prompts.")
        return
    if frame["n"].nunique() < 2:
        st.info(f"This experiment ran without N-scaling: only N = {data.config.n_max} is shown. Start a batch with "
                "N-scaling on to see the curves.")  # fmt: skip
    st.caption(
        "Fusion and Best-of-N on the first N of the same samples (teachers in turn in a pool); bands are 95% "
        "bootstrap intervals over items."
    )
    for measure in analysis.MEASURES:
        if frame["measure"].eq(measure).any():
            st.markdown(f"**{MEASURE_HEADINGS[measure]}**")
            figure = scaling_figure(frame, measure, data.config.opponent())
            st.plotly_chart(figure, width="stretch", key=f"exp_scaling_{measure}")
            st.caption(_support(frame[frame["measure"].eq(measure)], len(data.config.scaling_points())))
    with st.expander("Table"):
        st.dataframe(frame.round(4), hide_index=True, width="stretch")


def _support(rows, expected: int) -> str:
    """How many prompts each point of a curve rests on, and how many points are missing."""
    items = rows.loc[rows["method"].isin(["fusion", "bon"]), "items"]
    if items.empty:
        return "No Fusion-of-N or Best-of-N point has data yet."
    low, high = int(items.min()), int(items.max())
    if low == high:
        text = f"Each point rests on {low} prompt{'' if low == 1 else 's'}"
    else:
        text = f"Points rest on {low} to {high} prompts"
    missing = 2 * expected - len(items)
    if missing > 0:
        text += f"; {missing} of {2 * expected} points have no data (no usable verdict or answer at that N)"
    return text + "."


def attribution_tab(data: ExperimentData, experiment_id: str) -> None:
    """How much of each fused answer came from each candidate, and what was new."""
    tables = data.attribution
    if tables.empty:
        st.info("No fused answers with attribution yet.")
        return
    a, b, c = st.columns(3)
    a.metric("Novel text (mean share)", f"{tables.novel:.0%}", help="text found in no candidate")
    b.metric("Candidates contributing > 5%", f"{tables.mean_contributors:.1f}", help="mean per fused answer")
    c.metric("Largest contributor (mean share)", f"{tables.by_rank['share'].iloc[0]:.0%}")
    view = st.segmented_control("Show", ["Per item", "Mean"], default="Per item", key=f"exp_attr_view_{experiment_id}")
    st.plotly_chart(attribution_figure(tables.items, per_item=view != "Mean"), width="stretch", key="exp_attr")
    st.markdown("**Share by rank**: the largest contributor first, then the second largest, …")
    st.plotly_chart(rank_figure(tables.by_rank, tables.novel), width="stretch", key="exp_attr_rank")


def oracle_tab(data: ExperimentData) -> None:
    """chrF++ per system and language, how often fusion beats the oracle, and accuracy."""
    if data.metrics.empty and data.accuracy.empty:
        st.info("No references or gold answers in this data set: chrF++ and the oracle need a `reference` per "
                "prompt (translation.jsonl), accuracy an `answer` (math.jsonl).")  # fmt: skip
        return
    if not data.metrics.empty:
        st.markdown("**chrF++ by language** (mean over items; the oracle is the candidate closest to the reference)")
        summary = _main(metric_summary(data.metrics))
        table = summary.pivot_table(index="language", columns="system", values="chrf", sort=False)
        st.dataframe(table.round(2), width="stretch")
        beats = beats_oracle(data.metrics)
        if not beats.empty:
            overall = beats[beats["language"].eq(ALL)].iloc[0]
            st.markdown(f"**Fusion beats the oracle on {overall['beats']:.0%} of {int(overall['n'])} items** "
                        f"(mean difference {overall['mean_diff']:+.2f} chrF++).")  # fmt: skip
            st.plotly_chart(beats_oracle_figure(beats), width="stretch", key="exp_beats_oracle")
            st.dataframe(beats.round(3), hide_index=True, width="stretch")
    if not data.accuracy.empty:
        st.markdown("**Accuracy by language** (the oracle is right when any candidate is)")
        summary = _main(analysis.accuracy_summary(data.accuracy))
        table = summary.pivot_table(index="language", columns="system", values="accuracy", sort=False)
        st.dataframe(table.round(3), width="stretch")
