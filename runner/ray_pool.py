"""Run phase specs as Ray tasks whose resource demands come from the phase's limits."""

from __future__ import annotations

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
    result = DockerBackend().run(spec)
    result.node = f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"
    return result


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

    @property
    def busy(self) -> bool:
        return bool(self._queue or self._running)

    @property
    def running(self) -> int:
        return len(self._running)

    def submit(self, key: Hashable, spec: PhaseSpec) -> None:
        self._queue.append((key, spec))
        self._launch()

    def _launch(self) -> None:
        while self._queue and (self.max_parallel is None or len(self._running) < self.max_parallel):
            key, spec = self._queue.popleft()
            ref = _run_phase.options(**resource_demand(spec)).remote(spec)
            self._running[ref] = (key, spec)

    def wait(self, timeout: float = 1.0) -> list[tuple[Hashable, PhaseResult]]:
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
        keys = [key for key, _ in self._queue] + [key for key, _ in self._running.values()]
        for ref in self._running:
            ray.cancel(ref, force=True)
        self._queue.clear()
        self._running.clear()
        return keys
