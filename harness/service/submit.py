"""A submission through the service: every check first (the quota, and what the registry tells
without a pull: the image's size as stored and unpacked, its platform and metadata), then the
pull, the pin and the ledger's row, so a refused (or interrupted) submit stores nothing: an image
refused after the pull is removed, and a crash leaves no half row (the ledger writes the row in
one transaction, last)."""

from __future__ import annotations

import re

from harness.registry import NotInRegistry, RegistryUnavailable, is_repository_name
from harness.runner import EngineError, image_problem
from harness.service.context import ServiceContext
from harness.service.control import WORKER
from harness.service.errors import ServiceError
from harness.submissions.intake import pin_image, platform_problem
from harness.submissions.ledger import Submission, validate_message
from harness.submissions.quota import QuotaExceeded
from harness.submissions.teams import Team
from harness.util.errors import HarnessError, IntakeError
from harness.util.pause import pause_point
from harness.util.sizes import format_size

DIGEST = re.compile(r"sha256:[0-9a-f]{64}")


def submit(ctx: ServiceContext, team: Team, image: str, digest: str, message: str) -> Submission:
    if ctx.paused("intake"):
        raise ServiceError(503, f"{ctx.name} takes no submissions right now (intake is paused by the organizer); try again later")
    repository = _repository(ctx, team, image)
    if not DIGEST.fullmatch(digest):
        raise ServiceError(422, f"digest {digest!r} is not sha256:<64 lowercase hex>; pass the digest the push printed")
    try:
        message = validate_message(message, ctx.settings.max_message_chars)
    except HarnessError as exc:
        raise ServiceError(422, str(exc)) from None
    if ctx.ledger.finalized_at() is not None:
        raise ServiceError(409, f"{ctx.name} was finalized at {ctx.ledger.finalized_at()} and takes no more submissions")
    try:
        manifest = ctx.registry.manifest(repository, digest)
    except NotInRegistry:
        raise ServiceError(404, f"{ctx.registry_public}/{repository}@{digest} is not in the registry; push it first") from None
    except RegistryUnavailable as exc:
        raise ServiceError(503, f"the registry cannot be read now ({exc}); try again later") from None
    rules = ctx.competition.settings.competition.rules
    try:
        phase, per_day = ctx.competition.intake()
    except HarnessError as exc:
        raise ServiceError(409, str(exc)) from None
    cap = rules.max_image_bytes
    if cap is not None and manifest.size_bytes > cap:
        raise ServiceError(413, f"the image is {format_size(manifest.size_bytes)}, over the competition's size cap of {format_size(cap)}")
    try:
        ctx.ledger.check_quota(team.name, per_day, competition_phase=phase)
    except QuotaExceeded as exc:
        raise ServiceError(429, str(exc)) from None
    _check_before_pull(ctx, repository, manifest, cap)
    pulled = f"{ctx.registry_address}/{repository}@{digest}"
    backend = ctx.backend()
    try:
        backend.pull_image(f"{ctx.registry_address}/{repository}", digest, {"username": WORKER, "password": ctx.worker_token})
    except EngineError as exc:
        raise ServiceError(503, f"the image could not be pulled from the registry ({exc}); try again later") from None
    try:
        pinned = pin_image(backend, pulled, max_bytes=cap)
        pause_point("submit.pinned")  # crash tests: killed here, the submit stores nothing
        added = ctx.ledger.add(
            team.name,
            f"{ctx.registry_public}/{repository}@{digest}",
            pinned.digest,
            per_day=per_day,
            message=message,
            competition_phase=phase,
        )
    except (IntakeError, QuotaExceeded, HarnessError) as exc:
        _remove(ctx, backend, pulled)  # what was refused leaves nothing on the head
        status = 422 if isinstance(exc, IntakeError) else 429 if isinstance(exc, QuotaExceeded) else 409  # 409: finalized meanwhile
        raise ServiceError(status, str(exc)) from None
    pause_point("submit.recorded")  # crash tests: killed here, the row is whole and charged once
    return added


def _check_before_pull(ctx: ServiceContext, repository: str, manifest, cap: int | None) -> None:
    """What the registry tells without a pull: the image's platform and metadata (intake's rules),
    and its size once unpacked (a small layer can unpack to many GB on the head)."""
    try:
        config = ctx.registry.image_config(repository, manifest)
        unpacked = ctx.registry.unpacked_size(repository, manifest, cap) if cap is not None else None
    except RegistryUnavailable as exc:
        raise ServiceError(503, f"the registry cannot be read now ({exc}); try again later") from None
    except HarnessError as exc:
        raise ServiceError(422, str(exc)) from None
    if problem := platform_problem(config.get("os", ""), config.get("architecture", "")) or image_problem(config.get("config")):
        raise ServiceError(422, f"the image {problem}")
    if unpacked is not None and unpacked > cap:
        raise ServiceError(413, f"the image unpacks to more than {format_size(cap)}, the competition's size cap; it was not pulled")


def _remove(ctx: ServiceContext, backend, reference: str) -> None:
    """Remove a refused image, unless a submission in the ledger names the same image (the same
    digest pushed again, refused for the quota, must not take the queued one's image away)."""
    try:
        image = backend.image(reference)
        if image is None or any(s.image_digest == image.id for s in ctx.ledger.all()):
            return
        backend.remove_image(reference)
    except EngineError:
        pass  # in use by a container, or gone meanwhile: nothing to do


def _repository(ctx: ServiceContext, team: Team, image: str) -> str:
    """The repository of ``image`` (a tag or digest after it set aside), when it is under the team's
    namespace in this registry; 403 otherwise."""
    prefix = f"{ctx.registry_public}/"
    repository = image[len(prefix) :] if image.startswith(prefix) else ""
    repository = repository.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    if not (repository.startswith(team.namespace + "/") and is_repository_name(repository)):
        raise ServiceError(403, f"{image!r} is not under your team's namespace; push to {prefix}{team.namespace}/NAME")
    return repository
