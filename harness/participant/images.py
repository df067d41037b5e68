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
import sys
import tarfile
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
# The bundled configs/images/ folder, where `images.lock` names a file unless it is a path.
LOCKS_DIR = Path(str(files("harness.configs"))) / "images"
OS_BASE_LABEL = "org.harness.os-base"  # the bootstrap's inputs, to reuse an os-base built from the same ones


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


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


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
        layer = _sha256_file(rootfs)
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
        "wheels": [{"file": w.name, "sha256": _sha256_file(w)} for w in wheels],
    }


def read_lock(path: Path) -> dict:
    try:
        lock = json.loads(Path(path).read_text())
        if not isinstance(lock.get("wheels"), list):
            raise ValueError("no 'wheels' list")
        return lock
    except (OSError, ValueError) as e:
        raise ImageBuildError(f"the wheelhouse lock {path} cannot be read: {e}") from None


def verify_wheelhouse(wheelhouse: Path, lock_file: Path, packages, python: str) -> None:
    """Check the wheelhouse against the lock: the same request, the same wheels, the same sha256s."""
    lock = read_lock(lock_file)
    regenerate = "regenerate it with `harness images lock` (or set images.lock=null to skip the check)"
    asked = {"python": python, "arch": _arch(), "packages": [str(p) for p in packages]}
    locked = {k: lock.get(k) for k in asked}
    if locked != asked:
        raise ImageBuildError(f"the wheelhouse lock {lock_file} is for {locked}, this build asks for {asked}: {regenerate}")
    want = {w["file"]: w["sha256"] for w in lock["wheels"]}
    have = {w.name: w for w in wheelhouse.glob("*.whl")}
    for name in sorted(want.keys() | have.keys()):
        if name not in have:
            raise ImageBuildError(f"wheelhouse lock {lock_file}: {name} is locked but was not downloaded: {regenerate}")
        if name not in want:
            raise ImageBuildError(f"wheelhouse lock {lock_file}: {name} was downloaded but is not in the lock: {regenerate}")
        digest = _sha256_file(have[name])
        if digest != want[name]:
            raise ImageBuildError(
                f"wheelhouse lock {lock_file}: {name} has sha256 {digest}, the lock says {want[name]} "
                f"(a different build of the same file name: check the index it came from, or {regenerate})"
            )


def _requirements(wheelhouse: Path, packages, hashed: bool) -> str:
    """requirements.txt for the image: every wheel pinned with its sha256 (pip then installs in
    hash-checking mode) when the wheelhouse is locked, else the packages as asked."""
    if not hashed:
        return "\n".join(packages) + "\n"
    lines = []
    for wheel in sorted(wheelhouse.glob("*.whl")):
        name, version = wheel.name.split("-")[:2]
        lines.append(f"{name}=={version} --hash=sha256:{_sha256_file(wheel)}")
    return "\n".join(lines) + "\n"


def download_wheels(packages, dest: Path, python: str) -> None:
    proc = subprocess.run(pip_download_command(packages, dest, python, wheel_platforms()), capture_output=True, text=True)
    if proc.returncode != 0:
        raise ImageBuildError(f"pip download {' '.join(packages)} (for Python {python}) failed:\n{proc.stderr[-3000:]}")


def prepare_wheelhouse(packages, wheelhouse: Path, log=print, python: str = DEFAULT_PYTHON, lock: Path | None = None) -> Path:
    """Download wheels for ``packages`` (and their dependencies) for the image's Python, unless already there.

    The stamp file records the packages, the Python version, the platform tags and the lock's
    sha256: a change of any of them downloads again. With a ``lock``, the wheelhouse is verified
    against it (every build) and requirements.txt pins every wheel by sha256.
    """
    packages = [str(p) for p in packages]
    platforms = wheel_platforms()
    stamp = wheelhouse / ".packages.json"
    lock_digest = _sha256_file(lock) if lock is not None and Path(lock).is_file() else None
    if lock is not None and lock_digest is None:
        raise ImageBuildError(f"the wheelhouse lock {lock} does not exist: write it with `harness images lock`")
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
    log(f"wheelhouse: downloading {' '.join(packages)} for CPython {python} on {platforms[0].split('_', 3)[-1]}")
    download_wheels(packages, tmp, python)
    if lock is not None:
        verify_wheelhouse(tmp, lock, packages, python)
    (tmp / "requirements.txt").write_text(_requirements(tmp, packages, hashed=lock is not None))
    (tmp / ".packages.json").write_text(want)
    shutil.rmtree(wheelhouse, ignore_errors=True)
    os.rename(tmp, wheelhouse)
    log(
        f"wheelhouse: {len(list(wheelhouse.glob('*.whl')))} wheels in {time.monotonic() - start:.1f}s{', verified against ' + str(lock) if lock else ''}"
    )
    return wheelhouse


def write_lock(cfg, output: Path | None = None, log=print) -> Path:
    """`harness images lock`: download the wheelhouse of ``images.packages`` afresh and write its lock."""
    python = image_python(cfg)
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
    wheelhouse = prepare_wheelhouse(cfg.packages, home / "wheelhouse", log, python=python, lock=lock_path(cfg))
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
