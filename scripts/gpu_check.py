#!/usr/bin/env python3
"""GPU check for a machine with an NVIDIA GPU (Docker not needed): NVML telemetry and the GPU memory watchdog.

    python3 scripts/gpu_check.py            # a GPU machine: nvidia-ml-py, and torch (else libcuda through ctypes)
    python3 scripts/gpu_check.py --dry-run  # anywhere: a fake NVML, and a child that only pretends to allocate

A child process allocates GPU memory. The check reads it through the harness's own ``GpuWatch`` over the
child's PIDs (as the runner does over a container's), then lets the child grow past a limit and checks
that the watchdog decides MEMORY_LIMIT, the kill is quick and the memory comes back. One line per step:
PASS, WARN or FAIL with figures; exit status 1 on any FAIL. It takes seconds (at most DEADLINE_S).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.limits import PhaseVerdict  # noqa: E402 - the harness, from this checkout
from harness.limits.gpu import GpuWatch, Nvml, NvmlError, gpu_problem, load_nvml  # noqa: E402
from harness.limits.gpu.fake import FakeNvml  # noqa: E402
from harness.limits.gpu.pids import process_tree_pids  # noqa: E402
from harness.util.sizes import format_size  # noqa: E402

MIB = 1024**2
HOLD = 1024 * MIB  # what the child allocates first
STEP = 256 * MIB  # then it grows by this much every 50 ms ...
OVER = 1024 * MIB  # ... past a limit set this far above what NVML read for HOLD
GROW_TO = HOLD + 3 * OVER
FAKE_CONTEXT = 300 * MIB  # what the fake NVML adds per process, like a CUDA context
DEADLINE_S = 240
STARTUP_S = 120  # the child's CUDA start (torch import included)


def child(fake: bool) -> None:
    name, alloc = _allocator(fake)
    print(f"allocator {name}", flush=True)
    held, total = [alloc(HOLD)], HOLD
    print(f"allocated {total} {time.monotonic()}", flush=True)
    if not sys.stdin.readline():  # the parent says "grow" once it has read the held figure
        return  # the parent is gone
    while total < GROW_TO:
        time.sleep(0.05)
        held.append(alloc(STEP))
        total += STEP
        print(f"allocated {total} {time.monotonic()}", flush=True)
    time.sleep(STARTUP_S)


def _allocator(fake: bool):
    if fake:
        return "none (dry run)", lambda n: None
    try:
        import torch

        if torch.cuda.is_available():

            def alloc(n: int):
                tensor = torch.empty(n, dtype=torch.uint8, device="cuda")
                tensor.fill_(1)
                torch.cuda.synchronize()
                return tensor

            return f"torch {torch.__version__}", alloc
    except (ImportError, OSError):
        pass  # no torch, or a broken one
    return "the CUDA driver API (ctypes; torch missing or without CUDA)", _driver_alloc()


def _driver_alloc():
    import ctypes

    cuda = ctypes.CDLL("libcuda.so.1")

    def check(rc: int, what: str) -> None:
        if rc:
            raise RuntimeError(f"{what} failed with CUDA error {rc}")

    device, context = ctypes.c_int(), ctypes.c_void_p()
    check(cuda.cuInit(0), "cuInit")
    check(cuda.cuDeviceGet(ctypes.byref(device), 0), "cuDeviceGet")
    check(cuda.cuDevicePrimaryCtxRetain(ctypes.byref(context), device), "cuDevicePrimaryCtxRetain")
    check(cuda.cuCtxSetCurrent(context), "cuCtxSetCurrent")

    def alloc(n: int):
        pointer = ctypes.c_uint64()
        check(cuda.cuMemAlloc_v2(ctypes.byref(pointer), ctypes.c_size_t(n)), "cuMemAlloc")
        return pointer

    return alloc


class DeviceWide:
    """For where NVML's PIDs are not this PID namespace's (a container): the device's memory over its baseline."""

    PID = -1

    def __init__(self, nvml: Nvml, baseline: int) -> None:
        self.nvml, self.baseline = nvml, baseline

    def __getattr__(self, name: str):
        return getattr(self.nvml, name)

    def processes(self, handle) -> list[tuple[int, int | None]]:
        return [(self.PID, max(0, self.nvml.memory_used(handle) - self.baseline))]


class Child:
    """The allocating child process, its reports read on a thread (which also drives the fake NVML)."""

    def __init__(self, fake: FakeNvml | None, env: dict[str, str]) -> None:
        args = [sys.executable, __file__, "--child"] + (["--dry-run"] if fake else [])
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        self.fake = fake
        self.allocator = ""
        self.allocations: list[tuple[int, float]] = []  # (total bytes, child's monotonic time)
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            kind, _, rest = line.strip().partition(" ")
            with self.changed:
                if kind == "allocator":
                    self.allocator = rest
                elif kind == "allocated":
                    total, at = rest.split()
                    self.allocations.append((int(total), float(at)))
                    self._fake(int(total) + FAKE_CONTEXT, 40)
                self.changed.notify_all()
        with self.changed:
            self._fake(0, 0)  # the driver frees a dead process's memory
            self.changed.notify_all()

    def _fake(self, used: int, utilization: int) -> None:
        if self.fake is not None:
            device = self.fake.devices["0"]
            device.processes = {self.proc.pid: used} if used else {}
            device.memory_used, device.utilization = used, utilization

    def wait_for(self, predicate, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate() or self.proc.poll() is not None, timeout) and predicate()

    def pids(self) -> set[int]:
        return process_tree_pids(self.proc.pid)

    def kill(self) -> float:
        """SIGKILL the child and its descendants; returns when it was reaped (monotonic)."""
        for pid in self.pids():
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait()
        reaped = time.monotonic()
        self.reader.join(timeout=5)  # its last reports read
        return reaped


class Check:
    failed = False

    def say(self, status: str, step: str, detail: str) -> None:
        print(f"{status:<4} {step}: {detail}", flush=True)
        self.failed |= status == "FAIL"


def open_nvml(check: Check, dry_run: bool, device: str) -> tuple[Nvml, dict[str, str]]:
    if dry_run:
        check.say("PASS", "nvml", "fake NVML with 1 device (dry run: no GPU is touched)")
        return FakeNvml(1), dict(os.environ)
    try:
        import pynvml
    except ImportError:
        check.say(
            "FAIL",
            "nvml",
            "nvidia-ml-py is not installed: `pip install nvidia-ml-py`, or put a copy of its one "
            "pure-Python file, pynvml.py, on PYTHONPATH",
        )
        sys.exit(1)
    try:
        nvml = load_nvml()
        handle = nvml.handle(device)
        name, uuid = (_text(pynvml.nvmlDeviceGetName(handle)), _text(pynvml.nvmlDeviceGetUUID(handle)))
        total = pynvml.nvmlDeviceGetMemoryInfo(handle).total
        check.say(
            "PASS",
            "nvml",
            f"{nvml.device_count()} device(s); GPU {device} is {name} ({uuid}), {format_size(total)}, "
            f"driver {_text(pynvml.nvmlSystemGetDriverVersion())}",
        )
    except (NvmlError, pynvml.NVMLError) as exc:
        check.say("FAIL", "nvml", str(exc))
        sys.exit(1)
    return nvml, {**os.environ, "CUDA_VISIBLE_DEVICES": uuid}  # the child's CUDA device 0 is this NVML device


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def run(check: Check, nvml: Nvml, device: str, env: dict[str, str], dry_run: bool) -> None:
    handle = nvml.handle(device)
    baseline = nvml.memory_used(handle)
    child = Child(nvml if dry_run else None, env)
    try:
        if not child.wait_for(lambda: child.allocations, STARTUP_S):
            child.kill()
            check.say("FAIL", "allocate", f"the child allocated nothing in {STARTUP_S} s: {child.proc.stderr.read()[-2000:]}")
            return
        check.say("PASS", "allocate", f"{format_size(HOLD)} ({HOLD} bytes) with {child.allocator}")
        telemetry = GpuWatch(nvml, [device], child.pids, phase="check", limit=None, interval=0)
        time.sleep(0.5)  # let NVML's accounting settle
        read = telemetry.sample()
        pids: Callable[[], set[int]] = child.pids
        if read.memory_bytes == 0:
            listed = nvml.processes(handle)
            check.say(
                "WARN",
                "pids",
                f"none of the child's PIDs {sorted(child.pids())} is among NVML's processes {listed}: "
                "NVML reports another PID namespace (this runs in a container?); measuring the whole device instead",
            )
            nvml, pids = DeviceWide(nvml, baseline), (lambda: {DeviceWide.PID})
            read = GpuWatch(nvml, [device], pids, phase="check", limit=None).sample()
        overhead = read.memory_bytes - HOLD
        status = "PASS" if 0 <= overhead <= 2048 * MIB else "FAIL"
        check.say(
            status,
            "telemetry",
            f"allocated {HOLD} bytes, NVML read {read.memory_bytes} bytes "
            f"(+{format_size(max(0, overhead))} CUDA context etc.), utilization {read.utilization:.0f}%",
        )
        limit = read.memory_bytes + OVER
        watch = GpuWatch(nvml, [device], pids, phase="check", limit=limit, interval=0.02)
        child.proc.stdin.write("grow\n")
        child.proc.stdin.flush()
        problem, until = None, time.monotonic() + 60
        while problem is None and child.proc.poll() is None and time.monotonic() < until:
            problem = watch.poll()
            time.sleep(0.005)
        decided = time.monotonic()
        killed = child.kill()
        if problem is None:
            check.say(
                "FAIL", "watchdog", f"no decision over a limit of {format_size(limit)}; peak read {format_size(watch.peak_memory_bytes)}"
            )
            return
        crossed = next((at for total, at in child.allocations if total - HOLD > OVER), None)
        detection = (
            f"{max(0.0, decided - crossed) * 1000:.0f} ms after the allocation that crossed it"
            if crossed
            else "before the child reported crossing it"
        )
        ok = "GPU memory" in problem and killed - decided < 2
        check.say(
            "PASS" if ok else "FAIL",
            "watchdog",
            f"{PhaseVerdict.MEMORY_LIMIT}: {problem}; decided {detection}; "
            f"kill latency {(killed - decided) * 1000:.0f} ms (SIGKILL to reaped)",
        )
        freed = _wait_freed(nvml, handle, baseline)
        check.say(
            "PASS" if freed is not None else "FAIL",
            "release",
            f"device back to {format_size(nvml.memory_used(handle))} (baseline {format_size(baseline)})"
            + (f" {freed * 1000:.0f} ms after the kill" if freed is not None else " not within 10 s"),
        )
    finally:
        if child.proc.poll() is None:
            child.kill()


def _wait_freed(nvml: Nvml, handle, baseline: int) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < 10:
        if nvml.memory_used(handle) <= baseline + 64 * MIB:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def availability(check: Check, nvml: Nvml, dry_run: bool) -> None:
    runtimes: list[str] = []
    if shutil.which("docker"):
        done = subprocess.run(["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=30)
        runtimes = list(json.loads(done.stdout or "{}") or {}) if done.returncode == 0 else []
    problem = gpu_problem(1, runtimes, load=lambda: nvml) if dry_run else gpu_problem(1, runtimes)
    check.say("INFO", "docker", problem or "this machine can run GPU phases in Docker")


def _deadline(*_: object) -> None:
    print(f"FAIL deadline: the check ran over {DEADLINE_S} s", flush=True)
    os._exit(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="fake NVML and a pretend allocation: a smoke test without a GPU")
    parser.add_argument("--device", default="0", help="NVML index or UUID of the GPU to use (default 0)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.dry_run)
        return 0
    signal.signal(signal.SIGALRM, _deadline)
    signal.alarm(DEADLINE_S)
    started, check = time.monotonic(), Check()
    nvml, env = open_nvml(check, args.dry_run, "0" if args.dry_run else args.device)
    run(check, nvml, "0" if args.dry_run else args.device, env, args.dry_run)
    availability(check, nvml, args.dry_run)
    print(f"{'FAIL' if check.failed else 'PASS'} overall in {time.monotonic() - started:.1f} s", flush=True)
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
