"""Cluster: rounds on the in-machine Ray cluster whose worker nodes have their own Docker engines
(a head node without CPUs, where the driver and the depot run, and two one-CPU workers, each on a
private ``dockerd`` with its own data root: tests/clusters.py), against the floor on the same engines.

(a) A round's throughput (job ``nap1``, 1 s per phase) against a plain Python loop of raw
``docker run --rm`` of the same phases (the smoke stage's train and infer, then train and infer:
``common.raw_submission``) on the same engines, one run at a time per engine (each worker node has
one CPU, each phase asks for one), with the same limits, isolation, environment and mounts. To say
where the time goes it also prints, per engine and phase, the raw loops' time per ``docker run`` and
the round's per phase with its time inside the container (the records' ``wall_s``), and the CPU
seconds used during each (the driver, the Ray nodes' services and workers, the private engines, and
the machine's other processes, which share its cores).

(b) The time to bring a new image (the 223 MB ``nap1``, pushed to a real registry) to every engine
through the round's path (a Ray task per worker node calling ``runner.staging.ensure_image``, which
pulls by manifest digest as ``harness-worker``), against raw ``docker pull``s of the same reference
from the same registry with the same credential, one per engine at once. Between tries each engine
forgets the image, so every pull brings every layer.

Usage: ``python benchmarks/cluster.py [--quick]`` (12 submissions and 3 tries of each pull; 4 and 2
with --quick).
"""

from __future__ import annotations

import base64
import json
import os
import platform
import subprocess
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from unittest.mock import patch

import docker
import ray
from common import (
    arguments,
    behave_image,
    competition,
    cpu_seconds,
    cpu_used,
    load_average,
    median,
    on_engine,
    raw_submission,
    run_round,
    startup_line,
    submit_many,
    timed,
    work_home,
)
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness.rounds.distribution import WORKER_USERNAME
from harness.rounds.round import Round, RoundSummary
from harness.runner.depot import Depot
from harness.runner.engine import connect
from harness.runner.staging import RegistryCredential, ensure_image
from tests.clusters import private_engine, ray_cluster, records
from tests.registry_helpers import push, running_registry

WORKERS = 2
TEAM_TOKEN = "bench-team-token"
WORKER_TOKEN = "bench-worker-token"


@ray.remote(num_cpus=0)
def engine_version() -> str:
    """The node's engine (its ``DOCKER_HOST``), asked from a task on that node; warms its worker too."""
    return connect().version()["Version"]


@ray.remote(num_cpus=0)
def bring_image(digest: str, depot, node_dir: str, reference: str, credential: RegistryCredential) -> list[str]:
    """What a phase's task does first on a node lacking the image; the image's repo digests after."""
    client = connect()
    Path(node_dir).mkdir(parents=True, exist_ok=True)
    ensure_image(client, digest, depot, Path(node_dir), pull_from=reference, credential=credential)
    return client.images.get(digest).attrs["RepoDigests"]


def on_node(node_id: str) -> NodeAffinitySchedulingStrategy:
    return NodeAffinitySchedulingStrategy(node_id, soft=False)


def in_parallel(jobs: Sequence[Callable[[], object]]) -> float:
    """Seconds until every job, each in its own thread, has finished (a failure is raised)."""
    failures: list[BaseException] = []

    def run(job: Callable[[], object]) -> None:
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 - re-raised below, in the caller's thread
            failures.append(exc)

    threads = [threading.Thread(target=run, args=(job,)) for job in jobs]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if failures:
        raise failures[0]
    return time.monotonic() - started


def raw_loops(comp, image: str, hosts: Sequence[str], work: Path, submissions: int) -> float:
    """Seconds for a plain loop per engine to run ``submissions`` raw submissions between them, one at a time per engine."""
    left = iter(range(submissions))
    guard = threading.Lock()

    def loop(host: str) -> None:
        while True:
            with guard:
                if next(left, None) is None:
                    return
            timed(on_engine(raw_submission(comp, image, work), host))

    return in_parallel([lambda h=host: loop(h) for host in hosts])


@contextmanager
def cpu_of_rounds() -> Iterator[Counter[str]]:
    """CPU seconds per role (``common.cpu_used``) while ``Round.run`` runs, its start-up left out."""
    used: Counter[str] = Counter()
    run = Round.run

    def measured(self: Round) -> RoundSummary:
        before = cpu_seconds()
        try:
            return run(self)
        finally:
            used.update(cpu_used(before, cpu_seconds()))

    with patch.object(Round, "run", measured):
        yield used


def record_phases(record: dict) -> list[dict]:
    """A record's phases, its smoke stage's first."""
    return [*(record.get("smoke") or {}).get("phases", {}).values(), *record["phases"].values()]


def cpu_line(used: Counter[str], seconds: float) -> str:
    roles = ("driver", "Ray services", "Ray workers", "engines", "other processes")
    return ", ".join(f"{role} {used[role]:.1f} s ({used[role] / seconds:.0%} of a core)" for role in roles)


def forget(engines: Sequence[docker.DockerClient], image_id: str) -> None:
    """Each engine drops the image and its layers (nothing else there uses them)."""
    for engine in engines:
        engine.images.remove(image_id, force=True)


def main() -> None:
    args = arguments(__doc__)
    submissions, tries = (4, 2) if args.quick else (12, 3)
    image = behave_image("nap1")
    image_id = connect().images.get(image).id
    with work_home() as home, ExitStack() as stack:
        engines = [stack.enter_context(private_engine()) for _ in range(WORKERS)]
        hosts = [host for host, _ in engines]
        clients = [client for _, client in engines]
        _, workers = stack.enter_context(ray_cluster(0, [{"DOCKER_HOST": host} for host in hosts]))
        versions = ray.get([engine_version.options(scheduling_strategy=on_node(w.node_id)).remote() for w in workers])

        # (b) a new image to every engine: the round's path and raw pulls, alternating which goes first.
        service = home / "service" / "digits"
        credentials = {"team-a": (TEAM_TOKEN, "teams/team-a"), WORKER_USERNAME: (WORKER_TOKEN, None)}
        registry = stack.enter_context(running_registry(service, credentials))
        repository = f"{registry.address}/teams/team-a/nap1"
        connect().images.get(image).tag(repository, "v1")
        reference = f"{repository}@{push(connect(), repository, 'v1', {'username': 'team-a', 'password': TEAM_TOKEN})}"
        credential = RegistryCredential(WORKER_USERNAME, WORKER_TOKEN)
        depot = Depot.options(scheduling_strategy=on_node(ray.get_runtime_context().get_node_id())).remote(str(home / "depot"))
        config = Path(tempfile.mkdtemp(dir=home))  # the raw pulls' DOCKER_CONFIG: the same credential
        secret = base64.b64encode(f"{WORKER_USERNAME}:{WORKER_TOKEN}".encode()).decode()
        (config / "config.json").write_text(json.dumps({"auths": {registry.address: {"auth": secret}}}))
        raw_pull = {**os.environ, "DOCKER_CONFIG": str(config)}

        def through_the_round() -> float:
            started = time.monotonic()
            found = ray.get(
                [
                    bring_image.options(scheduling_strategy=on_node(w.node_id)).remote(
                        image_id, depot, str(home / "nodes" / w.node_id[:16]), reference, credential
                    )
                    for w in workers
                ]
            )
            took = time.monotonic() - started
            assert all(reference in digests for digests in found), f"an engine did not pull {reference}: {found}"
            return took

        def raw_pulls() -> float:
            pulls = [on_engine([["docker", "pull", "--quiet", reference]], host)[0] for host in hosts]
            return in_parallel([lambda c=pull: subprocess.run(c, env=raw_pull, check=True, capture_output=True) for pull in pulls])

        harness_pulls: list[float] = []
        floor_pulls: list[float] = []
        for attempt in range(tries):
            for measure, into in [(through_the_round, harness_pulls), (raw_pulls, floor_pulls)][:: 1 if attempt % 2 == 0 else -1]:
                into.append(measure())
                forget(clients, image_id)
        through_the_round()  # leaves the image on every engine for the round
        served = registry.tokens.granted.count(WORKER_USERNAME)
        archives = list((home / "depot").glob("image-*.tar"))

        # (a) a round against raw loops on the same engines.
        comp = competition(home, f"runner.node_cache={home / 'nodes'}")
        before = cpu_seconds()
        raw_s = raw_loops(comp, image_id, hosts, home, submissions)  # by id: the engines hold it untagged
        raw_cpu = cpu_used(before, cpu_seconds())
        raw_runs = submissions * len(raw_submission(comp, image_id, home))
        submit_many(comp, image, submissions)
        started = time.monotonic()
        with cpu_of_rounds() as round_cpu:
            summary, log = run_round(comp)
        with_startup_s = time.monotonic() - started
        in_containers = [phase["wall_s"] for record in records(home) for phase in record_phases(record)]

    harness_pull_s, floor_pull_s = median(harness_pulls), median(floor_pulls)
    print(
        f"cluster benchmark: this machine {os.cpu_count()} cores (shared), {platform.machine()}, load {load_average()}; Ray {ray.__version__}"
    )
    print(
        f"  {1 + WORKERS} Ray nodes: the head (driver and depot, no CPUs, default engine) and {WORKERS} one-CPU workers,"
        f" each on its own dockerd ({', '.join(versions)}; --bridge=none, own data root)"
    )
    print(f"  (a) {submissions} submissions of nap1 (1 CPU, 1 s per phase)")
    print(f"    raw loops, one docker run --rm at a time per engine   {raw_s:6.1f} s   {submissions / raw_s * 60:6.1f} submissions/min")
    print(
        f"    harness round                                      {summary.wall_s:6.1f} s   {submissions / summary.wall_s * 60:6.1f} submissions/min"
        f"   ratio {raw_s / summary.wall_s:.2f}  (target >= 0.9)"
    )
    print(
        f"    harness round with its start-up                    {with_startup_s:6.1f} s                          ratio {raw_s / with_startup_s:.2f}"
    )
    print(
        f"    per engine and phase: raw loops {raw_s * WORKERS / raw_runs:.2f} s a docker run; round {summary.wall_s * WORKERS / len(in_containers):.2f} s"
        f" a phase, {sum(in_containers) / len(in_containers):.2f} s of it in the container ({len(in_containers)} phases: each engine ran a container"
        f" {sum(in_containers) / (summary.wall_s * WORKERS):.0%} of the round)"
    )
    print(f"    CPU during the raw loops: {cpu_line(raw_cpu, raw_s)}")
    print(f"    CPU during the round:     {cpu_line(round_cpu, summary.wall_s)}")
    print(f"    one-time {startup_line(log)}")
    print(
        f"  (b) image nap1 ({connect().images.get(image).attrs['Size'] / 1e6:.0f} MB) to {WORKERS} engines from the registry, {tries} tries each"
    )
    print(
        f"    raw docker pull, one per engine at once             {floor_pull_s:6.2f} s   (median; min {min(floor_pulls):.2f}, max {max(floor_pulls):.2f})"
    )
    print(
        f"    round's path (ensure_image in a task per node)      {harness_pull_s:6.2f} s   (median; min {min(harness_pulls):.2f},"
        f" max {max(harness_pulls):.2f})   ratio {harness_pull_s / floor_pull_s:.2f}  (target <= 1.1)"
    )
    print(f"    worker tokens the registry granted: {served}; depot archives made: {len(archives)}")
    assert summary.verdicts == {"SCORED": submissions}, summary.verdicts


if __name__ == "__main__":
    main()
