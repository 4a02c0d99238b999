"""`--keep-weights`: which trials of a search keep their best-validation weights.

Weights are Optuna artifacts (`harness.artifacts`) linked to the Optuna trial and to
our trial row. Two facts of Optuna shape the policies: an artifact can be linked to a
trial only while it runs (a finished trial's attributes are frozen), and there is no
API to unlink one (optuna-dashboard "deletes" one by setting its attribute to JSON
null, which `get_all_artifact_meta` then cannot read). So nothing is linked that
might be removed later in the run:

- `all`: every complete trial's weights are uploaded when it ends;
- `named`: only the space's named architectures (the paper's orderings, the controls,
  every choice of a choices space) and their seed repeats, uploaded when they end;
- `top` (the default): the named ones, and a trial whose row is among the best `--top`
  rows of the leaderboard when it ends, uploaded then (a row that later drops out of
  the top keeps them: never removed); every other trial's weights are staged as a
  local file (`harness.artifacts.staging_dir`). At the end of the run (after the
  repeats) a staged file whose row is among the final best `--top` (rare: a row that
  rose when its seeds were pooled) is uploaded and linked to the Optuna study, as its
  trial is finished, and the rest are deleted. Files a killed run left are settled by
  the next run's end (or `harness clean --weights`);
- `none`: nothing is saved.

A reused trial (trained before, in this study or another) trains nothing. Reused from
another study, its row is a copy that shares the weights link of the row it copies;
where the policy keeps it, a copy of that artifact is uploaded to the new Optuna trial
(so that the dashboard shows it) and the row points at it, so that each study's
artifacts are its own (`harness clean --weights` removes a deleted study's). Reused
in its own study, the row is the same and its first Optuna trial shows the artifact.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from harness.artifacts import (
    artifact_metas,
    resolve_location,
    save_trial_weights,
    staging_dir,
    upload_weights,
)
from harness.errors import HarnessError, first_line
from harness.search.study import stored_arch
from harness.weights import WEIGHTS_FILE, WeightsError, WeightsFile

if TYPE_CHECKING:
    import optuna
    import pandas as pd
    import torch

    from harness.data import Dataset
    from harness.search.plan import RunPlan
    from harness.store import Store
    from harness.trial import KeepWeights, TrialOutcome

__all__ = ["WEIGHTS_ATTR", "WeightsKeeper", "weights_metadata"]

# User attribute of an Optuna trial: "kept", "staged", or why its weights were not kept.
WEIGHTS_ATTR = "weights"
_STAGED_FILE = re.compile(r"^trial-(\d+)-" + re.escape(WEIGHTS_FILE) + "$")


def weights_metadata(
    outcome: TrialOutcome, dataset: Dataset, *, study: str, optuna_trial_number: int | None
) -> dict[str, Any]:
    """What the weights file says about itself (its safetensors header): enough to
    rebuild the network and to know where it came from without the database."""
    config = outcome.config
    return {
        "arch": outcome.arch,
        "family": outcome.family,
        "skeleton": config.get("skeleton"),
        "baseline_stem": config.get("baseline_stem"),
        "resize": config.get("resize"),
        "pretrained": config.get("pretrained"),
        "input_shape": config.get("input_shape"),
        "class_names": list(outcome.class_names),
        "num_classes": len(outcome.class_names),
        "trial_id": outcome.trial_id,
        "optuna_trial_number": optuna_trial_number,
        "study": study,
        "seed": config.get("seed"),
        "data_spec": dataset.spec,
        "data_fingerprint": dataset.fingerprint,
        "best_epoch": outcome.best_epoch,
        "val_acc": outcome.val_acc,
        "test_acc": outcome.test_acc,
        "params": outcome.params,
        "config": config,
    }


class WeightsKeeper:
    """One run's `--keep-weights` policy: the hook `run_trial` calls for each trial, the
    copy for a reused trial, and the end-of-run settling of staged files."""

    def __init__(self, search: RunPlan, store: Store) -> None:
        self.search = search
        self.store = store
        self.policy = search.settings.keep_weights
        self.location = resolve_location(search.settings.artifacts, store.raw_url)
        self.staged = staging_dir(self.location, store.raw_url, search.study)
        self._named = _named_archs(search)
        self._links_storage: Any = None  # opened when settling needs to read links

    def is_named(self, params: dict[str, Any]) -> bool:
        arch = stored_arch(self.search.space, params)
        return arch is not None and arch in self._named

    def _now(self, params: dict[str, Any], outcome: TrialOutcome) -> bool | None:
        """True: upload when the trial ends; False: stage it; None: keep nothing."""
        if self.policy == "none":
            return None
        if self.policy == "all" or self.is_named(params):
            return True
        if self.policy != "top":
            return None
        return self._in_top_now(outcome)

    def _in_top_now(self, outcome: TrialOutcome) -> bool:
        """Whether the trial's row would be among the best `--top` rows of the leaderboard
        now: fewer than `top` other rows have a higher mean validation accuracy. Its own
        row (other seeds of the architecture) is left out, so a tie or a doubt keeps it."""
        from harness.ranking import rank_trials

        if outcome.val_acc is None:
            return False
        board = rank_trials(self.store.trials_frame(study=self.search.study))
        others = board[(board["arch"] != outcome.arch) & board["val_acc_mean"].notna()]
        better = int((others["val_acc_mean"] > outcome.val_acc).sum())
        return better < self.search.settings.top

    def hook(self, trial: optuna.Trial) -> KeepWeights | None:
        """What `run_trial` calls once `trial` completed; None when it keeps nothing."""
        if self.policy == "none" or (self.policy == "named" and not self.is_named(trial.params)):
            return None

        def keep(model: torch.nn.Module, outcome: TrialOutcome, dataset: Dataset) -> None:
            now = self._now(trial.params, outcome)
            metadata = weights_metadata(
                outcome, dataset, study=self.search.study, optuna_trial_number=trial.number
            )
            try:
                file = save_trial_weights(
                    model.state_dict(), self.staged, outcome.trial_id, metadata
                )
                if now:
                    try:
                        upload_weights(
                            self.store, self.location, file, trial_id=outcome.trial_id,
                            optuna_trial=trial,
                        )  # fmt: skip
                    except Exception as error:  # the file stays: `settle` uploads it
                        raise WeightsError(
                            f"{_describe(error)}; staged in {file.path.parent} for the run's "
                            "end to upload"
                        ) from None
                    file.path.unlink(missing_ok=True)
            except Exception as error:
                trial.set_user_attr(WEIGHTS_ATTR, f"not kept: {_describe(error)}")
                raise
            # A finished trial's attributes are frozen: "staged" stays whatever the end does.
            trial.set_user_attr(
                WEIGHTS_ATTR, "kept" if now else "staged: kept at the run's end if a top row"
            )

        return keep

    def keep_reused(self, trial: optuna.Trial, outcome: TrialOutcome) -> None:
        """A reused trial: where the policy keeps it now, a copy of the weights it shares
        uploaded to `trial`. A failure is said on stderr and in a user attribute."""
        if not self._now(trial.params, outcome):
            return
        try:
            note = self._copy_to(outcome.trial_id, trial)
        except Exception as error:  # the result stays whatever the store does
            note = f"not kept: {_describe(error)}"
            print(f"harness: trial {outcome.trial_id}: weights {note}", file=sys.stderr)
        trial.set_user_attr(WEIGHTS_ATTR, note)

    def _copy_to(self, trial_id: int, target: optuna.Trial | optuna.Study) -> str:
        """Upload a copy of row `trial_id`'s linked artifact to `target` (a running Optuna
        trial, or the study) and point the row at it; returns the note for the trial's
        `weights` attribute. A row reused in its own study (the same network and seed
        again) is not copied: its first Optuna trial shows the artifact already."""
        import optuna

        from harness.artifacts import download_to

        link = self.store.weights_of(trial_id)
        if link is None or link["removed_at"] is not None:
            return "none: the reused trial kept no weights"
        number = self.store.trial_columns([trial_id], ["optuna_trial_number"])[trial_id][
            "optuna_trial_number"
        ]
        if not isinstance(target, optuna.Study) and number != target.number:
            return f"kept: the artifact of trial {number}, the same network and seed"
        with download_to(link["location"], link["artifact_id"], link["filename"]) as path:
            file = WeightsFile.of(path)
            if file.sha256 != link["sha256"]:
                return "none: the reused trial's weights file changed since it was saved"
            upload_weights(self.store, self.location, file, trial_id=trial_id, optuna_trial=target)
        return "kept"

    def settle(self, study: optuna.Study, board: pd.DataFrame) -> dict[str, int]:
        """At the end of a run: upload the staged weights the policy keeps (with `top`,
        the best `--top` rows of `board`), delete the other staged files, and give a
        top row's reused trial a copy of its weights. Returns counts for the summary."""
        counts = {"uploaded": 0, "deleted": 0, "copied": 0}
        if self.policy == "none":
            return counts
        staged = self._staged_files()
        top_ids = self._top_ids(board)
        ids = set(staged) | (top_ids if self.policy == "top" else set())
        rows = self.store.trial_columns(ids, ["status", "optuna_trial_number", "study_id"])
        by_number = {t.number: t for t in study.get_trials(deepcopy=False)}
        for trial_id, path in sorted(staged.items()):
            row = rows.get(trial_id)
            if row is not None and row["status"] == "running":
                continue  # its trial (another process's) is still finishing
            frozen = by_number.get(row["optuna_trial_number"]) if row else None
            wanted = (
                row is not None
                and row["status"] == "complete"
                and frozen is not None
                and (
                    self.policy == "all"
                    or self.is_named(frozen.params)
                    or (self.policy == "top" and trial_id in top_ids)
                )
            )
            if wanted and not self._linked_to(trial_id, study):
                try:
                    file = WeightsFile.of(path)
                    # Its trial is finished (frozen): the study holds the link instead.
                    upload_weights(
                        self.store, self.location, file, trial_id=trial_id,
                        optuna_trial=study,
                    )  # fmt: skip
                    counts["uploaded"] += 1
                except Exception as error:  # keep the file: the next run tries again
                    print(
                        f"harness: trial {trial_id}: weights not uploaded ({_describe(error)}); "
                        f"kept in {path} for the next run",
                        file=sys.stderr,
                    )
                    continue
            else:
                counts["deleted"] += 1
            path.unlink(missing_ok=True)
        if self.policy == "top":
            for trial_id in sorted(top_ids - set(staged)):
                row = rows.get(trial_id)
                frozen = by_number.get(row["optuna_trial_number"]) if row else None
                if frozen is None or self._linked_to(trial_id, study):
                    continue
                try:
                    if self._copy_to(trial_id, study) == "kept":
                        counts["copied"] += 1
                except Exception as error:
                    print(
                        f"harness: trial {trial_id}: weights not copied ({_describe(error)})",
                        file=sys.stderr,
                    )
        _remove_if_empty(self.staged)
        return counts

    def _linked_to(self, trial_id: int, study: optuna.Study) -> bool:
        """Whether row `trial_id`'s weights are an artifact of its Optuna trial or study."""
        from harness.search.study import storage_at

        link = self.store.weights_of(trial_id)
        if link is None or link["removed_at"] is not None:
            return False
        number = self.store.trial_columns([trial_id], ["optuna_trial_number"])[trial_id][
            "optuna_trial_number"
        ]
        # The storage's public reads: a study's own attributes are not on `optuna.Study`.
        if self._links_storage is None:
            self._links_storage = storage_at(self.store.raw_url, heartbeat_s=None, grace_s=None)
        storage = self._links_storage
        study_id = storage.get_study_id_from_name(study.study_name)
        attrs = [storage.get_study_system_attrs(study_id)]
        if number is not None:
            found = storage.get_trial_id_from_study_id_trial_number(study_id, number)
            attrs.append(storage.get_trial_system_attrs(found))
        return any(
            meta["artifact_id"] == link["artifact_id"]
            for values in attrs
            for meta in artifact_metas(values)
        )

    def _staged_files(self) -> dict[int, Path]:
        if not self.staged.is_dir():
            return {}
        found = {}
        for path in self.staged.iterdir():
            match = _STAGED_FILE.match(path.name)
            if match and path.is_file():
                found[int(match.group(1))] = path
        return found

    def _top_ids(self, board: pd.DataFrame) -> set[int]:
        if self.policy != "top" or board.empty:
            return set()
        ranked = board[board["val_acc"].notna()].head(self.search.settings.top)
        return {int(i) for ids in ranked["trial_ids"] for i in ids}


def _named_archs(search: RunPlan) -> set[str]:
    names = set()
    for params in search.space.enqueue_params():
        arch = stored_arch(search.space, params)
        if arch is not None:
            names.add(arch)
    return names


def _describe(error: BaseException) -> str:
    if isinstance(error, HarnessError):
        return str(error)
    return f"{type(error).__name__}: {first_line(error)}"


def _remove_if_empty(folder: Path) -> None:
    try:
        folder.rmdir()  # only when empty; another run's files keep it
        folder.parent.rmdir()
    except OSError:
        pass
