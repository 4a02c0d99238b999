"""Follow one trial's settings from `harness run` to the TrainConfig it trains, and say
how far they travel: the harness modules the calls pass through, how often they enter
harness/search/space.py from elsewhere, and how often a call climbs back up a layer
(a lower layer calling into a higher one, e.g. search -> commands or trial -> search).

    python scripts/settings_walk.py            # prints the counts, then the module walk

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

    walk: list[str] = []
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
        if not walk or walk[-1] != module:
            walk.append(module)

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
    space_entries = sum(
        1 for a, b in zip(walk, walk[1:], strict=False) if b == "harness.search.space" and a != b
    )
    climbs = sum(1 for a, b in zip(walk, walk[1:], strict=False) if layer(b) < layer(a))
    print(f"modules passed: {len(set(walk))}, module changes: {len(walk) - 1}")
    print(f"entries into harness.search.space from elsewhere: {space_entries}")
    print(f"calls that climb back up a layer: {climbs}")
    print(" -> ".join(walk))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
