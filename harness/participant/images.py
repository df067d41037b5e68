"""`harness images build`: the participant base image and the sample submission, offline.

harness/python:<X.Y> is built FROM a plain Python X.Y image (``cfg.python``, default 3.11):
``cfg.base`` (python:3.11-slim) when it is present or can be pulled, otherwise a Debian rootfs
bootstrapped with mmdebstrap and imported as harness/os-base:<suite> (bookworm's python3 is 3.11).
Python packages come from a wheelhouse downloaded on the host (``<home>/wheelhouse``) for the
IMAGE's Python and the host's architecture, whatever Python the host runs; the builds themselves
run without network.
"""

from __future__ import annotations

import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from importlib.resources import files
from pathlib import Path

import docker
import docker.errors

# The Dockerfiles and the sample submission ship inside the package (the top-level images/ folder).
IMAGES_DIR = Path(str(files("harness.images")))
DEFAULT_PYTHON = "3.11"  # images.python when the configuration does not say
BASE_TAG = f"harness/python:{DEFAULT_PYTHON}"  # the participant base image of the default configuration
SAMPLE_TAG = "harness/sample-submission:latest"
OS_BASE_REPO = "harness/os-base"


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says why and what to do."""


def image_python(cfg) -> str:
    """The participant image's Python version, "X.Y", from ``images.python``."""
    value = str(cfg.get("python", DEFAULT_PYTHON))
    if not re.fullmatch(r"3\.\d{1,2}", value) or int(value.split(".")[1]) < 8:
        raise ImageBuildError(f'images.python: {value!r} is not a Python version like "3.11" (quote it in YAML: 3.10 reads as 3.1)')
    return value


def base_tag(cfg) -> str:
    """The participant base image's tag: harness/python:<images.python>."""
    return f"harness/python:{image_python(cfg)}"


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


def pip_download_command(packages, dest: Path, python: str, platforms: list[str]) -> list[str]:
    """``pip download`` of binary wheels for CPython ``python`` on ``platforms``, run by the host's Python."""
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
        *packages,
    ]


def _client() -> docker.DockerClient:
    return docker.from_env(timeout=900)  # a silent `pip install torch` step outlasts the default 60 s


def _exists(client: docker.DockerClient, ref: str) -> bool:
    try:
        client.images.get(ref)
        return True
    except docker.errors.ImageNotFound:
        return False


def _pull(client: docker.DockerClient, ref: str, timeout_s: float) -> bool:
    """Pull ``ref`` in a daemon thread; False on error or when it takes longer than timeout_s."""
    done: dict[str, bool] = {}

    def pull() -> None:
        try:
            client.images.pull(ref)
            done["ok"] = True
        except Exception:  # noqa: BLE001 - no registry, no network, unknown image: all mean "no"
            done["ok"] = False

    thread = threading.Thread(target=pull, daemon=True)
    thread.start()
    thread.join(timeout_s)
    return done.get("ok", False)


def debian_mirror() -> str:
    """The host's Debian mirror: deb822 sources first, then sources.list, then deb.debian.org."""
    sources = Path("/etc/apt/sources.list.d/debian.sources")
    if sources.is_file():
        m = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    sources = Path("/etc/apt/sources.list")
    if sources.is_file():
        m = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)", sources.read_text(), re.MULTILINE)
        if m:
            return m.group(1)
    return "http://deb.debian.org/debian"


def ensure_os_base(cfg, log=print) -> str:
    """The tag of a plain Python image (no extra packages) to build harness/python FROM.

    Its Python must be ``images.python``: the base image's build checks it (bookworm has 3.11).
    """
    client = _client()
    if cfg.base and _exists(client, cfg.base):
        log(f"os base: {cfg.base} (local)")
        return cfg.base
    if cfg.base and cfg.pull_timeout_s and _pull(client, cfg.base, float(cfg.pull_timeout_s)):
        log(f"os base: {cfg.base} (pulled)")
        return cfg.base
    tag = f"{OS_BASE_REPO}:{cfg.debian_suite}"
    if _exists(client, tag):
        log(f"os base: {tag} (local)")
        return tag
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(
            f"{cfg.base} is neither present nor pullable, and mmdebstrap is missing to bootstrap "
            f"{tag} from Debian packages: install it (`apt-get install -y mmdebstrap`) or make "
            f"{cfg.base} available (a registry, or `docker load`)."
        )
    mirror = cfg.debian_mirror or debian_mirror()
    log(f"os base: bootstrapping {tag} from {mirror} with mmdebstrap")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        cmd = [
            "mmdebstrap",
            "--variant=minbase",
            "--include=python3,python3-pip,ca-certificates",
            "--dpkgopt=path-exclude=/usr/share/man/*",
            "--dpkgopt=path-exclude=/usr/share/doc/*",
            "--dpkgopt=path-include=/usr/share/doc/*/copyright",
            cfg.debian_suite,
            str(tar),
            mirror,
        ]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise ImageBuildError(f"mmdebstrap failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        repo, _, suite = tag.partition(":")
        client.api.import_image_from_file(str(tar), repository=repo, tag=suite, changes=["ENV LANG=C.UTF-8", 'CMD ["python3"]'])
    log(f"os base: {tag} imported in {time.monotonic() - start:.1f}s")
    return tag


def prepare_wheelhouse(packages, wheelhouse: Path, log=print, python: str = DEFAULT_PYTHON) -> Path:
    """Download wheels for ``packages`` (and their dependencies) for the image's Python, unless already there.

    The stamp file records the packages, the Python version and the platform tags: a change of any
    of them downloads again.
    """
    packages = [str(p) for p in packages]
    platforms = wheel_platforms()
    stamp = wheelhouse / ".packages.json"
    want = json.dumps({"packages": packages, "python": python, "platforms": platforms}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == want:
        log(f"wheelhouse: {wheelhouse} up to date (Python {python})")
        return wheelhouse
    start = time.monotonic()
    tmp = wheelhouse.with_name(wheelhouse.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    log(f"wheelhouse: downloading {' '.join(packages)} for CPython {python} on {platforms[0].split('_', 3)[-1]}")
    proc = subprocess.run(pip_download_command(packages, tmp, python, platforms), capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"pip download {' '.join(packages)} (for Python {python}) failed:\n{proc.stderr[-3000:]}")
    (tmp / "requirements.txt").write_text("\n".join(packages) + "\n")
    (tmp / ".packages.json").write_text(want)
    shutil.rmtree(wheelhouse, ignore_errors=True)
    os.rename(tmp, wheelhouse)
    log(f"wheelhouse: {len(list(wheelhouse.glob('*.whl')))} wheels in {time.monotonic() - start:.1f}s")
    return wheelhouse


def build_context_image(tag: str, dockerfile_dir: Path, buildargs: dict | None = None, log=print) -> str:
    """Build ``dockerfile_dir`` (a Dockerfile and its context) as ``tag``, without network.

    Logs only the "Step x/y" lines; on failure raises ImageBuildError with the failing step's
    output. Returns the image id.
    """
    client = _client()
    start, step, output = time.monotonic(), "", []
    try:
        for chunk in client.api.build(
            path=str(dockerfile_dir), tag=tag, buildargs=buildargs or {}, network_mode="none", rm=True, forcerm=True, decode=True
        ):
            if "error" in chunk:
                raise ImageBuildError(
                    f"building {tag} failed at {step or 'the start'}:\n" + "".join(output[-60:]) + chunk["error"].rstrip()
                )
            line = chunk.get("stream") or ""
            if line.startswith("Step "):
                step, output = line.strip(), []
                log(f"[{tag}] {step}")
            elif line:
                output.append(line)
    except docker.errors.APIError as e:
        raise ImageBuildError(f"building {tag} failed: {e.explanation or e}") from e
    image_id = client.images.get(tag).id
    log(f"[{tag}] built {image_id[:19]} in {time.monotonic() - start:.1f}s")
    return image_id


def build_images(cfg, home: Path, log=print) -> dict[str, str]:
    """Build harness/python:<images.python> and the sample submission; returns tag -> image id."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    python, tag = image_python(cfg), base_tag(cfg)
    os_base = ensure_os_base(cfg, log)
    wheelhouse = prepare_wheelhouse(cfg.packages, home / "wheelhouse", log, python=python)
    built = {}
    with tempfile.TemporaryDirectory(prefix="image-build-", dir=home) as tmp:
        context = Path(tmp)
        shutil.copy(IMAGES_DIR / "base" / "Dockerfile", context / "Dockerfile")
        shutil.copytree(wheelhouse, context / "wheels", copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".packages.json"))
        built[tag] = build_context_image(tag, context, {"BASE": os_base, "PYTHON": python}, log)
    built[SAMPLE_TAG] = build_context_image(SAMPLE_TAG, IMAGES_DIR / "sample-submission", {"BASE": tag}, log)
    return built


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
