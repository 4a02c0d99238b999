"""`harness baselines`: the paper's timm baselines under the same protocol as our candidates."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

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
from harness.errors import ConfigError
from harness.tables import DASH, number, percent, percent_pm, render_table, scaled

DEFAULT_STUDY = "baselines"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baselines",
        help="train timm's resnet50, mobilenetv1_100 and mobilenetv2_100 as baselines",
        description=(
            "Train timm baselines (default: the paper's resnet50, mobilenetv1_100 and "
            "mobilenetv2_100) on --data under exactly the protocol candidates use, with "
            "in_chans and num_classes set from the data, and record them as baselines. Each "
            "keeps timm's own stem unless asked otherwise: --baseline-stem small (or "
            "timm:NAME?stem=small) drops the stem's first 4x of downsampling, a different "
            "network with 10-14x the FLOPs at 48 px; --resize upsamples the inputs (for "
            "pretrained checkpoints). The choice is recorded with each trial. Without "
            f"--data they train on the demo set {DEMO_DATA} (batch 32, one-cycle to lr 8e-3, no crops or "
            "rotations unless --protocol is given), as `harness train` does. With --folds K on "
            "ckplus: "
            "data each model trains on every subject-independent fold: mean ± sd over folds."
        ),
    )
    parser.add_argument(
        "--models",
        metavar="NAME,NAME",
        help="timm models, comma-separated, timm: prefix optional (default: the paper's three)",
    )
    add_db_arg(parser)
    parser.add_argument(
        "--study",
        type=argtypes.study_name(),
        default=DEFAULT_STUDY,
        help=f"study to record under (default {DEFAULT_STUDY})",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the results as one JSON object (implies --quiet)",
    )
    parser.add_argument(
        "--no-progress",
        "--quiet",
        "-q",
        dest="no_progress",
        action="store_true",
        help="no progress bars (CI logs)",
    )
    add_folds_arg(parser)
    add_training_args(parser, skeleton=False)
    parser.set_defaults(func=run)


def _model_names(text: str | None) -> list[str]:
    from harness.models import PAPER_BASELINES, TIMM_PREFIX

    if not text:
        return list(PAPER_BASELINES)
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ConfigError("--models needs at least one timm model name")
    return [n if n.startswith(TIMM_PREFIX) else TIMM_PREFIX + n for n in names]


def run(args: argparse.Namespace) -> int:
    from harness.folds import check_folds, load_fold_datasets, run_folds, single_fold_note
    from harness.store import Store
    from harness.summary import fold_line, mean_sd_text
    from harness.trial import load_trial_dataset

    # Every model, the data and the database are checked before the first line.
    names = _model_names(args.models)
    if args.pretrained and len(names) > 1:
        raise ConfigError("--pretrained loads one checkpoint: name one model with --models")
    defaults = demo_defaults(args, width=False)
    configs = [config_from_args(args, name, defaults=defaults) for name in names]
    started = time.perf_counter()
    for config in configs:
        check_arch(config)
    folds = check_folds(configs[0].data, args.folds)
    datasets = (
        load_fold_datasets(configs[0].data, folds)
        if folds > 1
        else [load_trial_dataset(configs[0].data)]
    )
    infos = [preflight(config, datasets[0]) for config in configs]
    store = Store(args.db)
    progress = not args.no_progress and not args.json

    def say(text: str) -> None:
        if progress:
            print(text, file=sys.stderr)

    shown = datasets[0].spec if folds == 1 else configs[0].data
    each = "" if folds == 1 else f", each of {folds} subject-independent folds"
    say(
        f"training {len(configs)} baseline(s) on {shown} ({configs[0].protocol} protocol, "
        f"{configs[0].epochs} epochs{each}, {device_text(infos[0])}"
        f"{demo_note(args, width=False)})"
    )
    note = single_fold_note(datasets[0].spec) if folds == 1 else None
    if note:
        say(note)
    rows, results, failures = [], [], 0
    try:
        for index, (config, info) in enumerate(zip(configs, infos, strict=True), 1):
            say(f"[{index}/{len(configs)}] {config.arch}")
            say(describe_preflight(info))
            outcome = run_folds(
                config, store, folds=folds, study=args.study, progress=progress,
                dataset=datasets[0], datasets=datasets if folds > 1 else None,
                on_fold_start=lambda i, spec: say(f"  fold {i + 1}/{folds}: {spec}"),
                on_fold=lambda i, o: print("  " + fold_line(i, folds, o)),
            )  # fmt: skip
            failures += outcome.status != "complete"
            rows.append(_row(outcome, folds))
            results.append(_result(outcome))
            if folds > 1:
                print(f"  {outcome.arch}: {mean_sd_text(outcome)}")
            if outcome.status != "complete":
                print(f"  {outcome.arch}: {outcome.status}: {outcome.reason}", file=sys.stderr)
    finally:
        store.close()
    if args.json:
        summary = {"study": args.study, "database": store.url, "folds": folds,
                   "baselines": results, "wall_s": round(time.perf_counter() - started, 3)}  # fmt: skip
        print(json.dumps(summary, indent=2, default=str))
        return 1 if failures else 0
    print(render_table(list(rows[0]), [list(r.values()) for r in rows]))
    if folds > 1:
        print(f"accuracies: mean ± sd over {folds} subject-independent folds")
    print(f"recorded in {store.url} (study {args.study})")
    print(f"wall time: {time.perf_counter() - started:.1f}s", file=sys.stderr)
    return 1 if failures else 0


def _result(outcome: Any) -> dict[str, Any]:
    """The machine-readable record of one baseline (fold means for K folds)."""
    keys = ("trial_id", "arch", "status", "reason", "val_acc", "test_acc", "params", "flops",
            "trial_ids", "folds_done", "val_sd", "test_sd")  # fmt: skip
    found = {k: getattr(outcome, k) for k in keys if hasattr(outcome, k)}
    config = outcome.config
    found.update(stem=config.get("baseline_stem"), resize=config.get("resize"),
                 pretrained=config.get("pretrained"))  # fmt: skip
    return found


def _row(outcome: Any, folds: int) -> dict[str, str]:
    """One table row: a trial, or for K folds the fold trials' first id and mean ± sd."""
    config = outcome.config
    if folds > 1:
        trial = f"{outcome.trial_ids[0]}-{outcome.trial_ids[-1]}"
        val = percent_pm(outcome.val_mean, outcome.val_sd, blank=DASH)
        test = percent_pm(outcome.test_mean, outcome.test_sd, blank=DASH)
    else:
        trial = str(outcome.trial_id)
        val, test = percent(outcome.val_acc, blank=DASH), percent(outcome.test_acc, blank=DASH)
    row = {
        "trial": trial,
        "model": outcome.arch,
        "status": outcome.status,
        "stem": str(config.get("baseline_stem")),
        "resize": str(config.get("resize") or "-"),
    }
    if folds > 1:
        row["folds"] = f"{outcome.folds_done}/{folds}"
    row.update(
        {
            "val acc %": val,
            "test acc %": test,
            "params (M)": scaled(outcome.params, 1e6, 2, blank=DASH),
            "MFLOPs": scaled(outcome.flops, 1e6, 1, blank=DASH),
            "latency ms": number(outcome.latency_ms, blank=DASH),
        }
    )
    return row
