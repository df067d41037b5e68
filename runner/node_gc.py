"""``harness gc`` on the other nodes of a Ray cluster: each keeps, under ``<node cache>/<node>/``
(``runner.staging``), the run directories of the phases it ran (models, outputs, logs), its staged
copies of the data, and, on its own engine, the images it pulled or loaded from the depot; nothing
else ever removes them. The driver sends each live node a plan (``NodePlan``: what the retention
policy lets go) in a Ray task placed on that node; the node lists what of it is there, frees it
when told to, and answers with what it found (``NodeReport``). A node that does not answer in time
is reported, never fatal: its caches wait for the next gc.

On a node, only what the harness itself put there is freed: run directories of finished
evaluations of submissions the policy does not keep, data staged for another version of the data
than the current one, what a stopped staging left, and images of unkept submissions that carry no
tag (a pull by digest names an image only by its digest; the depot's archive loads it with no name):
an image an organizer tagged on that engine stays. A node on the driver's own engine leaves images
to the head's gc, which knows which of them the organizer named."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker
import docker.errors
import ray
import ray.exceptions
import requests.exceptions
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from harness.util.errors import first_line
from harness.util.files import remove_aside, tree_bytes

NODE_RUN, NODE_DATA, NODE_LEFTOVER, NODE_IMAGE = "node-run", "node-data", "node-leftover", "node-image"
ASIDE = ".gc-"
ANSWER_TIMEOUT_S = 120.0
LEFTOVERS = (".stage-", ".model-", ASIDE)  # a staging, a model's archive or a gc that stopped midway


@dataclass(frozen=True)
class NodePlan:
    """What the policy lets each node free: ``runs`` (evaluation id -> why), ``images`` (image id ->
    why), ``data`` (the current data stage's directory name: other ``data-*`` go; None: leave all)."""

    cache_dir: str
    runs: dict[str, str] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    data: str | None = None
    head_engine: str = ""  # the driver's ``engine_identity``: a node on that engine leaves images to the head


@dataclass(frozen=True)
class NodeItem:
    kind: str
    what: str  # a path on that node, or an image id on its engine
    bytes: int
    why: str


@dataclass
class NodeReport:
    """One node's answer: its items (those freed, when applied), why any was not freed, and what
    could not be looked at (``error``: the node or its engine did not answer)."""

    node: str
    address: str
    items: list[NodeItem] = field(default_factory=list)
    not_freed: list[str] = field(default_factory=list)
    error: str | None = None

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items)


def reach_nodes(plan: NodePlan, *, apply: bool, timeout_s: float | None = None) -> list[NodeReport]:
    """Every live node of the Ray cluster but the driver's own, in a task placed there, each given
    ``timeout_s`` (default ``ANSWER_TIMEOUT_S``) to answer; none when Ray is not running here."""
    if not ray.is_initialized():
        return []
    timeout_s = ANSWER_TIMEOUT_S if timeout_s is None else timeout_s
    here = ray.get_runtime_context().get_node_id()
    asked = []
    for node in ray.nodes():
        if node["Alive"] and node["NodeID"] != here:
            strategy = NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            report = NodeReport(node["NodeID"], node.get("NodeManagerAddress", ""))
            asked.append((report, _gc_on_node.options(scheduling_strategy=strategy).remote(plan, apply)))
    reports = []
    for report, ref in asked:
        try:
            reports.append(ray.get(ref, timeout=timeout_s))
        except ray.exceptions.GetTimeoutError:
            ray.cancel(ref, force=True)
            report.error = f"did not answer within {timeout_s:.0f} s; its caches wait for the next gc"
            reports.append(report)
        except ray.exceptions.RayError as exc:
            report.error = f"did not answer ({first_line(exc)}); its caches wait for the next gc"
            reports.append(report)
    return reports


@ray.remote(num_cpus=0, max_retries=0)
def _gc_on_node(plan: NodePlan, apply: bool) -> NodeReport:
    node = ray.get_runtime_context().get_node_id()
    return gc_node(plan, node, ray.util.get_node_ip_address(), apply=apply)


def gc_node(plan: NodePlan, node: str, address: str, *, apply: bool, client: docker.DockerClient | None = None) -> NodeReport:
    """On the node: what of ``plan`` is here, freed when ``apply``."""
    report = NodeReport(node, address)
    node_dir = Path(plan.cache_dir) / node[:16]
    found = list(_files(plan, node_dir)) if node_dir.is_dir() else []
    try:
        client = client or docker.from_env()
        if engine_identity(client.info()) != plan.head_engine:
            found += _images(plan, client)
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        report.error = f"its engine does not answer ({first_line(exc)}); its images wait for the next gc"
    if not apply:
        report.items = found
        return report
    for item in found:
        try:
            if item.kind == NODE_IMAGE:
                _remove_image(client, item.what)
            else:
                remove_aside(Path(item.what), ASIDE)
        except (OSError, docker.errors.APIError) as exc:  # an image a container uses, a file in use
            report.not_freed.append(f"{item.what}: {first_line(exc)}")
            continue
        report.items.append(item)
    return report


def engine_identity(info: Mapping[str, Any]) -> str:
    """Which engine answered ``info`` (``docker info``): its ID and data root (engines of one machine
    may share the ID, which Docker 20.10 derives from ``/etc/docker/key.json``)."""
    return f"{info.get('ID', '')} {info.get('DockerRootDir', '')}"


def _files(plan: NodePlan, node_dir: Path):
    runs = node_dir / "runs"
    if runs.is_dir():
        for run in sorted(runs.iterdir()):
            if run.name in plan.runs:
                yield NodeItem(NODE_RUN, str(run), tree_bytes(run), plan.runs[run.name])
            elif run.name.startswith(ASIDE):
                yield NodeItem(NODE_LEFTOVER, str(run), tree_bytes(run), "left by a gc that stopped midway")
    for entry in sorted(node_dir.iterdir()):
        if plan.data is not None and entry.name.startswith("data-") and entry.name != plan.data and entry.is_dir():
            yield NodeItem(NODE_DATA, str(entry), tree_bytes(entry), f"staged for other data than today's ({plan.data})")
        elif entry.name.startswith(LEFTOVERS):
            yield NodeItem(NODE_LEFTOVER, str(entry), tree_bytes(entry), "left by a staging or a gc that stopped midway")


def _images(plan: NodePlan, client: docker.DockerClient):
    for image_id, why in sorted(plan.images.items()):
        try:
            image = client.images.get(image_id)
        except docker.errors.ImageNotFound:
            continue
        if image.id != image_id or any(tag != "<none>:<none>" for tag in image.attrs.get("RepoTags") or []):
            continue  # a name given on this engine keeps it
        yield NodeItem(NODE_IMAGE, image_id, int(image.attrs.get("Size") or 0), why)


def _remove_image(client: docker.DockerClient, image_id: str) -> None:
    """Its references by digest, then the image (never forced: one a container uses stays)."""
    try:
        image = client.images.get(image_id)
    except docker.errors.ImageNotFound:
        return
    for reference in image.attrs.get("RepoDigests") or []:
        try:
            client.images.remove(reference, noprune=False)
        except docker.errors.ImageNotFound:
            pass
    try:
        client.images.remove(image_id, noprune=False)
    except docker.errors.ImageNotFound:
        pass
