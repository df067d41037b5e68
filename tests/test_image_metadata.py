"""An image's own metadata weakens nothing: VOLUME, USER, WORKDIR, ENV, STOPSIGNAL, HEALTHCHECK,
EXPOSE, ONBUILD, labels and platform, each built into a real image here and run for real.

One image carries most of them at once and reports from inside what it got (the ``meta`` probe);
the stop signal, the labels and intake's refusals have their own images.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import threading
import time

import pytest
from contract import documented_environment

from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.evaluation.check import check_image
from harness.evaluation.evaluation import Evaluation
from harness.runner.cleanup import remove_containers
from harness.runner.docker_backend import LABEL, DockerBackend, container_user

pytestmark = pytest.mark.docker

# The probe: what the image's metadata got it, as one JSON line on stdout; then the "constant" behaviour.
META_PY = """
import json, os, sys, time
phase = sys.argv[1]
writes = {}
for d in ("/scratch", "/tmp/cache", os.getcwd()):
    try:
        with open(os.path.join(d, "probe"), "w") as fh:
            fh.write("x")
        writes[d] = "written"
    except OSError as exc:
        writes[d] = exc.strerror
mounts = {}
for line in open("/proc/self/mountinfo"):
    parts = line.split()
    mounts[parts[4]] = parts[parts.index("-") + 1]  # mount point -> filesystem type, the last mount wins
time.sleep(3)  # three of the image's healthcheck intervals
print("META " + json.dumps({
    "uid": os.getuid(), "gid": os.getgid(), "groups": sorted(os.getgroups()), "env": dict(os.environ),
    "cwd": os.getcwd(), "writes": writes, "mounts": mounts, "interfaces": sorted(os.listdir("/sys/class/net")),
    "onbuild": os.path.exists("/onbuild-ran"),
}), flush=True)
os.execvp("python3", ["python3", "/app/behave.py", phase])
"""

IMAGE_ENV = {
    "HARNESS_SEED": "999",
    "HARNESS_PHASE": "evil",
    "HARNESS_TIME_LIMIT_S": "99999",
    "OMP_NUM_THREADS": "64",
    "HOME": "/root",
    "NVIDIA_VISIBLE_DEVICES": "all",
    "NVIDIA_MOFED": "enabled",
    "NVIDIA_GDRCOPY": "enabled",
    "NVIDIA_IMEX_CHANNELS": "all",
    "MY_OWN_SETTING": "kept",
}

# The documented environment (tests/contract.py), for the limits this module runs with. IMAGE_ENV tries
# to set several of them: none may win.
DOCUMENTED = documented_environment()

META_DOCKERFILE = f"""
USER root
# A user named in the image's passwd, put in root's group by its /etc/group
RUN echo 'evil:x:10001:10001::/:/bin/sh' >> /etc/passwd && sed -i 's/^root:x:0:.*/root:x:0:evil/' /etc/group
RUN mkdir -m 1777 /scratch /work && mkdir -p -m 1777 /tmp/cache
COPY meta.py /app/meta.py
VOLUME ["/scratch", "/tmp/cache", "/tmp"]
WORKDIR /work
ENV {" ".join(f"{k}={v}" for k, v in IMAGE_ENV.items())}
HEALTHCHECK --interval=1s --timeout=1s --retries=1 CMD ["/bin/sh", "-c", "touch /model/healthcheck-ran /output/healthcheck-ran"]
EXPOSE 8080/tcp
ONBUILD RUN touch /onbuild-ran
LABEL org.example.team=meta
USER root
ENTRYPOINT ["python3", "/app/meta.py"]
"""


def build(docker_client, base: str, name: str, body: str, files: dict[str, str] | None = None) -> str:
    """An image built from ``base`` with the Dockerfile lines ``body`` and ``files`` in its context."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in {"Dockerfile": f"FROM {base}\n{body}\n", **(files or {})}.items():
            data = text.encode()
            info = tarfile.TarInfo(path)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    buffer.seek(0)
    tag = f"harness-test/meta-{name}:latest"
    docker_client.images.build(fileobj=buffer, custom_context=True, tag=tag, rm=True)
    return tag


def volumes(docker_client) -> set[str]:
    return {v.name for v in docker_client.volumes.list()}


@pytest.fixture(scope="module")
def meta(prepared_data, tmp_path_factory, docker_client, behave_image):
    """(competition, record, volumes seen while it ran that were not there before, {phase: report}, run paths)."""
    home = tmp_path_factory.mktemp("meta") / "home"
    shutil.copytree(prepared_data, home, symlinks=True)
    image = build(docker_client, behave_image("constant"), "probe", META_DOCKERFILE, {"meta.py": META_PY})
    before, seen, done = volumes(docker_client), set(), threading.Event()

    def watch() -> None:  # anonymous volumes go with their container: look while it runs
        while not done.wait(0.2):
            seen.update(volumes(docker_client))

    watcher = threading.Thread(target=watch)
    watcher.start()
    try:
        with pytest.MonkeyPatch.context() as env:
            env.setenv("HARNESS_HOME", str(home))
            competition = Competition.load(load_settings("digits"), home)
            record = check_image(competition, image, out=open(os.devnull, "w"))
    finally:
        done.set()
        watcher.join()
    created = seen - before
    run = competition.paths.run(record.evaluation_id)
    reports = {}
    for phase in ("train", "infer"):
        line = next(x for x in (run.logs / f"{phase}.stdout.log").read_text().splitlines() if x.startswith("META "))
        reports[phase] = json.loads(line[len("META ") :])
    return competition, record, created, reports, run


def test_meta_image_is_scored(meta):
    _, record, _, _, _ = meta
    assert record.verdict == "SCORED", record.message


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_volume_paths_are_read_only_and_no_volume_is_created(meta, phase):
    """VOLUME: the engine would mount a writable anonymous volume (on the host's disk, outside every
    limit) even over a read-only root. An empty read-only tmpfs takes its place; /tmp stays the contract's."""
    _, _, created, reports, _ = meta
    report = reports[phase]
    assert report["writes"]["/scratch"] == "Read-only file system"
    assert report["writes"]["/tmp/cache"] == "Read-only file system"
    assert report["mounts"]["/scratch"] == report["mounts"]["/tmp/cache"] == "tmpfs"
    assert created == set()


def test_volume_over_tmp_leaves_the_contracts_tmpfs(meta):
    _, _, _, reports, _ = meta
    assert reports["train"]["mounts"]["/tmp"] == "tmpfs"


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_user_and_groups_are_the_harnesss(meta, phase):
    """USER root, and an /etc/group that puts the container's uid in root's group: neither counts."""
    _, _, _, reports, _ = meta
    uid, gid = container_user()
    assert (reports[phase]["uid"], reports[phase]["gid"], reports[phase]["groups"]) == (uid, gid, [gid])


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_workdir_is_kept_and_read_only(meta, phase):
    _, _, _, reports, _ = meta
    assert reports[phase]["cwd"] == "/work"
    assert reports[phase]["writes"]["/work"] == "Read-only file system"


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_image_env_cannot_override_the_contract(meta, phase):
    competition, _, _, reports, _ = meta
    env = reports[phase]["env"]
    assert {k: env.get(k) for k in DOCUMENTED[phase]} == DOCUMENTED[phase]
    assert env["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert env["MY_OWN_SETTING"] == "kept"  # the image's own variables stay
    # the premise of the literal list: digits' defaults, which the meta check ran with
    settings = competition.settings
    limits = settings.limits.phase(phase)
    assert (settings.seed, limits.wall_clock_s, limits.cpus, limits.memory) == (42, {"train": 600, "infer": 300}[phase], 1, 2 * 1024**3)


def test_healthcheck_never_runs(meta):
    _, _, _, _, run = meta
    assert not (run.model / "healthcheck-ran").exists()
    assert not (run.output / "healthcheck-ran").exists()


@pytest.mark.parametrize("phase", ["train", "infer"])
def test_expose_opens_nothing(meta, phase):
    _, _, _, reports, _ = meta
    assert reports[phase]["interfaces"] == ["lo"]


def test_onbuild_is_never_run(meta, docker_client):
    _, record, _, reports, _ = meta
    assert docker_client.images.get(record.submission.image_digest).attrs["Config"]["OnBuild"] == ["RUN touch /onbuild-ran"]
    assert record.verdict == "SCORED"
    assert reports["train"]["onbuild"] is False


@pytest.mark.parametrize("pidfd", [True, False], ids=["pidfd", "engine-kill"])
def test_stop_signal_cannot_soften_the_kill(pidfd, competition, docker_client, behave_image, monkeypatch):
    """STOPSIGNAL names a signal the sleeper ignores; the wall clock still kills at once, through the
    pidfd and through the engine alike."""
    image = build(docker_client, behave_image("sleeper"), "stopsignal", "STOPSIGNAL SIGTERM")
    if not pidfd:
        monkeypatch.setattr("harness.runner.docker_backend.ContainerInit.open", classmethod(lambda cls, pid, cid: None))
    record = check_image(competition("limits.train.wall_clock_s=2"), image, out=open(os.devnull, "w"))
    assert (record.verdict, record.failed_phase) == ("TIMEOUT", "train")
    assert 0.0 <= record.phases.train.timeout_overshoot_s < 10.0  # not after the engine's 10 s stop grace period


def test_image_labels_cannot_make_cleanup_take_or_spare_a_container(competition, docker_client, behave_image):
    """The engine copies an image's labels onto its containers. Intake refuses ``harness.*`` labels;
    the backend, which also runs images intake never saw, blanks them and sets its own over them."""
    image = build(
        docker_client,
        behave_image("sleeper"),
        "labels",
        "LABEL harness.run=victim-run harness.round=victim-round harness.evaluation=victim-ev harness.extra=x",
    )
    attrs = docker_client.images.get(image).attrs
    evaluation = Evaluation(
        competition("limits.train.wall_clock_s=20"), {"id": "s-labels", "team": "t", "image": image, "image_digest": attrs["Id"]}
    )
    spec = evaluation.next_phase()
    results = []
    worker = threading.Thread(target=lambda: results.append(DockerBackend(docker_client).run(spec)))
    worker.start()
    try:
        deadline = time.monotonic() + 30
        while not (found := docker_client.containers.list(filters={"label": f"{LABEL}={spec.run_id}"})) and time.monotonic() < deadline:
            time.sleep(0.1)
        (container,) = found
        labels = {k: v for k, v in container.labels.items() if k.startswith("harness.")}
        assert labels == {
            LABEL: spec.run_id,
            "harness.phase": "train",
            "harness.round": "",
            "harness.competition": "digits",
            "harness.submission": "s-labels",
            "harness.evaluation": evaluation.id,
            "harness.extra": "",
        }
        # a sweep for the round or evaluation the image names leaves it alone
        assert remove_containers(docker_client, {"harness.round": "victim-round"}) == 0
        assert remove_containers(docker_client, {"harness.evaluation": "victim-ev"}) == 0
        assert docker_client.containers.list(filters={"label": f"{LABEL}=victim-run"}) == []
        container.reload()
        assert container.status == "running"
        # and the sweep for its own evaluation takes it
        assert remove_containers(docker_client, {"harness.evaluation": evaluation.id}) == 1
    finally:
        worker.join(timeout=60)
    assert results  # the run ended (its container removed under it)


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("LABEL harness.round=r-1", "carries the label(s) harness.round: labels starting 'harness.' are the harness's own; rename them"),
        ('VOLUME ["/proc/x"]', "declares VOLUME /proc/x, over a path the container engine provides"),
        ('VOLUME ["/dev/shm"]', "declares VOLUME /dev/shm, over a path the container engine provides"),
        ('VOLUME ["/model/checkpoints"]', "declares VOLUME /model/checkpoints, inside /model, which the harness mounts; remove it"),
        ("VOLUME " + " ".join(f"/v{i}" for i in range(65)), "declares 65 VOLUMEs, more than the 64 the harness overlays"),
        ("WORKDIR /proc/self/fd/8", "has WORKDIR /proc/self/fd/8, under /proc, which the container engine provides"),
        ("WORKDIR /sys/fs/cgroup", "has WORKDIR /sys/fs/cgroup, under /sys, which the container engine provides"),
        ("ENV LD_PRELOAD=/tmp/hook.so", "sets ENV LD_PRELOAD: the dynamic loader would load it into every program"),
        ("ENV LD_AUDIT=/tmp/audit.so LD_PRELOAD=", "sets ENV LD_AUDIT, LD_PRELOAD: the dynamic loader would load it"),
    ],
    ids=[
        "harness-label",
        "volume-proc",
        "volume-dev",
        "volume-in-model",
        "many-volumes",
        "workdir-proc",
        "workdir-sys",
        "ld-preload",
        "ld-audit",
    ],
)
def test_metadata_intake_refuses(body, reason, competition, docker_client, behave_image):
    image = build(docker_client, behave_image("constant"), "refused", body)
    record = check_image(competition(), image, out=open(os.devnull, "w"))
    assert (record.verdict, record.failed_phase) == ("INVALID_IMAGE", "intake")
    assert reason in record.message, record.message
    assert record.phases.ran() == {}
