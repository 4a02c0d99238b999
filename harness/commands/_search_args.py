"""The flags that name a space and the experiment its candidates train in, shared by
`run`, `estimate` and `validate-estimators`: the space, the budget,
the database and every training flag, resolved the way `harness run` resolves them
(`RunPlan.resolve`: protocol < space < budget < explicit flags)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from harness.commands._training import add_training_args, training_overrides
from harness.commands.trials import add_db_arg
from harness.search.budgets import BUDGETS

if TYPE_CHECKING:
    from harness.search import RunPlan, SearchSettings

__all__ = [
    "add_budget_arg",
    "add_search_args",
    "load_search_data",
    "search_from_args",
    "settings_from_args",
]


def add_space_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--space", required=True, metavar="NAME", help="search space name or file (.toml/.yaml)"
    )


def add_budget_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--budget",
        choices=tuple(BUDGETS),
        default="smoke",
        help="data size, epochs, widths and trials (default smoke: minutes on a CPU); "
        "explicit flags override it",
    )


def add_search_args(parser: argparse.ArgumentParser) -> None:
    """--space, --budget, --db and the training flags, as `harness run` has them."""
    add_space_arg(parser)
    add_budget_arg(parser)
    add_db_arg(parser)
    add_training_args(parser)


def settings_from_args(
    args: argparse.Namespace, *, db: str | None = None, **fields: Any
) -> SearchSettings:
    """What the flags ask for: the space, the database (`db`, else --db), the budget,
    --data, --seed and every training flag; `fields` sets the other `SearchSettings`
    fields (study, trials, progress, ...). Checked and resolved by `RunPlan.resolve`."""
    from harness.search import SearchSettings
    from harness.store import resolve_db_url

    overrides = training_overrides(args)
    data = overrides.pop("data", None)
    seed = overrides.pop("seed", None)
    return SearchSettings(
        space=args.space,
        url=resolve_db_url(db or args.db),
        budget=args.budget,
        data=data,
        seed=seed or 0,
        overrides=overrides,
        **fields,
    )


def search_from_args(args: argparse.Namespace, **fields: Any) -> RunPlan:
    """The resolved search `harness run` would train with these flags; `fields` sets
    other `SearchSettings` fields (study, progress, ...)."""
    from harness.search import RunPlan

    return RunPlan.resolve(settings_from_args(args, **fields))


def load_search_data(search: RunPlan) -> tuple[Any, str]:
    """The search's dataset and device name; a bad --device or --data fails here."""
    from harness.measure import resolve_device
    from harness.trial import load_trial_dataset

    device = resolve_device(search.base.device)
    return load_trial_dataset(search.data), str(device)
