"""The GPU path: mixed precision, channels_last, data and augmentation on the device, CUDA-event
latency, out-of-memory recovery. Every test is marked `cuda` and skipped without a CUDA device.

`scripts/gpu_check.sh` runs this file on a GPU machine; CI has none.
"""

from __future__ import annotations

import json

import pytest
import torch

from harness.candidate import build_candidate
from harness.config import TrainConfig
from harness.data import BatchAugment, iterate_batches, load_dataset
from harness.measure import measure_latency
from harness.train import Trainer

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

DATA = "synthetic?n=400"
ARCH = "RI"
SKELETON = {"width_mult": 0.25}
DEVICE = torch.device("cuda")


@pytest.fixture(scope="module")
def dataset():
    return load_dataset(DATA)


def small_config(**changes) -> TrainConfig:
    values = dict(
        arch=ARCH,
        data=DATA,
        device="cuda",
        epochs=2,
        batch_size=64,
        batch_size_cuda=64,
        max_batches=4,
        skeleton=SKELETON,
    )
    values.update(changes)
    return TrainConfig.from_protocol("fast", **values)


def small_trainer(dataset, **changes) -> Trainer:
    config = small_config(**changes)
    torch.manual_seed(0)
    candidate = build_candidate(
        ARCH, image_shape=dataset.image_shape, num_classes=7, skeleton=config.skeleton
    )
    return Trainer(candidate.model, dataset, config, DEVICE)


def first_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Conv2d))


def dense_conv(model: torch.nn.Module) -> torch.nn.Conv2d:
    """A 3x3 convolution over many channels: with one channel or a 1x1 kernel, NCHW and
    channels_last strides coincide and a layout check would pass either way."""
    return next(
        m
        for m in model.modules()
        if isinstance(m, torch.nn.Conv2d)
        and m.groups == 1
        and m.in_channels > 1
        and m.kernel_size == (3, 3)
    )


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_amp_training_runs_in_the_asked_precision(dataset, precision):
    if precision == "bf16" and not torch.cuda.is_bf16_supported():
        pytest.skip("this card has no bf16")
    trainer = small_trainer(dataset, precision=precision)
    seen: list[torch.dtype] = []
    first_conv(trainer.model).register_forward_hook(lambda m, i, out: seen.append(out.dtype))

    result = trainer.fit()

    expected = torch.bfloat16 if precision == "bf16" else torch.float16
    assert seen and set(seen) == {expected}  # autocast reached the convolutions
    assert trainer.scaler.is_enabled() == (precision == "fp16")  # fp16 needs loss scaling
    # Master weights stay float32; training moved them and the losses are finite.
    assert first_conv(trainer.model).weight.dtype == torch.float32
    assert all(torch.isfinite(torch.tensor(m.train_loss)) for m in result.epochs)
    assert len(result.epochs) == 2 and 0.0 <= result.test.acc <= 1.0


def test_auto_precision_picks_bf16_or_fp16_on_cuda(dataset):
    trainer = small_trainer(dataset, precision="auto")
    assert trainer.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")


def test_channels_last_model_and_batches(dataset):
    trainer = small_trainer(dataset, channels_last=True, precision="fp32")
    reference = small_trainer(dataset, channels_last=False, precision="fp32")
    reference.model.load_state_dict(trainer.model.state_dict())
    conv, reference_conv = dense_conv(trainer.model), dense_conv(reference.model)
    assert conv.weight.is_cuda and conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not reference_conv.weight.is_contiguous(memory_format=torch.channels_last)

    layouts: dict[str, bool] = {}
    conv.register_forward_hook(
        lambda m, i, o: layouts.update(ours=i[0].is_contiguous(memory_format=torch.channels_last))
    )
    reference_conv.register_forward_hook(
        lambda m, i, o: layouts.update(ref=i[0].is_contiguous(memory_format=torch.channels_last))
    )
    images = trainer.train_split.images[:64]
    trainer.model.eval()
    reference.model.eval()
    with torch.no_grad():
        ours = trainer.model(trainer.prepare(images, augment=False))
        theirs = reference.model(reference.prepare(images, augment=False))
    assert layouts == {"ours": True, "ref": False}  # activations inside the net are NHWC
    # Layout is speed, not maths: the same weights give the same logits.
    torch.testing.assert_close(ours, theirs, rtol=1e-3, atol=1e-3)


def test_dataset_tensors_and_batched_augmentation_stay_on_the_gpu(dataset):
    trainer = small_trainer(dataset)
    for split in trainer.splits.values():
        assert split.images.is_cuda and split.labels.is_cuda
        assert split.images.dtype == torch.uint8  # a quarter of float32's memory
    generator = torch.Generator(device=DEVICE).manual_seed(0)
    batches = list(iterate_batches(trainer.train_split, 64, shuffle=True, generator=generator))
    assert all(images.is_cuda and labels.is_cuda for images, labels in batches)

    images = batches[0][0]
    augment = BatchAugment(crop_padding=4, flip=True, max_rotate_deg=10.0, seed=0)
    out = augment(images)
    assert out.is_cuda and out.dtype == torch.float32 and out.shape == images.shape
    assert out.min().item() >= 0.0 and out.max().item() <= 1.0
    assert not torch.equal(out, images.float() / 255)  # something was augmented
    again = BatchAugment(crop_padding=4, flip=True, max_rotate_deg=10.0, seed=0)(images)
    torch.testing.assert_close(out, again)  # seeded on the device: reproducible


def test_latency_is_timed_with_cuda_events(monkeypatch):
    created = []
    real_event = torch.cuda.Event

    def counting_event(*args, **kwargs):
        event = real_event(*args, **kwargs)
        created.append(event)
        return event

    monkeypatch.setattr(torch.cuda, "Event", counting_event)
    candidate = build_candidate(ARCH, image_shape=(1, 48, 48), num_classes=7, skeleton=SKELETON)
    latency = measure_latency(candidate.model, (1, 48, 48), batch=64, device="cuda", repeats=10)
    assert latency.device.startswith("cuda:")
    assert latency.repeats == 10 and len(created) == 2 * latency.repeats  # start and end per run
    assert 0 < latency.min_ms <= latency.median_ms <= latency.p90_ms <= latency.max_ms


def test_bench_command_on_cuda(capsys):
    pytest.importorskip("fvcore", reason="harness bench counts FLOPs with fvcore")
    from harness.cli import main

    status = main(["bench", "RI", "--device", "cuda", "--batch", "1,64", "--format", "json"])
    report = json.loads(capsys.readouterr().out)
    assert status == 0
    latency = report["results"][0]["latency"]
    assert [lat["batch"] for lat in latency] == [1, 64]
    assert all(lat["device"].startswith("cuda:") for lat in latency)


def test_out_of_memory_fails_the_trial_and_the_next_one_runs(dataset, tmp_path, monkeypatch):
    pytest.importorskip("sqlalchemy")
    from harness.store import Store
    from harness.trial import run_trial

    real_loss = Trainer.loss
    calls = {"n": 0}

    def exhausting(self, logits, labels):  # in the second training step
        calls["n"] += 1
        if calls["n"] == 2:
            # A real allocator failure: more bytes than the card has (plain cudaMalloc, not managed).
            total = torch.cuda.get_device_properties(DEVICE).total_memory
            torch.empty(2 * total, dtype=torch.uint8, device=DEVICE)
        return real_loss(self, logits, labels)

    monkeypatch.setattr(Trainer, "loss", exhausting)
    with Store(f"sqlite:///{tmp_path / 'results.db'}") as store:
        failed = run_trial(small_config(), store, dataset=dataset, measure_latency=False)
        assert calls["n"] == 2
        assert failed.status == "failed" and "out of memory" in failed.reason
        following = run_trial(small_config(seed=1), store, dataset=dataset, measure_latency=False)
        assert following.status == "complete"
        frame = store.trials_frame()
        statuses = dict(zip(frame["trial_id"], frame["status"], strict=True))
    assert statuses == {failed.trial_id: "failed", following.trial_id: "complete"}
