"""Run one part of a `harness validate-estimators` command, so that two processes share
a 2-core machine: `reference` trains the candidates at the reference budget, `scores`
scores them with the estimators (a `budget:NAME` estimator trains them at NAME). Both
record into the command's database; the command itself, run afterwards with the same
flags, then reuses every trial and score and prints the table.

    python scripts/validate_parts.py reference --space rir_orderings --trained 16 ... &
    python scripts/validate_parts.py scores    --space rir_orderings --trained 16 ... &
    wait; harness validate-estimators --space rir_orderings --trained 16 ...

Candidates are drawn exactly as the command draws them (`landmark_params`, then
`sample_configs` with the search's seed). Used for docs/estimators.md.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    from harness.cli import build_parser
    from harness.commands._search_args import load_search_data, search_from_args
    from harness.commands.estimate import estimator_options
    from harness.estimate.rank import make_estimators, parse_estimators, sample_configs
    from harness.estimate.validate import landmark_params, train_candidates
    from harness.store import Store

    part, rest = argv[0], argv[1:]
    if part not in ("reference", "scores"):
        print(
            "usage: validate_parts.py reference|scores VALIDATE-ESTIMATORS-FLAGS", file=sys.stderr
        )
        return 2
    args = build_parser().parse_args(["validate-estimators", *rest])
    search = search_from_args(args)
    names = parse_estimators(args.estimators)
    estimators = make_estimators(names, space=search.space, options=estimator_options(args, search))
    first = landmark_params(search)[: args.trained]
    configs = sample_configs(search, args.trained, seed=search.settings.seed, first=first)
    with Store(search.settings.url) as store:
        dataset, _ = load_search_data(search)
        if part == "reference":
            seeds = search.budget.named_seeds if args.seeds is None else args.seeds
            for _, outcome in train_candidates(
                search,
                configs,
                len(first),
                store,
                dataset,
                study=args.study or f"{search.study}-validate",
                seeds=seeds,
            ):
                print(f"reference {outcome.arch}: {outcome.status} {outcome.val_acc}", flush=True)
            return 0
        from harness.estimate.rank import score_candidates

        for estimator in estimators:
            estimator.prepare(dataset, configs[0], store=store, progress=print)
        frame = score_candidates(configs, estimators, dataset, store, progress=True)
        print(frame.to_string(), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
