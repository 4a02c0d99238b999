"""`budget:NAME` and `validate-estimators --reference-budget`: a cheaper budget scored
like any estimator, its trainings recorded and reused, bad input refused before work."""

from __future__ import annotations

import json

import pytest
from _refusal import refused

from harness.cli import main
from harness.config import SMOKE_RECIPE
from harness.search.budgets import BUDGETS
from harness.store import Store

DATA = "synthetic?n=120&size=16"
TINY = ["--data", DATA, "--threads", "1", "--device", "cpu"]
SPACE = """
description = "three positions of R or I (8 networks)"
protocol = "fast"
[skeleton]
depths = [1, 1, 1]
widths = [64, 64, 64]
stem_width = 16
[architecture]
positions = ["R", "I"]
"""


@pytest.fixture()
def space(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SPACE)
    return str(path)


def _validate(space, url, *extra):
    return ["validate-estimators", "--space", space, "--trained", "3", "--db", url, "--json",
            *TINY, *extra]  # fmt: skip


def test_a_cheaper_budget_is_scored_and_its_trainings_reused(space, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'v.db'}"
    argv = _validate(
        space, url, "--reference-budget", "short", "--estimators", "params,budget:smoke"
    )
    assert main(argv) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["budget"] == "short"
    checks = {c["estimator"]: c for c in first["checks"]}
    assert set(checks) == {"params", "budget:smoke"}
    smoke = checks["budget:smoke"]
    assert smoke["candidates"] == 3 and -1 <= smoke["tau"] <= 1
    # Its seconds are the smoke trainings' own (two seeds each), not a lookup's.
    assert smoke["seconds_per_candidate"] > 0.05
    with Store(url) as store:
        trials = store.trials_frame()
    by_study = trials.groupby("study")["trial_id"].count().to_dict()
    smoke_study = next(s for s in by_study if "-smoke" in s)
    assert by_study[smoke_study] == 3 * BUDGETS["smoke"].named_seeds
    smoke_trial = int(trials[trials["study"] == smoke_study]["trial_id"].iloc[0])
    with Store(url) as store:
        config = store.trial(smoke_trial)["config"]
    assert config["epochs"] == BUDGETS["smoke"].epochs
    assert config["max_batches"] == BUDGETS["smoke"].max_batches
    assert config["lr"] == SMOKE_RECIPE["lr"]
    assert config["skeleton"]["stem"] == BUDGETS["smoke"].skeleton["stem"]
    # The reference's trials are at short's settings, in a study of their own.
    assert sum(n for s, n in by_study.items() if s != smoke_study) == 3

    assert main(argv) == 0
    second = json.loads(capsys.readouterr().out)
    again = {c["estimator"]: c for c in second["checks"]}["budget:smoke"]
    assert again["tau"] == smoke["tau"]
    assert again["seconds_per_candidate"] == pytest.approx(smoke["seconds_per_candidate"])
    with Store(url) as store:
        assert len(store.trials_frame()) == len(trials)  # nothing trained again


def test_budget_trials_have_the_budgets_own_settings(space, tmp_path):
    from harness.commands._search_args import search_from_args
    from harness.estimate.budget import BudgetEstimator
    from harness.estimate.rank import sample_configs

    args = _args(space, tmp_path, "--reference-budget", "paper", "--epochs", "2",
                 "--max-batches", "7", "--stem", "resnet", "--lr", "0.003")  # fmt: skip
    reference = search_from_args(args)
    config = sample_configs(reference, 1, seed=0)[0]
    assert (config.epochs, config.max_batches, config.skeleton["stem"]) == (2, 7, "resnet")
    cheap = BudgetEstimator("short", search=reference).config_for(config)
    short = BUDGETS["short"]
    assert (cheap.epochs, cheap.max_batches) == (short.epochs, short.max_batches)
    assert cheap.skeleton["stem"] == short.skeleton["stem"]
    assert cheap.lr == 0.003  # short has no recipe: the flag it leaves alone holds
    assert cheap.arch == config.arch and cheap.seed == config.seed and cheap.data == config.data
    smoke = BudgetEstimator("smoke", search=reference).config_for(config)
    assert smoke.lr == SMOKE_RECIPE["lr"] and smoke.batch_size == BUDGETS["smoke"].batch_size


def _args(space, tmp_path, *extra):
    from harness.cli import build_parser

    url = f"sqlite:///{tmp_path / 'a.db'}"
    return build_parser().parse_args(_validate(space, url, *extra))


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--estimators", "budget:tiny"], "unknown budget 'tiny'"),
        (["--estimators", "budget"], "estimator 'budget' needs an argument: budget:NAME"),
        (["--estimators", "params:x"], "estimator 'params' takes no argument"),
        (["--estimators", "bogus"], "budget:NAME"),
        (["--reference-budget", "huge"], "argument --reference-budget: invalid choice: 'huge'"),
        (
            ["--reference-budget", "smoke", "--estimators", "params,budget:short"],
            "budget:short is not cheaper than the reference budget smoke",
        ),
        (
            ["--reference-budget", "smoke", "--estimators", "budget:smoke"],
            "budget:smoke is not cheaper than the reference budget smoke",
        ),
    ],
)
def test_bad_budget_estimators_are_one_line_before_any_training(
    space, tmp_path, capsys, extra, message
):
    db = tmp_path / "bad.db"
    line = refused(_validate(space, f"sqlite:///{db}", *extra), capsys)
    assert message in line
    if db.exists():
        with Store(f"sqlite:///{db}") as store:
            assert store.trials_frame().empty
