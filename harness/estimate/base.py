"""What every estimator is: a cheap score of a candidate that should rank like training.

An estimator scores one training configuration (its architecture on its skeleton)
for a dataset without training it stand-alone. Higher scores predict higher
validation accuracy, so that every estimator sorts the same way; one whose natural
reading is "lower is better" negates itself. `prepare` does the one-off work
shared by all candidates (a supernet's training), `score` the per-candidate work.

Estimators register themselves by name; `get_estimator("synflow")` finds one, and
an unknown name is a ConfigError that lists the known ones.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.config import TrainConfig
    from harness.data import Dataset
    from harness.store import Store

__all__ = [
    "BUILTIN_MODULES",
    "Estimator",
    "estimator_class",
    "estimator_names",
    "get_estimator",
    "register",
]

_REGISTRY: dict[str, type[Estimator]] = {}


class Estimator(ABC):
    """One way of scoring candidates cheaply. Subclasses set `name` and `cite`."""

    name: ClassVar[str]
    # The paper (and variant) implemented, shown in reports beside the numbers.
    cite: ClassVar[str] = ""
    # Whether the score depends on the seed (a proxy on a random init does; params do not).
    seeded: ClassVar[bool] = True

    def prepare(
        self,
        dataset: Dataset,
        base: TrainConfig,
        *,
        store: Store | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        """One-off work before the first score (default: none)."""
        return None

    @abstractmethod
    def score(self, config: TrainConfig, dataset: Dataset) -> float:
        """The score of `config`'s network on `dataset`: higher predicts more accurate."""

    def settings(self) -> dict[str, Any]:
        """What else the score depends on (batch size, supernet epochs...), recorded with it."""
        return {}


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make `cls` known under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"estimator {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


# The built-in estimators register on import. They are loaded by name when first
# asked for (a plug-in registry, as timm's): a plain `import harness.estimate.base`
# stays free of torch, and the modules that import `register` from here are not
# imported back from here.
BUILTIN_MODULES = ("harness.estimate.proxies", "harness.estimate.supernet")


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as error:  # an optional one not written yet
            if error.name != module:
                raise


def estimator_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def estimator_class(name: str) -> type[Estimator]:
    """The class registered as `name`; ConfigError naming the known ones if there is none."""
    _load_builtin()
    cls = _REGISTRY.get(name)
    if cls is None:
        raise ConfigError(f"unknown estimator {name!r} (known: {', '.join(sorted(_REGISTRY))})")
    return cls


def get_estimator(name: str, **options: Any) -> Estimator:
    """A new estimator by name; ConfigError naming the known ones if there is none."""
    return estimator_class(name)(**options)
