"""GPUs on a machine without one: exact assignment (real Ray, real Docker), the watchdog against a FAKE NVML.

No NVIDIA GPU, driver or container runtime exists on these machines, so NVML is FAKED (``FakeNvml``:
the harness's real pynvml wrapper over ``FakePynvml``, which raises pynvml's own exceptions) wherever a
reading is needed; nothing else is: containers, Ray, cgroups, toolkit programs on a PATH are real.
``scripts/gpu_check.py`` checks the real NVML on a GPU machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import docker.errors
import pynvml
import pytest
import ray
from docker.models.containers import Container
from test_image_metadata import build as build_image

from harness.evaluation.check import check_image
from harness.limits import Limits, PhaseLimits, PhaseVerdict
from harness.limits.cgroups import RunCgroup
from harness.limits.gpu import GpuWatch, NvmlError, gpu_memory_problem, gpu_problem
from harness.limits.gpu.fake import FakeNvml
from harness.limits.gpu.pids import process_tree_pids
from harness.limits.gpu.toolkit import SYSTEM_PATH, Toolkit, find_toolkit
from harness.limits.gpu.watch import MAX_FAILURES, GpuStop
from harness.limits.judge import Observation, judge
from harness.records.artifacts import load_series
from harness.records.model import PhaseRecord
from harness.runner import gpus as runner_gpus
from harness.runner.docker_backend import DockerBackend, _ImageFault, _Run
from harness.runner.gpus import TOOLKIT_ENVIRONMENT, assignment_problem, device_requests, gpu_figures, local_gpu_ids
from harness.runner.phase import PhaseSpec
from harness.runner.ray_pool import RayPhasePool, with_ray_gpus
from harness.util.errors import HarnessError

GIB = 1024**3
ROOT = Path(__file__).resolve().parents[1]


def spec(gpus: int = 1, gpu_ids: tuple[str, ...] = (), image: str = "harness-test/none", phase: str = "infer", **limits) -> PhaseSpec:
    return PhaseSpec(
        run_id=f"gpu-test-{time.monotonic_ns()}",
        phase=phase,
        image=image,
        command=(phase,),
        mounts=(),
        environment={},
        limits=PhaseLimits(gpus=gpus, **limits),
        log_dir="/tmp",
        gpu_ids=gpu_ids,
    )


# --- assignment: Ray's ids -> the spec -> Docker device requests ---------------------------------


def test_device_requests_name_exactly_the_assigned_ids():
    (request,) = device_requests(("1", "3"))
    assert request["DeviceIDs"] == ["1", "3"]
    assert request["Count"] == 0  # never -1, Docker's "all"
    assert request["Capabilities"] == [["gpu", "compute", "utility"]]
    assert device_requests(()) == []


def test_local_ids_follow_cuda_visible_devices():
    assert local_gpu_ids(2, {}) == ("0", "1")
    assert local_gpu_ids(1, {"CUDA_VISIBLE_DEVICES": "3,GPU-abc"}) == ("3",)
    assert local_gpu_ids(2, {"CUDA_VISIBLE_DEVICES": ""}) == ()  # none visible: the backend refuses


@pytest.fixture(scope="module")
def ray_with_two_fake_gpus():
    """Real Ray told it has two GPUs, the raylet seeing CUDA_VISIBLE_DEVICES=5,7 (no GPU exists)."""
    ray.shutdown()
    with pytest.MonkeyPatch.context() as env:
        env.setenv("CUDA_VISIBLE_DEVICES", "5,7")  # inherited by the raylet and its workers
        ray.init(address="local", num_cpus=2, num_gpus=2, include_dashboard=False, log_to_driver=False, object_store_memory=128 * 1024**2)
    yield
    ray.shutdown()


@ray.remote
def _assigned(phase_spec: PhaseSpec, hold_s: float) -> PhaseSpec:
    time.sleep(hold_s)
    return with_ray_gpus(phase_spec)


def test_ray_ids_become_the_spec_ids(ray_with_two_fake_gpus):
    one = [_assigned.options(num_gpus=1).remote(spec(1), 1.0) for _ in range(2)]  # run side by side
    ids = [ray.get(ref).gpu_ids for ref in one]
    assert sorted(ids) == [("5",), ("7",)]  # disjoint, mapped through the raylet's CUDA_VISIBLE_DEVICES
    # Ray keeps a task's GPU ids in a set: the spec (the device request, the record) has them in order, every time
    both = [ray.get(_assigned.options(num_gpus=2).remote(spec(2), 0)).gpu_ids for _ in range(4)]
    assert both == [("5", "7")] * 4
    cpu = spec(0)
    assert with_ray_gpus(cpu) is cpu  # a CPU phase is left alone


def test_pool_refuses_more_gpus_than_any_node_has(ray_with_two_fake_gpus):
    pool = RayPhasePool()
    pool.submit("too-big", spec(3))
    ((key, result),) = pool.wait(timeout=0)
    assert key == "too-big" and result.verdict is PhaseVerdict.INFRA_ERROR
    assert "needs 3 GPU(s) on one node" in result.message and "more than 2" in result.message
    assert not pool.busy


@pytest.mark.docker
def test_assigned_ids_reach_docker(docker_client, behave_image):
    """The container is created with exactly the spec's GPUs (starting it would need the NVIDIA runtime)."""

    def created(phase_spec: PhaseSpec) -> dict:
        container = _Run(docker_client, phase_spec, RunCgroup("gpu-test", version="1", driver=""))._create()
        try:
            return docker_client.api.inspect_container(container.id)
        finally:
            container.remove(force=True)

    gpu = created(spec(2, ("5", "7"), image=behave_image("sleeper")))
    assert gpu["HostConfig"]["DeviceRequests"] == [
        {"Driver": "", "Count": 0, "DeviceIDs": ["5", "7"], "Capabilities": [["gpu", "compute", "utility"]], "Options": {}}
    ]
    assert "NVIDIA_VISIBLE_DEVICES=5,7" in gpu["Config"]["Env"]
    # A CPU phase gets no device and masks an image's NVIDIA_VISIBLE_DEVICES=all (an NVIDIA default runtime would honour it).
    cpu = created(spec(0, image=behave_image("sleeper")))
    assert not cpu["HostConfig"]["DeviceRequests"] and "NVIDIA_VISIBLE_DEVICES=void" in cpu["Config"]["Env"]
    # Where the toolkit is installed for CDI only: the same GPUs, as CDI devices
    run = _Run(
        docker_client, spec(1, ("MIG-abc",), image=behave_image("sleeper")), RunCgroup("gpu-test", version="1", driver=""), gpu_mode="cdi"
    )
    container = run._create()
    try:
        (request,) = docker_client.api.inspect_container(container.id)["HostConfig"]["DeviceRequests"]
    finally:
        container.remove(force=True)
    assert (request["Driver"], request["DeviceIDs"]) == ("cdi", ["nvidia.com/gpu=MIG-abc"])


# --- the watchdog's decisions over a fake NVML ---------------------------------------------------


def test_message_names_gpu_memory_and_both_sizes():
    assert gpu_memory_problem("infer", int(9.1 * GIB), 8 * GIB) == "infer used 9.1 GiB of GPU memory, over its limit of 8.0 GiB"
    assert gpu_memory_problem("infer", 8 * GIB, 8 * GIB) is None  # at the limit is within it
    assert gpu_memory_problem("infer", 99 * GIB, None) is None


def test_watch_counts_only_the_runs_processes_on_its_devices():
    nvml = FakeNvml(3)
    nvml.by_id["0"].processes = {100: 3 * GIB, 999: 50 * GIB}  # 999 is not the run's
    nvml.by_id["1"].processes = {101: 2 * GIB}
    nvml.by_id["2"].processes = {100: 40 * GIB}  # not the run's device
    nvml.by_id["0"].utilization, nvml.by_id["1"].utilization = 80, 40
    watch = GpuWatch(nvml, ["0", "1"], lambda: {100, 101}, phase="train", limit=6 * GIB, interval=0)
    assert watch.poll() is None
    assert watch.peak_memory_bytes == 5 * GIB and watch.peak_utilization == 60.0
    nvml.by_id["1"].processes[101] = 4 * GIB
    assert watch.poll() == GpuStop(PhaseVerdict.MEMORY_LIMIT, "train used 7.0 GiB of GPU memory, over its limit of 6.0 GiB")


def test_unknown_per_process_figure_counts_the_whole_device():
    nvml = FakeNvml(1)
    nvml.by_id["0"].processes = {100: None}
    nvml.by_id["0"].memory_used = 9 * GIB
    watch = GpuWatch(nvml, ["0"], lambda: {100}, phase="infer", limit=8 * GIB, interval=0)
    assert watch.poll() == GpuStop(PhaseVerdict.MEMORY_LIMIT, "infer used 9.0 GiB of GPU memory, over its limit of 8.0 GiB")


def test_watch_samples_at_its_interval_keeps_a_series_and_survives_nvml_errors():
    now = [1000.0]
    nvml = FakeNvml(1)
    watch = GpuWatch(nvml, ["0"], lambda: {1}, phase="train", limit=None, interval=0.25, clock=lambda: now[0])
    for step in range(12):  # 3 s of polls every 0.25 s, memory rising
        nvml.by_id["0"].processes = {1: step * GIB}
        watch.poll()
        now[0] += 0.25
    assert watch.peak_memory_bytes == 11 * GIB
    assert [s.at for s in watch.series] == [1000.0, 1001.0, 1002.0]  # one point a second
    nvml.failing = True
    assert watch.poll() is None  # a failed read decides nothing; the next poll does
    nvml.failing = False
    now[0] += 0.25
    assert watch.poll() is None and watch.failures == 0
    nvml.failing = True
    with pytest.raises(NvmlError):
        GpuWatch(nvml, ["0"], lambda: set(), phase="train", limit=None)


def test_process_tree_pids_finds_children():
    child = subprocess.Popen([sys.executable, "-c", "import subprocess,sys; subprocess.run(['sleep', '30'])"])
    try:
        deadline = time.monotonic() + 10
        while len(pids := process_tree_pids(child.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert child.pid in pids and len(pids) == 2
    finally:
        for pid in process_tree_pids(child.pid):
            os.kill(pid, 9)
        child.wait()


# --- availability: refused, clearly, where GPUs cannot be given ----------------------------------


def _no_nvml():
    raise NvmlError("the NVIDIA driver's NVML library cannot be initialised (NVML Shared Library Not Found)")


RECENT = Toolkit("hook", (1, 17, 8), "/usr/bin/nvidia-container-runtime-hook")


def test_gpu_problem_names_what_is_missing():
    none = lambda info: Toolkit(None, None, "")  # noqa: E731
    assert gpu_problem(0, {}, load=_no_nvml, toolkit=none) is None  # a CPU phase never asks NVML
    both = gpu_problem(1, {"Runtimes": {"runc": {}}}, load=_no_nvml, toolkit=none)
    assert "NVML library cannot be initialised" in both and "no NVIDIA container toolkit" in both
    assert (
        gpu_problem(2, {}, load=lambda: FakeNvml(1), toolkit=lambda info: RECENT)
        == "it needs 2 GPU(s), but NVML sees only 1 GPU(s) or MIG device(s) here"
    )
    assert gpu_problem(2, {}, load=lambda: FakeNvml(2), toolkit=lambda info: RECENT) is None


def test_this_machine_refuses_gpu_phases_and_names_nvml():
    problem = gpu_problem(1, {})
    assert problem and "NVML" in problem and "NVIDIA container toolkit" in problem


def test_assignment_must_match_the_demand():
    assert assignment_problem(spec(0), {}, lambda: RECENT) is None
    assert assignment_problem(spec(2, ("0",)), {}, lambda: RECENT) == "it needs 2 GPU(s) but was assigned 1 (0)"


@pytest.mark.docker
def test_backend_refuses_a_gpu_phase_without_creating_a_container(docker_client):
    result = DockerBackend(docker_client).run(spec(1, ("0",)))
    assert result.verdict is PhaseVerdict.INFRA_ERROR
    assert "infer: this node cannot run it: it needs 1 GPU(s)" in result.message and "NVML" in result.message
    assert not docker_client.containers.list(all=True, filters={"label": "harness.phase=infer", "name": "gpu-test"})


@pytest.mark.docker
def test_check_refuses_gpu_competition_before_running(competition, docker_client, behave_image):
    with pytest.raises(HarnessError) as refused:
        check_image(competition("limits.infer.gpus=1"), behave_image("constant"), out=open(os.devnull, "w"))
    message = str(refused.value)
    assert message.startswith("digits: the infer phase(s) run on GPUs, and this machine cannot give a container one")
    assert "NVML" in message and "NVIDIA Container Toolkit" in message


# --- the watch loop kills a container over its GPU memory (fake NVML, real container) ------------


@pytest.mark.docker
def test_container_over_gpu_memory_is_killed(competition, docker_client, behave_image, monkeypatch):
    nvml = FakeNvml(1)
    seen: list[set[int]] = []

    def container_pids(cgroup, container, own=None):  # the real lookup; the fake GPU "sees" 3 GiB per process found
        pids = runner_gpus.container_pids(cgroup, container, own)
        seen.append(pids)
        nvml.by_id["0"].processes = {pid: 3 * GIB for pid in pids}
        nvml.by_id["0"].utilization = 55
        return pids

    monkeypatch.setattr("harness.evaluation.check.gpu_problem", lambda *args, **kwargs: None)  # pretend: a GPU host
    monkeypatch.setattr("harness.runner.docker_backend.assignment_problem", lambda *args: None)
    monkeypatch.setattr(DockerBackend, "toolkit", lambda self: RECENT)
    monkeypatch.setattr("harness.runner.docker_backend.device_requests", lambda ids, mode: [])  # no NVIDIA runtime to start it with
    monkeypatch.setattr("harness.runner.docker_backend.container_pids", container_pids)
    monkeypatch.setattr("harness.runner.gpus.load_nvml", lambda: nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu_competition = competition("limits.train.gpus=1", "limits.train.gpu_memory=2g", "limits.train.wall_clock_s=30")
    record = check_image(gpu_competition, behave_image("sleeper"), out=open(os.devnull, "w"))
    train = record.phases.train
    assert train.wall_s < 30  # killed by the GPU memory watch, before its wall clock
    assert record.verdict == "MEMORY_LIMIT" and record.failed_phase == "train"
    assert record.message.startswith("train used ") and "of GPU memory, over its limit of 2.0 GiB, and was killed" in record.message
    assert train.gpu_ids == ["0"]
    assert train.peak_gpu_memory_bytes >= 3 * GIB and train.peak_gpu_utilization == 55
    assert "series" not in train  # the series go to MLflow, from beside the logs
    assert load_series(gpu_competition, record.evaluation_id)["train"]["gpu_memory_bytes"][0][1] >= 3 * GIB
    assert any(seen)  # the container's host PIDs were found


def test_limits_carry_gpu_fields():
    limits = Limits.from_mapping({"infer": {"gpus": 1, "gpu_memory": "8g"}})
    assert limits.infer.gpus == 1 and limits.infer.gpu_memory == 8 * GIB and limits.train.gpus == 0


# --- MLflow gets the series; the self-test of the GPU check runs here ----------------------------


def test_tracker_logs_gpu_series(tmp_path):
    from mlflow.tracking import MlflowClient
    from test_record_schema import phase

    from harness.records.model import Phases, Submission
    from harness.records.record import EvaluationRecord
    from harness.records.tracking import Tracker

    tracker = Tracker(None, "gpu", tmp_path)
    record = EvaluationRecord(
        "ev-1",
        "digits",
        Submission(id="s1", team="t", image="t/x", image_digest=None),
        "SCORED",
        None,
        "",
        Phases.model_validate({"train": phase(peak_gpu_memory_bytes=3 * GIB, peak_gpu_utilization=50.0)}),
        {},
        {},
        "2026-11-28T21:00:00+00:00",
    )
    points = [(1000.0 + i, float(i * GIB)) for i in range(1001)]  # past one log_batch
    run_id = tracker.open_run(record)
    tracker.fill_run(run_id, record, None, [], {"train": {"gpu_memory_bytes": points}})
    client = MlflowClient(tracking_uri=tracker.uri)
    history = client.get_metric_history(run_id, "train_gpu_memory_bytes")
    assert len(history) == 1001 and {m.step for m in history} == set(range(1001))
    assert client.get_run(run_id).data.metrics["train_peak_gpu_memory_bytes"] == 3 * GIB


def test_gpu_check_dry_run_passes():
    """The prepared GPU check, run as its CPU dry run (NVML FAKED, a pretend allocation; the cgroup, the PID
    namespace, the detached grandchild, the kill and Ray are real): every step passes, and it cleans up."""
    check = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    out, err = check.communicate(timeout=280)
    assert check.returncode == 0, out + err
    steps = {line.split()[1].rstrip(":"): line.split()[0] for line in out.splitlines() if line[:4] in ("PASS", "WARN", "INFO", "FAIL")}
    production = steps.get("pids") == "PASS"  # root, unshare and a writable cgroupfs: the production PID path
    if os.geteuid() == 0 and shutil.which("unshare"):
        assert production, out
    expected = ["nvml", "toolkit", "allocate", "pids"] + (["pidns"] if production else []) + ["telemetry", "spikes", "watchdog", "release"]
    assert list(steps)[: len(expected)] == expected, out
    assert [steps[s] for s in ("nvml", "allocate", "telemetry", "spikes", "watchdog", "release", "mig", "ray", "overall")] == [
        "PASS"
    ] * 9, out
    assert "MEMORY_LIMIT: check used" in out and "polled every 0.25 s" in out and "SIGKILL to the namespace's init" in out
    assert "utilization not supported (recorded as unknown)" in out and "a task with num_gpus=1 got ['0']" in out
    assert re.search(r"caught 50 ms: \d/8 .* 400 ms: 8/8", out), out
    assert not any((Path(base) / f"harness-gpu-check-{check.pid}").exists() for base in ("/sys/fs/cgroup", "/sys/fs/cgroup/pids"))


# --- issue 24: what would let the GPU limit silently not hold on real hosts (NVML FAKED) ----------


def test_mig_utilization_not_supported_keeps_the_limit_on():
    """NVML answers NVMLError_NotSupported for utilization on a MIG-enabled GPU and its slices: the memory
    limit still holds, and utilization is unknown (None), not 0."""
    nvml = FakeNvml(1)
    a, b, *_ = nvml.make_mig(0, 7)
    for uuid in (a, b):
        nvml.by_id[uuid].processes = {100: None}  # NVML gives no per-process figure on a MIG device
        nvml.by_id[uuid].memory_used = 5 * GIB
    with pytest.raises(pynvml.NVMLError_NotSupported):
        nvml.fake.nvmlDeviceGetUtilizationRates(nvml.by_id[a])  # the fake answers as the driver does
    watch = GpuWatch(nvml, [a, b], lambda: {100}, phase="train", limit=8 * GIB, interval=0)
    assert watch.poll() == GpuStop(PhaseVerdict.MEMORY_LIMIT, "train used 10.0 GiB of GPU memory, over its limit of 8.0 GiB")
    assert watch.peak_memory_bytes == 10 * GIB and watch.peak_utilization is None
    figures = gpu_figures(watch, spec(2, (a, b)))
    assert figures["peak_gpu_utilization"] is None and figures["series"]["gpu_utilization"] == []


def test_mig_slices_count_as_devices():
    """A phase asking for 2 slices of a GPU in MIG mode with 7 is not refused for want of GPUs."""
    nvml = FakeNvml(1)
    slices = nvml.make_mig(0, 7)
    assert nvml.devices() == slices
    assert gpu_problem(2, {}, load=lambda: nvml, toolkit=lambda info: RECENT) is None
    assert "NVML sees only 7 GPU(s) or MIG device(s)" in gpu_problem(8, {}, load=lambda: nvml, toolkit=lambda info: RECENT)
    assert nvml.handle(slices[1]) is nvml.by_id[slices[1]]
    assert nvml.handle("0:1") is nvml.by_id[slices[1]]  # Docker's GPU:MIG form


def test_unknown_gpu_figures_are_recorded_as_null():
    """A watch that never read NVML records its peaks as unknown (null, valid in the record), not 0."""
    nvml = FakeNvml(1)
    watch = GpuWatch(nvml, ["0"], lambda: {1}, phase="infer", limit=None, interval=0)
    nvml.fake.error = pynvml.NVMLError_Uninitialized()
    assert watch.poll() is None  # one failure: not yet decided
    figures = gpu_figures(watch, spec(1, ("0",)))
    assert figures["peak_gpu_memory_bytes"] is None and figures["peak_gpu_utilization"] is None
    record = PhaseRecord.model_validate(
        {
            "verdict": "INFRA_ERROR",
            "exit_code": None,
            "wall_s": 1.0,
            "cpu_s": 0.0,
            "peak_memory_bytes": 0,
            "stdout_bytes": 0,
            "stderr_bytes": 0,
            "log_truncated": False,
            "limits": PhaseLimits(gpus=1).to_dict(),
            "gpu_ids": ["0"],
            "peak_gpu_memory_bytes": figures["peak_gpu_memory_bytes"],
            "peak_gpu_utilization": figures["peak_gpu_utilization"],
        }
    )
    assert record.peak_gpu_memory_bytes is None


PERSISTENT = {
    "gpu-lost": (lambda nvml: setattr(nvml.by_id["0"], "error", pynvml.NVMLError_GpuIsLost()), "GPU is lost"),
    "driver-reloaded": (lambda nvml: setattr(nvml.fake, "error", pynvml.NVMLError_Uninitialized()), "Uninitialized"),
    "driver-not-loaded": (lambda nvml: setattr(nvml.fake, "error", pynvml.NVMLError_DriverNotLoaded()), "Driver Not Loaded"),
    "not-supported": (lambda nvml: setattr(nvml.by_id["0"], "error", pynvml.NVMLError_NotSupported()), "Not Supported"),
    # pynvml 13: raised where the driver's library lacks a function pynvml calls; not an NVMLError
    "library-mismatch": (
        lambda nvml: setattr(
            nvml.by_id["0"], "error", pynvml.NVMLLibraryMismatchError("Unversioned function called and the pyNVML version does not match")
        ),
        "pyNVML version does not match",
    ),
}


@pytest.mark.parametrize("case", list(PERSISTENT))
def test_persistent_nvml_errors_stop_the_phase_as_infra_error(case):
    assert not issubclass(pynvml.NVMLLibraryMismatchError, pynvml.NVMLError)  # why it needs its own except
    breaks, says = PERSISTENT[case]
    nvml = FakeNvml(1)
    nvml.by_id["0"].processes = {100: GIB}
    watch = GpuWatch(nvml, ["0"], lambda: {100}, phase="train", limit=8 * GIB, interval=0)
    assert watch.poll() is None and watch.peak_memory_bytes == GIB
    breaks(nvml)
    stops = [watch.poll() for _ in range(MAX_FAILURES)]
    stop = next(s for s in stops if s is not None)
    assert stops[0] is None  # one failure decides nothing
    assert stop.verdict is PhaseVerdict.INFRA_ERROR
    assert stop.message.startswith("train: its GPU memory could not be watched, NVML failed ") and says in stop.message
    verdict = judge(
        Observation(phase="train", limits=PhaseLimits(gpus=1), exit_code=137, stopped_for=stop.verdict, stop_message=stop.message)
    )
    assert verdict.verdict is PhaseVerdict.INFRA_ERROR and "not the submission's fault" in verdict.message


def test_transient_nvml_errors_decide_nothing_until_they_persist():
    nvml = FakeNvml(1)
    watch = GpuWatch(nvml, ["0"], lambda: {100}, phase="train", limit=8 * GIB, interval=0)
    nvml.failing = True  # NVML_ERROR_UNKNOWN: a hiccup
    assert [watch.poll() for _ in range(MAX_FAILURES - 1)] == [None] * (MAX_FAILURES - 1)
    nvml.failing = False
    assert watch.poll() is None and watch.failures == 0
    nvml.failing = True
    assert [watch.poll() for _ in range(MAX_FAILURES)][-1].verdict is PhaseVerdict.INFRA_ERROR


def test_processes_none_of_which_are_ours_count_the_whole_device():
    """NVML reports host PIDs; a harness in its own PID namespace (a Ray pod) matches none of them. The
    device is the phase's alone: its whole used memory counts."""
    nvml = FakeNvml(1)
    nvml.by_id["0"].processes = {48213: 3 * GIB}  # the container's process, by its host PID
    nvml.by_id["0"].memory_used = 9 * GIB
    watch = GpuWatch(nvml, ["0"], lambda: {7, 8}, phase="infer", limit=8 * GIB, interval=0)  # PIDs of our namespace
    assert watch.poll() == GpuStop(PhaseVerdict.MEMORY_LIMIT, "infer used 9.0 GiB of GPU memory, over its limit of 8.0 GiB")
    assert watch.foreign_pids
    nvml.by_id["0"].processes = {}  # nothing on the GPU yet: nothing counted
    assert watch.poll() is None and watch.sample().memory_bytes == 0


@pytest.mark.docker
def test_toolkit_variables_of_an_image_are_blanked_in_every_phase(docker_client, behave_image, tmp_path):
    """An image's ENV that would make the toolkit's hooks inject host devices (MOFED, GDS, GDRCopy,
    NVSwitch, IMEX), refuse the container (MIG) or load code as host root (LD_PRELOAD) is overridden:
    a real container shows the harness's values (a CPU phase started; a GPU phase created)."""
    hostile = {
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "all",
        "NVIDIA_MOFED": "enabled",
        "NVIDIA_GDS": "enabled",
        "NVIDIA_GDRCOPY": "enabled",
        "NVIDIA_NVSWITCH": "enabled",
        "NVIDIA_IMEX_CHANNELS": "all",
        "NVIDIA_MIG_CONFIG_DEVICES": "all",
        "NVIDIA_MIG_MONITOR_DEVICES": "all",
        "LD_PRELOAD": "/nonexistent/hook.so",
        "LD_AUDIT": "/nonexistent/audit.so",
    }
    dump = "import json, os; print('ENV ' + json.dumps({k: v for k, v in os.environ.items() if k.startswith(('NVIDIA_', 'LD_'))}))"
    image = build_image(
        docker_client,
        behave_image("constant"),
        "toolkit-env",
        f"ENV {' '.join(f'{k}={v}' for k, v in hostile.items())}\nENTRYPOINT {json.dumps(['python3', '-c', dump])}",
    )
    cpu = spec(0, image=image, wall_clock_s=60)
    cpu = dataclasses.replace(cpu, log_dir=str(tmp_path))
    result = DockerBackend(docker_client).run(cpu)
    assert result.verdict is PhaseVerdict.OK, result.message
    env = json.loads(next(line for line in result.log_tail.splitlines() if line.startswith("ENV "))[4:])
    assert env == {"NVIDIA_VISIBLE_DEVICES": "void", "NVIDIA_DRIVER_CAPABILITIES": "compute,utility", **TOOLKIT_ENVIRONMENT}
    assert env["NVIDIA_MOFED"] == env["NVIDIA_GDS"] == env["NVIDIA_GDRCOPY"] == env["NVIDIA_NVSWITCH"] == "disabled"
    assert env["NVIDIA_IMEX_CHANNELS"] == "void" and env["LD_PRELOAD"] == env["LD_AUDIT"] == env["NVIDIA_MIG_CONFIG_DEVICES"] == ""
    # a GPU phase: created (starting it needs the toolkit), its environment as the hook would read it
    container = _Run(docker_client, spec(1, ("3",), image=image), RunCgroup("gpu-test", version="1", driver=""))._create()
    try:
        created = dict(e.partition("=")[::2] for e in docker_client.api.inspect_container(container.id)["Config"]["Env"])
    finally:
        container.remove(force=True)
    assert {k: created[k] for k in hostile} == {**env, "NVIDIA_VISIBLE_DEVICES": "3"}


def _toolkit_program(directory: Path, name: str, says: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    program = directory / name
    program.write_text(f"#!/bin/sh\necho '{says}'\necho 'commit: 0000000'\n")
    program.chmod(0o755)
    return program


def test_toolkit_older_than_1_17_8_is_refused(tmp_path, monkeypatch):
    """Real programs on a PATH stand for the toolkit (no GPU is needed to ask its version)."""
    old, new = tmp_path / "old", tmp_path / "new"
    _toolkit_program(old, "nvidia-container-runtime-hook", "NVIDIA Container Runtime Hook version 1.17.7")
    _toolkit_program(new, "nvidia-container-runtime-hook", "NVIDIA Container Runtime Hook version 1.17.8")
    monkeypatch.setenv("PATH", f"{old}:{os.environ['PATH']}")
    info = {"Runtimes": {"runc": {"path": "runc"}, "nvidia": {"path": "nvidia-container-runtime"}}}
    problem = gpu_problem(1, info, load=lambda: FakeNvml(1))
    assert problem and "Toolkit here is 1.17.7, older than 1.17.8" in problem and "CVE-2025-23266" in problem
    monkeypatch.setenv("PATH", f"{new}:{os.environ['PATH']}")
    assert gpu_problem(1, info, load=lambda: FakeNvml(1)) is None
    assert find_toolkit(info) == Toolkit(
        "hook", (1, 17, 8), str(new / "nvidia-container-runtime-hook"), str(new / "nvidia-container-runtime-hook")
    )
    mute = _toolkit_program(tmp_path / "mute", "nvidia-container-runtime-hook", "no version here")
    assert "version cannot be told" in (find_toolkit({}, path=str(mute.parent)).problem() or "")


def test_toolkit_is_looked_for_on_dockerds_path_too(monkeypatch):
    """dockerd (a systemd service) finds the hook on the system's PATH, whatever the harness's PATH is."""
    monkeypatch.setenv("PATH", "/nonexistent")
    from harness.limits.gpu.toolkit import _search_path

    assert _search_path(None).split(":")[0] == "/nonexistent" and set(SYSTEM_PATH.split(":")) <= set(_search_path(None).split(":"))


def test_cdi_only_toolkit_is_accepted_and_used(tmp_path, monkeypatch):
    """A node with the toolkit's CDI spec and no legacy hook (current Docker supports CDI): accepted, its version
    from the spec's own hook program, and GPUs given as CDI devices."""
    hook = _toolkit_program(tmp_path / "bin", "nvidia-cdi-hook", "NVIDIA CDI Hook version 1.17.8")
    cdi = tmp_path / "cdi"
    cdi.mkdir()
    (cdi / "nvidia.yaml").write_text(
        f'cdiVersion: 0.5.0\nkind: nvidia.com/gpu\ndevices:\n- name: "0"\n  containerEdits:\n    deviceNodes:\n    - path: /dev/nvidia0\n'
        f"containerEdits:\n  hooks:\n  - hookName: createContainer\n    path: {hook}\n    args: [nvidia-cdi-hook, update-ldcache]\n"
    )
    monkeypatch.setenv("PATH", "/nonexistent")
    info = {"CDISpecDirs": [str(tmp_path / "missing"), str(cdi)]}
    toolkit = find_toolkit(info, path="/nonexistent")
    assert (toolkit.mode, toolkit.version, toolkit.where) == ("cdi", (1, 17, 8), str(cdi / "nvidia.yaml"))
    assert gpu_problem(1, info, load=lambda: FakeNvml(1), toolkit=lambda i: find_toolkit(i, path="/nonexistent")) is None
    assert find_toolkit({"CDISpecDirs": [str(tmp_path / "missing")]}, path="/nonexistent").mode is None
    (request,) = device_requests(("0", "MIG-abc"), "cdi")
    assert request["Driver"] == "cdi" and request["DeviceIDs"] == ["nvidia.com/gpu=0", "nvidia.com/gpu=MIG-abc"]


# The toolkit hook's refusals as dockerd 24+ reports them (runc's wrapping, the hook's stderr).
_HOOK_PREFIX = (
    "failed to create task for container: failed to create shim task: OCI runtime create failed: runc create failed: "
    "unable to start container process: error during container init: error running hook #0: error running hook: "
)
HOOK_REFUSALS = {
    "require-cuda": (
        _HOOK_PREFIX + "exit status 1, stdout: , stderr: Auto-detected mode as 'legacy'\nnvidia-container-cli: requirement error: "
        "unsatisfied condition: cuda>=12.8, please update your driver to a newer version, or use an earlier cuda container: unknown",
        "infer could not start: the image requires cuda>=12.8 (its NVIDIA_REQUIRE_CUDA or NVIDIA_REQUIRE_* variables), and this "
        "node's NVIDIA driver supports CUDA up to 12.4; build from a CUDA 12.4 or older base image",
    ),
    "mig-config": (
        _HOOK_PREFIX + "exit status 2, stdout: , stderr: 2026/12/06 14:00:00 cannot set MIG_CONFIG_DEVICES in non privileged container\n"
        "panic: cannot set MIG_CONFIG_DEVICES in non privileged container\n\ngoroutine 1 [running]:\nlog.Panicln({0xc0000f9e08?, 0x1?, 0x1?})\n"
        "\t/usr/local/go/src/log/log.go:446 +0x5a: unknown",
        "infer could not start: the image sets NVIDIA_MIG_CONFIG_DEVICES, which the NVIDIA toolkit allows only in privileged containers",
    ),
}


@pytest.mark.parametrize("case", list(HOOK_REFUSALS))
def test_toolkit_hook_refusals_are_the_images_runtime_error(case, monkeypatch, tmp_path):
    """The hook's real messages, replayed through the backend's blame path: the submission's RUNTIME_ERROR
    naming the CUDA version the node supports (NVML FAKED: CUDA 12.4), not an INFRA_ERROR retried forever."""
    monkeypatch.setattr("harness.runner.docker_backend.load_nvml", lambda: FakeNvml(1, cuda_version=12040))
    message, expected = HOOK_REFUSALS[case]
    run = _Run(
        docker.from_env(), dataclasses.replace(spec(1, ("0",)), log_dir=str(tmp_path)), RunCgroup("gpu-test", version="1", driver="")
    )
    refused = docker.errors.APIError("500 Server Error", explanation=message)
    with pytest.raises(_ImageFault) as fault:
        run._blame(refused)
    assert str(fault.value).startswith(expected)


@pytest.mark.docker
def test_systemd_driver_reads_the_containers_cgroup_not_docker_top(docker_client, behave_image, monkeypatch, tmp_path):
    """Under the systemd cgroup driver the run has no parent cgroup of its own: the watch finds the
    container's PIDs in its own cgroup's cgroup.procs (located by the accounting), never through
    ``docker top`` (a ps through dockerd every 0.25 s per phase)."""
    nvml, seen, tops = FakeNvml(1), [], []
    real_top = Container.top

    def top(self, *args, **kwargs):
        tops.append(self.id)
        return real_top(self, *args, **kwargs)

    def container_pids(cgroup, container, own=None):  # the real lookup; the fake GPU "sees" 1 GiB per process found
        pids = runner_gpus.container_pids(cgroup, container, own)
        seen.append(pids)
        nvml.by_id["0"].processes = {pid: GIB for pid in pids}
        return pids

    monkeypatch.setattr(Container, "top", top)
    monkeypatch.setattr("harness.runner.docker_backend.container_pids", container_pids)
    monkeypatch.setattr("harness.runner.gpus.load_nvml", lambda: nvml)
    monkeypatch.setattr("harness.runner.docker_backend.device_requests", lambda ids, mode: [])  # no NVIDIA runtime to start it with
    phase = dataclasses.replace(spec(1, ("0",), image=behave_image("sleeper"), phase="train", wall_clock_s=3), log_dir=str(tmp_path))
    result = _Run(docker_client, phase, RunCgroup(phase.run_id, version="1", driver="systemd")).execute()
    assert result.verdict is PhaseVerdict.TIMEOUT
    assert any(seen) and result.peak_gpu_memory_bytes >= GIB  # found, and counted
    assert tops == []


@pytest.mark.docker
def test_container_whose_gpu_is_lost_ends_infra_error(docker_client, behave_image, monkeypatch, tmp_path):
    """A real container; NVML FAKED to lose its GPU mid-phase: the phase stops within a second or two, INFRA_ERROR, saying why."""
    nvml = FakeNvml(1)
    polls = []

    def container_pids(cgroup, container, own=None):
        polls.append(1)
        if len(polls) == 3:
            nvml.by_id["0"].error = pynvml.NVMLError_GpuIsLost()
        return runner_gpus.container_pids(cgroup, container, own)

    monkeypatch.setattr("harness.runner.docker_backend.container_pids", container_pids)
    monkeypatch.setattr("harness.runner.gpus.load_nvml", lambda: nvml)
    monkeypatch.setattr("harness.runner.docker_backend.device_requests", lambda ids, mode: [])
    phase = dataclasses.replace(spec(1, ("0",), image=behave_image("sleeper"), phase="train", wall_clock_s=30), log_dir=str(tmp_path))
    result = _Run(docker_client, phase, RunCgroup(phase.run_id, version="1", driver="cgroupfs")).execute()
    assert result.verdict is PhaseVerdict.INFRA_ERROR and result.wall_s < 10
    assert result.message.startswith("train: its GPU memory could not be watched, NVML failed ") and "GPU is lost" in result.message
    assert "not the submission's fault" in result.message


def test_ray_gpu_ids_sort_as_numbers_then_uuids():
    from harness.runner.ray_pool import _gpu_order

    assert sorted(["10", "MIG-b", "2", "GPU-a", "0"], key=_gpu_order) == ["0", "2", "10", "GPU-a", "MIG-b"]


@pytest.mark.docker
def test_nvml_failing_before_the_watch_starts_is_the_nodes_fault(docker_client, behave_image, monkeypatch, tmp_path):
    """NVML FAKED to fail (the driver reloaded) before the watch opens the phase's GPU: INFRA_ERROR naming NVML, not the engine."""
    nvml = FakeNvml(1)
    nvml.fake.error = pynvml.NVMLError_Uninitialized()
    monkeypatch.setattr("harness.runner.gpus.load_nvml", lambda: nvml)
    monkeypatch.setattr("harness.runner.docker_backend.assignment_problem", lambda *args: None)
    monkeypatch.setattr(DockerBackend, "toolkit", lambda self: RECENT)
    monkeypatch.setattr("harness.runner.docker_backend.device_requests", lambda ids, mode: [])
    phase = dataclasses.replace(spec(1, ("0",), image=behave_image("sleeper"), phase="train", wall_clock_s=30), log_dir=str(tmp_path))
    result = DockerBackend(docker_client).run(phase)
    assert result.verdict is PhaseVerdict.INFRA_ERROR
    assert result.message.startswith("train: its GPUs could not be watched through NVML (") and "Uninitialized" in result.message
