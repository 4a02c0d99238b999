"""Plotly figures, each drawn from a frame that `tables` computed.

No computation beyond unit changes happens here (fractions to percent).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from harness.report.tables import pareto_front
from harness.tables import number, percent_pm, si

__all__ = [
    "BASELINE_SYMBOLS",
    "FAMILY_COLOURS",
    "confusion_figure",
    "curves_figure",
    "family_figure",
    "scatter_figure",
]

FAMILY_COLOURS = {
    "alternated": "#4c72b0",
    "RI": "#dd8452",
    "IR": "#55a868",
    "other": "#8172b3",
}
BASELINE_COLOUR = "#333333"
BASELINE_SYMBOLS = ("diamond", "square", "triangle-up", "star", "cross", "x", "pentagon")
# Curves of several runs: a qualitative palette that stays readable on white.
CURVE_COLOURS = (
    "#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b3",
    "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd",
)  # fmt: skip

_LAYOUT = dict(
    template="plotly_white",
    # Room above the plot for the legend row below Plotly's mode bar.
    margin=dict(l=60, r=20, t=80, b=50),
    font=dict(family="DejaVu Sans, Helvetica, Arial, sans-serif", size=13),
    legend=dict(orientation="h", yanchor="bottom", y=1.02, xanchor="left", x=0),
)


def _log_axis(values: pd.Series) -> bool:
    positive = values[values > 0]
    return len(positive) > 1 and positive.max() / positive.min() > 20


def _hover(frame: pd.DataFrame) -> list[list[Any]]:
    return [
        [
            row.arch,
            row.family if row.kind != "baseline" else f"baseline ({row.remedy})",
            percent_pm(row.test_acc_mean, row.test_acc_sd),
            row.n,
            si(row.flops),
            number(row.latency_ms),
            ", ".join(str(i) for i in row.trial_ids),
        ]
        for row in frame.itertuples()
    ]


_HOVER_TEMPLATE = (
    "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
    "test acc %{customdata[2]} % (n=%{customdata[3]})<br>"
    "FLOPs %{customdata[4]} · latency %{customdata[5]} ms<br>"
    "trials %{customdata[6]}<extra></extra>"
)


def _markers(part: pd.DataFrame, x: str, name: str, marker: dict[str, Any]) -> go.Scatter:
    """One legend entry's points: mean over seeds, with their sd as error bars."""
    return go.Scatter(
        x=part[x],
        y=part["y"],
        error_y=dict(type="data", array=part["y_sd"], thickness=1, width=0),
        mode="markers",
        marker=marker,
        name=name,
        customdata=_hover(part),
        hovertemplate=_HOVER_TEMPLATE,
    )


def scatter_figure(board: pd.DataFrame, x: str, x_title: str) -> go.Figure:
    """Test accuracy against `x` (flops or latency_ms), one marker per leaderboard row."""
    points = board[board[x].notna() & board["test_acc_mean"].notna()].copy()
    points["y"] = 100 * points["test_acc_mean"]
    points["y_sd"] = 100 * points["test_acc_sd"].fillna(0.0)
    points[x] = points[x].astype(float)
    fig = go.Figure()
    front = pareto_front(points, x, "y")
    if len(front):
        fig.add_trace(
            go.Scatter(
                x=front[x],
                y=front["y"],
                mode="lines",
                line=dict(color="#999999", dash="dash", shape="hv"),
                name="Pareto front",
                hoverinfo="skip",
            )
        )
    candidates = points[points["kind"] != "baseline"]
    for family, colour in FAMILY_COLOURS.items():
        part = candidates[candidates["family"] == family]
        if part.empty:
            continue
        marker = dict(color=colour, size=9, line=dict(width=0.5, color="white"))
        fig.add_trace(_markers(part, x, family, marker))
    baselines = points[points["kind"] == "baseline"]
    for index, (name, part) in enumerate(baselines.groupby("arch", sort=True)):
        symbol = BASELINE_SYMBOLS[index % len(BASELINE_SYMBOLS)]
        marker = dict(color=BASELINE_COLOUR, size=12, symbol=symbol)
        fig.add_trace(_markers(part, x, str(name), marker))
    fig.update_layout(
        **_LAYOUT,
        height=440,
        xaxis_title=x_title,
        yaxis_title="test accuracy % (mean over seeds)",
    )
    if _log_axis(points[x]):
        fig.update_xaxes(type="log")
    return fig


def family_figure(samples: dict[str, list[float]], summary: pd.DataFrame) -> go.Figure:
    """Every run's test accuracy per family or baseline, with the mean and its 95% CI."""
    fig = go.Figure()
    shown = [name for name, values in samples.items() if values]
    for name in shown:
        colour = FAMILY_COLOURS.get(name, BASELINE_COLOUR)
        fig.add_trace(
            go.Box(
                y=[100 * v for v in samples[name]],
                name=name,
                boxpoints="all",
                jitter=0.4,
                pointpos=0,
                marker=dict(color=colour, size=6, opacity=0.7),
                line=dict(color=colour),
                fillcolor="rgba(0,0,0,0)",
                showlegend=False,
                hovertemplate=f"{name}<br>test acc %{{y:.2f}} %<extra></extra>",
            )
        )
    with_ci = summary[(summary["n"] >= 2) & summary["group"].isin(shown)]
    if len(with_ci):
        fig.add_trace(
            go.Scatter(
                x=with_ci["group"],
                y=100 * with_ci["mean"],
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=100 * (with_ci["high"] - with_ci["mean"]),
                    arrayminus=100 * (with_ci["mean"] - with_ci["low"]),
                    thickness=2,
                    width=8,
                    color="#111111",
                ),
                mode="markers",
                marker=dict(color="#111111", size=9, symbol="line-ew-open", line=dict(width=3)),
                name="mean and 95% CI",
                hovertemplate="mean %{y:.2f} %<extra></extra>",
            )
        )
    fig.update_layout(**_LAYOUT, height=420, yaxis_title="test accuracy % (one point per run)")
    return fig


def curves_figure(runs: list[tuple[str, pd.DataFrame]]) -> go.Figure:
    """Train/val loss and accuracy per epoch; `runs` is (label, epochs frame) per trial."""
    panels = (
        ("train_loss", 1, 1, False),
        ("val_loss", 1, 2, False),
        ("train_acc", 2, 1, True),
        ("val_acc", 2, 2, True),
    )
    fig = make_subplots(
        rows=2,
        cols=2,
        subplot_titles=(
            "train loss",
            "validation loss",
            "train accuracy %",
            "validation accuracy %",
        ),
        horizontal_spacing=0.08,
        vertical_spacing=0.14,
    )
    for index, (label, epochs) in enumerate(runs):
        colour = CURVE_COLOURS[index % len(CURVE_COLOURS)]
        dash = "dot" if label.startswith("baseline") else "solid"
        for column, row, col, is_acc in panels:
            values = epochs[column] * (100 if is_acc else 1)
            fig.add_trace(
                go.Scatter(
                    x=epochs["epoch"],
                    y=values,
                    mode="lines+markers",
                    marker=dict(size=4),
                    line=dict(color=colour, dash=dash),
                    name=label,
                    legendgroup=label,
                    showlegend=(row, col) == (1, 1),
                    hovertemplate=f"{label}<br>epoch %{{x}}: %{{y:.4g}}<extra></extra>",
                ),
                row=row,
                col=col,
            )
    layout = dict(_LAYOUT)
    layout["legend"] = dict(orientation="h", yanchor="top", y=-0.1, xanchor="left", x=0)
    fig.update_layout(**layout, height=620)
    fig.update_xaxes(title_text="epoch", row=2)
    longest = max((len(epochs) for _, epochs in runs), default=1)
    fig.update_xaxes(dtick=max(1, math.ceil(longest / 10)))  # whole epochs, at most ~10 ticks
    return fig


def confusion_figure(matrix: list[list[int]], class_names: list[str], title: str) -> go.Figure:
    """Rows are the true class, columns the prediction; colour is the row's share."""
    shares = []
    for row in matrix:
        total = sum(row)
        shares.append([v / total if total else math.nan for v in row])
    fig = go.Figure(
        go.Heatmap(
            z=shares,
            x=class_names,
            y=class_names,
            text=matrix,
            texttemplate="%{text}",
            colorscale="Blues",
            zmin=0,
            zmax=1,
            colorbar=dict(title="share of<br>true class"),
            hovertemplate="true %{y}<br>predicted %{x}<br>%{text} images<extra></extra>",
        )
    )
    fig.update_layout(
        **{**_LAYOUT, "margin": dict(l=90, r=20, t=80, b=80)},
        title=dict(text=title, font=dict(size=14)),
        height=480,
        xaxis_title="predicted class",
        yaxis_title="true class",
    )
    fig.update_yaxes(autorange="reversed")
    return fig
