"""The verdict of one phase, as a pure function of what was measured.

Nothing here touches a container: the runner measures (exit code, the kernel's OOM flag, the
output it found, why a watchdog stopped the phase) and ``judge`` decides, in a fixed order:
a watchdog's reason first (it acted before the exit), then an output over its limits, the memory
cgroup's kill, a write refused at the disk limit, a failure while the host's disk was full (the
organizer's ``INFRA_ERROR``: the phase was under its own limit), and a non-zero exit (ending with a hint when its
output shows a mistake the contract explains: ``harness.limits.hints``).
"""

from __future__ import annotations

import signal
from dataclasses import dataclass, field

from harness.limits.hints import runtime_hint, with_hint
from harness.limits.output_watch import OutputUsage
from harness.limits.spec import PhaseLimits
from harness.limits.verdicts import PhaseVerdict
from harness.util.sizes import format_size


@dataclass(frozen=True)
class Observation:
    """Everything a phase's verdict depends on."""

    phase: str
    limits: PhaseLimits
    exit_code: int | None = 0
    oom_killed: bool = False
    wall_s: float = 0.0
    peak_memory_bytes: int = 0
    output: OutputUsage = field(default_factory=lambda: OutputUsage(0, 0))
    # Set when a watchdog killed the phase: TIMEOUT, OUTPUT_LIMIT, MEMORY_LIMIT (GPU memory) or INFRA_ERROR
    # (the GPU watch could not read NVML, so the limit did not hold), and why.
    stopped_for: PhaseVerdict | None = None
    stop_message: str = ""
    log_tail: str = ""  # the last lines of its output, for a runtime error's message
    # Set when the host filesystem of a writable directory was full at the end (``host_disk_full``).
    host_disk_full: str | None = None


@dataclass(frozen=True)
class Judgement:
    verdict: PhaseVerdict
    message: str = ""
    timeout_overshoot_s: float | None = None  # how long after its wall-clock limit it ended, for TIMEOUT


def judge(seen: Observation) -> Judgement:
    phase, limits = seen.phase, seen.limits
    output_problem = seen.output.exceeds(limits.disk, limits.files)
    if seen.stopped_for is PhaseVerdict.TIMEOUT:
        return Judgement(
            PhaseVerdict.TIMEOUT,
            f"{phase} ran past its wall-clock limit of {limits.wall_clock_s:g} s and was killed",
            round(max(0.0, seen.wall_s - limits.wall_clock_s), 3),
        )
    if seen.stopped_for is PhaseVerdict.MEMORY_LIMIT:
        return Judgement(PhaseVerdict.MEMORY_LIMIT, f"{seen.stop_message}, and was killed")
    if seen.stopped_for is PhaseVerdict.INFRA_ERROR:  # a watchdog could not hold the phase to a limit (NVML failing)
        return Judgement(PhaseVerdict.INFRA_ERROR, f"{seen.stop_message}; this is not the submission's fault and it will be retried")
    if seen.stopped_for is PhaseVerdict.OUTPUT_LIMIT or output_problem:
        return Judgement(PhaseVerdict.OUTPUT_LIMIT, f"{phase} {seen.stop_message or output_problem} and was stopped")
    if seen.oom_killed:
        return Judgement(
            PhaseVerdict.MEMORY_LIMIT,
            f"{phase} needed more than its memory limit of {format_size(limits.memory)} "
            f"and was killed by the kernel (peak {format_size(seen.peak_memory_bytes)})",
        )
    if seen.exit_code and seen.output.bytes >= limits.disk:
        return Judgement(
            PhaseVerdict.OUTPUT_LIMIT, f"{phase} hit the disk limit of {format_size(limits.disk)} (a write failed: file too large)"
        )
    if seen.exit_code and seen.host_disk_full:
        return Judgement(
            PhaseVerdict.INFRA_ERROR,
            f"{phase} failed while the host's disk was full ({seen.host_disk_full}), under its own disk limit "
            f"({format_size(seen.output.bytes)} of {format_size(limits.disk)} written); "
            "this is not the submission's fault and it will be retried",
        )
    if seen.exit_code:
        message = f"{phase} exited with code {seen.exit_code}{_signal_name(seen.exit_code)}"
        if seen.log_tail:
            last = seen.log_tail.strip().splitlines()[-1]
            message += f": {last}\nlast lines of its output:\n{seen.log_tail}"
            message = with_hint(message, runtime_hint(phase, seen.log_tail))
        return Judgement(PhaseVerdict.RUNTIME_ERROR, message)
    return Judgement(PhaseVerdict.OK)


def _signal_name(exit_code: int) -> str:
    if exit_code > 128:
        try:
            return f" (killed by {signal.Signals(exit_code - 128).name})"
        except ValueError:
            pass
    return ""
