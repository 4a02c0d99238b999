"""Cross-validated CK+: `--folds K` on train, baselines and run, and `fold_means`."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from harness.cli import main
from harness.data import load_dataset
from harness.errors import ConfigError, DataError
from harness.folds import check_folds, fold_means, fold_specs
from harness.store import Store
from harness.store.frames import TRIAL_FRAME_COLUMNS

SUBJECTS = (5, 10, 11, 12, 14, 20)
# 1 epoch of 1 batch at 16 px on a tiny network: a fold takes about a second.
TINY = ["--epochs", "1", "--max-batches", "1", "--batch-size", "8", "--device", "cpu"]


@pytest.fixture
def release(tmp_path: Path) -> Path:
    """The original CK+ layout: 6 subjects x 2 labelled sequences x 4 frames, every
    pixel of a frame equal to its subject's number (so a split names its subjects)."""
    root = tmp_path / "CK+"
    for subject in SUBJECTS:
        for sequence in (1, 2):
            name = f"S{subject:03d}/{sequence:03d}"
            images = root / "cohn-kanade-images" / name
            images.mkdir(parents=True)
            for frame in range(1, 5):
                pixels = np.full((40, 52), subject, dtype=np.uint8)
                Image.fromarray(pixels).save(
                    images / f"S{subject:03d}_{sequence:03d}_{frame:08d}.png"
                )
            labels = root / "Emotion" / name
            labels.mkdir(parents=True)
            code = 1 + (subject + sequence) % 7
            (labels / f"S{subject:03d}_{sequence:03d}_00000004_emotion.txt").write_text(
                f"   {code:.7e}\n"
            )
    return root


def subjects(split) -> set[int]:
    return {int(v) for v in split.images[:, 0, 8, 8].tolist()}


def test_train_folds_3_runs_every_fold_with_no_subject_in_two_and_records_the_mean(
    release, tmp_path, capsys
):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    data = f"ckplus:{release}?size=16"
    argv = ["train", "R I", "--data", data, "--folds", "3", "--width-mult", "0.25", *TINY]
    assert main([*argv, "--db", db, "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["folds"] == 3 and printed["folds_done"] == 3
    assert printed["status"] == "complete"
    folds = printed["fold_results"]
    assert [f"folds=3&fold={i}&" in f["config"]["data"] for i, f in enumerate(folds)] == [True] * 3
    assert len({f["config"]["seed"] for f in folds}) == 1

    tested = []
    with Store(db) as store:
        frame = store.trials_frame()
        for trial_id in printed["trial_ids"]:
            ds = load_dataset(store.trial(trial_id)["data_spec"])
            parts = {name: subjects(split) for name, split in ds.splits.items()}
            assert not parts["train"] & parts["val"] and not parts["train"] & parts["test"]
            assert not parts["val"] & parts["test"]
            tested.append(parts["test"])
    # Every subject is tested in exactly one fold.
    assert sorted(s for fold in tested for s in fold) == sorted(SUBJECTS)

    assert len(frame) == 3
    stored_val = frame["val_acc"].tolist()
    assert printed["val_acc"] == pytest.approx(statistics.fmean(stored_val))
    assert printed["val_acc_sd"] == pytest.approx(statistics.stdev(stored_val))
    means = fold_means(frame)
    assert len(means) == 1
    row = means.iloc[0]
    assert row["folds"] == 3 and row["folds_done"] == 3 and row["status"] == "complete"
    assert row["test_acc"] == pytest.approx(frame["test_acc"].mean())
    assert "fold=" not in row["data_spec"] and "folds=3" in row["data_spec"]
    assert row["fold_trial_ids"] == printed["trial_ids"]

    # The report sees one CK+ run (the fold mean), never the three folds apart.
    from harness.ranking import rank_trials
    from harness.report.gather import gather

    with Store(db) as store:
        reported = gather(store).trials
    assert len(reported) == 1 and reported.iloc[0]["folds"] == 3
    board = rank_trials(reported)
    assert len(board) == 1 and board.iloc[0]["n"] == 1
    assert board.iloc[0]["test_acc_mean"] == pytest.approx(frame["test_acc"].mean())


def test_train_folds_prints_a_line_per_fold_and_the_mean(release, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    argv = ["train", "R I", "--data", f"ckplus:{release}?size=16", "--folds", "3",
            "--width-mult", "0.25", *TINY, "--db", db]  # fmt: skip
    assert main(argv) == 0
    captured = capsys.readouterr()
    out = captured.out
    with Store(db) as store:
        frame = store.trials_frame()
    for i, trial_id in enumerate(frame["trial_id"]):
        assert f"fold {i + 1}/3  trial {trial_id}  complete" in out
    accs = 100 * frame["test_acc"]
    expected = f"test {accs.mean():.2f} ± {accs.std():.2f}%"
    assert "mean ± sd over 3 folds:" in out and expected in out
    assert (
        "training R|I on" in captured.err and "each of 3 subject-independent folds" in captured.err
    )


def test_one_ckplus_fold_says_it_is_not_the_cross_validated_figure(release, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    argv = ["train", "R I", "--data", f"ckplus:{release}?size=16&folds=3&fold=1",
            "--width-mult", "0.25", *TINY, "--db", db]  # fmt: skip
    assert main(argv) == 0
    err = capsys.readouterr().err
    assert "note: CK+ fold 1 of 3 only; --folds 3 trains every fold" in err


def test_baselines_folds_report_mean_and_sd_per_model(release, tmp_path, capsys):
    db = f"sqlite:///{tmp_path / 'r.db'}"
    argv = ["baselines", "--models", "mobilenetv2_050", "--data", f"ckplus:{release}?size=16",
            "--folds", "3", *TINY, "--db", db, "--no-progress"]  # fmt: skip
    assert main(argv) == 0
    out = capsys.readouterr().out
    with Store(db) as store:
        frame = store.trials_frame()
    assert len(frame) == 3 and set(frame["kind"]) == {"baseline"}
    assert sum(f"fold {i}/3  trial" in out for i in (1, 2, 3)) == 3
    assert "timm:mobilenetv2_050: mean ± sd over 3 folds" in out
    assert "3/3" in out and "mean ± sd over 3 subject-independent folds" in out
    assert fold_means(frame)["folds_done"].tolist() == [3]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--folds", "1"], "--folds must be a whole number from 3 to"),
        (["--folds", "2"], "--folds must be a whole number from 3 to"),
        (["--folds", "3", "--data", "synthetic?n=300"], "synthetic, which has fixed splits"),
        (["--folds", "3"], "is synthetic"),  # the default data
        (["--folds", "3", "--data", "ckplus:{root}?fold=1"], "names fold=1 and --folds 3"),
        (["--folds", "3", "--data", "ckplus:{root}?folds=4"], "names folds=4 but --folds is 3"),
    ],
)
@pytest.mark.parametrize("command", ["train", "baselines", "run"])
def test_bad_folds_is_one_line_before_anything_runs(
    command, extra, message, release, tmp_path, capsys
):
    head = {
        "train": ["train", "RI"],
        "baselines": ["baselines", "--models", "mobilenetv2_050"],
        "run": ["run", "--space", "rir_orderings", "--no-report"],
    }[command]
    extra = [arg.replace("{root}", str(release)) for arg in extra]
    db = f"sqlite:///{tmp_path / 'r.db'}"
    assert main([*head, *extra, "--device", "cpu", "--db", db]) == 2
    captured = capsys.readouterr()
    assert captured.err.startswith("harness: error: ") and captured.err.count("\n") == 1
    assert message in captured.err and captured.out == ""
    if (tmp_path / "r.db").exists():
        with Store(db) as store:
            assert store.trials_frame().empty


def test_check_folds_and_fold_specs(release):
    data = f"ckplus:{release}?size=16"
    assert check_folds(data, None) == 1 and check_folds("synthetic", None) == 1
    assert check_folds(data, 4) == 4 and check_folds(f"{data}&folds=4", 4) == 4
    specs = fold_specs(data, 3)
    assert [s.split("?")[1].split("&")[:2] for s in specs] == [
        ["folds=3", f"fold={i}"] for i in range(3)
    ]
    with pytest.raises(ConfigError):
        check_folds("fer2013:/x.csv", 3)
    with pytest.raises(DataError):
        check_folds("ckplus:/x?colour=1", 3)


def test_search_with_folds_trains_every_fold_and_optimises_the_mean(release, tmp_path):
    import optuna

    from harness.search import SearchSettings, run_search

    space = tmp_path / "two.toml"
    space.write_text(
        'description = "two positions"\n[skeleton]\ndepths = [1, 1]\nwidths = [8, 16]\n'
        '[architecture]\npositions = ["R", "I"]\n'
    )
    url = f"sqlite:///{tmp_path / 's.db'}"
    settings = SearchSettings(
        space=str(space), url=url, data=f"ckplus:{release}?folds=3&size=16", trials=1,
        overrides={"epochs": 1, "max_batches": 1, "batch_size": 8, "device": "cpu"},
        progress=False, measure_latency=False, folds=3,
    )  # fmt: skip
    result = run_search(settings)
    with Store(url) as store:
        frame = store.trials_frame(study=result.study)
    assert sorted(int(s.split("&fold=")[1].split("&")[0]) for s in frame["data_spec"]) == [0, 1, 2]
    study = optuna.load_study(study_name=result.study, storage=url)
    assert study.trials[0].value == pytest.approx(frame["val_acc"].mean())
    assert fold_means(frame)["folds_done"].tolist() == [3]


# -- fold_means on hand-made frames --------------------------------------------------------


def trial_row(trial_id: int, fold: int | None, **values) -> dict:
    row = dict.fromkeys(TRIAL_FRAME_COLUMNS)
    spec = "synthetic?n=300" if fold is None else f"ckplus:/d?folds=3&fold={fold}&size=48"
    row.update(
        trial_id=trial_id, study="s", arch="R|I", candidate_id=1, protocol="fast", seed=0,
        status="complete", val_acc=0.5 + fold / 10 if fold is not None else 0.4,
        test_acc=0.4 + (fold or 0) / 10, val_loss=1.0, test_loss=1.0, epochs=2,
        hyperparameters={"lr": 0.002}, data_spec=spec, train_seconds=1.0, eval_seconds=0.5,
        images_per_s=100.0,
    )  # fmt: skip
    row.update(values)
    return row


def frame_of(*rows: dict) -> pd.DataFrame:
    from harness.store.frames import tidy

    return tidy(pd.DataFrame(list(rows), columns=list(TRIAL_FRAME_COLUMNS)))


def test_fold_means_collapses_complete_groups_and_leaves_other_rows():
    trials = frame_of(
        trial_row(1, None),
        trial_row(2, 0), trial_row(3, 1), trial_row(4, 2),
        trial_row(5, 0, seed=1), trial_row(6, 1, seed=1), trial_row(7, 2, seed=1, test_acc=0.9),
    )  # fmt: skip
    out = fold_means(trials)
    assert out["trial_id"].tolist() == [1, 2, 5]
    plain = out.iloc[0]
    assert plain["data_spec"] == "synthetic?n=300" and plain["test_acc"] == 0.4
    assert pd.isna(plain["folds"]) and pd.isna(plain["folds_done"])
    seed0, seed1 = out.iloc[1], out.iloc[2]
    assert seed0["status"] == "complete" and seed0["folds"] == 3 and seed0["folds_done"] == 3
    assert seed0["test_acc"] == pytest.approx(0.5) and seed0["val_acc"] == pytest.approx(0.6)
    assert seed0["test_acc_sd"] == pytest.approx(statistics.stdev([0.4, 0.5, 0.6]))
    assert seed0["train_seconds"] == pytest.approx(3.0)
    assert seed0["data_spec"] == "ckplus:/d?folds=3&size=48"
    assert seed0["fold_trial_ids"] == [2, 3, 4]
    assert seed1["test_acc"] == pytest.approx(statistics.fmean([0.4, 0.5, 0.9]))


def test_fold_means_marks_a_missing_or_failed_fold():
    missing = fold_means(frame_of(trial_row(1, 0), trial_row(2, 1)))
    assert missing["status"].tolist() == ["incomplete"] and missing["folds_done"].tolist() == [2]
    assert "2 of 3 folds complete" in missing["reason"].iloc[0]

    failed = fold_means(
        frame_of(
            trial_row(1, 0), trial_row(2, 1),
            trial_row(3, 2, status="failed", reason="NaN loss", val_acc=None, test_acc=None),
        )
    )  # fmt: skip
    row = failed.iloc[0]
    assert row["status"] == "failed" and row["folds_done"] == 2
    assert "fold 2 failed: NaN loss" in row["reason"]
    # The partial mean is kept, but never as a complete figure.
    assert row["test_acc"] == pytest.approx(0.45)


def test_fold_means_keeps_the_latest_complete_trial_of_a_rerun_fold():
    out = fold_means(
        frame_of(
            trial_row(1, 0), trial_row(2, 1), trial_row(3, 2, test_acc=0.1),
            trial_row(4, 2, test_acc=0.7), trial_row(5, 2, status="failed", test_acc=None),
        )
    )  # fmt: skip
    row = out.iloc[0]
    assert len(out) == 1 and row["status"] == "complete"
    assert row["fold_trial_ids"] == [1, 2, 4]
    assert row["test_acc"] == pytest.approx(statistics.fmean([0.4, 0.5, 0.7]))


def test_fold_means_separates_other_settings_and_handles_an_empty_frame():
    out = fold_means(
        frame_of(
            trial_row(1, 0), trial_row(2, 1), trial_row(3, 2),
            trial_row(4, 0, hyperparameters={"lr": 0.01}), trial_row(5, 0, candidate_id=2),
        )
    )  # fmt: skip
    assert out["folds_done"].tolist() == [3, 1, 1]
    assert out["status"].tolist() == ["complete", "incomplete", "incomplete"]
    empty = fold_means(frame_of())
    assert empty.empty and "folds_done" in empty.columns
