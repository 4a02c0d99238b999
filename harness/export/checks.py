"""What an export checks, and the one error an export or a prediction refuses with.

Every exported format is compared with the PyTorch network on the same batch of the
trial's own test images before the folder is put in place; a check that fails stops
the export with one line and leaves nothing behind.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from harness.errors import HarnessError

if TYPE_CHECKING:
    import numpy as np

__all__ = ["AccuracyCheck", "ExportError", "OutputCheck", "compare_outputs"]

# Largest absolute difference allowed between an exported format's logits and
# PyTorch's. Float32 reordering (ONNX Runtime's fused kernels) moves logits by ~1e-7
# to ~1e-5 on our networks and the timm baselines; 1e-4 leaves room for that and still
# catches a wrong operator, a dropped layer or a stale normalisation, which move
# logits by 1e-2 or more.
TOLERANCE = 1e-4


class ExportError(HarnessError):
    """An export or a prediction that cannot be made as asked (one line, says what to do)."""


@dataclass(frozen=True)
class OutputCheck:
    """One format's logits against PyTorch's on `images` test images."""

    format: str
    images: int
    max_abs_diff: float
    tolerance: float

    @property
    def passed(self) -> bool:
        return self.max_abs_diff <= self.tolerance

    def line(self, detail: str = "") -> str:
        where = f"{detail}, " if detail else ""
        return (
            f"{self.format}: {where}max abs diff {self.max_abs_diff:.1e} on {self.images} test "
            f"images (tolerance {self.tolerance:.0e})"
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AccuracyCheck:
    """The test accuracy the exported weights score now against the recorded one."""

    recorded: float
    reevaluated: float
    images: int
    allowed_images: int  # how many predictions may differ, and why (`rule`)
    rule: str

    @property
    def correct_now(self) -> int:
        return round(self.reevaluated * self.images)

    @property
    def correct_recorded(self) -> int:
        return round(self.recorded * self.images)

    @property
    def passed(self) -> bool:
        return abs(self.correct_now - self.correct_recorded) <= self.allowed_images

    def line(self) -> str:
        now, recorded = self.correct_now, self.correct_recorded
        sign, right = ("=", f"{now}") if now == recorded else ("vs", f"{now} against {recorded}")
        return (
            f"test accuracy re-evaluated {100 * self.reevaluated:.1f}% {sign} recorded "
            f"{100 * self.recorded:.1f}% ({right} of {self.images} test images right; {self.rule})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "passed": self.passed}


def compare_outputs(
    name: str, reference: np.ndarray, output: np.ndarray, tolerance: float = TOLERANCE
) -> OutputCheck:
    """`output` against `reference` (both N x classes); ExportError past `tolerance`."""
    import numpy as np

    if output.shape != reference.shape:
        raise ExportError(
            f"{name} check failed: logits of shape {output.shape}, PyTorch's {reference.shape}"
        )
    diff = float(np.max(np.abs(output.astype(np.float64) - reference.astype(np.float64))))
    check = OutputCheck(name, int(reference.shape[0]), diff, tolerance)
    if not (check.passed and np.isfinite(diff)):
        raise ExportError(
            f"{name} check failed: max abs diff {diff:.2e} from PyTorch's logits on "
            f"{check.images} test images (tolerance {tolerance:.0e}); nothing was written"
        )
    return check
