"""The harness as a participant runs it: an ordinary member of the ``docker`` group, no root.

CI runs as root, where the run's parent cgroup gives exact figures; so these tests run the harness
in a child process dropped to an unprivileged uid whose only privilege is the ``docker`` group
(``subprocess``'s ``user``/``group``/``extra_groups``: setgid, setgroups, setuid, nothing on the
host changed). That child cannot create or remove cgroups: its figures come from the container's
own cgroup files. Run as such a user already, the child is just another process of that user.
"""

from __future__ import annotations

import grp
import json
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.docker

MIB = 1024**2
# An unprivileged uid with no account: the harness needs none (HOME is set for the Docker SDK).
NONROOT_UID = 10077
SOCKET = Path("/var/run/docker.sock")


def docker_group() -> int:
    """The gid that may use the engine's socket; skips (saying why) where there is none."""
    if os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock") not in ("unix:///var/run/docker.sock", "unix://" + str(SOCKET)):
        pytest.skip("DOCKER_HOST names another engine; this test drops to a docker-group user of the local socket")
    try:
        gid = grp.getgrnam("docker").gr_gid
    except KeyError:
        pytest.skip("no 'docker' group on this host: there is no non-root member to be")
    info = SOCKET.stat()
    if info.st_gid != gid or not info.st_mode & stat.S_IRGRP or not info.st_mode & stat.S_IWGRP:
        pytest.skip(f"{SOCKET} is not read-writable by the docker group (gid {info.st_gid}, mode {stat.filemode(info.st_mode)})")
    return gid


def run_as_docker_user(script: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -c script args`` as an unprivileged member of the docker group, in a work folder of its own."""
    gid = docker_group()
    if os.geteuid() == 0:
        uid, group, extra = NONROOT_UID, NONROOT_UID, [gid]
    elif gid in os.getgroups():
        uid, group, extra = os.getuid(), os.getgid(), None
    else:
        pytest.skip("this test runs as root (dropping to a docker-group user) or as a member of the docker group")
    work = Path(tempfile.mkdtemp(prefix="harness-nonroot-"))
    work.chmod(0o755)
    if os.geteuid() == 0:
        os.chown(work, uid, group)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(work), "PYTHONDONTWRITEBYTECODE": "1"}
    kwargs = {"user": uid, "group": group, "extra_groups": extra} if os.geteuid() == 0 else {}
    try:
        python = interpreter(kwargs, env)
        return subprocess.run(
            [*python, "-c", script, str(work), *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            **kwargs,
        )
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", str(work)], check=False, capture_output=True, **kwargs)
        shutil.rmtree(work, ignore_errors=True)


def interpreter(kwargs: dict, env: dict[str, str]) -> list[str]:
    """This test's Python, or, where the user cannot reach it (a pyenv under /root), the system's
    Python of the same minor version; either way with this process's site-packages (and its
    editable install's .pth) added: the same harness code."""
    sites = [p for p in sys.path if p.endswith("site-packages")]
    prologue = f"import site, sys; [site.addsitedir(p) for p in {sites!r}]; sys.argv = sys.argv[2:]; exec(sys.argv[0])"
    try:
        subprocess.run([sys.executable, "-c", "pass"], env=env, check=True, capture_output=True, **kwargs)
        return [sys.executable, "-c", prologue]
    except (PermissionError, subprocess.CalledProcessError):
        pass
    system = Path(f"/usr/bin/python{sys.version_info.major}.{sys.version_info.minor}")
    if not system.exists():
        pytest.skip(f"an unprivileged user cannot run {sys.executable} and there is no {system}")
    return [str(system), "-c", prologue]


# Runs one phase through the harness's own backend and prints what it reported.
PHASE = """
import json, os, sys
from pathlib import Path
from harness.limits.spec import PhaseLimits
from harness.runner.docker_backend import DockerBackend
from harness.runner.phase import Mount, PhaseSpec
work, image, memory, command = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
spec = PhaseSpec(
    run_id="nonroot-" + os.urandom(4).hex(), phase="train", image=image, command=tuple(command),
    mounts=(Mount(str(work / "model"), "/model", read_only=False),), environment={},
    limits=PhaseLimits(memory=memory, wall_clock_s=60), log_dir=str(work / "logs"), writable=(str(work / "model"),),
)
result = DockerBackend().run(spec)
print(json.dumps({"ids": [os.geteuid(), os.getegid(), os.getgroups()], "parent_cgroup": os.path.isdir(f"/sys/fs/cgroup/memory/harness/{spec.run_id}"), **result.to_dict()}))
"""


def phase_as_docker_user(image: str, memory: int, command: list[str]) -> dict:
    done = run_as_docker_user(PHASE, image, str(memory), json.dumps(command))
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    euid, _, groups = report["ids"]
    assert euid != 0 and grp.getgrnam("docker").gr_gid in groups
    assert report["parent_cgroup"] is False  # no root: no run cgroup was made for it
    return report


def test_memory_under_the_limit_is_measured_exactly_without_root(behave_image):
    """It holds 128 MiB for 0.2 s: sampled once a second it was recorded as 48 MB; exact now."""
    report = phase_as_docker_user(behave_image("hold"), 256 * MIB, ["train"])
    assert report["verdict"] == "OK", report["message"]
    assert 128 * MIB <= report["peak_memory_bytes"] <= 1.25 * 128 * MIB  # it holds 128 MiB
    # (cgroup v1 counts the page cache it faults in too: its interpreter and libraries, up to ~25 MiB on a cold cache)
    assert 0 < report["cpu_s"] <= report["wall_s"] + 0.5 and report["peak_pids"] >= 1


def test_balloon_past_the_memory_limit_is_memory_limit_at_the_limit_without_root(behave_image):
    report = phase_as_docker_user(behave_image("balloon"), 256 * MIB, ["train"])
    assert report["verdict"] == "MEMORY_LIMIT", report["message"]
    assert "256.0 MiB" in report["message"]
    assert 0.99 * 256 * MIB <= report["peak_memory_bytes"] <= 256 * MIB


def test_output_the_harness_cannot_read_is_output_limit_without_root(os_base):
    """The container, running as the harness's own uid, locks a directory in /model: the watch,
    which has no root to read past a mode of 000, says so instead of measuring less."""
    report = phase_as_docker_user(os_base, 256 * MIB, ["sh", "-c", "mkdir /model/locked && chmod 0 /model/locked && sleep 2"])
    assert report["verdict"] == "OUTPUT_LIMIT", report["message"]
    assert "made a directory the harness cannot read (locked: Permission denied)" in report["message"]
