"""Blame falls where it belongs: an image that cannot start is the submission's verdict, never INFRA_ERROR.

Each broken image is built here from the behave base, evaluated by ``harness check`` with a real
engine, and its verdict, failed phase and message asserted exactly; one goes through a real round
and is evaluated and charged, not left pending. The engine's own refusals that are the node's doing
stay INFRA_ERROR (the classifier's rows at the end, with the messages runc and dockerd write).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
from pathlib import Path

import pytest

from harness.evaluation.check import check_image
from harness.runner.image_faults import start_failure
from harness.submissions.ledger import EVALUATED, Ledger

pytestmark = pytest.mark.docker

# A 64-byte ELF header for aarch64 (e_machine 183): a binary for another architecture than the host's x86-64.
ARM_ELF = "b'\\x7fELF\\x02\\x01\\x01' + bytes(9) + struct.pack('<HHIQQQIHHHHHH', 2, 183, 1, 0x400000, 64, 0, 0, 64, 56, 0, 64, 0, 0)"
SCRIPT = "printf '#!/bin/sh\\necho hi\\n' > /app/run.sh"

BROKEN = {
    "missing": ('RUN mkdir -p /app\nENTRYPOINT ["/app/run.sh"]', "the entrypoint /app/run.sh is not in the image"),
    "not-executable": (
        f'RUN mkdir -p /app && {SCRIPT} && chmod 644 /app/run.sh\nENTRYPOINT ["/app/run.sh"]',
        "the entrypoint /app/run.sh is not executable (chmod +x it in the Dockerfile; a directory cannot be an entrypoint)",
    ),
    "directory": (
        'RUN mkdir -p /app/run.sh\nENTRYPOINT ["/app/run.sh"]',
        "the entrypoint /app/run.sh is not executable (chmod +x it in the Dockerfile; a directory cannot be an entrypoint)",
    ),
    "bad-interpreter": (
        "RUN mkdir -p /app && printf '#!/nonexistent\\necho hi\\n' > /app/run.sh && chmod 755 /app/run.sh\nENTRYPOINT [\"/app/run.sh\"]",
        "the entrypoint /app/run.sh names an interpreter that is not in the image",
    ),
    "no-shebang": (
        "RUN mkdir -p /app && printf 'echo hi\\n' > /app/run.sh && chmod 755 /app/run.sh\nENTRYPOINT [\"/app/run.sh\"]",
        "the entrypoint /app/run.sh is not a program this host can run (exec format error)",
    ),
    "garbage-binary": (
        'RUN mkdir -p /app && head -c 4096 /dev/urandom > /app/run && chmod 755 /app/run\nENTRYPOINT ["/app/run"]',
        "the entrypoint /app/run is not a program this host can run (exec format error)",
    ),
    "arm-binary": (
        f"RUN mkdir -p /app && python3 -c \"import struct; open('/app/run', 'wb').write({ARM_ELF})\" && chmod 755 /app/run\n"
        'ENTRYPOINT ["/app/run"]',
        "the entrypoint /app/run is not a program this host can run (exec format error)",
    ),
    "not-on-path": (
        'ENTRYPOINT ["no-such-program"]',
        "the entrypoint no-such-program is not a program on the image's PATH (give its full path in ENTRYPOINT, or install it)",
    ),
    "unsearchable-directory": (
        'RUN mkdir -p /app && cp /bin/true /app/run && chmod 700 /app\nENTRYPOINT ["/app/run"]',
        "a directory on the way to the entrypoint /app/run cannot be searched by the container's user, which is never root",
    ),
    "file-at-model": (
        'RUN touch /model\nENTRYPOINT ["/bin/true"]',
        "the image has a file at /model, where the harness mounts a directory (remove it from the image)",
    ),
    "passwd-directory": (
        'RUN rm /etc/passwd && mkdir /etc/passwd\nENTRYPOINT ["/bin/true"]',
        "the image's /etc/passwd cannot be read (is a directory); it must be a readable regular file",
    ),
}


def build(docker_client, base: str, name: str, body: str) -> str:
    tag = f"harness-test/blame-{name}:latest"
    dockerfile = f"FROM {base}\nUSER root\n{body}\nUSER 10001\n"
    docker_client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return tag


def check(competition, docker_client, image):
    return check_image(competition(), image, out=open(os.devnull, "w"))


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_image_that_cannot_start_is_a_runtime_error(case, competition, docker_client, behave_image):
    body, reason = BROKEN[case]
    image = build(docker_client, behave_image("constant"), case, body)
    record = check(competition, docker_client, image)
    assert (record.verdict, record.failed_phase) == ("RUNTIME_ERROR", "train"), record.message
    assert record.message.startswith(f"train could not start: {reason}"), record.message
    assert record.phases.infer is None
    assert record.phases.train.verdict == "RUNTIME_ERROR"


def test_workdir_that_is_a_file_is_a_runtime_error(competition, docker_client, behave_image):
    """A WORKDIR that is a file cannot be built with a Dockerfile; an image's config can still say it."""
    base = build(docker_client, behave_image("constant"), "workdir-base", "RUN touch /afile")
    holder = docker_client.containers.create(base, command=["true"])
    try:
        holder.commit(repository="harness-test/blame-workdir-file", tag="latest", conf={"WorkingDir": "/afile"})
    finally:
        holder.remove()
    record = check(competition, docker_client, "harness-test/blame-workdir-file:latest")
    assert (record.verdict, record.failed_phase) == ("RUNTIME_ERROR", "train"), record.message
    assert record.message == "train could not start: the image's WORKDIR /afile is a file, not a directory (point WORKDIR at a directory)"


def test_no_entrypoint_is_refused_at_intake(competition, docker_client, behave_image):
    image = build(docker_client, behave_image("constant"), "no-entrypoint", 'ENTRYPOINT []\nCMD ["python3", "/app/behave.py"]')
    record = check(competition, docker_client, image)
    assert (record.verdict, record.failed_phase) == ("INVALID_IMAGE", "intake")
    assert record.message == (
        f"image {image!r} has no ENTRYPOINT: the harness runs <entrypoint> train and <entrypoint> infer "
        '(add e.g. ENTRYPOINT ["python3", "/app/main.py"] to the Dockerfile)'
    )
    assert record.phases.ran() == {}


def test_relative_workdir_is_refused_at_intake(competition, docker_client, behave_image):
    holder = docker_client.containers.create(behave_image("constant"), command=["true"])
    try:
        holder.commit(repository="harness-test/blame-relative-workdir", tag="latest", conf={"WorkingDir": "rel/dir"})
    finally:
        holder.remove()
    record = check(competition, docker_client, "harness-test/blame-relative-workdir:latest")
    assert (record.verdict, record.failed_phase) == ("INVALID_IMAGE", "intake")
    assert record.message.endswith("has a relative WORKDIR 'rel/dir'; it must be an absolute path")


def test_unstartable_image_in_a_round_is_evaluated_and_charged(home, docker_client, behave_image):
    """Not retried, not pending: evaluated once with its verdict, charged, and finalize is not blocked."""
    body, reason = BROKEN["not-executable"]
    image = build(docker_client, behave_image("constant"), "not-executable", body)

    def harness(*args: str) -> subprocess.CompletedProcess:
        from test_round import in_process  # the command line in this process: its round on this process's Ray

        return in_process(home, *args)

    submitted = harness("submit", "digits", "--team", "blamed", "--image", image)
    assert submitted.returncode == 0, submitted.stderr
    done = harness(
        "round", "digits", "competition.smoke.enabled=false", "--json"
    )  # the full phase's blame (a smoke failure is not charged)
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["verdicts"] == {"RUNTIME_ERROR": 1}, summary
    assert summary["retried"] == 0 and summary["left_pending"] == [], summary

    (submission,) = Ledger(home, "digits").all()
    assert submission.state == EVALUATED and submission.infra_failures == 0 and submission.charged
    (record,) = [json.loads(p.read_text()) for p in Path(home, "competitions/digits/records").glob("*.json")]
    assert (record["verdict"], record["failed_phase"]) == ("RUNTIME_ERROR", "train")
    assert record["message"] == f"train could not start: {reason}"

    assert "no pending submissions" in harness("round", "digits").stderr
    assert harness("finalize", "digits").returncode == 0


RUNC = "failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: "


@pytest.mark.parametrize(
    "engine_message",
    [
        # the runtime's own binary missing: an "exec" and "not found in $PATH", but not the container's process
        "failed to create shim task: OCI runtime create failed: unable to retrieve OCI runtime error (open "
        "/run/containerd/io.containerd.runtime.v2.task/moby/0123/log.json: no such file or directory): "
        'exec: "runc": executable file not found in $PATH: unknown',
        "unknown or invalid runtime name: runsc",
        f"{RUNC}error during container init: error setting cgroup config for procHooks process: "
        "failed to write 100000: write /sys/fs/cgroup/cpu/harness/x/cpu.cfs_quota_us: no such file or directory: unknown",
        "failed to create shim task: OCI runtime create failed: runc create failed: mkdir /run/containerd/runc/moby/x: "
        "no space left on device: unknown",
        'error while creating mount source path "/srv/harness/runs/ev-1/model": mkdir /srv/harness: read-only file system',
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?",
    ],
)
def test_what_a_healthy_node_would_run_stays_the_nodes_fault(engine_message):
    assert start_failure("train", engine_message, ["/app/run.sh"], ["train"]) is None


@pytest.mark.parametrize(
    ("engine_message", "reason"),
    [
        (
            f'{RUNC}exec: "/app/run.sh": stat /app/run.sh: no such file or directory: unknown',
            "the entrypoint /app/run.sh is not in the image",
        ),
        # the same, as newer runc words it
        (
            f'{RUNC}error during container init: exec: "/app/run.sh": permission denied: unknown',
            "the entrypoint /app/run.sh is not executable",
        ),
        (
            f'{RUNC}error during container init: exec: "/app/run": exec format error: unknown',
            "the entrypoint /app/run is not a program this host",
        ),
        (f'{RUNC}exec: "train": executable file not found in $PATH: unknown', 'the image has no ENTRYPOINT, so "train" itself was run'),
        (
            f'{RUNC}error during container init: chdir to cwd ("/work") set in config.json failed: permission denied: unknown',
            "the image's WORKDIR /work cannot be entered (permission denied)",
        ),
    ],
)
def test_engine_messages_the_image_causes(engine_message, reason):
    entrypoint = [] if "train" in engine_message else ["/app/run.sh"]
    assert start_failure("train", engine_message, entrypoint, ["train"]).startswith(f"train could not start: {reason}")


def test_a_start_refusal_repeated_where_other_containers_start_is_the_images(home, docker_client, behave_image):
    """An image whose /tmp is a link to /dev/null: the engine refuses its container with a message no
    rule knows ("error reopening /dev/null ..."), at first the node's fault (INFRA_ERROR, retried);
    once the same refusal came twice from a node that started another submission's containers in
    the same round, it is the submission's RUNTIME_ERROR with the engine's message, charged, not
    left pending. Alone in a round (no node proved healthy) it stays the node's: pending, not charged."""
    from test_round import in_process  # the command line in this process: its round on this process's Ray

    image = build(docker_client, behave_image("constant"), "tmp-to-dev-null", "RUN rm -rf /tmp && ln -s /dev/null /tmp")
    quick = ("competition.smoke.enabled=false", "runner.retry_backoff_s=0.5", "--json")
    assert in_process(home, "submit", "digits", "--team", "linked", "--image", image).returncode == 0
    alone = in_process(home, "round", "digits", "runner.infra_retries=1", *quick)
    assert alone.returncode == 0, alone.stderr
    assert json.loads(alone.stdout)["verdicts"] == {"INFRA_ERROR": 1}
    (pending,) = Ledger(home, "digits").all()
    assert pending.state == "pending" and not pending.charged

    assert in_process(home, "submit", "digits", "--team", "steady", "--image", behave_image("constant")).returncode == 0
    done = in_process(home, "round", "digits", "runner.infra_retries=6", *quick)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verdicts"] == {"RUNTIME_ERROR": 1, "SCORED": 1}
    linked = next(s for s in Ledger(home, "digits").all() if s.team == "linked")
    assert linked.state == EVALUATED and linked.charged
    record = json.loads((Path(home, "competitions/digits/records") / f"{linked.evaluations[-1]}.json").read_text())
    assert (record["verdict"], record["failed_phase"]) == ("RUNTIME_ERROR", "train")
    assert record["message"].startswith("train could not start, the same way twice on "), record["message"]
    assert "where other containers started: " in record["message"] and "/dev/null" in record["message"]
