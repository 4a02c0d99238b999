"""One configuration object per training run, and the named protocols.

Precedence, lowest first: `TrainConfig` defaults, the protocol file
(`harness/protocols/NAME.toml`), a search budget, explicit flags. The resolved
object is serialised as JSON with every trial, so a stored result says exactly
how it was trained.
"""

from __future__ import annotations

import dataclasses
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from harness.errors import ConfigError
from harness.limits import Limit, check, one_of, refuse

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

__all__ = [
    "TIMM_PREFIX",
    "TRAIN_LIMITS",
    "TrainConfig",
    "list_protocols",
    "load_protocol",
    "split_arch",
]

CHOICES: dict[str, tuple[str, ...]] = {
    "optimizer": ("adam", "adamw", "sgd"),
    "schedule": ("none", "onecycle", "cosine"),
    "precision": ("auto", "fp32", "bf16", "fp16"),
    "baseline_stem": ("timm", "small", "auto"),
    "output_loss": ("renormalised", "bce"),
    # What a random crop sees beyond the image: see harness/data/augment.py.
    "crop_padding_mode": ("zeros", "reflect", "replicate"),
}
# An architecture named `timm:NAME` is timm's model NAME, not one of our block sequences.
TIMM_PREFIX = "timm:"
# timm:NAME is timm's network, stem included, unless a small stem is asked for:
# the paper ran its baselines with their stock stems (see docs/protocol.md).
DEFAULT_BASELINE_STEM = "timm"
# Models' heads and the skeleton's other named choices, here so that search spaces
# and the CLI can check them without importing torch.
HEADS = ("linear", "paper")
SKELETON_CHOICES: dict[str, tuple[str, ...]] = {
    # strided: the cheapest stem that leaves 4 stages room (harness.models.Skeleton).
    "stem": ("auto", "small", "resnet", "strided"),
    "head": HEADS,
    # The paper head's hidden Dense layers: the paper names no activation for them.
    "head_activation": ("relu6", "none"),
    "output": ("softmax", "sigmoid"),
    # Weight init: timm's ResNet/EfficientNet rules, or PyTorch's defaults (docs/init.md).
    "init": ("timm", "torch"),
}
# The fewest channels any conv of our networks may have, stem and blocks alike, at
# every budget and width multiplier: widths are rounded up to it, as timm's and
# MobileNetV2's `make_divisible(v, divisor, min_value)` rounds. 16 is MobileNetV2's
# narrowest layer (its first bottleneck's output); a quarter-width R block's 3x3
# had 4 and did not learn FER2013 in a smoke budget's steps (docs/estimators.md).
MIN_CONV_CHANNELS = 16
# Per-row options of a timm baseline, `timm:NAME?stem=small&head=paper`: the
# option names and the settings they set (`head` is a skeleton field).
ARCH_OPTIONS = {
    "stem": "baseline_stem",
    "head": "head",
    "resize": "resize",
    "pretrained": "pretrained",
}

# What each training setting may be: a library caller, a protocol file, a space file
# and a flag meet the same Limit and the same message (harness.limits). Floats must be
# finite: nan and inf are refused (an `lr` of inf trained to NaN losses and was stored
# as null). The highs lie far above any real run but keep a typo (1e30) from allocating
# or running for days. An int setting takes whole numbers only, as its flag does.
TRAIN_LIMITS: dict[str, Limit] = {
    "epochs": Limit(int, 1, 100_000),
    "batch_size": Limit(int, 1, 65_536),
    "batch_size_cuda": Limit(int, 1, 65_536),
    "eval_batch_size": Limit(int, 1, 65_536),
    "lr": Limit(float, 0, 10, open_low=True),
    "beta1": Limit(float, 0, 0.999_999),
    "beta2": Limit(float, 0, 0.999_999_999),
    "momentum": Limit(float, 0, 0.999_999),
    "weight_decay": Limit(float, 0, 10),
    "label_smoothing": Limit(float, 0, 0.99),
    "crop_padding": Limit(int, 0, 64),
    "rotate_deg": Limit(float, 0, 180),
    "seed": Limit(int, 0, 4_294_967_295),  # 2**32 - 1: numpy's seeds end there
    "threads": Limit(int, 1, 4_096),
    "resize": Limit(int, 8, 1_024),
    "patience": Limit(int, 1, 100_000),
    "max_batches": Limit(int, 1, 1_000_000_000),
    **{name: one_of(allowed) for name, allowed in CHOICES.items()},
}


@dataclass
class TrainConfig:
    arch: str = "RI"
    data: str = "synthetic"
    protocol: str = "fast"
    epochs: int = 15
    batch_size: int = 64
    batch_size_cuda: int | None = None  # replaces batch_size when training on CUDA
    eval_batch_size: int | None = None  # None: EVAL_BATCH[device kind]
    optimizer: str = "adam"
    lr: float = 1e-3
    beta1: float = 0.9
    beta2: float = 0.999
    momentum: float = 0.9
    weight_decay: float = 0.0
    schedule: str = "none"
    label_smoothing: float = 0.0
    crop_padding: int = 4
    crop_padding_mode: str = "zeros"
    flip: bool = True
    rotate_deg: float = 0.0
    seed: int = 0
    device: str = "auto"
    precision: str = "auto"
    channels_last: bool = True
    compile: bool = False
    threads: int | None = None
    resize: int | None = None  # upsample inputs on the device (timm baselines at 48x48)
    baseline_stem: str = DEFAULT_BASELINE_STEM  # timm | small | auto (small below 96 px)
    pretrained: str | None = None
    # The loss of a sigmoid output: "renormalised" is Keras' categorical
    # cross-entropy, which divides the sigmoids by their sum; "bce" is per class.
    output_loss: str = "renormalised"
    patience: int | None = None  # stop after this many epochs without a better val accuracy
    max_batches: int | None = None  # cap on training batches per epoch (smoke runs, tests)
    skeleton: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def __post_init__(self) -> None:
        # A baseline's options in its name (timm:resnet50?stem=small) set the
        # same fields as the flags do, so every consumer reads plain fields.
        _, options = split_arch(self.arch)
        for key, value in options.items():
            if key == "head":
                self.skeleton = {**self.skeleton, "head": value}
            else:
                setattr(self, key, value)
        for name, limit in TRAIN_LIMITS.items():
            value = getattr(self, name)
            if value is not None or limit.choices:  # None: an optional setting not given
                check(name, value, limit)
        check_finite(self.skeleton, "skeleton.")
        if self.skeleton.get("head") == "paper" and 1 in (self.batch_size, self.batch_size_cuda):
            # Its BatchNorm1d cannot normalise a batch of one image in training.
            raise ConfigError("the paper head trains with batches of at least 2 images, got 1")

    @classmethod
    def from_protocol(cls, protocol: str, **overrides: Any) -> TrainConfig:
        """The protocol's values, then `overrides` (None means 'not given')."""
        values: dict[str, Any] = load_protocol(protocol)
        values["protocol"] = protocol
        skeleton = dict(values.pop("skeleton", {}))
        skeleton.update(overrides.pop("skeleton", None) or {})
        values.update({k: v for k, v in overrides.items() if v is not None})
        values["skeleton"] = skeleton
        return cls.from_dict(values)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(
                f"unknown training settings {unknown} (known: {', '.join(sorted(known))})"
            )
        return cls(**values)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hyperparameters(self) -> dict[str, Any]:
        """The knobs a search varies, as recorded beside each trial."""
        keys = (
            "epochs", "batch_size", "optimizer", "lr", "beta1", "weight_decay", "schedule",
            "label_smoothing", "crop_padding", "crop_padding_mode", "flip", "rotate_deg",
        )  # fmt: skip
        return _without_later_defaults({k: getattr(self, k) for k in keys})

    def identity(self) -> dict[str, Any]:
        """What makes two configurations the same candidate before a device is chosen
        (distinct candidates of a space): all but where/how fast it runs."""
        ignored = {"device", "threads", "compile", "description", "eval_batch_size"}
        values = {k: v for k, v in self.to_dict().items() if k not in ignored}
        return _without_later_defaults(values)

    def eval_batch_on(self, device_kind: str) -> int:
        """The evaluation batch size on a device of this kind (the setting, else EVAL_BATCH)."""
        return self.eval_batch_size or EVAL_BATCH.get(device_kind, EVAL_BATCH["cpu"])

    def batch_size_on(self, device_kind: str) -> int:
        """The training batch size on a device of this kind ("cpu", "cuda")."""
        if device_kind == "cuda" and self.batch_size_cuda:
            return self.batch_size_cuda
        return self.batch_size

    def run_identity(self, device_kind: str, precision: str) -> dict[str, Any]:
        """What makes two runs the same experiment (dedup of results): the settings and
        what the device made of them, its kind ("cpu", "cuda"; not its index), the batch
        size it trained with and `precision`, the one used (`auto` resolved)."""
        values = self.identity()
        if device_kind == "cpu":
            # As every run's identity was before the device counted, so that CPU records
            # made then are still reused: on the CPU the requested settings fix what ran
            # (batch_size trains, `auto` is fp32), and old CUDA records are told apart
            # by their recorded device (harness.trial).
            return values
        values.pop("batch_size_cuda", None)
        values.update(
            device_kind=device_kind,
            batch_size=self.batch_size_on(device_kind),
            precision=precision,
        )
        return values


# The recipe the smoke budget and `harness train`'s demo were tuned with: the `fast`
# protocol before issue 17 (AdamW, one-cycle, weight decay 0.05, label smoothing 0.1)
# at a higher peak rate, without random crops or rotations. Kept whole so that their
# measured behaviour (and the README's first leaderboard) does not move with `fast`.
SMOKE_RECIPE: dict[str, Any] = {
    "optimizer": "adamw",
    "lr": 8e-3,
    "weight_decay": 0.05,
    "schedule": "onecycle",
    "label_smoothing": 0.1,
    "crop_padding": 0,
    "rotate_deg": 0.0,
}

# Evaluation batch per device kind (results do not depend on it: BatchNorm is in eval
# mode). On 1 CPU thread, RI at full width on 48x48 faces evaluated 1.25x faster at 128
# than at 512 behind the strided stem (429 against 342 images/s) and 1.7x faster at 64
# behind the small one: big batches of full-resolution maps overflow the CPU's caches.
EVAL_BATCH: dict[str, int] = {"cpu": 128, "cuda": 512}

# Settings added after results were first recorded, with the value every earlier run
# had. At that value they are left out of a run's identity and hyperparameters, so a
# record made before the setting existed is still reused and grouped with new runs.
LATER_SETTINGS: dict[str, Any] = {"crop_padding_mode": "zeros"}


def _without_later_defaults(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if not (k in LATER_SETTINGS and v == LATER_SETTINGS[k])}


def check_finite(value: Any, prefix: str = "") -> None:
    """ConfigError naming the key path of the first nan or inf in nested settings."""
    bad = _non_finite(value)
    if bad is not None:
        refuse(f"{prefix}{bad[0]}", "must be a finite number", bad[1])


def _non_finite(value: Any, where: str = "") -> tuple[str, float] | None:
    import math

    if isinstance(value, float) and not math.isfinite(value):
        return where or "value", value
    items: Any = ()
    if isinstance(value, dict):
        items = ((f"{where}.{k}" if where else str(k), v) for k, v in value.items())
    elif isinstance(value, (list, tuple)):
        items = ((f"{where}[{i}]", v) for i, v in enumerate(value))
    for key, item in items:
        found = _non_finite(item, key)
        if found is not None:
            return found
    return None


def split_arch(text: str) -> tuple[str, dict[str, Any]]:
    """`timm:resnet50?stem=small&head=paper` -> ("timm:resnet50", {"baseline_stem": "small",
    "head": "paper"}), options keyed by the setting they set; ConfigError if not valid."""
    name, sep, query = text.strip().partition("?")
    if not sep:
        return name, {}
    if not name.startswith(TIMM_PREFIX):
        raise ConfigError(
            f"options after '?' are for timm baselines (timm:NAME?stem=small), not {text!r}; "
            "set our networks' skeleton with flags or a [skeleton] table"
        )
    options: dict[str, Any] = {}
    for part in query.split("&"):
        key, eq, value = part.partition("=")
        key, value = key.strip(), value.strip()
        if key not in ARCH_OPTIONS:
            raise ConfigError(
                f"unknown option {key!r} in {text!r} (known: {', '.join(ARCH_OPTIONS)})"
            )
        field_name = ARCH_OPTIONS[key]
        if not eq or not value:
            raise ConfigError(f"option {key!r} in {text!r} needs a value ({key}=...)")
        if field_name in options:
            raise ConfigError(f"option {key!r} is given twice in {text!r}")
        allowed = HEADS if key == "head" else CHOICES.get(field_name)
        if allowed and value not in allowed:
            raise ConfigError(
                f"{key}={value!r} in {text!r} is not allowed (allowed: {', '.join(allowed)})"
            )
        if key == "resize":
            if not value.isdigit():
                raise ConfigError(f"resize in {text!r} must be a whole number of pixels")
            options[field_name] = int(value)
        else:
            options[field_name] = value
    return name, options


def list_protocols() -> dict[str, str]:
    """Protocol name -> description."""
    folder = resources.files("harness") / "protocols"
    names = sorted(p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml"))
    return {name: load_protocol(name).get("description", "") for name in names}


def load_protocol(name: str) -> dict[str, Any]:
    path = resources.files("harness") / "protocols" / f"{name}.toml"
    if not path.is_file():
        folder = resources.files("harness") / "protocols"
        known = sorted(
            p.name[: -len(".toml")] for p in folder.iterdir() if p.name.endswith(".toml")
        )
        raise ConfigError(f"unknown protocol {name!r} (known: {', '.join(known)})")
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"protocol file {path}: {error}") from None
