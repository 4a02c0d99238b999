"""Image files -> the float batch the network was trained on, from config.json's `input`.

Training reads images once as grayscale uint8 at the dataset's size (Pillow, Lanczos:
`harness.data.images.read_gray`, what the `folder` source does), first cutting each
picture to its largest centred square where the source did (`crop`: the CK+ original
release's 640x490 frames; every other source resizes the whole picture), feeds them as
float in [0, 1] (`harness.data.augment.to_float`), upsamples them bilinearly on the
device when the trial asked for `resize`, and standardises them with the training
split's mean and standard deviation (`harness.train.Trainer.prepare`). `read_images`
and `prepare` do the same steps in the same order, so an exported network sees what it
saw in training; export checks that `prepare` gives exactly Trainer.prepare's batch on
the trial's test images (the reading step cannot be checked there: a dataset keeps its
pixels, not the files they came from).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.export.checks import ExportError

if TYPE_CHECKING:
    import numpy as np
    import torch

__all__ = ["collect_images", "input_spec", "prepare", "read_images"]


def input_spec(
    image_shape: tuple[int, int, int], resize: int | None, mean: float, std: float, *, crop: str
) -> dict[str, Any]:
    """config.json's `input`: how a picture becomes the network's input. `crop` is the
    dataset's (`Dataset.crop`, one of harness.data.types.CROPS)."""
    channels, height, width = image_shape
    shape = [channels, resize, resize] if resize else [channels, height, width]
    return {
        "shape": shape,  # what the network takes (N x C x H x W, float32)
        "layout": "NCHW",
        "dtype": "float32",
        "grayscale": channels == 1,
        # "centre-square": each picture is first cut to its largest centred square (as
        # the CK+ original release's frames were); "none": it is resized whole, a
        # picture that is not square squashed. A config.json without it means "none".
        "crop": crop,
        "image_size": [height, width],  # pictures are resized to this first (Pillow, Lanczos)
        "resize": resize,  # then upsampled to resize x resize (bilinear, align_corners=False)
        "value_range": [0.0, 1.0],  # uint8 / 255
        "mean": [mean],  # (x - mean) / std, the training split's statistics
        "std": [std],
    }


def prepare(images_u8: torch.Tensor, spec: dict[str, Any]) -> torch.Tensor:
    """uint8 (N, C, H, W) at `image_size` -> the float32 batch the network takes."""
    import torch.nn.functional as F

    from harness.data import to_float

    x = to_float(images_u8)
    if spec.get("resize"):
        size = (int(spec["resize"]), int(spec["resize"]))
        x = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return (x - float(spec["mean"][0])) / float(spec["std"][0])


def read_images(paths: list[Path], spec: dict[str, Any]) -> np.ndarray:
    """uint8 (N, 1, H, W): each file grayscale, cut as `crop` says and resized to the
    trained `image_size`, as training read it."""
    from harness.data.images import read_all
    from harness.data.types import CROPS

    height, width = spec["image_size"]
    if height != width or not spec.get("grayscale", True):
        raise ExportError(
            f"this export takes {spec['shape']} inputs; predict reads square grayscale images only"
        )
    # Exports written before `crop` was recorded resized every picture whole.
    crop = spec.get("crop", "none")
    if crop not in CROPS:
        raise ExportError(
            f"config.json's input crop {crop!r} is unknown to this harness (it knows "
            f"{', '.join(CROPS)}); predict with the harness version that exported it"
        )
    return read_all(paths, int(height), center_crop=crop == "centre-square")


def collect_images(arguments: Iterable[str | Path]) -> list[Path]:
    """The image files named, and those directly inside the folders named (sorted), in order."""
    from harness.data.images import IMAGE_SUFFIXES, image_files

    found: list[Path] = []
    for argument in arguments:
        path = Path(argument).expanduser()
        if path.is_dir():
            inside = image_files(path)
            if not inside:
                known = ", ".join(sorted(IMAGE_SUFFIXES))
                raise ExportError(f"no images in folder {path} (looked for {known})")
            found.extend(inside)
        elif path.is_file():
            found.append(path)
        else:
            raise ExportError(f"image {path} does not exist")
    if not found:
        raise ExportError("no images given; name image files or folders of images")
    return found
