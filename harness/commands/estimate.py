"""`harness estimate --space NAME`: score many candidates cheaply, without training them."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING, Any

from harness.commands import argtypes
from harness.commands._search_args import add_search_args, load_search_data, search_from_args
from harness.estimate.ensemble import DEFAULT_COMPONENTS

if TYPE_CHECKING:
    import pandas as pd

DEFAULT_ESTIMATORS = "params,flops,synflow,naswot,snip,grad_norm"


def add_estimator_args(parser: argparse.ArgumentParser, *, default: str) -> None:
    """--estimators and the settings estimators take (shared with validate-estimators)."""
    parser.add_argument(
        "--estimators",
        default=default,
        metavar="LIST",
        help=f"comma-separated estimators (default {default}; also meco, zico, swap and "
        "ensemble, their rank aggregation); `supernet` trains a weight-sharing supernet first",
    )
    parser.add_argument(
        "--proxy-batch",
        type=argtypes.int_range("--proxy-batch", 2, 4096),
        default=64,
        metavar="N",
        help="images in the batch a zero-cost proxy sees (default 64; zico sees two such "
        "batches, swap keeps its paper's 16 images)",
    )
    parser.add_argument(
        "--ensemble-of",
        metavar="LIST",
        help="comma-separated estimators whose ranks `ensemble` aggregates (default "
        f"{','.join(DEFAULT_COMPONENTS)})",
    )
    parser.add_argument(
        "--supernet-epochs",
        type=argtypes.int_range("--supernet-epochs", 1, 10_000),
        metavar="N",
        help="supernet: training epochs (default: the budget's)",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.add_argument(
        "--quiet", "-q", action="store_true", help="no progress bar (CI logs); the result stays"
    )


def estimator_options(args: argparse.Namespace, search: Any) -> dict[str, Any]:
    """What each estimator's constructor may take (rank.make_estimators picks its own)."""
    return {
        "batch_size": args.proxy_batch,
        "components": args.ensemble_of,
        "epochs": args.supernet_epochs,
        "overrides": search.settings.overrides,
        "search": search,  # budget:NAME trains the search's candidates at budget NAME
    }


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "estimate",
        help="score sampled candidates of a space with zero-cost proxies (no training)",
        description=(
            "Draw --sample distinct candidates of a space uniformly (seeded by --seed), build "
            "each as `harness run` would train it (same data, budget and training flags) and "
            "score it with each estimator: parameters and FLOPs (the baselines), synflow, "
            "naswot, snip, grad_norm, meco, zico and swap at initialisation, and ensemble, "
            "their rank aggregation over the candidates scored together. Scores are "
            "stored in the results database and reused by the next run. Higher predicts more "
            "accurate; `harness validate-estimators` measures how well."
        ),
    )
    parser.add_argument(
        "--sample",
        type=argtypes.int_range("--sample", 1, 10_000_000),
        default=100,
        metavar="N",
        help="candidates to score (default 100; at most the space's size)",
    )
    parser.add_argument(
        "--show",
        type=argtypes.int_range("--show", 1, 10_000),
        default=10,
        metavar="N",
        help="rows of the table of best candidates (default 10)",
    )
    add_estimator_args(parser, default=DEFAULT_ESTIMATORS)
    add_search_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import optuna

    from harness.estimate.rank import (
        check_capacity,
        make_estimators,
        parse_estimators,
        propose_and_score,
    )
    from harness.store import Store

    started = time.perf_counter()
    names = parse_estimators(args.estimators)
    search = search_from_args(args, progress=not (args.quiet or args.json))
    estimators = make_estimators(names, space=search.space, options=estimator_options(args, search))
    check_capacity(search, args.sample, "--sample")
    loud = not (args.quiet or args.json)
    with Store(search.settings.url) as store:
        dataset, device = load_search_data(search)
        if loud:
            print(
                f"estimate: space {search.space.name} ({search.space.summary()}), budget "
                f"{search.budget.name}, data {search.data}, {args.sample} candidates, "
                f"estimators {','.join(names)}, device {device}",
                file=sys.stderr,
            )
        proposals = propose_and_score(
            search,
            optuna.samplers.RandomSampler(seed=search.settings.seed),
            estimators,
            dataset,
            store,
            args.sample,
            progress=loud,
            on_message=_say if loud else None,
        )
        frame = proposals.frame
        url = store.url
    seconds = time.perf_counter() - started
    if args.json:
        return _print_json(frame, search, names, url, seconds)
    print(summary_table(frame, names))
    print()
    shown = min(args.show, len(proposals.configs))
    print(f"best {shown} by {_lead(names)} (higher predicts more accurate):")
    print(best_table(frame, names, args.show))
    if search.data.startswith("synthetic"):
        from harness.search.leaderboard import PIPELINE_CHECK

        print(f"NOTE: {PIPELINE_CHECK}")
    print(f"\ndatabase: {url}  (scores stored; the same command reuses them)")
    print(f"wall time: {seconds:.1f}s")
    return 0


def _say(text: str) -> None:
    print(text, file=sys.stderr)


def _lead(names: list[str]) -> str:
    """The first estimator that is not a baseline count (the table is sorted by it)."""
    return next((n for n in names if n not in ("params", "flops")), names[0])


def summary_table(frame: pd.DataFrame, names: list[str]) -> str:
    from harness.tables import number, render_table

    rows = []
    for name in names:
        part = frame[frame["estimator"] == name]
        computed = part[~part["reused"]]
        rows.append(
            [
                name,
                str(len(part)),
                str(int(part["reused"].sum())),
                number(part["seconds"].mean(), 4),
                number(len(computed) / computed["seconds"].sum(), 1)
                if len(computed) and computed["seconds"].sum() > 0
                else "–",
                str(int(part["score"].isna().sum())),
            ]
        )
    return render_table(
        ["estimator", "scored", "reused", "s/candidate", "candidates/s (computed)", "no score"],
        rows,
    )


def best_table(frame: pd.DataFrame, names: list[str], show: int) -> str:
    from harness.tables import count, render_table

    wide = frame.pivot_table(index=["candidate_id", "arch"], columns="estimator", values="score")
    wide = wide.reset_index().sort_values(_lead(names), ascending=False).head(show)
    params = frame.drop_duplicates("candidate_id").set_index("candidate_id")["params"]
    shown = [name for name in names if name != "params"]  # the parameters column says it

    def score(name: str, value: Any) -> str:
        # Counts (FLOPs) as whole numbers; proxies' scores to 4 significant figures.
        return count(value) if name == "flops" else f"{value:.4g}" if value == value else "-"

    rows = [
        [row["arch"], count(params.get(row["candidate_id"]))]
        + [score(name, row.get(name, float("nan"))) for name in shown]
        for _, row in wide.iterrows()
    ]
    return render_table(["arch", "params", *shown], rows)


def _print_json(
    frame: pd.DataFrame, search: Any, names: list[str], url: str, seconds: float
) -> int:
    import json

    from harness.store import plain

    out = {
        "space": search.space.name,
        "budget": search.budget.name,
        "data": search.data,
        "estimators": names,
        "database": url,
        "scores": plain(frame.to_dict("records")),
        "wall_s": round(seconds, 3),
    }
    print(json.dumps(out, indent=2))
    return 0
