"""Proposing and scoring candidates (harness.estimate.rank): Optuna's sampler proposes,
each distinct candidate is scored once, its network built once for every estimator,
the scores the stand-alone estimators give, told back to the sampler."""

from __future__ import annotations

import math

import optuna
import pytest

import harness.trial
from harness.data import load_dataset
from harness.errors import ConfigError
from harness.estimate.proxies import Synflow
from harness.estimate.rank import make_estimators, propose_and_score, sample_configs
from harness.search import RunPlan, SearchSettings
from harness.store import Store

DATA = "synthetic?n=120&size=16"
SPACE = """
description = "three positions of R or I (8 networks)"
protocol = "fast"
[skeleton]
depths = [1, 1, 1]
widths = [16, 32, 64]
stem_width = 8
drop_rate = 0.5
[architecture]
positions = ["R", "I"]
"""
PROXIES = ["params", "flops", "synflow", "naswot", "grad_norm", "meco", "zico", "swap"]


@pytest.fixture(scope="module")
def search(tmp_path_factory) -> RunPlan:
    path = tmp_path_factory.mktemp("space") / "tiny.toml"
    path.write_text(SPACE)
    overrides = {"skeleton": {"width_mult": 0.25}, "threads": 1, "device": "cpu"}
    settings = SearchSettings(space=str(path), url="sqlite://", data=DATA, overrides=overrides)
    return RunPlan.resolve(settings)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DATA)


@pytest.fixture()
def store(tmp_path):
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as opened:
        yield opened


def _estimators(search, names):
    options = {"batch_size": 8, "components": "meco,zico"}
    return make_estimators(names, space=search.space, options=options)


def _identities(configs) -> list[str]:
    return [config.arch for config in configs]


def test_sampling_is_distinct_reproducible_and_exhausts_a_small_space(search):
    drawn = sample_configs(search, 5, seed=3)
    assert len(drawn) == 5 and len(set(_identities(drawn))) == 5
    assert _identities(sample_configs(search, 5, seed=3)) == _identities(drawn)
    assert _identities(sample_configs(search, 5, seed=4)) != _identities(drawn)
    # All 8 networks of the space, each once, though the sampler repeats itself.
    assert sorted(_identities(sample_configs(search, 8, seed=0))) == sorted(
        {"|".join(letters) for letters in _words(3)}
    )
    with pytest.raises(
        ConfigError,
        match=r"count 9 is more than space tiny holds \(8 distinct candidates\); ask for at most 8",
    ):
        sample_configs(search, 9, seed=0)


def _words(n: int) -> list[str]:
    return [""] if n == 0 else [w + letter for w in _words(n - 1) for letter in "RI"]


def test_given_candidates_come_first_and_are_not_drawn_again(search):
    first = [search.space.encoding.params_of(list(word)) for word in ("III", "RRR")]
    drawn = sample_configs(search, 8, seed=0, first=first)
    names = _identities(drawn)
    assert names[:2] == [search.trial_config(v).arch for v in first] and len(set(names)) == 8


def test_each_network_is_built_once_for_every_estimator(search, dataset, store, monkeypatch):
    builds = []
    real = harness.trial.candidate_for

    def counted(config, data):
        builds.append(config.arch)
        return real(config, data)

    monkeypatch.setattr(harness.trial, "candidate_for", counted)
    estimators = _estimators(search, [*PROXIES, "ensemble"])
    sampler = optuna.samplers.RandomSampler(seed=0)
    proposals = propose_and_score(search, sampler, estimators, dataset, store, 3)
    assert len(proposals.frame) == 3 * (len(PROXIES) + 1)
    assert sorted(builds) == sorted(_identities(proposals.configs))
    assert not proposals.frame["reused"].any() and proposals.frame["score"].notna().all()
    # Each score as the estimator gives it alone, building the network itself (dropout
    # in the head draws from the random state the build leaves).
    for config in proposals.configs:
        for estimator in estimators[: len(PROXIES)]:
            rows = proposals.frame[
                (proposals.frame["arch"] == config.arch)
                & (proposals.frame["estimator"] == estimator.name)
            ]
            assert rows["score"].item() == pytest.approx(estimator.score(config, dataset))
    # A proxy's seconds are what it costs alone: its network's build as well.
    assert (proposals.frame["seconds"] > 0).all()


class _Recording(optuna.samplers.TPESampler):
    """TPE, keeping what each trial was told."""

    def __init__(self) -> None:
        super().__init__(seed=0, n_startup_trials=2)
        self.told: list[tuple[optuna.trial.TrialState, float | None]] = []

    def after_trial(self, study, trial, state, values) -> None:
        self.told.append((state, None if values is None else values[0]))
        super().after_trial(study, trial, state, values)


def test_scores_are_told_to_the_sampler_and_repeats_scored_once(
    search, dataset, store, monkeypatch
):
    scored = []
    real = Synflow.score_candidate

    def counted(self, candidate, batch, device):
        scored.append(candidate.architecture.name)
        return real(self, candidate, batch, device)

    monkeypatch.setattr(Synflow, "score_candidate", counted)
    sampler = _Recording()
    estimators = _estimators(search, ["synflow", "params"])
    proposals = propose_and_score(search, sampler, estimators, dataset, store, 8)
    assert sorted(scored) == sorted(_identities(proposals.configs))  # 8 distinct, once each
    by_arch = dict(zip(*[proposals.frame.query("estimator == 'synflow'")[c]
                         for c in ("arch", "score")], strict=True))  # fmt: skip
    # Every proposal told the first estimator's score, a repeat again; none is left open.
    assert len(sampler.told) > 8
    assert {value for _, value in sampler.told} == set(by_arch.values())
    frame, values = proposals.best_first("synflow")
    assert frame["score"].is_monotonic_decreasing
    assert [search.trial_config(v).arch for v in values] == frame["arch"].tolist()
    # Again: every score read back, the same proposals in the same order.
    again = propose_and_score(search, _Recording(), estimators, dataset, store, 8)
    assert again.frame["reused"].all() and len(scored) == 8
    assert _identities(again.configs) == _identities(proposals.configs)


def test_a_population_estimator_leads_untold(search, dataset, store):
    # Its scores exist only once every candidate is scored: nothing to tell before.
    sampler = _Recording()
    estimators = _estimators(search, ["ensemble"])
    proposals = propose_and_score(search, sampler, estimators, dataset, store, 4)
    ensemble = proposals.frame["score"].tolist()
    assert len(ensemble) == 4 and max(ensemble) <= 0.0 and sampler.told == []


def test_best_first_puts_a_candidate_without_a_score_last(search, dataset, store):
    estimators = _estimators(search, ["params"])
    sampler = optuna.samplers.RandomSampler(seed=1)
    proposals = propose_and_score(search, sampler, estimators, dataset, store, 4)
    proposals.frame.loc[1, "score"] = math.nan
    frame, values = proposals.best_first("params")
    assert math.isnan(frame["score"].iloc[-1]) and values[-1] == proposals.values[1]
    assert frame["score"].iloc[:-1].is_monotonic_decreasing
