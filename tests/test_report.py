"""The benchmark report, built from a store filled by real (tiny) training runs.

Every check recomputes a number from the database and looks for it on the
page, so a number that is not traceable to the store fails a test.
"""

from __future__ import annotations

import base64
import functools
import json
import math
import re
import statistics
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from harness.artifacts import trials_with_weights
from harness.cli import main
from harness.report import ReportError, markdown_leaderboard, write_report
from harness.report.gather import input_remedy
from harness.report.tables import pareto_front
from harness.stats import mean_ci, welch
from harness.store import Store
from harness.tables import percent, percent_pm, si

DATA = "synthetic?n=600&size=32"
PAPER_ORDERINGS = ("R*8 I*8", "(IR)*8", "I*8 R*8")
RI_PAPER = "RRR|RRRR|RIIIII|III"  # R*8 I*8 on the 3/4/6/3 skeleton


# -- the filled store ---------------------------------------------------------------------


def _config(arch: str, seed: int = 0, **overrides: Any) -> Any:
    from harness.config import TrainConfig

    # Batch 32 so that one-cycle gets enough steps from 420 training images.
    return TrainConfig.from_protocol(
        "fast",
        arch=arch,
        data=DATA,
        epochs=3,
        batch_size=32,
        skeleton={"width_mult": 0.125},
        seed=seed,
        threads=1,
        **overrides,
    )


@functools.cache
def filled_db(root: Path) -> str:
    """Train the report's runs once per test session (about 25 s on two busy cores).

    Study `orderings`: the paper's three 16-block orderings with two seeds each,
    one "other" ordering, two timm baselines with different input remedies, and
    one candidate pruned by a FLOPs constraint. Study `search`: a real Optuna
    study (same name, same database) of four trials.
    """
    import optuna

    from harness.artifacts import save_trial_weights, upload_weights
    from harness.trial import Constraints, load_trial_dataset, run_trial

    url = f"sqlite:///{root / 'report.db'}"
    store = Store(url)
    dataset = load_trial_dataset(DATA)
    for arch in PAPER_ORDERINGS:
        for seed in (0, 1):
            run_trial(_config(arch, seed), store, study="orderings", dataset=dataset)
    run_trial(_config("R I I R"), store, study="orderings", dataset=dataset)
    run_trial(
        _config("timm:mobilenetv2_050", baseline_stem="timm"),
        store,
        study="orderings",
        dataset=dataset,
    )
    run_trial(_config("timm:mobilenetv2_035", resize=96), store, study="orderings", dataset=dataset)
    run_trial(
        _config("R*4 I*4"),
        store,
        study="orderings",
        dataset=dataset,
        constraints=Constraints(max_flops=1000),
    )

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(
        study_name="search",
        storage=url,
        direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=0),
    )

    artifacts = str(root / "artifacts")

    def objective(trial: optuna.Trial) -> float:
        arch = trial.suggest_categorical("arch", ["R*2 I*2", "I*2 R*2", "(RI)*2"])
        lr = trial.suggest_float("lr", 1e-3, 1e-2, log=True)

        def keep(model: Any, outcome: Any, dataset: Any) -> None:
            # The first two trials keep their weights: the leaderboard links them.
            if trial.number < 2:
                file = save_trial_weights(model.state_dict(), root, outcome.trial_id, {})
                upload_weights(
                    store, artifacts, file, trial_id=outcome.trial_id, optuna_trial=trial
                )

        outcome = run_trial(
            _config(arch, lr=lr),
            store,
            study="search",
            dataset=dataset,
            optuna_trial_number=trial.number,
            keep_weights=keep,
        )
        return outcome.val_acc

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        study.optimize(objective, n_trials=4)
    store.close()
    return url


@pytest.fixture(scope="module")
def db_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    return filled_db(tmp_path_factory.getbasetemp())


@pytest.fixture(scope="module")
def store(db_url: str) -> Any:
    with Store(db_url, create=False) as opened:
        yield opened


@pytest.fixture(scope="module")
def page(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report") / "both.html"
    status = main(
        ["report", "--db", db_url, "--study", "orderings", "--study", "search", "-o", str(path)]
    )
    assert status == 0
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def orderings_page(db_url: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("report") / "orderings.html"
    with Store(db_url, create=False) as opened:
        write_report(opened, ["orderings"], path)
    return path.read_text(encoding="utf-8")


# -- reading the page back ----------------------------------------------------------------


class _Tables(HTMLParser):
    """Cell texts of every table with an id: {id: [[cell, ...], ...]} (body rows only)."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[list[str]]] = {}
        self._current: str | None = None
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self._current = dict(attrs).get("id")
            if self._current:
                self.tables[self._current] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._current and self._in_body:
            self.tables[self._current].append([])
        elif tag == "td" and self._current and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._current:
            # Pieces joined by spaces: "timm:x" + "input: ..." must not run together.
            self.tables[self._current][-1].append(" ".join(" ".join(self._cell).split()))
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._current = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def tables_of(html: str) -> dict[str, list[list[str]]]:
    parser = _Tables()
    parser.feed(html)
    return parser.tables


def _decode(value: Any) -> Any:
    """Plotly writes numeric arrays as base64 typed arrays; turn them back into lists."""
    import numpy as np

    if isinstance(value, dict):
        if set(value) >= {"dtype", "bdata"}:
            array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
            if "shape" in value:
                shape = [int(n) for n in str(value["shape"]).split(",")]
                array = array.reshape(shape)
            return array.tolist()
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


def plot_data(html: str, div_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The traces and layout that the page passes to Plotly.newPlot for `div_id`."""
    match = re.search(r'Plotly\.newPlot\(\s*"' + re.escape(div_id) + r'",', html)
    assert match, f"no figure {div_id} on the page"
    end = match.end()
    decoder = json.JSONDecoder()
    text = html[end:].lstrip()
    data, offset = decoder.raw_decode(text)
    text = text[offset:].lstrip()[1:].lstrip()  # the comma between arguments
    layout, _ = decoder.raw_decode(text)
    return _decode(data), _decode(layout)


# -- statistics ---------------------------------------------------------------------------


def test_welch_matches_reference_and_refuses_too_few_runs() -> None:
    result = welch([1, 2, 3, 4], [2, 4, 6, 8, 10])
    assert result is not None
    assert result.t == pytest.approx(-2.251436, abs=1e-6)
    assert result.df == pytest.approx(5.520788, abs=1e-6)
    assert result.p == pytest.approx(0.069134, abs=1e-6)
    assert result.low < result.diff == -3.5 < result.high
    assert welch([0.5], [0.4, 0.6]) is None
    assert welch([0.5, 0.5], [0.4, 0.4]) is None  # no spread: t is undefined


def test_mean_ci_uses_the_t_distribution() -> None:
    ci = mean_ci([1.0, 2.0, 3.0])
    assert (ci.n, ci.mean, ci.sd) == (3, 2.0, 1.0)
    assert ci.high - ci.mean == pytest.approx(4.302653 / math.sqrt(3), abs=1e-6)
    assert math.isnan(mean_ci([1.0]).sd)


def test_pareto_front_keeps_only_undominated_points() -> None:
    import pandas as pd

    frame = pd.DataFrame({"cost": [1, 2, 3, 4, 2], "acc": [0.5, 0.7, 0.6, 0.9, 0.4]})
    front = pareto_front(frame, "cost", "acc")
    assert list(front["cost"]) == [1, 2, 4]
    assert list(front["acc"]) == [0.5, 0.7, 0.9]


def test_input_remedy_reads_the_recorded_config() -> None:
    assert input_remedy({"resize": 96, "baseline_stem": "timm"}) == (
        "upsampled to 96 px; timm stem unchanged"
    )
    assert "small-input stem" in input_remedy({"baseline_stem": "small"})
    assert input_remedy(None) == "none recorded"


# -- the page against the database --------------------------------------------------------


def _groups(store: Store, study: str) -> dict[tuple[int, ...], Any]:
    """Complete trials of `study` by their trial-id list, as the leaderboard groups them."""
    frame = store.trials_frame(study=study, status="complete")
    frame["hyper"] = [json.dumps(h, sort_keys=True) for h in frame["hyperparameters"]]
    groups = {}
    for _, part in frame.groupby(["candidate_id", "hyper"]):
        groups[tuple(int(i) for i in sorted(part["trial_id"]))] = part
    return groups


def test_every_leaderboard_number_comes_from_the_database(page: str, store: Store) -> None:
    rows = tables_of(page)["leaderboard"]
    groups = {**_groups(store, "orderings"), **_groups(store, "search")}
    assert len(rows) == len(groups) == 10
    trial_ids = [int(i) for r in rows for i in r[11].split(", ")]
    kept = trials_with_weights(store, trial_ids)
    for row in rows:
        rank, study, arch, family, runs, val, test, loss, params, flops, latency, ids, weights = row
        part = groups[tuple(int(i) for i in ids.split(", "))]
        best = int(
            part.sort_values(["val_acc", "trial_id"], ascending=[False, True]).iloc[0]["trial_id"]
        )
        with_weights = [best] if best in kept else [int(i) for i in part["trial_id"] if i in kept]
        expected = f"harness export {with_weights[0]} --db " if with_weights else "not kept"
        assert weights.startswith(expected), (weights, expected)
        first = part.iloc[0]
        assert study == first["study"]
        assert arch.startswith(first["arch"])
        assert family == ("baseline" if first["kind"] == "baseline" else first["family"])
        assert int(runs) == len(part)
        for cell, column in ((val, "val_acc"), (test, "test_acc")):
            values = list(part[column])
            sd = statistics.stdev(values) if len(values) > 1 else None
            assert cell == percent_pm(statistics.mean(values), sd)
        assert loss == f"{statistics.mean(part['test_loss']):.4f}"
        assert params == si(first["params"])
        assert flops == si(first["flops"])
        assert latency == f"{first['latency_ms']:.2f}"
    # Ranked by mean validation accuracy.
    means = [float(r[5].split(" ")[0]) for r in rows]
    assert means == sorted(means, reverse=True)
    # Both branches: rows whose trials kept weights link the command, the others say so.
    assert len(kept) == 2
    assert {r[12] == "not kept" for r in rows} == {True, False}


def test_baselines_say_which_input_remedy_they_used(page: str, store: Store) -> None:
    rows = {r[2].split(" ")[0]: r for r in tables_of(page)["leaderboard"]}
    for trial in store.trials_frame(study="orderings").itertuples():
        if trial.kind != "baseline":
            continue
        config = store.trial(int(trial.trial_id))["config"]
        assert f"input: {input_remedy(config)}" in rows[trial.arch][2]
    assert "upsampled to 96 px" in rows["timm:mobilenetv2_035"][2]
    assert "timm stem unchanged" in rows["timm:mobilenetv2_050"][2]


def test_header_counts_trials_by_status(page: str, store: Store) -> None:
    frame = store.trials_frame()
    counts = frame["status"].value_counts()
    assert f"{len(frame)}: {counts['complete']} complete, {counts['pruned']} pruned" in page
    assert counts["pruned"] == 1
    assert str(frame["data_fingerprint"].iloc[0]) in page
    environment = store.trial(int(frame["trial_id"].max()))["environment"]
    assert f"torch {environment['torch']}" in page


def test_family_comparison_matches_the_runs(page: str, store: Store) -> None:
    # Set 1 is study `orderings` (one protocol, data, setting and skeleton); the search
    # study's runs differ in study and learning rate, so none of them is pooled in.
    frame = store.trials_frame(study="orderings", status="complete")
    candidates = frame[frame["kind"] == "candidate"]
    summary = {row[0]: row for row in tables_of(page)["family-summary"]}
    for family in ("alternated", "RI", "IR", "other"):
        values = list(candidates.loc[candidates["family"] == family, "test_acc"])
        assert int(summary[family][1]) == len(values)
        assert summary[family][3] == percent(statistics.mean(values))
    assert summary["other"][5] == "not enough runs"

    rows = tables_of(page)["pairwise"]
    pairs = {(r[0], r[1]): r for r in rows}
    ri = list(candidates.loc[candidates["family"] == "RI", "test_acc"])
    alternated = list(candidates.loc[candidates["family"] == "alternated", "test_acc"])
    row = pairs[("RI", "alternated")]
    assert (int(row[2]), int(row[3])) == (len(ri), len(alternated))
    expected = welch(ri, alternated)
    if expected is None:
        assert "cannot test" in row[10] or "not enough" in row[10]
    else:
        assert row[8] == f"{expected.p:.3g}"
    assert "not enough runs" in pairs[("RI", "other")][10]
    # Holm over the table's testable rows.
    raw = [float(r[8]) if r[8] != "–" else math.nan for r in rows]
    adjusted = [float(r[9]) if r[9] != "–" else math.nan for r in rows]
    from harness.stats import holm

    for got, want in zip(adjusted, holm(raw), strict=True):
        assert (math.isnan(got) and math.isnan(want)) or got == pytest.approx(want, rel=2e-3)


def test_comparison_says_what_it_held_fixed_and_is_marked_a_pipeline_check(page: str) -> None:
    section = page[page.index('id="families"') :]
    held = section[section.index('class="facts held"') :]
    held = held[: held.index("</dl>")]
    assert "<dt>study</dt><dd>orderings</dd>" in held
    assert "<dt>data</dt><dd>synthetic?n=600&amp;" in held and "size=32" in held
    assert "<dt>protocol</dt><dd>fast</dd>" in held
    assert "<dt>seeds</dt><dd>0, 1</dd>" in held
    assert "widths 64/128/256/512 × 0.125" in held
    assert "Pipeline check, not a finding" in section[: section.index("<h3>")]
    assert "Holm" in section


def test_networks_are_compared_seed_by_seed_and_image_by_image(page: str, store: Store) -> None:
    from harness.stats import mcnemar, paired

    frame = store.trials_frame(study="orderings", status="complete")
    by_arch = {arch: part.set_index("seed").sort_index() for arch, part in frame.groupby("arch")}
    rows = {(r[0], r[1]): r for r in tables_of(page)["paired"]}
    ri, alternated = by_arch[RI_PAPER], by_arch["IRI|RIRI|RIRIRI|RIR"]
    row = rows.get((RI_PAPER, "IRI|RIRI|RIRIRI|RIR")) or rows[("IRI|RIRI|RIRIRI|RIR", RI_PAPER)]
    first_is_ri = row[0] == RI_PAPER
    a, b = (ri, alternated) if first_is_ri else (alternated, ri)
    assert int(row[2]) == 2  # both seeds shared
    expected = paired(list(a["test_acc"]), list(b["test_acc"]))
    assert row[5] == (f"{expected.p:.3g}" if not math.isnan(expected.p) else "–")
    # McNemar on seed 0's two models, from the stored per-image predictions.
    ids = [int(a.loc[0, "trial_id"]), int(b.loc[0, "trial_id"])]
    stored = store.trial_columns(ids, ["test_predictions", "test_targets"])
    first, second = stored[ids[0]], stored[ids[1]]
    assert len(first["test_predictions"]) == len(first["test_targets"]) > 0
    test = mcnemar(first["test_predictions"], second["test_predictions"], first["test_targets"])
    assert row[8] == f"{test.only_a}/{test.only_b} of {test.n}, seed 0"
    assert row[9] == f"{test.p:.3g}"


def test_scatter_shows_families_baselines_and_the_pareto_front(page: str, store: Store) -> None:
    traces, layout = plot_data(page, "fig-flops")
    names = [t["name"] for t in traces]
    assert names[0] == "Pareto front"
    assert {"alternated", "RI", "IR", "other"} <= set(names)
    baselines = [t for t in traces if t["name"].startswith("timm:")]
    assert len(baselines) == 2
    assert {t["marker"]["symbol"] for t in baselines} <= {"diamond", "square", "triangle-up"}
    assert len({t["marker"]["symbol"] for t in baselines}) == 2
    hover = [c[0] for t in traces[1:] for c in t["customdata"]]
    assert RI_PAPER in hover
    assert layout["xaxis"]["title"]["text"].startswith("FLOPs")
    # The front's points are leaderboard points no other point beats on both axes.
    points = [(x, y) for t in traces[1:] for x, y in zip(t["x"], t["y"], strict=True)]
    front = list(zip(traces[0]["x"], traces[0]["y"], strict=True))
    for fx, fy in front:
        assert (fx, fy) in points
        assert not any(x <= fx and y > fy for x, y in points)


def test_learning_curves_are_the_recorded_epochs(page: str, store: Store) -> None:
    traces, _ = plot_data(page, "fig-curves")
    labelled = [t for t in traces if t.get("showlegend")]
    assert any(t["name"].startswith("baseline") for t in labelled)
    first = labelled[0]
    trial_id = int(re.search(r"\(trial (\d+)\)", first["name"]).group(1))
    epochs = store.epochs(trial_id)
    assert first["x"] == [e["epoch"] for e in epochs]
    assert first["y"] == pytest.approx([e["train_loss"] for e in epochs])


def test_confusion_matrix_is_the_best_candidates(page: str, store: Store) -> None:
    best_row = next(r for r in tables_of(page)["leaderboard"] if not r[2].startswith("timm:"))
    ids = [int(i) for i in best_row[11].split(", ")]
    best = max((store.trial(i) for i in ids), key=lambda t: (t["val_acc"], -t["id"]))
    traces, layout = plot_data(page, "fig-confusion")
    assert traces[0]["text"] == best["confusion"]
    assert traces[0]["x"] == best["class_names"] == traces[0]["y"]
    assert f"trial {best['id']}" in layout["title"]["text"]


def test_optuna_view_only_where_an_optuna_study_exists(page: str, orderings_page: str) -> None:
    history, _ = plot_data(page, "fig-optuna-search-0")
    assert len(history[0]["x"]) == 4  # the four Optuna trials
    plot_data(page, "fig-optuna-search-1")  # parameter importances
    assert "no Optuna study named &#x27;orderings&#x27;" in orderings_page
    assert "fig-optuna" not in orderings_page


def test_paper_numbers_are_labelled_and_compared(page: str, store: Store) -> None:
    rows = tables_of(page)["paper"]
    assert len(rows) == 12
    ri = next(r for r in rows if r[0] == "Table 1" and r[1] == "RI network")
    assert ri[2] == "81.98"
    values = list(
        store.trials_frame(study="orderings", status="complete").query("arch == @RI_PAPER")[
            "test_acc"
        ]
    )
    assert ri[4] == f"{percent_pm(statistics.mean(values), statistics.stdev(values))} (n=2)"
    assert ri[6] == RI_PAPER
    # Synthetic data, the fast protocol, a linear head, an eighth of the widths: each named.
    assert ri[8].startswith("– not comparable: data synthetic (paper: ferplus)")
    for differs in ("labels hard (paper: plurality)", "protocol fast (paper: paper)",
                    "head linear (paper: paper)", "I expansion default (paper: 6)"):  # fmt: skip
        assert differs in ri[8]
    assert next(r for r in rows if r[1] == "ResNet-50")[4] == "not run here"
    assert "reported</span> numbers are typed in from the paper" in page


def test_ordering_picture_draws_every_block(page: str) -> None:
    rows = tables_of(page)["orderings"]
    leaderboard = [r for r in tables_of(page)["leaderboard"] if not r[2].startswith("timm:")]
    assert len(rows) == len(leaderboard)
    for picture, board_row in zip(rows, leaderboard, strict=True):
        stages = board_row[2].split("|")
        assert picture[1 : 1 + len(stages)] == [" ".join(s) for s in stages]


def test_page_is_self_contained(page: str) -> None:
    import plotly.offline

    library = plotly.offline.get_plotlyjs()
    assert page.count("* plotly.js v") == 1  # embedded once
    outside = page.replace(library, "")
    assert len(outside) < len(page) - len(library) // 2  # the library is inlined verbatim
    # Eight figures: three scatters, families, curves, confusion, Optuna's two.
    assert outside.count('class="plotly-graph-div plot"') == 8
    assert not re.search(r"<script[^>]+src=", outside)
    assert not re.search(r"<link[^>]+href=", outside)
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", outside)
    assert len(page.encode()) < 10 * 2**20


def test_markdown_leaderboard(db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", "--db", db_url, "--study", "orderings", "--format", "md"]) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    with Store(db_url, create=False) as opened:
        groups = _groups(opened, "orderings")
        assert len(lines) == 1 + len(groups)
        assert markdown_leaderboard(opened, ["orderings"]) == out.rstrip("\n")
    assert "`RRR\\|RRRR\\|RIIIII\\|III`" in out


def test_default_study_and_path(db_url: str, tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with Store(db_url, create=False) as opened:
        path = write_report(opened, None, None)
    assert path == Path("reports/search.html")  # the study of the newest trial
    assert "Benchmark report: search" in path.read_text(encoding="utf-8")
    assert main(["report", "--db", db_url, "--study", "orderings"]) == 0
    assert capsys.readouterr().out.strip() == "reports/orderings.html"
    assert not list(Path("reports").glob(".*partial"))


def test_unknown_or_empty_study_exits_2(db_url: str, tmp_path: Path, capsys) -> None:
    assert main(["report", "--db", db_url, "--study", "nope", "-o", str(tmp_path / "x.html")]) == 2
    err = capsys.readouterr().err
    assert "unknown study 'nope'" in err and "known: orderings, search" in err
    assert not (tmp_path / "x.html").exists()

    empty = f"sqlite:///{tmp_path / 'empty.db'}"
    with Store(empty) as opened:
        opened.ensure_study("fresh")
        with pytest.raises(ReportError, match="no trials"):
            write_report(opened, None, tmp_path / "y.html")
    assert main(["report", "--db", empty, "--study", "fresh"]) == 2
    assert "study 'fresh' has no trials yet" in capsys.readouterr().err
    assert main(["report", "--db", empty, "--format", "md"]) == 2
    assert "no trials in" in capsys.readouterr().err


def test_report_of_a_study_without_complete_trials(tmp_path: Path, record_trial: Any) -> None:
    with Store(f"sqlite:///{tmp_path / 'failed.db'}") as opened:
        record_trial(
            opened,
            study="broken",
            arch="R|I",
            epochs=0,
            status="failed",
            reason="loss became NaN",
            val_acc=None,
            test_acc=None,
        )
        page = write_report(opened, None, tmp_path / "broken.html").read_text(encoding="utf-8")
    assert "1: 0 complete, 0 pruned, 1 failed" in page
    assert tables_of(page)["leaderboard"] == []
    assert "No complete trial." in page
