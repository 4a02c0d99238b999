"""`harness run --space NAME`: an Optuna search over a space file, resumable, with a leaderboard."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from typing import TYPE_CHECKING

from harness.artifacts import ARTIFACTS_ENV_VAR, KEEP_POLICIES
from harness.commands import argtypes
from harness.commands._search_args import add_budget_arg, settings_from_args
from harness.commands._training import add_training_args
from harness.commands.trials import add_db_arg
from harness.errors import ConfigError
from harness.search.samplers import PRUNERS, SAMPLERS
from harness.strategy import HELP as STRATEGY_HELP

if TYPE_CHECKING:
    from harness.data import Dataset
    from harness.search import RunPlan, SearchSettings
    from harness.search.runner import SearchResult


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "run",
        help="search a space of architectures with Optuna and print the leaderboard",
        description=(
            "Search a space from search_spaces/ (see `harness spaces`) with Optuna: train each "
            "candidate, record it in the results database, and print a leaderboard (validation and "
            "test accuracy, parameters, FLOPs counted by fvcore with one multiply-add = 1 flop, "
            "batch-1 latency). The space's named architectures (the paper's alternated, RI and IR "
            "orderings) are measured first. Rerunning the same command continues the study up to "
            "--trials instead of starting over. Optuna's tables live in the same database, so "
            "`optuna-dashboard URL` (pip install optuna-dashboard) can watch a study live."
        ),
    )
    parser.add_argument(
        "--space", required=True, metavar="NAME", help="search space name or file (.toml/.yaml)"
    )
    add_budget_arg(parser)
    parser.add_argument(
        "--trials",
        type=argtypes.int_range("--trials", 1, 1_000_000),
        metavar="N",
        help="searched trials in the study in all, seed repeats not counted (default: the "
        "budget's)",
    )
    parser.add_argument(
        "--objectives",
        default="accuracy",
        metavar="LIST",
        help="accuracy (default), or accuracy,flops / accuracy,latency / accuracy,params for a "
        "multi-objective search that keeps the Pareto front",
    )
    parser.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="tpe",
        help="tpe (default; multi-objective TPE with several objectives), nsga2, grid (small "
        "spaces, exhaustive), random",
    )
    parser.add_argument(
        "--pruner",
        choices=PRUNERS,
        default="median",
        help="stop poor trials early on validation accuracy (single objective only)",
    )
    parser.add_argument(
        "--repeats",
        type=argtypes.int_range("--repeats", 1, 1_000),
        default=1,
        metavar="K",
        help="retrain the top candidates (every candidate of a choices space such as paper) "
        "with K seeds in all",
    )
    parser.add_argument(
        "--top",
        type=argtypes.int_range("--top", 1, 100_000),
        metavar="N",
        help="with --strategy: candidates trained stand-alone, the best by score; with "
        "--repeats: candidates retrained (default 3)",
    )
    parser.add_argument(
        "--strategy",
        default="train",
        metavar="NAME",
        help=STRATEGY_HELP,
    )
    parser.add_argument(
        "--candidates",
        type=argtypes.int_range("--candidates", 1, 1_000_000),
        metavar="N",
        help="with --strategy: candidates the sampler proposes and the estimator scores "
        "(default: --trials, else the budget's trials); scores are stored and reused",
    )
    parser.add_argument(
        "--workers",
        type=argtypes.workers(),
        default=1,
        metavar="N",
        help="worker processes on this machine (one per GPU on CUDA, a share of cores on CPU), "
        f"1 to {argtypes.usable_cores()} here",
    )
    parser.add_argument(
        "--keep-weights",
        choices=KEEP_POLICIES,
        default="top",
        help="whose best-validation weights are kept (safetensors, as Optuna artifacts that "
        "optuna-dashboard lists): top (default) the leaderboard's best --top rows and the "
        "named orderings, named only those, all, or none",
    )
    parser.add_argument(
        "--artifacts",
        metavar="LOCATION",
        help="where the weights go: a folder, s3://BUCKET (boto3) or gs://BUCKET "
        f"(default: ${ARTIFACTS_ENV_VAR}, else artifacts/ beside the SQLite database, "
        "else results/artifacts)",
    )
    add_db_arg(parser)
    parser.add_argument(
        "--storage",
        metavar="URL",
        help="same as --db; a postgresql:// URL lets workers on many machines join one study",
    )
    parser.add_argument(
        "--study",
        type=argtypes.study_name(),
        metavar="NAME",
        help="study name (default: SPACE-BUDGET, plus a hash of flags)",
    )
    constraints = parser.add_argument_group(
        "constraints", "candidates over a limit are recorded as pruned before any training"
    )
    constraints.add_argument(
        "--max-flops",
        type=argtypes.count("--max-flops", 1e18),
        metavar="N",
        help="forward FLOPs per image, e.g. 300M",
    )
    constraints.add_argument(
        "--max-params",
        type=argtypes.count("--max-params", 1e15),
        metavar="N",
        help="parameters, e.g. 2.5M",
    )
    constraints.add_argument(
        "--max-latency-ms",
        type=argtypes.finite_float("--max-latency-ms", 0, 3_600_000, open_low=True),
        metavar="MS",
        help="batch-1 latency",
    )
    parser.add_argument(
        "--quiet",
        "-q",
        "--no-progress",
        dest="no_progress",
        action="store_true",
        help="no progress bar or per-trial lines (CI logs); the first line and the summary stay",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the summary (leaderboard, statuses, report, wall time) as one JSON object",
    )
    parser.add_argument("--no-report", action="store_true", help="do not write the HTML report")
    parser.add_argument(
        "--heartbeat",
        type=argtypes.int_range("--heartbeat", 1, 86_400),
        default=60,
        metavar="S",
        help="seconds between worker heartbeats; a trial silent for 3x this is retried (default 60)",
    )
    parser.add_argument(
        "--folds",
        type=argtypes.int_range("--folds", 3, 1_000, hint=argtypes.FOLDS_HINT),
        metavar="K",
        help="ckplus: data only: train every candidate on each of K subject-independent folds; "
        "the objective is the mean validation accuracy over folds",
    )
    add_training_args(parser)
    parser.set_defaults(func=run)


def run_settings(args: argparse.Namespace) -> SearchSettings:
    """The shared search flags (`_search_args.settings_from_args`) plus run's own."""
    from harness.search.samplers import parse_objectives

    if args.db and args.storage and args.db != args.storage:
        raise ConfigError("--db and --storage name the same database; give one of them")
    from harness.strategy import estimator_of

    strategy = args.strategy.strip()
    if estimator_of(strategy) is None:
        if args.top is not None and args.repeats == 1:
            raise ConfigError("--top needs --strategy (train the best N by score) or --repeats")
        if args.candidates is not None:
            raise ConfigError("--candidates needs --strategy proxy:NAME or supernet")
    constraints = {
        # The flags' type checked these already; here they become numbers.
        "max_flops": argtypes.count_value(args.max_flops),
        "max_params": argtypes.count_value(args.max_params),
        "max_latency_ms": args.max_latency_ms,
    }
    return settings_from_args(
        args,
        db=args.storage,
        study=args.study or "",
        trials=args.trials,
        objectives=parse_objectives(args.objectives),
        sampler=args.sampler,
        pruner=args.pruner,
        constraints={k: v for k, v in constraints.items() if v is not None},
        repeats=args.repeats,
        top=3 if args.top is None else args.top,
        strategy=strategy,
        candidates=args.candidates,
        workers=args.workers,
        heartbeat_s=args.heartbeat,
        grace_s=3 * args.heartbeat,
        progress=not (args.no_progress or args.json),
        folds=args.folds or 1,
        keep_weights=args.keep_weights,
        artifacts=args.artifacts,
    )


def run(args: argparse.Namespace) -> int:
    from harness.search import RunPlan, format_leaderboard
    from harness.store import Store
    from harness.strategy import ranked_search

    started = time.perf_counter()
    settings = run_settings(args)
    search = RunPlan.resolve(settings)
    from harness.strategy import check_strategy

    # Unknown estimator, --top too large, a space a supernet cannot hold: refused here.
    estimator = check_strategy(search)
    from harness.search.study import study_algorithms

    study_algorithms(search)  # nsga2 for one objective, a grid too large: refused here
    _check_artifacts(settings)  # a file for a folder, s3:// without boto3: refused here
    Store(settings.url).close()  # an unreachable database: one error line, before anything else
    device, dataset = _check_device_and_data(search)
    # Printed even with --quiet: the thread count explains most "why is it slower here".
    print(
        f"study {search.study}: space {search.space.name} ({search.space.summary()}), "
        f"budget {search.budget.name}, data {search.data}, {search.n_trials} trials, "
        f"{search.base.epochs} epochs, objectives {','.join(settings.objectives)}, "
        f"device {device}, {threads_text(settings)}",
        file=sys.stderr,
    )
    result = ranked_search(settings, search=search, dataset=dataset, estimator=estimator)
    if args.json:
        return _print_json(args, settings, result, time.perf_counter() - started)
    objectives = ",".join(settings.objectives)
    print(
        f"\nleaderboard of study {result.study} ({result.n_trials} trials; ranked by validation "
        f"accuracy; objectives {objectives}; FLOPs per image by fvcore, multiply-add = 1):"
    )
    print(format_leaderboard(result.leaderboard))
    from harness.search.leaderboard import PIPELINE_CHECK, noise_line

    if len(result.leaderboard):
        print(noise_line(result.leaderboard))
    if search.data.startswith("synthetic"):
        print(f"NOTE: {PIPELINE_CHECK}")
    counts = ", ".join(f"{n} {status}" for status, n in sorted(result.statuses.items()))
    if counts:
        print(f"trials recorded: {counts}")
    if result.pareto:
        print(f"* on the Pareto front of {objectives}")
    if settings.keep_weights != "none":
        print(f"weights: {weights_text(result)}")
    report = None if args.no_report else _write_report(result.url, settings.url, result.study)
    print(f"\ndatabase: {result.url}  (harness trials --study {result.study})")
    kept = settings.keep_weights != "none" and result.weights.get("kept", 0) > 0
    if settings.url.startswith("sqlite"):
        # The dashboard lists and downloads the weights when it is told where they are.
        from harness.artifacts import is_remote

        local = kept and not is_remote(result.artifacts)
        serve = f" --artifact-dir {shlex.quote(result.artifacts)}" if local else ""
        print(f"live view: optuna-dashboard {result.url}{serve}  (pip install optuna-dashboard)")
    if kept:
        line = _export_line(result, settings.url)
        if line:
            print(f"export: {line}")
    if report is not None:
        print(f"report: {report}")
    print(f"wall time: {_duration(time.perf_counter() - started)}")
    return 0


def _check_artifacts(settings: SearchSettings) -> None:
    if settings.keep_weights == "none":
        return
    from harness.artifacts import artifact_store, is_remote, resolve_location

    location = resolve_location(settings.artifacts, settings.url)
    if is_remote(location):
        artifact_store(location)  # the client library is there (the bucket is not checked)
        return
    from pathlib import Path

    from harness.errors import ConfigError

    path = Path(location)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"--artifacts {path} is a file, not a folder")


def _export_line(result: SearchResult, url: str) -> str:
    """The export command of the best leaderboard row whose trial kept its weights
    (`--best` when that is the top row), or "" when no row has any."""
    from harness.artifacts import trials_with_weights
    from harness.export.select import export_command, row_export_trial
    from harness.store import Store

    board = result.leaderboard
    if board.empty:
        return ""
    with Store(url, create=False) as store:
        ids = [int(i) for ids in board["trial_ids"] for i in ids]
        kept = trials_with_weights(store, ids)
    then = "  (then harness predict FOLDER IMAGES...)"
    for position, row in enumerate(board.itertuples()):
        chosen = row_export_trial(row, kept)
        if chosen is None:
            continue
        if position == 0 and chosen == int(row.best_trial_id):
            return export_command(result.url, study=result.study, extra=" --format onnx") + then
        why = f"  (the best row with kept weights: rank {row.rank}; others: --retrain)"
        return export_command(result.url, trial_id=chosen, extra=" --format onnx") + why
    return ""


def weights_text(result: SearchResult) -> str:
    """'5 trials' best-validation weights kept in LOCATION (harness export TRIAL)'."""
    kept = result.weights.get("kept", 0)
    noun = "trial's" if kept == 1 else "trials'"
    return f"{kept} {noun} best-validation weights kept as Optuna artifacts in {result.artifacts}"


def _check_device_and_data(search: RunPlan) -> tuple[str, Dataset]:
    """The device name and the dataset, which the search then uses; a bad --device or
    --data fails here, before the first line.

    Loading the data also fills the cache, so that workers read it back fast."""
    from harness.measure import resolve_device
    from harness.trial import load_trial_dataset

    device = resolve_device(search.base.device)
    return str(device), load_trial_dataset(search.data)


def used_threads(settings: SearchSettings) -> list[int]:
    """The CPU threads of each training process: --threads, else torch's default (all
    cores) in this process, else with --workers N on the CPU each worker's share."""
    import torch

    chosen = settings.overrides.get("threads")
    if settings.workers == 1:
        return [chosen or torch.get_num_threads()]
    from harness.search.workers import worker_environments

    device = str(settings.overrides.get("device") or "auto")
    return [
        chosen or share or torch.get_num_threads()
        for _, share in worker_environments(settings.workers, device)
    ]


def threads_text(settings: SearchSettings) -> str:
    threads = used_threads(settings)
    counts = "/".join(str(n) for n in sorted(set(threads)))
    noun = "thread" if counts == "1" else "threads"
    if settings.workers == 1:
        return f"{counts} CPU {noun}"
    return f"{settings.workers} workers x {counts} CPU {noun}"


def _print_json(
    args: argparse.Namespace, settings: SearchSettings, result: SearchResult, seconds: float
) -> int:
    """The summary as one JSON object on stdout (the report is still written)."""
    import json

    report = None if args.no_report else _write_report(result.url, settings.url, result.study)
    summary = {
        "study": result.study,
        "database": result.url,
        "trials": result.n_trials,
        "statuses": result.statuses,
        "objectives": list(settings.objectives),
        "leaderboard": json.loads(result.leaderboard.to_json(orient="records")),
        "pareto_trial_ids": list(result.pareto),
        "report": None if report is None else str(report),
        "weights": {**result.weights, "artifacts": result.artifacts},
        "workers": settings.workers,
        "threads": used_threads(settings),
        "wall_s": round(seconds, 3),
    }
    print(json.dumps(summary, indent=2))
    return 0


def _write_report(shown_url: str, url: str, study: str):
    """The HTML report; None (said on stderr) when the store cannot give one."""
    from harness.errors import HarnessError
    from harness.report import write_report  # Plotly and pandas are dependencies, not extras
    from harness.store import Store

    try:
        with Store(url, create=False) as store:  # a report never writes to the database
            return write_report(store, [study], None)
    except HarnessError as error:
        print(f"harness: report not written: {error}", file=sys.stderr)
        return None


def _duration(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s" if minutes else f"{seconds:.1f}s"
