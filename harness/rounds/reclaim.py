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

A directory is renamed aside (``.gc-*``) before it is deleted, so a stop midway never leaves half
a model where a model is looked for; leftovers are listed (``interrupted``) and freed next time.
Not freed here: the registry's blobs, node caches on other machines, the depot's data archives.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from harness.competition.core import Competition
from harness.records.model_store import ModelStore
from harness.results import Results
from harness.rounds.journal import take_driver_lock
from harness.rounds.retention import Retention, retention
from harness.runner.backend import Backend, EngineError
from harness.submissions.ledger import Ledger
from harness.util.archives import archive_path
from harness.util.errors import HarnessError, first_line
from harness.util.sizes import format_size

RUN_MODEL, DEPOT_MODEL, DEPOT_IMAGE, IMAGE, INTERRUPTED = "run-model", "depot-model", "depot-image", "image", "interrupted"
ASIDE = ".gc-"


@dataclass(frozen=True)
class Item:
    kind: str
    what: str  # a path, or an image reference
    bytes: int
    why: str


def collect(competition: Competition, backend: Backend | None, *, apply: bool) -> tuple[list[Item], list[str]]:
    """Under the driver lock (never beside a round): the reclaimable items (those freed, when
    ``apply``), and why each item that could not be freed was not."""
    with closing(take_driver_lock(competition.paths.root / "rounds")):
        items = reclaimable(competition, backend)
        return free(items, backend) if apply else (items, [])


def after_round(competition: Competition, backend: Backend, out: TextIO) -> None:
    """The service's gc between rounds (``retention.between_rounds``): free, say what in one line,
    and never stop the loop (a failure is said and tried again after the next round)."""
    if not competition.settings.competition.rules.gc_between_rounds:
        return
    try:
        freed, failed = collect(competition, backend, apply=True)
    except Exception as exc:  # noqa: BLE001 - a gc that fails must not stop the rounds
        why = str(exc) if isinstance(exc, HarnessError) else first_line(exc)
        print(f"harness gc: not finished ({why}); the next gc finishes it", file=out, flush=True)
        return
    for why in failed:
        print(f"harness gc: not freed: {why}", file=out, flush=True)
    if freed:
        print(f"harness gc: freed {len(freed)} item(s), {format_size(sum(i.bytes for i in freed))}", file=out, flush=True)


def reclaimable(competition: Competition, backend: Backend | None, store: ModelStore | None = None) -> list[Item]:
    """Everything the policy lets gc free now."""
    ledger = Ledger.of(competition)
    records = Results(competition, ledger).records()
    policy = retention(competition, ledger, records)
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
        items += _images(backend, policy)
    return items


def free(items: list[Item], backend: Backend | None) -> tuple[list[Item], list[str]]:
    """Free each item (one already gone counts as freed): the items freed, and why any other was not."""
    freed, failed = [], []
    for item in items:
        try:
            if item.kind == IMAGE and backend is not None:
                backend.remove_image(item.what)
            elif item.kind in (DEPOT_MODEL, DEPOT_IMAGE):
                archive = Path(item.what)
                archive.unlink(missing_ok=True)  # the archive first: a lone sidecar makes the depot write it again
                archive.with_name(f"{archive.name}.sha256").unlink(missing_ok=True)
            else:
                _remove(Path(item.what))
        except (OSError, EngineError) as exc:  # an image a container still uses, a file in use
            failed.append(f"{item.what}: {first_line(exc)}")
            continue
        freed.append(item)
    return freed, failed


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
            yield from (Item(RUN_MODEL, str(p), _size(p), why) for p in present)


def _depot(competition: Competition, policy: Retention, in_store) -> Iterator[Item]:
    depot = competition.home / "depot"
    if not depot.is_dir():
        return
    kept_images = {_hex(s.image_digest) for s in policy.submissions if policy.keeps(s.id)}
    names = {p.name.removesuffix(".sha256") for p in depot.iterdir() if not p.name.startswith(".")}
    for name in sorted(names):
        archive = depot / name
        size = _size(archive) if archive.exists() else 0
        if name.startswith("model-") and name.endswith(".tar"):
            sha256 = name.removeprefix("model-").removesuffix(".tar")
            if len(sha256) == 64 and in_store(sha256):
                yield Item(DEPOT_MODEL, str(archive), size, f"the artifact store holds the model {sha256[:12]}")
        elif name.startswith("image-") and name.endswith(".tar"):
            digest = name.removeprefix("image-").removesuffix(".tar")
            if digest not in kept_images:
                yield Item(DEPOT_IMAGE, str(archive), size, f"no kept submission uses the image {digest[:12]}")


def _images(backend: Backend, policy: Retention) -> Iterator[Item]:
    kept = {s.image_digest for s in policy.submissions if policy.keeps(s.id)}
    seen = set()
    for submission in policy.submissions:
        reference = submission.image
        if policy.keeps(submission.id) or submission.image_digest in kept or reference in seen or not _pulled(reference, submission.team):
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
            yield Item(INTERRUPTED, str(aside), _size(aside), "left by a gc that stopped midway")


def _pulled(reference: str, team: str) -> bool:
    """A reference the service pulled from its registry: ``HOST/teams/<team>/REPO@sha256:...``."""
    name, _, digest = reference.partition("@sha256:")
    return bool(digest) and f"/teams/{team}/" in name


def _remove(path: Path) -> None:
    """Delete a file, or a directory once renamed aside (so nothing half-deleted keeps its name)."""
    if path.is_symlink() or path.is_file():
        path.unlink(missing_ok=True)
        return
    if not path.exists():
        return
    aside = path if path.name.startswith(ASIDE) else path.with_name(f"{ASIDE}{path.name}-{secrets.token_hex(4)}")
    if aside != path:
        os.rename(path, aside)
    shutil.rmtree(aside)


def _size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (each file once, however many links name it)."""
    if path.is_symlink() or not path.is_dir():
        return path.lstat().st_size if path.is_file() and not path.is_symlink() else 0
    seen, total = set(), 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            stat = os.lstat(os.path.join(root, name))
            if (stat.st_dev, stat.st_ino) not in seen and not os.path.islink(os.path.join(root, name)):
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
    return total


def _hex(digest: str) -> str:
    return digest.removeprefix("sha256:")
