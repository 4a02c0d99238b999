"""The weight-sharing supernet: its paths are the stand-alone networks, sampling is uniform
over the space's members, BatchNorm is recalibrated per path, scores are deterministic,
training resumes from its checkpoint, and spaces it cannot hold are refused."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest
import torch
from scipy import stats

from harness import blocks
from harness.config import TrainConfig
from harness.data import load_dataset
from harness.errors import ConfigError
from harness.estimate import get_estimator
from harness.estimate.supernet import (
    check_supernet_space,
    space_sampler,
    train_supernet,
)
from harness.estimate.supernet_model import batchnorms, read_supernet_checkpoint
from harness.models import build_model
from harness.search.space import load_space
from harness.store import Store

DATA = "synthetic?n=80&size=16"  # 56 training images of 16x16
TINY_SPACE = """
description = "three positions on two stages: both kinds, stride 2 in stage 2"
protocol = "fast"
[skeleton]
depths = [1, 2]
widths = [16, 32]
stem_width = 8
[architecture]
counts = { R = 2, I = 1 }
enqueue = ["RIR"]
"""


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    # Tiny networks on a shared machine: a second thread only spins waiting for the first.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DATA)


@pytest.fixture(scope="module")
def tiny_space(tmp_path_factory):
    path = tmp_path_factory.mktemp("spaces") / "tiny.toml"
    path.write_text(TINY_SPACE)
    return load_space(str(path))


def tiny_config(space, epochs: int = 1) -> TrainConfig:
    return TrainConfig.from_protocol(
        "fast", data=DATA, device="cpu", epochs=epochs, batch_size=8, max_batches=3,
        eval_batch_size=64, skeleton=dict(space.skeleton), seed=3,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tiny_space, dataset, tmp_path_factory):
    """A tiny supernet after one epoch, with its checkpoint."""
    checkpoint = tmp_path_factory.mktemp("supernet") / "tiny.pt"
    config = tiny_config(tiny_space)
    return train_supernet(tiny_space, config, dataset, epochs=1, checkpoint=checkpoint)


# -- the supernet's paths are the stand-alone networks -----------------------------


@pytest.mark.parametrize(
    "arch", ["alternated", "RI", "IR", "R*16", "I*16", "RRIIRIIIRRRIRIRI", "IIRRIRRRIIIRIRIR"]
)
def test_a_path_is_the_standalone_network_of_its_ordering(dataset, arch):
    config = TrainConfig(data=DATA, device="cpu", skeleton={"width_mult": 0.125})
    from harness.estimate.supernet import build_supernet

    torch.manual_seed(0)
    supernet = build_supernet(config, dataset).eval()
    skeleton = supernet.skeleton
    alone = build_model(arch, skeleton).eval()
    flat = alone.architecture.genotype.flat
    # strict: the path has exactly the stand-alone network's tensors, of the same shapes.
    alone.load_state_dict(supernet.path_state_dict(flat), strict=True)
    assert supernet.path_params(flat) == sum(p.numel() for p in alone.parameters())
    x = torch.randn(3, *skeleton.input_shape)
    with torch.no_grad(), supernet.fixed(flat):
        assert torch.equal(supernet(x), alone(x))
    # Another path through the same weights computes something else.
    other = flat.translate(str.maketrans("RI", "IR"))
    with torch.no_grad(), supernet.fixed(other):
        assert not torch.allclose(supernet(x), alone(x))


def test_both_kinds_sit_at_every_position_with_matching_channels(dataset):
    config = TrainConfig(data=DATA, device="cpu", skeleton={"width_mult": 0.125})
    from harness.estimate.supernet import build_supernet

    supernet = build_supernet(config, dataset)
    assert supernet.n_positions == 16 and supernet.depths == (3, 4, 6, 3)
    x = torch.randn(2, *supernet.skeleton.input_shape)
    with torch.no_grad():
        x = supernet.stem(x)
        for choices in supernet.blocks:
            outs = {letter: block(x) for letter, block in choices.items()}
            assert set(outs) == {"I", "R"}
            assert outs["I"].shape == outs["R"].shape
            x = outs["R"]


def test_a_path_of_wrong_length_or_letters_is_refused(trained):
    with pytest.raises(Exception, match="needs 3 letters of I, R"):
        trained.supernet.check_path("RRRR")
    with pytest.raises(Exception, match="needs 3 letters"):
        trained.supernet.check_path("RSR")


# -- sampling -------------------------------------------------------------------------


def draws(space_name: str, count: int, seed: int = 0) -> list[str]:
    sampler = space_sampler(load_space(space_name), seed)
    return [sampler() for _ in range(count)]


def test_rir_balanced_paths_have_exactly_8_r_and_both_kinds_everywhere():
    paths = draws("rir_balanced", 600)
    assert {p.count("R") for p in paths} == {8}
    assert all(len(p) == 16 for p in paths)
    for position in range(16):
        letters = Counter(p[position] for p in paths)
        assert set(letters) == {"I", "R"}
        # Each position is R in half of the members: within 5 sd of 300 in 600.
        assert abs(letters["R"] - 300) < 5 * (600 * 0.25) ** 0.5
    assert len(set(paths)) > 550  # 12,870 members: repeats are rare


def test_rir_orderings_paths_are_any_of_the_2_to_the_16():
    paths = draws("rir_orderings", 400)
    counts = Counter(p.count("R") for p in paths)
    assert min(counts) < 6 and max(counts) > 10  # binomial(16, 1/2), not a fixed count
    assert all(set(p[i] for p in paths) == {"I", "R"} for i in range(16))


def test_rir_split_paths_are_its_members_uniformly():
    space = load_space("rir_split")
    members = set(space.encoding.members())
    paths = draws("rir_split", 3200)
    seen = Counter(paths)
    assert set(seen) == members and len(members) == 32
    # Uniform over the 32 distinct networks (not over the 34 parameter pairs).
    assert stats.chisquare(list(seen.values())).pvalue > 1e-3


def test_sampling_is_seeded():
    assert draws("rir_balanced", 20, seed=5) == draws("rir_balanced", 20, seed=5)
    assert draws("rir_balanced", 20, seed=5) != draws("rir_balanced", 20, seed=6)


# -- BatchNorm recalibration and scores ---------------------------------------------


def stats_of(layers):
    return [t.clone() for bn in layers for t in (bn.running_mean, bn.running_var)]


def test_recalibration_changes_the_paths_statistics_only_and_is_deterministic(trained):
    supernet = trained.supernet
    on_path = batchnorms(supernet.path_modules("RRI"))
    off_path = batchnorms([supernet.blocks[0]["I"], supernet.blocks[2]["R"]])
    before, untouched = stats_of(on_path), stats_of(off_path)
    first = trained.evaluate("RRI", batches=3, seed=1)
    after = stats_of(on_path)
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
    assert all(torch.equal(a, b) for a, b in zip(untouched, stats_of(off_path), strict=True))
    # An exact average over the batches (momentum None), not a moving one: the stem's
    # BatchNorm holds the mean of its input's per-batch means.
    with torch.no_grad():
        means = [supernet.stem[0](x).mean((0, 2, 3)) for x in trained.calibration_inputs(3, 1)]
    assert torch.allclose(supernet.stem[1].running_mean, torch.stack(means).mean(0), atol=1e-6)
    assert all(bn.momentum == 0.1 for bn in on_path)  # and the momentum is put back
    # Cumulative averages over the same batches: the same statistics and accuracy again.
    again = trained.evaluate("RRI", batches=3, seed=1)
    assert all(torch.equal(a, b) for a, b in zip(after, stats_of(on_path), strict=True))
    assert (again.acc, again.loss) == (first.acc, first.loss)
    # Other batches, other statistics.
    trained.evaluate("RRI", batches=3, seed=2)
    assert any(not torch.equal(a, b) for a, b in zip(after, stats_of(on_path), strict=True))


def test_scores_are_deterministic_given_the_seed(tiny_space, dataset, trained):
    estimator = get_estimator(
        "supernet", space=tiny_space, epochs=1, recalibration_batches=3,
        checkpoint=trained.checkpoint,
    )  # fmt: skip
    config = tiny_config(tiny_space)
    estimator.prepare(dataset, config)
    assert estimator.run.epochs_done == 1  # loaded, not trained again
    scores = {arch: estimator.score(config.replace(arch=arch), dataset) for arch in ("RRI", "IRR")}
    assert all(0.0 <= s <= 1.0 for s in scores.values())
    assert estimator.score(config.replace(arch="RRI"), dataset) == scores["RRI"]
    # A second estimator loading the same checkpoint scores the same.
    second = get_estimator(
        "supernet", space=tiny_space, recalibration_batches=3, checkpoint=trained.checkpoint
    )
    second.prepare(dataset, config)
    assert second.score(config.replace(arch="IRR"), dataset) == scores["IRR"]
    assert estimator.settings()["supernet"] == second.settings()["supernet"]
    with pytest.raises(ConfigError, match="skeleton differs from the supernet's in width_mult"):
        estimator.score(config.replace(skeleton={**config.skeleton, "width_mult": 2.0}), dataset)
    with pytest.raises(ConfigError, match="cannot score 'timm:resnet50'"):
        estimator.score(config.replace(arch="timm:resnet50"), dataset)


# -- training: recorded, resumable --------------------------------------------------


def test_an_interrupted_supernet_resumes_and_continues_the_epoch_count(
    tiny_space, dataset, tmp_path
):
    store = Store(f"sqlite:///{tmp_path / 'h.db'}")
    config = tiny_config(tiny_space, epochs=2)
    checkpoint = tmp_path / "resumed.pt"

    def stop(metrics):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train_supernet(
            tiny_space, config, dataset, epochs=2, checkpoint=checkpoint, store=store,
            on_epoch=stop,
        )  # fmt: skip
    assert [row["epoch"] for row in read_supernet_checkpoint(checkpoint)["history"]] == [1]
    run = train_supernet(tiny_space, config, dataset, epochs=2, checkpoint=checkpoint, store=store)
    assert [row["epoch"] for row in run.history] == [1, 2]

    trials = store.trials_frame(study="supernet:tiny").sort_values("trial_id")
    assert list(trials["status"]) == ["interrupted", "complete"]
    assert set(trials["arch"]) == {"supernet:tiny"}
    resumed = store.trial(int(trials["trial_id"].iloc[-1]))
    assert resumed["config"]["resumed_after_epoch"] == 1
    assert [row["epoch"] for row in store.epochs(resumed["id"])] == [1, 2]

    # The same weights as two epochs without a stop: every random stream was restored.
    straight = train_supernet(
        tiny_space, config, dataset, epochs=2, checkpoint=tmp_path / "straight.pt"
    )
    for key, value in straight.supernet.state_dict().items():
        assert torch.equal(value, run.supernet.state_dict()[key]), key

    # Finished: a third call loads it and records nothing.
    loaded = train_supernet(
        tiny_space, config, dataset, epochs=2, checkpoint=checkpoint, store=store
    )
    assert loaded.epochs_done == 2
    assert len(store.trials_frame(study="supernet:tiny")) == 2


def test_a_checkpoint_of_other_settings_is_refused(tiny_space, dataset, trained):
    config = tiny_config(tiny_space).replace(lr=1e-4)
    with pytest.raises(ConfigError, match="was trained with other settings"):
        train_supernet(tiny_space, config, dataset, epochs=1, checkpoint=trained.checkpoint)


def test_a_broken_checkpoint_is_one_line(tiny_space, dataset, tmp_path):
    path = tmp_path / "junk.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(ConfigError, match="cannot be read .*delete it to train afresh"):
        train_supernet(tiny_space, tiny_config(tiny_space), dataset, epochs=1, checkpoint=path)


# -- spaces the supernet cannot hold -------------------------------------------------


@pytest.mark.parametrize(
    ("space", "message"),
    [
        ("paper", "lists timm baselines \\(timm:resnet50"),
        ("rir_macro", "also searches widths, width_mult, stem, I.exp_ratio, lr"),
    ],
)
def test_spaces_the_supernet_cannot_hold_are_refused_in_one_line(space, message):
    with pytest.raises(ConfigError, match=message) as error:
        check_supernet_space(space)
    assert "\n" not in str(error.value)
    # The estimator refuses at construction, before any data or network.
    with pytest.raises(ConfigError, match=message):
        get_estimator("supernet", space=space)


def test_a_space_with_another_block_kind_is_refused(tmp_path):
    blocks.register_block("S", blocks.residual_block, "test kind")
    try:
        path = tmp_path / "rs.toml"
        path.write_text('[architecture]\npositions = ["R", "S"]\n')
        with pytest.raises(ConfigError, match="has block kinds S"):
            check_supernet_space(str(path))
    finally:
        blocks.unregister_block("S")


def test_the_ordering_spaces_are_accepted_and_flags_can_fix_a_searched_field(tmp_path):
    for name in ("rir_orderings", "rir_balanced", "rir_split"):
        assert check_supernet_space(name).name == name
    path = tmp_path / "wm.toml"
    path.write_text(
        '[architecture]\npositions = ["R", "I"]\n[search.skeleton.width_mult]\nchoices = [0.5, 1]\n'
    )
    with pytest.raises(ConfigError, match="also searches width_mult"):
        check_supernet_space(str(path))
    fixed = check_supernet_space(str(path), {"skeleton": {"width_mult": 0.5}})
    assert fixed.name == "wm"


def test_bad_option_values_are_refused():
    with pytest.raises(ConfigError, match="supernet epochs must be a whole number >= 1"):
        get_estimator("supernet", space="rir_balanced", epochs=0)
    with pytest.raises(ConfigError, match="recalibration batches must be"):
        get_estimator("supernet", space="rir_balanced", recalibration_batches=1.5)


def test_checkpoint_path_defaults_to_the_cache(tiny_space, dataset, monkeypatch, tmp_path):
    monkeypatch.setenv("HARNESS_CACHE", str(tmp_path))
    run = train_supernet(tiny_space, tiny_config(tiny_space), dataset, epochs=1)
    assert run.checkpoint.parent == Path(tmp_path) / "supernets"
    assert run.checkpoint.name.startswith("tiny-") and run.checkpoint.is_file()
