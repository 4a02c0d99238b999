"""Optuna glue: search-space files -> trials -> `run_trial`; budgets, samplers, workers.

    from harness.search import SearchSettings, run_search
    result = run_search(SearchSettings(space="rir_orderings", url="sqlite:///results/harness.db"))
    print(format_leaderboard(result.leaderboard))

Modules: `settings` (what a run asks for), `plan` (`RunPlan`: the run's settings
resolved and checked once), `space` (load and validate files), `size` (space
size, FLOPs range), `budgets`, `params` (trial values -> TrainConfig), `samplers` (objectives,
samplers, pruners), `study` (storage, enqueue, recovery), `objective`,
`runner`, `workers`, `progress`, `leaderboard`. Training lives in
`harness.trial`; nothing here trains.
"""

from harness.search.budgets import BUDGETS, Budget, get_budget
from harness.search.leaderboard import format_leaderboard, leaderboard
from harness.search.plan import RunPlan, default_study_name
from harness.search.runner import SearchResult, run_search, run_worker
from harness.search.settings import SearchSettings
from harness.search.size import FlopsRange, SpaceSize, flops_range, space_size
from harness.search.space import Param, SearchSpace, list_spaces, load_space, space_dirs

__all__ = [
    "BUDGETS",
    "Budget",
    "FlopsRange",
    "Param",
    "RunPlan",
    "SearchResult",
    "SearchSettings",
    "SearchSpace",
    "SpaceSize",
    "default_study_name",
    "flops_range",
    "format_leaderboard",
    "get_budget",
    "leaderboard",
    "list_spaces",
    "load_space",
    "run_search",
    "run_worker",
    "space_dirs",
    "space_size",
]
