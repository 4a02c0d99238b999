"""Results that tell the truth (issue 23): a result is reused only by the experiment that
made it, and a failure of the run (a busy card, a driver, a bug of ours) is never
recorded as a property of the candidate."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import optuna
import pytest
import torch
from _tiny_search import tiny_settings, tiny_training, write_space
from sqlalchemy import text

import harness.trial
from harness.candidate import build_candidate
from harness.config import TrainConfig
from harness.errors import ModelError
from harness.measure import count_flops
from harness.search import SearchSettings, run_search
from harness.search.study import MAX_RETRY, STATUS_ATTR
from harness.store import Store, config_hash
from harness.trial import load_trial_dataset, run_trial

DATA = "synthetic?n=300&size=16"
SPACE = """
description = "tiny test space"
[skeleton]
depths = [2, 2]
widths = [16, 32]
[architecture]
positions = ["R", "I"]
enqueue = ["alternated", "RI"]
"""
OVERRIDES = tiny_training()


@pytest.fixture
def space(tmp_path: Path) -> str:
    return write_space(tmp_path, SPACE)


def search_settings(space: str, url: str, **changes) -> SearchSettings:
    values = dict(trials=1, heartbeat_s=1, grace_s=3)
    return tiny_settings(space, url, **{**values, **changes})


def tiny_config(**changes) -> TrainConfig:
    values = dict(arch="R I", data=DATA, device="cpu", **OVERRIDES)
    values.update(changes)
    return TrainConfig.from_protocol("fast", **values)


@pytest.fixture
def fake_cuda(monkeypatch):
    """A CUDA device as far as the harness can tell, trained on the CPU: the device
    resolves, `auto` precision becomes bf16, and the run itself happens on the CPU."""
    real_resolve = harness.trial.resolve_device
    monkeypatch.setattr(
        harness.trial,
        "resolve_device",
        lambda name: torch.device("cuda") if name == "cuda" else real_resolve(name),
    )
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(harness.trial, "environment", lambda device=None: {"device": str(device)})
    real = harness.trial._measure_and_train

    def on_the_cpu(outcome, candidate, config, dataset, device, *rest):
        return real(outcome, candidate, config, dataset, torch.device("cpu"), *rest)

    monkeypatch.setattr(harness.trial, "_measure_and_train", on_the_cpu)


# -- a CPU result is not a CUDA run ---------------------------------------------------------


def test_the_same_search_on_another_kind_of_device_trains_again(space, tmp_path, fake_cuda):
    url = f"sqlite:///{tmp_path}/h.db"
    cpu = {**OVERRIDES, "device": "cpu"}
    run_search(search_settings(space, url, study="laptop", overrides=cpu))
    run_search(search_settings(space, url, study="gpu-box", overrides={**cpu, "device": "cuda"}))
    on_gpu = optuna.load_study(study_name="gpu-box", storage=url).trials
    assert [t.user_attrs["reused"] for t in on_gpu if t.state.is_finished()] == [False]
    with Store(url) as store:
        frame = store.trials_frame()
    assert sorted(frame["device"]) == ["cpu", "cuda"]  # two trials, one per device
    assert frame["config_hash"].nunique() == 2


def test_identity_holds_what_the_device_changes_and_only_that():
    base = tiny_config(batch_size=64, batch_size_cuda=512)
    cuda = base.run_identity("cuda", "bf16")
    # The batch size that trained and the precision used, not how they were asked for.
    assert cuda == tiny_config(batch_size=512).run_identity("cuda", "bf16")
    assert cuda["batch_size"] == 512 and cuda["precision"] == "bf16"
    assert cuda != base.run_identity("cuda", "fp16")
    assert cuda != base.run_identity("cpu", "fp32")
    # Where and how fast it ran is not the experiment.
    elsewhere = base.replace(device="cuda:1", threads=3, compile=True, eval_batch_size=7)
    assert elsewhere.run_identity("cuda", "bf16") == cuda


def test_a_cpu_run_reuses_the_records_made_before_the_device_counted(tmp_path):
    dataset = load_trial_dataset(DATA)
    config = tiny_config()
    with Store(f"sqlite:///{tmp_path / 'r.db'}") as store:
        first = run_trial(config, store, dataset=dataset, measure_latency=False)
        stored = store.trial(first.trial_id)
        # The identity every earlier version recorded: the settings but where and how fast
        # they ran, and the network as built.
        ignored = {"device", "threads", "compile", "description", "eval_batch_size"}
        old = {k: v for k, v in config.to_dict().items() if k not in ignored}
        old.pop("crop_padding_mode")  # a later setting, left out at its old value
        built = ("arch", "data", "skeleton", "baseline_stem", "resize", "pretrained")
        old.update({k: first.config[k] for k in built})
        assert stored["config_hash"] == config_hash(old)
        again = run_trial(config, store, dataset=dataset, reuse=True)
    assert again.reused and again.trial_id == first.trial_id


def test_an_old_cuda_record_is_not_reused_by_a_cpu_run(tmp_path):
    """Before the device counted, a CUDA run recorded the identity a CPU run has now."""
    dataset = load_trial_dataset(DATA)
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with Store(url) as store:
        first = run_trial(tiny_config(), store, dataset=dataset, measure_latency=False)
        with store.engine.begin() as connection:
            connection.execute(text("UPDATE harness_trials SET device = 'cuda:0'"))
        again = run_trial(tiny_config(), store, dataset=dataset, reuse=True, measure_latency=False)
    assert not again.reused and again.trial_id != first.trial_id


# -- failures of the run are not the candidate's ----------------------------------------------


class _FailsOffMeta(torch.nn.Module):
    """Takes any input shape, but fails when given real memory (as out of memory would)."""

    def __init__(self, error: Exception) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(1, 4, 3)
        self.error = error

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not x.is_meta:
            raise self.error
        return self.conv(x)


@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory."),
        RuntimeError("CUDA error: unspecified launch failure"),
    ],
)
def test_flops_counting_passes_on_errors_that_are_not_the_models(error):
    with pytest.raises(type(error)) as raised:
        count_flops(_FailsOffMeta(error), (1, 16, 16))
    assert not isinstance(raised.value, ModelError)


def test_a_model_that_cannot_take_the_input_is_the_candidates():
    too_small = build_candidate("timm:vgg11", image_shape=(1, 16, 16), num_classes=7)
    with pytest.raises(ModelError, match=r"cannot take input \(1, 16, 16\).*too small"):
        count_flops(too_small.model, too_small.input_shape)
    # timm's transformers assert their image size: the same kind of refusal.
    vit = build_candidate("timm:vit_tiny_patch16_224", image_shape=(1, 48, 48), num_classes=7)
    with pytest.raises(ModelError, match="doesn't match model"):
        count_flops(vit.model, vit.input_shape)


def test_weights_that_do_not_fit_are_the_candidates_and_other_errors_are_not(tmp_path, monkeypatch):
    import timm

    path = tmp_path / "resnet18.pth"
    torch.save(timm.create_model("resnet18", num_classes=10).state_dict(), path)
    with pytest.raises(ModelError, match="do not fit timm:mobilenetv2_050.*size mismatch"):
        build_candidate("timm:mobilenetv2_050", image_shape=(1, 48, 48), num_classes=7,
                        pretrained=str(path))  # fmt: skip

    def busy(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 MiB")

    monkeypatch.setattr(timm, "create_model", busy)
    with pytest.raises(torch.OutOfMemoryError):
        build_candidate("timm:resnet18", image_shape=(1, 48, 48), num_classes=7,
                        pretrained=str(path))  # fmt: skip


def _flops_failing(monkeypatch, times: int) -> list[int]:
    """count_flops raises a driver error the first `times` calls; returns the call count."""
    calls = [0]
    real = harness.trial.count_flops

    def flaky(*args, **kwargs):
        calls[0] += 1
        if calls[0] <= times:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(*args, **kwargs)

    monkeypatch.setattr(harness.trial, "count_flops", flaky)
    return calls


def test_an_error_of_the_run_is_retried_with_the_same_parameters(space, tmp_path, monkeypatch):
    _flops_failing(monkeypatch, times=1)
    url = f"sqlite:///{tmp_path}/h.db"
    result = run_search(search_settings(space, url, trials=2))
    trials = optuna.load_study(study_name="t", storage=url).trials
    failed = trials[0]
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs[STATUS_ATTR] == "error"
    assert failed.user_attrs["reason"].startswith("RuntimeError: CUDA error: an illegal")
    retried = [t for t in trials if t.system_attrs.get("failed_trial") == failed.number]
    assert len(retried) == 1 and retried[0].params == failed.params
    assert retried[0].state == optuna.trial.TrialState.COMPLETE
    # The error did not count as one of the study's trials.
    assert result.n_trials == 2
    assert sum(t.state == optuna.trial.TrialState.COMPLETE for t in trials) == 2


def test_an_error_that_persists_stops_the_search_after_its_retries(space, tmp_path, monkeypatch):
    calls = _flops_failing(monkeypatch, times=10**6)
    url = f"sqlite:///{tmp_path}/h.db"
    with pytest.raises(RuntimeError, match="illegal memory access"):
        run_search(search_settings(space, url, trials=2))
    trials = optuna.load_study(study_name="t", storage=url).trials
    ran = [t for t in trials if t.state.is_finished()]
    assert len(ran) == calls[0] and {t.user_attrs[STATUS_ATTR] for t in ran} == {"error"}
    # Each candidate was tried once and retried MAX_RETRY times; the last one's error
    # stopped the search (queued in turn: the two named orderings alternate).
    tries = Counter(json.dumps(t.params, sort_keys=True) for t in ran)
    assert max(tries.values()) == 1 + MAX_RETRY
    assert tries[json.dumps(ran[-1].params, sort_keys=True)] == 1 + MAX_RETRY
    # What is still queued is the other candidate's retry, for the next run.
    assert all("failed_trial" in t.system_attrs for t in trials[len(ran) :])


def test_a_candidate_that_cannot_be_built_still_counts_as_done(space, tmp_path, monkeypatch):
    def refuses(*args, **kwargs):
        raise ModelError("the model cannot take input (1, 16, 16): too small")

    monkeypatch.setattr(harness.trial, "count_flops", refuses)
    url = f"sqlite:///{tmp_path}/h.db"
    result = run_search(search_settings(space, url, trials=2))
    trials = optuna.load_study(study_name="t", storage=url).trials
    assert result.n_trials == 2 and len(trials) == 2
    assert [t.user_attrs[STATUS_ATTR] for t in trials] == ["failed", "failed"]
    assert not any("failed_trial" in t.system_attrs for t in trials)
