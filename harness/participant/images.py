"""`harness images build`: the participant base image and the sample submission, offline.

harness/python:<X.Y> is built FROM a plain Python X.Y image (``cfg.python``, default 3.11):
``cfg.base`` (python:3.11-slim) when it is present or can be pulled, otherwise a Debian rootfs
bootstrapped with mmdebstrap and imported as harness/os-base:<suite> (bookworm's python3 is 3.11).
Python packages come from a wheelhouse downloaded on the host (``<home>/wheelhouse``) for the
IMAGE's Python and the host's architecture, whatever Python the host runs; the builds themselves
run without network.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import platform
import re
import shutil
import subprocess
import tarfile
import tempfile
import threading
import time
from importlib.resources import files
from pathlib import Path

import docker
import docker.errors

from harness.participant.errors import ImageBuildError
from harness.participant.wheelhouse import DEFAULT_PYTHON, lock_path, prepare_wheelhouse, sha256_file

# The Dockerfiles and the sample submission ship inside the package (the top-level images/ folder).
IMAGES_DIR = Path(str(files("harness.images")))
BASE_TAG = f"harness/python:{DEFAULT_PYTHON}"  # the participant base image of the default configuration
SAMPLE_TAG = "harness/sample-submission:latest"  # digits' sample (torch)
TABLES_SAMPLE_TAG = "harness/sample-tables:latest"  # the table competitions' sample (numpy: least squares)
SAMPLES = {SAMPLE_TAG: "sample-submission", TABLES_SAMPLE_TAG: "sample-tables"}  # tag -> folder of images/
OS_BASE_REPO = "harness/os-base"
OS_BASE_LABEL = "org.harness.os-base"  # the bootstrap's inputs, to reuse an os-base built from the same ones


def image_python(cfg) -> str:
    """The participant image's Python version, "X.Y", from ``images.python``."""
    value = str(cfg.get("python", DEFAULT_PYTHON))
    if not re.fullmatch(r"3\.\d{1,2}", value) or int(value.split(".")[1]) < 8:
        raise ImageBuildError(f'images.python: {value!r} is not a Python version like "3.11" (quote it in YAML: 3.10 reads as 3.1)')
    return value


def base_tag(cfg) -> str:
    """The participant base image's tag: harness/python:<images.python>."""
    return f"harness/python:{image_python(cfg)}"


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
    mirror = cfg.debian_mirror or debian_mirror()
    inputs = _os_base_inputs(cfg, mirror)
    try:
        existing = client.images.get(tag)
    except docker.errors.ImageNotFound:
        existing = None
    if existing is not None and (existing.labels or {}).get(OS_BASE_LABEL) == inputs:
        log(f"os base: {tag} (local)")
        return tag
    if shutil.which("mmdebstrap") is None:
        raise ImageBuildError(
            f"{cfg.base} is neither present nor pullable, and mmdebstrap is missing to bootstrap "
            f"{tag} from Debian packages: install it (`apt-get install -y mmdebstrap`) or make "
            f"{cfg.base} available (a registry, or `docker load`)."
        )
    bootstrap_os_base(cfg, tag, log)
    return tag


MMDEBSTRAP_OPTIONS = [
    "--variant=minbase",
    "--include=python3,python3-pip,ca-certificates",
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
]


def _os_base_inputs(cfg, mirror: str) -> str:
    return json.dumps(
        {"suite": cfg.debian_suite, "mirror": mirror, "source_date_epoch": int(cfg.source_date_epoch), "options": MMDEBSTRAP_OPTIONS},
        sort_keys=True,
    )


def _docker_arch(machine: str | None = None) -> str:
    arch = (machine or platform.machine()).lower()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(arch, arch)


def os_base_config(layer_sha256: str, epoch: int, inputs: str, created_by: str) -> bytes:
    """The image config of the bootstrapped base: its id is this JSON's sha256, with no clock in it."""
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
    config = {
        "architecture": _docker_arch(),
        "os": "linux",
        "created": created,
        "config": {
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
            "Cmd": ["python3"],
            "Labels": {OS_BASE_LABEL: inputs},
        },
        "rootfs": {"type": "layers", "diff_ids": [f"sha256:{layer_sha256}"]},
        "history": [{"created": created, "created_by": created_by}],
    }
    return json.dumps(config, sort_keys=True, separators=(",", ":")).encode()


def bootstrap_os_base(cfg, tag: str, log=print) -> str:
    """Bootstrap a Debian rootfs with mmdebstrap and load it as ``tag``; returns the image id.

    Deterministic: mmdebstrap runs with SOURCE_DATE_EPOCH (``images.source_date_epoch``), which
    makes its tarball bit for bit the same for the same mirror state, and instead of `docker import`
    (which stamps the current time) the image archive is written here with ``created`` set to that
    epoch. Same suite, mirror state, options and epoch: same image id.
    """
    client = _client()
    mirror = cfg.debian_mirror or debian_mirror()
    epoch = int(cfg.source_date_epoch)
    inputs = _os_base_inputs(cfg, mirror)
    log(f"os base: bootstrapping {tag} from {mirror} with mmdebstrap (SOURCE_DATE_EPOCH={epoch})")
    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="harness-rootfs-") as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        cmd = ["mmdebstrap", *MMDEBSTRAP_OPTIONS, cfg.debian_suite, str(rootfs), mirror]
        proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)})
        if proc.returncode != 0:
            raise ImageBuildError(f"mmdebstrap failed ({proc.returncode}):\n{proc.stderr[-3000:]}")
        layer = sha256_file(rootfs)
        config = os_base_config(layer, epoch, inputs, "mmdebstrap " + " ".join(cmd[1:-2] + [cfg.debian_suite, "rootfs.tar", mirror]))
        image_id = hashlib.sha256(config).hexdigest()
        archive = Path(tmp) / "image.tar"
        manifest = [{"Config": f"{image_id}.json", "RepoTags": [tag], "Layers": [f"{layer}/layer.tar"]}]
        with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as out:
            for name, data in ((f"{image_id}.json", config), ("manifest.json", json.dumps(manifest).encode())):
                info = tarfile.TarInfo(name)
                info.size, info.mtime = len(data), epoch
                out.addfile(info, io.BytesIO(data))
            info = out.gettarinfo(str(rootfs), arcname=f"{layer}/layer.tar")
            info.mtime, info.uid, info.gid, info.uname, info.gname = epoch, 0, 0, "", ""
            with open(rootfs, "rb") as f:
                out.addfile(info, f)
        rootfs.unlink()
        with open(archive, "rb") as f:
            client.api.load_image(f)
    loaded = client.images.get(tag).id
    log(f"os base: {tag} {loaded[:19]} (rootfs sha256:{layer[:12]}) loaded in {time.monotonic() - start:.1f}s")
    return loaded


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
    """Build harness/python:<images.python> and the sample submissions; returns tag -> image id."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    python, tag = image_python(cfg), base_tag(cfg)
    os_base = ensure_os_base(cfg, log)
    wheelhouse = prepare_wheelhouse(cfg.packages, home / "wheelhouse", log, python=python, lock=lock_path(cfg))
    built = {}
    with tempfile.TemporaryDirectory(prefix="image-build-", dir=home) as tmp:
        context = Path(tmp)
        shutil.copy(IMAGES_DIR / "base" / "Dockerfile", context / "Dockerfile")
        shutil.copytree(wheelhouse, context / "wheels", copy_function=_link_or_copy, ignore=shutil.ignore_patterns(".packages.json"))
        built[tag] = build_context_image(tag, context, {"BASE": os_base, "PYTHON": python}, log)
    for sample, folder in SAMPLES.items():
        built[sample] = build_context_image(sample, IMAGES_DIR / folder, {"BASE": tag}, log)
    return built


def _link_or_copy(src: str, dst: str) -> None:
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
