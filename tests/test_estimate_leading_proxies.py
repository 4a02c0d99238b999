"""meco, zico and swap: each checked against a property its paper states, on tiny
networks and data made here."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from harness.config import TrainConfig
from harness.data import load_dataset
from harness.estimate import get_estimator
from harness.estimate.activation_proxies import (
    distinct_patterns,
    meco_layers,
    min_correlation_eigenvalue,
    pack_patterns,
    swap_regulariser,
)
from harness.estimate.proxies import proxy_batch, proxy_batches, weighted_layers
from harness.estimate.zico import zico_of_gradients
from harness.measure import count_params
from harness.train import seed_everything
from harness.trial import candidate_for

SKELETON = {"depths": [1, 1], "widths": [16, 32], "stem_width": 8}
CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def dataset():
    return load_dataset("synthetic?n=120&size=16")


def config(arch: str = "R I", **skeleton) -> TrainConfig:
    return TrainConfig.from_protocol(
        "fast", arch=arch, skeleton={**SKELETON, **skeleton}, seed=0, device="cpu", threads=1
    )


# --- MeCo -------------------------------------------------------------------------


def test_the_min_eigenvalue_of_a_correlation_matrix_is_between_0_and_1():
    torch.manual_seed(0)
    assert 0 < min_correlation_eigenvalue(torch.randn(4, 8, 8)) < 1
    # Uncorrelated zero-mean channels: the identity, every eigenvalue 1.
    orthogonal = torch.tensor([[1.0, 1, -1, -1], [1, -1, 1, -1], [1, -1, -1, 1]])
    assert min_correlation_eigenvalue(orthogonal.reshape(3, 2, 2)) == pytest.approx(1.0)


def test_two_identical_channels_or_a_constant_one_give_zero():
    torch.manual_seed(0)
    maps = torch.randn(5, 6, 6)
    maps[3] = maps[1]
    assert min_correlation_eigenvalue(maps) == pytest.approx(0.0, abs=1e-9)
    maps = torch.randn(5, 6, 6)
    maps[2] = 7.0  # no variance: NaN correlations, set to 0 as MeCo's code does
    assert min_correlation_eigenvalue(maps) == pytest.approx(0.0, abs=1e-9)
    assert min_correlation_eigenvalue(torch.randn(5, 1, 1)) == 0.0  # one position


def test_each_feature_map_counts_once_whatever_returns_it():
    torch.manual_seed(0)
    images = torch.randn(4, 3, 8, 8)
    conv = nn.Conv2d(3, 6, 3, padding=1)
    # The Identity and both containers return the conv's own output: one map.
    assert len(meco_layers(nn.Sequential(conv, nn.Sequential(nn.Identity())), images)) == 1
    # An in-place ReLU changes the map: a second one, as a ReLU that is not in place.
    assert len(meco_layers(nn.Sequential(conv, nn.ReLU(inplace=True)), images)) == 2
    assert len(meco_layers(nn.Sequential(conv, nn.ReLU()), images)) == 2


def test_meco_lies_between_0_and_the_number_of_layers(dataset):
    seed_everything(0)  # the weights `score` builds for seed 0
    candidate = candidate_for(config(), dataset)
    images, _ = proxy_batch(dataset, 16, 0, CPU)
    layers = meco_layers(candidate.model.train(), images)
    assert len(layers) > 10 and all(-1e-9 <= value <= 1 + 1e-9 for value in layers)
    total = get_estimator("meco", batch_size=16).score(config(), dataset)
    assert total == pytest.approx(math.fsum(layers)) and 0 < total <= len(layers)


# --- ZiCo -------------------------------------------------------------------------


def test_zico_by_hand():
    # Per weight: mean |g| = 2 and std = 1 over the two batches; 4 in all, log 4.
    assert zico_of_gradients({"a": [torch.tensor([1.0, 3.0]), torch.tensor([3.0, 1.0])]}) == (
        pytest.approx(math.log(4.0))
    )


def test_zico_is_unchanged_when_a_layers_gradients_are_scaled():
    torch.manual_seed(0)
    gradients = {name: [torch.randn(3, 4) for _ in range(3)] for name in ("a", "b")}
    scaled = {**gradients, "a": [-7.5 * g for g in gradients["a"]]}
    assert zico_of_gradients(scaled) == pytest.approx(zico_of_gradients(gradients))


def test_a_weight_with_the_same_gradient_in_every_batch_is_left_out():
    torch.manual_seed(0)
    moving = [torch.randn(5) for _ in range(2)]
    with_constant = [torch.cat([g, torch.tensor([0.3])]) for g in moving]
    assert zico_of_gradients({"a": with_constant}) == pytest.approx(
        zico_of_gradients({"a": moving})
    )
    # A layer whose gradients never change adds nothing at all (three batches of 0.1:
    # a plain mean of them is not exactly 0.1, their spread must still be 0).
    still = [torch.full((4,), 0.1, dtype=torch.float64) for _ in range(3)]
    three = [torch.randn(5) for _ in range(3)]
    assert zico_of_gradients({"a": three, "b": still}) == zico_of_gradients({"a": three})


def test_zico_reads_each_batchs_own_gradients(dataset):
    with pytest.raises(ValueError, match="at least 2 batches"):
        get_estimator("zico", batches=1)
    # By hand: the trial's weights for seed 0, three disjoint batches, each gradient
    # from zero (the original code accumulates them, which this would tell apart).
    seed_everything(0)
    model = candidate_for(config(), dataset).model.train()
    gradients: dict[str, list[torch.Tensor]] = {}
    for images, labels in proxy_batches(dataset, 8, 3, 0, CPU):
        model.zero_grad()
        nn.functional.cross_entropy(model(images), labels).backward()
        for index, layer in enumerate(weighted_layers(model)):
            gradients.setdefault(str(index), []).append(layer.weight.grad.clone())
    value = get_estimator("zico", batch_size=8, batches=3).score(config(), dataset)
    assert value == pytest.approx(zico_of_gradients(gradients))
    assert value != pytest.approx(get_estimator("zico", batch_size=8).score(config(), dataset))


# --- SWAP -------------------------------------------------------------------------


@pytest.mark.parametrize("samples", [1, 5, 16, 63, 64, 130])
def test_packed_patterns_count_as_distinct_rows(samples):
    torch.manual_seed(samples)
    on = torch.rand(samples, 400) > 0.5
    on[:, 200:] = on[:, :200]  # every pattern twice
    expected = torch.unique(on.T.to(torch.int8), dim=0).shape[0]
    assert distinct_patterns(pack_patterns(on)) == expected <= min(200, 2**samples)


def _units(candidate, images) -> int:
    counted = []
    for module in candidate.model.modules():
        if isinstance(module, nn.ReLU | nn.ReLU6):
            module.register_forward_hook(lambda m, i, o: counted.append(o[0].numel()))
    with torch.no_grad():
        candidate.model(images)
    return sum(counted)


def test_swap_is_at_most_the_patterns_a_batch_can_make_and_the_units(dataset):
    assert get_estimator("swap", samples=3).score(config(), dataset) <= 2**3
    candidate = candidate_for(config(), dataset)
    images, labels = proxy_batch(dataset, 16, 0, CPU)
    count = get_estimator("swap").score_candidate(candidate, (images, labels), CPU)
    assert 2**3 < count <= _units(candidate_for(config(), dataset), images)
    # One image sixteen times: each unit is on in all or in none, two patterns at most.
    same = (images[:1].repeat(16, 1, 1, 1), labels[:1].repeat(16))
    assert get_estimator("swap").score_candidate(candidate_for(config(), dataset), same, CPU) <= 2


def test_swap_grows_with_width(dataset):
    # Eight times the widths (a block's narrowest conv may be held at a floor, so a
    # smaller factor can change less than it says).
    narrow = get_estimator("swap").score(config(), dataset)
    assert get_estimator("swap").score(config(widths=[128, 256]), dataset) > narrow


def test_the_regularised_swap_weighs_the_count_by_model_size(dataset):
    plain = get_estimator("swap").score(config(), dataset)
    thousands = count_params(candidate_for(config(), dataset).model) / 1e3
    at_target = get_estimator("swap", mu=thousands, sigma=10.0).score(config(), dataset)
    off_target = get_estimator("swap", mu=thousands + 5, sigma=10.0).score(config(), dataset)
    assert at_target == plain and off_target == pytest.approx(plain * math.exp(-25 / 10))
    assert swap_regulariser(2000, 2.0, 1.0) == 1.0
    with pytest.raises(ValueError, match="both mu and sigma"):
        get_estimator("swap", mu=1.0)
    assert get_estimator("swap", mu=1.0, sigma=2.0).settings() == {
        "samples": 16,
        "mu": 1.0,
        "sigma": 2.0,
    }
