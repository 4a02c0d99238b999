"""Every run of a search is a trial of its Optuna study, seed repeats included: what
Optuna's own tools (optuna-dashboard, `trials_dataframe`) show is what the store holds."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from _tiny_search import tiny_settings, tiny_training, write_space

import harness.trial
from harness.errors import ConfigError, StoreError
from harness.search import RunPlan, SearchSettings, run_search
from harness.search.study import REPEAT_ATTR, SEED_PARAM, STORE_ID_ATTR
from harness.store import Store

# A table of three named networks, as the paper's space is: each a row, each K seeds.
CHOICES = """
description = "three rows"
[skeleton]
depths = [2, 2]
widths = [16, 32]
[architecture]
choices = ["alternated", "RI", "IR"]
enqueue = ["alternated", "RI", "IR"]
"""


@pytest.fixture
def choices_space(tmp_path: Path) -> str:
    return write_space(tmp_path, CHOICES, "rows.toml")


def settings(space: str, url: str, **changes) -> SearchSettings:
    # budget short (tiny_settings): one seed per named ordering unless --repeats
    values = dict(data="synthetic?n=200&size=16", overrides=tiny_training(max_batches=1))
    return tiny_settings(space, url, **{**values, **changes})


def optuna_trials(url: str) -> list[optuna.trial.FrozenTrial]:
    return optuna.load_study(study_name="t", storage=url).trials


def fail_on_flops_count(monkeypatch, call: int, error: BaseException) -> None:
    """The `call`-th FLOPs count of the run raises `error` (a trial stopped midway)."""
    real = harness.trial.count_flops
    calls = [0]

    def failing(*args, **kwargs):
        calls[0] += 1
        if calls[0] == call:
            raise error
        return real(*args, **kwargs)

    monkeypatch.setattr(harness.trial, "count_flops", failing)


def test_repeats_are_trials_of_the_study_and_a_rerun_adds_none(choices_space, tmp_path, capsys):
    url = f"sqlite:///{tmp_path}/h.db"
    chosen = settings(choices_space, url, repeats=2, progress=True)
    result = run_search(chosen)
    assert result.n_trials == 3  # one per choice: the repeats do not count
    assert result.repeated == 6  # three rows, two seeds each
    trials = optuna_trials(url)
    with Store(url) as store:
        frame = store.trials_frame(study="t")
    # Every recorded run is an Optuna trial, and every Optuna trial a recorded run.
    assert len(trials) == len(frame) == 6
    assert all(t.state == optuna.trial.TrialState.COMPLETE for t in trials)
    assert sorted(t.user_attrs[STORE_ID_ATTR] for t in trials) == sorted(frame["trial_id"])
    assert sorted(frame["optuna_trial_number"]) == [t.number for t in trials]
    seeds: dict[str, list[int]] = {}
    for trial in trials:
        seeds.setdefault(trial.user_attrs["arch"], []).append(trial.params[SEED_PARAM])
    assert {arch: sorted(s) for arch, s in seeds.items()} == {a: [0, 1] for a in frame["arch"]}
    # The store agrees on each run's seed, and the repeats are marked as such.
    by_id = frame.set_index("trial_id")["seed"]
    assert all(by_id[t.user_attrs[STORE_ID_ATTR]] == t.params[SEED_PARAM] for t in trials)
    assert sorted(bool(t.user_attrs.get(REPEAT_ATTR)) for t in trials) == [False] * 3 + [True] * 3
    dataframe = optuna.load_study(study_name="t", storage=url).trials_dataframe()
    assert sorted(dataframe["params_seed"]) == [0, 0, 0, 1, 1, 1]
    # The repeats printed their lines as the other trials do, saying the seed.
    err = capsys.readouterr().err
    repeats = [t for t in trials if t.user_attrs.get(REPEAT_ATTR)]
    for trial in repeats:
        assert any(
            line.startswith(f"trial {trial.number:>3}") and line.endswith("(seed 1)")
            for line in err.splitlines()
        ), err
    assert (result.leaderboard["seeds"] == 2).all()

    again = run_search(chosen)
    assert len(optuna_trials(url)) == 6 and again.n_trials == 3 and again.repeated == 6
    with Store(url) as store:
        assert len(store.trials_frame(study="t")) == 6


def test_a_trial_stopped_by_ctrl_c_is_measured_by_the_next_run(
    choices_space, tmp_path, monkeypatch
):
    fail_on_flops_count(monkeypatch, 2, KeyboardInterrupt())
    url = f"sqlite:///{tmp_path}/h.db"
    with pytest.raises(KeyboardInterrupt):
        run_search(settings(choices_space, url))
    stopped = optuna_trials(url)[1]
    assert stopped.state == optuna.trial.TrialState.FAIL

    result = run_search(settings(choices_space, url))
    trials = optuna_trials(url)
    assert result.n_trials == 3
    done = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and len({t.user_attrs["arch"] for t in done}) == 3
    # The retry has the stopped trial's parameters and stays a named (unprunable) row.
    (retried,) = [t for t in done if t.params == stopped.params]
    assert retried.number > stopped.number and retried.user_attrs.get("enqueued")


def test_a_grid_search_ends_with_its_grid_and_a_rerun_adds_nothing(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        "[skeleton]\ndepths = [1, 1]\nwidths = [16, 32]\n[architecture]\npositions = ['R', 'I']\n"
    )
    url = f"sqlite:///{tmp_path}/h.db"
    chosen = settings(str(path), url, trials=6, sampler="grid")
    # Four networks: Optuna's grid sampler stops the study once each was tried.
    assert run_search(chosen).n_trials == 4
    assert run_search(chosen).n_trials == 4
    archs = [t.user_attrs["arch"] for t in optuna_trials(url)]
    assert sorted(archs) == sorted({"R|R", "R|I", "I|R", "I|I"})


def test_a_trial_an_environment_error_stopped_is_measured_by_the_next_run(
    choices_space, tmp_path, monkeypatch
):
    # skip_if_exists counts a failed trial as there: a store or data error must not
    # leave a row of the table out of every later run.
    fail_on_flops_count(monkeypatch, 2, StoreError("the database went away"))
    url = f"sqlite:///{tmp_path}/h.db"
    with pytest.raises(StoreError):
        run_search(settings(choices_space, url))
    stopped = optuna_trials(url)[1]
    assert stopped.state == optuna.trial.TrialState.FAIL
    run_search(settings(choices_space, url))
    done = [t for t in optuna_trials(url) if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(done) == 3 and len({t.user_attrs["arch"] for t in done}) == 3
    # Measured as the named row it was, not found again by the sampler's luck.
    (retried,) = [t for t in done if t.params == stopped.params]
    assert retried.number > stopped.number and retried.user_attrs.get("enqueued")


def test_a_grid_point_stopped_last_is_measured_by_the_next_run(tmp_path, monkeypatch):
    # Optuna's grid sampler counts the stopped point as visited; its queued retry runs.
    path = tmp_path / "grid.toml"
    path.write_text(
        "[skeleton]\ndepths = [1, 1]\nwidths = [16, 32]\n[architecture]\npositions = ['R', 'I']\n"
    )
    fail_on_flops_count(monkeypatch, 4, KeyboardInterrupt())
    url = f"sqlite:///{tmp_path}/h.db"
    chosen = settings(str(path), url, trials=6, sampler="grid")
    with pytest.raises(KeyboardInterrupt):
        run_search(chosen)
    run_search(chosen)
    done = [t for t in optuna_trials(url) if t.state == optuna.trial.TrialState.COMPLETE]
    assert sorted(t.user_attrs["arch"] for t in done) == sorted(["R|R", "R|I", "I|R", "I|I"])


def test_a_space_cannot_search_the_seed_and_repeats_stay_in_the_seed_range(tmp_path):
    path = tmp_path / "seedy.toml"
    path.write_text(
        "[skeleton]\ndepths = [1, 1]\n[architecture]\npositions = ['R', 'I']\n"
        "[search.train.seed]\nlow = 0\nhigh = 5\n"
    )
    url = f"sqlite:///{tmp_path}/h.db"
    with pytest.raises(
        ConfigError, match="search.*.seed: parameter name is used twice or reserved"
    ):
        RunPlan.resolve(settings(str(path), url))
    plain = tmp_path / "plain.toml"
    plain.write_text("[skeleton]\ndepths = [1, 1]\n[architecture]\npositions = ['R', 'I']\n")
    last = 4_294_967_295
    assert RunPlan.resolve(settings(str(plain), url, seed=last - 1, repeats=2)).settings.seed
    with pytest.raises(ConfigError, match=f"--seed {last} with 2 seeds would pass the last seed"):
        RunPlan.resolve(settings(str(plain), url, seed=last, repeats=2))


def test_the_default_database_folder_is_made_for_optuna_too(choices_space, tmp_path, monkeypatch):
    # `harness run` from a folder without results/: our store makes it, Optuna cannot.
    from harness.store.engine import DEFAULT_DB_URL

    monkeypatch.chdir(tmp_path)
    result = run_search(settings(choices_space, DEFAULT_DB_URL))
    assert result.n_trials == 3 and (tmp_path / "results" / "harness.db").is_file()
