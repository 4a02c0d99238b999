"""The weights file (harness.weights): safetensors written whole, read back checked."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
import torch

from harness.weights import WeightsError, file_sha256, load_into, load_weights, save_weights


def _net(inputs: int = 3) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(inputs, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))


def test_round_trip_keeps_every_tensor_and_the_metadata(tmp_path: Path) -> None:
    net = _net()
    saved = save_weights(net.state_dict(), tmp_path / "w.safetensors", {"arch": "RI", "seed": 3})
    assert saved.bytes == saved.path.stat().st_size
    assert saved.sha256 == file_sha256(saved.path)
    state, metadata = load_weights(saved.path, sha256=saved.sha256)
    assert metadata == {"arch": "RI", "seed": 3}
    other = _net()
    torch.nn.init.zeros_(other[0].weight)
    load_into(other, state)
    for name, tensor in net.state_dict().items():
        assert torch.equal(other.state_dict()[name], tensor)


def test_the_file_gets_the_usual_mode_not_a_private_one(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        saved = save_weights(_net().state_dict(), tmp_path / "w.safetensors")
    finally:
        os.umask(old)
    assert stat.S_IMODE(saved.path.stat().st_mode) == 0o644
    assert [p.name for p in tmp_path.iterdir()] == ["w.safetensors"]  # no partial file left


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_damaged_file_is_one_line_weights_error(tmp_path: Path, damage: str) -> None:
    path = save_weights(_net().state_dict(), tmp_path / "w.safetensors").path
    data = path.read_bytes()
    path.write_bytes(
        {"truncated": data[: len(data) // 2], "garbage": b"x" * 64, "empty": b""}[damage]
    )
    with pytest.raises(WeightsError, match="corrupt or truncated") as error:
        load_weights(path)
    assert "\n" not in str(error.value)


def test_a_changed_file_fails_its_digest(tmp_path: Path) -> None:
    saved = save_weights(_net().state_dict(), tmp_path / "w.safetensors")
    other = save_weights(_net(5).state_dict(), tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="SHA-256 differs"):
        load_weights(other.path, sha256=saved.sha256)


def test_a_missing_file_says_so(tmp_path: Path) -> None:
    with pytest.raises(WeightsError, match="does not exist"):
        load_weights(tmp_path / "nowhere.safetensors")


def test_another_networks_weights_name_what_does_not_fit(tmp_path: Path) -> None:
    state, _ = load_weights(save_weights(_net(5).state_dict(), tmp_path / "w.safetensors").path)
    net = _net(3)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    with pytest.raises(
        WeightsError, match=r"1 of another shape \(first 0.weight: \(4, 5\) for \(4, 3\)\)"
    ):
        load_into(net, state, source="of trial 4")
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())  # untouched
    del state["2.bias"]
    state["extra"] = torch.zeros(1)
    with pytest.raises(WeightsError, match="1 tensors missing .*1 unexpected"):
        load_into(_net(5), state)
