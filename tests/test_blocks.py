"""The block registry and the R / I adapters over timm's classes."""

import inspect

import pytest
import torch
from timm.models._efficientnet_blocks import InvertedResidual
from timm.models.resnet import Bottleneck, downsample_conv
from torch import nn

from harness import blocks
from harness.errors import ModelError
from harness.measure import count_flops
from harness.models import Skeleton, build_model


def test_timm_signatures_we_rely_on():
    """The adapters pass these keywords; a timm release that renames them must fail here first."""
    bottleneck = inspect.signature(Bottleneck).parameters
    for name in (
        "inplanes",
        "planes",
        "stride",
        "downsample",
        "base_width",
        "act_layer",
        "drop_path",
    ):
        assert name in bottleneck
    assert Bottleneck.expansion == 4
    inverted = inspect.signature(InvertedResidual).parameters
    for name in (
        "in_chs",
        "out_chs",
        "dw_kernel_size",
        "stride",
        "exp_ratio",
        "act_layer",
        "drop_path_rate",
    ):
        assert name in inverted
    assert list(inspect.signature(downsample_conv).parameters)[:4] == [
        "in_channels",
        "out_channels",
        "kernel_size",
        "stride",
    ]


@pytest.mark.parametrize("letter", blocks.known_letters())
@pytest.mark.parametrize(("in_chs", "out_chs", "stride"), [(32, 64, 1), (64, 64, 1), (64, 128, 2)])
def test_every_block_maps_shapes(letter, in_chs, out_chs, stride):
    block = blocks.build_block(letter, in_chs, out_chs, stride)
    out = block(torch.randn(2, in_chs, 12, 12))
    assert out.shape == (2, out_chs, 12 // stride, 12 // stride)


def test_r_is_timm_bottleneck_with_projection_only_when_needed():
    same = blocks.build_block("R", 64, 64, 1)
    assert isinstance(same, Bottleneck) and same.downsample is None
    changed = blocks.build_block("R", 32, 64, 2)
    assert isinstance(changed, Bottleneck) and changed.downsample is not None
    # ResNet-50's compression: inner width is a quarter of the output.
    assert same.conv1.out_channels == 16


def test_i_is_timm_inverted_residual_with_relu6():
    block = blocks.build_block("I", 64, 64, 1, exp_ratio=6)
    assert isinstance(block, InvertedResidual)
    assert block.has_skip
    assert block.conv_pw.out_channels == 384
    assert any(isinstance(m, nn.ReLU6) for m in block.modules())
    assert not blocks.build_block("I", 32, 64, 2).has_skip


def test_r_and_i_cost_the_same_order_of_flops_at_default_settings():
    """Why exp_ratio defaults to 2: see harness.models' docstring."""
    width, hw = 128, 12
    r = count_flops(blocks.build_block("R", width, width, 1), (width, hw, hw))
    i = count_flops(blocks.build_block("I", width, width, 1), (width, hw, hw))
    i6 = count_flops(blocks.build_block("I", width, width, 1, exp_ratio=6), (width, hw, hw))
    assert 2 < i / r < 5
    assert i6 / r > 10


def test_unknown_letter_and_bad_registration():
    with pytest.raises(ModelError, match="known: I, R"):
        blocks.build_block("X", 8, 8, 1)
    with pytest.raises(ModelError, match="already registered"):
        blocks.register_block("R", blocks.residual_block, "again")
    with pytest.raises(ModelError, match="upper-case"):
        blocks.register_block("xy", blocks.residual_block, "bad")


class _PlainConv(nn.Sequential):
    def __init__(self, in_chs, out_chs, stride):
        super().__init__(
            nn.Conv2d(in_chs, out_chs, 3, stride, 1, bias=False), nn.BatchNorm2d(out_chs), nn.ReLU()
        )


@pytest.fixture
def plain_letter():
    blocks.register_block("C", lambda i, o, s, **_: _PlainConv(i, o, s), "plain 3x3 conv")
    yield "C"
    blocks.unregister_block("C")


def test_a_third_letter_is_a_few_lines(plain_letter):
    skeleton = Skeleton(width_mult=0.25)
    model = build_model("(RIC)*2 C*4", skeleton)
    assert model.architecture.genotype.counts() == {"C": 6, "I": 2, "R": 2}
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 7)
    assert sum(isinstance(m, _PlainConv) for m in model.modules()) == 6
