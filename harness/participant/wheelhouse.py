"""The base image's wheelhouse: Python wheels downloaded on the host for the IMAGE's Python and the
host's architecture, so that image builds run without network.

With a lock (``images.lock``, by default configs/images/wheelhouse.lock) the lock drives the
download: every locked wheel is fetched by its exact name and version with ``--no-deps
--require-hashes``, so the same lock gives the same bytes whatever the index publishes later.
``harness images lock`` is the one deliberate way to move it: it resolves ``images.packages``
afresh and writes every wheel's file name and sha256.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from importlib.resources import files
from pathlib import Path

from harness.participant.errors import ImageBuildError

DEFAULT_PYTHON = "3.11"  # images.python when the configuration does not say
# The bundled configs/images/ folder, where `images.lock` names a file unless it is a path.
LOCKS_DIR = Path(str(files("harness.configs"))) / "images"
MOVE_LOCK = "move the lock deliberately with `harness images lock` (or set images.lock=null to skip it)"


def wheel_platforms(machine: str | None = None) -> list[str]:
    """pip ``--platform`` tags for Linux wheels that run on this host's architecture.

    Images are built for the host's architecture; every base we build FROM (Debian bookworm,
    python:3.X-slim) has glibc 2.28 or newer, so manylinux_2_17 (manylinux2014) up to
    manylinux_2_28 wheels run there. pip does not widen ``manylinux_2_28`` to the older glibc
    tags itself, hence the list (``manylinux2014`` widens to manylinux2010 and manylinux1).
    Pure-Python wheels (``py3-none-any``) are always accepted.
    """
    arch = (machine or platform.machine()).lower()
    arch = {"amd64": "x86_64", "arm64": "aarch64"}.get(arch, arch)
    return [*(f"manylinux_2_{glibc}_{arch}" for glibc in range(28, 16, -1)), f"manylinux2014_{arch}"]


# pip picks wheels by the --python-version/--abi/--platform it is given, but evaluates environment
# markers (`setuptools; python_version >= "3.12"` in torch) for the interpreter running it. This
# runs pip with the markers' Python version set to the target's, so a 3.12 host fetches exactly
# what a 3.11 image installs. It uses pip's vendored `packaging`; without it pip runs as it is.
_PIP_FOR_TARGET_PYTHON = """
import sys
version = sys.argv.pop(1)
try:
    from pip._vendor.packaging import markers
except ImportError:
    markers = None
if markers is not None and hasattr(markers, "default_environment"):
    host_environment = markers.default_environment

    def target_environment():
        env = dict(host_environment())
        env.update(
            python_version=version,
            python_full_version=version + ".0",
            implementation_name="cpython",
            implementation_version=version + ".0",
            platform_python_implementation="CPython",
        )
        return env

    markers.default_environment = target_environment
from pip._internal.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def pip_download_command(requirements: list[str], dest: Path, python: str, platforms: list[str]) -> list[str]:
    """``pip download`` of binary wheels for CPython ``python`` on ``platforms``, run by the host's
    Python; ``requirements`` are pip's arguments (packages, or ``-r FILE`` and its options)."""
    abi = "cp" + python.replace(".", "")
    return [
        sys.executable,
        "-c",
        _PIP_FOR_TARGET_PYTHON,
        python,
        "download",
        "--only-binary=:all:",
        "--python-version",
        python,
        "--implementation",
        "cp",
        "--abi",
        abi,
        *(arg for tag in platforms for arg in ("--platform", tag)),
        "-d",
        str(dest),
        *requirements,
    ]


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lock_path(cfg) -> Path | None:
    """The wheelhouse lock ``images.lock`` names: a path, or a file name in the bundled configs/images/."""
    if not cfg.get("lock"):
        return None
    path = Path(str(cfg.lock)).expanduser()
    return path if path.is_absolute() or path.parent != Path(".") else LOCKS_DIR / path


def _arch() -> str:
    return wheel_platforms()[0].split("_", 3)[-1]


def make_lock(wheelhouse: Path, packages, python: str) -> dict:
    """The lock of a downloaded wheelhouse: what was asked for, and every wheel's file name and sha256."""
    wheels = sorted(wheelhouse.glob("*.whl"))
    return {
        "python": python,
        "arch": _arch(),
        "packages": [str(p) for p in packages],
        "wheels": [{"file": w.name, "sha256": sha256_file(w)} for w in wheels],
    }


def read_lock(path: Path) -> dict:
    try:
        lock = json.loads(Path(path).read_text())
        if not isinstance(lock.get("wheels"), list):
            raise ValueError("no 'wheels' list")
        for wheel in lock["wheels"]:
            if not re.fullmatch(r"[^/\\\s]+\.whl", str(wheel.get("file"))) or not re.fullmatch(r"[0-9a-f]{64}", str(wheel.get("sha256"))):
                raise ValueError(f"the entry {wheel} is not a wheel's file name and sha256")
        return lock
    except (OSError, ValueError, AttributeError) as e:
        raise ImageBuildError(f"the wheelhouse lock {path} cannot be read: {e}") from None


def wheel_requirement(file: str) -> str:
    """``name==version`` of a wheel's file name (``torch-2.13.0+cpu-cp311-…whl`` -> ``torch==2.13.0+cpu``)."""
    name, version = file.split("-")[:2]
    return f"{name}=={version}"


def locked_requirements(lock: dict) -> str:
    """requirements.txt that asks for exactly the locked wheels, each by name, version and sha256."""
    return "".join(f"{wheel_requirement(w['file'])} --hash=sha256:{w['sha256']}\n" for w in lock["wheels"])


def _check_request(lock: dict, lock_file: Path, packages, python: str) -> None:
    asked = {"python": python, "arch": _arch(), "packages": [str(p) for p in packages]}
    locked = {k: lock.get(k) for k in asked}
    if locked != asked:
        raise ImageBuildError(f"the wheelhouse lock {lock_file} is for {locked}, this build asks for {asked}: {MOVE_LOCK}")


def verify_wheelhouse(wheelhouse: Path, lock_file: Path, packages, python: str) -> None:
    """Check the wheelhouse against the lock: the same request, the same wheels, the same sha256s."""
    lock = read_lock(lock_file)
    _check_request(lock, lock_file, packages, python)
    want = {w["file"]: w["sha256"] for w in lock["wheels"]}
    have = {w.name: w for w in wheelhouse.glob("*.whl")}
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            raise ImageBuildError(f"wheelhouse lock {lock_file}: {name} is locked but was not downloaded: {MOVE_LOCK}")
        if name not in want:
            raise ImageBuildError(f"wheelhouse lock {lock_file}: {name} was downloaded but is not in the lock: {MOVE_LOCK}")
        digest = sha256_file(have[name])
        if digest != want[name]:
            raise ImageBuildError(
                f"wheelhouse lock {lock_file}: {name} has sha256 {digest}, the lock says {want[name]} "
                f"(a different build under the same file name: check the index it came from, or {MOVE_LOCK})"
            )


def _image_requirements(wheelhouse: Path, packages, hashed: bool) -> str:
    """requirements.txt for the image: every wheel pinned with its sha256 (pip then installs in
    hash-checking mode) when the wheelhouse is locked, else the packages as asked."""
    if not hashed:
        return "\n".join(packages) + "\n"
    return "".join(f"{wheel_requirement(w.name)} --hash=sha256:{sha256_file(w)}\n" for w in sorted(wheelhouse.glob("*.whl")))


def download_wheels(packages, dest: Path, python: str) -> None:
    """Resolve ``packages`` afresh (their dependencies as the index serves them today) into ``dest``."""
    proc = subprocess.run(pip_download_command(list(packages), dest, python, wheel_platforms()), capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"pip download {' '.join(packages)} (for Python {python}) failed:\n{proc.stderr[-3000:]}")


def download_locked(lock: dict, lock_file: Path, dest: Path, python: str) -> None:
    """Fetch exactly the locked wheels into ``dest``: by name and version, no dependency resolution,
    each checked against its sha256. A wheel the index no longer serves, or serves with other
    bytes, is one line that names it and the fix."""
    requirements = dest.parent / (dest.name + ".requirements.txt")
    requirements.write_text(locked_requirements(lock))
    try:
        command = pip_download_command(["--no-deps", "--require-hashes", "-r", str(requirements)], dest, python, wheel_platforms())
        proc = subprocess.run(command, capture_output=True, text=True)
    finally:
        requirements.unlink(missing_ok=True)
    if proc.returncode != 0:
        raise ImageBuildError(_locked_download_failure(lock, lock_file, proc.stderr))


def _locked_download_failure(lock: dict, lock_file: Path, stderr: str) -> str:
    files_by_requirement = {wheel_requirement(w["file"]).lower(): w for w in lock["wheels"]}

    def wheel_of(requirement: str) -> dict:
        return files_by_requirement.get(requirement.lower(), {"file": requirement, "sha256": "?"})

    missing = re.search(r"No matching distribution found for (\S+)", stderr)
    if missing:
        wheel = wheel_of(missing.group(1))
        return (
            f"wheelhouse lock {lock_file}: {wheel['file']} is not served by the package index pip uses: "
            f"point pip at an index that serves it (PIP_INDEX_URL, PIP_FIND_LINKS), or {MOVE_LOCK}"
        )
    mismatch = re.search(r"^\s*(\S+==\S+) from .*?\n\s*Expected sha256 (\w+)\n\s*Got\s+(\w+)", stderr, re.MULTILINE)
    if mismatch:
        wheel = wheel_of(mismatch.group(1))
        return (
            f"wheelhouse lock {lock_file}: {wheel['file']} as the index serves it now has sha256 {mismatch.group(3)}, "
            f"the lock says {mismatch.group(2)}: the index serves other bytes under that name; check the index, or {MOVE_LOCK}"
        )
    last = next((line.strip() for line in reversed(stderr.splitlines()) if line.strip()), "no message")
    return f"wheelhouse lock {lock_file}: pip could not download the locked wheels: {last}"


def prepare_wheelhouse(packages, wheelhouse: Path, log=print, python: str = DEFAULT_PYTHON, lock: Path | None = None) -> Path:
    """The wheelhouse of ``packages`` for the image's Python, downloaded unless already there.

    With a ``lock`` the locked wheels are fetched (and nothing else), verified against the lock on
    every build, and requirements.txt pins each by sha256; without one ``packages`` are resolved
    afresh. The stamp file records the packages, the Python version, the platform tags and the
    lock's sha256: a change of any of them downloads again.
    """
    packages = [str(p) for p in packages]
    platforms = wheel_platforms()
    stamp = wheelhouse / ".packages.json"
    lock_digest = sha256_file(lock) if lock is not None and Path(lock).is_file() else None
    if lock is not None and lock_digest is None:
        raise ImageBuildError(f"the wheelhouse lock {lock} does not exist: write it with `harness images lock`")
    locked = None
    if lock is not None:
        locked = read_lock(lock)
        _check_request(locked, lock, packages, python)
    want = json.dumps({"packages": packages, "python": python, "platforms": platforms, "lock": lock_digest}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == want:
        if lock is not None:
            verify_wheelhouse(wheelhouse, lock, packages, python)
        log(f"wheelhouse: {wheelhouse} up to date (Python {python}{', locked' if lock else ''})")
        return wheelhouse
    start = time.monotonic()
    tmp = wheelhouse.with_name(wheelhouse.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    if locked is not None:
        log(f"wheelhouse: downloading the {len(locked['wheels'])} wheels of {lock} for CPython {python} on {_arch()}")
        download_locked(locked, lock, tmp, python)
        verify_wheelhouse(tmp, lock, packages, python)
    else:
        log(f"wheelhouse: downloading {' '.join(packages)} for CPython {python} on {_arch()} (no lock: resolved afresh)")
        download_wheels(packages, tmp, python)
    (tmp / "requirements.txt").write_text(_image_requirements(tmp, packages, hashed=lock is not None))
    (tmp / ".packages.json").write_text(want)
    shutil.rmtree(wheelhouse, ignore_errors=True)
    os.rename(tmp, wheelhouse)
    count = len(list(wheelhouse.glob("*.whl")))
    log(f"wheelhouse: {count} wheels in {time.monotonic() - start:.1f}s{', verified against ' + str(lock) if lock else ''}")
    return wheelhouse


def write_lock(cfg, output: Path | None = None, python: str = DEFAULT_PYTHON, log=print) -> Path:
    """`harness images lock`: resolve ``images.packages`` afresh, download them and write their lock."""
    output = Path(output) if output else lock_path(cfg)
    if output is None:
        raise ImageBuildError("images.lock is null: say where to write the lock (--output FILE)")
    packages = [str(p) for p in cfg.packages]
    with tempfile.TemporaryDirectory(prefix="harness-lock-") as tmp:
        download_wheels(packages, Path(tmp), python)
        lock = make_lock(Path(tmp), packages, python)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(lock, indent=1) + "\n")
    log(f"lock: {len(lock['wheels'])} wheels for CPython {python} on {lock['arch']} written to {output}")
    return output
