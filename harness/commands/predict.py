"""`harness predict MODEL_DIR IMAGES...`: class probabilities of images under an exported network."""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "predict",
        help="class probabilities of images under a network `harness export` wrote",
        description=(
            "Read image files (png, jpg, ...; or folders of them), prepare them as the network "
            "was trained (grayscale, resized to its input size, scaled to [0, 1], normalised "
            "with the mean and std in config.json) and print each one's class probabilities: "
            "the top class, its probability, then every class. Runs the PyTorch network rebuilt "
            "from config.json and model.safetensors, or model.onnx with --onnx; needs neither "
            "the results database nor the dataset."
        ),
    )
    parser.add_argument("model_dir", metavar="MODEL_DIR", help="the folder `harness export` wrote")
    parser.add_argument(
        "images", nargs="+", metavar="IMAGES", help="image files, or folders of images"
    )
    parser.add_argument(
        "--onnx",
        action="store_true",
        help="run model.onnx through onnxruntime (needs the export extra and --format onnx)",
    )
    parser.add_argument(
        "--json", action="store_true", help="print one JSON object per image, as a list"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from harness.export.predict import predict_files
    from harness.tables import render_table

    predictions = predict_files(args.model_dir, args.images, onnx=args.onnx)
    records = predictions.records()
    if args.json:
        print(json.dumps(records, indent=2))
        return 0
    headers = ["file", "class", "p %", *predictions.classes]
    rows = [
        [
            r["file"],
            r["class"],
            f"{100 * r['probability']:.1f}",
            *(f"{100 * r['probabilities'][c]:.1f}" for c in predictions.classes),
        ]
        for r in records
    ]
    print(render_table(headers, rows))
    if predictions.data_spec.startswith("synthetic"):
        from harness.search.leaderboard import PIPELINE_CHECK

        print(
            f"NOTE: this network was trained on synthetic data: {PIPELINE_CHECK}",
            file=sys.stderr,
        )
    return 0
