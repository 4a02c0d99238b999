"""One timed FER2013-sized training epoch per network on the GPU: images/s, TFLOP/s, memory.

    python scripts/gpu_epoch.py                      # alternated, RI, IR, timm:mobilenetv2_100
    python scripts/gpu_epoch.py --n 300 --device cpu # a smoke run of the script itself

Data: `synthetic?n=41013`, whose 70/15/15 split gives FER2013's 28,709
training images at 48x48, kept on the device as uint8. Networks are built as
a `paper` study builds them (its skeleton; timm baselines with the small-input
stem) and trained as `harness` trains them (`Trainer`, the protocol's batch,
AMP in bf16 where the card has it, channels_last). A short warm-up epoch per
network (cuDNN's algorithm choice, the allocator) comes before the timed one.

Achieved TFLOP/s is 3 x forward FLOPs x images/s, the forward FLOPs counted by
fvcore (multiply-add = 1, so the hardware's rate is about twice this). Without
fvcore, torch's FlopCounterMode is used and halved to the same convention
(it skips BatchNorm and pooling: 2-4% lower on these networks); the table says
which counted.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import torch

from harness.bench import space_set
from harness.candidate import build_candidate
from harness.config import TrainConfig
from harness.data import load_dataset
from harness.data.synthetic import split_counts
from harness.train import Trainer, seed_everything

FER2013_TRAIN = 28_709
FER2013_SIZED_N = 41_013  # split_counts(41_013)["train"] == 28,709
ARCHS = ("alternated", "RI", "IR", "timm:mobilenetv2_100")
WARMUP_BATCHES = 20


def forward_flops(model: torch.nn.Module, input_shape: tuple[int, int, int]) -> tuple[int, str]:
    """Per-image forward FLOPs (multiply-add = 1) and which counter gave them."""
    try:
        import fvcore  # noqa: F401
    except ImportError:
        from torch.utils.flop_counter import FlopCounterMode

        model.eval()
        device = next(model.parameters()).device
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
        model.train()
        return counter.get_total_flops() // 2, "torch/2"
    from harness.measure import count_flops

    return count_flops(model, input_shape), "fvcore"


def time_epoch(arch: str, dataset: Any, device: torch.device, args: argparse.Namespace) -> dict:
    paper = space_set("paper")
    overrides = {"batch_size": args.batch} if args.batch else {}
    config = TrainConfig.from_protocol(
        args.protocol,
        arch=arch,
        data=dataset.spec,
        device=str(device),
        epochs=1,
        precision=args.precision,
        skeleton=paper.skeleton,
        **overrides,
    )
    seed_everything(0)
    candidate = build_candidate(
        arch,
        image_shape=dataset.image_shape,
        num_classes=len(dataset.classes),
        skeleton=config.skeleton,
    )
    flops, counter = forward_flops(candidate.model.to(device), candidate.input_shape)

    # Warm-up on its own trainer (its own optimiser and schedule), then the timed epoch.
    Trainer(
        candidate.model, dataset, config.replace(max_batches=WARMUP_BATCHES), device
    ).train_epoch(0)
    trainer = Trainer(candidate.model, dataset, config, device)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
    _, _, seconds, images_per_s = trainer.train_epoch(1)  # ends in .item(): synchronised
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else None
    return {
        "arch": candidate.architecture.name,
        "input": arch,
        "precision": trainer.precision,
        "batch": trainer.batch_size,
        "images": trainer.steps_per_epoch * trainer.batch_size,
        "seconds": round(seconds, 3),
        "images_per_s": round(images_per_s, 1),
        "forward_gflops": round(flops / 1e9, 4),
        "flops_counter": counter,
        "tflops": round(3 * flops * images_per_s / 1e12, 3),
        "peak_memory_gib": round(peak / 2**30, 3) if peak is not None else None,
    }


def format_table(rows: list[dict]) -> str:
    headers = ["arch", "precision", "batch", "images", "s", "images/s", "TFLOP/s", "peak GiB"]
    cells = [
        [
            r["input"],
            r["precision"],
            str(r["batch"]),
            f"{r['images']:,}",
            f"{r['seconds']:.2f}",
            f"{r['images_per_s']:,.0f}",
            f"{r['tflops']:.2f}",
            "-" if r["peak_memory_gib"] is None else f"{r['peak_memory_gib']:.2f}",
        ]
        for r in rows
    ]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headers)]
    lines = [
        "  ".join(
            h.rjust(w) if i else h.ljust(w)
            for i, (h, w) in enumerate(zip(headers, widths, strict=True))
        )
    ]
    for row in cells:
        lines.append(
            "  ".join(
                c.rjust(w) if i else c.ljust(w)
                for i, (c, w) in enumerate(zip(row, widths, strict=True))
            )
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", default=",".join(ARCHS), help="comma-separated architectures")
    parser.add_argument(
        "--n", type=int, default=FER2013_SIZED_N, help="synthetic images in all splits"
    )
    parser.add_argument("--device", default="cuda", help="cuda (default) or cpu for a smoke run")
    parser.add_argument("--protocol", default="paper", help="training protocol (default paper)")
    parser.add_argument("--batch", type=int, help="batch size (default: the protocol's)")
    parser.add_argument("--precision", default="auto", help="auto, bf16, fp16 or fp32")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("gpu_epoch: no CUDA device (use --device cpu for a smoke run)", file=sys.stderr)
        return 2
    started = time.perf_counter()
    dataset = load_dataset(f"synthetic?n={args.n}").to(device)
    train = split_counts(args.n)["train"]
    note = " (FER2013's training split)" if train == FER2013_TRAIN else ""
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    print(
        f"data: synthetic?n={args.n}: {train:,} training images 48x48{note}, on {where}; "
        f"torch {torch.__version__}; loaded in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    rows = []
    for arch in args.archs.split(","):
        rows.append(time_epoch(arch.strip(), dataset, device, args))
        print(f"  {arch}: {rows[-1]['images_per_s']:,.0f} images/s", flush=True)
    print(format_table(rows))
    counters = sorted({r["flops_counter"] for r in rows})
    print(
        f"TFLOP/s = 3 x forward FLOPs x images/s, FLOPs by {', '.join(counters)} "
        "(multiply-add = 1); one epoch each after a warm-up; "
        f"total {time.perf_counter() - started:.0f} s"
    )
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"device": where, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
