"""harness.ranking: which trials are one leaderboard row, and the one order every
leaderboard shows (the terminal's after `harness run`, the report's page and Markdown)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pandas as pd
import pytest

from harness.ranking import rank_trials, setting_key
from harness.report import markdown_leaderboard
from harness.search.leaderboard import format_leaderboard, leaderboard
from harness.search.study import STORE_ID_ATTR
from harness.store import Store


def _trial(**changes):
    row = {
        "trial_id": 1, "study": "s", "candidate_id": 3, "protocol": "fast",
        "data_fingerprint": "abc", "data_spec": "synthetic?n=60", "label_mode": "majority",
        "hyperparameters": {"lr": 1e-3, "epochs": 2}, "seed": 0, "remedy": None,
    }  # fmt: skip
    row.update(changes)
    return row


def test_setting_key_joins_seeds_and_nothing_else():
    base = setting_key(_trial())
    assert setting_key(_trial(seed=1, trial_id=9)) == base
    assert setting_key(_trial(hyperparameters={"epochs": 2, "lr": 1e-3})) == base  # key order
    assert setting_key(_trial(remedy=math.nan)) == base
    for change in (
        {"study": "other"},
        {"candidate_id": 4},
        {"protocol": "paper"},
        {"data_fingerprint": "def"},
        {"label_mode": "soft"},
        {"hyperparameters": {"lr": 1e-2, "epochs": 2}},
        {"remedy": "small-input stem"},
    ):
        assert setting_key(_trial(**change)) != base, change


def test_setting_key_tells_fold_means_of_different_splits_apart():
    # A CK+ fold mean has no one fingerprint: the spec (without fold=) tells 5 from 10 folds.
    five = _trial(data_fingerprint=None, data_spec="ckplus:/d?folds=5")
    ten = _trial(data_fingerprint=None, data_spec="ckplus:/d?folds=10")
    assert setting_key(five) != setting_key(ten)
    assert setting_key(five) == setting_key({**five, "seed": 3})


def _frame(rows: list[dict]) -> pd.DataFrame:
    filled = []
    for row in rows:
        filled.append(
            {
                "arch": f"arch{row['candidate_id']}", "kind": "rir", "family": "RI",
                "status": "complete", "val_acc": 0.5, "test_acc": 0.4, "test_loss": 1.0,
                "params": 10, "flops": 100, "latency_ms": None, "epochs": 2, **row,
            }
        )  # fmt: skip
    return pd.DataFrame(filled)


def test_trials_that_differ_only_in_the_seed_are_one_row():
    frame = _frame(
        [
            _trial(trial_id=1, seed=0) | {"val_acc": 0.6, "test_acc": 0.5},
            _trial(trial_id=2, seed=1) | {"val_acc": 0.4, "test_acc": 0.3},  # a second seed
            _trial(trial_id=3, protocol="paper"),  # same network, another protocol
            _trial(trial_id=4, data_fingerprint="other"),  # another data set
            _trial(trial_id=5, candidate_id=8),
            _trial(trial_id=6, hyperparameters={"lr": 1e-2, "epochs": 2}),
            _trial(trial_id=7, seed=2) | {"status": "pruned"},  # not complete: not pooled
            _trial(trial_id=8, seed=3) | {"val_acc": None},  # no selection score: not ranked
        ]
    )
    board = rank_trials(frame)
    assert sorted(map(tuple, board["trial_ids"])) == [(1, 2), (3,), (4,), (5,), (6,)]
    pooled = board[board["n"] == 2].iloc[0]
    assert pooled["seeds"] == [0, 1] and pooled["best_trial_id"] == 1
    assert pooled["val_acc_mean"] == pytest.approx(0.5)
    assert pooled["val_acc_sd"] == pytest.approx(pd.Series([0.6, 0.4]).std())
    assert pooled["test_accs"] == pytest.approx([0.5, 0.3])
    assert math.isnan(board[board["n"] == 1].iloc[0]["val_acc_sd"])  # one run: no spread
    assert list(board["rank"]) == [1, 2, 3, 4, 5]


def test_a_validation_tie_goes_to_fewer_flops_then_the_earlier_trial_never_to_test():
    # Equal validation accuracy: the cheaper network ranks first although its test
    # accuracy is lower, and between equal costs the earlier trial does.
    frame = _frame(
        [
            _trial(trial_id=1, candidate_id=1) | {"test_acc": 0.9, "flops": 500},
            _trial(trial_id=2, candidate_id=2) | {"test_acc": 0.1, "flops": 100},
            _trial(trial_id=4, candidate_id=4) | {"test_acc": 0.8, "flops": 300},
            _trial(trial_id=3, candidate_id=3) | {"test_acc": 0.2, "flops": 300},
        ]
    )
    assert list(rank_trials(frame)["trial_ids"]) == [[2], [3], [4], [1]]


# Recorded trials: (architecture, FLOPs, seed, validation, test accuracy). Five
# candidates tie on validation at 0.6; their test accuracy would order them otherwise.
RECORDED = [
    ("RIRI", 500, 0, 0.6, 0.9),
    ("IRIR", 100, 0, 0.6, 0.1),
    ("RRII", 300, 0, 0.6, 0.8),
    ("IIRR", 300, 0, 0.6, 0.2),  # same cost as RRII, recorded later
    ("RRRI", 900, 0, 0.7, 0.3),
    ("RRRI", 900, 1, 0.7, 0.5),  # a second seed of RRRI: one row
    ("IIIR", 50, 0, 0.5, 0.95),
]
EXPECTED_ORDER = ["RRRI", "IRIR", "RRII", "IIRR", "RIRI", "IIIR"]


@pytest.fixture
def store(tmp_path, record_trial):
    with Store(f"sqlite:///{tmp_path / 'board.db'}") as store:
        for arch, flops, seed, val, test in RECORDED:
            record_trial(store, study="s", arch=arch, flops=flops, seed=seed, epochs=1,
                         val_acc=val, test_acc=test)  # fmt: skip
        yield store


def _terminal_archs(text: str) -> list[str]:
    lines = text.splitlines()
    assert lines[0].split()[:3] == ["rank", "architecture", "family"]
    return [line.split()[1] for line in lines[2:]]


def _markdown_archs(text: str) -> list[str]:
    lines = [line for line in text.splitlines() if line.startswith("|")]
    cells = [[c.strip() for c in line.strip("|").split("|")] for line in lines]
    assert cells[0][:2] == ["#", "ordering"]
    return [row[1].strip("`") for row in cells[2:]]


def test_the_terminal_and_the_report_rank_the_same_candidates_in_the_same_order(store):
    board = leaderboard(store, SimpleNamespace(study="s"))
    terminal = _terminal_archs(format_leaderboard(board))
    report = _markdown_archs(markdown_leaderboard(store, ["s"]))
    assert terminal == report == EXPECTED_ORDER
    assert list(board["seeds"]) == [2, 1, 1, 1, 1, 1]


def test_the_terminal_leaderboard_shows_a_ckplus_run_as_its_fold_mean(tmp_path, record_trial):
    spec = "ckplus:/d?folds=3&fold={}&size=16"
    with Store(f"sqlite:///{tmp_path / 'folds.db'}") as store:
        for fold, (val, test) in enumerate([(0.5, 0.4), (0.6, 0.5), (0.7, 0.9)]):
            record_trial(store, study="s", arch="RIRI", data_spec=spec.format(fold),
                         data_fingerprint=f"fp{fold}", val_acc=val, test_acc=test)  # fmt: skip
        # Two of three folds of another network: no cross-validated figure, no row.
        for fold in (0, 1):
            record_trial(store, study="s", arch="IRIR", data_spec=spec.format(fold),
                         data_fingerprint=f"fp{fold}", val_acc=0.9, test_acc=0.9)  # fmt: skip
        board = leaderboard(store, SimpleNamespace(study="s"))
        report = _markdown_archs(markdown_leaderboard(store, ["s"]))
    assert list(board["arch"]) == report == ["RIRI"]
    assert board.iloc[0]["val_acc"] == pytest.approx(0.6)
    assert board.iloc[0]["test_acc"] == pytest.approx(0.6)


def test_the_search_adds_the_space_names_its_values_and_the_pareto_front(store, record_trial):
    baseline = record_trial(store, study="s", arch="resnet50", kind="baseline", family="baseline",
                            flops=10, val_acc=0.8, test_acc=0.1).trial_id  # fmt: skip
    space = SimpleNamespace(
        kind="choices",
        params=[SimpleNamespace(name="lr")],
        arch_from_params=lambda params: params["arch"],
    )
    attrs = {"RRRI": 5, "IRIR": 2, "timm:resnet50?stem=small": baseline}
    trials = [
        SimpleNamespace(user_attrs={STORE_ID_ATTR: i}, params={"arch": arch, "lr": 0.002})
        for arch, i in attrs.items()
    ]
    study = SimpleNamespace(
        directions=["maximize", "minimize"],
        best_trials=trials[1:],
        get_trials=lambda deepcopy: trials,
    )
    board = leaderboard(store, SimpleNamespace(study="s", space=space), study)
    assert list(board["arch"]) == ["timm:resnet50?stem=small", *EXPECTED_ORDER]
    rows = board.set_index("arch")
    assert rows.loc["RRRI", "settings"] == "lr=0.002" and rows.loc["RIRI", "settings"] == ""
    assert list(board.loc[board["pareto"], "arch"]) == ["timm:resnet50?stem=small", "IRIR"]
    printed = format_leaderboard(board)
    assert "lr=0.002" in printed and "pareto" in printed.splitlines()[0]
