"""The harness's own environment is the lock scripts/requirements.lock: the lock covers everything
pyproject.toml asks for, this environment holds exactly its pins, and scripts/setup.sh installs from
it, leaves an unchanged lock alone, reinstalls (saying so) when it changes, reinstalls only the
project when pyproject.toml alone changed, and refuses a lock whose hash pip cannot match (a real
pip against the package index, on a small lock)."""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import subprocess
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "scripts" / "requirements.lock"


def locked_blocks(text: str) -> dict[str, str]:
    """Each pin's whole block (``name==version ; marker \\`` and its hash lines), by canonical name and marker."""
    blocks: dict[str, str] = {}
    for block in re.split(r"\n(?=\S)", text):
        if block.startswith("#") or not block.strip():
            continue
        head = block.split("\\", 1)[0].strip()
        blocks[head] = block.strip() + "\n"
    return blocks


def applicable_pins() -> dict[str, str]:
    """name -> version of every pin whose environment marker holds for this Python."""
    pins = {}
    for head in locked_blocks(LOCK.read_text()):
        requirement = Requirement(head)
        if requirement.marker is None or requirement.marker.evaluate():
            (spec,) = requirement.specifier
            pins[canonicalize_name(requirement.name)] = spec.version
    return pins


def test_the_lock_satisfies_everything_pyproject_asks_for():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wanted = [
        *project["build-system"]["requires"],
        *project["project"]["dependencies"],
        *(r for extra in ("organizer", "test") for r in project["project"]["optional-dependencies"][extra]),
    ]
    pins = applicable_pins()
    for line in wanted:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{line} is not in {LOCK.name}: run scripts/lock.sh"
        assert requirement.specifier.contains(pins[name], prereleases=True), f"{LOCK.name} pins {name} {pins[name]}, pyproject asks {line}"
    assert all("--hash=sha256:" in block for block in locked_blocks(LOCK.read_text()).values())


def test_this_environment_holds_exactly_the_locked_versions():
    """The suite runs in what setup.sh installed: every pin at its locked version."""
    installed = {canonicalize_name(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()}
    differ = {name: (version, installed.get(name)) for name, version in applicable_pins().items() if installed.get(name) != version}
    assert not differ, f"installed packages differ from {LOCK.name} (locked, installed): {differ}; run scripts/setup.sh"


def run_setup(venv: Path, lock: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "HARNESS_VENV": str(venv), "HARNESS_ENV_LOCK": str(lock)}
    return subprocess.run([str(ROOT / "scripts" / "setup.sh"), "python"], capture_output=True, text=True, env=env, timeout=600)


def test_setup_installs_the_lock_and_reinstalls_when_it_changes(tmp_path):
    blocks = locked_blocks(LOCK.read_text())
    (setuptools,) = [b for head, b in blocks.items() if head.startswith("setuptools==")]
    (six,) = [b for head, b in blocks.items() if head.startswith("six==")]
    venv, lock = tmp_path / "venv", tmp_path / "requirements.lock"
    python = str(venv / "bin" / "python")

    lock.write_text(setuptools)
    first = run_setup(venv, lock)
    assert first.returncode == 0, first.stderr
    assert f"setup: creating {venv}" in first.stderr and f"from the lock {lock}" in first.stderr
    assert subprocess.run([python, "-c", "import harness, setuptools"], capture_output=True).returncode == 0
    assert subprocess.run([python, "-c", "import six"], capture_output=True).returncode != 0

    again = run_setup(venv, lock)
    assert again.returncode == 0 and again.stderr == ""  # unchanged: nothing installed, nothing said

    # pyproject.toml changed alone (as its stamp says): the project reinstalled into the same environment
    (dist_info,) = venv.glob("lib/python3.*/site-packages/harness-*.dist-info")
    (dist_info / "INSTALLER").unlink()  # pip writes it on every install of the project
    kept = venv / "kept-by-a-project-reinstall"
    kept.write_text("")
    (venv / ".harness-project").write_text("an older pyproject.toml\n")
    project = run_setup(venv, lock)
    assert project.returncode == 0 and project.stderr == "" and kept.exists()
    assert next(venv.glob("lib/python3.*/site-packages/harness-*.dist-info/INSTALLER")).exists()
    assert (venv / ".harness-project").read_text().strip() == hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()

    lock.write_text(setuptools + six)
    changed = run_setup(venv, lock)
    assert changed.returncode == 0, changed.stderr
    assert f"the environment lock {lock} changed since {venv} was installed: reinstalling" in changed.stderr
    assert not kept.exists()  # a new environment
    assert subprocess.run([python, "-c", "import six"], capture_output=True).returncode == 0

    lock.write_text(setuptools + re.sub(r"sha256:[0-9a-f]{64}", "sha256:" + "0" * 64, six))
    refused = run_setup(venv, lock)
    assert refused.returncode == 1
    assert f"installing the locked environment {lock} failed" in refused.stderr and "scripts/lock.sh" in refused.stderr
    assert "DO NOT MATCH THE HASHES" in refused.stderr
    assert not (venv / ".harness-installed").exists()  # the next run installs again, never trusts a half install
