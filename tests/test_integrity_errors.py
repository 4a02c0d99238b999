"""Errors are handled where they mean one named thing, and otherwise reach the user
(issue 23): nothing is swallowed because it might have been something harmless."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import numpy as np
import optuna
import pytest

from harness.data.cache import Cache
from harness.search import load_space
from harness.search.runner import _params_key
from harness.search.study import stored_arch
from harness.store import Store


def test_parameters_of_another_space_version_are_compared_as_they_are():
    space = load_space("rir_orderings")  # 16 positions b01..b16
    params = {f"b{i:02d}": "R" for i in range(1, 17)}
    assert stored_arch(space, params) is not None
    older = {f"b{i:02d}": "R" for i in range(1, 9)}  # a space of 8 positions
    assert stored_arch(space, older) is None
    assert _params_key(older, space) == _params_key(older)


def test_a_bug_reading_parameters_is_not_taken_for_another_space_version():
    def broken(params):
        raise TypeError("unsupported operand type(s)")

    space = SimpleNamespace(arch_from_params=broken, encoding=SimpleNamespace(names=list))
    with pytest.raises(TypeError):
        _params_key({"b01": "R"}, space)


@pytest.fixture
def searched(tmp_path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    Store(url).close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=url)
    study.optimize(lambda t: t.suggest_float("lr", 0, 1), n_trials=4)
    with Store(url) as store:
        yield store


def _importances_raise(monkeypatch, error: Exception) -> None:
    # The module itself: `optuna.visualization` is a lazy proxy until first imported.
    import optuna.visualization as visualization

    def plot(*args, **kwargs):
        raise error

    monkeypatch.setattr(visualization, "plot_param_importances", plot)


def test_a_plot_optuna_refuses_is_a_note(searched, monkeypatch):
    from harness.report.optuna_view import optuna_view

    _importances_raise(monkeypatch, RuntimeError("Encountered zero total variance in all trees."))
    view = optuna_view(searched, "s")
    assert [title for title, _ in view.figures] == ["optimisation history"]
    assert view.note == "parameter importances: Encountered zero total variance in all trees."


def test_a_bug_while_plotting_is_not_a_note(searched, monkeypatch):
    from harness.report.optuna_view import optuna_view

    _importances_raise(monkeypatch, TypeError("'NoneType' object is not subscriptable"))
    with pytest.raises(TypeError):
        optuna_view(searched, "s")


def test_a_broken_install_does_not_silently_skip_the_report(tmp_path, monkeypatch):
    from harness.commands.run import _write_report

    monkeypatch.setitem(sys.modules, "harness.report", None)  # import fails
    url = f"sqlite:///{tmp_path / 'r.db'}"
    with pytest.raises(ImportError):
        _write_report(url, url, "s")


def test_a_cache_that_cannot_be_written_says_so_and_the_data_still_load(tmp_path, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would be")
    cache = Cache(folder=blocker / "cache")
    arrays = {"x": np.arange(3)}
    got = cache.get("demo", {"k": 1}, lambda: arrays)
    assert got is arrays
    err = capsys.readouterr().err
    assert err.startswith(f"harness: data cache not written to {blocker / 'cache'} (")
    assert "parsed again" in err and len(err.splitlines()) == 1


def test_the_seed_is_not_ranked_among_the_parameter_importances(tmp_path):
    from harness.report.optuna_view import optuna_view
    from harness.search.study import SEED_PARAM

    url = f"sqlite:///{tmp_path / 'r.db'}"
    Store(url).close()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(study_name="s", storage=url)

    def objective(trial):  # the seed moves the result, as seed noise does
        return trial.suggest_float("lr", 0, 1) + trial.suggest_int(SEED_PARAM, 0, 9)

    study.optimize(objective, n_trials=8)
    with Store(url) as store:
        view = optuna_view(store, "s")
    (importances,) = [figure for title, figure in view.figures if title == "parameter importances"]
    shown = {label for bar in importances.data for label in bar.y}
    assert shown == {"lr"}
