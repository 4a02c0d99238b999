"""`harness export TRIAL | --best [--study NAME]`: a trial's saved weights as a checked folder."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from harness.commands.trials import add_db_arg


def register(subparsers: argparse._SubParsersAction) -> None:
    from harness.commands import argtypes
    from harness.export.pipeline import FORMATS

    parser = subparsers.add_parser(
        "export",
        help="write a trial's network as a checked folder (safetensors, ONNX, TorchScript)",
        description=(
            "Write the saved best-validation weights of a trial (its id as `harness trials` "
            "shows it, or --best: the top row of a study's leaderboard) as one folder: "
            "config.json (architecture, classes, input preprocessing, training settings, "
            "accuracies, environment, file hashes, checks), model.safetensors and, on request, "
            "model.onnx and model.torchscript.pt. Before the folder is put in place, the test "
            "accuracy is re-evaluated and must equal the recorded one, and every format's "
            "logits on the trial's own test images must match PyTorch's. ONNX needs the export "
            "extra: pip install 'harness[export]'."
        ),
    )
    parser.add_argument(
        "trial",
        nargs="?",
        type=argtypes.int_range("TRIAL", 1, 2**62),
        metavar="TRIAL",
        help="our trial id (the id column of `harness trials`)",
    )
    parser.add_argument(
        "--best",
        action="store_true",
        help="export the best trial of the study's leaderboard (by validation accuracy)",
    )
    parser.add_argument(
        "--study",
        type=argtypes.study_name(),
        metavar="NAME",
        help="with --best: the study (needed when the database holds several)",
    )
    add_db_arg(parser)
    parser.add_argument(
        "--artifacts",
        metavar="LOCATION",
        help="where the weights are stored, overriding the location recorded with them "
        "(a folder, s3://bucket, gs://bucket)",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="the folder to write (default: exports/<study>-trial-<id>)"
    )
    parser.add_argument(
        "--format",
        action="append",
        metavar="FORMAT",
        help=f"also write this format: {', '.join(FORMATS[1:])} (repeat, or a comma list); "
        "model.safetensors is always written",
    )
    parser.add_argument(
        "--force", action="store_true", help="replace an earlier export in the --out folder"
    )
    parser.add_argument(
        "--retrain",
        action="store_true",
        help="train the trial's recorded configuration again with its seed on the CPU instead "
        "of reading saved weights (for a trial whose run did not keep them); refused unless "
        "the retrained network scores the recorded test accuracy",
    )
    parser.add_argument("--json", action="store_true", help="print the result as one JSON object")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.errors import ConfigError
    from harness.export.bundle import refuse_existing
    from harness.export.pipeline import export_trial, parse_formats
    from harness.export.select import best_trial, folder_name
    from harness.store import Store

    if args.trial is None and not args.best:
        raise ConfigError("export: give a TRIAL id or --best (see harness export --help)")
    if args.trial is not None and args.best:
        raise ConfigError("export: give a TRIAL id or --best, not both")
    if args.study is not None and not args.best:
        raise ConfigError("export: --study goes with --best; a TRIAL id names its study already")
    formats = parse_formats(args.format)
    if "onnx" in formats:
        from harness.export.to_onnx import require_onnx

        require_onnx()
    with Store(args.db, create=False) as store:
        trial_id = best_trial(store, args.study) if args.best else args.trial
        trial = store.trial(trial_id)
        out = (
            Path(args.out).expanduser()
            if args.out
            else Path("exports") / folder_name(trial.get("study"), trial_id)
        )
        refuse_existing(out, args.force)  # before the weights are fetched
        if not args.retrain:
            from harness.artifacts import trial_weights

            state, metadata = trial_weights(store, trial_id, args.artifacts)
    if args.retrain:
        from harness.export.retrain import retrain_weights

        if not args.json:
            print(
                f"training trial {trial_id} again ({trial.get('arch')}, seed {trial.get('seed')}) "
                "on the CPU: its weights were not read from the artifact store",
                file=sys.stderr,
                flush=True,
            )
        state, metadata = retrain_weights(trial, progress=not args.json)
    if not args.json:
        # On stderr, as progress: re-evaluation can take a while on a big test split.
        print(
            f"exporting trial {trial_id} of study {trial.get('study')}: {trial.get('arch')} "
            f"({trial.get('family')}), seed {trial.get('seed')}",
            file=sys.stderr,
            flush=True,
        )
    result = export_trial(trial, state, metadata, out=out, formats=formats, force=args.force)
    predict = f"harness predict {shlex.quote(str(out))} IMAGE..."
    from harness.export.network import timm_line
    from harness.weights import WEIGHTS_FILE

    timm = timm_line(result.config, str(out / WEIGHTS_FILE))
    if args.json:
        print(
            json.dumps(
                {
                    "folder": str(out),
                    "trial_id": trial_id,
                    "study": trial.get("study"),
                    "arch": trial.get("arch"),
                    "files": result.config["files"],
                    "checks": result.config["checks"],
                    "predict": predict,
                    "timm": timm,
                },
                indent=2,
            )
        )
        return 0
    for line in result.lines():
        print(line)
    print(f"wrote {out}/ ({', '.join(['config.json', *result.config['files']])})")
    print("next:")
    print(f"  {predict}")
    if timm:
        print(f"  {timm}")
    else:
        print(
            f'  python -c "from harness.export.network import load_model; model = load_model({str(out)!r})"'
        )
    sys.stdout.flush()
    return 0
