"""Our networks speak timm's model interface and load through `timm.create_model`.

The first group makes the checks timm's own tests/test_models.py makes on every
registered model; the second saves a network the harness built and loads it back
as `harness_blockseq`, as a user of timm's scripts would.
"""

from __future__ import annotations

import pytest
import safetensors.torch
import timm
import torch
from torch import nn

import harness.timm_model  # noqa: F401  (registers harness_blockseq)
from harness.candidate import build_candidate
from harness.errors import ModelError
from harness.models import Skeleton, build_model

# Small enough for seconds on a laptop CPU: 2 stages, 32x32 grey images.
SKELETON = {"widths": (16, 32), "depths": (1, 1)}
SHAPE = (1, 32, 32)
HEADS = [
    {"head": "linear"},
    {"head": "paper", "head_activation": "relu6"},
    {"head": "paper", "head_activation": "none"},
]


def _net(head: dict, arch: str = "R|I", num_classes: int = 7) -> nn.Module:
    candidate = build_candidate(
        arch, image_shape=SHAPE, num_classes=num_classes, skeleton={**SKELETON, **head}
    )
    return candidate.model.eval()


def _skeleton(**changes) -> Skeleton:
    return Skeleton(input_shape=SHAPE, **SKELETON).with_(**changes)


def _images(n: int = 3) -> torch.Tensor:
    return torch.rand(n, *SHAPE, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("head", HEADS)
def test_forward_is_features_then_head_and_unchanged(head):
    model, x = _net(head), _images()
    with torch.no_grad():
        features = model.forward_features(x)
        logits = model(x)
        before = model.head(model.stages(model.stem(x)))  # the forward before this interface
    assert features.shape == (3, model.num_features, *model.pretrained_cfg["pool_size"])
    assert logits.shape == (3, 7) and model.num_classes == 7
    assert torch.equal(logits, before)
    assert torch.equal(model.forward_head(features), logits)


@pytest.mark.parametrize("head", HEADS)
def test_pre_logits_are_what_the_classifier_reads(head):
    model, x = _net(head), _images()
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        assert torch.equal(model.get_classifier()(pre), model(x))
    assert pre.shape == (3, model.head_hidden_size)
    # The linear head's classifier reads the pooled features; the paper's its last hidden layer.
    expected = model.num_features if head["head"] == "linear" else 1024
    assert model.head_hidden_size == expected


@pytest.mark.parametrize("head", HEADS)
def test_reset_classifier_to_eight_classes_keeps_everything_before_it(head):
    model, x = _net(head), _images()
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
    model.reset_classifier(8)
    with torch.no_grad():
        assert model(x).shape == (3, 8)
        assert torch.equal(model.forward_head(model.forward_features(x), pre_logits=True), pre)
    assert model.num_classes == model.pretrained_cfg["num_classes"] == 8
    assert isinstance(model.get_classifier(), nn.Linear)
    assert model.get_classifier().in_features == model.head_hidden_size
    assert not model.get_classifier().training  # the new layer follows the model's mode
    if head["head"] == "paper":
        linears = [m.out_features for m in model.head.modules() if isinstance(m, nn.Linear)]
        assert linears == [2048, 1024, 8]


@pytest.mark.parametrize("head", HEADS)
def test_reset_classifier_to_zero_returns_the_pre_logits(head):
    model, x = _net(head), _images()
    with torch.no_grad():
        pre = model.forward_head(model.forward_features(x), pre_logits=True)
        model.reset_classifier(0)
        assert isinstance(model.get_classifier(), nn.Identity)
        assert torch.equal(model(x), pre)
    assert model.num_classes == 0
    model.reset_classifier(10)  # and back: FER+ with the paper's head
    assert model(x).shape == (3, 10)


def test_reset_classifier_refuses_a_pooling_the_network_lacks():
    model = _net(HEADS[0])
    model.reset_classifier(8, global_pool="avg")
    with pytest.raises(ModelError, match="global_pool must be 'avg'"):
        model.reset_classifier(8, global_pool="max")


@pytest.mark.parametrize("head", HEADS)
def test_pretrained_cfg_describes_the_input_and_the_head(head):
    model = _net(head)
    cfg = model.pretrained_cfg
    assert model.default_cfg is cfg
    assert cfg["input_size"] == SHAPE and cfg["num_classes"] == 7
    # The harness feeds floats in [0, 1] without mean/std normalisation.
    assert cfg["mean"] == (0.0,) and cfg["std"] == (1.0,)
    assert cfg["crop_pct"] == 1.0 and cfg["interpolation"] == "bilinear"
    assert model.get_submodule(cfg["classifier"]) is model.get_classifier()
    first = model.get_submodule(cfg["first_conv"])
    assert isinstance(first, nn.Conv2d) and first.in_channels == SHAPE[0]
    config = timm.data.resolve_data_config(model=model)
    assert config["input_size"] == SHAPE and config["mean"] == (0.0,)


def test_harness_blockseq_is_registered_with_the_default_network():
    assert timm.list_models("harness_blockseq") == ["harness_blockseq"]
    assert timm.get_pretrained_cfg("harness_blockseq").input_size == (1, 48, 48)
    model = timm.create_model("harness_blockseq")
    stages = [len(stage) for stage in model.stages]
    assert model.architecture.name == harness.timm_model.DEFAULT_ARCH
    assert stages == [3, 4, 6, 3] and model.num_classes == 7
    assert model.pretrained_cfg["architecture"] == "harness_blockseq"


def test_create_model_builds_what_the_harness_builds_from_the_same_fields():
    ours = build_model("RI", _skeleton(head="paper", num_classes=8))
    theirs = timm.create_model(
        "harness_blockseq",
        arch="RI",
        in_chans=1,
        img_size=32,
        num_classes=8,
        head="paper",
        **SKELETON,
    )
    assert theirs.architecture == ours.architecture and theirs.skeleton == ours.skeleton
    shapes = {name: tuple(value.shape) for name, value in ours.state_dict().items()}
    assert {name: tuple(value.shape) for name, value in theirs.state_dict().items()} == shapes


def test_stage_depths_follow_an_explicit_arch():
    model = timm.create_model("harness_blockseq", arch="RR|IIII|R", img_size=32, width_mult=0.25)
    assert [len(stage) for stage in model.stages] == [2, 4, 1]
    assert model.skeleton.widths == (64, 128, 256)


def test_unknown_arguments_and_poolings_are_refused():
    with pytest.raises(TypeError, match="unexpected arguments \\['colour'\\]"):
        timm.create_model("harness_blockseq", colour="red")
    with pytest.raises(ModelError, match="global_pool must be 'avg'"):
        timm.create_model("harness_blockseq", global_pool="max")


def _save(model: nn.Module, path) -> str:
    if path.suffix == ".safetensors":
        safetensors.torch.save_file(model.state_dict(), str(path))
    else:
        torch.save(model.state_dict(), path)
    return str(path)


def _load(arch: str, file: str, **kwargs) -> nn.Module:
    return timm.create_model(
        "harness_blockseq",
        arch=arch,
        pretrained=True,
        in_chans=SHAPE[0],
        img_size=SHAPE[1:],
        **SKELETON,
        **kwargs,
    ).eval()


@pytest.mark.parametrize("suffix", [".safetensors", ".pth"])
@pytest.mark.parametrize("head", HEADS)
def test_a_saved_harness_network_loads_with_the_same_logits(tmp_path, suffix, head):
    ours = _net(head, arch="RI")
    with torch.no_grad():  # weights a run would have moved away from their init
        for parameter in ours.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.01)
    path = _save(ours, tmp_path / f"net{suffix}")
    loaded = _load("RI", path, pretrained_cfg_overlay={"file": path}, **head)
    assert loaded.pretrained_cfg["file"] == path
    with torch.no_grad():
        assert torch.equal(loaded(_images()), ours(_images()))


def test_fine_tuning_from_a_seven_class_file_to_eight_classes(tmp_path):
    ours = _net(HEADS[1])
    path = _save(ours, tmp_path / "net.safetensors")
    # The file's class count goes in the overlay, as for timm's own checkpoints.
    tuned = _load(
        "R|I",
        path,
        pretrained_cfg_overlay={"file": path, "num_classes": 7},
        num_classes=8,
        **HEADS[1],
    )
    x = _images()
    with torch.no_grad():
        assert tuned(x).shape == (3, 8)
        pre = tuned.forward_head(tuned.forward_features(x), pre_logits=True)
        assert torch.equal(pre, ours.forward_head(ours.forward_features(x), pre_logits=True))
    # The hidden layers came from the file; only the last Dense layer is new.
    assert torch.equal(tuned.head[-1][0].weight, ours.head[-1][0].weight)
    assert not torch.equal(tuned.get_classifier().weight[:7], ours.get_classifier().weight)


def test_a_file_of_another_network_is_refused(tmp_path):
    path = _save(_net(HEADS[0], arch="R|R"), tmp_path / "net.safetensors")
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict"):
        _load("R|I", path, pretrained_cfg_overlay={"file": path})
