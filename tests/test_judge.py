"""Verdict judgement, one row per rule (as DOMjudge's runguard tests do): what was measured in, the
exact verdict and message out. Pure: no container runs here; tests/test_limits_enforced.py shows
the same verdicts coming out of real containers."""

import pytest

from harness.limits import PhaseLimits, PhaseVerdict
from harness.limits.judge import Judgement, Observation, judge
from harness.limits.output_watch import OutputUsage

MIB = 1024**2
LIMITS = PhaseLimits(memory=256 * MIB, wall_clock_s=5, disk=64 * MIB, files=100)


def seen(**fields) -> Observation:
    return Observation(phase="train", limits=LIMITS, **fields)


CASES = {
    "clean exit": (seen(exit_code=0), Judgement(PhaseVerdict.OK)),
    "wall clock": (
        seen(exit_code=137, wall_s=5.25, stopped_for=PhaseVerdict.TIMEOUT),
        Judgement(PhaseVerdict.TIMEOUT, "train ran past its wall-clock limit of 5 s and was killed", 0.25),
    ),
    "wall clock, killed before the limit was measured": (
        seen(exit_code=137, wall_s=4.9, stopped_for=PhaseVerdict.TIMEOUT),
        Judgement(PhaseVerdict.TIMEOUT, "train ran past its wall-clock limit of 5 s and was killed", 0.0),
    ),
    "GPU memory watchdog": (
        seen(
            exit_code=137, stopped_for=PhaseVerdict.MEMORY_LIMIT, stop_message="train used 3.0 GiB of GPU memory, over its limit of 1.0 GiB"
        ),
        Judgement(PhaseVerdict.MEMORY_LIMIT, "train used 3.0 GiB of GPU memory, over its limit of 1.0 GiB, and was killed"),
    ),
    "GPU watch unable to read NVML": (
        seen(
            exit_code=137,
            stopped_for=PhaseVerdict.INFRA_ERROR,
            stop_message="train: its GPU memory could not be watched, NVML failed 2 time(s) in a row on GPU(s) 0 (GPU is lost)",
        ),
        Judgement(
            PhaseVerdict.INFRA_ERROR,
            "train: its GPU memory could not be watched, NVML failed 2 time(s) in a row on GPU(s) 0 (GPU is lost); "
            "this is not the submission's fault and it will be retried",
        ),
    ),
    "output watchdog": (
        seen(exit_code=137, stopped_for=PhaseVerdict.OUTPUT_LIMIT, stop_message="wrote 70.0 MiB, over the disk limit of 64.0 MiB"),
        Judgement(PhaseVerdict.OUTPUT_LIMIT, "train wrote 70.0 MiB, over the disk limit of 64.0 MiB and was stopped"),
    ),
    "too much output found after a clean exit": (
        seen(exit_code=0, output=OutputUsage(0, 101)),
        Judgement(PhaseVerdict.OUTPUT_LIMIT, "train created more than its limit of 100 files and directories and was stopped"),
    ),
    "unmeasurable output": (
        seen(exit_code=0, output=OutputUsage(0, 3, "nested directories more than 64 levels deep")),
        Judgement(PhaseVerdict.OUTPUT_LIMIT, "train nested directories more than 64 levels deep and was stopped"),
    ),
    "memory cgroup kill": (
        seen(exit_code=137, oom_killed=True, peak_memory_bytes=256 * MIB),
        Judgement(
            PhaseVerdict.MEMORY_LIMIT, "train needed more than its memory limit of 256.0 MiB and was killed by the kernel (peak 256.0 MiB)"
        ),
    ),
    "a write refused at the disk limit": (
        seen(exit_code=1, output=OutputUsage(64 * MIB, 1)),
        Judgement(PhaseVerdict.OUTPUT_LIMIT, "train hit the disk limit of 64.0 MiB (a write failed: file too large)"),
    ),
    "a failure while the host's disk was full, under the phase's own limit": (
        seen(
            exit_code=1, output=OutputUsage(8 * MIB, 1), host_disk_full="0 B free", log_tail="OSError: [Errno 28] No space left on device"
        ),
        Judgement(
            PhaseVerdict.INFRA_ERROR,
            "train failed while the host's disk was full (0 B free), under its own disk limit (8.0 MiB of 64.0 MiB written); "
            "this is not the submission's fault and it will be retried",
        ),
    ),
    "the host's disk full too, but the phase hit its own limit": (
        seen(exit_code=1, output=OutputUsage(64 * MIB, 1), host_disk_full="0 B free"),
        Judgement(PhaseVerdict.OUTPUT_LIMIT, "train hit the disk limit of 64.0 MiB (a write failed: file too large)"),
    ),
    "the host's disk full, but a clean exit": (seen(exit_code=0, host_disk_full="0 B free"), Judgement(PhaseVerdict.OK)),
    "non-zero exit with output": (
        seen(exit_code=3, log_tail="loading\nValueError: bad shape"),
        Judgement(
            PhaseVerdict.RUNTIME_ERROR,
            "train exited with code 3: ValueError: bad shape\nlast lines of its output:\nloading\nValueError: bad shape",
        ),
    ),
    "non-zero exit the contract explains: a hint ends the message": (
        seen(exit_code=1, log_tail="saving\nOSError: [Errno 30] Read-only file system: '/app/m.pkl'"),
        Judgement(
            PhaseVerdict.RUNTIME_ERROR,
            "train exited with code 1: OSError: [Errno 30] Read-only file system: '/app/m.pkl'\nlast lines of its output:\nsaving\n"
            "OSError: [Errno 30] Read-only file system: '/app/m.pkl'\nhint: /app/m.pkl is on a read-only file system: "
            "train may write only to /model (kept for infer) and /tmp (emptied when train ends)",
        ),
    ),
    "killed by a signal, silent": (
        seen(exit_code=139),
        Judgement(PhaseVerdict.RUNTIME_ERROR, "train exited with code 139 (killed by SIGSEGV)"),
    ),
    "an exit code past the signals": (seen(exit_code=255), Judgement(PhaseVerdict.RUNTIME_ERROR, "train exited with code 255")),
}


@pytest.mark.parametrize("case", CASES)
def test_judge(case):
    observation, expected = CASES[case]
    assert judge(observation) == expected


def test_a_watchdog_reason_wins_over_the_kernel_flag():
    """The watchdog acted first: an output flood killed at its limit is OUTPUT_LIMIT even if the
    cgroup also recorded an OOM on the way down."""
    verdict = judge(seen(exit_code=137, oom_killed=True, stopped_for=PhaseVerdict.OUTPUT_LIMIT, stop_message="wrote too much")).verdict
    assert verdict is PhaseVerdict.OUTPUT_LIMIT
