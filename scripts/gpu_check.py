#!/usr/bin/env python3
"""GPU check for a machine with an NVIDIA GPU (root, the driver and NVML; Docker not needed).

    python3 scripts/gpu_check.py            # a GPU machine: nvidia-ml-py, and torch (else libcuda through ctypes)
    python3 scripts/gpu_check.py --dry-run  # anywhere: a FAKE NVML, and a child that only pretends to allocate

It changes nothing on the machine (no MIG mode, persistence mode or clock is set) and takes well under
DEADLINE_S. One line per step, PASS, WARN, INFO or FAIL with figures; exit status 1 on any FAIL:

- inventory: driver, NVML, CUDA, each GPU (MIG mode, MIG devices), the NVIDIA Container Toolkit as the
  harness finds it (hook or CDI, version) and the CDI device names;
- the production PID path: a cgroup of its own holding a PID namespace (``unshare --pid``) whose
  detached grandchild allocates GPU memory, found through the cgroup's ``cgroup.procs`` as the runner
  finds a container's processes; what a watch holding the namespace's own PIDs sees instead;
- spikes shorter than the watch's cadence (0.25 s): how many are caught, per duration;
- the watchdog at its production cadence: decision latency, the kill (SIGKILL to the namespace's
  init, as the runner kills a container's), the memory's release;
- MIG on real NVML: utilization (NotSupported), memory and processes of a MIG device, where one exists;
- Ray: the GPU id Ray gives a task, where Ray imports.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness.limits import PhaseVerdict  # noqa: E402 - the harness, from this checkout
from harness.limits.gpu import GpuWatch, Nvml, NvmlError, gpu_problem, load_nvml  # noqa: E402
from harness.limits.gpu.fake import FakeNvml  # noqa: E402
from harness.limits.gpu.pids import cgroup_pids, process_tree_pids  # noqa: E402
from harness.limits.gpu.toolkit import find_toolkit  # noqa: E402
from harness.limits.gpu.watch import POLL_S  # noqa: E402
from harness.util.sizes import format_size  # noqa: E402

MIB = 1024**2
HOLD = 1024 * MIB  # what the grandchild allocates first
STEP = 256 * MIB  # then it grows by this much every 50 ms ...
OVER = 1024 * MIB  # ... past a limit set this far above what NVML read for HOLD
GROW_TO = HOLD + 3 * OVER
SPIKE = 2 * OVER  # a spike: this much more, held for a few ms, then freed
SPIKES_MS = (50, 100, 200, 400)  # durations tried, shorter and longer than the cadence
SPIKES_EACH = 8
FAKE_CONTEXT = 300 * MIB  # what the fake NVML adds per process, like a CUDA context
DEADLINE_S = 280
STARTUP_S = 120  # the grandchild's CUDA start (torch import included)


# -- the allocating side: the namespace's init and its detached grandchild -------------------------


def namespace_init(fake: bool, detach: bool) -> None:
    """PID 1 of the check's PID namespace (or a plain child): starts the allocator as a detached
    grandchild (its own session, its parent gone), then reaps, as a container's init does."""
    if not detach:
        allocator(fake)
        return
    if os.fork() == 0:
        os.setsid()
        if os.fork() == 0:
            allocator(fake)
            os._exit(0)
        os._exit(0)
    with contextlib.suppress(ChildProcessError):
        while True:
            os.wait()  # the middle child, then the orphaned grandchild (reparented to this init)


def allocator(fake: bool) -> None:
    name, alloc, free = _allocator(fake)
    say = lambda *words: print(*words, flush=True)  # noqa: E731
    say("allocator", os.getpid(), name)  # its PID in the namespace
    held, total = [alloc(HOLD)], HOLD
    say("allocated", total, time.monotonic())
    while line := sys.stdin.readline():
        command = line.split()
        if command[:1] == ["spike"]:
            ms = int(command[1])
            extra = alloc(SPIKE)
            say("spike-on", SPIKE, time.monotonic())
            time.sleep(ms / 1000)
            free(extra)
            say("spike-off", SPIKE, time.monotonic())
        elif command[:1] == ["grow"]:
            while total < GROW_TO:
                time.sleep(0.05)
                held.append(alloc(STEP))
                total += STEP
                say("allocated", total, time.monotonic())
    time.sleep(STARTUP_S)


def _allocator(fake: bool):
    if fake:
        return "none (dry run)", lambda n: None, lambda block: None
    try:
        import torch

        if torch.cuda.is_available():

            def alloc(n: int):
                tensor = torch.empty(n, dtype=torch.uint8, device="cuda")
                tensor.fill_(1)
                torch.cuda.synchronize()
                return tensor

            def free(tensor) -> None:
                del tensor
                torch.cuda.synchronize()
                torch.cuda.empty_cache()  # back to the driver, where NVML sees it

            return f"torch {torch.__version__}", alloc, free
    except (ImportError, OSError):
        pass  # no torch, or a broken one
    return ("the CUDA driver API (ctypes; torch missing or without CUDA)", *_driver_alloc())


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

    def free(pointer) -> None:
        check(cuda.cuMemFree_v2(pointer), "cuMemFree")

    return alloc, free


# -- the harness's side ----------------------------------------------------------------------------


class Cgroup:
    """A cgroup of the check's own (v2, or v1's pids controller), as the runner's parent cgroup of a run."""

    def __init__(self) -> None:
        root = Path("/sys/fs/cgroup")
        base = root if (root / "cgroup.controllers").exists() else root / "pids"
        self.path = base / f"harness-gpu-check-{os.getpid()}"
        self.path.mkdir()

    def enter(self) -> None:  # in the child, before exec: it and all it starts are in the cgroup
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def pids(self) -> set[int]:
        return cgroup_pids(self.path)

    def remove(self) -> None:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                self.path.rmdir()
                return
            except OSError:
                time.sleep(0.05)  # its last processes are still exiting


def isolation_problem() -> str | None:
    """Why the production PID path (a cgroup of its own, a PID namespace) cannot be set up here, or None."""
    if os.geteuid() != 0:
        return "not root"
    if shutil.which("unshare") is None:
        return "no unshare (util-linux)"
    root = Path("/sys/fs/cgroup")
    base = root if (root / "cgroup.controllers").exists() else root / "pids"
    if not os.access(base, os.W_OK):
        return f"{base} is not writable"
    return None


def host_pid(ns_pid: int, candidates: set[int]) -> int | None:
    """The host PID of the process whose PID in its own namespace is ``ns_pid`` (``NSpid`` in /proc)."""
    for pid in candidates:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("NSpid:") and line.split()[-1] == str(ns_pid) and len(line.split()) > 2:
                    return pid
    return None


class Child:
    """The allocating process tree, its reports read on a thread (which also drives the fake NVML)."""

    def __init__(self, fake: FakeNvml | None, env: dict[str, str], cgroup: Cgroup | None) -> None:
        args = [sys.executable, __file__, "--child"] + (["--dry-run"] if fake else []) + (["--detach"] if cgroup else [])
        if cgroup is not None:
            args = ["unshare", "--pid", "--fork", "--kill-child", *args]
        self.cgroup = cgroup
        self.proc = subprocess.Popen(
            args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=cgroup.enter if cgroup else None,  # noqa: PLW1509 - only writes its own PID to a file
        )
        self.fake = fake
        self.allocator = ""
        self.ns_pid = 0  # the allocator's PID in its namespace
        self.allocations: list[tuple[int, float]] = []  # (total bytes, monotonic time)
        self.spikes: list[tuple[float, float]] = []  # (on, off), monotonic
        self.used = 0  # what the fake NVML shows
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            kind, *rest = line.split()
            with self.changed:
                if kind == "allocator":
                    self.ns_pid, self.allocator = int(rest[0]), " ".join(rest[1:])
                elif kind == "allocated":
                    self.allocations.append((int(rest[0]), float(rest[1])))
                    self._fake(int(rest[0]) - (self.allocations[-2][0] if len(self.allocations) > 1 else 0))
                elif kind == "spike-on":  # a fake NVML shows it from now on, the GPU from the allocator's time
                    self._fake(int(rest[0]))
                    self.spikes.append((time.monotonic() if self.fake else float(rest[1]), 0.0))
                elif kind == "spike-off":
                    self._fake(-int(rest[0]))
                    self.spikes[-1] = (self.spikes[-1][0], time.monotonic() if self.fake else float(rest[1]))
                self.changed.notify_all()
        with self.changed:
            self._fake(-self.used)  # the driver frees a dead process's memory
            self.changed.notify_all()

    def _fake(self, delta: int) -> None:
        self.used += delta
        if self.fake is not None:
            device = self.fake.by_id["0"]
            pid = self.allocator_pid() if self.used else None
            device.processes = {pid: self.used + FAKE_CONTEXT} if pid else {}
            device.memory_used = self.used + FAKE_CONTEXT if self.used else 0
            device.utilization = 40 if self.used else 0

    def allocator_pid(self) -> int | None:
        """The allocator's host PID (what NVML reports)."""
        if self.cgroup is None:
            return self.proc.pid
        return host_pid(self.ns_pid, self.cgroup.pids())

    def wait_for(self, predicate, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: predicate() or self.proc.poll() is not None, timeout) and predicate()

    def pids(self) -> set[int]:
        """The production path: the cgroup's processes; without one, the process tree."""
        return self.cgroup.pids() if self.cgroup is not None else process_tree_pids(self.proc.pid)

    def send(self, command: str) -> None:
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def kill(self) -> float:
        """SIGKILL the namespace's init (the kernel kills all in its namespace), as the runner kills a container's;
        returns when no process is left in the cgroup (monotonic)."""
        init = host_pid(1, self.cgroup.pids()) if self.cgroup is not None else None
        for pid in [init] if init else self.pids():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait()
        while self.cgroup is not None and self.cgroup.pids():
            time.sleep(0.001)
        reaped = time.monotonic()
        self.reader.join(timeout=5)  # its last reports read
        return reaped


class Check:
    failed = False

    def say(self, status: str, step: str, detail: str) -> None:
        print(f"{status:<4} {step}: {detail}", flush=True)
        self.failed |= status == "FAIL"


def inventory(check: Check, dry_run: bool, device: str) -> tuple[Nvml, dict[str, str]]:
    if dry_run:
        nvml = FakeNvml(1)
        check.say("PASS", "nvml", "FAKE NVML with 1 device (dry run: no GPU is touched); CUDA up to " + str(nvml.cuda_version()))
        _toolkit(check, dry_run)
        return nvml, dict(os.environ)
    try:
        import pynvml
    except ImportError:
        check.say(
            "FAIL", "nvml", "nvidia-ml-py is not installed: `pip install nvidia-ml-py`, or put its one file, pynvml.py, on PYTHONPATH"
        )
        sys.exit(1)
    try:
        nvml = load_nvml()
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            try:
                mig = pynvml.nvmlDeviceGetMigMode(handle)
                mig_text = f"MIG {'on' if mig[0] else 'off'}{' (pending on)' if mig[1] and not mig[0] else ''}"
            except pynvml.NVMLError as exc:
                mig_text = f"MIG: {exc}"
            with contextlib.suppress(pynvml.NVMLError):
                mig_text += f", persistence {'on' if pynvml.nvmlDeviceGetPersistenceMode(handle) else 'off'}"
            gpus.append(
                f"GPU {index} {_text(pynvml.nvmlDeviceGetName(handle))} ({_text(pynvml.nvmlDeviceGetUUID(handle))}), "
                f"{format_size(pynvml.nvmlDeviceGetMemoryInfo(handle).total)}, {mig_text}"
            )
        uuid = _text(pynvml.nvmlDeviceGetUUID(nvml.handle(device)))
        check.say(
            "PASS",
            "nvml",
            f"driver {_text(pynvml.nvmlSystemGetDriverVersion())}, NVML {_text(pynvml.nvmlSystemGetNVMLVersion())}, "
            f"CUDA up to {nvml.cuda_version()}; devices a phase may be given: {nvml.devices()}; " + "; ".join(gpus),
        )
    except (NvmlError, pynvml.NVMLError) as exc:
        check.say("FAIL", "nvml", str(exc))
        sys.exit(1)
    _toolkit(check, dry_run)
    return nvml, {**os.environ, "CUDA_VISIBLE_DEVICES": uuid}  # the allocator's CUDA device 0 is this NVML device


def _toolkit(check: Check, dry_run: bool) -> None:
    info = _docker_info()
    toolkit = find_toolkit(info)
    names = []
    for directory in info.get("CDISpecDirs") or ["/etc/cdi", "/var/run/cdi"]:
        for spec in sorted(Path(directory).glob("*.*")) if Path(directory).is_dir() else []:
            with contextlib.suppress(OSError):
                text = spec.read_text(errors="replace")
                if "nvidia.com/gpu" in text:
                    names += [f"nvidia.com/gpu={n.strip().strip(chr(34))}" for n in _cdi_names(text)]
    ctk = shutil.which("nvidia-ctk")
    ctk_version = subprocess.run([ctk, "--version"], capture_output=True, text=True, timeout=10).stdout.splitlines()[:1] if ctk else []
    check.say(
        "INFO",
        "toolkit",
        f"{toolkit.mode or 'none'}, version {toolkit.version_text} ({toolkit.where or 'nothing found'}); nvidia-ctk: "
        f"{ctk_version[0] if ctk_version else 'absent'}; CDI devices: {', '.join(names) or 'none'}; engine: "
        f"{'Docker ' + str(info.get('ServerVersion')) + ', cgroup driver ' + str(info.get('CgroupDriver')) if info else 'no Docker daemon'}"
        + (" (dry run: this machine's)" if dry_run else ""),
    )


def _cdi_names(text: str) -> list[str]:
    return [line.split(":", 1)[1] for line in text.splitlines() if line.strip().startswith("- name:")]


def _docker_info() -> dict:
    if not shutil.which("docker"):
        return {}
    with contextlib.suppress(OSError, subprocess.SubprocessError, ValueError):
        done = subprocess.run(["docker", "info", "--format", "{{json .}}"], capture_output=True, text=True, timeout=30)
        if done.returncode == 0:
            return json.loads(done.stdout or "{}") or {}
    return {}


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value


def run(check: Check, nvml: Nvml, device: str, env: dict[str, str], dry_run: bool) -> None:
    handle = nvml.handle(device)
    baseline = nvml.memory_used(handle)
    why_not = isolation_problem()
    cgroup = Cgroup() if why_not is None else None
    child = Child(nvml if dry_run else None, env, cgroup)
    try:
        if not child.wait_for(lambda: child.allocations, STARTUP_S):
            child.kill()
            check.say("FAIL", "allocate", f"nothing allocated in {STARTUP_S} s: {child.proc.stderr.read()[-2000:]}")
            return
        check.say("PASS", "allocate", f"{format_size(HOLD)} ({HOLD} bytes) with {child.allocator}")
        time.sleep(0.5)  # let NVML's accounting settle
        read = _pid_path(check, nvml, device, handle, child, why_not)
        if read is None:
            return
        limit = read + OVER
        _spikes(check, nvml, device, child, limit)
        _watchdog(check, nvml, device, child, limit, baseline)
    finally:
        if child.proc.poll() is None:
            child.kill()
        if cgroup is not None:
            cgroup.remove()


def _pid_path(check: Check, nvml: Nvml, device: str, handle, child: Child, why_not: str | None) -> int | None:
    listed = nvml.processes(handle)
    pids = child.pids()
    watch = GpuWatch(nvml, [device], child.pids, phase="check", limit=None, interval=0)
    read = watch.sample()
    host = child.allocator_pid()
    if why_not is None:
        found = host in pids and host in {pid for pid, _ in listed}
        check.say(
            "PASS" if found and not watch.foreign_pids else "FAIL",
            "pids",
            f"production path: cgroup {child.cgroup.path} holds {sorted(pids)}; its PID namespace's detached grandchild is "
            f"PID {child.ns_pid} there and {host} on the host; NVML lists {listed}",
        )
        # what a harness in a PID namespace of its own would see: PIDs that match none of NVML's
        inside = GpuWatch(nvml, [device], lambda: {child.ns_pid, 1}, phase="check", limit=None, interval=0)
        seen = inside.sample().memory_bytes
        check.say(
            "PASS" if inside.foreign_pids and seen >= HOLD else "FAIL",
            "pidns",
            f"a watch holding the namespace's own PIDs {{1, {child.ns_pid}}} matches none of NVML's and counts the whole device: "
            f"{format_size(seen)} (the run's processes read {format_size(read.memory_bytes)})",
        )
    else:
        check.say("WARN", "pids", f"the production PID path was not exercised ({why_not}): the process tree {sorted(pids)} instead")
    overhead = read.memory_bytes - HOLD
    utilization = "unknown (MIG)" if read.utilization is None else f"{read.utilization:.0f}%"
    check.say(
        "PASS" if 0 <= overhead <= 2048 * MIB else "FAIL",
        "telemetry",
        f"allocated {HOLD} bytes, NVML read {read.memory_bytes} bytes (+{format_size(max(0, overhead))}: the CUDA context etc., "
        f"which counts against gpu_memory), utilization {utilization}",
    )
    return read.memory_bytes


def _spikes(check: Check, nvml: Nvml, device: str, child: Child, limit: int) -> None:
    """Spikes over the limit, shorter and longer than the cadence: how many a watch polling every POLL_S sees."""
    watch = GpuWatch(nvml, [device], child.pids, phase="check", limit=limit, interval=POLL_S, clock=time.monotonic)
    over: list[float] = []
    done = threading.Event()

    def poll() -> None:
        while not done.is_set():
            if (stop := watch.poll()) is not None and stop.verdict is PhaseVerdict.MEMORY_LIMIT:
                over.append(time.monotonic())
            time.sleep(0.002)

    poller = threading.Thread(target=poll, daemon=True)
    poller.start()
    plan = [ms for ms in SPIKES_MS for _ in range(SPIKES_EACH)]
    random.shuffle(plan)
    for ms in plan:
        before = len(child.spikes)
        child.send(f"spike {ms}")
        child.wait_for(lambda b=before: len(child.spikes) > b and child.spikes[b][1] > 0, 30)
        time.sleep(random.uniform(0.05, 0.4))  # a random phase against the polls
    done.set()
    poller.join()
    caught: dict[int, int] = dict.fromkeys(SPIKES_MS, 0)
    for ms, (on, off) in zip(plan, child.spikes, strict=False):
        caught[ms] += any(on <= at <= off + 0.05 for at in over)
    figures = ", ".join(
        f"{ms} ms: {caught[ms]}/{SPIKES_EACH} (expected ~{min(1.0, ms / 1000 / POLL_S) * SPIKES_EACH:.0f})" for ms in SPIKES_MS
    )
    longest = SPIKES_MS[-1]
    check.say(
        "PASS" if caught[longest] == SPIKES_EACH else "FAIL",
        "spikes",
        f"{format_size(SPIKE)} over a limit of {format_size(limit)}, polled every {POLL_S} s: caught {figures}",
    )


def _watchdog(check: Check, nvml: Nvml, device: str, child: Child, limit: int, baseline: int) -> None:
    watch = GpuWatch(nvml, [device], child.pids, phase="check", limit=limit, interval=POLL_S, clock=time.monotonic)
    child.send("grow")
    stop, until = None, time.monotonic() + 60
    while stop is None and child.proc.poll() is None and time.monotonic() < until:
        stop = watch.poll()
        time.sleep(0.005)
    decided = time.monotonic()
    killed = child.kill()
    if stop is None:
        check.say(
            "FAIL", "watchdog", f"no decision over a limit of {format_size(limit)}; peak read {format_size(watch.peak_memory_bytes or 0)}"
        )
        return
    crossed = next((at for total, at in child.allocations if total - HOLD > OVER), None)
    detection = f"{max(0.0, decided - crossed) * 1000:.0f} ms after the allocation that crossed it" if crossed else "before it was reported"
    ok = stop.verdict is PhaseVerdict.MEMORY_LIMIT and killed - decided < 2
    check.say(
        "PASS" if ok else "FAIL",
        "watchdog",
        f"{stop.verdict}: {stop.message}; polled every {POLL_S} s, decided {detection}; "
        f"kill {(killed - decided) * 1000:.0f} ms (SIGKILL to the namespace's init until its cgroup is empty)",
    )
    handle = nvml.handle(device)
    freed = _wait_freed(nvml, handle, baseline)
    check.say(
        "PASS" if freed is not None else "FAIL",
        "release",
        f"device back to {format_size(nvml.memory_used(handle))} (baseline {format_size(baseline)})"
        + (f" {freed * 1000:.0f} ms after the kill" if freed is not None else " not within 10 s"),
    )


def _wait_freed(nvml: Nvml, handle, baseline: int) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < 10:
        if nvml.memory_used(handle) <= baseline + 64 * MIB:
            return time.monotonic() - start
        time.sleep(0.02)
    return None


def mig(check: Check, nvml: Nvml, dry_run: bool) -> None:
    """MIG on real NVML, where a GPU is in MIG mode (never switched on here): a MIG device's utilization, memory, processes."""
    if dry_run:
        nvml = FakeNvml(1)
        nvml.make_mig(0, 7)
    migs = [d for d in nvml.devices() if not d.isdigit()]
    if not migs:
        check.say("INFO", "mig", "no GPU here is in MIG mode (the check never changes it): the MIG path is not exercised on this machine")
        return
    handle = nvml.handle(migs[0])
    try:
        utilization = nvml.utilization(handle)
        memory, processes = nvml.memory_used(handle), nvml.processes(handle)
    except NvmlError as exc:
        check.say("FAIL", "mig", f"{migs[0]}: {exc} (persistent: {exc.persistent})")
        return
    check.say(
        "PASS" if utilization is None else "WARN",
        "mig",
        f"{len(migs)} MIG device(s) {migs}; {migs[0]}: utilization {'not supported (recorded as unknown)' if utilization is None else utilization}, "
        f"memory used {format_size(memory)}, processes {processes}" + (" (FAKE NVML)" if dry_run else ""),
    )


def ray_ids(check: Check, dry_run: bool) -> None:
    try:
        import ray
    except ImportError:
        check.say("INFO", "ray", "Ray does not import here: not checked")
        return
    from harness.limits import PhaseLimits
    from harness.runner.phase import PhaseSpec
    from harness.runner.ray_pool import with_ray_gpus

    @ray.remote
    def assigned(spec: PhaseSpec) -> tuple[list[str], str, tuple[str, ...]]:
        ids = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
        return list(ids), os.environ.get("CUDA_VISIBLE_DEVICES", ""), with_ray_gpus(spec).gpu_ids

    spec = PhaseSpec(
        run_id="gpu-check", phase="check", image="", command=(), mounts=(), environment={}, limits=PhaseLimits(gpus=1), log_dir="/tmp"
    )
    started = time.monotonic()
    try:  # a Ray of its own (address="local"), never another one running on the machine
        ray.init(
            address="local",
            num_cpus=1,
            num_gpus=1 if dry_run else None,
            include_dashboard=False,
            log_to_driver=False,
            object_store_memory=128 * MIB,
        )
    except Exception as exc:  # noqa: BLE001 - whatever Ray raises, the check says it and goes on
        check.say("FAIL", "ray", f"Ray did not start: {type(exc).__name__}: {exc}")
        return
    try:
        gpus = ray.cluster_resources().get("GPU", 0)
        if not gpus:
            check.say("FAIL", "ray", "Ray sees no GPU on this node (start it with --num-gpus, or check CUDA_VISIBLE_DEVICES)")
            return
        ids, visible, spec_ids = ray.get(assigned.options(num_gpus=1).remote(spec), timeout=60)
        check.say(
            "PASS" if spec_ids and len(spec_ids) == 1 else "FAIL",
            "ray",
            f"Ray {ray.__version__} sees {gpus:g} GPU(s); a task with num_gpus=1 got {ids} (CUDA_VISIBLE_DEVICES={visible!r}), "
            f"the phase spec {list(spec_ids)}; {time.monotonic() - started:.1f} s with Ray's start"
            + (" (dry run: num_gpus declared)" if dry_run else ""),
        )
    finally:
        ray.shutdown()


def availability(check: Check, nvml: Nvml, dry_run: bool) -> None:
    info = _docker_info()
    problem = gpu_problem(1, info, load=lambda: nvml) if dry_run else gpu_problem(1, info)
    check.say("INFO", "docker", problem or "this machine can run GPU phases in Docker")


def _deadline(*_: object) -> None:
    print(f"FAIL deadline: the check ran over {DEADLINE_S} s", flush=True)
    os._exit(1)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="FAKE NVML and a pretend allocation: a smoke test without a GPU")
    parser.add_argument("--device", default="0", help="NVML index or UUID of the GPU to use (default 0)")
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray step")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--detach", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        namespace_init(args.dry_run, args.detach)
        return 0
    signal.signal(signal.SIGALRM, _deadline)
    signal.alarm(DEADLINE_S)
    started, check = time.monotonic(), Check()
    device = "0" if args.dry_run else args.device
    nvml, env = inventory(check, args.dry_run, device)
    run(check, nvml, device, env, args.dry_run)
    mig(check, nvml, args.dry_run)
    if not args.no_ray:
        ray_ids(check, args.dry_run)
    availability(check, nvml, args.dry_run)
    print(f"{'FAIL' if check.failed else 'PASS'} overall in {time.monotonic() - started:.1f} s", flush=True)
    return 1 if check.failed else 0


if __name__ == "__main__":
    sys.exit(main())
