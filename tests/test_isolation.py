"""What a submission's container can see and do, reported from inside by the ``probe`` behaviour.

One evaluation of the probe (train and infer) is shared by the module: the organizer's
environment holds secrets while it runs (planted in the harness process's own environment), and
each test reads one facet of the probe's reports.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import threading
import time

import pytest
from contract import documented_environment

from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.evaluation.check import check_image
from harness.limits.docker_options import container_options
from harness.limits.spec import PhaseLimits
from harness.runner.docker_backend import DockerBackend, container_user
from harness.runner.phase import PhaseSpec

pytestmark = pytest.mark.docker

TMP_LIMIT = 8 * 1024**2
# Two CPUs for train, digits' one for infer: the thread counts must follow each phase's own limit.
OVERRIDES = (f"limits.train.tmp={TMP_LIMIT}", f"limits.infer.tmp={TMP_LIMIT}", "limits.train.cpus=2")
DOCKER_DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# The probe looks for this marker; the organizer's secrets start with it.
SECRET_MARKER = "HARNESS-ORGANIZER-SECRET"
# Planted in the harness's environment while the probe runs: an organizer's cloud key and API token.
PLANTED = ("AWS_SECRET_ACCESS_KEY", "ORGANIZER_API_TOKEN")
# The documented environment (tests/contract.py), for the limits this module runs with.
DOCUMENTED = documented_environment(train_cpus="2")


@pytest.fixture(scope="module")
def probed(prepared_data, tmp_path_factory, docker_client, behave_image):
    """(competition, record, {phase: report}, {name: value planted}) of one evaluation of the probe,
    with the organizer's secrets in the harness process's environment while it ran."""
    home = tmp_path_factory.mktemp("isolation") / "home"
    shutil.copytree(prepared_data, home, symlinks=True)
    image = behave_image("probe")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("HARNESS_HOME", str(home))
        for name in PLANTED:
            env.setenv(name, f"{SECRET_MARKER}-{secrets.token_hex(8)}")
        planted = {name: os.environ[name] for name in PLANTED}  # what a careless copy of os.environ would pass on
        competition = Competition.load(load_settings("digits", list(OVERRIDES)), home)
        record = check_image(competition, image, out=open(os.devnull, "w"))
    run_dir = competition.paths.runs / record.evaluation_id
    reports = {
        "train": json.loads((run_dir / "model" / "probe-train.json").read_text()),
        "infer": json.loads((run_dir / "output" / "probe-infer.json").read_text()),
    }
    return competition, record, reports, planted


def test_probe_is_scored(probed):
    _, record, _, _ = probed
    assert record.verdict == "SCORED", record.message


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_environment_is_exactly_the_contract(probed, docker_client, phase):
    competition, record, reports, _ = probed
    settings = competition.settings
    image_env = dict(item.split("=", 1) for item in docker_client.images.get(record.submission.image_digest).attrs["Config"]["Env"])
    expected = {"PATH": DOCKER_DEFAULT_PATH, **image_env, **DOCUMENTED[phase], "HOSTNAME": "sandbox"}
    assert not set(image_env) & set(DOCUMENTED[phase])  # the probe's image sets none of them: each value is the harness's
    assert reports[phase]["env"] == expected
    # the premise of the literal list: the competition ran with the limits it was written for
    limits = settings.limits.phase(phase)
    assert (settings.seed, limits.wall_clock_s, limits.cpus, limits.memory, limits.gpus) == (
        42,
        {"train": 600, "infer": 300}[phase],
        {"train": 2, "infer": 1}[phase],
        2 * 1024**3,
        0,
    )


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_organizer_secret_is_nowhere_the_container_can_read(probed, phase):
    _, _, reports, planted = probed
    env = reports[phase]["env"]
    assert not set(planted) & set(env), "the organizer's variables reached the container"
    assert not [name for name, value in env.items() if any(secret in value for secret in planted.values())]
    # nor any file it can read: its /proc/self/environ, its init's, anything on its filesystem
    assert reports[phase]["secrets"] == []


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_network_is_loopback_only(probed, phase):
    _, _, reports, _ = probed
    assert reports[phase]["interfaces"] == ["lo"]
    assert reports[phase]["connect"] == "ENETUNREACH"


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_identity_non_root_no_capabilities_no_new_privileges(probed, phase):
    _, _, reports, _ = probed
    uid, gid = container_user()
    report = reports[phase]
    assert report["ids"] == [uid, uid, gid, gid, [gid]]
    status = report["status"]
    assert {status[k] for k in ("CapEff", "CapPrm", "CapBnd", "CapAmb")} == {"0000000000000000"}
    assert status["NoNewPrivs"] == "1"
    assert status["Seccomp"] == "2"  # Docker's default seccomp filter
    # the image's setuid-root `id` runs as the caller: no euid=0
    assert report["setuid_id"] == f"uid={uid} gid={gid} groups={gid}"


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_the_kernel_kills_a_submission_first_when_the_host_runs_short(probed, phase):
    """``oom_score_adj: 1000`` (docs/security.md): every process of the container, read from inside."""
    seen = probed[2][phase]["oom_score_adj"]
    assert "1" in seen and "child" in seen  # its init (the probe itself), every other process then, a child it started
    assert set(seen.values()) == {"1000"}, seen


def test_filesystem_is_read_only_but_for_the_contract(probed):
    _, _, reports, _ = probed
    assert reports["train"]["write"] == {
        "/": "EROFS",
        "/etc": "EROFS",
        "/usr": "EROFS",
        "/var/tmp": "EROFS",
        "/data/train": "EROFS",
        "/data/test": "ENOENT",
        "/model": "writable",
        "/output": "ENOENT",
        "/tmp": "writable",
    }
    assert reports["infer"]["write"] == {
        "/": "EROFS",
        "/etc": "EROFS",
        "/usr": "EROFS",
        "/var/tmp": "EROFS",
        "/data/train": "ENOENT",
        "/data/test": "EROFS",
        "/model": "EROFS",
        "/output": "writable",
        "/tmp": "writable",
    }


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_tmp_is_a_bounded_tmpfs_and_its_use_is_recorded(probed, phase):
    _, record, reports, _ = probed
    tmp = next(m for m in reports[phase]["mountinfo"] if m[4] == "/tmp")
    options = set(tmp[5].split(",")) | set(tmp[-1].split(","))
    assert tmp[-3] == "tmpfs" and {"noexec", "nosuid", "nodev", f"size={TMP_LIMIT // 1024}k"} <= options
    assert reports[phase]["tmp"] == {"bytes": TMP_LIMIT, "error": "ENOSPC"}
    assert record.phases.ran()[phase].peak_tmp_bytes == TMP_LIMIT
    assert record.phases.ran()[phase].limits.tmp == TMP_LIMIT


def test_tmp_is_noexec_by_the_harness_not_by_the_daemons_default(docker_client, os_base, tmp_path):
    """The harness says ``noexec`` itself (Docker's default for --tmpfs also has it, today); a program
    copied to /tmp, executable bit set, does not run."""
    assert "noexec" in container_options(PhaseLimits())["tmpfs"]["/tmp"].split(",")
    script = "cp /bin/true /tmp/t && chmod 755 /tmp/t && echo copied; /tmp/t; echo exec=$?"
    spec = PhaseSpec(
        run_id=f"noexec-{secrets.token_hex(4)}",
        phase="train",
        image=os_base,
        command=("sh", "-c", script),
        mounts=(),
        environment={},
        limits=PhaseLimits(wall_clock_s=30),
        log_dir=str(tmp_path),
    )
    result = DockerBackend(docker_client).run(spec)
    assert result.verdict.value == "OK", result.message
    assert (tmp_path / "train.stdout.log").read_text() == "copied\nexec=126\n"
    assert "/tmp/t: Permission denied" in (tmp_path / "train.stderr.log").read_text()


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_host_directories_in_view_are_only_this_runs(probed, phase):
    """Every host directory the container sees is its data, its own model or output, or Docker's /etc files."""
    competition, record, reports, _ = probed
    paths = competition.paths
    run_dir = paths.runs / record.evaluation_id
    own = {
        "train": {"/data/train": paths.train, "/model": run_dir / "model"},
        "infer": {"/data/test": paths.test, "/model": run_dir / "model", "/output": run_dir / "output"},
    }[phase]
    binds = {m[4]: m[3] for m in reports[phase]["mountinfo"] if m[4] in own or m[4].startswith("/etc/")}
    assert set(binds) == set(own) | {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf"}
    for target, source in own.items():
        # mountinfo names the source relative to its filesystem's root: compare the tails
        assert str(source).endswith(binds[target]), (target, binds[target])
    assert not any(paths.hidden.is_relative_to(source) for source in own.values())


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_hidden_labels_are_unreachable(probed, phase):
    _, _, reports, _ = probed
    assert reports[phase]["labels"] == []


def test_runtime_passes_through(competition, docker_client, behave_image):
    """``runner.runtime`` reaches the container: a runtime other than the engine's default (runc
    under its containerd shim name, which Docker registers at start but drops when a SIGHUP reloads
    daemon.json's runtimes, else runsc where setup registered it) is what the engine records for the
    running phase's container."""
    info = docker_client.info()
    others = sorted(set(info.get("Runtimes") or {}) - {info.get("DefaultRuntime", "runc"), "io.containerd.runtime.v1.linux"})
    if not others:
        pytest.skip(f"this engine has no runtime but its default ({info.get('DefaultRuntime')}) to tell apart")
    runtime = "io.containerd.runc.v2" if "io.containerd.runc.v2" in others else others[0]
    chosen = competition(f"runner.runtime={runtime}")
    done: dict = {}
    check = threading.Thread(target=lambda: done.update(record=check_image(chosen, behave_image("nap2"), out=open(os.devnull, "w"))))
    check.start()
    seen: set[str] = set()
    deadline = time.monotonic() + 120
    while check.is_alive() and time.monotonic() < deadline:
        for run in chosen.paths.runs.glob("*") if chosen.paths.runs.is_dir() else ():
            for container in docker_client.containers.list(filters={"label": f"harness.evaluation={run.name}"}):
                seen.add(container.attrs["HostConfig"]["Runtime"])
        time.sleep(0.1)
    check.join(timeout=120)
    assert done["record"].verdict == "SCORED", done["record"].message
    assert seen == {runtime}


def test_missing_runtime_is_the_organizers_error(competition, docker_client, behave_image):
    record = check_image(competition("runner.runtime=no-such-runtime"), behave_image("constant"), out=open(os.devnull, "w"))
    assert record.verdict == "INFRA_ERROR" and record.failed_phase == "train"
    assert "runner.runtime=no-such-runtime is not a runtime of this Docker engine (it has: " in record.message
    assert "runc" in record.message


def gvisor_expected() -> bool:
    """Whether scripts/setup.sh registers gVisor here: as root, where apt knows a runsc package."""
    if os.geteuid() != 0 or not shutil.which("apt-cache"):
        return False
    policy = subprocess.run(["apt-cache", "policy", "runsc"], capture_output=True, text=True).stdout
    return any(line.split()[1:] not in ([], ["(none)"]) for line in policy.splitlines() if line.strip().startswith("Candidate:"))


def test_gvisor_runs_each_phase_in_its_own_kernel(competition, docker_client, behave_image, home):
    """``runner.runtime=runsc``: the phases run, and the train phase's system calls are answered by
    gVisor's kernel, not the host's (a runc container always reports the host's kernel release)."""
    if "runsc" not in (docker_client.info().get("Runtimes") or {}):
        if gvisor_expected():
            pytest.fail("the Docker engine has no runsc runtime: scripts/setup.sh installs Debian's runsc and registers it as root")
        pytest.skip(
            "gVisor (runsc) is not registered with this Docker engine, and scripts/setup.sh cannot install it here (not root, or no runsc package)"
        )
    record = check_image(competition("runner.runtime=runsc"), behave_image("kernel"), out=open(os.devnull, "w"))
    assert record.verdict == "SCORED", record.message
    log = (home / "competitions/digits/runs" / record.evaluation_id / "logs/train.stdout.log").read_text()
    assert re.fullmatch(r"kernel \S+\n", log), log
    assert log != f"kernel {os.uname().release}\n"
