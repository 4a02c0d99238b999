"""`harness baselines`: the paper's timm baselines under the same protocol as our candidates."""

from __future__ import annotations

import argparse
import sys

from harness.commands._training import add_training_args, config_from_args
from harness.commands.trials import _cell, add_db_arg, fmt_percent, render_table
from harness.errors import ConfigError

DEFAULT_STUDY = "baselines"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "baselines",
        help="train timm's resnet50, mobilenetv1_100 and mobilenetv2_100 as baselines",
        description=(
            "Train timm baselines (default: the paper's resnet50, mobilenetv1_100 and "
            "mobilenetv2_100) on --data under exactly the protocol candidates use, with "
            "in_chans and num_classes set from the data, and record them as baselines. Below "
            "96 px a baseline's stem drops its first 4x of downsampling (--baseline-stem), or "
            "inputs are upsampled (--resize); the choice is recorded with each trial."
        ),
    )
    parser.add_argument(
        "--models",
        metavar="NAME,NAME",
        help="timm models, comma-separated, timm: prefix optional (default: the paper's three)",
    )
    add_db_arg(parser)
    parser.add_argument(
        "--study", default=DEFAULT_STUDY, help=f"study to record under (default {DEFAULT_STUDY})"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
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
    from harness.store import Store
    from harness.trial import load_trial_dataset, run_trial

    names = _model_names(args.models)
    if args.pretrained and len(names) > 1:
        raise ConfigError("--pretrained loads one checkpoint: name one model with --models")
    configs = [config_from_args(args, name) for name in names]
    dataset = load_trial_dataset(configs[0].data)
    store = Store(args.db)
    rows, failures = [], 0
    try:
        for index, config in enumerate(configs, 1):
            if not args.no_progress:
                print(f"[{index}/{len(configs)}] {config.arch} on {dataset.spec}", file=sys.stderr)
            outcome = run_trial(
                config, store, study=args.study, dataset=dataset, progress=not args.no_progress
            )
            failures += outcome.status != "complete"
            rows.append(
                {
                    "trial": str(outcome.trial_id),
                    "model": outcome.arch,
                    "status": outcome.status,
                    "stem": str(outcome.config.get("baseline_stem")),
                    "resize": str(outcome.config.get("resize") or "-"),
                    "val acc %": _cell(outcome.val_acc, fmt_percent),
                    "test acc %": _cell(outcome.test_acc, fmt_percent),
                    "params (M)": f"{outcome.params / 1e6:.2f}",
                    "MFLOPs": f"{outcome.flops / 1e6:.1f}",
                    "latency ms": "-"
                    if outcome.latency_ms is None
                    else f"{outcome.latency_ms:.2f}",
                }
            )
            if outcome.status != "complete":
                print(f"  {outcome.arch}: {outcome.status}: {outcome.reason}", file=sys.stderr)
    finally:
        store.close()
    print(render_table(list(rows[0]), [list(r.values()) for r in rows]))
    print(f"recorded in {store.url} (study {args.study})")
    return 1 if failures else 0
