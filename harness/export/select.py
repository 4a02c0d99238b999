"""Which trial `harness export --best` exports: the top row of the study's leaderboard.

The leaderboard is the one `harness run` prints and the report shows
(`harness.ranking.rank_trials` over `harness.folds.fold_means`): rows rank by mean
validation accuracy over seeds, never by test accuracy. Of the top row's trials
(its seeds) the one with the best validation accuracy is exported, the row's
`best_trial_id`.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Collection
from typing import TYPE_CHECKING, Any

from harness.export.checks import ExportError

if TYPE_CHECKING:
    from harness.store import Store

__all__ = ["best_trial", "export_command", "folder_name", "row_export_trial"]


def best_trial(store: Store, study: str | None) -> int:
    """Our trial id of `study`'s best row; without `study`, the only study with trials
    (ExportError when there are several: the user must say which)."""
    from harness.folds import fold_means
    from harness.ranking import rank_trials

    studies = store.studies_frame()
    with_trials = [str(s) for s in studies[studies["trials"] > 0]["study"]]
    if study is None:
        if not with_trials:
            raise ExportError(f"no trials in {store.url}: run `harness run` first")
        if len(with_trials) > 1:
            listed = ", ".join(with_trials[:8]) + (", ..." if len(with_trials) > 8 else "")
            raise ExportError(
                f"{store.url} holds {len(with_trials)} studies ({listed}): name one with --study"
            )
        study = with_trials[0]
    elif study not in set(studies["study"]):
        known = ", ".join(map(str, studies["study"])) or "none"
        raise ExportError(f"unknown study {study!r} in {store.url} (known: {known})")
    board = rank_trials(fold_means(store.trials_frame(study=study)))
    if board.empty:
        raise ExportError(f"study {study!r} has no complete trial to export")
    return int(board.iloc[0]["best_trial_id"])


def folder_name(study: str | None, trial_id: int) -> str:
    """`<study>-trial-<id>`, the study's name made safe for a folder name."""
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", study or "").strip(".-") or "study"
    return f"{safe}-trial-{trial_id}"


def row_export_trial(row: Any, with_weights: Collection[int]) -> int | None:
    """The trial of a leaderboard row whose weights `harness export` can write: the row's
    best-validation trial, else its first trial with weights, else None."""
    if row.best_trial_id in with_weights:
        return int(row.best_trial_id)
    return next((int(t) for t in row.trial_ids if t in with_weights), None)


def export_command(
    url: str, *, trial_id: int | None = None, study: str | None = None, extra: str = ""
) -> str:
    """The `harness export` command a user can paste: `TRIAL`, or `--best --study S`
    when `trial_id` is None. `--db` only when the database is not the default; a URL
    shown with its password masked becomes `--db "$HARNESS_DB"` (the masked one
    could not connect, and the password is never printed)."""
    from harness.store import DEFAULT_DB_URL

    what = str(trial_id) if trial_id is not None else f"--best --study {shlex.quote(study or '')}"
    if url == DEFAULT_DB_URL:
        db = ""
    elif "***" in url:
        db = ' --db "$HARNESS_DB"'
    else:
        db = f" --db {shlex.quote(url)}"
    return f"harness export {what}{db}{extra}"
