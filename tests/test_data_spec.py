"""Dataset spec strings: parsing, normalisation, and the errors a user sees."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data import parse_spec
from harness.data.spec import KINDS
from harness.errors import DataError


def test_default_is_synthetic_with_every_option_spelled_out():
    spec = parse_spec("synthetic")
    assert spec.kind == "synthetic" and spec.path is None
    assert str(spec) == "synthetic?n=3000&seed=0&difficulty=0.5&size=48&prior=uniform&dedup=0"
    assert parse_spec("") == spec


def test_options_are_typed_and_normalised():
    spec = parse_spec("synthetic?difficulty=0.25&seed=7&n=700&dedup=yes")
    assert (spec["n"], spec["seed"], spec["difficulty"], spec["dedup"]) == (700, 7, 0.25, True)
    assert str(spec) == "synthetic?n=700&seed=7&difficulty=0.25&size=48&prior=uniform&dedup=1"


@pytest.mark.parametrize(
    "text",
    [
        "synthetic?n=500&seed=2",
        "fer2013:/data/fer2013.csv?dedup=1",
        "ferplus:/data/ferplus?mode=crossentropy",
        "ckplus:/data/CK+48?folds=5&fold=4&frames=1&neutral=1",
        "folder:/data/faces?size=64",
    ],
)
def test_normalised_spec_parses_to_the_same_spec(text):
    spec = parse_spec(text)
    assert parse_spec(str(spec)) == spec


def test_home_is_expanded_and_paths_are_absolute(monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert parse_spec("fer2013:~/fer2013.csv").path == tmp_path / "fer2013.csv"
    monkeypatch.chdir(tmp_path)
    assert parse_spec("folder:faces").path == tmp_path / "faces"
    assert parse_spec("ckplus:~/CK+48?folds=10").path == Path(tmp_path, "CK+48")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mnist", "unknown dataset kind 'mnist'"),
        (
            "synthetic?colour=1",
            "unknown option 'colour' for synthetic (allowed: n, seed, difficulty",
        ),
        ("synthetic?n=many", "option 'n' of synthetic must be an integer"),
        ("synthetic?difficulty=2", "must be in [0, 1]"),
        ("synthetic?n", "needs a value"),
        ("synthetic?seed=1&seed=2", "given twice"),
        ("synthetic:/tmp/x", "synthetic takes no path"),
        ("fer2013", "fer2013 needs a path"),
        ("ferplus:/x?mode=vote", "must be one of majority, probability, crossentropy, all10"),
        ("ckplus:/x?folds=5&fold=5", "fold must be below folds (5)"),
        ("ckplus:/x?neutral=maybe", "must be 0 or 1"),
    ],
)
def test_bad_specs_say_what_is_allowed(text, message):
    with pytest.raises(DataError) as caught:
        parse_spec(text)
    assert message in str(caught.value)


def test_unknown_kind_lists_the_known_ones():
    with pytest.raises(DataError, match="known: " + ", ".join(KINDS)):
        parse_spec("cifar:/x")
