"""Optuna's own view of a search: optimisation history and parameter importances.

The search keeps Optuna's RDB storage in the results database under the same
study names. The report only reads it: tables are never created, and a
database without Optuna's tables or study gives a note instead of figures.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy.exc import SQLAlchemyError

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from harness.store import Store

__all__ = ["MIN_TRIALS", "OptunaView", "optuna_view"]

# Importances need at least this many finished trials to mean anything.
MIN_TRIALS = 3


@dataclass
class OptunaView:
    study: str
    figures: list[tuple[str, Any]] = field(default_factory=list)  # (title, go.Figure)
    note: str | None = None


def _has_optuna_tables(engine: Engine) -> bool:
    from sqlalchemy import inspect

    tables = set(inspect(engine).get_table_names())
    return {"studies", "trials", "version_info"} <= tables


def optuna_view(store: Store, name: str, objectives: list[str] | None = None) -> OptunaView:
    view = OptunaView(study=name)
    try:
        present = _has_optuna_tables(store.engine)
    except SQLAlchemyError as error:  # a database the inspector cannot read: say so, go on
        view.note = f"cannot look for Optuna's tables: {error}"
        return view
    if not present:
        view.note = "no Optuna search recorded in this database (results of single runs only)"
        return view

    import optuna

    try:
        storage = optuna.storages.RDBStorage(
            store.raw_url, skip_table_creation=True, skip_compatibility_check=True
        )
        if name not in optuna.get_all_study_names(storage=storage):
            view.note = f"no Optuna study named {name!r} in this database"
            return view
        study = optuna.load_study(study_name=name, storage=storage)
    except (optuna.exceptions.OptunaError, SQLAlchemyError) as error:
        view.note = f"cannot read Optuna's study {name!r}: {error}"
        return view

    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    if len(complete) < MIN_TRIALS:
        view.note = (
            f"Optuna study {name!r} has {len(complete)} complete trial(s); "
            f"its plots need at least {MIN_TRIALS}"
        )
        return view

    kwargs: dict[str, Any] = {}
    if len(study.directions) > 1:
        # Multi-objective: Optuna's plots need one target; show the first objective.
        target_name = objectives[0] if objectives else "objective 0"
        kwargs = {"target": lambda t: t.values[0], "target_name": target_name}
    elif objectives:
        kwargs = {"target_name": objectives[0]}

    from harness.search.study import SEED_PARAM

    # Every run is a trial, seed repeats included; the seed is not a searched choice, so
    # its "importance" (seed noise) is left out of the importances.
    searched = sorted({name for trial in complete for name in trial.params} - {SEED_PARAM})
    notes = []
    plots = (
        ("optimisation history", optuna.visualization.plot_optimization_history, {}),
        ("parameter importances", optuna.visualization.plot_param_importances,
         {"params": searched}),
    )  # fmt: skip
    for title, plot, only in plots:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                figure = plot(study, **kwargs, **only)
        # How Optuna's plots refuse a study they cannot draw: ValueError (a search space
        # that changed between trials, with parameters named), RuntimeError ("zero total
        # variance in all trees": importances of results that never varied).
        except (ValueError, RuntimeError) as error:
            notes.append(f"{title}: {error}")
            continue
        figure.update_layout(
            template="plotly_white", height=400, margin=dict(l=60, r=20, t=50, b=50)
        )
        view.figures.append((title, figure))
    if notes:
        view.note = "; ".join(notes)
    return view
