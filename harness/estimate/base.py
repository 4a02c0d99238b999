"""What every estimator is: a cheap score of a candidate that should rank like training.

An estimator scores one training configuration (its architecture on its skeleton)
for a dataset without training it stand-alone. Higher scores predict higher
validation accuracy, so that every estimator sorts the same way; one whose natural
reading is "lower is better" negates itself. `prepare` does the one-off work
shared by all candidates (a supernet's training), `score` the per-candidate work.

A `PopulationEstimator` (a rank aggregation) scores a candidate against the other
candidates scored with it: it names its component estimators, and
`harness.estimate.rank.score_candidates` gets their scores of every candidate
first, then asks its `aggregate` for all candidates at once.

Estimators register themselves by name; `get_estimator("synflow")` finds one, and
an unknown name is a ConfigError that lists the known ones.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from harness.errors import ConfigError

if TYPE_CHECKING:
    from harness.config import TrainConfig
    from harness.data import Dataset
    from harness.store import Store

__all__ = [
    "BUILTIN_MODULES",
    "Estimator",
    "PopulationEstimator",
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
    # A family of estimators named NAME:ARGUMENT (budget:smoke); the constructor takes
    # `argument`, and the instance's `name` is the whole name.
    takes_argument: ClassVar[bool] = False
    argument_help: ClassVar[str] = ""
    # Seconds the last `score` really cost, where that is not its wall time (a training
    # reused from the store cost its training's seconds, not the lookup's).
    last_seconds: float | None = None

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


class PopulationEstimator(Estimator):
    """An estimator whose score of a candidate depends on the candidates scored with
    it. `components` names the estimators it reads; `rank.make_estimators` binds them
    (`members`), and `score_candidates` stores its scores under a key that names the
    population, so another set of candidates is scored afresh."""

    def __init__(self, components: Sequence[str]) -> None:
        self.components = tuple(components)
        self.members: list[Estimator] = []
        self._owned: list[Estimator] = []

    def bind(self, members: Sequence[Estimator], owned: Sequence[Estimator]) -> None:
        """The component estimators, in `components`' order; `owned` are those built for
        this one alone (not asked for beside it), which its `prepare` prepares."""
        assert [m.name for m in members] == list(self.components)
        self.members, self._owned = list(members), list(owned)

    def prepare(
        self,
        dataset: Dataset,
        base: TrainConfig,
        *,
        store: Store | None = None,
        progress: Callable[[str], None] | None = None,
    ) -> None:
        for member in self._owned:
            member.prepare(dataset, base, store=store, progress=progress)

    def score(self, config: TrainConfig, dataset: Dataset) -> float:
        raise ConfigError(
            f"{self.name} ranks candidates against each other: it scores a population of "
            "candidates (harness estimate, validate-estimators), not one"
        )

    @abstractmethod
    def aggregate(self, scores: Mapping[str, Sequence[float]]) -> list[float]:
        """Every candidate's score from each member's scores of all candidates (the
        same order; NaN where a member has none)."""

    def settings(self) -> dict[str, Any]:
        return {"components": {m.name: m.settings() for m in self.members}}


def register(cls: type[Estimator]) -> type[Estimator]:
    """Class decorator: make `cls` known under `cls.name`."""
    if cls.name in _REGISTRY and _REGISTRY[cls.name] is not cls:
        raise ValueError(f"estimator {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


# The built-in estimators register on import. They are loaded by name when first
# asked for (a plug-in registry, as timm's): a plain `import harness.estimate.base`
# stays free of torch, and the modules that import `register` from here are not
# imported back from here. Every one must import: a broken one is an error, not an
# estimator that silently goes missing.
BUILTIN_MODULES = (
    "harness.estimate.budget",
    "harness.estimate.proxies",
    "harness.estimate.activation_proxies",
    "harness.estimate.zico",
    "harness.estimate.ensemble",
    "harness.estimate.supernet",
)


def _load_builtin() -> None:
    for module in BUILTIN_MODULES:
        importlib.import_module(module)


def estimator_names() -> list[str]:
    _load_builtin()
    return sorted(_REGISTRY)


def estimator_class(name: str) -> type[Estimator]:
    """The class registered as `name`; ConfigError naming the known ones if there is none."""
    _load_builtin()
    family, colon, argument = name.partition(":")
    cls = _REGISTRY.get(family)
    if cls is None:
        known = sorted(f"{n}:NAME" if c.takes_argument else n for n, c in _REGISTRY.items())
        raise ConfigError(f"unknown estimator {name!r} (known: {', '.join(known)})")
    if cls.takes_argument and not argument:
        raise ConfigError(f"estimator {family!r} needs an argument: {cls.argument_help}")
    if colon and not cls.takes_argument:
        raise ConfigError(f"estimator {family!r} takes no argument, got {name!r}")
    if cls.takes_argument:
        cls(argument)  # refuses an unknown argument (a budget that does not exist), by name
    return cls


def get_estimator(name: str, **options: Any) -> Estimator:
    """A new estimator by name; ConfigError naming the known ones if there is none."""
    return estimator_class(name)(**options)
