"""Zero-cost proxies: registered, deterministic for a seed, different for different
networks and seeds, and able to score our R/I networks and a timm baseline."""

from __future__ import annotations

import math

import pytest
import torch

from harness.config import TrainConfig
from harness.data import load_dataset
from harness.errors import ConfigError
from harness.estimate import base, estimator_names, get_estimator
from harness.estimate.proxies import proxy_batch, proxy_batches
from harness.estimate.rank import make_estimators

PROXIES = ("params", "flops", "synflow", "naswot", "snip", "grad_norm", "meco", "zico", "swap")
SEEDED = ("synflow", "naswot", "snip", "grad_norm", "meco", "zico", "swap")
SKELETON = {"depths": [1, 1], "widths": [16, 32], "stem_width": 8}


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic?n=120&size=16")


def config(arch: str, seed: int = 0, **skeleton) -> TrainConfig:
    return TrainConfig.from_protocol(
        "fast", arch=arch, skeleton={**SKELETON, **skeleton}, seed=seed, device="cpu", threads=1
    )


def proxy(name: str, batch_size: int):
    """The proxy as the commands build it: --proxy-batch goes to those that take it."""
    return make_estimators([name], space=None, options={"batch_size": batch_size})[0]


def score(name: str, cfg: TrainConfig, dataset) -> float:
    return proxy(name, 16).score(cfg, dataset)


def test_every_proxy_is_registered_with_a_citation():
    for name in PROXIES:
        assert name in estimator_names()
        estimator = get_estimator(name)
        assert estimator.name == name and estimator.cite
        assert estimator.seeded == (name in SEEDED)
    with pytest.raises(ConfigError, match="unknown estimator 'nope'.*known: .*synflow"):
        get_estimator("nope")


def test_a_builtin_estimator_module_that_cannot_import_is_an_error(monkeypatch):
    broken = "harness.estimate.no_such_estimator_module"
    monkeypatch.setattr(base, "BUILTIN_MODULES", (*base.BUILTIN_MODULES, broken))
    with pytest.raises(ModuleNotFoundError, match=broken):
        estimator_names()
    with pytest.raises(ModuleNotFoundError, match=broken):
        get_estimator("params")


@pytest.mark.parametrize("name", PROXIES)
def test_a_proxy_is_deterministic_for_a_seed_and_tells_networks_apart(name, dataset):
    r_then_i = config("R I")
    first = score(name, r_then_i, dataset)
    assert math.isfinite(first)
    assert score(name, r_then_i, dataset) == first
    # Four times the widths: a clearly different network.
    wider = score(name, config("R I", widths=[64, 128]), dataset)
    assert math.isfinite(wider) and wider != first
    if name in SEEDED:
        assert score(name, config("R I", seed=1), dataset) != first


def test_more_parameters_score_higher_on_the_baselines_and_synflow(dataset):
    # synflow sums |w| dR/dw: it grows with width, as Tanaka et al. designed it.
    for name in ("params", "flops", "synflow"):
        assert score(name, config("R I", widths=[64, 128]), dataset) > score(
            name, config("R I"), dataset
        )


def test_a_timm_baseline_is_scored_by_every_proxy(dataset):
    # timm's own stem at 16 px keeps the network cheap; the proxies see the same layers.
    cfg = TrainConfig.from_protocol(
        "fast", arch="timm:mobilenetv2_035", baseline_stem="timm", seed=0, device="cpu", threads=1
    )
    scores = {name: proxy(name, 8).score(cfg, dataset) for name in PROXIES}
    assert all(math.isfinite(value) for value in scores.values()), scores
    assert scores["params"] > 3e5  # the baseline, not one of our small networks


def test_synflow_leaves_no_trace_on_relu6_and_sees_the_i_blocks(dataset):
    # I blocks use ReLU6; synflow's positive flow would stop at the clip without the swap.
    assert math.isfinite(score("synflow", config("I I"), dataset))
    from harness.trial import candidate_for

    candidate = candidate_for(config("I I"), dataset)
    get_estimator("synflow").score_candidate(candidate, None, torch.device("cpu"))
    clips = [m.max_val for m in candidate.model.modules() if isinstance(m, torch.nn.ReLU6)]
    assert clips and set(clips) == {6.0}


def test_the_batch_is_seeded_standardised_and_labelled(dataset):
    images, labels = proxy_batch(dataset, 16, 0, torch.device("cpu"))
    again, _ = proxy_batch(dataset, 16, 0, torch.device("cpu"))
    other, _ = proxy_batch(dataset, 16, 1, torch.device("cpu"))
    assert images.shape == (16, *dataset.image_shape) and labels.dtype == torch.int64
    assert torch.equal(images, again) and not torch.equal(images, other)
    assert abs(float(images.mean())) < 1.0 and labels.max() < len(dataset.classes)


def test_several_batches_are_disjoint_seeded_and_begin_with_the_one_batch(dataset):
    cpu = torch.device("cpu")
    first, second = proxy_batches(dataset, 16, 2, 0, cpu)
    assert torch.equal(first[0], proxy_batch(dataset, 16, 0, cpu)[0])
    assert torch.equal(second[0], proxy_batches(dataset, 16, 2, 0, cpu)[1][0])
    rows = {tuple(image.flatten().tolist()) for image in torch.cat([first[0], second[0]])}
    assert second[0].shape == first[0].shape and len(rows) == 32  # no image in both
    # A split too small for the batches asked: an equal share each, still disjoint.
    train = len(dataset.splits["train"])
    shares = proxy_batches(dataset, train, 2, 0, cpu)
    assert [len(images) for images, _ in shares] == [train // 2] * 2
