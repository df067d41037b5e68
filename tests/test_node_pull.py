"""Nodes pull a pushed submission from the registry by manifest digest; the depot is the fallback.

The cluster: a head node without CPUs (the driver's, on the default engine, where the depot lives)
and one worker whose processes use a private ``dockerd`` with its own data root, so every phase runs
on an engine that lacks the image until the registry or the depot brings it there.
"""

from __future__ import annotations

import sys
from contextlib import suppress
from pathlib import Path

import docker.errors
import pytest
import ray
from clusters import node_of, private_engine, ray_cluster, records, round_competition, submit
from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
from registry_helpers import build_tiny_image, push, running_registry

from harness.registry import SERVICE, Access, issue_token
from harness.registry.server import direct_session
from harness.rounds.distribution import WORKER_TOKEN_ENV, WORKER_USERNAME, worker_credential
from harness.rounds.driver import drive_round
from harness.runner.depot import Depot
from harness.runner.phase import registry_reference
from harness.runner.staging import RegistryCredential, Staging, ensure_image, has_image
from harness.util.errors import HarnessError

TEAM_TOKEN = "team-a-secret"
WORKER_TOKEN = "worker-secret-for-the-test"


@pytest.fixture(scope="module")
def node_engine():
    """The worker node's Ray id and engine (a client to the private dockerd)."""
    with private_engine() as (host, engine), ray_cluster(0, [{"DOCKER_HOST": host}]) as (_, workers):
        yield workers[0].node_id, engine


def credentials(worker_token: str = WORKER_TOKEN) -> dict[str, tuple[str, str | None]]:
    return {"team-a": (TEAM_TOKEN, "teams/team-a"), WORKER_USERNAME: (worker_token, None)}


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    """One registry for the module's rounds: the image's layers are pushed to it (gzipped) once, a
    second push of the same image finds them there. A test that stops it starts it again after."""
    with running_registry(tmp_path_factory.mktemp("service") / "digits", credentials()) as running:
        yield running


def push_as_team(client: docker.DockerClient, image: str, repository: str, tag: str) -> str:
    """``repository@<manifest digest>`` of ``image`` pushed as team-a."""
    client.images.get(image).tag(repository, tag)
    return f"{repository}@{push(client, repository, tag, {'username': 'team-a', 'password': TEAM_TOKEN})}"


def forget(client: docker.DockerClient, *references: str, force: bool = False) -> None:
    for reference in references:
        with suppress(docker.errors.ImageNotFound, docker.errors.NotFound):
            client.images.remove(reference, force=force)


def test_registry_references_and_the_worker_credential(competition, home, monkeypatch):
    digest = "sha256:" + "ab" * 32
    for pulled in (f"127.0.0.1:5050/teams/a/x@{digest}", f"registry.example/teams/a/x@{digest}", f"localhost/x@{digest}"):
        assert registry_reference(pulled) == pulled
    for local in ("harness-test/constant:latest", f"teams/a/x@{digest}", "127.0.0.1:5050/teams/a/x:v1", "127.0.0.1:5050/x@sha256:ab"):
        assert registry_reference(local) is None

    comp = competition()
    monkeypatch.delenv(WORKER_TOKEN_ENV, raising=False)
    assert worker_credential(comp) is None  # no service ran here: the depot alone brings images
    token_file = home / "service" / "digits" / "worker-token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("from-the-file\n")
    credential = worker_credential(comp)
    assert credential == RegistryCredential(WORKER_USERNAME, "from-the-file")
    assert "from-the-file" not in repr(credential) and "from-the-file" not in repr(Staging(None, "node", "/tmp", registry=credential))
    monkeypatch.setenv(WORKER_TOKEN_ENV, "from-the-environment")
    assert worker_credential(comp).password == "from-the-environment"
    monkeypatch.delenv(WORKER_TOKEN_ENV)
    token_file.unlink()
    token_file.mkdir()
    with pytest.raises(HarnessError, match="worker token .* cannot be read"):
        worker_credential(comp)


@pytest.mark.docker
@pytest.mark.slow
@pytest.mark.parametrize("registry_up", [True, False], ids=["pulled", "registry-down"])
def test_a_node_lacking_the_image_pulls_it_by_digest_or_gets_it_from_the_depot(
    node_engine, registry, home, competition, behave_image, docker_client, tmp_path, registry_up
):
    node_id, engine = node_engine
    comp = round_competition(competition, tmp_path / "nodes")
    image_id = docker_client.images.get(behave_image("constant")).id
    service = home / "service" / "digits"
    service.mkdir(parents=True)
    (service / "worker-token").write_text(WORKER_TOKEN)
    repository = f"{registry.address}/teams/team-a/sub"
    reference = push_as_team(docker_client, behave_image("constant"), repository, "v1")
    submission_id = submit(comp, "team-a", reference)  # pinned on the organizer's engine, as the service does
    served_before = registry.tokens.granted.count(WORKER_USERNAME)
    if not registry_up:
        registry.server.stop()
    try:
        assert not has_image(engine, image_id)
        summary = drive_round(comp, out=sys.stderr)
        brought = engine.images.get(image_id)
    finally:
        forget(engine, image_id, force=True)
        forget(docker_client, f"{repository}:v1", reference)
        if not registry_up:
            registry.server.start()
    workers_served = registry.tokens.granted.count(WORKER_USERNAME) - served_before

    assert summary.verdicts == {"SCORED": 1}
    (record,) = records(home)
    assert record["submission"]["id"] == submission_id
    assert record["submission"]["image"] == reference and record["submission"]["image_digest"] == image_id
    assert {node_of(phase) for phase in record["phases"].values()} == {node_id[:12]}  # run where the image was missing
    archives = list((home / "depot").glob("image-*.tar"))
    if registry_up:  # pulled as the workers, by the manifest digest; the depot made no archive
        assert workers_served >= 1 and reference in brought.attrs["RepoDigests"]
        assert archives == []
    else:  # nothing answered at the registry: the depot's archive brought it
        assert workers_served == 0 and brought.attrs["RepoDigests"] == []
        assert [a.name for a in archives] == [f"image-{image_id.removeprefix('sha256:')}.tar"]


def delete_manifest(registry, repository: str, digest: str) -> None:
    """Delete a manifest as the organizer would (a token with ``delete``, signed by the issuer key)."""
    token = issue_token(registry.key, subject="organizer", audience=SERVICE, access=[Access("repository", repository, ("delete",))])
    answer = direct_session().delete(
        f"http://{registry.address}/v2/{repository}/manifests/{digest}", headers={"Authorization": f"Bearer {token}"}, timeout=10
    )
    assert answer.status_code == 202, answer.text


@pytest.mark.docker
@pytest.mark.parametrize("failure", ["manifest-deleted", "another-image", "wrong-worker-token"])
def test_a_failed_or_wrong_pull_falls_back_to_the_depot(node_engine, docker_client, tmp_path: Path, failure):
    _, engine = node_engine
    here = ray.get_runtime_context().get_node_id()
    depot = Depot.options(scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False)).remote(str(tmp_path / "depot"))
    (tmp_path / "node").mkdir()
    with running_registry(tmp_path / "service", credentials()) as registry:
        repository = f"{registry.address}/teams/team-a/tiny"
        pinned = build_tiny_image(docker_client, f"{repository}:pinned", f"pinned {tmp_path}".encode(), tmp_path / "pinned")
        other = build_tiny_image(docker_client, f"{repository}:other", f"other {tmp_path}".encode(), tmp_path / "other")
        reference = push_as_team(docker_client, pinned, repository, "pinned")
        if failure == "manifest-deleted":
            delete_manifest(registry, "teams/team-a/tiny", reference.partition("@")[2])
        elif failure == "another-image":  # the registry serves something else under the reference given
            reference = push_as_team(docker_client, other, repository, "other")
        password = "not-the-worker-token" if failure == "wrong-worker-token" else WORKER_TOKEN
        try:
            ensure_image(
                engine,
                pinned,
                depot,
                tmp_path / "node",
                pull_from=reference,
                credential=RegistryCredential(WORKER_USERNAME, password),
            )
            assert engine.images.get(pinned).attrs["RepoDigests"] == []  # loaded from the depot's archive, verified by its id
            assert not has_image(engine, other)  # a pulled image that is not the pinned one does not stay
        finally:
            forget(engine, pinned, other, force=True)
            forget(docker_client, pinned, other, force=True)
        assert (tmp_path / "depot" / f"image-{pinned.removeprefix('sha256:')}.tar").is_file()
        assert registry.tokens.refused == (1 if failure == "wrong-worker-token" else 0)
