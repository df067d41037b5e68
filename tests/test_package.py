"""The wheel, built from this checkout and installed outside it, is the whole harness.

The wheel is built (``python -m build --wheel``) from a copy of the checkout, installed with
``--no-deps`` into a fresh virtual environment in a temporary directory, and run there with the
working directory outside the repository.

Installing the wheel's dependencies (ray, mlflow, scikit-learn, ...) from PyPI into a fresh
environment takes minutes, so the fresh environment borrows the ones already installed for the
tests: a ``.pth`` file lists this interpreter's site-packages directories as plain paths. A plain
path in a ``.pth`` file only extends ``sys.path``; the ``.pth`` files inside that directory (among
them the editable install of this checkout, ``__editable__.harness-*.pth``) are not run, so the
``harness`` the fresh environment imports is the wheel's, which the test checks. A full install
with real dependencies is checked by hand (see images/README.md and the README's "The two commands").
"""

from __future__ import annotations

import platform
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest
from wheels import ROOT, build_wheel, run_in


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    return build_wheel(tmp_path_factory.mktemp("wheel"))


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment outside the checkout with only the wheel installed (plus borrowed dependencies)."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    purelib = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], check=True, capture_output=True, text=True
        ).stdout.strip()
    )
    borrowed = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib"), *site.getsitepackages()])
    (purelib / "borrowed-test-dependencies.pth").write_text("".join(f"{path}\n" for path in borrowed if Path(path).is_dir()))
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return venv


def test_wheel_holds_harness_alone_with_its_data_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    top = {name.split("/")[0] for name in names}
    assert {t for t in top if not t.endswith(".dist-info")} == {"harness"}, sorted(top)
    assert len([t for t in top if t.endswith(".dist-info")]) == 1
    wanted = {"harness/records/schema/evaluation-1.schema.json", "harness/images/README.md", "harness/configs/images/wheelhouse.lock"}
    wanted |= {f"harness/configs/{p.relative_to(ROOT / 'configs')}" for p in (ROOT / "configs").rglob("*.yaml")}
    wanted |= {f"harness/images/{p.relative_to(ROOT / 'images')}" for p in (ROOT / "images").glob("*/Dockerfile")}
    wanted |= {f"harness/images/{p.relative_to(ROOT / 'images')}" for p in (ROOT / "images").glob("*/*.py")}
    assert {
        "harness/configs/competition/digits.yaml",
        "harness/configs/images/default.yaml",
        "harness/images/base/Dockerfile",
        "harness/images/cuda/Dockerfile",
        "harness/images/sample-submission/Dockerfile",
        "harness/images/sample-submission/main.py",
    } <= wanted
    assert not wanted - names, sorted(wanted - names)


def test_installed_wheel_runs_outside_the_checkout(installed, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    where = run_in(installed, str(installed / "bin" / "python"), "-c", "import harness; print(harness.__file__)", cwd=work)
    assert where.returncode == 0, where.stderr
    assert Path(where.stdout.strip()).is_relative_to(installed), f"harness imported from {where.stdout.strip()}, not the wheel"

    # Needs the bundled configs (Hydra composes competition/digits.yaml) and the data builder.
    home = tmp_path / "home"
    proc = run_in(installed, "harness", "data", "prepare", "digits", cwd=work, home=home)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = home / "competitions" / "digits" / "data"
    assert (data / "train" / "train.csv").is_file() and (data / "test" / "test.csv").is_file()
    assert len(list((data / "train" / "images").glob("*.png"))) == 1257


def test_installed_version(installed, wheel, tmp_path):
    proc = run_in(installed, "harness", "--version", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == f"harness {wheel.name.split('-')[1]}"


def test_only_the_harness_namespace_is_importable(installed, tmp_path):
    imports = "import harness.limits, harness.runner, harness.configs, harness.images, harness.cli"
    proc = run_in(installed, str(installed / "bin" / "python"), "-c", imports, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    for name in ("limits", "runner", "configs", "images"):
        proc = run_in(installed, str(installed / "bin" / "python"), "-c", f"import {name}", cwd=tmp_path)
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, f"`import {name}` works in the fresh environment"


def test_wheelhouse_is_for_the_image_python_not_the_host(tmp_path):
    """`images build` downloads wheels for ``images.python`` on this machine's architecture, whatever
    Python runs the harness, and again when it changes: a real `pip download` of a small package
    that ships one binary wheel per CPython version."""
    from harness.participant import images
    from harness.participant.wheelhouse import prepare_wheelhouse

    host = f"{sys.version_info.major}.{sys.version_info.minor}"
    target = "3.13" if host != "3.13" else "3.12"
    wheelhouse = tmp_path / "wheelhouse"
    prepare_wheelhouse(["markupsafe==3.0.2"], wheelhouse, log=lambda line: None, python=target)
    (wheel,) = wheelhouse.glob("*.whl")
    abi = "cp" + target.replace(".", "")
    assert f"-{abi}-{abi}-" in wheel.name and "manylinux" in wheel.name and platform.machine() in wheel.name
    prepare_wheelhouse(["markupsafe==3.0.2"], wheelhouse, log=lambda line: None, python=target)
    assert wheel.exists()  # up to date: not downloaded again
    prepare_wheelhouse(["markupsafe==3.0.2"], wheelhouse, log=lambda line: None, python=host)
    assert [w.name for w in wheelhouse.glob("*.whl")] == [wheel.name.replace(abi, "cp" + host.replace(".", ""))]
    assert images.base_tag({"python": "3.13"}) == "harness/python:3.13" and images.base_tag({}) == images.BASE_TAG
