"""A finished trial as a readable summary or a JSON object (the values stored)."""

from __future__ import annotations

from typing import Any

from harness.measure import FLOPS_LABEL
from harness.trial import TrialOutcome

__all__ = ["format_outcome", "outcome_dict"]


def outcome_dict(outcome: TrialOutcome, db_url: str) -> dict[str, Any]:
    """Raw values (accuracies as fractions, FLOPs as multiply-adds), as recorded."""
    result = outcome.result
    return {
        "trial_id": outcome.trial_id,
        "status": outcome.status,
        "reason": outcome.reason,
        "reused": outcome.reused,
        "arch": outcome.arch,
        "family": outcome.family,
        "params": outcome.params,
        "flops": outcome.flops,
        "latency_ms": outcome.latency_ms,
        "best_epoch": outcome.best_epoch,
        "val_acc": outcome.val_acc,
        "val_loss": outcome.val_loss,
        "test_acc": outcome.test_acc,
        "test_loss": outcome.test_loss,
        "per_class_acc": result.test.per_class_acc if result else None,
        "class_names": outcome.class_names,
        "train_seconds": result.train_seconds if result else None,
        "images_per_s": result.images_per_s if result else None,
        "epochs": [m.to_dict() for m in outcome.epochs],
        "config": outcome.config,
        "database": db_url,
    }


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.2f}%"


def _num(value: float | None, digits: int = 4) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def format_outcome(outcome: TrialOutcome, db_url: str) -> str:
    config = outcome.config
    lines = [
        f"trial         {outcome.trial_id} ({outcome.status}"
        + (", reused a stored result" if outcome.reused else "")
        + (f": {outcome.reason}" if outcome.reason else "")
        + ")",
        f"architecture  {outcome.arch}   (family {outcome.family})",
        f"data          {config.get('data', '-')}",
        f"protocol      {config.get('protocol', '-')}, seed {config.get('seed', '-')}, "
        f"device {config.get('device', '-')}",
    ]
    if config.get("baseline_stem"):
        remedy = f"stem {config['baseline_stem']}"
        if config.get("resize"):
            remedy += f", inputs resized to {config['resize']}x{config['resize']}"
        lines.append(f"small inputs  {remedy}")
    lines += [
        f"parameters    {outcome.params:,}",
        f"FLOPs         {outcome.flops / 1e6:,.2f} M  [{FLOPS_LABEL}]",
        f"latency       {_num(outcome.latency_ms, 3)} ms (batch 1, median)",
        f"best epoch    {outcome.best_epoch if outcome.best_epoch is not None else '-'}"
        f" of {len(outcome.epochs)}",
        f"validation    acc {_pct(outcome.val_acc)}   loss {_num(outcome.val_loss)}",
        f"test          acc {_pct(outcome.test_acc)}   loss {_num(outcome.test_loss)}",
    ]
    result = outcome.result
    if result is not None:
        per_class = result.test.per_class_acc
        names = outcome.class_names or [str(i) for i in range(len(per_class))]
        lines.append(
            "test per class "
            + ", ".join(f"{name} {_pct(acc)}" for name, acc in zip(names, per_class, strict=True))
        )
        lines.append(
            f"time          train {result.train_seconds:.1f} s, eval {result.eval_seconds:.1f} s, "
            f"{result.images_per_s:,.0f} train images/s"
        )
    lines.append(f"recorded in   {db_url}")
    return "\n".join(lines)
