"""``harness gc``: what the head may free under the retention policy (``rounds.retention``), and freeing it.

Reclaimable, each found again from scratch on every run (so a gc that stopped midway is finished by
the next one):
- ``run-model``: the model directory and the model archive (``model.tar``) in the run directory of
  an evaluation of a submission the policy does not keep, once its record is on disk and the
  artifact store holds its model (``audit`` and ``reinfer`` restore it from there). The run's logs,
  predictions and telemetry stay (bounded; the logs endpoint and ``rescore`` read them).
- ``depot-model``: a model archive the depot received from a node (``depot/model-<hash>.tar``)
  whose model the store holds; a round only needs it while it runs, and gc holds the driver lock.
- ``depot-image``: the depot's ``docker save`` archive of an image no kept submission uses.
- ``image``: the reference the service pulled from its registry for a submission
  (``HOST/teams/<team>/...@sha256:...``) on this engine, when no kept submission uses that image.
  Only the reference is removed: an image the organizer also tagged stays, and images a submission
  named on the engine itself (``harness submit --image``) are the organizer's, never touched.

- ``registry-manifest``: a manifest in the service's registry (``REPOSITORY@sha256:...``) that only
  submissions the policy does not keep name and no tag names any more (a tagged image is the team's:
  its registry budget counts it and it may submit it again), deleted through the registry's API; its blobs (the
  bytes given: those no staying manifest references) go at the registry's garbage-collect, which
  ``harness serve`` runs at each start and ``--registry`` (the service stopped) runs here
  (``registry-blobs``: the bytes it freed).
- on every other live node of the Ray cluster (``runner.node_gc``): its run directories, untagged
  images and stale staged data of submissions the policy does not keep, reported per node.

A directory is renamed aside (``.gc-*``) before it is deleted, so a stop midway never leaves half
a model where a model is looked for; leftovers are listed (``interrupted``) and freed next time.
- ``registry-manifest`` too: a manifest in a team's namespace that no submission names and no tag
  names any more (a later push took its tag), once ``retention.untagged_after_h`` old. The registry
  budget counts tagged images only, so without this a team pushing to one tag again and again
  would fill the organizer's disk.
Not freed here: the depot's data archives.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import closing, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TextIO

import ray
import yaml

from harness.competition.core import Competition
from harness.competition.paths import ServicePaths
from harness.competition.smoke import smoke_stage
from harness.records.model_store import ModelStore
from harness.registry import IssuerKey, RegistryClient, RegistryServer, RegistryUnavailable, registry_binary
from harness.registry.storage import has_manifest, manifests, pushed_at, tagged, unique_bytes
from harness.results import Results
from harness.rounds.distribution import DEFAULT_NODE_CACHE, data_stage
from harness.rounds.journal import take_driver_lock
from harness.rounds.retention import Retention, retention
from harness.runner.backend import Backend, EngineError
from harness.runner.node_gc import NodePlan, NodeReport, engine_identity, reach_nodes
from harness.runner.ray_pool import RayUnavailable, connect_ray
from harness.submissions.ledger import Ledger
from harness.submissions.teams import Teams
from harness.util.archives import archive_path
from harness.util.errors import HarnessError, first_line
from harness.util.files import remove_aside, tree_bytes
from harness.util.sizes import format_size

RUN_MODEL, DEPOT_MODEL, DEPOT_IMAGE, IMAGE, INTERRUPTED = "run-model", "depot-model", "depot-image", "image", "interrupted"
REGISTRY_MANIFEST, REGISTRY_BLOBS = "registry-manifest", "registry-blobs"
ASIDE = ".gc-"


@dataclass(frozen=True)
class Item:
    kind: str
    what: str  # a path, or an image reference
    bytes: int
    why: str


@dataclass
class Collected:
    """What a gc found (or freed, when applied): the head's and the registry's items, why any was
    not freed, and each other node's report (``runner.node_gc``)."""

    items: list[Item] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    nodes: list[NodeReport] = field(default_factory=list)

    @property
    def bytes(self) -> int:
        return sum(item.bytes for item in self.items) + sum(node.bytes for node in self.nodes)

    @property
    def count(self) -> int:
        return len(self.items) + sum(len(node.items) for node in self.nodes)


def collect(competition: Competition, backend: Backend | None, *, apply: bool, nodes: bool = True, registry: bool = False) -> Collected:
    """Under the driver lock (never beside a round): what the policy lets go on the head, in the
    registry and (``nodes``) on each other node of the Ray cluster, freed when ``apply``. With
    ``registry`` and ``apply`` the registry must be stopped (the service too): gc starts it alone to
    delete manifests, then runs its garbage-collect, which frees their blobs."""
    with closing(take_driver_lock(competition.paths.root / "rounds")):
        state = _State.of(competition)
        items = reclaimable(competition, backend, state=state)
        offline = _offline_registry(competition) if registry and apply else None
        reports = _reach(competition, state, backend, apply=apply) if nodes else []
        if not apply:
            return Collected(items, [], reports)
        if offline is None:
            return Collected(*free(items, backend, _registry_client(competition)), reports)
        with offline:
            freed, failed = free(items, backend, RegistryClient(offline.address, offline.key))
        stored = ServicePaths.of(competition.name, competition.home).registry
        blobs = offline.collect_garbage()
        freed.append(Item(REGISTRY_BLOBS, str(stored), blobs, "blobs no manifest references (the registry's garbage-collect)"))
        return Collected(freed, failed, reports)


def after_round(competition: Competition, backend: Backend, out: TextIO) -> None:
    """The service's gc between rounds (``retention.between_rounds``): free, say what in one line,
    and never stop the loop (a failure is said and tried again after the next round). The nodes of
    the cluster the evaluator joined are reached too; the registry's manifests are deleted through
    the running registry, their blobs at the service's next start."""
    if not competition.settings.competition.rules.gc_between_rounds:
        return
    try:
        done = collect(competition, backend, apply=True)
    except Exception as exc:  # noqa: BLE001 - a gc that fails must not stop the rounds
        why = str(exc) if isinstance(exc, HarnessError) else first_line(exc)
        print(f"harness gc: not finished ({why}); the next gc finishes it", file=out, flush=True)
        return
    for why in done.failed + [f"node {n.node[:12]}: {why}" for n in done.nodes for why in n.not_freed]:
        print(f"harness gc: not freed: {why}", file=out, flush=True)
    for node in done.nodes:
        if node.error:
            print(f"harness gc: node {node.node[:12]} ({node.address}) {node.error}", file=out, flush=True)
    if done.count:
        print(f"harness gc: freed {done.count} item(s), {format_size(done.bytes)}", file=out, flush=True)


@dataclass
class _State:
    """The ledger's submissions under the policy, the latest records, the teams' registry namespaces."""

    policy: Retention
    records: list[dict]
    namespaces: dict[str, str]  # team name -> its namespace in the service's registry

    @classmethod
    def of(cls, competition: Competition) -> _State:
        ledger = Ledger.of(competition)
        records = Results(competition, ledger).records()
        namespaces = {team.name: team.namespace for team in Teams(competition.home, competition.name).all()}
        return cls(retention(competition, ledger, records), records, namespaces)


def reclaimable(
    competition: Competition, backend: Backend | None, store: ModelStore | None = None, *, state: _State | None = None
) -> list[Item]:
    """Everything the policy lets gc free now on the head and in the registry's storage."""
    state = state or _State.of(competition)
    policy, records = state.policy, state.records
    store = store or ModelStore.for_competition(competition)
    held: dict[str, bool] = {}

    def in_store(sha256: str) -> bool:
        if sha256 not in held:
            held[sha256] = store.has(sha256)
        return held[sha256]

    items = list(_interrupted(competition))
    items += _run_models(competition, policy, records, in_store)
    items += _depot(competition, policy, in_store)
    if backend is not None:
        items += _images(backend, policy, state.namespaces)
    storage = ServicePaths.of(competition.name, competition.home).registry
    items += _manifests(storage, policy, state.namespaces, competition.settings.competition.rules.untagged_after_s)
    return items


def free(items: list[Item], backend: Backend | None, registry: RegistryClient | None = None) -> tuple[list[Item], list[str]]:
    """Free each item (one already gone counts as freed): the items freed, and why any other was not."""
    freed, failed = [], []
    for item in items:
        try:
            if item.kind == IMAGE and backend is not None:
                backend.remove_image(item.what)
            elif item.kind == REGISTRY_MANIFEST:
                if registry is None:
                    raise HarnessError("no registry of the service's runs here (no issuer key)")
                registry.delete_manifest(*item.what.split("@", 1))
            elif item.kind in (DEPOT_MODEL, DEPOT_IMAGE):
                archive = Path(item.what)
                archive.unlink(missing_ok=True)  # the archive first: a lone sidecar makes the depot write it again
                archive.with_name(f"{archive.name}.sha256").unlink(missing_ok=True)
            else:
                remove_aside(Path(item.what), ASIDE)
        except RegistryUnavailable as exc:
            failed.append(f"{item.what}: {exc}; with the service stopped, `harness gc --registry --apply` deletes it")
            continue
        except (OSError, EngineError, HarnessError) as exc:  # an image a container still uses, a file in use
            failed.append(f"{item.what}: {first_line(exc)}")
            continue
        freed.append(item)
    return freed, failed


def node_plan(competition: Competition, state: _State, backend: Backend | None) -> NodePlan:
    """What each node may free: the run directories of finished evaluations and the images of the
    submissions the policy does not keep, and data staged for other data than today's."""
    policy = state.policy
    kept_images = {s.image_digest for s in policy.submissions if policy.keeps(s.id)}
    runs = {
        r["evaluation_id"]: f"{r['submission']['id']} is not kept; its record is written"
        for r in state.records
        if not policy.keeps(r["submission"]["id"])
    }
    images = {
        s.image_digest: f"the image of {s.id} ({s.state}), which is not kept"
        for s in policy.submissions
        if not policy.keeps(s.id) and s.image_digest not in kept_images
    }
    try:
        data = f"data-{data_stage(competition, smoke_stage(competition)).sha256[:16]}"  # as a round stages it (rounds.plan)
    except (OSError, HarnessError):
        data = None  # the data cannot be read here now: leave every staged copy
    try:
        engine = engine_identity(backend.engine_info()) if backend is not None else ""
    except (EngineError, OSError):
        engine = ""
    cache = competition.settings.runner.node_cache or str(DEFAULT_NODE_CACHE)
    return NodePlan(str(cache), runs, images, data, engine)


def nodes_as_json(reports: list[NodeReport]) -> list[dict[str, Any]]:
    return [
        {
            "node": r.node,
            "address": r.address,
            "items": [asdict(i) for i in r.items],
            "bytes": r.bytes,
            "not_freed": r.not_freed,
            "error": r.error,
        }
        for r in reports
    ]


def _reach(competition: Competition, state: _State, backend: Backend | None, *, apply: bool) -> list[NodeReport]:
    """The other nodes' reports, when Ray runs here already or ``runner.address`` names a cluster
    (joined now); a cluster that cannot be joined is one report, never a failure of the head's gc."""
    address = competition.settings.runner.address
    if not ray.is_initialized():
        if not address:
            return []
        try:
            connect_ray(address)
        except RayUnavailable as exc:
            return [NodeReport("cluster", str(address), error=f"not reached: {exc}")]
    return reach_nodes(node_plan(competition, state, backend), apply=apply)


def _registry_client(competition: Competition) -> RegistryClient | None:
    """A client of the service's registry (where its configuration says it listens), when the service ran here."""
    paths = ServicePaths.of(competition.name, competition.home)
    if not (paths.registry_auth / "key.pem").is_file():
        return None
    settings = competition.settings.service
    address = f"{settings.registry_host}:{settings.registry_port}"
    with suppress(OSError, ValueError, AttributeError, TypeError, yaml.YAMLError):
        address = yaml.safe_load((paths.root / "registry.yml").read_text(encoding="utf-8"))["http"]["addr"] or address
    return RegistryClient(address, IssuerKey.load_or_create(paths.registry_auth))


def _offline_registry(competition: Competition) -> RegistryServer:
    """The service's registry, to be started by gc alone on a free loopback port (the service stopped)."""
    paths = ServicePaths.of(competition.name, competition.home)
    if not paths.registry.is_dir():
        raise HarnessError(f"{competition.name} has no registry storage ({paths.registry}); --registry frees nothing here")
    server = RegistryServer(
        paths.root, realm="http://127.0.0.1:9/unused", key=IssuerKey.load_or_create(paths.registry_auth), port=_free_port()
    )
    try:
        server.pidfile.end_stale([registry_binary(), "serve", str(server.config_path)])
    except HarnessError as exc:
        raise HarnessError(
            f"--registry needs the registry stopped: {exc} (harness serve runs the registry's garbage-collect at each start)"
        ) from None
    return server


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _manifests(storage: Path, policy: Retention, namespaces: dict[str, str], untagged_after_s: float) -> Iterator[Item]:
    """The registry's manifests gc deletes (``_unkept``, then ``_untagged``), each with the bytes of
    its blobs that no staying manifest references, sized together so a blob two of them share is counted once."""
    if not storage.is_dir():
        return
    tags: dict[str, set[str]] = {}  # each repository's tags, read once for both
    leaving = _unkept(storage, policy, namespaces, tags) | _untagged(storage, policy, untagged_after_s, tags)
    sizes = unique_bytes(storage, set(leaving))
    for key, why in leaving.items():
        yield Item(REGISTRY_MANIFEST, f"{key[0]}@{key[1]}", sizes.get(key, 0), why)


def _unkept(storage: Path, policy: Retention, namespaces: dict[str, str], tags: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """The manifests that only submissions the policy does not keep name, and no tag; why each goes."""
    kept = {_manifest_of(s.image) for s in policy.submissions if policy.keeps(s.id)}
    leaving: dict[tuple[str, str], str] = {}
    for submission in policy.submissions:
        key = _manifest_of(submission.image) if _pulled(submission.image, submission.team, namespaces) else None
        if key is None or key in kept or key in leaving or policy.keeps(submission.id) or not has_manifest(storage, *key):
            continue
        if _is_tagged(storage, key, tags):
            continue  # the team's still, under a tag (its registry budget counts it), and it may submit it again
        leaving[key] = (
            f"pushed for {submission.id} ({submission.state}), which is not kept, and no tag names it now; "
            "its blobs go at the registry's next garbage-collect"
        )
    return leaving


def _untagged(storage: Path, policy: Retention, after_s: float, tags: dict[str, set[str]]) -> dict[tuple[str, str], str]:
    """The manifests under ``teams/`` (every team's namespace) that no submission names and no tag
    names, ``after_s`` old; what the organizer keeps elsewhere in the registry is never touched."""
    named = {_manifest_of(s.image) for s in policy.submissions}
    now = time.time()
    why = (
        "pushed, never submitted, and no tag names it now (a later push took its tag); its blobs go at the registry's next garbage-collect"
    )
    leaving = {}
    for repository, digest in sorted(manifests(storage)):
        if not repository.startswith("teams/") or (repository, digest) in named or _is_tagged(storage, (repository, digest), tags):
            continue
        pushed = pushed_at(storage, repository, digest)
        if pushed is not None and now - pushed >= after_s:
            leaving[(repository, digest)] = why
    return leaving


def _is_tagged(storage: Path, key: tuple[str, str], tags: dict[str, set[str]]) -> bool:
    """Whether a tag of the manifest's repository names it; ``tags`` keeps each repository's tags once read."""
    repository, digest = key
    if repository not in tags:
        tags[repository] = tagged(storage, repository)
    return digest in tags[repository]


def _manifest_of(reference: str) -> tuple[str, str] | None:
    """``(repository, digest)`` of ``HOST/REPOSITORY@sha256:...``."""
    name, _, digest = reference.partition("@")
    return (name.split("/", 1)[1], digest) if "/" in name and digest else None


def as_json(items: list[Item]) -> dict[str, Any]:
    return {"items": [asdict(item) for item in items], "bytes": sum(item.bytes for item in items)}


def _run_models(competition: Competition, policy: Retention, records: list[dict], in_store) -> Iterator[Item]:
    for record in records:
        submission = record["submission"]["id"]
        sha256 = (record.get("manifest") or {}).get("model_sha256")
        if policy.keeps(submission) or not sha256:
            continue
        model = competition.paths.run(record["evaluation_id"]).model
        present = [p for p in (model, archive_path(model)) if p.exists() or p.is_symlink()]
        if present and in_store(sha256):
            why = f"{submission} is not kept; the artifact store holds its model {sha256[:12]}"
            yield from (Item(RUN_MODEL, str(p), tree_bytes(p), why) for p in present)


def _depot(competition: Competition, policy: Retention, in_store) -> Iterator[Item]:
    depot = competition.home / "depot"
    if not depot.is_dir():
        return
    kept_images = {_hex(s.image_digest) for s in policy.submissions if policy.keeps(s.id)}
    names = {p.name.removesuffix(".sha256") for p in depot.iterdir() if not p.name.startswith(".")}
    for name in sorted(names):
        archive = depot / name
        size = tree_bytes(archive) if archive.exists() else 0
        if name.startswith("model-") and name.endswith(".tar"):
            sha256 = name.removeprefix("model-").removesuffix(".tar")
            if len(sha256) == 64 and in_store(sha256):
                yield Item(DEPOT_MODEL, str(archive), size, f"the artifact store holds the model {sha256[:12]}")
        elif name.startswith("image-") and name.endswith(".tar"):
            digest = name.removeprefix("image-").removesuffix(".tar")
            if digest not in kept_images:
                yield Item(DEPOT_IMAGE, str(archive), size, f"no kept submission uses the image {digest[:12]}")


def _images(backend: Backend, policy: Retention, namespaces: dict[str, str]) -> Iterator[Item]:
    kept = {s.image_digest for s in policy.submissions if policy.keeps(s.id)}
    seen = set()
    for submission in policy.submissions:
        reference = submission.image
        if (
            policy.keeps(submission.id)
            or submission.image_digest in kept
            or reference in seen
            or not _pulled(reference, submission.team, namespaces)
        ):
            continue
        seen.add(reference)
        image = backend.image(reference)
        if image is None or image.id != submission.image_digest:
            continue  # gone, or the reference names another image now: not this submission's to free
        size = image.size_bytes if image.names <= {reference} else 0
        why = f"pulled for {submission.id} ({submission.state}), which is not kept"
        yield Item(IMAGE, reference, size, why if size else f"{why}; another name keeps the image itself")


def _interrupted(competition: Competition) -> Iterator[Item]:
    runs = competition.paths.runs
    if runs.is_dir():
        for aside in sorted(runs.glob(f"*/{ASIDE}*")):
            yield Item(INTERRUPTED, str(aside), tree_bytes(aside), "left by a gc that stopped midway")


def _pulled(reference: str, team: str, namespaces: dict[str, str]) -> bool:
    """A reference the service pulled from its registry: ``HOST/<the team's namespace>/REPO@sha256:...``
    (its namespace in the teams table, ``teams/<slug or id>``; ``teams/<team>`` for a team not there)."""
    name, _, digest = reference.partition("@sha256:")
    return bool(digest) and any(f"/{space}/" in name for space in (namespaces.get(team), f"teams/{team}") if space)


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")
