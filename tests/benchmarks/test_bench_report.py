"""Cost of the HTML report over a big study: 1,000 trials with 30 epochs each.

The rows are made up (inserted in bulk through the store's SQLAlchemy models,
which is fast; Optuna's study of the same name through `add_trials`) since only the report's reading and drawing is timed here;
tests/test_report.py checks the page against real training runs. Must hold:
a file under 10 MB (always checked) and under 10 s on the 2-core CPU (best of
three rounds, asserted only with benchmarks on: see `_timing`).

The rows go in through the ORM models rather than the `record_trial` factory
of tests/conftest.py: 32,000 one-transaction writes would take longer than the
report they feed.
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from _timing import skip_timing_when_disabled
from sqlalchemy.orm import Session

from harness.grammar import cut, family
from harness.report import write_report
from harness.store import Store
from harness.store.models import Candidate, Epoch, Latency, Study, Trial, utcnow

TRIALS = 1000
EPOCHS = 30
SEEDS = 5
BASELINES = ("timm:resnet50", "timm:mobilenetv2_100", "timm:mobilenetv1_100")
CLASSES = ["angry", "disgust", "fear", "happy", "sad", "surprise", "neutral"]
MAX_SECONDS = 10.0
MAX_BYTES = 10 * 2**20


def _orderings(rng: random.Random, count: int) -> list[str]:
    """`count` distinct 16-block R/I orderings, the paper's three among them."""
    found = {"R" * 8 + "I" * 8, "IR" * 8, "I" * 8 + "R" * 8}
    while len(found) < count:
        found.add("".join(rng.choice("RI") for _ in range(16)))
    return ["|".join(cut(flat, (3, 4, 6, 3))) for flat in sorted(found)]


def fill(url: str) -> None:
    """One study of TRIALS trials: candidates and baselines, SEEDS seeds each, EPOCHS epochs."""
    rng = random.Random(0)
    store = Store(url)  # creates the schema
    archs = _orderings(rng, TRIALS // SEEDS - len(BASELINES)) + list(BASELINES)
    now = utcnow()
    environment = {"harness": "0.1.0", "torch": "2.x", "timm": "1.x", "python": "3.11"}
    with Session(store.engine) as session, session.begin():
        study = Study(name="bench", space="rir_orderings", sampler="tpe")
        session.add(study)
        session.flush()
        candidates = []
        for arch in archs:
            baseline = arch.startswith("timm:")
            candidates.append(
                Candidate(
                    arch=arch,
                    skeleton_hash="",
                    kind="baseline" if baseline else "candidate",
                    family="baseline" if baseline else family(arch),
                    params=rng.randint(10**5, 25 * 10**6),
                    flops=rng.randint(10**7, 4 * 10**9),
                    input_shape=[1, 48, 48],
                    num_classes=len(CLASSES),
                )
            )
        session.add_all(candidates)
        session.flush()
        session.add_all(
            Latency(
                candidate_id=c.id, device="cpu", batch=1, threads=2, median_ms=rng.uniform(1, 40)
            )
            for c in candidates
        )
        trials = []
        for index in range(TRIALS):
            candidate = candidates[index // SEEDS]
            status = rng.choices(["complete", "pruned", "failed"], [0.9, 0.08, 0.02])[0]
            acc = rng.uniform(0.5, 0.8)
            trials.append(
                Trial(
                    study_id=study.id,
                    candidate_id=candidate.id,
                    protocol="fast",
                    hyperparameters={"epochs": EPOCHS, "lr": 0.002},
                    config={"epochs": EPOCHS, "resize": None, "baseline_stem": "small"},
                    config_hash=f"{index:064d}",
                    seed=index % SEEDS,
                    data_spec="ferplus:/data/ferplus",
                    data_fingerprint="f" * 16,
                    label_mode="majority",
                    status=status,
                    best_epoch=EPOCHS,
                    val_acc=acc,
                    val_loss=1.0 - acc / 2,
                    test_acc=acc + rng.uniform(-0.02, 0.02) if status == "complete" else None,
                    test_loss=1.0 - acc / 2 if status == "complete" else None,
                    confusion=[[rng.randint(0, 60) for _ in CLASSES] for _ in CLASSES],
                    class_names=CLASSES,
                    device="cpu",
                    environment=environment,
                    optuna_trial_number=index,
                    started_at=now,
                    finished_at=now,
                )
            )
        session.add_all(trials)
        session.flush()
        session.execute(
            Epoch.__table__.insert(),
            [
                {
                    "trial_id": trial.id,
                    "epoch": epoch,
                    "train_loss": 2.0 / epoch,
                    "train_acc": 1 - 1.0 / (epoch + 1),
                    "val_loss": 2.1 / epoch,
                    "val_acc": 0.8 - 1.0 / (epoch + 2),
                    "lr": 0.002,
                    "seconds": 10.0,
                    "images_per_s": 1000.0,
                    "recorded_at": now,
                }
                for trial in trials
                for epoch in range(1, EPOCHS + 1)
            ],
        )
    store.close()
    _fill_optuna(url, archs, rng)


def _fill_optuna(url: str, archs: list[str], rng: random.Random) -> None:
    """Optuna's side of the same search, as the search runner keeps it: same database and name."""
    import optuna
    from optuna.distributions import CategoricalDistribution, FloatDistribution

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="bench", storage=url, direction="maximize")
    distributions = {
        "arch": CategoricalDistribution(archs),
        "lr": FloatDistribution(1e-4, 1e-2, log=True),
    }
    study.add_trials(
        [
            optuna.trial.create_trial(
                params={"arch": rng.choice(archs), "lr": 10 ** rng.uniform(-4, -2)},
                distributions=distributions,
                value=rng.uniform(0.5, 0.8),
            )
            for _ in range(TRIALS)
        ]
    )


@pytest.fixture(scope="module")
def big_store(tmp_path_factory: pytest.TempPathFactory) -> str:
    url = f"sqlite:///{tmp_path_factory.mktemp('bench-report') / 'big.db'}"
    fill(url)
    return url


def test_bench_report_1000_trials(benchmark, big_store: str, tmp_path: Path) -> None:
    benchmark.group = "report"
    output = tmp_path / "bench.html"

    def render() -> Path:
        with Store(big_store, create=False) as store:
            return write_report(store, ["bench"], output)

    # One round under --benchmark-disable (the quick suite), three otherwise.
    path = benchmark.pedantic(render, rounds=3, iterations=1, warmup_rounds=0)
    size = path.stat().st_size
    assert size < MAX_BYTES
    page = path.read_text(encoding="utf-8")
    assert "1000: " in page  # every trial counted in the header
    assert 'id="fig-optuna-bench-1"' in page  # Optuna's importances over 1,000 trials
    skip_timing_when_disabled(benchmark)

    stats = benchmark.stats.stats
    benchmark.extra_info.update(
        trials=TRIALS,
        epochs=EPOCHS,
        bytes=size,
        seconds_min=stats.min,
        seconds_median=stats.median,
        seconds_max=stats.max,
    )
    assert stats.min < MAX_SECONDS, f"report took {stats.min:.1f} s (best of {stats.rounds})"
