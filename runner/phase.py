"""What the runner is asked to run (``PhaseSpec``) and what it reports back (``PhaseResult``)."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from typing import Any

from harness.limits import PhaseLimits, PhaseVerdict

# ``host[:port]/repository@sha256:<64 hex>``: a registry named by its host (a dot, a port or
# ``localhost``, as the engine tells a registry from a Docker Hub namespace), an image by manifest digest.
_REGISTRY_REFERENCE = re.compile(r"(?:[^/@]*[.:][^/@]*|localhost)/[^@]+@sha256:[0-9a-f]{64}")


def registry_reference(image: str) -> str | None:
    """``image`` when a node may pull it from a registry by manifest digest (as the service stores a
    pushed submission); None for a reference on the organizer's engine alone (``harness submit --image``)."""
    return image if _REGISTRY_REFERENCE.fullmatch(image) else None


@dataclass(frozen=True)
class Mount:
    source: str
    target: str
    read_only: bool = True


@dataclass(frozen=True)
class PhaseSpec:
    """One container run: a phase of one evaluation."""

    run_id: str
    phase: str
    image: str  # the pinned image id the container runs
    command: tuple[str, ...]
    mounts: tuple[Mount, ...]
    environment: dict[str, str]
    limits: PhaseLimits
    log_dir: str
    # Host directories the container may write to; their size is held to ``limits.disk``.
    writable: tuple[str, ...] = ()
    labels: dict[str, str] = field(default_factory=dict)
    runtime: str | None = None
    # The GPUs this run was assigned (Ray's ids, or local ones for ``harness check``): exactly these
    # are passed to the container. NVML indices or UUIDs.
    gpu_ids: tuple[str, ...] = ()
    # Where a node whose engine lacks ``image`` pulls it from (``registry_reference``); None: the
    # depot's archive is the only way (and stays the fallback when the pull fails).
    pull_from: str | None = None
    # Whether the driver keeps the model this train leaves (a full train's, not a smoke test's): a
    # node that shares no disk with the driver sends it back as an archive (``Staging.bring_back``).
    keep_model: bool = False
    # An infer whose model a node sent back: the depot's name for its archive. A node that lacks the
    # model (its train ran on a node now gone) unpacks it from there (``Staging.prepare``).
    model_from: str | None = None


@dataclass
class PhaseResult:
    phase: str
    verdict: PhaseVerdict
    message: str = ""
    exit_code: int | None = None
    wall_s: float = 0.0
    cpu_s: float = 0.0
    peak_memory_bytes: int = 0
    peak_pids: int = 0
    stdout_bytes: int = 0
    stderr_bytes: int = 0
    log_truncated: bool = False
    output_bytes: int = 0
    output_files: int = 0
    # Most bytes seen on /tmp (sampled while it ran); None where the container's root is not visible here.
    peak_tmp_bytes: int | None = None
    # Seconds between the wall-clock limit and the container's end, when it was killed for it.
    timeout_overshoot_s: float | None = None
    limits: dict[str, Any] = field(default_factory=dict)
    # The engine's refusal to start the container, where no rule says the image caused it (an
    # INFRA_ERROR): a round blames the image once the same refusal comes from healthy nodes twice.
    start_refused: str = ""
    node: str = ""
    # When the container started and ended (UTC, ISO 8601, as the engine says); None where it never started.
    started_at: str | None = None
    ended_at: str | None = None
    # The facts of the node that ran it, measured there (``host.host_info``); None off a Ray cluster.
    host: dict[str, Any] | None = None
    log_tail: str = ""
    gpu_ids: list[str] = field(default_factory=list)
    peak_gpu_memory_bytes: int | None = None  # None for a CPU phase
    peak_gpu_utilization: float | None = None  # percent, mean over the phase's GPUs
    # Telemetry series for MLflow, not the record: name -> [(unix time, value)].
    series: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    # A phase that ran on another node's disk (``Staging.bring_back``), not the record: the tree hash
    # of the model it left there (train), that node's Ray id and the depot's name for the model's
    # archive (a full train's), the files the driver keeps (its path -> bytes).
    model_sha256: str | None = None
    model_node: str = ""
    model_archive: str = ""
    returned: dict[str, bytes] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["verdict"] = self.verdict.value
        return data
