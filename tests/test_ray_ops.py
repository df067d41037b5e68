"""Ray as its users run it: phases named after what they run, every node checked for the driver's
release, each phase's node facts in its record (a cluster of a head without CPUs and one worker on a
private ``dockerd``), and a real ``ray start --head`` with token authentication: a driver joining by
``host:port`` without the token, with a wrong one, with the right one, and ``ray job submit``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import ray
from clusters import NO_DRAIN, node_of, private_engine, ray_cluster, records, round_competition, submit
from clusters import add_node as add_cluster_node
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import harness
from harness.limits import PhaseLimits
from harness.rounds.driver import drive_round, release_versions
from harness.runner.phase import PhaseSpec
from harness.runner.ray_pool import NodeVersionMismatch, RayPhasePool, RayUnavailable, _run_phase, connect_ray, version_mismatch
from harness.submissions.ledger import Ledger

pytestmark = [pytest.mark.docker, pytest.mark.slow]

VENV_BIN = Path(sys.executable).parent
OTHER_RELEASE = "0.0.1"


def test_ray_client_addresses_are_refused_with_what_to_do_instead():
    with pytest.raises(RayUnavailable, match=r"Ray Client is not supported, the driver must run on a node of the cluster"):
        connect_ray("ray://127.0.0.1:10001")


def test_a_ray_without_its_token_module_refuses_to_join_rather_than_join_unauthenticated(tmp_path):
    """Token authentication is configured through a private Ray module: where this Ray lacks it and
    a token is offered, joining is refused with a message naming the module and the token, before
    any connection is tried (a fresh process, where the module is made unimportable)."""
    script = (
        "import sys\n"
        "from harness.runner.ray_pool import RayUnavailable, connect_ray\n"
        "sys.modules['ray._private.authentication.authentication_token_setup'] = None\n"
        "try:\n"
        "    connect_ray('127.0.0.1:1')\n"
        "except RayUnavailable as exc:\n"
        "    print(exc)\n"
    )
    env = {**os.environ, "RAY_AUTH_TOKEN": "x" * 32, "HOME": str(tmp_path)}
    env.pop("RAY_AUTH_MODE", None)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert proc.returncode == 0, proc.stderr
    said = proc.stdout.strip()
    assert said.startswith("cannot join the Ray cluster at 127.0.0.1:1 with token authentication: this Ray (")
    assert "has no ray._private.authentication module" in said and "the token in RAY_AUTH_TOKEN would not be presented" in said


def test_version_mismatch_names_the_node_and_both_versions():
    driver = {"harness": "0.2.0", "record schema": "harness.evaluation/1"}
    assert version_mismatch("n1/abc", dict(driver), driver) is None
    said = version_mismatch("n1/abc", {"harness": "0.1.0", "record schema": "harness.evaluation/1"}, driver)
    assert said == "node n1/abc runs harness 0.1.0 (the driver has 0.2.0)"
    assert "record schema none (the driver has harness.evaluation/1)" in version_mismatch("n1/abc", {"harness": "0.2.0"}, driver)


@pytest.fixture(scope="class")
def cluster(tmp_path_factory):
    """A head without CPUs (the driver's) and one worker whose phases run on a private engine. The
    driver starts outside the checkout: Ray puts its current directory on every worker's sys.path,
    and the checkout's harness.egg-info would speak for a node's own install. Class-scoped: gone
    before the ``ray start --head`` below starts (two clusters at once on two cores are slow)."""
    cwd = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("driver-cwd"))
    try:
        # the dashboard: test_each_phase_records_the_host_of_its_node_and_is_named_after_what_it_runs lists tasks through Ray's state API
        with private_engine() as (host, engine), ray_cluster(0, [{"DOCKER_HOST": host}], dashboard=True) as (cluster, workers):
            yield cluster, workers[0], engine
    finally:
        os.chdir(cwd)


def add_node(cluster, environment: dict[str, str]):
    node = add_cluster_node(cluster, environment)
    cluster.wait_for_nodes()
    return node


class TestOnACluster:
    """On the cluster of a head without CPUs and a worker on a private engine."""

    def test_a_node_of_another_release_is_refused(self, cluster, competition, behave_image, tmp_path):
        ray_cluster, _, _ = cluster
        # That node's Python finds another harness release first: the installed metadata
        # ``harness.__version__`` is read from says OTHER_RELEASE there, as after a partial upgrade.
        other = tmp_path / "other-release"
        (other / f"harness-{OTHER_RELEASE}.dist-info").mkdir(parents=True)
        (other / f"harness-{OTHER_RELEASE}.dist-info" / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: harness\nVersion: {OTHER_RELEASE}\n"
        )
        node = add_node(ray_cluster, {"PYTHONPATH": f"{other}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"})
        try:
            on_node = NodeAffinitySchedulingStrategy(node.node_id, soft=False)
            found = ray.get(ray.remote(num_cpus=0)(release_versions).options(scheduling_strategy=on_node).remote())
            assert found == {**release_versions(), "harness": OTHER_RELEASE} and harness.__version__ != OTHER_RELEASE

            comp = round_competition(competition, tmp_path / "nodes")
            submission_id = submit(comp, "team-a", behave_image("constant"))
            with pytest.raises(NodeVersionMismatch) as refused:
                drive_round(comp, None)
            said = str(refused.value)
            assert f"/{node.node_id[:12]} runs harness {OTHER_RELEASE} (the driver has {harness.__version__})" in said
            assert said.count("runs harness") == 1  # the head and the other worker run the driver's release
            assert [s.id for s in Ledger.of(comp).pending()] == [submission_id]  # the round never started
            assert list((comp.paths.root / "rounds").glob("round-*.json")) == []

            # A node that joins after the check: each phase it is handed is an INFRA_ERROR that says why.
            pool = RayPhasePool(versions=release_versions)
            spec = PhaseSpec("r1", "train", behave_image("constant"), ("train",), (), {}, PhaseLimits(), str(tmp_path), labels={})
            result = ray.get(_run_phase.options(scheduling_strategy=on_node).remote(spec, None, "docker", release_versions, pool.expected))
            assert result.verdict.value == "INFRA_ERROR"
            assert f"runs harness {OTHER_RELEASE} (the driver has {harness.__version__})" in result.message
            assert node_of({"node": result.node}) == node.node_id[:12]
        finally:
            ray_cluster.remove_node(node)

    def test_each_phase_records_the_host_of_its_node_and_is_named_after_what_it_runs(
        self, cluster, home, competition, behave_image, docker_client, tmp_path
    ):
        ray_cluster, worker, engine = cluster
        comp = round_competition(competition, tmp_path / "nodes", "competition.smoke.enabled=true")
        submission_id = submit(comp, "team-a", behave_image("constant"))
        image_id = docker_client.images.get(behave_image("constant")).id
        try:
            summary = drive_round(comp, out=sys.stderr)
        finally:
            engine.images.remove(image_id, force=True)
        assert summary.verdicts == {"SCORED": 1}
        (record,) = records(home)
        node_root, driver_root = engine.info()["DockerRootDir"], docker_client.info()["DockerRootDir"]
        assert node_root != driver_root
        assert set(record["phases"]) == set(record["smoke"]["phases"]) == {"train", "infer"}
        for ran in [*record["phases"].values(), *record["smoke"]["phases"].values()]:
            assert node_of(ran) == worker.node_id[:12]  # the head has no CPUs: the worker ran them all
            host = ran["host"]  # measured on that node: its engine, not the driver's
            assert host["docker_root_dir"] == node_root
            assert host["docker_version"] == engine.version()["Version"]
            assert host["cgroup_version"] == str(engine.info()["CgroupVersion"])
            assert host["hostname"] == socket.gethostname() and host["memory_bytes"] > 0 and host["kernel"]
        assert "docker_root_dir" not in record["manifest"]["host"]  # the driver's machine, as before

        from ray.util.state import list_tasks

        names = {task.name for task in list_tasks(address=ray_cluster.address, limit=10000)}
        assert {f"{stage}{phase}:{submission_id}" for stage in ("", "smoke-") for phase in ("train", "infer")} <= names


# A real `ray start --head` with token authentication, on loopback.


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """``ray start --head --block`` on loopback with token authentication (a token in its HOME, as
    ``ray get-auth-token --generate`` leaves it), with one CPU (a round here runs one phase at a
    time); its GCS port, dashboard port and token. Its process group, and any process under its
    temp dir, is ended after."""
    root = tmp_path_factory.mktemp("head")
    head_home, temp_dir = root / "home", Path(f"/tmp/hx-ray-{root.name}")
    head_home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}  # what ray.init left in this process
    env.update(HOME=str(head_home), PATH=f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}", **NO_DRAIN)
    subprocess.run([VENV_BIN / "ray", "get-auth-token", "--generate"], env=env, check=True, capture_output=True, timeout=60)
    port, dashboard = free_port(), free_port()
    command = [VENV_BIN / "ray", "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1", "--num-cpus=1"]
    command += ["--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard}", f"--temp-dir={temp_dir}", "--disable-usage-stats"]
    # the job agent's HTTP port and Ray Client's have fixed defaults that another Ray on this machine (an xdist worker's) holds
    command += [f"--dashboard-agent-listen-port={free_port()}", f"--ray-client-server-port={free_port()}"]
    command += ["--include-log-monitor=False", "--no-monitor"]  # no driver here takes worker logs, nothing scales the cluster
    head = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=open(root / "head.log", "w"), start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (list(temp_dir.glob("session_latest/logs/dashboard.log")) and port_open(dashboard)):
            assert head.poll() is None and time.monotonic() < deadline, (root / "head.log").read_text()[-3000:]
            time.sleep(1)
        yield port, dashboard, (head_home / ".ray" / "auth_token").read_text().strip()
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        for process in psutil.process_iter(["cmdline"]):  # Ray's own processes that left the group
            if any(str(temp_dir) in part for part in process.info["cmdline"] or []):
                process.kill()
        shutil.rmtree(temp_dir, ignore_errors=True)


def port_open(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def driver_env(home: Path, tmp_path: Path, **ray_auth: str) -> dict[str, str]:
    """A driver on another machine: a HOME without ~/.ray, only the RAY_AUTH_* given."""
    (tmp_path / "driver-home").mkdir(exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAY_AUTH", "RAY_ADDRESS"))}
    return {**env, "HOME": str(tmp_path / "driver-home"), "HARNESS_HOME": str(home), **ray_auth}


def harness_round(env: dict[str, str], *overrides: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "harness.cli", "round", "digits", "competition.smoke.enabled=false", *overrides]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize(
    ("auth", "said"),
    [
        ({}, "it wants an authentication token and this driver has none"),
        ({"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": "not-the-token"}, "the token in RAY_AUTH_TOKEN is not the cluster's"),
    ],
)
def test_a_driver_without_the_clusters_token_is_told_what_is_missing(token_head, home, competition, behave_image, tmp_path, auth, said):
    port, _, _ = token_head
    submit(competition(), "team-a", behave_image("constant"))
    # Ray tries a refused connection once a second for ~20 s (NUM_REDIS_GET_RETRIES); two tries say the same
    env = {**driver_env(home, tmp_path, **auth), "RAY_gcs_server_port_wait_time_s": "2"}
    done = harness_round(env, f"runner.address=127.0.0.1:{port}")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"harness: the Ray cluster at 127.0.0.1:{port} refused this driver: {said}; "
        + (
            "give this driver the cluster's token (on the head node: `ray get-auth-token`) in RAY_AUTH_TOKEN or ~/.ray/auth_token, "
            "and RAY_AUTH_MODE=token"
        )
    ]


def test_a_driver_with_the_token_runs_a_round_on_the_cluster(token_head, home, competition, behave_image, tmp_path):
    port, _, token = token_head
    submission_id = submit(competition(), "team-a", behave_image("constant"))
    done = harness_round(driver_env(home, tmp_path, RAY_AUTH_TOKEN=token), f"runner.address=127.0.0.1:{port}")
    assert done.returncode == 0, done.stderr
    (record,) = records(home)
    assert record["submission"]["id"] == submission_id and record["verdict"] == "SCORED"
    assert record["phases"]["train"]["host"]["docker_version"]


def test_ray_job_submit_runs_a_round(token_head, home, competition, behave_image, tmp_path):
    _, dashboard, token = token_head
    submission_id = submit(competition(), "team-a", behave_image("constant"))
    env = driver_env(home, tmp_path, RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=token)
    runtime_env = json.dumps({"env_vars": {"HARNESS_HOME": str(home)}})
    command = [VENV_BIN / "ray", "job", "submit", f"--address=http://127.0.0.1:{dashboard}", f"--runtime-env-json={runtime_env}"]
    command += ["--", "harness", "round", "digits", "competition.smoke.enabled=false", "runner.address=auto"]
    deadline = time.monotonic() + 120
    while True:  # the head's job agent registers a while after the dashboard answers; the server says to try again
        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        if "No available agent to submit job" not in done.stderr or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "succeeded" in done.stdout
    (record,) = records(home)
    assert record["submission"]["id"] == submission_id and record["verdict"] == "SCORED"
