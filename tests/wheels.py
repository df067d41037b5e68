"""Build the project's wheel from a copy of the checkout, and run commands in another virtual
environment as a user would there (tests/test_package.py, tests/test_light_install.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# What a build must not see or copy: environments, caches, work directories, earlier builds.
NOT_SOURCES = shutil.ignore_patterns(
    ".git", ".venv", ".harness", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache", ".ruff_cache"
)


def build_wheel(tmp: Path) -> Path:
    """The wheel built from a copy of the checkout under ``tmp`` (the checkout itself stays untouched)."""
    source = tmp / "source"
    shutil.copytree(ROOT, source, ignore=NOT_SOURCES)
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp / "dist"), str(source)],
        cwd=tmp,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (wheel,) = (tmp / "dist").glob("harness-*.whl")
    return wheel


def run_in(
    venv: Path, *args: str, cwd: Path, home: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``args`` with ``venv``'s bin first on PATH and none of this test run's harness settings (``env`` added)."""
    settings = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "HARNESS_HOME", "HARNESS_CONFIG_DIR", "HARNESS_CONFIG_PATH")
    }
    settings["PATH"] = f"{venv / 'bin'}{os.pathsep}{settings.get('PATH', '')}"
    if home is not None:
        settings["HARNESS_HOME"] = str(home)
    settings.update(env or {})
    return subprocess.run(list(args), cwd=cwd, env=settings, capture_output=True, text=True, timeout=timeout)
