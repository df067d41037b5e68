"""A full disk on the host is the organizer's ``INFRA_ERROR``, never charged to the participant
(README, "Rounds at scale"; docs/security.md).

The phase's writable host directory (``runs/<evaluation>/model``) is put on a tmpfs of a few MiB
that this test mounts as root: the submission writes far less than its own disk limit, the host's
filesystem fills under it, its write fails with ENOSPC and it exits non-zero. A real container, a
real engine, the real backend and judge."""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest

from harness.evaluation.evaluation import Evaluation
from harness.evaluation.local_run import run_phases
from harness.evaluation.recording import record_evaluation
from harness.limits.verdicts import Verdict
from harness.records.sinks import RecordSinks
from harness.runner.docker_backend import DockerBackend
from harness.submissions.intake import pin_image
from harness.util.clock import utc_now

pytestmark = pytest.mark.docker

MIB = 1024**2
HOST_FS_MIB, DISK_LIMIT_MIB = 8, 64


@pytest.fixture
def tiny_filesystem():
    """``tiny_filesystem(path, size_mib)``: a tmpfs of that size mounted at ``path`` (root only),
    unmounted after the test."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root (CI runs as root)")
    mounted = []

    def mount(path, size_mib: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mib}m", "harness-test-tiny", str(path)], check=True)
        mounted.append(path)

    yield mount
    for path in reversed(mounted):
        subprocess.run(["umount", "--lazy", str(path)], check=True)


def test_a_phase_that_fails_on_a_full_host_disk_is_an_infra_error_never_charged(competition, docker_client, behave_image, tiny_filesystem):
    digits = competition(f"limits.train.disk={DISK_LIMIT_MIB}m")
    image = behave_image("diskfill")  # one file, 1 MiB writes, until a write fails
    submission = {
        "id": f"sub-{secrets.token_hex(6)}",
        "team": "team",
        "image": image,
        "image_digest": pin_image(DockerBackend(docker_client), image).digest,
        "submitted_at": utc_now(),
    }
    evaluation = Evaluation(digits, submission, round_id="round-test")
    tiny_filesystem(evaluation.paths.model, HOST_FS_MIB)
    with open(os.devnull, "w") as quiet:
        run_phases(evaluation, DockerBackend(docker_client), quiet, image)
    train = evaluation.results["train"]
    # the premise: the container ran, wrote until the host's filesystem (not its own limit) refused, and failed
    assert train.exit_code == 1 and "No space left on device" in train.log_tail
    assert 0 < train.output_bytes <= HOST_FS_MIB * MIB < DISK_LIMIT_MIB * MIB
    assert train.verdict.value == "INFRA_ERROR", train.message
    assert train.message == (
        f"train failed while the host's disk was full (0 B free), under its own disk limit "
        f"({HOST_FS_MIB}.0 MiB of {DISK_LIMIT_MIB}.0 MiB written); this is not the submission's fault and it will be retried"
    )
    assert "infer" not in evaluation.results
    record = record_evaluation(evaluation, digits.paths.records, RecordSinks())
    assert (record.verdict, record.failed_phase) == ("INFRA_ERROR", "train")
    # what a round reads to leave the submission pending (evaluated again, not charged) and the quota's rule
    assert evaluation.infra_failed and not Verdict(record.verdict).charged
