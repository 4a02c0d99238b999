"""Follow one trial's settings from `harness run` to the TrainConfig it trains, and say
how far they travel: the harness modules the calls pass through, how many calls go
from one module into another, how many of them enter harness/search/space.py, and
how many climb back up a layer (a function of a lower layer calling one of a higher
layer, e.g. search -> commands or trial -> search; caller and callee from the frame).

    python scripts/settings_walk.py            # prints the counts, then the calls that climb

It runs `harness run --space rir_orderings` for one trial of one batch on a temporary
database and traces Python calls (sys.setprofile) from the command's `run` until
`run_trial` starts: the path
from the parsed flags to the first trial's settings, not the training. Used for the sizes in
the note of issue 24 (before and after).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

# Lower number = higher layer. A module not listed is the layer of its package.
LAYERS = {
    "harness.cli": 0,
    "harness.commands": 1,
    "harness.strategy": 2,
    "harness.report": 2,
    "harness.search": 3,
    "harness.estimate": 3,
    "harness.trial": 4,
    "harness.folds": 4,
}


def layer(module: str) -> int:
    while module:
        if module in LAYERS:
            return LAYERS[module]
        module = module.rpartition(".")[0]
    return 5  # config, models, data, store, measure, ...


def main() -> int:
    from harness.cli import main as harness_main

    calls: list[tuple[str, str]] = []  # (caller's module, callee's module), across modules
    reached: list[str] = []
    started: list[str] = []

    def profile(frame, event, arg):  # noqa: ANN001
        if event != "call" or reached:
            return
        module = frame.f_globals.get("__name__", "")
        if not module.startswith("harness") or frame.f_code.co_name == "<module>":
            return  # an import's module body is loading code, not handling settings
        if not started:
            if (module, frame.f_code.co_name) != ("harness.commands.run", "run"):
                return  # argparse's parsing is before the walk: it starts at the command
            started.append(module)
        if frame.f_code.co_name == "run_trial":
            reached.append(module)  # the rest of the run is training, not settings
            return
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if caller.startswith("harness") and caller != module:
            calls.append((caller, module))

    with tempfile.TemporaryDirectory() as folder:
        argv = ["run", "--space", "rir_orderings", "--trials", "1", "--epochs", "1",
                "--max-batches", "1", "--no-report", "--quiet",
                "--db", f"sqlite:///{Path(folder) / 'walk.db'}"]  # fmt: skip
        sys.setprofile(profile)
        try:
            harness_main(argv)
        finally:
            sys.setprofile(None)
    print()
    modules = {m for pair in calls for m in pair}
    space_entries = sum(1 for _, callee in calls if callee == "harness.search.space")
    climbs = sum(1 for caller, callee in calls if layer(callee) < layer(caller))
    print(f"modules passed: {len(modules)}, calls across modules: {len(calls)}")
    print(f"calls into harness.search.space from elsewhere: {space_entries}")
    print(f"calls that climb back up a layer: {climbs}")
    for caller, callee in sorted(set(calls)):
        if layer(callee) < layer(caller):
            print(f"  up: {caller} -> {callee}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
