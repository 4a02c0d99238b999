"""`Store`: the few reads and writes the rest of the harness needs.

    with Store(url) as store:            # creates or migrates the tables
        trial = store.find_complete_trial(arch=..., config_hash=..., ...)
    with Store(url, create=False) as store:   # read-only: never writes
        frame = store.trials_frame(study="demo")

One class, composed of one module per job: opening and transactions
(`harness.store.base`), writes (`writes`), single-trial reads (`reads`),
pandas frames (`frames`), cheap estimates of candidates (`estimates`) and where
trials kept their weights (`weights_links`).
"""

from __future__ import annotations

from harness.store.estimates import Estimates
from harness.store.frames import Frames
from harness.store.reads import Reads
from harness.store.values import config_hash, plain
from harness.store.weights_links import WeightsLinks
from harness.store.writes import Writes

__all__ = ["Store", "config_hash", "plain"]


class Store(Writes, Reads, Frames, Estimates, WeightsLinks):
    """The results database at one URL; see `StoreBase` for opening and read-only mode."""
