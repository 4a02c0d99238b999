"""Every sampler and pruner `harness run` offers runs a search end to end (issue 23).

The lists are read from the CLI's own `--sampler` and `--pruner` choices, so a
sampler or pruner added there is run here without a change to this file (as
Optuna's tests parametrise over its samplers). Each run is tiny: a 4-network
space, 120 images of 16x16, two batches an epoch, three trials, one thread.
"""

from __future__ import annotations

import argparse
import json
import textwrap
from pathlib import Path
from typing import Any

import optuna
import pytest

from harness.cli import build_parser
from harness.cli import main as harness_main
from harness.search import samplers
from harness.search.study import STORE_ID_ATTR
from harness.store import Store

SPACE = """
description = "four networks"
[skeleton]
depths = [1, 1]
widths = [8, 16]
[architecture]
positions = ["R", "I"]
"""
TRIALS = 3
# NSGA-II is a multi-objective algorithm; `harness run` refuses it for accuracy alone.
MULTI_OBJECTIVE_ONLY = {"nsga2"}


def run_choices(flag: str) -> tuple[str, ...]:
    """The choices of `harness run FLAG`, as the parser offers them."""
    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    run = commands.choices["run"]
    return tuple(next(a for a in run._actions if flag in a.option_strings).choices)


CLI_SAMPLERS = run_choices("--sampler")
CLI_PRUNERS = run_choices("--pruner")


def test_the_cli_offers_every_sampler_and_pruner_the_library_makes():
    assert set(CLI_SAMPLERS) == set(samplers.SAMPLERS)
    assert set(CLI_PRUNERS) == set(samplers.PRUNERS)


@pytest.fixture
def tiny_run(tmp_path: Path) -> list[str]:
    space = tmp_path / "tiny.toml"
    space.write_text(textwrap.dedent(SPACE))
    return [
        "run", "--space", str(space), "--data", "synthetic?n=120&size=16",
        "--trials", str(TRIALS), "--epochs", "1", "--max-batches", "2", "--batch-size", "16",
        "--threads", "1", "--device", "cpu", "--db", f"sqlite:///{tmp_path}/h.db",
        "--study", "t", "--no-report", "--quiet", "--json",
    ]  # fmt: skip


def db_url(argv: list[str]) -> str:
    return argv[argv.index("--db") + 1]


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    assert harness_main(argv) == 0
    return json.loads(capsys.readouterr().out)


def assert_recorded(url: str, summary: dict[str, Any], sampler: str) -> None:
    """TRIALS trials in Optuna and in the store, one row each, under the study's sampler."""
    finished = [
        t for t in optuna.load_study(study_name="t", storage=url).trials if t.state.is_finished()
    ]
    assert len(finished) == TRIALS and summary["trials"] == TRIALS
    with Store(url) as store:
        trials = store.trials_frame(study="t")
        studies = store.studies_frame().set_index("study")
    assert len(trials) == TRIALS
    assert sorted(trials["optuna_trial_number"]) == sorted(t.number for t in finished)
    assert set(trials["status"]) <= {"complete", "pruned"} and "complete" in set(trials["status"])
    assert summary["statuses"] == trials["status"].value_counts().to_dict()
    assert studies.loc["t", "sampler"] == sampler


@pytest.mark.parametrize("sampler", CLI_SAMPLERS)
def test_every_sampler_searches_two_objectives_and_keeps_a_pareto_front(sampler, tiny_run, capsys):
    url = db_url(tiny_run)
    summary = run([*tiny_run, "--sampler", sampler, "--objectives", "accuracy,flops"], capsys)
    assert_recorded(url, summary, sampler)
    study = optuna.load_study(study_name="t", storage=url)
    assert len(study.directions) == 2
    front = {t.user_attrs[STORE_ID_ATTR] for t in study.best_trials}
    assert front and set(summary["pareto_trial_ids"]) == front
    marked = {row["trial_ids"][0] for row in summary["leaderboard"] if row["pareto"]}
    assert marked == front
    if sampler == "grid":  # a grid draws each point once
        assert len({t.user_attrs["arch"] for t in study.trials}) == TRIALS


@pytest.mark.parametrize("sampler", CLI_SAMPLERS)
def test_every_sampler_searches_accuracy_alone_or_refuses_it(sampler, tiny_run, capsys):
    argv = [*tiny_run, "--sampler", sampler]
    if sampler in MULTI_OBJECTIVE_ONLY:
        assert_refused_before_any_work(argv, capsys, f"--sampler {sampler}", "objectives")
        return
    summary = run(argv, capsys)
    assert_recorded(db_url(tiny_run), summary, sampler)
    assert summary["pareto_trial_ids"] == []


def assert_refused_before_any_work(argv: list[str], capsys, *needles: str) -> None:
    assert harness_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: error: ") and err.count("\n") == 1, err
    assert all(needle in err for needle in needles), err
    assert not Path(db_url(argv).removeprefix("sqlite:///")).exists()


def test_a_grid_larger_than_its_limit_is_refused_before_any_work(tiny_run, tmp_path, capsys):
    positions = samplers.GRID_LIMIT.bit_length()  # 2**positions networks > GRID_LIMIT
    space = tmp_path / "wide.toml"
    space.write_text(SPACE.replace("depths = [1, 1]", f"depths = [{positions - 1}, 1]"))
    argv = [*tiny_run, "--sampler", "grid"]
    argv[argv.index("--space") + 1] = str(space)
    assert_refused_before_any_work(argv, capsys, "--sampler grid", f"limit {samplers.GRID_LIMIT:,}")


@pytest.mark.parametrize("pruner", CLI_PRUNERS)
def test_every_pruner_is_asked_after_each_epoch_but_the_last(pruner, tiny_run, capsys, monkeypatch):
    # open_study looks make_pruner up in the samplers module: wrap it to see the pruner
    # Optuna was given, and count the epochs it judged.
    judged: list[int] = []
    make_pruner = samplers.make_pruner

    def counted(*args: Any, **kwargs: Any) -> optuna.pruners.BasePruner:
        made = make_pruner(*args, **kwargs)
        prune = made.prune

        def asked(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
            judged.append(trial.last_step)
            return prune(study, trial)

        made.prune = asked  # type: ignore[method-assign]
        return made

    monkeypatch.setattr(samplers, "make_pruner", counted)
    argv = [*tiny_run, "--sampler", "random", "--pruner", pruner]
    argv[argv.index("--epochs") + 1] = "2"  # a trial's last epoch is never judged
    summary = run(argv, capsys)
    assert_recorded(db_url(tiny_run), summary, "random")
    assert judged and set(judged) == {1}
    if pruner == "none":
        assert summary["statuses"] == {"complete": TRIALS}
