"""`harness train ARCH`: train one candidate, print a summary, record everything."""

from __future__ import annotations

import argparse
import json
import sys
import time

from harness.commands import argtypes
from harness.commands._training import (
    DEMO_DATA,
    add_folds_arg,
    add_training_args,
    check_arch,
    config_from_args,
    demo_defaults,
    demo_note,
    describe_preflight,
    device_text,
    preflight,
)
from harness.commands.trials import add_db_arg

DEFAULT_STUDY = "train"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train one architecture and record it in the results database",
        description=(
            "Train one architecture on --data, keep the epoch with the best validation "
            "accuracy, evaluate the test split there, print a summary and record the trial, its "
            "epochs and its latency. ARCH is a block string ('R*8 I*8', '(IR)*8'), a named "
            "ordering (alternated, RI, IR) or timm:NAME. Without --data it trains a demo that "
            f"learns within minutes on a CPU: {DEMO_DATA}, and (unless --protocol is given) "
            "the strided stem at full width, batch 32, one-cycle to lr 8e-3 and no random crops or "
            "rotations; each yields to its flag. With --folds K on ckplus: data it trains every "
            "subject-independent fold and reports the mean and sd over folds."
        ),
    )
    parser.add_argument("arch", metavar="ARCH", help="block string, named ordering or timm:NAME")
    add_db_arg(parser)
    parser.add_argument(
        "--study",
        type=argtypes.study_name(),
        default=DEFAULT_STUDY,
        help=f"study to record under (default {DEFAULT_STUDY})",
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.add_argument(
        "--no-progress",
        "--quiet",
        "-q",
        dest="no_progress",
        action="store_true",
        help="no progress bar or per-epoch lines (CI logs)",
    )
    add_folds_arg(parser)
    add_training_args(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.folds import check_folds, load_fold_datasets, run_folds, single_fold_note
    from harness.store import Store
    from harness.summary import (
        fold_line,
        folds_dict,
        format_folds,
        format_outcome,
        outcome_dict,
    )
    from harness.trial import load_trial_dataset

    started = time.perf_counter()
    # Everything the run needs is checked before the first line is printed.
    config = config_from_args(args, args.arch, defaults=demo_defaults(args, width=True))
    check_arch(config)
    folds = check_folds(config.data, args.folds)
    datasets = (
        load_fold_datasets(config.data, folds) if folds > 1 else [load_trial_dataset(config.data)]
    )
    info = preflight(config, datasets[0])
    store = Store(args.db)
    progress = not args.no_progress and not args.json

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr)

    each = "" if folds == 1 else f", each of {folds} subject-independent folds"
    say(
        f"training {info['arch']} on {datasets[0].spec if folds == 1 else config.data} "
        f"({config.protocol} protocol, {config.epochs} epochs{each}, {device_text(info)}"
        f"{demo_note(args, width=True)})"
    )
    note = single_fold_note(datasets[0].spec) if folds == 1 else None
    if note:
        say(note)
    say(describe_preflight(info))
    try:
        outcome = run_folds(
            config, store, folds=folds, study=args.study, progress=progress,
            dataset=datasets[0], datasets=datasets if folds > 1 else None,
            on_fold_start=lambda i, spec: say(f"fold {i + 1}/{folds}: {spec}"),
            on_fold=lambda i, o: say(fold_line(i, folds, o)),
        )  # fmt: skip
    finally:
        store.close()
    if folds == 1:
        if args.json:
            print(json.dumps(outcome_dict(outcome, store.url), indent=2))
        else:
            print(format_outcome(outcome, store.url))
    else:
        if args.json:
            print(json.dumps(folds_dict(outcome, store.url), indent=2))
        else:
            print(format_folds(outcome, store.url))
    if not args.json:
        print(f"wall time: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    if outcome.status != "complete":
        print(
            f"harness: trial {outcome.trial_id} {outcome.status}: {outcome.reason}", file=sys.stderr
        )
        return 1
    return 0
