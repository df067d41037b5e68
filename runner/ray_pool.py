"""Run phase specs as Ray tasks whose resource demands come from the phase's limits."""

from __future__ import annotations

import dataclasses
import logging
import os
import socket
from collections import deque
from typing import Any, Hashable

import ray
import ray.exceptions

from limits import PhaseVerdict
from runner.docker_backend import DockerBackend
from runner.phase import PhaseResult, PhaseSpec


@ray.remote(max_retries=0)
def _run_phase(spec: PhaseSpec) -> PhaseResult:
    result = DockerBackend().run(with_ray_gpus(spec))
    result.node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
    return result


def with_ray_gpus(spec: PhaseSpec) -> PhaseSpec:
    """Inside a Ray task: the spec with the GPU ids Ray assigned it (Ray maps them through CUDA_VISIBLE_DEVICES)."""
    if not spec.limits.gpus:
        return spec
    return dataclasses.replace(spec, gpu_ids=tuple(ray.get_runtime_context().get_accelerator_ids().get("GPU", [])))


def resource_demand(spec: PhaseSpec) -> dict[str, Any]:
    limits = spec.limits
    return {"num_cpus": limits.cpus, "memory": limits.memory, "num_gpus": limits.gpus}


class RayPhasePool:
    """Submit specs, collect results as they finish; at most ``max_parallel`` in flight."""

    def __init__(self, address: str | None = None, max_parallel: int | None = None, num_cpus: int | None = None) -> None:
        if not ray.is_initialized():
            options: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.ERROR, "log_to_driver": False}
            if address is None:
                options["num_cpus"] = num_cpus or os.cpu_count()
                options["object_store_memory"] = 128 * 1024**2
            ray.init(address=address, **options)
        self.max_parallel = max_parallel
        self._queue: deque[tuple[Hashable, PhaseSpec]] = deque()
        self._running: dict[ray.ObjectRef, tuple[Hashable, PhaseSpec]] = {}
        self._refused: list[tuple[Hashable, PhaseResult]] = []

    @property
    def busy(self) -> bool:
        return bool(self._queue or self._running or self._refused)

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, key: Hashable, spec: PhaseSpec) -> None:
        problem = _gpu_shortfall(spec.limits.gpus)
        if problem:  # Ray would hold the task forever as infeasible
            message = f"{spec.phase}: the Ray cluster cannot run it: {problem}; this is not the submission's fault"
            self._refused.append((key, PhaseResult(spec.phase, PhaseVerdict.INFRA_ERROR, message, limits=spec.limits.to_dict())))
            return
        self._queue.append((key, spec))
        self._launch()

    def _launch(self) -> None:
        while self._queue and (self.max_parallel is None or len(self._running) < self.max_parallel):
            key, spec = self._queue.popleft()
            ref = _run_phase.options(**resource_demand(spec)).remote(spec)
            self._running[ref] = (key, spec)

    def wait(self, timeout: float = 1.0) -> list[tuple[Hashable, PhaseResult]]:
        if self._refused:
            refused, self._refused = self._refused, []
            return refused
        if not self._running:
            return []
        done, _ = ray.wait(list(self._running), num_returns=1, timeout=timeout)
        finished = []
        for ref in done:
            key, spec = self._running.pop(ref)
            finished.append((key, self._collect(ref, spec)))
        self._launch()
        return finished

    @staticmethod
    def _collect(ref: ray.ObjectRef, spec: PhaseSpec) -> PhaseResult:
        try:
            return ray.get(ref)
        except ray.exceptions.RayError as exc:
            return PhaseResult(
                phase=spec.phase,
                verdict=PhaseVerdict.INFRA_ERROR,
                message=f"{spec.phase}: the Ray task failed ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                "this is not the submission's fault and it will be retried",
                limits=spec.limits.to_dict(),
            )

    def cancel(self) -> list[Hashable]:
        """Cancel everything queued or running; returns the keys that were in flight."""
        keys = [key for key, _ in self._queue] + [key for key, _ in self._running.values()] + [key for key, _ in self._refused]
        for ref in self._running:
            ray.cancel(ref, force=True)
        self._queue.clear()
        self._refused.clear()
        self._running.clear()
        return keys


def _gpu_shortfall(needed: int) -> str | None:
    if not needed:
        return None
    most = max((node["Resources"].get("GPU", 0) for node in ray.nodes() if node["Alive"]), default=0)
    if most >= needed:
        return None
    return f"it needs {needed} GPU(s) on one node, and no node of the cluster has more than {most:g}"
