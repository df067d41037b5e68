"""Run phase specs as Ray tasks whose resource demands come from the phase's limits.

The pool keeps the queue itself and hands Ray only what the cluster can run now (and at most
``max_parallel``), so the order is the pool's: fair across groups (teams, see ``FairQueue``).

A pool made with ``spread=True`` (a winners' re-run) asks Ray to spread the phases that are not
tied to a node over the cluster's nodes, so that the repeats of one submission run on different ones.

Smoke phases (a submission's quick check on a few rows, ``submit(..., smoke=True)``) have a lane
of their own: they are dispatched before any full phase, and while smoke phases are queued or
running, full phases never take the last ``smoke_slots`` of the phases that can run at once (always
leaving them at least one), so a smoke phase never waits behind long full runs. Once no smoke
phase is queued or running, full phases take those slots too: a round queues every smoke phase at
its start (a smoke-infer before the dispatch after its smoke-train), so a slot kept then would stay
idle (on a two-slot cluster, half of it); only a retry's smoke phase, queued later, may wait for a
full one to end. A pool made with ``smoke_slots=0`` keeps none back.

A phase's Ray task is named after what it runs (``train:SUBMISSION``, ``smoke-infer:SUBMISSION``), as
``ray list tasks`` and the dashboard show it. Every node must run the driver's release: ``warm_up``
refuses a cluster with a node that reports other versions, and a node that joins later with them
gets an INFRA_ERROR for each phase it is handed, never a silent run. A phase's result carries the
host facts of the node that ran it, measured there.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Hashable, Iterator
from pathlib import Path
from typing import Any

import ray
import ray.exceptions
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

import harness
from harness.limits import PhaseVerdict
from harness.runner.backend import Backend, create_backend
from harness.runner.fair_queue import FairQueue
from harness.runner.host import host_info
from harness.runner.phase import PhaseResult, PhaseSpec
from harness.runner.staging import Staging, StagingError, stage_data
from harness.util.errors import HarnessError
from harness.util.sizes import format_size

NODE_LABEL = "harness.node"  # the Ray node a container was started from
NODES_TTL_S = 2.0  # how long the list of live nodes (and so the capacity) is trusted
CANCEL_WAIT_S = 10.0
_RAY_RESOURCE = {"num_cpus": "CPU", "memory": "memory", "num_gpus": "GPU"}
AUTH_REFUSED = "Authentication token is missing or incorrect"  # what Ray's core says, retrying, when a cluster refuses a token


Versions = Callable[[], dict[str, str]]


class NodeVersionMismatch(HarnessError):
    """A node of the cluster runs another release than the driver."""


def harness_versions() -> dict[str, str]:
    """The versions a node must share with the driver, read where it runs (a node reads its own install)."""
    return {"harness": harness.__version__}


@functools.cache
def _backend(name: str) -> Backend:
    """One engine connection per Ray worker process and backend, made on its first phase (or warm-up)."""
    return create_backend(name)


def _node_host(backend_name: str) -> dict[str, Any]:
    """This node's host facts and its engine's; an engine that does not answer now gives the
    machine's facts alone (the phase's own result says what failed), and is asked again next time."""
    try:
        return _measured_host(backend_name)
    except Exception:  # noqa: BLE001 - the engine is gone (a restart, a lost socket): never lose the phase's result to it
        return host_info("")


@functools.cache
def _measured_host(backend_name: str) -> dict[str, Any]:
    """Measured once per worker process."""
    return _backend(backend_name).host_facts()


def _node_name() -> str:
    return f"{socket.gethostname()}/{ray.get_runtime_context().get_node_id()[:12]}"


def version_mismatch(node: str, found: dict[str, str], expected: dict[str, str]) -> str | None:
    """What differs between a node's versions and the driver's, in words; None when they agree."""
    differ = [f"{name} {found.get(name, 'none')} (the driver has {want})" for name, want in expected.items() if found.get(name) != want]
    return f"node {node} runs {', '.join(differ)}" if differ else None


@ray.remote(max_retries=0)
def _run_phase(spec: PhaseSpec, staging: Staging | None, backend_name: str, versions: Versions, expected: dict[str, str]) -> PhaseResult:
    node_id = ray.get_runtime_context().get_node_id()
    problem = version_mismatch(_node_name(), versions(), expected)
    if problem:
        result = infra_result(spec, f"{problem}; install the driver's release there")
        result.node = _node_name()
        return result
    spec = dataclasses.replace(with_ray_gpus(spec), labels={**spec.labels, NODE_LABEL: node_id})
    backend = _backend(backend_name)
    host = _node_host(backend_name)  # before the phase: an engine that goes away during it must not cost its result
    try:
        ran = spec if staging is None else staging.prepare(spec, node_id, backend)
        result = backend.run(ran)
        if staging is not None:
            staging.bring_back(spec, ran, result, node_id)
    except StagingError as exc:
        result = infra_result(spec, f"node {node_id[:12]} {exc}")
    result.node = _node_name()
    result.host = host
    return result


@ray.remote(num_cpus=0, max_retries=0)
def _warm_up(backend_name: str, versions: Versions, expected: dict[str, str], staging: Staging | None) -> str | None:
    """Connect this worker to its engine and stage the data on its node, unless the node runs another
    release (then say so)."""
    problem = version_mismatch(_node_name(), versions(), expected)
    if problem is None:
        _backend(backend_name)
        if staging is not None:
            _stage_data_early(staging)
    return problem


def _stage_data_early(staging: Staging) -> None:
    """The data this node's phases mount, staged now rather than in its first phase (a second on a
    small cluster, out of each node's first container); a failure is left to that phase, which
    stages it again and reports what went wrong."""
    node_id = ray.get_runtime_context().get_node_id()
    if staging.data is None or node_id == staging.home_node:
        return
    node_dir = staging.node_dir(node_id)
    with contextlib.suppress(Exception):  # the phase's own staging says what failed
        node_dir.mkdir(parents=True, exist_ok=True)
        stage_data(staging.data, staging.depot, node_dir)


def with_ray_gpus(spec: PhaseSpec) -> PhaseSpec:
    """Inside a Ray task: the spec with the GPU ids Ray assigned it (Ray maps them through CUDA_VISIBLE_DEVICES),
    in order: Ray keeps them in a set, and the record, the device request and a retry should not depend on its order."""
    if not spec.limits.gpus:
        return spec
    ids = ray.get_runtime_context().get_accelerator_ids().get("GPU", [])
    return dataclasses.replace(spec, gpu_ids=tuple(sorted(ids, key=_gpu_order)))


def _gpu_order(gpu_id: str) -> tuple[int, int, str]:
    """Indices by number ("2" before "10"), then UUIDs (GPU-…, MIG-…) by name."""
    return (0, int(gpu_id), "") if gpu_id.isdigit() else (1, 0, gpu_id)


# Ray's log monitor looks for new log files in the session every 0.1 s, to forward workers' output to
# drivers; ours take none (log_to_driver=False), so every 5 s will do: its CPU when idle fell from 0.37 to 0.10
# CPU-s per 30 s here, of 1.9 for the whole idle local cluster.
QUIET_LOG_MONITOR = {"RAY_LOG_MONITOR_MANY_FILES_THRESHOLD": "0", "LOG_NAME_UPDATE_INTERVAL_S": "5"}


class RayUnavailable(HarnessError):
    """The Ray cluster of ``runner.address`` cannot be joined; the message says what is missing."""


def connect_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    """Join the Ray cluster at ``address`` ("auto", "host:port"), or start a local one (None); once per process.

    A cluster with token authentication (``ray start --head`` turns it on where a token exists) is
    joined as Ray documents it: the cluster's token in ``RAY_AUTH_TOKEN``, ``RAY_AUTH_TOKEN_PATH`` or
    ``~/.ray/auth_token``, and ``RAY_AUTH_MODE=token``, which is set here, as ``ray start`` does, when
    it is unset and a token is there. ``RayUnavailable`` when the cluster refuses this driver or does
    not answer: Ray's own complaints while it retries are kept off the terminal and read for the cause.
    Ray Client (``ray://``) is refused: the driver must be a node of the cluster."""
    if address is not None and address.startswith("ray://"):
        raise RayUnavailable(
            f"runner.address={address}: Ray Client is not supported, the driver must run on a node of the cluster; "
            "run `harness round` there with runner.address=auto, or send it there with `ray job submit -- harness round ...`"
        )
    if ray.is_initialized():
        return
    options: dict[str, Any] = {"logging_level": logging.ERROR, "log_to_driver": False}
    if address is None:  # "local": never join a cluster some other process left running here
        options.update(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False, object_store_memory=128 * 1024**2)
        # No dashboard reads a local cluster's metrics, and the driver keeps a series per task name (each
        # phase's task is named after its submission): about 7 KiB per phase for as long as the round runs.
        with _environment(QUIET_LOG_MONITOR):
            ray.init(address="local", _system_config={"enable_metrics_collection": False}, **options)
        return
    _enable_token_auth(address)
    with tempfile.TemporaryFile() as said:
        try:
            with _stderr_to(said):
                ray.init(address=address, **options)
        except ConnectionError as exc:
            ray.shutdown()
            said.seek(0)
            if AUTH_REFUSED in said.read().decode(errors="replace"):
                raise RayUnavailable(f"the Ray cluster at {address} refused this driver: {_token_problem()}") from None
            raise RayUnavailable(f"cannot join the Ray cluster at {address} (runner.address): {str(exc).strip()}") from None
        said.seek(0)
        sys.stderr.write(said.read().decode(errors="replace"))  # joined: what Ray said on the way is the user's to see


def _enable_token_auth(address: str) -> None:
    """Turn on token authentication where a token is there, as ``ray start`` does, through Ray's own
    (private) module. Where this Ray has no such module and a token is offered, the driver cannot
    present it: that is said and refused, never joined without authentication."""
    try:
        from ray._private.authentication.authentication_token_setup import maybe_enable_token_auth_if_token_available
    except ImportError as exc:
        offered = _offered_tokens()
        if offered or os.environ.get("RAY_AUTH_MODE", "").lower() == "token":
            raise RayUnavailable(
                f"cannot join the Ray cluster at {address} with token authentication: this Ray ({ray.__version__}) has no "
                f"ray._private.authentication module ({exc}), so the token in {' and '.join(offered) or 'RAY_AUTH_MODE=token'} "
                "would not be presented; install the Ray release scripts/requirements.lock pins"
            ) from None
        return
    maybe_enable_token_auth_if_token_available(warn_if_disabled=False)


@contextlib.contextmanager
def _environment(variables: dict[str, str]) -> Iterator[None]:
    """``variables`` in this process's environment (where unset) for a while: what the processes it starts inherit."""
    added = {name: value for name, value in variables.items() if name not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for name in added:
            os.environ.pop(name, None)


@contextlib.contextmanager
def _stderr_to(file: Any) -> Iterator[None]:
    """Point this process's stderr (the file descriptor: Ray's C++ core writes there) at ``file`` for a while."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        os.dup2(file.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def _offered_tokens() -> list[str]:
    """Where this driver has a Ray token: the variables Ray reads, else the file it falls back to."""
    offered = [name for name in ("RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH") if os.environ.get(name)]
    if not offered and (Path.home() / ".ray" / "auth_token").is_file():
        offered = ["~/.ray/auth_token"]
    return offered


def _token_problem() -> str:
    """Which token this driver offered, and where the cluster's goes."""
    where = (
        "give this driver the cluster's token (on the head node: `ray get-auth-token`) in RAY_AUTH_TOKEN "
        "or ~/.ray/auth_token, and RAY_AUTH_MODE=token"
    )
    offered = _offered_tokens()
    if not offered:
        return f"it wants an authentication token and this driver has none; {where}"
    if os.environ.get("RAY_AUTH_MODE", "").lower() != "token":
        return f"this driver has a token ({' and '.join(offered)}) but RAY_AUTH_MODE is {os.environ.get('RAY_AUTH_MODE')!r}; set RAY_AUTH_MODE=token"
    return f"the token in {' and '.join(offered)} is not the cluster's; {where}"


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
        versions: Versions = harness_versions,
        spread: bool = False,
    ) -> None:
        connect_ray(address, num_cpus)
        # A module-level function, so that a node runs its own install of it; the driver's answer is the rule.
        self.versions = versions
        self.expected = versions()
        self.max_parallel = max_parallel
        self.staging = staging
        self.backend = backend  # the ``runner.backend`` each worker runs its phases with
        self.smoke_slots = smoke_slots
        self.spread = spread  # Ray's SPREAD strategy for phases not tied to a node: repeats land on different nodes
        # The smoke lane first, then the full one.
        self._lanes: tuple[FairQueue[tuple[Hashable, PhaseSpec]], ...] = (FairQueue(), FairQueue())
        self._running: dict[ray.ObjectRef, tuple[Hashable, PhaseSpec, str, bool]] = {}  # (key, spec, group, full)
        self._running_full = 0
        self._per_group: Counter[str] = Counter()
        self._refused: list[tuple[Hashable, PhaseResult]] = []
        self._nodes: list[dict[str, float]] = []
        self._nodes_at = float("-inf")
        # a model directory of the driver's -> the node that keeps it, and the depot's name for its archive ("": none)
        self._models: dict[str, tuple[str, str]] = {}

    @property
    def busy(self) -> bool:
        return bool(any(self._lanes) or self._running or self._refused)

    def running_keys(self) -> list[Hashable]:
        return [key for key, *_ in self._running.values()]

    def warm_up(self) -> None:
        """Start a worker per CPU of each node, connect it to its engine and stage the data there, so
        that start-up is not charged to the first phases; ``NodeVersionMismatch`` when a node runs
        another release."""
        refs = []
        for node in ray.nodes():
            if node["Alive"]:
                on_node = _warm_up.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False))
                refs += [
                    on_node.remote(self.backend, self.versions, self.expected, self.staging)
                    for _ in range(max(1, int(node["Resources"].get("CPU", 0))))
                ]
        said: set[str] = set()
        for ref in refs:
            with contextlib.suppress(ray.exceptions.NodeDiedError, ray.exceptions.TaskUnschedulableError):  # a node gone meanwhile
                said.add(ray.get(ref) or "")
        problems = sorted(said - {""})
        if problems:
            raise NodeVersionMismatch(f"{'; '.join(problems)}: install the same harness release on every node, or stop those nodes")

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
            smoke_in_sight = bool(self._lanes[0]) or self._running_full < len(self._running)
            while (group := queue.next_group(self._per_group)) is not None:
                key, spec = queue.head(group)
                capacity = self._capacity(spec)
                if capacity == 0:
                    queue.pop(group)
                    self._refused.append((key, infra_result(spec, f"no live node of the Ray cluster can hold it ({_demand_text(spec)})")))
                    continue
                room = capacity if self.max_parallel is None else min(self.max_parallel, capacity)
                kept_for_smoke = min(self.smoke_slots, room - 1) if smoke_in_sight else 0
                if full and self._running_full >= room - kept_for_smoke:
                    break
                if len(self._running) >= room:
                    break
                queue.pop(group)
                name = f"{'' if full else 'smoke-'}{spec.phase}:{spec.labels.get('harness.submission', spec.run_id)}"
                spec, placement = self._placement(spec)
                on_cluster = _run_phase.options(name=name, **resource_demand(spec), **placement)
                ref = on_cluster.remote(spec, self.staging, self.backend, self.versions, self.expected)
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
            if not self._per_group[group]:
                del self._per_group[group]  # a round of thousands of teams keeps none of them here
            self._running_full -= full
            result = self._collect(ref, spec)
            model = next((m.source for m in spec.mounts if m.target == "/model"), None)
            if result.model_node:
                self._models[model] = (result.model_node, result.model_archive)
            elif spec.phase == "infer":
                self._models.pop(model, None)  # its infer ran: a failed one starts the evaluation again, with a new train
            if self.staging is not None:
                self.staging.receive(spec, result)
            finished.append((key, result))
        return finished

    def _placement(self, spec: PhaseSpec) -> tuple[PhaseSpec, dict[str, Any]]:
        """An infer runs on the node that keeps its model. When the model's archive reached the depot,
        the infer runs elsewhere if that node is gone (the node there unpacks the archive); otherwise
        Ray fails the task: an infrastructure error, and the evaluation starts again."""
        kept = next(
            (self._models[m.source] for m in spec.mounts if m.target == "/model" and m.read_only and m.source in self._models), None
        )
        if kept is None:
            return spec, {"scheduling_strategy": "SPREAD"} if self.spread else {}
        node, archive = kept
        if archive:
            spec = dataclasses.replace(spec, model_from=archive)
        # soft: only when the node is gone (or cannot ever hold it); a busy node is waited for
        return spec, {"scheduling_strategy": NodeAffinitySchedulingStrategy(node, soft=bool(archive))}

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
