"""Weight init as timm's ResNet and EfficientNet builders do it (harness.weight_init)."""

from __future__ import annotations

import math

import pytest
import torch
from timm.models._efficientnet_blocks import InvertedResidual
from timm.models.resnet import Bottleneck
from torch import nn

from harness.candidate import build_candidate
from harness.commands._common import add_skeleton_args, skeleton_overrides
from harness.config import TrainConfig
from harness.errors import ModelError
from harness.models import Skeleton, build_model
from harness.store import Store
from harness.trial import candidate_key, load_trial_dataset, run_trial

# Every kind of block: R with and without a projection shortcut, I with and
# without its identity skip (each stage's first I block has none).
ARCH = "R I I | I R I I | R R I I R I | I R I"


def _net(init: str, seed: int = 0, **skeleton) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(ARCH, Skeleton(init=init, **skeleton))


def _blocks(net: nn.Module) -> list[nn.Module]:
    return [block for stage in net.stages for block in stage]


def test_timm_init_zeroes_the_last_norm_of_every_residual_branch_and_only_there():
    blocks = _blocks(_net("timm"))
    residual = [b for b in blocks if isinstance(b, Bottleneck) or b.has_skip]
    plain = [b for b in blocks if isinstance(b, InvertedResidual) and not b.has_skip]
    assert len(residual) == 14 and len(plain) == 2  # the sequence has both kinds of I
    assert all(b.bn3.weight.abs().max() == 0 for b in residual)
    # Without a skip a zero last norm would make the block output zeros.
    assert all(torch.equal(b.bn3.weight, torch.ones_like(b.bn3.weight)) for b in plain)
    # Every other norm keeps weight 1, as timm's builders leave it.
    others = [
        m
        for b in blocks
        for name, m in b.named_modules()
        if isinstance(m, nn.BatchNorm2d) and name != "bn3"
    ]
    assert others and all(torch.equal(m.weight, torch.ones_like(m.weight)) for m in others)


def test_torch_init_leaves_every_last_norm_at_one():
    for block in _blocks(_net("torch")):
        assert torch.equal(block.bn3.weight, torch.ones_like(block.bn3.weight))


def _expected_std(conv: nn.Conv2d, in_i_block: bool) -> float:
    fan_out = conv.kernel_size[0] * conv.kernel_size[1] * conv.out_channels
    # EfficientNet's rule divides by groups (a depthwise conv's true fan-out);
    # ResNet's is PyTorch's kaiming_normal_, which does not.
    if in_i_block:
        fan_out //= conv.groups
    return math.sqrt(2.0 / fan_out)


def test_convs_follow_resnets_rule_in_stem_and_r_and_efficientnets_in_i():
    net = _net("timm", stem="resnet")
    convs = [(net.stem[0], False)]
    for block in _blocks(net):
        convs += [
            (m, isinstance(block, InvertedResidual))
            for m in block.modules()
            if isinstance(m, nn.Conv2d)
        ]
    depthwise = [c for c, in_i in convs if in_i and c.groups > 1]
    assert depthwise  # the case where the two rules differ 16x at 256 channels
    checked = 0
    for conv, in_i in convs:
        if conv.weight.numel() < 1000:  # too few weights for a tight sample std
            continue
        expected = _expected_std(conv, in_i)
        assert float(conv.weight.detach().std()) == pytest.approx(expected, rel=0.1), conv
        assert abs(float(conv.weight.detach().mean())) < 0.1 * expected
        checked += 1
    assert checked > 0.8 * len(convs)


def test_torch_init_is_pytorchs_default_conv_init():
    conv = _net("torch", stem="resnet").stem[0]
    fan_in = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    # kaiming_uniform_(a=sqrt(5)): uniform on +-1/sqrt(fan_in), std 1/sqrt(3 fan_in).
    assert float(conv.weight.detach().abs().max()) <= 1 / math.sqrt(fan_in)
    assert float(conv.weight.detach().std()) == pytest.approx(1 / math.sqrt(3 * fan_in), rel=0.1)


def test_the_head_keeps_pytorchs_init_as_timms_resnet_does():
    timm_head, torch_head = _net("timm").head[-1], _net("torch").head[-1]
    # The bodies draw different random numbers first, so compare distributions.
    bound = 1 / math.sqrt(timm_head.in_features)
    for head in (timm_head, torch_head):
        assert float(head.weight.detach().abs().max()) <= bound
        assert float(head.weight.detach().std()) == pytest.approx(bound / math.sqrt(3), rel=0.1)


def test_init_is_deterministic_given_the_seed():
    first, again, other = _net("timm", 3), _net("timm", 3), _net("timm", 4)
    first_state, other_state = first.state_dict(), other.state_dict()
    for name, value in again.state_dict().items():
        assert torch.equal(value, first_state[name]), name
    stem = "stem.0.weight"
    assert not torch.equal(first_state[stem], other_state[stem])


def test_unknown_init_is_refused():
    with pytest.raises(ModelError, match="init must be one of timm, torch, got 'xavier'"):
        Skeleton(init="xavier")


def _key(init: str | None) -> dict:
    skeleton = {} if init is None else {"init": init}
    candidate = build_candidate("RI:2", image_shape=(1, 48, 48), num_classes=7, skeleton=skeleton)
    return candidate_key(candidate)


def test_init_is_part_of_the_candidates_identity():
    assert _key(None) == _key("timm")
    assert _key("timm") != _key("torch")
    old_record = {k: v for k, v in _key("torch").items() if k != "init"}
    # A record from before the field existed matches neither new network.
    assert old_record not in (_key("timm"), _key("torch"))


def test_a_stored_result_is_reused_only_for_the_same_init(tmp_path):
    data = "synthetic?n=120"
    dataset = load_trial_dataset(data)

    def config(init: str) -> TrainConfig:
        return TrainConfig.from_protocol(
            "fast",
            arch="R I",
            data=data,
            epochs=1,
            batch_size=32,
            max_batches=1,
            skeleton={"width_mult": 0.25, "init": init},
            device="cpu",
        )

    with Store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        first = run_trial(config("torch"), store, dataset=dataset, measure_latency=False)
        same = run_trial(config("torch"), store, dataset=dataset, reuse=True)
        other = run_trial(config("timm"), store, dataset=dataset, reuse=True, measure_latency=False)
    assert same.reused and same.trial_id == first.trial_id
    assert not other.reused and other.trial_id != first.trial_id


def test_init_flag_sets_the_skeleton_field():
    import argparse

    parser = argparse.ArgumentParser()
    add_skeleton_args(parser)
    assert skeleton_overrides(parser.parse_args(["--init", "torch"]))["init"] == "torch"
    assert "init" not in skeleton_overrides(parser.parse_args([]))
