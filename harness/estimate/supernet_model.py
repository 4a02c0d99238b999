"""The weight-sharing supernet as a module: one block of each kind at every position.

The supernet is assembled from stand-alone networks that `harness.models` builds
for the same skeleton, one per block kind with that kind at every position
(`I*16`, `R*16`): their blocks become the choices at each position, and the
first one's stem and head are shared. A path through the supernet is therefore
the stand-alone network of that ordering, module for module: same channels in
and out at every position (an R bottleneck and an I inverted residual of the
same widths), the same stride-2 first block per stage, the same projection
shortcuts; `path_state_dict` renames its weights so that `build_model`'s
network of that ordering loads them with `strict=True`.

In training mode with a `sampler` set, every forward call draws its own path
(single-path one-shot, Guo et al. 2020), so `Trainer`'s own loop trains it;
otherwise (in eval mode, or inside `fixed`) the fixed `path` runs.
"""

from __future__ import annotations

import contextlib
import io
import itertools
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from harness.data import iterate_batches
from harness.errors import ConfigError, ModelError, first_line
from harness.models import BlockSequenceNet
from harness.output import atomic_path
from harness.search.encodings import Encoding
from harness.train import EpochMetrics, Evaluation, Trainer

__all__ = [
    "PathSampler",
    "Supernet",
    "SupernetRun",
    "fit",
    "read_supernet_checkpoint",
    "recalibrate_batchnorm",
]

CHECKPOINT_FORMAT = 1


class Supernet(nn.Module):
    """Stem, one `ModuleDict` of blocks (letter -> block) per position, head."""

    def __init__(self, networks: dict[str, BlockSequenceNet]) -> None:
        super().__init__()
        if not networks:
            raise ModelError("a supernet needs at least one block kind")
        first = next(iter(networks.values()))
        self.letters = tuple(networks)
        self.depths = tuple(len(stage) for stage in first.stages)
        self.skeleton = first.skeleton
        for letter, net in networks.items():
            flat = net.architecture.genotype.flat if net.architecture.genotype else ""
            if flat != letter * len(flat) or net.skeleton != self.skeleton:
                raise ModelError(f"supernet part {letter!r} is not {letter}* on the same skeleton")
        self.stem = first.stem
        # (stage, index in stage) of each position: how a path's weights are named stand-alone.
        self.places = [(s, i) for s, depth in enumerate(self.depths) for i in range(depth)]
        self.blocks = nn.ModuleList(
            nn.ModuleDict({letter: net.stages[s][i] for letter, net in networks.items()})
            for s, i in self.places
        )
        self.head = first.head
        self.num_features = first.num_features
        self.output_activation = first.output_activation
        self.path = self.letters[0] * len(self.places)
        self.sampler: Callable[[], str] | None = None

    @property
    def n_positions(self) -> int:
        return len(self.places)

    def check_path(self, path: str) -> str:
        """`path` as one letter per position; ModelError if the supernet cannot run it."""
        if len(path) != self.n_positions or not set(path) <= set(self.letters):
            raise ModelError(
                f"supernet path {path!r} needs {self.n_positions} letters of "
                f"{', '.join(self.letters)}"
            )
        return path

    @contextlib.contextmanager
    def fixed(self, path: str) -> Iterator[Supernet]:
        """Run `path` (no sampling) inside the block, whatever the mode."""
        saved = self.path, self.sampler
        self.path, self.sampler = self.check_path(path), None
        try:
            yield self
        finally:
            self.path, self.sampler = saved

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        path = self.sampler() if self.training and self.sampler is not None else self.path
        x = self.stem(x)
        for choices, letter in zip(self.blocks, path, strict=True):
            x = choices[letter](x)
        return self.head(x)

    def path_modules(self, path: str) -> list[nn.Module]:
        """The modules `path` runs through: stem, one block per position, head."""
        path = self.check_path(path)
        chosen = [choices[letter] for choices, letter in zip(self.blocks, path, strict=True)]
        return [self.stem, *chosen, self.head]

    def path_state_dict(self, path: str) -> dict[str, torch.Tensor]:
        """The weights of `path`, named as in the stand-alone `BlockSequenceNet` of that ordering."""
        path = self.check_path(path)
        out: dict[str, torch.Tensor] = {}
        for key, value in self.state_dict().items():
            part, _, rest = key.partition(".")
            if part != "blocks":
                out[key] = value
                continue
            position, letter, name = rest.split(".", 2)
            if path[int(position)] == letter:
                stage, index = self.places[int(position)]
                out[f"stages.{stage}.{index}.{name}"] = value
        return out

    def path_params(self, path: str) -> int:
        """Parameters of the stand-alone network of `path`."""
        return sum(p.numel() for m in self.path_modules(path) for p in m.parameters())


def batchnorms(modules: Sequence[nn.Module]) -> list[_BatchNorm]:
    return [m for module in modules for m in module.modules() if isinstance(m, _BatchNorm)]


@torch.no_grad()
def recalibrate_batchnorm(
    supernet: Supernet,
    path: str,
    batches: Iterable[torch.Tensor],
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> int:
    """Reset the running statistics of `path`'s BatchNorm layers and re-estimate them
    over `batches` (inputs ready for the model) as exact averages; returns the batches used.

    The shared running statistics are a mixture of every path trained through a
    layer, so a path evaluated with them is mis-normalised; SPOS (Guo et al. 2020,
    section 3.4) recomputes them on training batches before each path is evaluated.
    Momentum None makes the estimate a cumulative average, so the result does not
    depend on the order of the batches. Leaves the supernet in eval mode.
    """
    layers = batchnorms(supernet.path_modules(path))
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    run = forward or supernet
    used = 0
    try:
        with supernet.fixed(path):
            supernet.train()
            for x in batches:
                run(x)
                used += 1
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
        supernet.eval()
    return used


class PathSampler:
    """Paths drawn uniformly from a space's members with a seeded torch generator
    (whose state is a tensor, so a weights-only checkpoint keeps it).

    Uniform over the members, not over the encoding's parameters: per position a
    uniform letter (positions), uniform random keys, whose order is a uniform
    permutation, so each arrangement of the fixed counts is equally likely (counts),
    or one of the listed members (split, choices: a split space names I*16 from
    two parameter pairs, and would draw it twice as often through them).
    """

    def __init__(self, encoding: Encoding, seed: int, members: Sequence[str] = ()) -> None:
        self.encoding = encoding
        self.members = tuple(sorted(set(members)))
        if encoding.kind in ("split", "choices") and not self.members:
            raise ModelError(f"a {encoding.kind} space needs its members listed to sample paths")
        self.generator = torch.Generator().manual_seed(int(seed))

    def __call__(self) -> str:
        encoding, n = self.encoding, self.encoding.n
        if self.members:
            index = int(torch.randint(len(self.members), (1,), generator=self.generator))
            return self.members[index]
        names = encoding.names()
        if encoding.kind == "positions":
            letters = encoding.letters
            drawn = torch.randint(len(letters), (n,), generator=self.generator).tolist()
            return encoding.flat({k: letters[i] for k, i in zip(names, drawn, strict=True)})
        keys = torch.rand(n, generator=self.generator, dtype=torch.float64).tolist()
        return encoding.flat(dict(zip(names, keys, strict=True)))


@dataclass
class SupernetRun:
    """A supernet on its device with the `Trainer` that trains it, its path sampler and
    what its checkpoint holds: enough to go on training or to score paths."""

    supernet: Supernet
    trainer: Trainer
    sampler: PathSampler
    identity: dict[str, Any]
    checkpoint: Path
    reference: str  # the path whose accuracy each epoch records
    history: list[dict[str, Any]] = field(default_factory=list)  # EpochMetrics.to_dict()
    trial_id: int | None = None
    train_seconds: float = 0.0

    def __post_init__(self) -> None:
        # Every training step draws its path; evaluation and recalibration fix theirs.
        self.supernet.sampler = self.sampler

    @property
    def epochs_done(self) -> int:
        return len(self.history)

    def calibration_inputs(self, count: int, seed: int) -> Iterator[torch.Tensor]:
        """`count` unaugmented training batches, the same ones for every path, so that
        two paths' statistics come from the same images."""
        trainer = self.trainer
        generator = torch.Generator(device=trainer.device).manual_seed(int(seed))
        batches = iterate_batches(
            trainer.train_split,
            batch_size=trainer.batch_size,
            shuffle=True,
            generator=generator,
            drop_last=True,
        )
        for images, _ in itertools.islice(batches, count):
            yield trainer.prepare(images, augment=False)

    def evaluate(self, path: str, batches: int, seed: int, split: str = "val") -> Evaluation:
        """`path` on `split` with the shared weights, after recalibrating its BatchNorm layers."""
        trainer = self.trainer

        def forward(x: torch.Tensor) -> torch.Tensor:
            # The trainer's AMP context: statistics at the precision the evaluation runs in.
            with trainer.autocast():
                return trainer.forward(x)

        inputs = self.calibration_inputs(batches, seed)
        recalibrate_batchnorm(self.supernet, path, inputs, forward=forward)
        with self.supernet.fixed(path):
            return trainer.evaluate(split)

    # -- checkpoints ---------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        trainer = self.trainer
        cuda = trainer.device.type == "cuda"
        return {
            "format": CHECKPOINT_FORMAT,
            "identity": self.identity,
            "history": self.history,
            "trial_id": self.trial_id,
            "train_seconds": self.train_seconds,
            "model": self.supernet.state_dict(),
            "optimizer": trainer.optimizer.state_dict(),
            "scheduler": trainer.scheduler.state_dict() if trainer.scheduler else None,
            "scaler": trainer.scaler.state_dict(),
            # Every random stream the epochs draw from, so a resumed run goes on as one.
            "rng": {
                "sampler": self.sampler.generator.get_state(),
                "shuffle": trainer.generator.get_state(),
                "augment": trainer.augment.generator(trainer.device).get_state(),
                "torch": torch.get_rng_state(),
                "cuda": torch.cuda.get_rng_state(trainer.device) if cuda else None,
            },
        }

    def save(self) -> None:
        """Write the checkpoint whole or not at all (a kill mid-write keeps the last one)."""
        # Serialised in memory, then written by Python: torch's own writer reports a full
        # disk as a RuntimeError ("unexpected pos"), Python as the OSError (ENOSPC) that
        # atomic_path turns into one line. A checkpoint is a few megabytes.
        buffer = io.BytesIO()
        torch.save(self.state(), buffer)
        with atomic_path(self.checkpoint) as partial:
            partial.write_bytes(buffer.getbuffer())

    def restore(self, state: dict[str, Any]) -> None:
        """Load a checkpoint read by `read_supernet_checkpoint`; ConfigError if it does not fit
        this supernet (its identity matched, but the tensors' shapes or the optimizer's
        groups differ: a file edited, or written by another version of a block)."""
        try:
            self._restore(state)
        except (RuntimeError, ValueError, KeyError, TypeError) as error:
            # What load_state_dict and indexing a foreign dict raise; the message names it.
            raise ConfigError(
                f"supernet checkpoint {self.checkpoint} does not fit this supernet "
                f"({first_line(error)}); delete it to train afresh"
            ) from None

    def _restore(self, state: dict[str, Any]) -> None:
        trainer = self.trainer
        self.supernet.load_state_dict(state["model"])
        trainer.optimizer.load_state_dict(state["optimizer"])
        if trainer.scheduler is not None and state["scheduler"] is not None:
            trainer.scheduler.load_state_dict(state["scheduler"])
        trainer.scaler.load_state_dict(state["scaler"])
        rng = state["rng"]
        self.sampler.generator.set_state(rng["sampler"])
        trainer.generator.set_state(rng["shuffle"])
        trainer.augment.generator(trainer.device).set_state(rng["augment"])
        torch.set_rng_state(rng["torch"])
        if rng["cuda"] is not None and trainer.device.type == "cuda":
            torch.cuda.set_rng_state(rng["cuda"], trainer.device)
        self.history = list(state["history"])
        self.trial_id = state["trial_id"]
        self.train_seconds = float(state["train_seconds"])


def read_supernet_checkpoint(path: Path) -> dict[str, Any] | None:
    """The checkpoint at `path` (weights-only load), None if there is none; ConfigError
    if the file is not one of ours."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated, foreign or not weights-only: each fails its own way
        raise ConfigError(
            f"supernet checkpoint {path} cannot be read ({first_line(error)}); delete it to "
            "train afresh"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{path} is not a supernet checkpoint of this version; delete it")
    return state


def fit(
    run: SupernetRun,
    *,
    recalibration_batches: int,
    seed: int,
    on_epoch: Callable[[EpochMetrics], None] | None = None,
) -> None:
    """Train from `run.epochs_done` to the trainer's last epoch through `Trainer.epochs`,
    each epoch validated on the reference path, a checkpoint after each.

    `on_epoch` sees each epoch after its checkpoint is written, so whatever it
    raises (Ctrl-C, a prune) leaves a checkpoint that resumes after that epoch.
    """

    def validate() -> Evaluation:
        return run.evaluate(run.reference, recalibration_batches, seed)

    for metrics, _ in run.trainer.epochs(first=run.epochs_done + 1, validate=validate):
        run.history.append(metrics.to_dict())
        run.train_seconds += metrics.seconds
        run.save()
        if on_epoch is not None:
            on_epoch(metrics)
