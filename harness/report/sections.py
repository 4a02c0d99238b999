"""The page's sections, each from the frames `tables` computes; `build` puts them together."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import pandas as pd

from harness.export.select import export_command, row_export_trial
from harness.report import figures, tables
from harness.report.gather import ReportData, add_details
from harness.report.html import LETTER_COLOURS, Raw, Section, esc, figure_html, stage_cells, table
from harness.report.optuna_view import optuna_view
from harness.report.paper import PAPER, paper_comparison
from harness.tables import number, percent, percent_pm, si, text

if TYPE_CHECKING:
    from harness.store import Store

__all__ = [
    "CURVE_BASELINES",
    "CURVE_CANDIDATES",
    "FLOPS_NOTE",
    "LEADERBOARD_ROWS",
    "ORDERING_ROWS",
    "confusion_section",
    "cost_section",
    "curves_section",
    "intro",
    "leaderboard_section",
    "optuna_section",
    "ordering_section",
    "paper_section",
]

# The page lists this many leaderboard rows (plus any baseline below them);
# `harness report --format md` and `harness trials` list them all.
LEADERBOARD_ROWS = 40
CURVE_CANDIDATES = 5
CURVE_BASELINES = 3
ORDERING_ROWS = 40
FLOPS_NOTE = "FLOPs are fvcore counts: one multiply-add = 1 flop, forward pass, one image."


# -- header -------------------------------------------------------------------------------


def _distinct(series: pd.Series) -> str:
    values = [str(v) for v in dict.fromkeys(series.dropna()) if str(v)]
    return ", ".join(values) if values else "–"


def _budget(trials: pd.DataFrame) -> str:
    epochs = sorted(
        {
            int(h["epochs"])
            for h in trials["hyperparameters"]
            if isinstance(h, dict) and "epochs" in h
        }
    )
    per_trial = "–" if not epochs else "/".join(map(str, epochs))
    return f"{len(trials)} trials, {per_trial} epochs each (at most)"


def _versions(env: dict[str, Any] | None) -> str:
    if not env:
        return "–"
    parts = [
        f"{name} {env[key]}"
        for name, key in (
            ("harness", "harness"),
            ("torch", "torch"),
            ("timm", "timm"),
            ("python", "python"),
            ("CUDA", "cuda"),
        )
        if env.get(key)
    ]
    if env.get("commit"):
        parts.append(f"commit {str(env['commit'])[:12]}")
    return ", ".join(parts)


def intro(data: ReportData) -> str:
    trials = data.trials
    counts = tables.status_counts(trials)
    latest = data.latest_trial or {}
    env = latest.get("environment") or {}
    fingerprints = _distinct(trials["data_fingerprint"])
    started = trials["started_at"].dropna()
    span = (
        f"{started.min():%Y-%m-%d %H:%M} – {started.max():%Y-%m-%d %H:%M} UTC"
        if len(started)
        else "–"
    )
    rows = data.study_rows
    facts = [
        ("studies", ", ".join(data.studies)),
        ("database", data.url),
        ("data", _distinct(trials["data_spec"])),
        ("data fingerprint", fingerprints),
        ("labels", _distinct(trials["label_mode"])),
        ("protocol", _distinct(trials["protocol"])),
        ("search", f"space {_distinct(rows['space'])}, sampler {_distinct(rows['sampler'])}"),
        ("budget", _budget(trials)),
        ("device", env.get("device") or _distinct(trials["device"])),
        ("versions", _versions(env)),
        ("trials run", span),
        ("report made", f"{data.generated_at:%Y-%m-%d %H:%M} UTC"),
        (
            "trials",
            f"{len(trials)}: {counts['complete']} complete, {counts['pruned']} pruned, "
            f"{counts['failed']} failed, {counts['interrupted']} interrupted, "
            f"{counts['running']} running",
        ),
    ]
    items = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    return f'<dl class="facts" id="facts">{items}</dl>'


# -- sections -----------------------------------------------------------------------------


def _shown_rows(board: pd.DataFrame, limit: int) -> pd.DataFrame:
    """The top `limit` rows, and every baseline below them (they are the reference)."""
    top = board.head(limit)
    rest = board.iloc[limit:]
    return pd.concat([top, rest[rest["kind"] == "baseline"]])


LEADERBOARD_HEADERS = ("#", "ordering", "family", "runs", "val acc %", "test acc %", "test loss",
                       "params", "FLOPs", "latency ms", "trials")  # fmt: skip


def result_cells(r: Any) -> list[str]:
    """A leaderboard row's measured cells, from val acc % to its trial ids (the page's and
    the Markdown leaderboard's alike)."""
    return [
        percent_pm(r.val_acc_mean, r.val_acc_sd),
        percent_pm(r.test_acc_mean, r.test_acc_sd),
        number(r.test_loss_mean, 4),
        si(r.params),
        si(r.flops),
        number(r.latency_ms, 2),
        ", ".join(str(i) for i in r.trial_ids),
    ]


def _export_cell(row: Any, with_weights: frozenset[int], url: str) -> Any:
    trial_id = row_export_trial(row, with_weights)
    if trial_id is None:
        return "not kept"
    command = export_command(url, trial_id=trial_id)
    return Raw(f'<code class="cmd" title="run this in a terminal">{esc(command)}</code>')


def leaderboard_section(
    board: pd.DataFrame,
    several_studies: bool,
    with_weights: frozenset[int] = frozenset(),
    url: str = "",
) -> Section:
    shown = _shown_rows(board, LEADERBOARD_ROWS)
    headers = [*LEADERBOARD_HEADERS, "weights"]
    if several_studies:
        headers.insert(1, "study")
    rows, classes = [], []
    for r in shown.itertuples():
        family = "baseline" if r.kind == "baseline" else r.family
        if r.kind == "baseline" and r.pretrained:
            family = "baseline (pretrained)"
        arch = esc(r.arch)
        if r.kind == "baseline":
            # Which remedy for 48 px inputs the baseline used decides what it measures.
            arch += f'<div class="remedy">input: {esc(text(r.remedy))}</div>'
        row = [r.rank, Raw(arch), family, r.n, *result_cells(r), _export_cell(r, with_weights, url)]
        if several_studies:
            row.insert(1, r.study)
        rows.append(row)
        classes.append("baseline" if r.kind == "baseline" else "candidate")
    offset = 1 if several_studies else 0
    body = (
        f"<p class=note>Complete trials grouped by architecture and configuration; "
        f"accuracy is the mean ± standard deviation over seeds where a group has several runs. "
        f"Ranked by validation accuracy (test accuracy is never used to choose). "
        f"{FLOPS_NOTE} Latency: median batch-1 forward time of the candidate. "
        "Weights: the command that writes the row's best-validation network to a folder "
        "(safetensors, on request ONNX or TorchScript; `harness predict` runs it); "
        "`harness run --keep-weights` decides which trials keep theirs; "
        '`--db "$HARNESS_DB"` stands for a database URL whose password is not shown.</p>'
    )
    body += table(
        headers,
        rows,
        numeric=[0, *(i + offset for i in range(3, 10))],
        mono=[1 + offset],
        row_classes=classes,
        table_id="leaderboard",
    )
    if len(shown) < len(board):
        body += (
            f"<p class=note>Showing {len(shown)} of {len(board)} groups "
            "(`harness report --format md` lists all).</p>"
        )
    return Section("leaderboard", "2. Leaderboard", body)


def cost_section(board: pd.DataFrame) -> Section:
    parts = [
        "<p class=note>One marker per leaderboard row: families by colour, baselines as "
        "dark symbols; the dashed line is the Pareto front (nothing both cheaper and more "
        "accurate). Hover a marker for its ordering. Error bars: one standard deviation "
        f"over seeds. {FLOPS_NOTE}</p>"
    ]
    parts.append("<h3>Accuracy vs parameters</h3>")
    parts.append(
        "<p class=note>Size first: a family whose points sit to the right of the others "
        "may win by capacity, not by ordering (at exp_ratio 2 RI has about 2.4x the "
        "parameters of IR). Compare orderings at similar x.</p>"
    )
    parts.append(figure_html(figures.scatter_figure(board, "params", "parameters"), "fig-params"))
    parts.append("<h3>Accuracy vs FLOPs</h3>")
    parts.append(
        figure_html(figures.scatter_figure(board, "flops", "FLOPs (fvcore MACs)"), "fig-flops")
    )
    parts.append("<h3>Accuracy vs latency</h3>")
    if board["latency_ms"].notna().any():
        missing = int(board["latency_ms"].isna().sum())
        if missing:
            parts.append(f"<p class=note>{missing} row(s) have no latency measurement.</p>")
        parts.append(
            figure_html(
                figures.scatter_figure(board, "latency_ms", "latency ms (batch 1, median)"),
                "fig-latency",
            )
        )
    else:
        parts.append("<p class=note>No latency was measured for these trials.</p>")
    return Section("cost", "3. Accuracy against cost", "".join(parts))


def _curve_rows(board: pd.DataFrame) -> pd.DataFrame:
    candidates = board[board["kind"] != "baseline"].head(CURVE_CANDIDATES)
    baselines = board[board["kind"] == "baseline"].drop_duplicates("arch").head(CURVE_BASELINES)
    return pd.concat([candidates, baselines])


def curves_section(store: Store, board: pd.DataFrame) -> Section:
    chosen = _curve_rows(board)
    ids = [int(i) for i in chosen["best_trial_id"]]
    epochs = store.epochs_frame(ids) if ids else pd.DataFrame()
    runs = []
    for r in chosen.itertuples():
        mine = epochs[epochs["trial_id"] == r.best_trial_id].sort_values("epoch")
        if mine.empty:
            continue
        prefix = "baseline " if r.kind == "baseline" else ""
        runs.append((f"{prefix}#{r.rank} {r.arch} (trial {r.best_trial_id})", mine))
    if not runs:
        return Section("curves", "5. Learning curves", "<p class=note>No epochs recorded.</p>")
    body = (
        f"<p class=note>Per-epoch metrics of the best-validation run of the top "
        f"{CURVE_CANDIDATES} candidates (solid) and up to {CURVE_BASELINES} baselines "
        "(dotted). Training metrics are on augmented batches.</p>"
    )
    body += figure_html(figures.curves_figure(runs), "fig-curves")
    return Section("curves", "5. Learning curves", body)


def confusion_section(store: Store, data: ReportData, board: pd.DataFrame) -> Section:
    title = "6. Confusion matrix of the best candidate"
    candidates = board[board["kind"] != "baseline"]
    best = candidates.iloc[0] if len(candidates) else (board.iloc[0] if len(board) else None)
    if best is None:
        return Section("confusion", title, "<p class=note>No complete trial.</p>")
    trial_id = int(best["best_trial_id"])
    add_details(store, data, [trial_id])
    trial = data.details[trial_id]
    matrix, names = trial.get("confusion"), trial.get("class_names")
    if not matrix:
        return Section(
            "confusion", title, f"<p class=note>Trial {trial_id} has no confusion matrix.</p>"
        )
    names = [str(n) for n in (names or range(len(matrix)))]
    heading = (
        f"{best['arch']}: trial {trial_id}, test accuracy {percent(trial.get('test_acc'))} %, "
        f"{sum(map(sum, matrix))} test images"
    )
    body = (
        "<p class=note>The best-ranked candidate's best-validation run on the test split; "
        "numbers are image counts, colour the share of each true class.</p>"
    )
    body += figure_html(figures.confusion_figure(matrix, names, heading), "fig-confusion")
    return Section("confusion", title, body)


def optuna_section(store: Store, data: ReportData) -> Section:
    parts = []
    for name in data.studies:
        rows = data.study_rows[data.study_rows["study"] == name]
        objectives = rows["objectives"].iloc[0] if len(rows) else None
        objectives = objectives if isinstance(objectives, list) else None
        view = optuna_view(store, name, objectives)
        if len(data.studies) > 1:
            parts.append(f"<h3>{esc(name)}</h3>")
        for index, (_, figure) in enumerate(view.figures):
            slug = re.sub(r"[^a-z0-9]+", "-", f"{name}-{index}".lower())
            parts.append(figure_html(figure, f"fig-optuna-{slug}"))  # Optuna titles its plots
        if view.note:
            parts.append(f'<p class="note optuna-note">{esc(view.note)}</p>')
    return Section("optuna", "7. Optuna's view", "".join(parts))


def _short_spec(spec: object) -> str:
    """The data spec's source name, with the whole spec on hover: specs are long."""
    if not isinstance(spec, str) or not spec:
        return "–"
    return f'<span title="{esc(spec)}">{esc(spec.split("?", 1)[0])}</span>'


def paper_section(board: pd.DataFrame) -> Section:
    frame = paper_comparison(board)
    rows = []
    for r in frame.itertuples():
        measured = (
            "not run here"
            if r.n == 0
            else percent_pm(r.measured_acc / 100, r.measured_sd / 100) + f" (n={r.n})"
        )
        if r.n == 0:
            diff = "–"
        elif r.comparable:
            diff = f"{r.diff:+.2f}"
        else:
            diff = "– not comparable: " + "; ".join(r.differs)
        rows.append(
            [
                r.table,
                r.model,
                f"{r.reported_acc:.2f}",
                f"{r.reported_loss:g}",
                measured,
                number(r.measured_loss, 4),
                text(r.arch),
                Raw(_short_spec(r.data_spec)),
                diff,
            ]
        )
    body = (
        f"<p class=note><span class='tag reported'>reported</span> numbers are typed in from "
        f"the paper ({esc(PAPER)}): single runs, as printed. "
        "<span class='tag measured'>measured</span> numbers are ours, from the store: the "
        "group of the same model closest to the paper's setting (the paper's 16-block "
        "orderings, the same timm networks), mean ± sd of test accuracy over seeds (CK+: "
        "over fold means). A difference is given only where our run matches the paper's "
        "setting: FER+ votes read as <code>plurality</code> (Table 1's 10-way head and full "
        "splits) or CK+ cross-validated (Table 2), the paper protocol, the paper head and "
        "widths 64..512 with I expansion 6 for the orderings, the model's own stem for the "
        "baselines (the paper does not say which head its baselines had). Otherwise the "
        "last column says what differs.</p>"
    )
    body += table(
        [
            "table",
            "model",
            "paper: acc %",
            "paper: loss",
            "ours: test acc %",
            "ours: test loss",
            "ours: architecture",
            "our data",
            "ours − paper (pp)",
        ],
        rows,
        numeric=[2, 3, 5, 8],
        mono=[6],
        nowrap=[0, 1],
        table_id="paper",
    )
    return Section("paper", "8. The paper's numbers beside ours", body)


def ordering_section(board: pd.DataFrame) -> Section:
    shown = board[board["kind"] != "baseline"].head(ORDERING_ROWS)
    legend = "".join(
        f'<span class="cell legend-cell" style="background:{colour}">{letter}</span>{esc(what)}'
        for letter, colour, what in (
            ("R", LETTER_COLOURS["R"], "residual bottleneck (ResNet-50)"),
            ("I", LETTER_COLOURS["I"], "inverted residual (MobileNetV2)"),
        )
    )
    stages = [str(arch).split("|") for arch in shown["arch"]]
    width = max((len(s) for s in stages), default=0)
    rows = []
    for r, parts in zip(shown.itertuples(), stages, strict=True):
        cells = [Raw(stage_cells(stage)) for stage in parts] + [""] * (width - len(parts))
        rows.append([r.rank, *cells, r.family, percent_pm(r.test_acc_mean, r.test_acc_sd)])
    body = (
        "<p class=note>Each candidate's blocks from input to output, one column per stage "
        f"(each new stage halves the resolution). {legend}</p>"
    )
    body += table(
        ["#", *(f"stage {i}" for i in range(1, width + 1)), "family", "test acc %"],
        rows,
        numeric=[0, width + 2],
        table_id="orderings",
    )
    if len(shown) < int((board["kind"] != "baseline").sum()):
        body += f"<p class=note>The top {len(shown)} candidates.</p>"
    return Section("orderings", "9. Orderings", body)
