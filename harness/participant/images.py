"""`harness images build`: the participant base image and the sample submission, offline.

harness/python:3.11 is built FROM a plain Python 3.11 image: ``cfg.base`` (python:3.11-slim) when
it is present or can be pulled, otherwise a Debian rootfs bootstrapped with mmdebstrap and
imported as harness/os-base:<suite>. Python packages come from a wheelhouse downloaded on the
host (``<home>/wheelhouse``); the builds themselves run without network.
"""

from __future__ import annotations

import json
import os
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
BASE_TAG = "harness/python:3.11"
SAMPLE_TAG = "harness/sample-submission:latest"
OS_BASE_REPO = "harness/os-base"


class ImageBuildError(RuntimeError):
    """An image could not be built; the message says why and what to do."""


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
    """The tag of a plain Python 3.11 image (no extra packages) to build harness/python FROM."""
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


def prepare_wheelhouse(packages, wheelhouse: Path, log=print) -> Path:
    """Download wheels for ``packages`` (and their dependencies) unless already there."""
    packages = [str(p) for p in packages]
    stamp = wheelhouse / ".packages.json"
    want = json.dumps({"packages": packages}, sort_keys=True)
    if stamp.is_file() and stamp.read_text() == want:
        log(f"wheelhouse: {wheelhouse} up to date")
        return wheelhouse
    start = time.monotonic()
    tmp = wheelhouse.with_name(wheelhouse.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--only-binary=:all:", "-d", str(tmp), *packages], capture_output=True, text=True
    )
    if proc.returncode != 0:
        raise ImageBuildError(f"pip download {' '.join(packages)} failed:\n{proc.stderr[-3000:]}")
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
    """Build harness/python:3.11 and the sample submission; returns tag -> image id."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    os_base = ensure_os_base(cfg, log)
    wheelhouse = prepare_wheelhouse(cfg.packages, home / "wheelhouse", log)
    built = {}
    with tempfile.TemporaryDirectory(prefix="image-build-", dir=home) as tmp:
        context = Path(tmp)
        shutil.copy(IMAGES_DIR / "base" / "Dockerfile", context / "Dockerfile")
        shutil.copytree(wheelhouse, context / "wheels", copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".packages.json"))
        built[BASE_TAG] = build_context_image(BASE_TAG, context, {"BASE": os_base}, log)
    built[SAMPLE_TAG] = build_context_image(SAMPLE_TAG, IMAGES_DIR / "sample-submission", {"BASE": BASE_TAG}, log)
    return built


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
