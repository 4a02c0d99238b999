"""Packaging: the search spaces ship inside the package, so a non-editable install
(a wheel in a fresh virtual environment) lists them from any folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from importlib import metadata
from pathlib import Path

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SPACES = sorted(p.stem for p in (ROOT / "search_spaces").glob("*.toml"))


def test_pyproject_lists_every_package_and_maps_the_spaces():
    """`packages` is written out (a mapped package defeats packages.find): a new
    subpackage missing from it would be left out of every wheel."""
    config = PYPROJECT["tool"]["setuptools"]
    with_code = {
        ".".join(folder.relative_to(ROOT).parts)
        for folder in [ROOT / "harness", *(ROOT / "harness").rglob("*")]
        if folder.is_dir() and (folder / "__init__.py").is_file()
    }
    assert set(config["packages"]) == with_code | {"harness.search_spaces"}
    assert config["package-dir"] == {"harness.search_spaces": "search_spaces"}
    assert "*.toml" in config["package-data"]["harness.search_spaces"]
    assert SPACES, "no search_spaces/*.toml to ship"


def _build_requirements_missing() -> str | None:
    """Why an offline build (no build isolation) cannot run here, or None."""
    from packaging.requirements import Requirement

    for text in PYPROJECT["build-system"]["requires"]:
        requirement = Requirement(text)
        try:
            have = metadata.version(requirement.name)
        except metadata.PackageNotFoundError:
            return f"{text} is not installed (it is in the test extras)"
        if not requirement.specifier.contains(have, prereleases=True):
            return f"{text} is needed, {requirement.name} {have} is installed"
    return None


def _run(args: list[str], **kwargs) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(args, capture_output=True, text=True, timeout=120, **kwargs)
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
    return done


@pytest.mark.slow
def test_wheel_in_a_fresh_venv_lists_the_spaces(tmp_path):
    missing = _build_requirements_missing()
    if missing:
        pytest.skip(f"cannot build a wheel offline: {missing}")
    # Build from a copy: an in-tree build writes build/ and *.egg-info into the checkout.
    source = tmp_path / "src"
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("harness", "search_spaces"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", str(tmp_path / "dist"), str(source)])  # fmt: skip
    (wheel,) = (tmp_path / "dist").glob("harness-*.whl")

    # A fresh venv holds harness from the wheel only; its dependencies (torch, optuna, ...)
    # come from this environment's site-packages through PYTHONPATH, which does not run
    # .pth files, so the checkout's editable finder stays off.
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    bindir = venv / ("Scripts" if os.name == "nt" else "bin")
    python = bindir / ("python.exe" if os.name == "nt" else "python")
    _run([*pip, "--python", str(python), "install", "--no-deps", "--no-index", str(wheel)])

    elsewhere = tmp_path / "elsewhere"  # no search_spaces/ here
    elsewhere.mkdir()
    deps = {sysconfig.get_paths()[key] for key in ("purelib", "platlib")}
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_SPACES", "PYTHONHOME")}
    env.update(PYTHONPATH=os.pathsep.join(sorted(deps)), PYTHONNOUSERSITE="1")
    where = _run(
        [str(python), "-c", "import harness, sys; print(harness.__file__)"], cwd=elsewhere, env=env
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    harness = str(bindir / "harness")
    listed = _run([harness, "spaces"], cwd=elsewhere, env=env).stdout
    assert all(f"\n{name} " in listed for name in SPACES), listed
    shown = _run([harness, "spaces", "show", "rir_split", "--no-flops"], cwd=elsewhere, env=env)
    assert str(venv) in shown.stdout and "32 distinct architectures" in shown.stdout, shown.stdout
