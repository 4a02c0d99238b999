"""`harness validate-estimators --space NAME --trained N`: how well each cheap estimator
ranks candidates like stand-alone training, measured."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from harness.commands import argtypes
from harness.commands._search_args import add_search_args, load_search_data, search_from_args
from harness.commands.estimate import DEFAULT_ESTIMATORS, add_estimator_args, estimator_options

if TYPE_CHECKING:
    from harness.estimate.validate import Validation


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "validate-estimators",
        help="train N candidates stand-alone and measure each estimator's rank correlation",
        description=(
            "Train --trained candidates of a space as ordinary trials (the paper's alternated, "
            "RI, IR, R*16 and I*16 where the space holds them, with the budget's seeds; the rest "
            "drawn uniformly, one seed), reusing complete trials of the same experiment; score "
            "them with every estimator; and report Spearman rho and Kendall tau against their "
            "validation accuracy with bootstrap 95%% intervals, tau minus the parameter count's "
            "tau, the top-K overlap and seconds per candidate. Same data, budget and training "
            "flags as `harness run`."
        ),
    )
    parser.add_argument(
        "--trained",
        type=argtypes.int_range("--trained", 3, 100_000),
        default=24,
        metavar="N",
        help="candidates to train stand-alone (default 24, at least 3)",
    )
    parser.add_argument(
        "--seeds",
        type=argtypes.int_range("--seeds", 1, 100),
        metavar="K",
        help="seeds of each landmark ordering (default: the budget's; the rest get one)",
    )
    parser.add_argument(
        "--top-k",
        type=argtypes.int_range("--top-k", 1, 10_000),
        default=8,
        metavar="K",
        help="the K of the top-K overlap (default 8)",
    )
    parser.add_argument(
        "--study",
        type=argtypes.study_name(),
        metavar="NAME",
        help="study of the trials (default SPACE-BUDGET-validate)",
    )
    add_estimator_args(parser, default=DEFAULT_ESTIMATORS)
    add_search_args(parser)
    from harness.search.budgets import BUDGETS

    parser.add_argument(
        "--reference-budget",
        dest="budget",
        choices=tuple(BUDGETS),
        default=argparse.SUPPRESS,
        help="the budget the candidates are trained at, against which every estimator is "
        "scored (the same as --budget here; default smoke). A budget:NAME estimator trains "
        "them at the cheaper budget NAME",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.estimate.rank import check_capacity, make_estimators, parse_estimators
    from harness.estimate.validate import validate_estimators
    from harness.store import Store

    started = time.perf_counter()
    names = parse_estimators(args.estimators)
    search = search_from_args(args)
    estimators = make_estimators(names, space=search.space, options=estimator_options(args, search))
    check_capacity(search, args.trained, "--trained")
    loud = not (args.quiet or args.json)
    with Store(search.settings.url) as store:
        dataset, device = load_search_data(search)
        if loud:
            print(
                f"validate-estimators: space {search.space.name}, budget {search.budget.name}, "
                f"data {search.data}, {args.trained} candidates to train ({search.base.epochs} "
                f"epochs), estimators {','.join(names)}, device {device}",
                file=sys.stderr,
            )

        def on_trial(outcome) -> None:
            if loud:
                how = (
                    "reused"
                    if outcome.reused
                    else f"{outcome.result.train_seconds:.0f}s"
                    if outcome.result
                    else ""
                )
                acc = "–" if outcome.val_acc is None else f"{outcome.val_acc:.3f}"
                print(
                    f"  trained {outcome.arch}: {outcome.status}, val {acc} {how}", file=sys.stderr
                )

        result = validate_estimators(
            search,
            estimators,
            store,
            dataset,
            trained=args.trained,
            seeds=args.seeds,
            top_k=args.top_k,
            study=args.study,
            progress=loud,
            on_trial=on_trial,
            on_message=(lambda text: print(text, file=sys.stderr)) if loud else None,
        )
    seconds = time.perf_counter() - started
    if args.json:
        import json

        print(json.dumps({**result.to_dict(), "wall_s": round(seconds, 3)}, indent=2))
        return 0
    print(format_validation(result))
    if search.data.startswith("synthetic"):
        from harness.search.leaderboard import PIPELINE_CHECK

        print(f"NOTE: {PIPELINE_CHECK}")
    print(f"\nwall time: {seconds:.1f}s")
    return 0


def _interval(value: float, ci: tuple[float, float] | None) -> str:
    from harness.tables import number

    if ci is None:
        return number(value, 2)
    return f"{number(value, 2)} [{number(ci[0], 2)}, {number(ci[1], 2)}]"


def format_validation(result: Validation) -> str:
    """The table of every estimator against training, and what it says in words."""
    from harness.tables import number, render_table

    rows = [
        [
            c.estimator,
            _interval(c.rho, c.rho_ci),
            _interval(c.tau, c.tau_ci),
            "–"
            if c.estimator == "params"
            else _interval(c.tau_minus_params, c.tau_minus_params_ci),
            f"{c.overlap}/{c.top_k}",
            number(c.seconds_per_candidate, 3),
            c.verdict,
        ]
        for c in result.checks
    ]
    k = result.checks[0].top_k if result.checks else 0
    chance = k * k / max(result.trained, 1)
    rows.append(
        [
            "(training)",
            "1",
            "1",
            "–",
            f"{k}/{k}",
            number(result.train_seconds_per_candidate, 1),
            "stand-alone trial",
        ]
    )
    table = render_table(
        [
            "estimator",
            "rho [95% CI]",
            "tau [95% CI]",
            "tau - params'",
            f"top-{k}",
            "s/candidate",
            "verdict",
        ],
        rows,
        right=[False, False, False, False, True, True, False],
    )
    lines = [
        f"estimators against stand-alone training: space {result.space}, budget "
        f"{result.budget}, {result.trained} candidates ({result.trials} trials, study "
        f"{result.study}); validation accuracy, mean over seeds",
        table,
        f"top-{k} overlap by chance: {chance:.1f} on average. Bootstrap 95% intervals "
        f"(percentile, candidates resampled).",
    ]
    if result.seed_sd is not None:
        lines.append(
            f"seed noise: the same ordering's validation accuracy moves by sd {result.seed_sd:.3f} "
            "between seeds; differences smaller than that between candidates are noise."
        )
    worse = [c.estimator for c in result.checks if c.verdict == "no better than params"]
    if worse:
        lines.append(f"no better than the parameter count (tau <= params'): {', '.join(worse)}.")
    return "\n".join(lines)
