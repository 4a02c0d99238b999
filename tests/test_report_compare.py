"""Comparisons hold everything but the network fixed: a store that mixes studies,
protocols and FER+ label modes (filled by real `run_trial` calls) never pools unlike runs,
and the paper table compares only runs in the paper's setting."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from harness.ranking import rank_trials
from harness.report import compare
from harness.report.gather import gather
from harness.report.paper import REPORTED, paper_comparison, setting_differences
from harness.store import Store

VOTE_COLUMNS = 10


def _write_ferplus(folder: Path, per_split: dict[str, int]) -> Path:
    """fer2013.csv + fer2013new.csv in Microsoft's formats, each image with a clear vote."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    old = ["emotion,pixels,Usage"]
    new = [
        "Usage,Image name,neutral,happiness,surprise,sadness,anger,disgust,fear,contempt,unknown,NF"
    ]
    index = 0
    for usage, count in per_split.items():
        for _ in range(count):
            emotion = index % 4  # four emotions, learnable from a brightness pattern
            image = rng.integers(0, 60, size=(48, 48)) + 50 * emotion
            old.append(f"{emotion},{' '.join(str(int(v)) for v in image.ravel())},{usage}")
            votes = [0] * VOTE_COLUMNS
            votes[emotion] = 9
            votes[(emotion + 1) % 4] = 1
            new.append(f"{usage},fer{index:07d}.png," + ",".join(map(str, votes)))
            index += 1
    (folder / "fer2013.csv").write_text("\n".join(old) + "\n")
    (folder / "fer2013new.csv").write_text("\n".join(new) + "\n")
    return folder


def _config(arch: str, data: str, protocol: str = "fast", seed: int = 0):
    from harness.config import TrainConfig

    return TrainConfig.from_protocol(
        protocol, arch=arch, data=data, epochs=1, batch_size=16, max_batches=3,
        skeleton={"width_mult": 0.125}, seed=seed, threads=1,
    )  # fmt: skip


@functools.cache
def mixed_store(root: Path) -> str:
    """Study `a`: RI and IR nets on FER+ majority labels, fast protocol, seeds 0 and 1; the
    same RI net under the paper protocol and with all10 labels; study `b`: the same RI
    run again. About 10 s."""
    from harness.trial import load_trial_dataset, run_trial

    folder = _write_ferplus(root / "ferplus", {"Training": 48, "PublicTest": 16, "PrivateTest": 16})
    majority, all10 = f"ferplus:{folder}?mode=majority", f"ferplus:{folder}?mode=all10"
    url = f"sqlite:///{root / 'mixed.db'}"
    store = Store(url)
    data = {spec: load_trial_dataset(spec) for spec in (majority, all10)}
    for arch in ("R*2 I*2", "I*2 R*2"):
        for seed in (0, 1):
            run_trial(_config(arch, majority, seed=seed), store, study="a", dataset=data[majority],
                      measure_latency=False)  # fmt: skip
    run_trial(_config("R*2 I*2", majority, protocol="paper"), store, study="a",
              dataset=data[majority], measure_latency=False)  # fmt: skip
    run_trial(_config("R*2 I*2", all10), store, study="a", dataset=data[all10],
              measure_latency=False)  # fmt: skip
    run_trial(_config("R*2 I*2", majority), store, study="b", dataset=data[majority],
              measure_latency=False)  # fmt: skip
    store.close()
    return url


@pytest.fixture(scope="module")
def trials(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    url = mixed_store(tmp_path_factory.mktemp("mixed"))
    with Store(url, create=False) as store:
        return gather(store, ["a", "b"]).trials


def test_no_comparison_set_mixes_studies_protocols_or_label_modes(trials) -> None:
    sets = compare.comparison_sets(trials)
    assert sum(len(s.runs) for s in sets) == len(trials) == 7
    for cset in sets:
        for column in ("study", "protocol", "label_mode"):
            assert cset.runs[column].nunique() == 1, (column, cset.held)
        assert cset.runs["data_spec"].map(compare.strip_fold).nunique() == 1
    largest = sets[0]
    assert dict(largest.held)["study"] == "a" and dict(largest.held)["labels"] == "majority"
    assert dict(largest.held)["protocol"] == "fast" and dict(largest.held)["seeds"] == "0, 1"
    samples = compare.family_samples(largest)
    expected = trials[(trials["study"] == "a") & (trials["protocol"] == "fast")
                      & (trials["label_mode"] == "majority")]  # fmt: skip
    for family in ("RI", "IR"):
        want = sorted(expected.loc[expected["family"] == family, "test_acc"])
        assert sorted(samples[family]) == want and len(want) == 2


def test_networks_pair_on_shared_seeds_within_a_set(trials) -> None:
    largest = compare.comparison_sets(trials)[0]
    tests = compare.network_tests(largest, {})
    (row,) = tests.to_dict(orient="records")
    assert row["seeds"] == 2 and {row["a"], row["b"]} == set(largest.runs["network"])


def test_leaderboard_groups_and_paper_table_never_pool_unlike_runs(trials) -> None:
    board = rank_trials(trials)
    by_id = trials.set_index("trial_id")
    for ids in board["trial_ids"]:
        part = by_id.loc[ids]
        for column in ("study", "protocol", "label_mode", "arch"):
            assert part[column].nunique() == 1
    assert len(board) == 5  # a/fast/majority x2 networks, a/paper, a/all10, b
    paper = paper_comparison(board)
    assert not paper["comparable"].any()  # 4-block nets on a toy set are not Table 1


def _row(**changes) -> dict:
    row = {
        "arch": "RRR|RRRR|RIIIII|III", "kind": "candidate", "pretrained": False, "rank": 1,
        "data_spec": "ferplus:/data/ferplus?mode=plurality", "label_mode": "plurality",
        "protocol": "paper",
        "config": {"skeleton": {"head": "paper", "widths": [64, 128, 256, 512],
                                "width_mult": 1.0, "depths": [3, 4, 6, 3],
                                "block_params": {"I": {"exp_ratio": 6}}}},
    }  # fmt: skip
    row.update(changes)
    return row


def test_paper_setting_is_checked_field_by_field() -> None:
    ri = next(e for e in REPORTED if e.table == "Table 1" and e.ordering == "RI")
    assert setting_differences(ri, _row()) == []
    assert setting_differences(ri, _row(label_mode="majority")) == [
        "labels majority (paper: plurality)"
    ]
    assert setting_differences(ri, _row(protocol="fast")) == ["protocol fast (paper: paper)"]
    changed = _row()
    changed["config"] = {"skeleton": {**changed["config"]["skeleton"], "head": "linear"}}
    assert setting_differences(ri, changed) == ["head linear (paper: paper)"]
    ckplus = next(e for e in REPORTED if e.table == "Table 2" and e.ordering == "RI")
    one_fold = _row(data_spec="ckplus:/data/ck?fold=0", label_mode="hard")
    assert setting_differences(ckplus, one_fold) == [
        "one CK+ fold (paper: cross-validated; use --folds)"
    ]
    resnet = next(e for e in REPORTED if e.timm == "resnet50" and not e.pretrained)
    small = _row(arch="timm:resnet50", kind="baseline",
                 config={"baseline_stem": "small", "skeleton": {}})  # fmt: skip
    assert setting_differences(resnet, small) == ["stem small (paper: the model's own)"]
    stock = _row(arch="timm:resnet50", kind="baseline",
                 config={"baseline_stem": "timm", "skeleton": {}})  # fmt: skip
    assert setting_differences(resnet, stock) == []
    board = pd.DataFrame([
        {**_row(), "n": 2, "test_acc_mean": 0.8, "test_acc_sd": 0.01, "test_loss_mean": 1.0,
         "params": 1, "trial_ids": [1, 2]},
    ])  # fmt: skip
    frame = paper_comparison(board)
    row = frame[(frame["table"] == "Table 1") & (frame["model"] == "RI network")].iloc[0]
    assert row["comparable"] and row["diff"] == pytest.approx(80.0 - 81.98)


def _fake_runs(seeds_a: list[int], seeds_b: list[int]) -> pd.DataFrame:
    rows = []
    for arch, seeds, acc, step in (("RR|II", seeds_a, 0.6, 0.01), ("II|RR", seeds_b, 0.4, 0.03)):
        for seed in seeds:
            rows.append({
                "trial_id": len(rows) + 1, "study": "s", "arch": arch, "kind": "candidate",
                "family": "RI" if arch.startswith("R") else "IR", "status": "complete",
                "protocol": "fast", "seed": seed, "val_acc": acc + step * seed,
                "test_acc": acc + step * seed, "params": 1, "flops": 1,
                "data_spec": "synthetic", "label_mode": "hard",
                "config": {"skeleton": {"depths": [2, 2]}, "lr": 0.1},
            })  # fmt: skip
    return pd.DataFrame(rows)


def test_one_seed_mcnemar_speaks_of_the_two_models_not_the_networks() -> None:
    (cset,) = compare.comparison_sets(_fake_runs([0], [0]))
    targets = [0] * 40
    predictions = {1: {"test_predictions": [0] * 40, "test_targets": targets},
                   2: {"test_predictions": [1] * 40, "test_targets": targets}}  # fmt: skip
    (row,) = compare.network_tests(cset, predictions).to_dict(orient="records")
    assert row["seeds"] == 1 and row["p_mcnemar"] < 1e-6
    assert row["verdict"] == "one seed: these models differ (networks untested)"
    (cset,) = compare.comparison_sets(_fake_runs([0, 1, 2], [0, 1, 2]))
    (row,) = compare.network_tests(cset, {}).to_dict(orient="records")
    from harness.stats import paired

    expected = paired([0.6, 0.61, 0.62], [0.4, 0.43, 0.46])
    assert row["seeds"] == 3 and row["p_t"] == pytest.approx(expected.p)
    assert row["verdict"] == ("RR|II higher" if expected.p < 0.05 else "no clear difference")
