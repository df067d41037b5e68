"""GPUs on a machine without one: exact assignment (real Ray, real Docker), the watchdog against a FAKE NVML.

No NVIDIA GPU, driver or container runtime exists on these machines, so NVML is faked (``FakeNvml``)
wherever a reading is needed; ``scripts/gpu_check.py`` checks the real NVML on a GPU machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray

from harness.evaluation.check import check_image
from harness.limits import Limits, PhaseLimits, PhaseVerdict
from harness.limits.cgroups import RunCgroup
from harness.limits.gpu import GpuWatch, NvmlError, gpu_memory_problem, gpu_problem
from harness.limits.gpu.fake import FakeNvml
from harness.limits.gpu.pids import process_tree_pids
from harness.records.artifacts import load_series
from harness.runner import gpus as runner_gpus
from harness.runner.docker_backend import DockerBackend, _Run
from harness.runner.gpus import assignment_problem, device_requests, local_gpu_ids
from harness.runner.phase import PhaseSpec
from harness.runner.ray_pool import RayPhasePool, with_ray_gpus
from harness.util.errors import HarnessError

GIB = 1024**3
ROOT = Path(__file__).resolve().parents[1]


def spec(gpus: int = 1, gpu_ids: tuple[str, ...] = (), image: str = "harness-test/none", **limits) -> PhaseSpec:
    return PhaseSpec(
        run_id=f"gpu-test-{time.monotonic_ns()}",
        phase="infer",
        image=image,
        command=("infer",),
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
    assert ray.get(_assigned.options(num_gpus=2).remote(spec(2), 0)).gpu_ids in {("5", "7"), ("7", "5")}
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


# --- the watchdog's decisions over a fake NVML ---------------------------------------------------


def test_message_names_gpu_memory_and_both_sizes():
    assert gpu_memory_problem("infer", int(9.1 * GIB), 8 * GIB) == "infer used 9.1 GiB of GPU memory, over its limit of 8.0 GiB"
    assert gpu_memory_problem("infer", 8 * GIB, 8 * GIB) is None  # at the limit is within it
    assert gpu_memory_problem("infer", 99 * GIB, None) is None


def test_watch_counts_only_the_runs_processes_on_its_devices():
    nvml = FakeNvml(3)
    nvml.devices["0"].processes = {100: 3 * GIB, 999: 50 * GIB}  # 999 is not the run's
    nvml.devices["1"].processes = {101: 2 * GIB}
    nvml.devices["2"].processes = {100: 40 * GIB}  # not the run's device
    nvml.devices["0"].utilization, nvml.devices["1"].utilization = 80, 40
    watch = GpuWatch(nvml, ["0", "1"], lambda: {100, 101}, phase="train", limit=6 * GIB, interval=0)
    assert watch.poll() is None
    assert watch.peak_memory_bytes == 5 * GIB and watch.peak_utilization == 60.0
    nvml.devices["1"].processes[101] = 4 * GIB
    assert watch.poll() == "train used 7.0 GiB of GPU memory, over its limit of 6.0 GiB"


def test_unknown_per_process_figure_counts_the_whole_device():
    nvml = FakeNvml(1)
    nvml.devices["0"].processes = {100: None}
    nvml.devices["0"].memory_used = 9 * GIB
    watch = GpuWatch(nvml, ["0"], lambda: {100}, phase="infer", limit=8 * GIB, interval=0)
    assert watch.poll() == "infer used 9.0 GiB of GPU memory, over its limit of 8.0 GiB"


def test_watch_samples_at_its_interval_keeps_a_series_and_survives_nvml_errors():
    now = [1000.0]
    nvml = FakeNvml(1)
    watch = GpuWatch(nvml, ["0"], lambda: {1}, phase="train", limit=None, interval=0.25, clock=lambda: now[0])
    for step in range(12):  # 3 s of polls every 0.25 s, memory rising
        nvml.devices["0"].processes = {1: step * GIB}
        watch.poll()
        now[0] += 0.25
    assert watch.peak_memory_bytes == 11 * GIB
    assert [s.at for s in watch.series] == [1000.0, 1001.0, 1002.0]  # one point a second
    nvml.failing = True
    assert watch.poll() is None  # a failed read decides nothing; the next poll does
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


def test_gpu_problem_names_what_is_missing():
    no_hook = lambda name: None  # noqa: E731
    assert gpu_problem(0, set(), load=_no_nvml, which=no_hook) is None  # a CPU phase never asks NVML
    both = gpu_problem(1, {"runc"}, load=_no_nvml, which=no_hook)
    assert "NVML library cannot be initialised" in both and "no NVIDIA container runtime" in both
    assert gpu_problem(2, {"nvidia"}, load=lambda: FakeNvml(1), which=no_hook) == "it needs 2 GPU(s), but NVML sees only 1 GPU(s) here"
    assert gpu_problem(2, set(), load=lambda: FakeNvml(2), which=lambda name: "/usr/bin/" + name) is None


def test_this_machine_refuses_gpu_phases_and_names_nvml():
    problem = gpu_problem(1, set())
    assert problem and "NVML" in problem and "NVIDIA container runtime" in problem


def test_assignment_must_match_the_demand():
    assert assignment_problem(spec(0), set()) is None
    assert assignment_problem(spec(2, ("0",)), {"nvidia"}) == "it needs 2 GPU(s) but was assigned 1 (0)"


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

    def container_pids(cgroup, container):  # the real lookup; the fake GPU "sees" 3 GiB per process found
        pids = runner_gpus.container_pids(cgroup, container)
        seen.append(pids)
        nvml.devices["0"].processes = {pid: 3 * GIB for pid in pids}
        nvml.devices["0"].utilization = 55
        return pids

    monkeypatch.setattr("harness.evaluation.check.gpu_problem", lambda *args, **kwargs: None)  # pretend: a GPU host
    monkeypatch.setattr("harness.runner.docker_backend.assignment_problem", lambda *args: None)
    monkeypatch.setattr("harness.runner.docker_backend.device_requests", lambda ids: [])  # no NVIDIA runtime to start it with
    monkeypatch.setattr("harness.runner.docker_backend.container_pids", container_pids)
    monkeypatch.setattr("harness.runner.gpus.load_nvml", lambda: nvml)
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    gpu_competition = competition("limits.train.gpus=1", "limits.train.gpu_memory=2g", "limits.train.wall_clock_s=30")
    record = check_image(gpu_competition, behave_image("sleeper"), out=open(os.devnull, "w"))
    train = record.phases["train"]
    assert train["wall_s"] < 30  # killed by the GPU memory watch, before its wall clock
    assert record.verdict == "MEMORY_LIMIT" and record.failed_phase == "train"
    assert record.message.startswith("train used ") and "of GPU memory, over its limit of 2.0 GiB, and was killed" in record.message
    assert train["gpu_ids"] == ["0"]
    assert train["peak_gpu_memory_bytes"] >= 3 * GIB and train["peak_gpu_utilization"] == 55
    assert "series" not in train  # the series go to MLflow, from beside the logs
    assert load_series(gpu_competition, record.evaluation_id)["train"]["gpu_memory_bytes"][0][1] >= 3 * GIB
    assert any(seen)  # the container's host PIDs were found


def test_limits_carry_gpu_fields():
    limits = Limits.from_mapping({"infer": {"gpus": 1, "gpu_memory": "8g"}})
    assert limits.infer.gpus == 1 and limits.infer.gpu_memory == 8 * GIB and limits.train.gpus == 0


# --- MLflow gets the series; the self-test of the GPU check runs here ----------------------------


def test_tracker_logs_gpu_series(tmp_path):
    from mlflow.tracking import MlflowClient

    from harness.records.record import EvaluationRecord
    from harness.records.tracking import Tracker

    tracker = Tracker(None, "gpu", tmp_path)
    record = EvaluationRecord(
        "ev-1",
        "digits",
        {"id": "s1", "team": "t"},
        "SCORED",
        None,
        "",
        {"train": {"peak_gpu_memory_bytes": 3 * GIB, "peak_gpu_utilization": 50.0}},
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
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "gpu_check.py"), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.splitlines()
    assert [line.split()[1].rstrip(":") for line in lines if line.startswith("PASS ")][:5] == [
        "nvml",
        "allocate",
        "telemetry",
        "watchdog",
        "release",
    ]
    assert "MEMORY_LIMIT: check used" in done.stdout and "kill latency" in done.stdout
