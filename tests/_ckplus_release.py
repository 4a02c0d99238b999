"""A small CK+ original release written by a test: cohn-kanade-images/ and Emotion/.

`write_release` lays out the folders and label files as the release has them; what each
frame holds is the caller's (`draw`), so a test can make frames that are not square and
whose margins tell a centred square crop from a squashed picture.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

# (subject, sequence, frame) -> uint8 (height, width)
Draw = Callable[[int, int, int], np.ndarray]


def flat_frame(size: tuple[int, int] = (64, 52)) -> Draw:
    """Every pixel 40 + 10 * frame: a frame's value says which frame it is."""
    width, height = size

    def draw(subject: int, sequence: int, frame: int) -> np.ndarray:
        return np.full((height, width), 40 + 10 * frame, dtype=np.uint8)

    return draw


def margined_frame(size: tuple[int, int] = (40, 30), seed: int = 0) -> Draw:
    """A wide frame: its centred square random (each frame its own), the margins left and
    right of it black and white. Cropped to the centred square, none of the margins is
    left; squashed to a square, they are."""
    width, height = size
    assert width > height, "margins only on a wide frame"
    left = (width - height) // 2

    def draw(subject: int, sequence: int, frame: int) -> np.ndarray:
        rng = np.random.default_rng([seed, subject, sequence, frame])
        pixels = np.empty((height, width), dtype=np.uint8)
        pixels[:, :left] = 0
        pixels[:, left + height :] = 255
        pixels[:, left : left + height] = rng.integers(60, 196, (height, height), dtype=np.uint8)
        return pixels

    return draw


def write_release(
    root: Path,
    sequences: dict[tuple[int, int], tuple[int, int | None]],
    draw: Draw | None = None,
) -> list[Path]:
    """{(subject, sequence): (frames, emotion code or None for no label file)}; the frame
    files written, in order."""
    from PIL import Image

    draw = draw or flat_frame()
    written = []
    for (subject, sequence), (frames, code) in sequences.items():
        images = root / "cohn-kanade-images" / f"S{subject:03d}" / f"{sequence:03d}"
        images.mkdir(parents=True)
        for frame in range(1, frames + 1):
            path = images / f"S{subject:03d}_{sequence:03d}_{frame:08d}.png"
            Image.fromarray(draw(subject, sequence, frame)).save(path)
            written.append(path)
        if code is not None:
            labels = root / "Emotion" / f"S{subject:03d}" / f"{sequence:03d}"
            labels.mkdir(parents=True)
            (labels / f"S{subject:03d}_{sequence:03d}_{frames:08d}_emotion.txt").write_text(
                f"   {code:.7e}\n"
            )
    return written
