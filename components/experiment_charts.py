"""Plotly figures for an experiment: win rates by language, quality against N, attribution shares, the oracle."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from fusion_core.render import colour

METHOD_STYLE = {
    "fusion": {"name": "Fusion-of-N", "color": "#1c7ed6", "fill": "rgba(28,126,214,0.12)", "dash": "solid"},
    "bon": {"name": "Best-of-N", "color": "#f08c00", "fill": "rgba(240,140,0,0.12)", "dash": "solid"},
    "oracle": {"name": "Oracle (best of the N)", "color": "#495057", "fill": None, "dash": "dot"},
}
MEASURE_TITLES = {"win_rate": "win rate", "chrf": "chrF++", "accuracy": "accuracy"}
NOVEL_COLOUR = "#868e96"
PAIR_COLOURS = ("#1c7ed6", "#f08c00", "#37b24d", "#ae3ec9", "#e03131", "#1098ad", "#5c7cfa", "#f59f00")
LAYOUT = {
    "margin": {"t": 40, "b": 40, "l": 50, "r": 20},
    "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "x": 0, "traceorder": "normal"},
}
PERCENT = {"range": [-0.04, 1.04], "tickformat": ".0%"}  # a little room, so 0% and 100% markers are not cut


def pair_label(system: str, opponent: str) -> str:
    """The legend name of a pair, e.g. fusion vs bon."""
    return f"{system} vs {opponent}"


def win_rate_figure(rates: pd.DataFrame, pairs: list[tuple[str, str]]) -> go.Figure:
    """Each pair's win rate per language with its bootstrap interval; 0.5 is a draw."""
    figure = go.Figure()
    for number, (system, opponent) in enumerate(pairs):
        rows = rates[rates["system"].eq(system) & rates["opponent"].eq(opponent)]
        if rows.empty:
            continue
        below = rows["win_rate"] - rows["lo"]
        figure.add_trace(
            go.Scatter(
                x=rows["language"],
                y=rows["win_rate"],
                mode="markers",
                name=pair_label(system, opponent),
                marker={"size": 11, "color": PAIR_COLOURS[number % len(PAIR_COLOURS)]},
                error_y={"type": "data", "array": rows["hi"] - rows["win_rate"], "arrayminus": below},
                customdata=rows[["n", "wins", "ties", "losses"]],
                hovertemplate="%{x}: %{y:.1%} over %{customdata[0]} items "
                "(%{customdata[1]} won, %{customdata[2]} tied, %{customdata[3]} lost)<extra></extra>",
            )
        )
    figure.add_hline(y=0.5, line_dash="dash", line_color="#adb5bd")
    languages = list(dict.fromkeys(rates["language"]))
    if len(languages) > 1 and languages[-1] == "all":  # set the pooled column apart
        figure.add_vline(x=len(languages) - 1.5, line_dash="dot", line_color="#ced4da")
    figure.update_layout(**LAYOUT, height=380, scattermode="group", yaxis={"title": "win rate", **PERCENT})
    figure.update_xaxes(title="language", type="category", categoryorder="array", categoryarray=languages)
    return figure


def scaling_figure(frame: pd.DataFrame, measure: str, opponent: str | None = None) -> go.Figure:
    """Fusion, Best-of-N (and the oracle) against N for one measure, with 95% interval bands."""
    rows = frame[frame["measure"].eq(measure)]
    figure = go.Figure()
    for method, style in METHOD_STYLE.items():
        line = rows[rows["method"].eq(method)].sort_values("n")
        if line.empty:
            continue
        if style["fill"]:  # the oracle's interval is in its hover text: a third band would hide the other two
            band_x = [*line["n"], *reversed(list(line["n"]))]
            band_y = [*line["hi"], *reversed(list(line["lo"]))]
            figure.add_trace(
                go.Scatter(
                    x=band_x, y=band_y, mode="lines", fill="toself", fillcolor=style["fill"], line={"width": 0},
                    hoverinfo="skip", showlegend=False, legendgroup=method,
                )
            )  # fmt: skip
        figure.add_trace(
            go.Scatter(
                x=line["n"],
                y=line["value"],
                mode="lines+markers",
                name=style["name"],
                legendgroup=method,
                line={"color": style["color"], "dash": style["dash"], "width": 2.5},
                marker={"size": 8},
                customdata=line[["lo", "hi", "items"]],
                hovertemplate=f"N=%{{x}}: %{{y:.3g}} (95% %{{customdata[0]:.3g}}–%{{customdata[1]:.3g}}, "
                f"%{{customdata[2]}} items)<extra>{style['name']}</extra>",
            )
        )
    title = MEASURE_TITLES.get(measure, measure)
    if measure == "win_rate" and opponent:
        title = f"win rate against {opponent}"
    yaxis = {"title": title}
    if measure in ("win_rate", "accuracy"):
        yaxis |= PERCENT
    figure.update_layout(**LAYOUT, height=340, yaxis=yaxis)
    figure.update_xaxes(title="N (candidates)", tickmode="array", tickvals=sorted(rows["n"].unique()))
    if measure == "win_rate":
        figure.add_hline(y=0.5, line_dash="dash", line_color="#adb5bd")
    return figure


def _source_label(source: str) -> str:
    return "novel" if source == "novel" else f"Candidate {int(source) + 1}"


def _source_colour(source: str) -> str:
    return NOVEL_COLOUR if source == "novel" else colour(int(source))


def _sources(items: pd.DataFrame) -> list[str]:
    indices = sorted({int(s) for s in items["source"] if s != "novel"})
    return [*(str(i) for i in indices), "novel"]


def attribution_figure(items: pd.DataFrame, per_item: bool = True) -> go.Figure:
    """Stacked shares of each candidate and of novel text: one bar per fused answer, or their mean."""
    figure = go.Figure()
    order = list(dict.fromkeys(items["item_id"]))
    for source in _sources(items):
        rows = items[items["source"].eq(source)]
        if per_item:
            shares = rows.set_index("item_id")["share"].reindex(order).fillna(0.0)
            x, y = order, list(shares)
        else:
            x, y = ["mean of all items"], [float(rows["share"].sum() / max(len(order), 1))]
        figure.add_trace(
            go.Bar(
                x=x, y=y, name=_source_label(source),
                marker={"color": _source_colour(source), "line": {"color": "#868e96", "width": 0.5}},
                hovertemplate="%{x}: %{y:.1%}<extra>" + _source_label(source) + "</extra>",
            )
        )  # fmt: skip
    figure.update_layout(
        **LAYOUT, barmode="stack", height=380, yaxis={"title": "share of the fused answer", "tickformat": ".0%"}
    )
    figure.update_xaxes(type="category", title="item" if per_item else "")
    return figure


def rank_figure(by_rank: pd.DataFrame, novel: float | None) -> go.Figure:
    """Mean share of the largest, second largest, ... contributing candidate, and of novel text."""
    x = [f"#{int(r)}" for r in by_rank["rank"]] + (["novel"] if novel is not None else [])
    y = list(by_rank["share"]) + ([novel] if novel is not None else [])
    colours = ["#1c7ed6"] * len(by_rank) + ([NOVEL_COLOUR] if novel is not None else [])
    figure = go.Figure(go.Bar(x=x, y=y, marker={"color": colours}, hovertemplate="%{x}: %{y:.1%}<extra></extra>"))
    figure.update_layout(**LAYOUT, height=300, yaxis={"title": "mean share", "tickformat": ".0%"})
    figure.update_xaxes(title="candidate by rank of its share", type="category")
    return figure


def beats_oracle_figure(beats: pd.DataFrame) -> go.Figure:
    """Per language, the share of items where fusion's chrF++ beats / at least matches the oracle's."""
    figure = go.Figure()
    for column, name, color in (("beats", "beats the oracle", "#1c7ed6"), ("at_least", "at least matches", "#a5d8ff")):
        figure.add_trace(
            go.Bar(
                x=beats["language"], y=beats[column], name=name, marker={"color": color},
                customdata=beats[["n"]], hovertemplate="%{x}: %{y:.0%} of %{customdata[0]} items<extra></extra>",
            )
        )  # fmt: skip
    figure.update_layout(
        **LAYOUT, barmode="group", height=320, yaxis={"title": "items", "range": [0, 1.04], "tickformat": ".0%"}
    )
    figure.update_xaxes(type="category", title="language")
    return figure
