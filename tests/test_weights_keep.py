"""`--keep-weights`: each trial's best-validation weights kept as Optuna artifacts, linked
to the Optuna trial (or study) and to our trial row, read back by `trial_weights`."""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shlex
from pathlib import Path

import optuna
import pytest
import torch
from _tiny_search import NAMED as TINY_NAMED
from _tiny_search import TINY_DATA, tiny_settings, write_space

from harness import artifacts as artifacts_module
from harness import weights_gc
from harness.artifacts import (
    OPTUNA_ARTIFACT_PREFIX,
    artifact_store,
    default_location,
    resolve_location,
    staging_dir,
    trial_weights,
    trials_with_weights,
)
from harness.config import TrainConfig
from harness.errors import ConfigError
from harness.search import SearchSettings, run_search
from harness.search import keep as keep_module
from harness.search.study import STORE_ID_ATTR
from harness.store import Store
from harness.trial import candidate_for, load_trial_dataset
from harness.weights import WeightsError, load_into

# The named orderings' networks (canonical strings), as trials record their arch.
NAMED = set(TINY_NAMED.values())


@pytest.fixture
def space(tmp_path: Path) -> str:
    return write_space(tmp_path)


def settings(space: str, tmp_path: Path, **changes) -> SearchSettings:
    values = dict(
        trials=4,
        # Random, seed 0: the one sampled trial is a network of its own (RI|RR), not
        # a named one again (TPE's first pick here repeats one, which is then reused).
        sampler="random",
        artifacts=str(tmp_path / "artifacts"),
    )
    return tiny_settings(space, f"sqlite:///{tmp_path}/h.db", **{**values, **changes})


def links(url: str, study: str = "t") -> dict[int, dict]:
    with Store(url) as store:
        frame = store.trials_frame(study=study)
        return store.weights_links(frame["trial_id"])


def trials_by_store_id(url: str, study: str = "t") -> dict[int, optuna.trial.FrozenTrial]:
    found = optuna.load_study(study_name=study, storage=url)
    return {t.user_attrs[STORE_ID_ATTR]: t for t in found.trials if STORE_ID_ATTR in t.user_attrs}


def artifact_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file()) if folder.is_dir() else []


@pytest.fixture
def captured(monkeypatch) -> dict[int, dict[str, torch.Tensor]]:
    """The state dict each trial handed to the keeper, by our trial id."""
    seen: dict[int, dict[str, torch.Tensor]] = {}
    real = keep_module.save_trial_weights

    def capture(state_dict, folder, trial_id, metadata):
        seen[trial_id] = {k: v.detach().clone() for k, v in state_dict.items()}
        return real(state_dict, folder, trial_id, metadata)

    monkeypatch.setattr(keep_module, "save_trial_weights", capture)
    return seen


def test_all_keeps_every_trial_as_an_artifact_of_its_optuna_trial(space, tmp_path, captured):
    chosen = settings(space, tmp_path, keep_weights="all")
    result = run_search(chosen)
    url = chosen.url
    kept = links(url)
    study = optuna.load_study(study_name="t", storage=url)
    storage = optuna.storages.RDBStorage(url)
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) == 4
    # A sampled trial may repeat a named one: its row is reused, not retrained.
    assert set(kept) == {t.user_attrs[STORE_ID_ATTR] for t in complete}
    assert len(kept) == result.weights["kept"]
    store_folder = tmp_path / "artifacts"
    for frozen in complete:
        trial_id = frozen.user_attrs[STORE_ID_ATTR]
        (meta,) = optuna.artifacts.get_all_artifact_meta(frozen, storage=storage)
        assert meta.filename == f"trial-{trial_id}-model.safetensors"
        assert frozen.user_attrs["weights"] == "kept"
        # Downloaded through Optuna: the bytes that were recorded.
        target = tmp_path / f"down-{frozen.number}.safetensors"
        optuna.artifacts.download_artifact(
            artifact_store=artifact_store(str(store_folder)),
            artifact_id=meta.artifact_id,
            file_path=str(target),
        )
        data = target.read_bytes()
        assert hashlib.sha256(data).hexdigest() == kept[trial_id]["sha256"]
        assert len(data) == kept[trial_id]["bytes"]
        assert kept[trial_id]["location"] == str(store_folder)
        if not frozen.user_attrs["reused"]:
            assert meta.artifact_id == kept[trial_id]["artifact_id"]
    # Nothing else in the store, nothing left staged.
    assert len(artifact_files(store_folder)) == len(complete)
    assert not (store_folder / ".staged").exists()

    # The weights read back are the trained network's, and evaluate to its test accuracy.
    with Store(url) as store:
        trial_id = min(kept)
        row = store.trial(trial_id)
        state, metadata = trial_weights(store, trial_id)
    assert set(state) == set(captured[trial_id])
    assert all(torch.equal(state[k], captured[trial_id][k]) for k in state)
    assert metadata["trial_id"] == trial_id and metadata["study"] == "t"
    assert metadata["arch"] == row["arch"] and metadata["test_acc"] == row["test_acc"]
    assert metadata["class_names"] == row["class_names"]
    assert metadata["data_fingerprint"] == row["data_fingerprint"]
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    # The recorded config is the network as built (baseline_stem None for our networks).
    recorded = metadata["config"].items()
    config = TrainConfig.from_dict({k: v for k, v in recorded if k in known and v is not None})
    dataset = load_trial_dataset(metadata["data_spec"])
    network = candidate_for(config, dataset).model
    load_into(network, state)
    from harness.train import Trainer

    evaluation = Trainer(network, dataset, config, torch.device("cpu")).evaluate("test")
    assert evaluation.acc == pytest.approx(row["test_acc"])


def test_named_keeps_only_the_named_orderings(space, tmp_path):
    chosen = settings(space, tmp_path, keep_weights="named")
    run_search(chosen)
    kept = links(chosen.url)
    by_id = trials_by_store_id(chosen.url)
    named = {i for i, t in by_id.items() if t.user_attrs["arch"] in NAMED}
    assert len(named) == 3 and set(kept) == named
    other = (set(by_id) - named).pop()
    assert "weights" not in by_id[other].user_attrs
    with Store(chosen.url) as store:
        with pytest.raises(WeightsError, match=f"trial {other} has no saved weights") as error:
            trial_weights(store, other)
        assert "\n" not in str(error.value) and "--retrain" in str(error.value)
        assert trials_with_weights(store, by_id) == named
        # A file gone from the folder (deleted by hand) is no weights, though still linked.
        gone = min(named)
        artifact_store(kept[gone]["location"], create=False).remove(kept[gone]["artifact_id"])
        assert trials_with_weights(store, by_id) == named - {gone}


def test_top_keeps_the_named_and_the_best_rows_and_deletes_the_rest(space, tmp_path):
    chosen = settings(space, tmp_path, top=1)  # keep_weights="top" is the default
    assert chosen.keep_weights == "top"
    result = run_search(chosen)
    kept = links(chosen.url)
    by_id = trials_by_store_id(chosen.url)
    named = {i for i, t in by_id.items() if t.user_attrs["arch"] in NAMED}
    (best,) = result.leaderboard.iloc[0]["trial_ids"]
    # The one sampled trial ran last: it is kept exactly when it is the best row.
    assert set(kept) == named | {best}
    folder = tmp_path / "artifacts"
    assert len(artifact_files(folder)) == len(kept)
    assert not (folder / ".staged").exists()


def test_top_uploads_a_staged_top_row_at_the_end_to_the_study(space, tmp_path, monkeypatch):
    """A staged trial that is a top row at the end: its Optuna trial is finished (frozen),
    so the study holds the link; the other staged files are deleted."""
    monkeypatch.setattr(keep_module.WeightsKeeper, "_in_top_now", lambda self, outcome: False)
    chosen = settings(space, tmp_path, top=4)  # every row is a top row at the end
    result = run_search(chosen)
    kept = links(chosen.url)
    by_id = trials_by_store_id(chosen.url)
    (sampled,) = [i for i, t in by_id.items() if t.user_attrs["arch"] not in NAMED]
    assert set(kept) == set(by_id)
    assert result.weights["uploaded"] == 1
    study = optuna.load_study(study_name="t", storage=chosen.url)
    (meta,) = optuna.artifacts.get_all_artifact_meta(study)
    assert meta.filename == f"trial-{sampled}-model.safetensors"
    assert meta.artifact_id == kept[sampled]["artifact_id"]
    assert by_id[sampled].user_attrs["weights"].startswith("staged")
    with Store(chosen.url) as store:
        state, metadata = trial_weights(store, sampled)
    assert metadata["trial_id"] == sampled and state


@pytest.mark.parametrize("in_top", [True, False])
def test_staged_files_a_killed_run_left_are_settled_by_the_next_run(
    space, tmp_path, monkeypatch, in_top
):
    monkeypatch.setattr(keep_module.WeightsKeeper, "_in_top_now", lambda self, outcome: False)
    monkeypatch.setattr(keep_module.WeightsKeeper, "settle", lambda self, study, board: {})
    chosen = settings(space, tmp_path, top=1)
    run_search(chosen)  # "killed" before its end: the sampled trial's file stays staged
    staged = staging_dir(chosen.artifacts, chosen.url, "t")
    assert len(artifact_files(staged)) == 1
    monkeypatch.undo()
    (sampled,) = [
        i for i, t in trials_by_store_id(chosen.url).items() if t.user_attrs["arch"] not in NAMED
    ]
    # The next run's end decides by its leaderboard's top rows: in them, or not.
    top = {sampled} if in_top else set()
    monkeypatch.setattr(keep_module.WeightsKeeper, "_top_ids", lambda self, board: top)
    run_search(chosen)  # nothing left to train: only the end runs
    assert not staged.exists()
    assert (sampled in links(chosen.url)) is in_top
    if in_top:  # linked to the study: its Optuna trial was finished long ago
        with Store(chosen.url) as store:
            state, _ = trial_weights(store, sampled)
        assert state


def test_none_saves_nothing(space, tmp_path):
    chosen = settings(space, tmp_path, keep_weights="none")
    run_search(chosen)
    assert links(chosen.url) == {}
    assert not (tmp_path / "artifacts").exists()


def test_a_reused_trial_shares_the_weights_and_its_new_optuna_trial_gets_a_copy(space, tmp_path):
    chosen = settings(space, tmp_path, keep_weights="named", trials=3)
    run_search(chosen)
    run_search(dataclasses.replace(chosen, study="again"))
    first, again = links(chosen.url), links(chosen.url, "again")
    assert len(first) == len(again) == 3
    by_id = trials_by_store_id(chosen.url, "again")
    storage = optuna.storages.RDBStorage(chosen.url)
    for trial_id, frozen in by_id.items():
        assert frozen.user_attrs["reused"] and frozen.user_attrs["weights"] == "kept"
        (meta,) = optuna.artifacts.get_all_artifact_meta(frozen, storage=storage)
        assert meta.artifact_id == again[trial_id]["artifact_id"]
    # The same bytes as the weights of the rows they reuse, in artifacts of their own.
    assert sorted(link["sha256"] for link in first.values()) == sorted(
        link["sha256"] for link in again.values()
    )
    assert not {link["artifact_id"] for link in first.values()} & {
        link["artifact_id"] for link in again.values()
    }


def test_copy_trial_shares_the_weights_link(tmp_path, record_trial):
    with Store(f"sqlite:///{tmp_path}/h.db") as store:
        source = record_trial(store, study="a").trial_id
        store.link_weights(
            source, artifact_id="abc", location="/x", filename="trial-1-model.safetensors",
            sha256="0" * 64, bytes=10,
        )  # fmt: skip
        other = store.ensure_study("b")
        copy = store.copy_trial(source, study_id=other)
        link = store.weights_of(copy)
        assert (link["artifact_id"], link["sha256"], link["location"]) == ("abc", "0" * 64, "/x")
        assert store.weights_of(source)["trial_id"] == source and link["trial_id"] == copy
        plain = record_trial(store, study="a", seed=2).trial_id
        assert store.weights_of(store.copy_trial(plain, study_id=other)) is None


def test_a_failed_save_keeps_the_trial_complete(space, tmp_path, monkeypatch, capfd):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(keep_module, "save_trial_weights", full_disk)
    chosen = settings(space, tmp_path, keep_weights="all", trials=1)
    run_search(chosen)
    assert links(chosen.url) == {}
    with Store(chosen.url) as store:
        (row,) = store.trials_frame(study="t").to_dict(orient="records")
    assert row["status"] == "complete" and row["test_acc"] is not None
    assert "weights not kept: OSError: [Errno 28] No space left on device" in row["reason"]
    (frozen,) = trials_by_store_id(chosen.url).values()
    assert frozen.state == optuna.trial.TrialState.COMPLETE
    assert frozen.user_attrs["weights"].startswith("not kept: OSError")
    assert "weights not kept" in capfd.readouterr().err


def kept_trial(space: str, tmp_path: Path) -> tuple[str, int, dict]:
    chosen = settings(space, tmp_path, keep_weights="named", trials=1)
    run_search(chosen)
    ((trial_id, link),) = links(chosen.url).items()
    return chosen.url, trial_id, link


def one_line_error(store: Store, trial_id: int, match: str, **kwargs) -> str:
    with pytest.raises(WeightsError, match=match) as error:
        trial_weights(store, trial_id, **kwargs)
    assert "\n" not in str(error.value)
    return str(error.value)


def test_trial_weights_errors_are_one_line(space, tmp_path):
    url, trial_id, link = kept_trial(space, tmp_path)
    path = Path(link["location"]) / link["artifact_id"]
    good = path.read_bytes()
    with Store(url) as store:
        one_line_error(store, 999, "no trial 999 in")
        path.write_bytes(good[: len(good) // 2])  # truncated
        one_line_error(store, trial_id, "not the file that was saved .*SHA-256")
        path.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))  # one bit changed
        one_line_error(store, trial_id, "not the file that was saved")
        garbage = b"\xff" * 64
        path.write_bytes(garbage)  # corrupt, with the digest recorded for it
        store.link_weights(
            trial_id, artifact_id=link["artifact_id"], location=link["location"],
            filename=link["filename"], sha256=hashlib.sha256(garbage).hexdigest(), bytes=64,
        )  # fmt: skip
        one_line_error(store, trial_id, "cannot be read as safetensors")
        path.unlink()  # gone
        one_line_error(store, trial_id, f"artifact {link['artifact_id']} .* is not in")
        assert trials_with_weights(store, [trial_id]) == frozenset()
        store.mark_weights_removed([link["artifact_id"]])
        one_line_error(store, trial_id, "removed by harness clean")
        # `location` overrides the recorded one.
        path.write_bytes(good)
        store.link_weights(trial_id, **{k: link[k] for k in
                           ("artifact_id", "location", "filename", "sha256", "bytes")})  # fmt: skip
        moved = tmp_path / "moved"
        moved.mkdir()
        os.replace(path, moved / link["artifact_id"])
        one_line_error(store, trial_id, "is not in")
        assert trial_weights(store, trial_id, location=str(moved))[1]["trial_id"] == trial_id


def test_locations(tmp_path, monkeypatch):
    monkeypatch.delenv("HARNESS_ARTIFACTS", raising=False)
    monkeypatch.chdir(tmp_path)
    assert default_location("sqlite:///results/harness.db") == str(tmp_path / "results/artifacts")
    assert default_location("sqlite:////data/x/h.db") == "/data/x/artifacts"
    assert default_location("postgresql://u@h/db") == str(tmp_path / "results/artifacts")
    assert resolve_location(None, "sqlite:///h.db") == str(tmp_path / "artifacts")
    monkeypatch.setenv("HARNESS_ARTIFACTS", "s3://bucket/")
    assert resolve_location(None, "sqlite:///h.db") == "s3://bucket"
    assert resolve_location("w", "sqlite:///h.db") == str(tmp_path / "w")
    for bad, match in (("s3://", "give a bucket"), ("gs://b/folder", "no folder"),
                       ("http://x", "give a folder, s3://BUCKET or gs://BUCKET")):  # fmt: skip
        with pytest.raises(ConfigError, match=match):
            resolve_location(bad, "sqlite:///h.db")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        artifact_store(str(tmp_path / "file"))
    # Two databases sharing one artifacts folder stage apart.
    assert staging_dir("/a", "sqlite:///x.db", "t") != staging_dir("/a", "sqlite:///y.db", "t")


def test_a_bucket_without_its_client_library_is_one_line(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec",
        lambda name, *a: None if name.split(".")[0] in ("boto3", "google") else real(name, *a),
    )  # fmt: skip
    with pytest.raises(ConfigError, match=r"s3://BUCKET needs boto3: pip install boto3"):
        artifact_store("s3://bucket")
    with pytest.raises(ConfigError, match="gs://BUCKET needs google-cloud-storage"):
        artifact_store("gs://bucket")


def test_version_4_file_reads_no_weights_and_gets_the_table_once(tmp_path, record_trial):
    """4 -> 5 only adds harness_weights: a fresh file without it, stamped 4, is what the
    harness of schema 4 wrote. Read-only, it has no weights and stays unchanged."""
    import sqlite3

    from harness.store import SCHEMA_VERSION, migrations

    path = tmp_path / "v4.db"
    url = f"sqlite:///{path}"
    with Store(url) as store:
        trial_id = record_trial(store, study="old").trial_id
    with sqlite3.connect(path) as connection:
        connection.execute("DROP TABLE harness_weights")
        connection.execute("UPDATE harness_meta SET value = '4' WHERE key = 'schema_version'")
    connection.close()
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with Store(url, create=False) as store:
        assert store.weights_links() == {} and store.weights_of(trial_id) is None
        assert trials_with_weights(store, [trial_id]) == frozenset()
        with pytest.raises(WeightsError, match=f"trial {trial_id} has no saved weights"):
            trial_weights(store, trial_id)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    ran = []
    real = migrations.STEPS[4]

    def counted(connection):
        ran.append(4)
        real(connection)

    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(migrations.STEPS, 4, counted)
        with Store(url) as store:
            store.link_weights(
                trial_id, artifact_id="a", location=str(tmp_path), filename="f",
                sha256="0" * 64, bytes=1,
            )  # fmt: skip
            assert store.weights_of(trial_id)["artifact_id"] == "a"
        Store(url).prepare().close()
    assert ran == [4] and SCHEMA_VERSION == 5


def test_clean_removes_the_weights_of_a_deleted_study_and_keeps_the_others(space, tmp_path, capsys):
    import json

    from harness.cli import main

    chosen = settings(space, tmp_path, keep_weights="all", trials=2)
    run_search(chosen)  # study t
    run_search(dataclasses.replace(chosen, study="b"))  # reused from t: copies of its own
    url, folder = chosen.url, tmp_path / "artifacts"
    first, second = links(url), links(url, "b")
    assert len(first) == len(second) == 2
    optuna.delete_study(study_name="t", storage=url)  # its artifacts stay in the folder
    staged = staging_dir(str(folder), url, "t")
    staged.mkdir(parents=True)
    (staged / "trial-1-model.safetensors").write_bytes(b"left by a killed run")
    (folder / "README").write_text("someone else's")
    stranger = folder / "00000000-0000-4000-8000-000000000000"
    stranger.write_bytes(b"another database's artifact")
    files_before = len(artifact_files(folder))
    args = ["clean", "--weights", "--db", url, "--artifacts", str(folder), "--json"]

    assert main(args) == 0  # shows, removes nothing
    shown = json.loads(capsys.readouterr().out)
    assert (shown["kept"], shown["unused"], shown["staged"], shown["unknown_files"]) == (2, 2, 1, 1)
    assert shown["unused_trial_ids"] == sorted(first)
    assert shown["removed"] == 0 and len(artifact_files(folder)) == files_before

    assert main([*args, "--yes"]) == 0
    done = json.loads(capsys.readouterr().out)
    assert done["removed"] == 2 and done["removed_staged"] == 1
    assert not staged.exists()
    assert (folder / "README").read_text() == "someone else's" and stranger.exists()
    assert len(artifact_files(folder)) == files_before - 2
    with Store(url) as store:
        assert len(store.trials_frame(study="t")) == 2  # results are never lost
        for trial_id in first:
            one_line_error(store, trial_id, "removed by harness clean")
        for trial_id in second:  # copies of t's files: their header says where they trained
            assert trial_weights(store, trial_id)[1]["study"] == "t"
    assert main(["clean", "--weights", "--db", url, "--artifacts", str(folder)]) == 0
    out = capsys.readouterr().out
    assert "kept weights: 2 in use" in out and "of deleted Optuna studies: 0" in out


def clean_json(capsys, url: str, *extra: str) -> dict:
    import json

    from harness.cli import main

    assert main(["clean", "--weights", "--db", url, "--json", *extra]) == 0
    return json.loads(capsys.readouterr().out)


def test_clean_leaves_the_staged_files_of_a_running_study_in_every_linked_folder(
    space, tmp_path, monkeypatch, capsys, record_trial
):
    """A `top` run stages finished trials and settles them at its end: while its study
    has a running trial, clean leaves them. The run used a folder of its own (not
    $HARNESS_ARTIFACTS, not the default): a plain clean looks there too."""
    from harness.cli import main

    monkeypatch.setattr(keep_module.WeightsKeeper, "_in_top_now", lambda self, outcome: False)
    monkeypatch.setattr(keep_module.WeightsKeeper, "settle", lambda self, study, board: {})
    folder = tmp_path / "elsewhere"
    chosen = settings(space, tmp_path, top=1, artifacts=str(folder))
    run_search(chosen)  # the sampled trial's file stays staged, as during the run
    url = chosen.url
    staged = staging_dir(str(folder), url, "t")
    assert len(artifact_files(staged)) == 1
    assert os.environ["HARNESS_ARTIFACTS"] != str(folder) != default_location(url)
    with Store(url) as store:
        (study_id,) = store.studies_frame().query("study == 't'")["study_id"]
        running = record_trial(
            store, study_id=int(study_id), status=None, optuna_trial_number=99, epochs=0
        ).trial_id

    shown = clean_json(capsys, url, "--yes")
    assert (shown["staged"], shown["staged_running"], shown["removed_staged"]) == (0, 1, 0)
    assert len(artifact_files(staged)) == 1
    assert main(["clean", "--weights", "--db", url]) == 0
    assert "left alone: 1 staged files of studies with a running trial" in capsys.readouterr().err

    with Store(url) as store:
        store.finish_trial(running, status="failed", reason="stopped")
    done = clean_json(capsys, url, "--yes")
    assert (done["staged"], done["staged_running"], done["removed_staged"]) == (1, 0, 1)
    assert not staged.exists()
    assert len(links(url)) == 3  # the named trials' artifacts are in use: kept


def test_reading_weights_makes_no_folder_and_clean_leaves_another_machines_links(
    space, tmp_path, capsys
):
    """A recorded folder or an --artifacts typo is not made by export; with a database
    shared by several machines, clean leaves the links to folders it does not have."""
    from harness.cli import main

    url, trial_id, link = kept_trial(space, tmp_path)
    folder = Path(link["location"])
    typo = tmp_path / "artifcats"
    out = str(tmp_path / "out")
    assert main(["export", str(trial_id), "--db", url, "--artifacts", str(typo), "--out", out]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"harness: error: artifacts folder {typo} does not exist (on this machine): pass "
        "--artifacts LOCATION where the weights are"
    ]
    assert not typo.exists()

    optuna.delete_study(study_name="t", storage=url)  # its weights are unused now
    away = tmp_path / "on-machine-a"
    folder.rename(away)  # clean runs on a machine that does not have the folder
    with Store(url) as store, pytest.raises(ConfigError, match="does not exist .on this machine"):
        trial_weights(store, trial_id)
    assert not folder.exists()
    shown = clean_json(capsys, url, "--yes")
    assert (shown["unused"], shown["removed"], shown["links_not_here"]) == (0, 0, 1)
    assert main(["clean", "--weights", "--db", url]) == 0
    assert "1 links to folders not on this machine, left alone" in capsys.readouterr().err
    assert not folder.exists() and links(url)[trial_id]["removed_at"] is None

    away.rename(folder)  # the machine that has them
    done = clean_json(capsys, url, "--yes")
    assert (done["removed"], done["links_not_here"]) == (1, 0)
    assert links(url)[trial_id]["removed_at"] is not None
    assert not (folder / link["artifact_id"]).exists()


class ClientError(Exception):
    """Like botocore's: neither an OSError nor ours, and many lines."""


def test_artifact_store_client_errors_are_one_line_and_removed_links_are_marked(
    space, tmp_path, monkeypatch, capsys
):
    from harness.cli import main

    chosen = settings(space, tmp_path, keep_weights="named", trials=2)
    run_search(chosen)
    url = chosen.url
    kept = links(url)
    assert len(kept) == 2
    real = artifact_store(str(tmp_path / "artifacts"), create=False)
    calls = []

    class FlakyStore:
        """Removes the first artifact, then the client fails."""

        def open_reader(self, artifact_id):
            raise ClientError("An error occurred (AccessDenied) when calling GetObject\nmore")

        def remove(self, artifact_id):
            calls.append(artifact_id)
            if len(calls) > 1:
                raise ClientError("An error occurred (SlowDown) when calling DeleteObject\nmore")
            real.remove(artifact_id)

    fake = FlakyStore()
    monkeypatch.setattr(artifacts_module, "artifact_store", lambda location, create=True: fake)
    monkeypatch.setattr(weights_gc, "artifact_store", lambda location, create=True: fake)
    trial_id = min(kept)
    argv = ["export", str(trial_id), "--db", url, "--out", str(tmp_path / "out"), "--json"]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.endswith(
        f"from {tmp_path / 'artifacts'}: ClientError: An error occurred (AccessDenied) when "
        "calling GetObject"
    )

    optuna.delete_study(study_name="t", storage=url)
    assert main(["clean", "--weights", "--db", url, "--yes"]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert f"cannot remove artifact {calls[1]} from {tmp_path / 'artifacts'}: ClientError" in line
    after = links(url)
    # The one removed before the error is marked removed; the other still says present.
    removed = {t for t, link in after.items() if link["removed_at"] is not None}
    assert {after[t]["artifact_id"] for t in removed} == {calls[0]} and len(removed) == 1
    assert not (tmp_path / "artifacts" / calls[0]).exists()
    assert (tmp_path / "artifacts" / calls[1]).exists()


def test_our_artifact_prefix_is_optunas():
    """We read Optuna's artifact links directly (harness.artifacts says why): an Optuna
    that renames its prefix shows up here."""
    from optuna.artifacts._upload import ARTIFACTS_ATTR_PREFIX

    assert OPTUNA_ARTIFACT_PREFIX == ARTIFACTS_ATTR_PREFIX


def test_workers_keep_weights_too(space, tmp_path):
    """--workers N: the policy and the store travel in the settings' JSON to each worker."""
    chosen = settings(space, tmp_path, keep_weights="all", trials=3, workers=2, heartbeat_s=1,
                      grace_s=3)  # fmt: skip
    run_search(chosen)
    kept = links(chosen.url)
    by_id = trials_by_store_id(chosen.url)
    # Two workers may start the last trial together: up to workers - 1 over --trials.
    assert set(kept) == set(by_id) and len(kept) in (3, 4)
    assert {link["location"] for link in kept.values()} == {str(tmp_path / "artifacts")}
    storage = optuna.storages.RDBStorage(chosen.url)
    for frozen in by_id.values():
        assert len(optuna.artifacts.get_all_artifact_meta(frozen, storage=storage)) == 1


def test_run_flags_are_checked_before_any_work(space, tmp_path, capsys):
    from harness.cli import main

    base = ["run", "--space", space, "--db", f"sqlite:///{tmp_path}/h.db", "--trials", "1",
            "--data", TINY_DATA, "--epochs", "1", "--no-report", "--quiet"]  # fmt: skip
    (tmp_path / "file").write_text("")
    assert main([*base, "--artifacts", str(tmp_path / "file")]) == 2
    assert "--artifacts" in capsys.readouterr().err and not (tmp_path / "h.db").exists()
    assert main([*base, "--artifacts", "ftp://x"]) == 2
    assert "give a folder, s3://BUCKET or gs://BUCKET" in capsys.readouterr().err
    assert main([*base, "--keep-weights", "best"]) == 2
    assert "--keep-weights" in capsys.readouterr().err
    with pytest.raises(ConfigError, match="--keep-weights must be one of all, top, named, none"):
        from harness.search import RunPlan

        RunPlan.resolve(settings(space, tmp_path, keep_weights="best"))


def test_the_run_says_where_the_weights_are_and_its_export_line_works(
    space, tmp_path, monkeypatch, capsys
):
    """The summary names the artifacts folder for optuna-dashboard and prints the export
    command of the study's best trial; that command, run as printed, writes the folder."""
    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HARNESS_ARTIFACTS")  # the default: artifacts/ beside the database
    db = f"sqlite:///{tmp_path}/h.db"
    argv = ["run", "--space", space, "--db", db, "--trials", "1", "--data", TINY_DATA,
            "--epochs", "1", "--max-batches", "2", "--no-report", "--no-progress",
            "--study", "t"]  # fmt: skip
    assert main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    artifacts = tmp_path / "artifacts"
    assert any(line.startswith("weights: ") and str(artifacts) in line for line in lines)
    (live,) = [line for line in lines if line.startswith("live view: ")]
    assert f"--artifact-dir {artifacts} " in live
    (export,) = [line for line in lines if line.startswith("export: ")]
    command = export.removeprefix("export: ").split("  (")[0]
    assert command == f"harness export --best --study t --db {db} --format onnx"
    assert main(shlex.split(command)[1:]) == 0
    written = list((tmp_path / "exports").iterdir())
    assert len(written) == 1 and (written[0] / "model.onnx").is_file()


def test_the_export_line_names_the_best_row_that_kept_weights(space, tmp_path):
    """`--best` when the top row kept its weights; otherwise the trial of the best row
    that did (a `named` run's top row is often a searched one without weights)."""
    from harness.commands.run import _export_line

    chosen = settings(space, tmp_path, keep_weights="all")
    result = run_search(chosen)
    board = result.leaderboard
    assert len(board) >= 2
    line = _export_line(result, chosen.url)
    assert line.startswith(f"harness export --best --study t --db {chosen.url} --format onnx")
    with Store(chosen.url) as store:
        top = store.weights_links([int(i) for i in board.iloc[0]["trial_ids"]])
        store.mark_weights_removed(link["artifact_id"] for link in top.values())
    second = board.iloc[1]
    line = _export_line(result, chosen.url)
    assert line.startswith(f"harness export {int(second['best_trial_id'])} --db {chosen.url} ")
    assert f"the best row with kept weights: rank {int(second['rank'])}" in line
    with Store(chosen.url) as store:
        rest = store.weights_links([int(i) for ids in board["trial_ids"] for i in ids])
        store.mark_weights_removed(link["artifact_id"] for link in rest.values())
    assert _export_line(result, chosen.url) == ""


def test_a_failed_upload_stays_staged_and_the_runs_end_uploads_it(
    space, tmp_path, monkeypatch, capfd
):
    real = keep_module.upload_weights
    calls: list[str] = []

    def flaky(*args, **kwargs):
        calls.append(type(kwargs["optuna_trial"]).__name__)
        if len(calls) == 1:
            raise ConnectionError("the bucket did not answer")
        return real(*args, **kwargs)

    monkeypatch.setattr(keep_module, "upload_weights", flaky)
    chosen = settings(space, tmp_path, keep_weights="all", trials=1)
    run_search(chosen)
    assert calls == ["Trial", "Study"]  # the trial's own try, then the run's end
    (trial_id,) = links(chosen.url)
    with Store(chosen.url) as store:
        row = store.trial(trial_id)
        state, _ = trial_weights(store, trial_id)
    assert row["status"] == "complete" and state
    assert "staged in" in row["reason"] and "ConnectionError" in row["reason"]
    assert not list((tmp_path / "artifacts" / ".staged").glob("*/*.safetensors"))
    assert "ConnectionError: the bucket did not answer" in capfd.readouterr().err
