"""Supernet checkpoints that cannot be written or do not fit: one line, before training
where it can be known before, and never a half-written checkpoint or a failed trial
recorded for what was the disk's fault."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from test_supernet import DATA, TINY_SPACE, tiny_config

from harness.data import load_dataset
from harness.errors import ConfigError
from harness.estimate.supernet import train_supernet
from harness.search.space import load_space
from harness.store import Store


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    path = tmp_path_factory.mktemp("spaces") / "tiny.toml"
    path.write_text(TINY_SPACE)
    return load_space(str(path))


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DATA)


def test_a_checkpoint_of_the_same_identity_but_other_shapes_is_refused(space, dataset, tmp_path):
    checkpoint = tmp_path / "tiny.pt"
    config = tiny_config(space)
    train_supernet(space, config, dataset, epochs=1, checkpoint=checkpoint)
    state = torch.load(checkpoint, weights_only=True)
    name = next(k for k, v in state["model"].items() if v.ndim == 4)
    state["model"][name] = torch.zeros(3, 3, 3, 3)
    torch.save(state, checkpoint)
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    with pytest.raises(ConfigError, match="does not fit this supernet .*delete it to train afresh"):
        train_supernet(space, config, dataset, epochs=1, checkpoint=checkpoint, store=store)
    assert store.trials_frame().empty


def test_a_checkpoint_that_cannot_be_written_fails_before_training(space, dataset, tmp_path):
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the checkpoint's folder would be")
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    with pytest.raises(ConfigError, match="cannot write .*is a file, not a folder"):
        train_supernet(
            space, tiny_config(space), dataset, epochs=1, checkpoint=blocker / "s" / "tiny.pt",
            store=store,
        )  # fmt: skip
    assert store.trials_frame().empty


def test_a_full_disk_while_saving_is_one_line_and_leaves_no_partial(tmp_path):
    # RLIMIT_FSIZE makes writes past the size fail as a full disk does (EFBIG instead of
    # ENOSPC): torch.save to a path reported it as RuntimeError "unexpected pos".
    space_file = tmp_path / "tiny.toml"
    space_file.write_text(TINY_SPACE)
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        import torch
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_supernet import DATA, tiny_config
        from harness.data import load_dataset
        from harness.errors import ConfigError
        from harness.estimate.supernet import train_supernet
        from harness.search.space import load_space
        torch.set_num_threads(1)
        space = load_space({str(space_file)!r})
        dataset = load_dataset(DATA)
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_384, 16_384))
        try:
            train_supernet(space, tiny_config(space), dataset, epochs=1,
                           checkpoint={str(tmp_path / "out" / "tiny.pt")!r})
        except ConfigError as error:
            print("ConfigError:", error)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("ConfigError: cannot write "), result.stdout
    assert "File too large" in result.stdout
    assert list((tmp_path / "out").iterdir()) == []  # no partial, no truncated checkpoint
