"""`harness run --strategy proxy:NAME --top K`: score candidates cheaply (stored as
estimates), train only the best K as ordinary trials; bad input refused before any work."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest
from _tiny_search import tiny_settings, tiny_training, write_space

from harness.cli import main
from harness.search import SearchSettings
from harness.store import Store
from harness.strategy import RANK_ATTR, SCORE_ATTR, STRATEGY_ATTR, estimator_of, ranked_search

DATA = "synthetic?n=200&size=16"


@pytest.fixture
def space(tmp_path: Path) -> str:
    # 16 networks; the named orderings are the default strategy's, not a strategy's.
    return write_space(tmp_path)


def settings(space: str, url: str, **changes) -> SearchSettings:
    values = dict(
        study="s", data=DATA, trials=5, strategy="proxy:params", top=2,
        overrides=tiny_training(max_batches=1), heartbeat_s=1, grace_s=3,
    )  # fmt: skip
    return tiny_settings(space, url, **{**values, **changes})


def test_the_top_k_by_score_are_trained_and_every_score_is_stored(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    result = ranked_search(settings(space, url))
    assert result.n_trials == 2
    with Store(url) as store:
        scores = store.estimates_frame(estimators=["params"])
        trials = store.trials_frame(study="s")
    # Five distinct candidates scored, each once, and none of them trained by the scoring.
    assert len(scores) == 5 and scores["candidate_id"].is_unique
    by_arch = dict(zip(scores["arch"], scores["score"], strict=True))
    trained = set(trials["arch"])
    assert len(trials) == 2 and trained <= set(by_arch)
    # The trained ones are the best two by score (ties may go either way).
    cut = sorted(by_arch.values(), reverse=True)[1]
    assert all(by_arch[a] >= cut for a in trained)
    assert all(by_arch[a] <= cut for a in set(by_arch) - trained)
    # The params proxy is the network's parameter count, as the trial measured it.
    params = dict(zip(trials["arch"], trials["params"], strict=True))
    assert all(by_arch[a] == params[a] for a in trained)
    study = optuna.load_study(study_name="s", storage=url)
    ranks = sorted(t.user_attrs[RANK_ATTR] for t in study.trials)
    assert ranks == [1, 2]
    assert {t.user_attrs[STRATEGY_ATTR] for t in study.trials} == {"proxy:params"}
    assert all(t.user_attrs[SCORE_ATTR] >= cut for t in study.trials)


def test_rerunning_reuses_the_scores_and_trains_nothing_new(space, tmp_path):
    url = f"sqlite:///{tmp_path}/h.db"
    ranked_search(settings(space, url, trials=4, top=2))
    with Store(url) as store:
        before = store.estimates_frame()
        trained = len(store.trials_frame(study="s"))
    ranked_search(settings(space, url, trials=4, top=2))
    with Store(url) as store:
        assert store.estimates_frame()["estimate_id"].tolist() == before["estimate_id"].tolist()
        assert len(store.trials_frame(study="s")) == trained == 2


def test_the_default_strategy_is_unchanged_and_names_stay_the_same():
    plain = SearchSettings(space="rir_orderings", url="sqlite://")
    assert plain.strategy == "train" and estimator_of(plain.strategy) is None
    assert SearchSettings.from_json(plain.to_json()) == plain
    from harness.search import RunPlan

    assert RunPlan.resolve(plain).study == "rir_orderings-smoke"
    ranked = RunPlan.resolve(SearchSettings(space="rir_orderings", url="sqlite://",
                                           strategy="proxy:naswot", top=8))  # fmt: skip
    assert ranked.n_trials == 8 and ranked.candidates == ranked.budget.trials
    assert ranked.study != "rir_orderings-smoke"


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--strategy", "proxy:nope"], "unknown estimator 'nope'"),
        (["--strategy", "nope"], "--strategy must be"),
        (["--top", "4"], "--top needs --strategy"),
        (["--strategy", "proxy:params", "--top", "70000"], "more than space rir_orderings"),
        (["--strategy", "proxy:params", "--top", "9", "--candidates", "8"], "8 candidates"),
        (["--candidates", "8"], "--candidates needs --strategy"),
        (["--space", "paper", "--strategy", "supernet"], "cannot hold space 'paper'"),
    ],
)
def test_bad_strategy_input_is_one_line_before_any_work(argv, words, tmp_path, capsys):
    db = tmp_path / "h.db"
    space = [] if "--space" in argv else ["--space", "rir_orderings"]
    assert main(["run", *space, *argv, "--db", f"sqlite:///{db}"]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    assert out == "" and len(lines) == 1 and lines[0].startswith("harness: error: ")
    assert words in lines[0]
    assert not db.exists()


def test_the_supernet_trains_in_a_study_of_its_own(space, tmp_path):
    # Its training run is not a candidate of the search: it must not reach the leaderboard.
    from harness.search import RunPlan
    from harness.strategy import check_strategy

    search = RunPlan.resolve(
        settings(space, f"sqlite:///{tmp_path}/h.db", strategy="supernet", top=2)
    )
    estimator = check_strategy(search)
    assert estimator is not None and estimator.name == "supernet"
    assert estimator.study == "s:supernet"


def test_run_builds_the_strategy_estimator_once(space, tmp_path, monkeypatch, capsys):
    # Checked before any work and then used for the scoring: not built a second time.
    import harness.estimate.rank as rank

    built = []
    real = rank.make_estimators

    def counted(names, **kwargs):
        built.append(list(names))
        return real(names, **kwargs)

    monkeypatch.setattr(rank, "make_estimators", counted)
    argv = ["run", "--space", space, "--data", DATA, "--strategy", "proxy:params",
            "--top", "1", "--candidates", "3", "--epochs", "1", "--max-batches", "1",
            "--batch-size", "16", "--device", "cpu", "--db", f"sqlite:///{tmp_path}/h.db",
            "--no-report", "--quiet", "--json"]  # fmt: skip
    assert main(argv) == 0
    assert built == [["params"]]
    with Store(f"sqlite:///{tmp_path}/h.db") as store:
        assert len(store.estimates_frame(estimators=["params"])) == 3
