"""The leaderboard printed at the end of a run, computed from the results store.

One row per group of trials that differ only in the seed (`harness.tables.setting_key`,
the report's grouping too; `seeds` says how many were averaged), ranked by mean
validation accuracy. Every number comes
from `Store.trials_frame`, the same rows `harness trials` prints.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.search.study import STORE_ID_ATTR, stored_arch
from harness.tables import DASH, percent_pm, render_table, scaled, setting_key

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from harness.search.settings import Search
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
    "test_acc_sd", "seeds", "params", "flops", "latency_ms", "pareto", "trial_ids", "test_accs",
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


def _settings_by_store_id(search: Search, study: optuna.Study) -> dict[int, str]:
    from harness.search.params import describe_values

    out: dict[int, str] = {}
    for trial in study.get_trials(deepcopy=False):
        store_id = trial.user_attrs.get(STORE_ID_ATTR)
        if store_id is not None:
            out[int(store_id)] = describe_values(search.space, trial.params)
    return out


def _written_by_store_id(search: Search, study: optuna.Study) -> dict[int, str]:
    """A baseline as the space names it (`timm:resnet50?stem=small`): the stored arch is
    the bare timm name, and two stems of one model must not print alike."""
    out: dict[int, str] = {}
    if search.space.kind != "choices":
        return out
    for trial in study.get_trials(deepcopy=False):
        store_id = trial.user_attrs.get(STORE_ID_ATTR)
        if store_id is None or not trial.params:
            continue
        # None for parameters of another version of the space: the stored name stays.
        arch = stored_arch(search.space, trial.params)
        if arch is not None:
            out[int(store_id)] = arch
    return out


def leaderboard(store: Store, search: Search, study: optuna.Study | None = None) -> pd.DataFrame:
    import pandas as pd

    frame = store.trials_frame(study=search.study, status="complete")
    if frame.empty:
        return pd.DataFrame(columns=list(LEADERBOARD_COLUMNS))
    settings = _settings_by_store_id(search, study) if study is not None else {}
    written = _written_by_store_id(search, study) if study is not None else {}
    pareto = set(pareto_store_ids(study)) if study is not None else set()
    frame = frame.copy()
    # Trials that differ only in the seed are one row, grouped as the report groups them.
    frame["_setting"] = [setting_key(row) for row in frame.to_dict(orient="records")]
    rows: list[dict[str, Any]] = []
    for _, group in frame.groupby("_setting", sort=False):
        ids = [int(i) for i in group["trial_id"]]
        first = group.iloc[0]
        described = next((settings[i] for i in ids if i in settings), "")
        latency = group["latency_ms"].dropna()
        shown = first["arch"]
        if first["kind"] == "baseline":
            shown = next((written[i] for i in ids if i in written), shown)
        rows.append(
            {
                "arch": shown,
                "family": first["family"],
                "kind": first["kind"],
                "settings": described,
                "val_acc": group["val_acc"].mean(),
                "val_acc_sd": group["val_acc"].std() if len(group) > 1 else None,
                "test_acc": group["test_acc"].mean(),
                "test_acc_sd": group["test_acc"].std() if len(group) > 1 else None,
                "seeds": group["seed"].nunique(),
                "params": first["params"],
                "flops": first["flops"],
                "latency_ms": latency.min() if len(latency) else None,
                "pareto": any(i in pareto for i in ids),
                "trial_ids": ids,
                "test_accs": [float(v) for v in group["test_acc"] if v == v],
            }
        )
    board = pd.DataFrame(rows)
    # Ties on validation go to the cheaper network, then the earlier one: never to test.
    board["_first_id"] = [min(ids) for ids in board["trial_ids"]]
    board = board.sort_values(
        ["val_acc", "flops", "_first_id"], ascending=[False, True, True], na_position="last"
    )
    board.insert(0, "rank", range(1, len(board) + 1))
    return board.reset_index(drop=True)[list(LEADERBOARD_COLUMNS)]


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
