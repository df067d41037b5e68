"""A submission through the service: every check first, then the pull, the pin and the ledger's
row, so a refused (or interrupted) submit stores nothing and a crash leaves no half row (the
ledger writes the row in one transaction, last)."""

from __future__ import annotations

import re

import docker.errors

from harness.registry import NotInRegistry, RegistryClient, RegistryUnavailable, is_repository_name
from harness.service.context import SERVICE_NAME, ServiceContext
from harness.service.control import WORKER
from harness.service.errors import ServiceError
from harness.submissions.intake import pin_image
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
        manifest = RegistryClient(ctx.registry_address, ctx.key, SERVICE_NAME).manifest(repository, digest)
    except NotInRegistry:
        raise ServiceError(404, f"{ctx.registry_public}/{repository}@{digest} is not in the registry; push it first") from None
    except RegistryUnavailable as exc:
        raise ServiceError(503, f"the registry cannot be read now ({exc}); try again later") from None
    cap = ctx.competition.settings.competition.rules.max_image_bytes
    if cap is not None and manifest.size_bytes > cap:
        raise ServiceError(413, f"the image is {format_size(manifest.size_bytes)}, over the competition's size cap of {format_size(cap)}")
    pulled = f"{ctx.registry_address}/{repository}@{digest}"
    client = ctx.docker()
    try:
        client.api.pull(f"{ctx.registry_address}/{repository}", tag=digest, auth_config={"username": WORKER, "password": ctx.worker_token})
    except docker.errors.APIError as exc:
        raise ServiceError(503, f"the image could not be pulled from the registry ({exc.explanation or exc}); try again later") from None
    try:
        pinned = pin_image(client, pulled, max_bytes=cap)
    except IntakeError as exc:
        raise ServiceError(422, str(exc)) from None
    per_day = ctx.competition.settings.competition.rules.per_day
    pause_point("submit.pinned")  # crash tests: killed here, the submit stores nothing
    try:
        added = ctx.ledger.add(team.name, f"{ctx.registry_public}/{repository}@{digest}", pinned.digest, per_day=per_day, message=message)
    except QuotaExceeded as exc:
        raise ServiceError(429, str(exc)) from None
    except HarnessError as exc:  # finalized meanwhile
        raise ServiceError(409, str(exc)) from None
    pause_point("submit.recorded")  # crash tests: killed here, the row is whole and charged once
    return added


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
