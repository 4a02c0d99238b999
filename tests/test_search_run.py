"""Searches end to end on tiny spaces and data: enqueue, dedup, constraints, pruning,
resume, workers, PostgreSQL, Pareto fronts, and a worker killed mid-trial."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from _tiny_search import NAMED, TINY_SPACE, tiny_settings, write_space

from harness.search import SearchSettings, run_search
from harness.search.study import STORE_ID_ATTR
from harness.store import Store


@pytest.fixture
def space(tmp_path: Path) -> str:
    return write_space(tmp_path)


@pytest.fixture
def unnamed_space(tmp_path: Path) -> str:
    """The tiny space with nothing enqueued: every trial is the sampler's (prunable)."""
    text = TINY_SPACE.replace('enqueue = ["alternated", "RI", "IR"]', "")
    return write_space(tmp_path, text, "unnamed.toml")


def settings(space: str, url: str, **changes) -> SearchSettings:
    # `short` (tiny_settings): one seed per named ordering (smoke gives them two; tested below).
    return tiny_settings(space, url, **{"trials": 3, "heartbeat_s": 1, "grace_s": 3, **changes})


def optuna_study(url: str, name: str = "t") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=url)


def test_smoke_run_measures_the_named_orderings_and_ranks_from_the_store(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    result = run_search(settings(space, url, trials=4))
    assert result.n_trials == 4
    with Store(url) as store:
        trials = store.trials_frame(study="t")
    assert set(NAMED.values()) <= set(trials["arch"])
    families = dict(zip(trials["arch"], trials["family"], strict=True))
    assert [families[NAMED[n]] for n in ("alternated", "RI", "IR")] == ["alternated", "RI", "IR"]
    board = result.leaderboard
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    complete = trials[trials["status"] == "complete"].set_index("trial_id")
    for row in board.to_dict(orient="records"):
        (trial_id,) = row["trial_ids"]
        assert row["val_acc"] == complete.loc[trial_id, "val_acc"]
        assert row["test_acc"] == complete.loc[trial_id, "test_acc"]
        assert row["arch"] == complete.loc[trial_id, "arch"]
    assert list(board["val_acc"]) == sorted(board["val_acc"], reverse=True)


def test_resume_continues_the_study(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    run_search(settings(space, url, trials=2))
    first = [t.number for t in optuna_study(url).trials if t.state.is_finished()]
    assert len(first) == 2  # the third ordering still waits in the queue
    result = run_search(settings(space, url, trials=4))
    study = optuna_study(url)
    assert [t.number for t in study.trials][:2] == first
    assert len(study.trials) == 4 and result.n_trials == 4
    assert all(t.state.is_finished() for t in study.trials)
    # The enqueued orderings were not enqueued again on resume.
    enqueued = [t.user_attrs["arch"] for t in study.trials if t.user_attrs.get("enqueued")]
    assert sorted(enqueued) == sorted(NAMED.values())


def test_identical_trials_reuse_stored_results(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    run_search(settings(space, url, trials=3))
    with Store(url) as store:
        before = len(store.trials_frame())
    # Another study, same experiment: the three orderings come from the store, untrained,
    # and are recorded in the new study too (its leaderboard must have its rows).
    run_search(settings(space, url, trials=3, study="again"))
    again = optuna_study(url, "again")
    assert all(t.user_attrs["reused"] for t in again.trials)
    with Store(url) as store:
        first, copied = store.trials_frame(study="t"), store.trials_frame(study="again")
        assert len(store.trials_frame()) == before + len(copied) and len(copied) == 3
    assert all(r.startswith("reused from trial") for r in copied["reason"])
    assert sorted(copied["test_acc"]) == sorted(first["test_acc"])


def test_constraints_reject_before_training(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    run_search(settings(space, url, trials=2, constraints={"max_flops": 1000.0}))
    states = [t.state for t in optuna_study(url).trials if t.state.is_finished()]
    assert states == [optuna.trial.TrialState.PRUNED] * 2
    with Store(url) as store:
        trials = store.trials_frame(study="t")
        assert set(trials["status"]) == {"pruned"}
        assert all("constraint" in r and "FLOPs" in r for r in trials["reason"])
        assert (trials["epochs"] == 0).all()


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_pruned_trials_keep_their_curves(unnamed_space, tmp_path, monkeypatch):
    # open_study looks make_pruner up in the samplers module each time it runs.
    monkeypatch.setattr("harness.search.samplers.make_pruner", lambda *a, **k: _AlwaysPrune())
    url = f"sqlite:///{tmp_path}/h.db"
    overrides = {"epochs": 3, "batch_size": 32, "max_batches": 1, "skeleton": {"width_mult": 0.125}}
    run_search(settings(unnamed_space, url, trials=1, overrides=overrides))
    (trial,) = [t for t in optuna_study(url).trials if t.state.is_finished()]
    assert trial.state == optuna.trial.TrialState.PRUNED
    with Store(url) as store:
        row = store.trials_frame(study="t").iloc[0]
        assert row["status"] == "pruned" and "pruned" in row["reason"]
        epochs = store.epochs(int(row["trial_id"]))
    assert [e["epoch"] for e in epochs] == [1] and epochs[0]["val_acc"] is not None


def test_multi_objective_keeps_a_pareto_front(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    result = run_search(settings(space, url, trials=4, objectives=("accuracy", "flops")))
    study = optuna_study(url)
    assert len(study.directions) == 2 and study.best_trials
    assert result.pareto and set(result.pareto) == {
        t.user_attrs[STORE_ID_ATTR] for t in study.best_trials
    }
    assert result.leaderboard["pareto"].any()


def test_grid_sampler_enumerates_a_small_space(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(
        "[skeleton]\ndepths = [1, 1]\nwidths = [16, 32]\n[architecture]\npositions = ['R', 'I']\n"
    )
    url = f"sqlite:///{tmp_path}/h.db"
    run_search(settings(str(path), url, trials=4, sampler="grid"))
    archs = {t.user_attrs["arch"] for t in optuna_study(url).trials}
    assert archs == {"R|R", "R|I", "I|R", "I|I"}


def _assert_each_trial_recorded_once(url: str, study: str, n: int) -> None:
    trials = optuna_study(url, study).trials
    finished = [t for t in trials if t.state.is_finished()]
    assert len(finished) >= n
    with Store(url) as store:
        frame = store.trials_frame(study=study)
    numbers = list(frame["optuna_trial_number"])
    assert len(numbers) == len(set(numbers))
    ids = set(frame["trial_id"])
    for trial in finished:
        if trial.state == optuna.trial.TrialState.COMPLETE and not trial.user_attrs["reused"]:
            assert trial.user_attrs[STORE_ID_ATTR] in ids
            assert numbers.count(trial.number) == 1


def test_two_workers_on_sqlite_lose_nothing(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    run_search(settings(space, url, trials=4, workers=2))
    _assert_each_trial_recorded_once(url, "t", 4)


@pytest.mark.postgres
def test_two_workers_on_postgres(space, fresh_postgres_url):
    run_search(settings(space, fresh_postgres_url, trials=4, workers=2))
    _assert_each_trial_recorded_once(fresh_postgres_url, "t", 4)


def test_a_killed_worker_is_retried_by_the_next_run(space, tmp_path):
    """Only Optuna's heartbeat decides that a worker died, wherever it ran."""
    from harness.search import RunPlan
    from harness.search.runner import prepare
    from harness.search.study import open_study

    url = f"sqlite:///{tmp_path}/h.db"
    overrides = {"epochs": 50, "batch_size": 32, "skeleton": {"width_mult": 0.125}}
    slow = settings(space, url, trials=2, overrides=overrides)
    search = RunPlan.resolve(slow)
    with Store(url) as store:
        study, _ = open_study(search, store, create=True)
        prepare(search, store, study)
    env = {**os.environ, "HARNESS_DB": url}
    worker = subprocess.Popen(
        [sys.executable, "-m", "harness.search.worker_main", slow.to_json().replace(url, "")],
        env=env,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            with Store(url) as store:
                epochs = store.epochs_frame()
            if len(epochs):
                break  # mid-training: one epoch recorded, 49 to go
            time.sleep(0.2)
        else:
            pytest.fail("the worker never started training")
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    killed = optuna_study(url).trials[0]
    assert killed.state == optuna.trial.TrialState.RUNNING
    # Grace 3 s; SQLite's clock counts whole seconds, so 4 s is past it.
    time.sleep(4)
    # The next run (1 epoch per trial) notices the dead worker and retries its trial
    # after the queued orderings (RI, IR), which were enqueued before it.
    run_search(settings(space, url, trials=3))
    study = optuna_study(url)
    states = [t.state for t in study.trials]
    assert states[0] == optuna.trial.TrialState.FAIL
    retried = [t for t in study.trials if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retried) == 1 and retried[0].params == killed.params
    assert retried[0].state == optuna.trial.TrialState.COMPLETE
    with Store(url) as store:
        frame = store.trials_frame(study="t")
    first = frame[frame["optuna_trial_number"] == killed.number].iloc[0]
    assert first["status"] == "interrupted" and "gone" in first["reason"]


def test_named_orderings_are_never_pruned(space, tmp_path, monkeypatch):
    monkeypatch.setattr("harness.search.samplers.make_pruner", lambda *a, **k: _AlwaysPrune())
    url = f"sqlite:///{tmp_path}/h.db"
    overrides = {"epochs": 3, "batch_size": 32, "max_batches": 1, "skeleton": {"width_mult": 0.125}}
    run_search(settings(space, url, trials=6, overrides=overrides))
    with Store(url) as store:
        frame = store.trials_frame(study="t").drop_duplicates("arch").set_index("arch")
    for arch in NAMED.values():  # the three enqueued run all 3 epochs despite the pruner
        assert frame.loc[arch, "status"] == "complete" and frame.loc[arch, "epochs"] == 3
    sampled = frame.drop(index=list(NAMED.values()))
    assert len(sampled) >= 1 and set(sampled["status"]) == {"pruned"}


def test_repeats_retrain_the_top_candidates_with_more_seeds(unnamed_space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    result = run_search(settings(unnamed_space, url, trials=2, repeats=2, top=1))
    board = result.leaderboard
    (top,) = board[board["seeds"] == 2].to_dict(orient="records")  # Optuna's best trial
    assert top["arch"] == optuna_study(url).best_trial.user_attrs["arch"]
    assert len(top["trial_ids"]) == 2 and (board["seeds"] == 1).sum() == len(board) - 1
    with Store(url) as store:
        frame = store.trials_frame(study="t")
    assert sorted(frame[frame["arch"] == top["arch"]]["seed"]) == [0, 1]


def test_smoke_budget_gives_the_named_orderings_two_seeds(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    result = run_search(settings(space, url, trials=4, budget="smoke"))
    board = result.leaderboard.set_index("arch")
    for arch in NAMED.values():
        assert board.loc[arch, "seeds"] == 2 and len(board.loc[arch, "test_accs"]) == 2
    others = board.drop(index=list(NAMED.values()))
    assert (others["seeds"] == 1).all()
    from harness.search.leaderboard import noise_line
    from harness.stats import seed_noise

    expected = seed_noise(list(result.leaderboard["test_accs"]))
    assert f"up to {100 * expected.largest_gap:.1f} pp" in noise_line(result.leaderboard)


PAPER_TINY = {
    "epochs": 2,
    "batch_size": 16,
    "max_batches": 2,
    "eval_batch_size": 64,
    "skeleton": {"width_mult": 0.0625},
}


@pytest.mark.slow
def test_paper_study_has_every_row_with_k_seeds_even_with_a_pruner(tmp_path, monkeypatch):
    """Table 1 as a study: every choice complete, each with exactly --repeats seeds,
    although the pruner would stop every trial it is asked about."""
    monkeypatch.setattr("harness.search.samplers.make_pruner", lambda *a, **k: _AlwaysPrune())
    from harness.search import RunPlan

    url = f"sqlite:///{tmp_path}/h.db"
    chosen = settings(
        "paper", url, study="paper", trials=None, repeats=2, pruner="median",
        data="synthetic?n=140&size=16", overrides=PAPER_TINY,
    )  # fmt: skip
    search = RunPlan.resolve(chosen)
    choices = list(search.space.choices)
    assert search.n_trials == len(choices)  # each choice once; --repeats adds the seeds
    result = run_search(chosen, search=search)
    with Store(url) as store:
        frame = store.trials_frame(study="paper")
    assert set(frame["status"]) == {"complete"}
    per_candidate = frame.groupby("candidate_id")["seed"].apply(sorted)
    assert len(per_candidate) == len(choices)
    assert all(seeds == [0, 1] for seeds in per_candidate)
    # Stock and small-stem baselines are separate rows with different FLOPs.
    baselines = frame[frame["kind"] == "baseline"].drop_duplicates("candidate_id")
    assert len(baselines) == len([c for c in choices if c.startswith("timm:")])
    for name in ("timm:resnet50", "timm:mobilenetv2_100"):
        flops = sorted(baselines.loc[baselines["arch"] == name, "flops"])
        assert len(flops) == 2 and flops[1] > 2 * flops[0]  # 16x at 48 px; less at 16 px
    assert (result.leaderboard["seeds"] == 2).all()
    # The leaderboard names each baseline row as the space does: two stems, two names.
    baseline_rows = result.leaderboard[result.leaderboard["kind"] == "baseline"]
    assert sorted(baseline_rows["arch"]) == sorted(c for c in choices if c.startswith("timm:"))
