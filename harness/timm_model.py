"""Our networks as the timm model `harness_blockseq`: importing this module registers it.

    import timm, harness.timm_model
    model = timm.create_model("harness_blockseq", arch="RRR|RRRR|RIIIII|III",
                              pretrained=True, pretrained_cfg_overlay=dict(file="net.safetensors"))

`arch` is the harness's grammar (`harness describe` takes the same text); the
skeleton's fields are keyword arguments (`widths`, `depths`, `stem`, `head`,
`head_activation`, `width_mult`, `drop_rate`, `block_params`, ...) next to timm's
`in_chans`, `img_size` and `num_classes`. The weights file is a state dict saved
from a harness network (`safetensors.torch.save_file(model.state_dict(), path)`, or
a `.pth`), loaded by timm's own `load_pretrained`: a different `num_classes` gets a
new classifier (say which the file has with `pretrained_cfg_overlay=dict(file=...,
num_classes=7)`), a different `in_chans` an adapted first conv, as for timm's models.
"""

from __future__ import annotations

from typing import Any

from timm.models import build_model_with_cfg, generate_default_cfgs, register_model
from torch import nn

from harness import blocks
from harness.errors import ModelError
from harness.grammar import parse
from harness.models import BlockSequenceNet, Skeleton, resolve_architecture

__all__ = ["DEFAULT_ARCH", "harness_blockseq"]

# ResNet-50's stage depths with the Bi-ResNet paper's RI split in stage 3.
DEFAULT_ARCH = "RRR|RRRR|RIIIII|III"
_DEFAULT = Skeleton()
# Arguments of timm's factory that are for `build_model_with_cfg`, not the network.
_BUILDER_ARGS = ("pretrained_cfg", "pretrained_cfg_overlay", "cache_dir")

# The registry's entry (what `timm.get_pretrained_cfg("harness_blockseq")` says); each
# model's own config follows its skeleton (BlockSequenceNet.pretrained_cfg).
default_cfgs = generate_default_cfgs(
    {
        "harness_blockseq": {
            "input_size": _DEFAULT.input_shape,
            "interpolation": "bilinear",
            "crop_pct": 1.0,
            "mean": (0.0,),
            "std": (1.0,),
            "num_classes": _DEFAULT.num_classes,
            "first_conv": "stem.0",
            "classifier": "head.3",
        }
    }
)


@register_model
def harness_blockseq(
    pretrained: bool = False, arch: str = DEFAULT_ARCH, **kwargs: Any
) -> nn.Module:
    """A harness network (`BlockSequenceNet`) from a grammar string and skeleton fields."""
    builder_args = {name: kwargs.pop(name) for name in _BUILDER_ARGS if name in kwargs}
    _defaults_from_overlay(kwargs, builder_args.get("pretrained_cfg_overlay") or {})
    skeleton = _skeleton(arch, kwargs)
    network = BlockSequenceNet(resolve_architecture(arch, skeleton), skeleton)
    return build_model_with_cfg(
        # The network is built above (its config follows from it); timm's builder
        # resolves the config with the caller's overlay and loads the weights.
        lambda **_: network,
        "harness_blockseq",
        pretrained,
        pretrained_cfg=builder_args.pop("pretrained_cfg", None) or network.pretrained_cfg,
        in_chans=skeleton.input_shape[0],
        num_classes=skeleton.num_classes,
        **builder_args,
    )


def _defaults_from_overlay(kwargs: dict[str, Any], overlay: dict[str, Any]) -> None:
    """What timm's builder does with a config's num_classes and input_size: defaults
    for the arguments the caller left out."""
    if "num_classes" in overlay:
        kwargs.setdefault("num_classes", overlay["num_classes"])
    if "input_size" in overlay:
        kwargs.setdefault("in_chans", overlay["input_size"][0])
        kwargs.setdefault("img_size", tuple(overlay["input_size"][1:]))


def _skeleton(arch: str, kwargs: dict[str, Any]) -> Skeleton:
    """timm's arguments and the skeleton's fields -> `Skeleton`; an unknown argument is
    a TypeError, as timm's models refuse one."""
    kwargs = {key: value for key, value in kwargs.items() if value is not None}
    global_pool = kwargs.pop("global_pool", "avg")
    if global_pool != "avg":
        raise ModelError(f"global_pool must be 'avg' (the only pooling), got {global_pool!r}")
    image_size = kwargs.pop("img_size", _DEFAULT.input_shape[1:])
    if isinstance(image_size, int):
        image_size = (image_size, image_size)
    channels = kwargs.pop("in_chans", _DEFAULT.input_shape[0])
    fields = {"input_shape": (int(channels), *map(int, image_size))}
    fields.update(kwargs)
    unknown = sorted(set(fields) - set(Skeleton.__dataclass_fields__))
    if unknown:
        raise TypeError(f"harness_blockseq got unexpected arguments {unknown}")
    if "|" in arch and "depths" not in fields:
        stages = parse(arch, known=blocks.known_letters())
        # "RRR|RRRR|..." says its depths; the default widths serve as many stages.
        fields["depths"] = tuple(len(stage) for stage in stages.stages)
        fields.setdefault("widths", _DEFAULT.widths[: len(stages.stages)])
    return Skeleton.from_dict(fields)
