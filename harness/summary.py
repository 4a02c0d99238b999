"""A finished trial as a readable summary or a JSON object (the values stored)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from harness.measure import FLOPS_LABEL
from harness.trial import TrialOutcome

if TYPE_CHECKING:
    from harness.folds import FoldOutcome

__all__ = [
    "fold_line",
    "folds_dict",
    "format_folds",
    "format_outcome",
    "mean_sd_text",
    "outcome_dict",
]


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


def fold_line(fold: int, folds: int, outcome: TrialOutcome) -> str:
    """'fold 1/3  trial 12  complete  val 45.00%  test 40.00%  (best epoch 3 of 3)'."""
    text = (
        f"fold {fold + 1}/{folds}  trial {outcome.trial_id}  {outcome.status}  "
        f"val {_pct(outcome.val_acc)}  test {_pct(outcome.test_acc)}"
    )
    if outcome.best_epoch is not None:
        text += f"  (best epoch {outcome.best_epoch} of {len(outcome.epochs)})"
    if outcome.status != "complete" and outcome.reason:
        text += f"  - {outcome.reason}"
    return text


def _pm(mean: float | None, sd: float | None) -> str:
    if mean is None:
        return "-"
    return f"{100 * mean:.2f}" + ("" if sd is None else f" ± {100 * sd:.2f}") + "%"


def mean_sd_text(result: FoldOutcome) -> str:
    """'mean ± sd over 3 folds: val 45.00 ± 2.10%, test 40.00 ± 3.00%' (or 'over 2 of 3')."""
    over = (
        f"{result.folds} folds"
        if result.folds_done == result.folds
        else f"{result.folds_done} of {result.folds} folds (not a cross-validated figure)"
    )
    return (
        f"mean ± sd over {over}: val {_pm(result.val_mean, result.val_sd)}, "
        f"test {_pm(result.test_mean, result.test_sd)}"
    )


def folds_dict(result: FoldOutcome, db_url: str) -> dict[str, Any]:
    """The cross-validated figure (means and sample sds over the complete folds, as
    fractions) and every fold's own record under `fold_results`."""
    return {
        "status": result.status,
        "reason": result.reason,
        "arch": result.arch,
        "family": result.family,
        "params": result.params,
        "flops": result.flops,
        "latency_ms": result.latency_ms,
        "folds": result.folds,
        "folds_done": result.folds_done,
        "trial_ids": result.trial_ids,
        "val_acc": result.val_acc,
        "test_acc": result.test_acc,
        "val_acc_mean": result.val_mean,
        "val_acc_sd": result.val_sd,
        "test_acc_mean": result.test_mean,
        "test_acc_sd": result.test_sd,
        "fold_results": [outcome_dict(o, db_url) for o in result.outcomes],
        "database": db_url,
    }


def format_folds(result: FoldOutcome, db_url: str) -> str:
    """The network once, a line per fold, and the mean ± sd over folds."""
    config = result.config
    data = str(config.get("data", "-"))
    head, _, query = data.partition("?")
    shown = "&".join(p for p in query.split("&") if p and not p.startswith("fold="))
    lines = [
        f"architecture  {result.arch}   (family {result.family})",
        f"data          {head}?{shown}, every fold",
        f"protocol      {config.get('protocol', '-')}, seed {config.get('seed', '-')}, "
        f"device {config.get('device', '-')}",
        f"parameters    {result.params:,}",
        f"FLOPs         {result.flops / 1e6:,.2f} M  [{FLOPS_LABEL}]",
        f"latency       {_num(result.latency_ms, 3)} ms (batch 1, median)",
        *(fold_line(i, result.folds, o) for i, o in enumerate(result.outcomes)),
        mean_sd_text(result),
        f"recorded in   {db_url}",
    ]
    return "\n".join(lines)
