"""Skeleton + genotype -> nn.Module, and the timm baselines."""

import pytest
import timm
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from harness.errors import GrammarError, ModelError
from harness.grammar import NAMED_ORDERINGS
from harness.measure import count_flops, count_params
from harness.models import PAPER_BASELINES, Skeleton, build_model, resolve_architecture

SMALL = Skeleton(input_shape=(1, 48, 48), num_classes=7, width_mult=0.125)
LARGE = Skeleton(input_shape=(3, 224, 224), num_classes=10, width_mult=0.125)


def _logits(model, skeleton, batch=2):
    model.eval()
    with torch.no_grad():
        return model(torch.randn(batch, *skeleton.input_shape))


@pytest.mark.parametrize("skeleton", [SMALL, LARGE], ids=["1x48x48", "3x224x224"])
@pytest.mark.parametrize("length", range(1, 17))
def test_every_ordering_of_each_length_builds(skeleton, length):
    """A block's in/out channels and stride depend only on its position, never on
    its neighbours' letters; so building every position once as R and once as I
    builds every block any ordering of this length can contain."""
    for letter in "RI":
        model = build_model(letter * length, skeleton)
        assert _logits(model, skeleton).shape == (2, skeleton.num_classes)


@settings(max_examples=25, deadline=None)
@given(st.text(alphabet="RI", min_size=1, max_size=16))
def test_random_orderings_return_logits(flat):
    # "RI" and "IR" are also the names of the paper's 16-block networks.
    assume(flat not in NAMED_ORDERINGS)
    model = build_model(flat, SMALL)
    assert model.architecture.genotype.flat == flat
    assert _logits(model, SMALL).shape == (2, 7)


@pytest.mark.parametrize("name", ["alternated", "RI", "IR"])
def test_named_orderings_are_the_papers_networks(name):
    arch = resolve_architecture(name, Skeleton())
    expected = {"alternated": "(IR)*8", "RI": "R*8 I*8", "IR": "I*8 R*8"}[name]
    assert arch.name == resolve_architecture(expected, Skeleton()).name
    assert arch.family == name
    assert [s.width for s in arch.stages] == [64, 128, 256, 512]
    assert [s.stride for s in arch.stages] == [1, 2, 2, 2]
    assert [s.out_hw for s in arch.stages] == [(48, 48), (24, 24), (12, 12), (6, 6)]


# Each baseline's parameter count at ImageNet's shape (3 channels, 1000 classes), as
# published (ResNet-50 and MobileNetV2: torchvision's model docs; MobileNetV1: 4.2 M in its
# paper), with what the skeleton changes: the stem convolution's weights per input channel
# (no bias) and the classifier's inputs (its features plus the bias).
IMAGENET_PARAMS = {
    "timm:resnet50": (25_557_032, 64 * 7 * 7, 2048),
    "timm:mobilenetv1_100": (4_231_976, 32 * 3 * 3, 1024),
    "timm:mobilenetv2_100": (3_504_872, 32 * 3 * 3, 1280),
}


@pytest.mark.parametrize(
    "skeleton", [SMALL.with_(width_mult=1.0), LARGE.with_(width_mult=1.0)], ids=["48", "224"]
)
@pytest.mark.parametrize("name", PAPER_BASELINES)
def test_baselines_take_the_skeletons_channels_and_classes(name, skeleton):
    """An independent reference: the published count, adjusted by hand for the skeleton's
    input channels and classes. A baseline built for ImageNet's shape (arguments dropped)
    or a different network fails it."""
    channels, classes = skeleton.input_shape[0], skeleton.num_classes
    imagenet, stem_per_channel, features = IMAGENET_PARAMS[name]
    expected = imagenet - (3 - channels) * stem_per_channel - (1000 - classes) * (features + 1)
    model = build_model(name, skeleton)
    assert count_params(model) == expected
    stem = next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))
    assert stem.in_channels == channels
    assert model.get_classifier().out_features == classes
    assert _logits(model, skeleton).shape == (2, classes)


def test_resnet50_counts_four_gflops():
    skeleton = Skeleton(input_shape=(3, 224, 224), num_classes=1000)
    model = build_model("timm:resnet50", skeleton)
    assert count_params(model) == 25_557_032
    assert count_flops(model, skeleton.input_shape) == pytest.approx(4.1e9, rel=0.02)


def test_paper_head_and_sigmoid_output():
    skeleton = SMALL.with_(head="paper", output="sigmoid")
    model = build_model("RI:4", skeleton)
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [2048, 1024, 7]
    dropouts = [m.p for m in model.head.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropouts == [0.5, 0.3, 0.3]
    model.eval()
    probs = model.predict_proba(torch.randn(3, 1, 48, 48))
    assert probs.shape == (3, 7) and ((probs >= 0) & (probs <= 1)).all()


@pytest.mark.parametrize("activation", ["relu6", "none"])
def test_paper_head_hidden_activation(activation):
    skeleton = SMALL.with_(head="paper", head_activation=activation)
    model = build_model("RI:4", skeleton)
    relu6 = [m for m in model.head.modules() if isinstance(m, torch.nn.ReLU6)]
    # One ReLU6 ends the body, as the paper's networks end; then one per hidden Dense.
    assert len(relu6) == (3 if activation == "relu6" else 1)
    mlp = model.head[-1].eval()
    a, b = torch.randn(4, mlp[0].in_features) * 5, torch.randn(4, mlp[0].in_features) * 5
    zero = torch.zeros_like(a)
    with torch.no_grad():
        # Without activations the head is affine at inference: f(a + b) = f(a) + f(b) - f(0).
        gap = (mlp(a + b) - mlp(a) - mlp(b) + mlp(zero)).abs().max().item()
    assert (gap < 1e-3) == (activation == "none")


@pytest.mark.parametrize("name", ["timm:mobilenetv2_050", "timm:test_resnet"])
def test_paper_head_on_timm_baselines(name):
    skeleton = SMALL.with_(width_mult=1.0, head="paper", output="sigmoid")
    model = build_model(name, skeleton)
    body = timm.create_model(name.removeprefix("timm:"), in_chans=1, num_classes=0)
    linears = [m for m in model.head.modules() if isinstance(m, torch.nn.Linear)]
    assert [m.out_features for m in linears] == [2048, 1024, 7]
    assert linears[0].in_features == body.head_hidden_size
    assert count_params(model) == count_params(body) + count_params(model.head)
    assert model.output_activation == "sigmoid"
    assert _logits(model, skeleton).shape == (2, 7)
    with pytest.raises(ModelError, match="build_candidate"):
        build_model(name + "?head=paper", skeleton)


def test_explicit_stages_and_stems():
    arch = resolve_architecture("RRR|IIII", Skeleton())
    assert [s.blocks for s in arch.stages] == ["RRR", "IIII"]
    assert Skeleton(input_shape=(3, 224, 224)).resolved_stem == "resnet"
    assert Skeleton(input_shape=(1, 48, 48)).resolved_stem == "small"
    arch = resolve_architecture("R*4", Skeleton(input_shape=(3, 224, 224)))
    assert [s.out_hw for s in arch.stages] == [(56, 56), (28, 28), (14, 14), (7, 7)]


def test_block_params_reach_the_blocks():
    model = build_model("I", SMALL.with_(block_params={"I": {"exp_ratio": 6}}))
    assert model.stages[0][0].conv_pw.out_channels == 6 * SMALL.scaled_stem_width()


@pytest.mark.parametrize(
    ("text", "skeleton", "error", "message"),
    [
        ("RRX", Skeleton(), GrammarError, "unknown block 'X' at column 3"),
        ("timm:resnet5O", Skeleton(), ModelError, "did you mean timm:resnet50"),
        (
            "R*4",
            Skeleton(input_shape=(1, 16, 16), stem="resnet"),
            ModelError,
            "too small for the resnet stem",
        ),
        ("R|R|R|R", Skeleton(input_shape=(1, 4, 4)), ModelError, "too small for 4 stages"),
        ("R|R|R|R|R", Skeleton(), GrammarError, "5 stages"),
    ],
)
def test_bad_architectures_say_what_is_wrong(text, skeleton, error, message):
    with pytest.raises(error, match=message):
        resolve_architecture(text, skeleton)


def test_bad_skeletons_say_what_is_wrong():
    with pytest.raises(ModelError, match="head must be one of linear, paper, got 'dense'"):
        Skeleton(head="dense")
    with pytest.raises(ModelError, match="head_activation must be one of relu6, none, got 'gelu'"):
        Skeleton(head_activation="gelu")
    with pytest.raises(ModelError, match="same, non-zero length"):
        Skeleton(widths=(64, 128), depths=(1, 1, 1))
    with pytest.raises(ModelError, match="unknown skeleton keys"):
        Skeleton.from_dict({"widht": 3})
    assert Skeleton.from_dict(Skeleton().to_dict()) == Skeleton()
