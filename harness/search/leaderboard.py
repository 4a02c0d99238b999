"""The leaderboard printed at the end of a run, computed from the results store.

The rows and their order are the report's (`harness.ranking.rank_trials`): one per
group of trials that differ only in the seed (`seeds` says how many were averaged),
ranked by mean validation accuracy. Every number comes from `Store.trials_frame`, the
same rows `harness trials` prints; this module adds what only the search knows (the
space's names and searched values, the Pareto front) and the terminal's formatting.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from harness.search.study import STORE_ID_ATTR, stored_arch
from harness.tables import DASH, percent_pm, render_table, scaled

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness.search.plan import RunPlan
    from harness.store import Store

__all__ = [
    "LEADERBOARD_COLUMNS",
    "PIPELINE_CHECK",
    "format_leaderboard",
    "leaderboard",
    "noise_line",
    "pareto_store_ids",
]

LEADERBOARD_COLUMNS = (
    "rank", "arch", "family", "kind", "settings", "val_acc", "val_acc_sd", "test_acc",
    "test_acc_sd", "seeds", "params", "flops", "latency_ms", "pareto", "trial_ids", "best_trial_id",
    "test_accs",
)  # fmt: skip
PIPELINE_CHECK = (
    "pipeline check, not a finding: synthetic data tests the harness, not facial expression "
    "recognition"
)


def pareto_store_ids(study: optuna.Study) -> list[int]:
    """Store trial ids of the Pareto front (multi-objective studies), else []."""
    if len(study.directions) < 2:
        return []
    ids = [t.user_attrs.get(STORE_ID_ATTR) for t in study.best_trials]
    return sorted({int(i) for i in ids if i is not None})


def _space_names(search: RunPlan, study: optuna.Study) -> tuple[dict[int, str], dict[int, str]]:
    """By store trial id: the searched values as the space describes them, and a baseline
    as the space names it (`timm:resnet50?stem=small`: the stored arch is the bare timm
    name, and two stems of one model must not print alike)."""
    from harness.search.params import describe_values

    settings: dict[int, str] = {}
    written: dict[int, str] = {}
    for trial in study.get_trials(deepcopy=False):
        store_id = trial.user_attrs.get(STORE_ID_ATTR)
        if store_id is None:
            continue
        settings[int(store_id)] = describe_values(search.space, trial.params)
        if search.space.kind == "choices" and trial.params:
            # None for parameters of another version of the space: the stored name stays.
            arch = stored_arch(search.space, trial.params)
            if arch is not None:
                written[int(store_id)] = arch
    return settings, written


def leaderboard(store: Store, search: RunPlan, study: optuna.Study | None = None) -> pd.DataFrame:
    """The study's ranked rows (`harness.ranking`, as the report ranks them), named and
    described as the space writes them, with the Pareto front marked."""
    import pandas as pd

    from harness.folds import fold_means
    from harness.ranking import rank_trials

    # Every status: a CK+ run missing a fold must not pass for a complete fold mean.
    board = rank_trials(fold_means(store.trials_frame(study=search.study)))
    if board.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    settings, written = _space_names(search, study) if study is not None else ({}, {})
    pareto = set(pareto_store_ids(study)) if study is not None else set()
    rows = board.to_dict(orient="records")
    board = board.assign(
        arch=[
            next((written[i] for i in r["trial_ids"] if i in written), r["arch"])
            if r["kind"] == "baseline"
            else r["arch"]
            for r in rows
        ],
        settings=[next((settings[i] for i in r["trial_ids"] if i in settings), "") for r in rows],
        seeds=[len(set(r["seeds"])) for r in rows],
        pareto=[any(i in pareto for i in r["trial_ids"]) for r in rows],
    )
    board = board.rename(columns={"val_acc_mean": "val_acc", "test_acc_mean": "test_acc"})
    return board[list(LEADERBOARD_COLUMNS)]


def format_leaderboard(board: pd.DataFrame, *, limit: int = 20) -> str:
    """A fixed-width table; accuracies in %, FLOPs as fvcore multiply-adds."""
    if board.empty:
        return "no complete trials yet"
    show_settings = bool(board["settings"].astype(bool).any())
    show_seeds = bool((board["seeds"] > 1).any())
    show_pareto = bool(board["pareto"].any())
    headers = ["rank", "architecture", "family", "val acc %", "test acc %"]
    headers += ["params (M)", "MFLOPs (fvcore)", "latency ms (b1)"]
    if show_seeds:
        headers.insert(5, "seeds")
    if show_settings:
        headers.insert(3, "settings")
    if show_pareto:
        headers.append("pareto")
    rows = []
    for record in board.head(limit).to_dict(orient="records"):
        row = [
            str(record["rank"]),
            str(record["arch"]),
            str(record["family"]),
            percent_pm(record["val_acc"], record["val_acc_sd"], blank=DASH),
            percent_pm(record["test_acc"], record["test_acc_sd"], blank=DASH),
            scaled(record["params"], 1e6, 3, blank=DASH),
            scaled(record["flops"], 1e6, 1, blank=DASH),
            scaled(record["latency_ms"], 1, 2, blank=DASH),
        ]
        if show_seeds:
            row.insert(5, str(record["seeds"]))
        if show_settings:
            row.insert(3, record["settings"] or DASH)
        if show_pareto:
            row.append("*" if record["pareto"] else "")
        rows.append(row)
    text = render_table(headers, rows)
    if len(board) > limit:
        text += f"\n... {len(board) - limit} more (harness trials --study NAME lists every trial)"
    return text


def noise_line(board: pd.DataFrame) -> str:
    """How big seed noise is at this budget, measured on the rows with several seeds."""
    from harness.stats import seed_noise

    if board.empty:
        return ""
    noise = seed_noise(list(board["test_accs"]))
    if noise is None:
        return (
            "seed noise: unknown (every row has one seed); rerun with --repeats 2 before "
            "reading differences between rows"
        )
    return (
        f"seed noise: one network's test accuracy moved by up to "
        f"{100 * noise.largest_gap:.1f} pp between seeds (pooled sd {100 * noise.pooled_sd:.1f} "
        f"pp over {noise.networks} networks); differences below {100 * noise.threshold:.1f} pp "
        "between two single runs are noise at this budget"
    )
