"""ensemble: AZ-NAS's rank aggregation, its properties, and its scores stored per
population of candidates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from harness.config import TrainConfig
from harness.data import load_dataset
from harness.errors import ConfigError
from harness.estimate import get_estimator
from harness.estimate.ensemble import DEFAULT_COMPONENTS, rank_aggregate
from harness.estimate.rank import make_estimators, score_candidates
from harness.store import Store

SKELETON = {"depths": [1, 1], "widths": [16, 32], "stem_width": 8}


def test_the_aggregate_by_hand():
    # Ranks (1 worst): a -> 1, 3, 2; b -> 2, 1, 3; so sum of log(rank / 3).
    got = rank_aggregate({"a": [0.1, 5.0, 2.0], "b": [7.0, -1.0, 9.0]})
    assert got == pytest.approx([math.log(2 / 9), math.log(3 / 9), math.log(6 / 9)])


def test_any_monotone_transform_of_a_component_leaves_it_unchanged():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=12), rng.normal(size=12)
    reference = rank_aggregate({"a": a, "b": b})
    for transform in (np.exp, lambda x: 3 * x - 40, lambda x: x**3, np.arctan):
        assert rank_aggregate({"a": transform(a), "b": b}) == pytest.approx(reference)


def test_components_that_agree_give_their_order_and_the_best_scores_zero():
    rng = np.random.default_rng(1)
    a = rng.normal(size=9)
    got = np.array(rank_aggregate({"a": a, "b": np.exp(a), "c": 10 * a}))
    assert list(np.argsort(got)) == list(np.argsort(a))
    assert got.max() == 0.0 and int(np.argmax(got)) == int(np.argmax(a))
    assert (got[np.arange(9) != np.argmax(a)] < 0).all()


def test_a_missing_score_ranks_with_the_worst():
    got = rank_aggregate({"a": [1.0, math.nan, 3.0, 2.0], "b": [1.0, 2.0, 3.0, 4.0]})
    by_a_alone = rank_aggregate({"a": [1.0, -math.inf, 3.0, 2.0], "b": [1.0, 2.0, 3.0, 4.0]})
    assert got == by_a_alone and np.argmax(got) in (2, 3)


def test_components_are_checked_before_any_work():
    assert get_estimator("ensemble").components == DEFAULT_COMPONENTS
    assert get_estimator("ensemble", components="params, swap").components == ("params", "swap")
    for bad, message in (
        ("meco", "at least two"),
        ("meco,meco", "names one twice"),
        ("meco,nope", "unknown estimator 'nope'"),
        ("meco,ensemble", "itself an ensemble"),
    ):
        with pytest.raises(ConfigError, match=message):
            get_estimator("ensemble", components=bad)
    with pytest.raises(ConfigError, match="ranks candidates against each other"):
        get_estimator("ensemble").score(None, None)


def test_members_are_the_estimators_asked_for_beside_it_or_its_own():
    meco, ensemble = make_estimators(
        ["meco", "ensemble"], space=None, options={"batch_size": 8, "components": "meco,zico"}
    )
    assert ensemble.members[0] is meco and ensemble.members[1].name == "zico"
    assert ensemble.members[1].batch_size == 8  # built with the same options
    assert ensemble.settings()["components"] == {
        "meco": {"batch_size": 8},
        "zico": {"batch_size": 8, "batches": 2},
    }


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic?n=120&size=16")


def _configs(*archs: str) -> list[TrainConfig]:
    return [
        TrainConfig.from_protocol(
            "fast", arch=a, skeleton=SKELETON, seed=0, device="cpu", threads=1
        )
        for a in archs
    ]


def test_scores_are_stored_per_population_and_reused(dataset, tmp_path):
    estimators = make_estimators(
        ["params", "ensemble"], space=None, options={"batch_size": 8, "components": "params,swap"}
    )
    three = _configs("R I", "I R", "I I")
    with Store(f"sqlite:///{tmp_path / 'e.db'}") as store:
        first = score_candidates(three, estimators, dataset, store)
        # Rows for what was asked: swap is scored for the ensemble, but gets no rows.
        assert sorted(set(first["estimator"])) == ["ensemble", "params"] and len(first) == 6
        ensemble = first[first["estimator"] == "ensemble"]
        assert not ensemble["reused"].any() and ensemble["score"].max() <= 0.0
        stored = store.estimates_frame()
        assert set(stored["estimator"]) == {"params", "swap", "ensemble"}
        # Its seconds are its members' for the candidate.
        swap = stored[stored["estimator"] == "swap"].set_index("candidate_id")["seconds"]
        params = first[first["estimator"] == "params"].set_index("candidate_id")["seconds"]
        for _, row in ensemble.iterrows():
            expected = swap[row["candidate_id"]] + params[row["candidate_id"]]
            assert row["seconds"] == pytest.approx(expected)

        # The same population in another order: every score read back, the same.
        again = score_candidates(three[::-1], estimators, dataset, store)
        assert again["reused"].all()
        key = ["candidate_id", "score"]
        assert sorted(map(tuple, again[again["estimator"] == "ensemble"][key].values)) == sorted(
            map(tuple, ensemble[key].values)
        )
        # Another population: the members' scores are reused, the ensemble's are new.
        two = score_candidates(three[:2], estimators, dataset, store)
        assert two[two["estimator"] == "params"]["reused"].all()
        assert not two[two["estimator"] == "ensemble"]["reused"].any()
        with pytest.raises(ConfigError, match="at least 2 scored together"):
            score_candidates(three[:1], estimators, dataset, store)
