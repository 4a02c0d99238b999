"""The estimators section: how well each stored estimator ranks the reported candidates.

For every estimator with scores in `harness_estimates` on candidates that also have
complete trials in the reported studies (same data fingerprint), the page shows the
numbers `harness validate-estimators` prints, computed by the same functions
(`harness.estimate.validate.correlate` and `verdict`): Spearman rho and Kendall tau
against mean validation accuracy with bootstrap 95% intervals, tau minus the
parameter count's tau, the top-K overlap and seconds per candidate, and one scatter
per estimator.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.report.html import Section, esc, figure_html, table
from harness.tables import count, number

if TYPE_CHECKING:
    import plotly.graph_objects as go

    from harness.store import Store

__all__ = ["TOP_K", "EstimatorRow", "estimator_rows", "estimators_figure", "estimators_section"]

TOP_K = 8
TITLE = "10. Estimators against training"
NO_SCORES = (
    "No estimator scores on these trials' candidates: run `harness estimate` or "
    "`harness validate-estimators` on the same data."
)


@dataclass
class EstimatorRow:
    """One estimator's agreement with training on one dataset's trained candidates."""

    estimator: str
    data_spec: str
    numbers: dict[str, Any]  # `correlate`'s output
    candidates: int
    seconds_per_candidate: float
    verdict: str
    points: pd.DataFrame  # arch, score, val_acc: the scatter
    study: str = ""  # whose trials the accuracies are


def trained_accuracy(trials: pd.DataFrame) -> pd.DataFrame:
    """Mean validation accuracy per (data fingerprint, study, candidate) over complete
    trials: seeds of one candidate are one point, as in `validate-estimators`. Each study
    is a reference of its own: one candidate trained at two budgets is two numbers."""
    done = trials[(trials["status"] == "complete") & trials["val_acc"].notna()]
    done = done.dropna(subset=["candidate_id", "data_fingerprint"])
    if "study" not in done:
        done = done.assign(study="")
    if "hyperparameters" not in done:
        done = done.assign(hyperparameters=None)
    grouped = done.groupby(["data_fingerprint", "study", "candidate_id"], sort=False)
    return grouped.agg(
        val_acc=("val_acc", "mean"),
        arch=("arch", "first"),
        data_spec=("data_spec", "first"),
        hyperparameters=("hyperparameters", "first"),
    ).reset_index()


def _trained_at_budget(estimator: str, hyperparameters: Any) -> bool:
    """Whether a `budget:NAME` estimator's own trainings are the reference: a study whose
    trials have budget NAME's settings would be scored against themselves."""
    from harness.search.budgets import BUDGETS

    family, _, name = estimator.partition(":")
    if family != "budget" or name not in BUDGETS or not isinstance(hyperparameters, dict):
        return False
    wanted = BUDGETS[name].train_overrides()
    shared = [k for k in wanted if k in hyperparameters]
    return bool(shared) and all(hyperparameters[k] == wanted[k] for k in shared)


def _latest_scores(store: Store, trained: pd.DataFrame) -> pd.DataFrame:
    """The newest stored score of each (candidate, estimator, data) among `trained`."""
    ids = [int(i) for i in trained["candidate_id"].unique()]
    scores = store.estimates_frame(candidate_ids=ids)
    if scores.empty:
        return scores
    scores = scores.sort_values("estimate_id").drop_duplicates(
        ["candidate_id", "estimator", "data_fingerprint"], keep="last"
    )
    keys = trained[
        ["data_fingerprint", "study", "candidate_id", "val_acc", "data_spec", "hyperparameters"]
    ]
    merged = scores.merge(keys, on=["data_fingerprint", "candidate_id"], how="inner")
    circular = [
        _trained_at_budget(e, h)
        for e, h in zip(merged["estimator"], merged["hyperparameters"], strict=True)
    ]
    merged = merged[[not c for c in circular]]
    return merged[merged["score"].map(lambda v: math.isfinite(v))]


def _rows_of_one_dataset(frame: pd.DataFrame, seed: int) -> list[EstimatorRow]:
    from harness.estimate.validate import BASELINE, correlate, verdict

    # The parameter count is the baseline; without its stored scores, the candidates'
    # recorded parameter counts are the same numbers.
    stored = frame[frame["estimator"] == BASELINE].set_index("candidate_id")["score"]
    recorded = frame.drop_duplicates("candidate_id").set_index("candidate_id")["params"]
    baseline = stored if len(stored) else pd.to_numeric(recorded, errors="coerce").dropna()
    rows = []
    for name, part in frame.groupby("estimator", sort=True):
        part = part.sort_values("candidate_id")
        if len(part) < 3:
            continue  # correlate needs 3 candidates; too few to say anything
        ids = part["candidate_id"]
        params = (
            baseline.reindex(ids).to_numpy(dtype=float) if ids.isin(baseline.index).all() else None
        )
        numbers = correlate(
            part["score"].to_numpy(float),
            part["val_acc"].to_numpy(float),
            params=None if name == BASELINE else params,
            top_k=TOP_K,
            seed=seed,
        )
        rows.append(
            EstimatorRow(
                estimator=str(name),
                data_spec=str(part["data_spec"].iloc[0]),
                numbers=numbers,
                candidates=len(part),
                seconds_per_candidate=float(part["seconds"].mean()),
                verdict="",
                points=part[["arch", "score", "val_acc"]].reset_index(drop=True),
            )
        )
    # The baselines first: every other row is read against them.
    rows.sort(key=lambda r: (r.estimator not in (BASELINE, "flops"), r.estimator != BASELINE))
    for row in rows:
        diff = row.numbers["tau_minus_params"]
        if row.estimator == BASELINE:
            row.verdict = "baseline"
        elif diff is None:
            row.verdict = "no parameter count on these candidates to compare with"
        else:
            # The params tau on this estimator's own candidates, as `correlate` measured it.
            row.verdict = verdict(
                row.estimator,
                row.numbers["tau"],
                row.numbers["tau"] - diff,
                row.numbers["tau_minus_params_ci"],
            )
    return rows


def estimator_rows(store: Store, trials: pd.DataFrame, seed: int = 0) -> list[EstimatorRow]:
    """Every estimator's agreement with training, one row per estimator and dataset."""
    needed = {"status", "val_acc", "candidate_id", "data_fingerprint", "arch", "data_spec"}
    if trials.empty or not needed <= set(trials.columns):
        return []
    trained = trained_accuracy(trials)
    if trained.empty:
        return []
    scores = _latest_scores(store, trained)
    if scores.empty:
        return []
    rows: list[EstimatorRow] = []
    for (_, study), frame in scores.groupby(["data_fingerprint", "study"], sort=True):
        for row in _rows_of_one_dataset(frame, seed):
            row.study = str(study)
            rows.append(row)
    return rows


def _interval(ci: Any) -> str:
    return "–" if ci is None else f"({number(ci[0])}, {number(ci[1])})"


def estimators_figure(rows: list[EstimatorRow]) -> go.Figure:
    """Score against trained validation accuracy, one small panel per estimator."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    columns = min(3, len(rows))
    lines = math.ceil(len(rows) / columns)
    titles = [f"{r.estimator} ({r.study})" if _several(rows) else r.estimator for r in rows]
    figure = make_subplots(rows=lines, cols=columns, subplot_titles=titles)
    for index, row in enumerate(rows):
        points = row.points
        figure.add_trace(
            go.Scatter(
                x=points["score"],
                y=points["val_acc"] * 100,
                mode="markers",
                name=row.estimator,
                text=points["arch"],
                hovertemplate="%{text}<br>score %{x:.4g}<br>val acc %{y:.2f}%<extra></extra>",
                marker=dict(size=8, color="#4c72b0"),
                showlegend=False,
            ),
            row=index // columns + 1,
            col=index % columns + 1,
        )
    figure.update_yaxes(title_text="val acc %", col=1)
    figure.update_xaxes(title_text="score", row=lines)
    figure.update_layout(
        template="plotly_white", height=300 * lines, margin=dict(l=60, r=20, t=50, b=50)
    )
    return figure


def _several(rows: list[EstimatorRow]) -> bool:
    return len({(r.data_spec, r.study) for r in rows}) > 1


def estimators_section(store: Store, trials: pd.DataFrame, banner: str = "") -> Section:
    """The section; one line when no estimator has scores on trained candidates.
    `banner` (the synthetic-data note) goes above the numbers only."""
    rows = estimator_rows(store, trials)
    if not rows:
        return Section("estimators", TITLE, f'<p class="note estimators-note">{esc(NO_SCORES)}</p>')
    table_rows = []
    for r in rows:
        n = r.numbers
        cells = [
            r.estimator,
            count(r.candidates),
            number(n["rho"]),
            _interval(n["rho_ci"]),
            number(n["tau"]),
            _interval(n["tau_ci"]),
            number(n["tau_minus_params"]),
            _interval(n["tau_minus_params_ci"]),
            f"{n['overlap']} / {n['top_k']} (chance {n['top_k'] ** 2 / r.candidates:.1f})",
            number(r.seconds_per_candidate, 4),
            r.verdict,
        ]
        table_rows.append([f"{r.study} ({r.data_spec})", *cells] if _several(rows) else cells)
    headers = [
        "estimator",
        "candidates",
        "rho",
        "rho 95% CI",
        "tau",
        "tau 95% CI",
        "tau − params' tau",
        "its 95% CI",
        f"top-{TOP_K} overlap",
        "s / candidate",
        "verdict",
    ]
    shift = 1 if _several(rows) else 0
    if shift:
        headers.insert(0, "trained in (data)")
    body = banner + (
        "<p class=note>Each estimator's scores against the mean validation accuracy of one "
        "reported study's complete trials of the same candidates on the same data (seeds "
        "averaged; each study is its own reference, so a candidate trained at two budgets "
        "is not averaged across them, and a <code>budget:NAME</code> estimate is not scored "
        "against trials at budget NAME, its own). Intervals: percentile bootstrap, candidates resampled in pairs, as in "
        "<code>harness validate-estimators</code>.</p>"
    )
    body += table(
        headers, table_rows, numeric=[i + shift for i in range(1, 10)], table_id="estimators"
    )
    weak = [r.estimator for r in rows if r.verdict == "no better than params"]
    if weak:
        body += (
            '<p class="note estimators-weak">No better than the parameter count here: '
            f"{esc(', '.join(sorted(set(weak))))}.</p>"
        )
    body += figure_html(estimators_figure(rows), "fig-estimators")
    return Section("estimators", TITLE, body)
