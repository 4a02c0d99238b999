"""Progress on stderr: trials done / total, the current trial's epoch, the best so far.

One tqdm bar for the study, and one line per finished trial above it (so a log
file keeps the history even where the bar cannot redraw).
"""

from __future__ import annotations

import sys
from typing import Any

__all__ = ["Progress", "format_trial_line"]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def format_trial_line(
    number: int, arch: str, status: str, attrs: dict[str, Any], *, seed: int | None = None
) -> str:
    """One finished trial; `seed` given for a seed repeat, which says which seed it ran."""
    parts = [f"trial {number:>3}", f"{arch:<22}", f"{status:<8}"]
    if attrs.get("val_acc") is not None:
        parts.append(f"val {_pct(attrs['val_acc'])} test {_pct(attrs.get('test_acc'))}")
    if attrs.get("flops") is not None:
        parts.append(f"{attrs['flops'] / 1e6:.1f} MFLOPs")
    if attrs.get("reused"):
        parts.append("(reused)")
    if status != "complete" and attrs.get("reason"):
        parts.append(f"- {attrs['reason']}")
    if seed is not None:
        parts.append(f"(seed {seed})")
    return "  ".join(parts)


class Progress:
    def __init__(self, *, total: int, done: int, enabled: bool, epochs: int) -> None:
        self.enabled = enabled
        self.epochs = epochs
        self.best = ""
        self.current = ""
        self.bar = None
        if enabled:
            from tqdm.auto import tqdm

            self.bar = tqdm(
                total=total,
                initial=min(done, total),
                desc="trials",
                unit="trial",
                file=sys.stderr,
                dynamic_ncols=True,
                leave=True,
            )

    def _refresh(self) -> None:
        if self.bar is not None:
            text = " | ".join(part for part in (self.current, self.best) if part)
            self.bar.set_postfix_str(text, refresh=True)

    def started(self, number: int, arch: str) -> None:
        self.current = f"#{number} {arch}"
        self._refresh()

    def epoch(self, number: int, arch: str, epoch: int, val_acc: float) -> None:
        self.current = f"#{number} {arch} epoch {epoch}/{self.epochs} val {_pct(val_acc)}"
        self._refresh()

    def finished(self, line: str, *, count: bool = True) -> None:
        if self.bar is not None:
            self.bar.write(line, file=sys.stderr)
            if count:
                self.bar.update(1)
        self.current = ""
        self._refresh()

    def set_done(self, done: int) -> None:
        if self.bar is not None and done != self.bar.n:
            self.bar.update(min(done, self.bar.total) - self.bar.n)

    def set_best(self, text: str) -> None:
        self.best = text
        self._refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
