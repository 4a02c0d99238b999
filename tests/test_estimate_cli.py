"""`harness estimate` and `harness validate-estimators` end to end on tiny data: scores
stored and reused, correlations in range with intervals, bad input refused first."""

from __future__ import annotations

import json

import pytest
from _refusal import refused

from harness.cli import main
from harness.estimate.proxies import Synflow
from harness.store import Store

DATA = "synthetic?n=120&size=16"
TINY = ["--data", DATA, "--width-mult", "0.25", "--threads", "1", "--device", "cpu"]
SPACE = """
description = "three positions of R or I (8 networks)"
protocol = "fast"
[skeleton]
depths = [1, 1, 1]
widths = [16, 32, 64]
stem_width = 8
[architecture]
positions = ["R", "I"]
"""


@pytest.fixture()
def space(tmp_path):
    path = tmp_path / "tiny.toml"
    path.write_text(SPACE)
    return str(path)


def _json(argv, capsys) -> dict:
    assert main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_estimate_stores_scores_and_the_second_run_reuses_them(
    space, tmp_path, capsys, monkeypatch
):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    calls = []
    real = Synflow.score_candidate

    def counted(self, candidate, batch, device):
        calls.append(candidate.architecture.name)
        return real(self, candidate, batch, device)

    monkeypatch.setattr(Synflow, "score_candidate", counted)
    argv = ["estimate", "--space", space, "--sample", "3", "--estimators", "params,synflow",
            "--proxy-batch", "8", "--db", url, "--json", *TINY]  # fmt: skip
    first = _json(argv, capsys)
    assert len(first["scores"]) == 6 and not any(row["reused"] for row in first["scores"])
    assert len(calls) == 3 and len({row["arch"] for row in first["scores"]}) == 3
    second = _json(argv, capsys)
    assert len(calls) == 3  # nothing recomputed
    assert all(row["reused"] for row in second["scores"])
    key = ("candidate_id", "estimator", "score", "seconds")
    assert [[r[k] for k in key] for r in second["scores"]] == [
        [r[k] for k in key] for r in first["scores"]
    ]
    with Store(url, create=False) as store:
        frame = store.estimates_frame()
    assert len(frame) == 6 and frame.loc[frame["estimator"] == "params", "seed"].isna().all()
    # Another seed is another synflow score (new weights), but the same parameter count.
    third = _json([*argv, "--seed", "5"], capsys)
    assert len(calls) > 3
    reused = {r["estimator"]: r["reused"] for r in third["scores"]}
    assert reused == {"params": True, "synflow": False} or not reused["synflow"]


def test_estimate_prints_a_table(space, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 't.db'}"
    argv = ["estimate", "--space", space, "--sample", "2", "--estimators", "params,naswot",
            "--proxy-batch", "8", "--db", url, "--quiet", *TINY]  # fmt: skip
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert "s/candidate" in out and "best 2 by naswot" in out and err == ""


def test_validate_estimators_gives_correlations_with_intervals(space, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'v.db'}"
    argv = ["validate-estimators", "--space", space, "--trained", "4", "--estimators",
            "params,flops,naswot", "--proxy-batch", "8", "--epochs", "2", "--max-batches", "2",
            "--batch-size", "16", "--top-k", "2", "--seeds", "1", "--db", url, "--json",
            *TINY]  # fmt: skip
    result = _json(argv, capsys)
    assert result["trained"] == 4
    checks = {c["estimator"]: c for c in result["checks"]}
    assert set(checks) == {"params", "flops", "naswot"}
    for check in checks.values():
        for name in ("rho", "tau"):
            low, high = check[f"{name}_ci"]
            assert -1 <= low <= high <= 1 and -1 <= check[name] <= 1
        assert 0 <= check["overlap"] <= check["top_k"] == 2
        assert check["seconds_per_candidate"] > 0
    assert checks["params"]["verdict"] == "baseline"
    assert checks["naswot"]["tau_minus_params_ci"] is not None
    # The scores are those of the trained candidates (the same candidate rows).
    with Store(url, create=False) as store:
        trials = store.trials_frame(study=result["study"])
        estimates = store.estimates_frame()
    assert set(estimates["candidate_id"]) == set(trials["candidate_id"])
    # Again: every trial and score reused, the same numbers.
    again = _json(argv, capsys)
    assert [c["tau"] for c in again["checks"]] == [c["tau"] for c in result["checks"]]


def test_unknown_estimator_is_one_line(space, tmp_path, capsys):
    line = refused(["estimate", "--space", space, "--estimators", "params,nope",
                     "--db", f"sqlite:///{tmp_path / 'u.db'}", *TINY], capsys)  # fmt: skip
    assert "unknown estimator 'nope'" in line and "synflow" in line and "zico" in line
    assert not (tmp_path / "u.db").exists()


def test_the_leading_proxies_and_their_ensemble_are_scored_then_reused(space, tmp_path, capsys):
    url = f"sqlite:///{tmp_path / 'l.db'}"
    argv = ["estimate", "--space", space, "--sample", "3", "--estimators",
            "meco,zico,swap,ensemble", "--proxy-batch", "8", "--db", url, "--json",
            *TINY]  # fmt: skip
    first = _json(argv, capsys)
    assert len(first["scores"]) == 12 and not any(row["reused"] for row in first["scores"])
    ensemble = [row for row in first["scores"] if row["estimator"] == "ensemble"]
    assert max(row["score"] for row in ensemble) <= 0.0 and all(
        row["seconds"] > 0 for row in ensemble
    )
    second = _json(argv, capsys)
    assert all(row["reused"] for row in second["scores"])
    assert [r["score"] for r in second["scores"]] == [r["score"] for r in first["scores"]]
    # Other components: another ensemble score, its members' own scores reused.
    third = _json([*argv, "--ensemble-of", "meco,zico"], capsys)
    reused = {(r["estimator"], r["reused"]) for r in third["scores"]}
    assert ("ensemble", False) in reused and ("meco", True) in reused


@pytest.mark.parametrize(
    ("components", "message"),
    [("meco", "at least two"), ("meco,nope", "unknown estimator 'nope'"),
     ("swap,ensemble", "itself an ensemble")],
)  # fmt: skip
def test_bad_ensemble_components_are_one_line(components, message, space, tmp_path, capsys):
    for command in ("estimate", "validate-estimators"):
        line = refused([command, "--space", space, "--estimators", "params,ensemble",
                        "--ensemble-of", components, "--db", f"sqlite:///{tmp_path / 'b.db'}",
                        *TINY], capsys)  # fmt: skip
        assert message in line
    assert not (tmp_path / "b.db").exists()


def test_sample_larger_than_the_space_is_one_line(space, tmp_path, capsys):
    line = refused(["estimate", "--space", space, "--sample", "9",
                     "--db", f"sqlite:///{tmp_path / 's.db'}", *TINY], capsys)  # fmt: skip
    assert "--sample 9 is more than space tiny holds (8 distinct candidates)" in line
    line = refused(["validate-estimators", "--space", space, "--trained", "9",
                     "--db", f"sqlite:///{tmp_path / 's.db'}", *TINY], capsys)  # fmt: skip
    assert "--trained 9" in line


def test_supernet_on_a_timm_baseline_space_is_one_line(capsys, tmp_path):
    line = refused(["estimate", "--space", "paper", "--estimators", "supernet",
                     "--db", f"sqlite:///{tmp_path / 'p.db'}", *TINY], capsys)  # fmt: skip
    assert "supernet cannot hold space 'paper'" in line and "timm" in line


def test_the_bootstrap_statistics_equal_scipys_and_the_interval_holds_the_estimate():
    import numpy as np
    from scipy import stats

    from harness.estimate.validate import _rho, _tau, correlate

    rng = np.random.default_rng(0)
    x, y = rng.integers(0, 4, 15).astype(float), rng.normal(size=15)  # ties in x
    assert _tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    assert _rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    stacked = np.stack([x, -x])
    assert _tau(stacked, np.stack([y, y])) == pytest.approx([_tau(x, y), -_tau(x, y)])
    good = correlate(y + 0.1 * rng.normal(size=15), y, params=x, top_k=5)
    assert good["tau_ci"][0] > 0.5 and good["tau_ci"][0] <= good["tau"] <= good["tau_ci"][1]
    assert good["tau_minus_params_ci"][0] > 0 and good["overlap"] >= 3
