"""Run phase specs as Ray tasks whose resource demands come from the phase's limits.

The pool keeps the queue itself and hands Ray only what the cluster can run now (and at most
``max_parallel``), so the order is the pool's: fair across groups (teams, see ``FairQueue``).

Smoke phases (a submission's quick check on a few rows, ``submit(..., smoke=True)``) have a lane
of their own: they are dispatched before any full phase, and full phases never take the last
``smoke_slots`` of the phases that can run at once (always leaving them at least one), so a smoke
phase never waits behind long full runs. A pool made with ``smoke_slots=0`` keeps none back.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Hashable
from typing import Any

import ray
import ray.exceptions
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness.limits import PhaseVerdict
from harness.runner.backend import Backend, create_backend
from harness.runner.fair_queue import FairQueue
from harness.runner.phase import PhaseResult, PhaseSpec
from harness.runner.staging import Staging, StagingError
from harness.util.sizes import format_size

NODE_LABEL = "harness.node"  # the Ray node a container was started from
NODES_TTL_S = 2.0  # how long the list of live nodes (and so the capacity) is trusted
CANCEL_WAIT_S = 10.0
_RAY_RESOURCE = {"num_cpus": "CPU", "memory": "memory", "num_gpus": "GPU"}


@functools.cache
def _backend(name: str) -> Backend:
    """One engine connection per Ray worker process and backend, made on its first phase (or warm-up)."""
    return create_backend(name)


@ray.remote(max_retries=0)
def _run_phase(spec: PhaseSpec, staging: Staging | None, backend_name: str) -> PhaseResult:
    node_id = ray.get_runtime_context().get_node_id()
    spec = dataclasses.replace(with_ray_gpus(spec), labels={**spec.labels, NODE_LABEL: node_id})
    backend = _backend(backend_name)
    try:
        ran = spec if staging is None else staging.prepare(spec, node_id, backend.client)  # the depot moves Docker images
        result = backend.run(ran)
        if staging is not None:
            staging.bring_back(spec, ran, result, node_id)
    except StagingError as exc:
        result = infra_result(spec, f"could not bring its image or data to node {node_id[:12]} ({exc})")
    result.node = f"{socket.gethostname()}/{node_id[:12]}"
    return result


@ray.remote(num_cpus=0, max_retries=0)
def _warm_up(backend_name: str) -> None:
    _backend(backend_name)


def with_ray_gpus(spec: PhaseSpec) -> PhaseSpec:
    """Inside a Ray task: the spec with the GPU ids Ray assigned it (Ray maps them through CUDA_VISIBLE_DEVICES)."""
    if not spec.limits.gpus:
        return spec
    return dataclasses.replace(spec, gpu_ids=tuple(ray.get_runtime_context().get_accelerator_ids().get("GPU", [])))


def connect_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto", "host:port"), or start a local one (None); once per process."""
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:  # "local": never join a cluster some other process left running here
        options.update(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, object_store_memory=128 * 1024**2)
    ray.init(address=address or "local", **options)


def resource_demand(spec: PhaseSpec) -> dict[str, Any]:
    limits = spec.limits
    return {"num_cpus": limits.cpus, "memory": limits.memory, "num_gpus": limits.gpus}


def infra_result(spec: PhaseSpec, problem: str) -> PhaseResult:
    message = f"{spec.phase}: {problem}; this is not the submission's fault and it will be retried"
    return PhaseResult(spec.phase, PhaseVerdict.INFRA_ERROR, message, limits=spec.limits.to_dict())


class RayPhasePool:
    """Submit specs (each with a group), collect results as they finish."""

    def __init__(
        self,
        address: str | None = None,
        max_parallel: int | None = None,
        num_cpus: int | None = None,
        staging: Staging | None = None,
        backend: str = "docker",
        smoke_slots: int = 0,
    ) -> None:
        connect_ray(address, num_cpus)
        self.max_parallel = max_parallel
        self.staging = staging
        self.backend = backend  # the ``runner.backend`` each worker runs its phases with
        self.smoke_slots = smoke_slots
        # The smoke lane first, then the full one.
        self._lanes: tuple[FairQueue[tuple[Hashable, PhaseSpec]], ...] = (FairQueue(), FairQueue())
        self._running: dict[ray.ObjectRef, tuple[Hashable, PhaseSpec, str, bool]] = {}  # (key, spec, group, full)
        self._running_full = 0
        self._per_group: Counter[str] = Counter()
        self._refused: list[tuple[Hashable, PhaseResult]] = []
        self._nodes: list[dict[str, float]] = []
        self._nodes_at = float("-inf")
        self._models: dict[str, str] = {}  # a model directory of the driver's -> the node that keeps it

    @property
    def busy(self) -> bool:
        return bool(any(self._lanes) or self._running or self._refused)

    def running_keys(self) -> list[Hashable]:
        return [key for key, *_ in self._running.values()]

    def warm_up(self) -> None:
        """Start a worker per CPU and connect it to its engine, so that start-up is not charged to the first phases."""
        cpus = int(sum(node.get("CPU", 0) for node in self._live_nodes()))
        ray.get([_warm_up.remote(self.backend) for _ in range(max(1, cpus))])

    def submit(self, key: Hashable, spec: PhaseSpec, group: str = "", *, first: bool = False, smoke: bool = False) -> None:
        """Queue ``spec``; ``first`` puts it before the rest of its group (a follow-up of started work),
        ``smoke`` in the smoke lane."""
        problem = _gpu_shortfall(spec.limits.gpus)
        if problem:  # Ray would hold the task forever as infeasible
            self._refused.append((key, infra_result(spec, f"the Ray cluster cannot run it: {problem}")))
            return
        self._lanes[0 if smoke else 1].push(group, (key, spec), first=first)

    def dispatch(self) -> None:
        """Hand Ray the next specs, smoke ones first, in fair order, while the cluster has room for them."""
        for lane, queue in enumerate(self._lanes):
            full = lane == 1
            while (group := queue.next_group(self._per_group)) is not None:
                key, spec = queue.head(group)
                capacity = self._capacity(spec)
                if capacity == 0:
                    queue.pop(group)
                    self._refused.append((key, infra_result(spec, f"no live node of the Ray cluster can hold it ({_demand_text(spec)})")))
                    continue
                room = capacity if self.max_parallel is None else min(self.max_parallel, capacity)
                if full and self._running_full >= room - min(self.smoke_slots, room - 1):
                    break
                if len(self._running) >= room:
                    break
                queue.pop(group)
                ref = _run_phase.options(**resource_demand(spec), **self._placement(spec)).remote(spec, self.staging, self.backend)
                self._running[ref] = (key, spec, group, full)
                self._running_full += full
                self._per_group[group] += 1

    def wait(self, timeout: float = 1.0) -> list[tuple[Hashable, PhaseResult]]:
        """Dispatch what fits, then return every result that is ready (waiting up to ``timeout`` for one)."""
        self.dispatch()
        if self._refused:
            refused, self._refused = self._refused, []
            return refused
        if not self._running:
            return []
        ready, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(list(self._running), num_returns=len(self._running), timeout=0)
        finished = []
        for ref in ready:
            key, spec, group, full = self._running.pop(ref)
            self._per_group[group] -= 1
            self._running_full -= full
            result = self._collect(ref, spec)
            if result.model_node:
                self._models[next(m.source for m in spec.mounts if m.target == "/model")] = result.model_node
            Staging.receive(result)
            finished.append((key, result))
        return finished

    def _placement(self, spec: PhaseSpec) -> dict[str, Any]:
        """An infer runs on the node that keeps its model (when that node is gone, Ray fails the task:
        an infrastructure error, and the evaluation starts again)."""
        node = next(
            (self._models[m.source] for m in spec.mounts if m.target == "/model" and m.read_only and m.source in self._models), None
        )
        return {} if node is None else {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=False)}

    @staticmethod
    def _collect(ref: ray.ObjectRef, spec: PhaseSpec) -> PhaseResult:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            cause = exc.cause if isinstance(exc, ray.exceptions.RayTaskError) else exc
            lines = str(cause).strip().splitlines()
            return infra_result(spec, f"the Ray task failed ({type(cause).__name__}: {lines[0] if lines else ''})")

    def cancel(self) -> list[Hashable]:
        """Cancel everything queued or running; returns the keys that were in flight. Once it returns,
        no task of this pool can start a container any more."""
        keys = [key for queue in self._lanes for key, _ in queue] + self.running_keys() + [key for key, _ in self._refused]
        refs = list(self._running)
        for ref in refs:
            ray.cancel(ref, force=True)
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=CANCEL_WAIT_S)
        for queue in self._lanes:
            queue.clear()
        self._refused.clear()
        self._running.clear()
        self._running_full = 0
        self._per_group.clear()
        return keys

    def _live_nodes(self) -> list[dict[str, float]]:
        if time.monotonic() - self._nodes_at > NODES_TTL_S:
            self._nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
            self._nodes_at = time.monotonic()
        return self._nodes

    def _capacity(self, spec: PhaseSpec) -> int:
        """How many phases like ``spec`` the live nodes hold at once (by their total resources)."""
        needs = {_RAY_RESOURCE[key]: need for key, need in resource_demand(spec).items() if need}
        return sum(min(int(node.get(name, 0) // need) for name, need in needs.items()) for node in self._live_nodes())


def _demand_text(spec: PhaseSpec) -> str:
    limits = spec.limits
    return f"it needs {limits.cpus:g} CPU, {format_size(limits.memory)} of memory and {limits.gpus} GPU on one node"


def _gpu_shortfall(needed: int) -> str | None:
    if not needed:
        return None
    most = max((node["Resources"].get("GPU", 0) for node in ray.nodes() if node["Alive"]), default=0)
    if most >= needed:
        return None
    return f"it needs {needed} GPU(s) on one node, and no node of the cluster has more than {most:g}"
