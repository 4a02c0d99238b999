"""The worker process of `--workers N`: `python -m harness.search.worker_main SETTINGS_JSON`.

`harness.search.workers` starts it; it opens the storage, the study and the
dataset once and runs `run_worker` until the study has its trials. The
database URL comes in $HARNESS_DB, not in the settings, so that a password
does not show in `ps`. Exit status 2 on a HarnessError (its one line on
stderr), 130 on Ctrl-C.
"""

from __future__ import annotations

import sys

from harness.errors import HarnessError
from harness.search.plan import RunPlan
from harness.search.runner import run_worker
from harness.search.settings import SearchSettings

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    from harness.search.study import open_study
    from harness.signals import stop_on_sigterm
    from harness.store import Store, resolve_db_url
    from harness.trial import load_trial_dataset

    stop_on_sigterm()  # a worker stopped with SIGTERM records its trial as interrupted
    argv = sys.argv[1:] if argv is None else argv
    settings = SearchSettings.from_json(argv[0])
    settings.url = resolve_db_url(settings.url or None)
    try:
        search = RunPlan.resolve(settings)
        with Store(settings.url) as store:
            study, _ = open_study(search, store, create=False)
            run_worker(search, store, study, load_trial_dataset(search.data))
    except HarnessError as error:
        print(f"harness: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("harness: worker interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
