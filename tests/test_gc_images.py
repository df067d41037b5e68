"""``harness gc`` and the images the service pulled from its registry: a real registry, the test's
own images pushed by a team and pulled by digest as the worker, as intake does, and a real ledger.
Only the pulled reference of a submission the policy does not keep is freed; an image a kept
submission uses, an image the organizer also named, and an image a submission named on the engine
itself (``harness submit --image``) stay; one a container still uses is said and freed next time."""

from __future__ import annotations

import json
import os
import secrets

import docker.errors
import pytest
from registry_helpers import add_evaluated, build_tiny_image, pull_by_digest, push, remove_images, running_registry
from test_round import harness

from harness.submissions.ledger import Ledger

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TEAM, TOKEN, WORKER, WORKER_TOKEN = "team-a", secrets.token_hex(16), "harness-worker", secrets.token_hex(16)


def gc(home, *args: str, code: int = 0) -> dict:
    done = harness(home, "gc", "digits", "--json", *args)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout)


def test_gc_removes_only_the_pulled_references_no_kept_submission_needs(home, docker_client, tmp_path):
    names: list[str] = []
    credentials = {TEAM: (TOKEN, f"teams/{TEAM}"), WORKER: (WORKER_TOKEN, None)}
    try:
        with running_registry(tmp_path / "service" / "digits", credentials) as registry:
            repository = f"{registry.address}/teams/{TEAM}/img"
            pulled, ids = {}, {}
            for version in ("kept", "free", "shared"):
                tag = f"{repository}:{version}"
                names.append(tag)
                build_tiny_image(docker_client, tag, os.urandom(4096), tmp_path / version)
                digest = push(docker_client, repository, version, {"username": TEAM, "password": TOKEN})
                docker_client.images.remove(tag)  # the engine keeps only what intake pulls: the reference by digest
                pull_by_digest(docker_client, repository, digest, {"username": WORKER, "password": WORKER_TOKEN})
                pulled[version] = f"{repository}@{digest}"
                names.append(pulled[version])
                ids[version] = docker_client.images.get(pulled[version]).id
        other = f"harness-test-gc/organizer:{secrets.token_hex(4)}"  # the organizer's own name for the shared image
        docker_client.images.get(pulled["shared"]).tag(other)
        local = f"harness-test-gc/local:{secrets.token_hex(4)}"
        build_tiny_image(docker_client, local, os.urandom(1024), tmp_path / "local")
        names += [other, local]

        ledger = Ledger(home, "digits")
        ledger.add(TEAM, pulled["kept"], ids["kept"])  # pending: kept
        for version in ("kept", "free", "shared"):  # evaluated without a score: not kept
            add_evaluated(ledger, TEAM, pulled[version], ids[version])
        add_evaluated(ledger, TEAM, local, docker_client.images.get(local).id)

        size = int(docker_client.images.get(pulled["free"]).attrs["Size"])
        dry = gc(home)
        assert {(i["kind"], i["what"], i["bytes"]) for i in dry["items"]} == {
            ("image", pulled["free"], size),
            ("image", pulled["shared"], 0),
        }
        assert len(dry["items"]) == 2 and dry["bytes"] == size
        for reference in (*pulled.values(), other, local):
            docker_client.images.get(reference)  # a dry run frees nothing

        # a container still uses the image: not freed, said, and freed by the next gc once it is gone
        user = docker_client.containers.create(pulled["free"], command=["/payload.txt"], labels={"org.example.gc-test": "1"})
        try:
            stopped = gc(home, "--apply", code=1)
        finally:
            user.remove(force=True)
        assert [i["what"] for i in stopped["items"]] == [pulled["shared"]] and len(stopped["not_freed"]) == 1
        assert stopped["not_freed"][0].startswith(f"{pulled['free']}: ")
        docker_client.images.get(pulled["free"])
        assert [i["what"] for i in gc(home, "--apply")["items"]] == [pulled["free"]]
        for reference in (pulled["free"], pulled["shared"], ids["free"]):
            with pytest.raises(docker.errors.ImageNotFound):
                docker_client.images.get(reference)
        assert docker_client.images.get(other).id == ids["shared"]  # the organizer's name keeps the image
        assert docker_client.images.get(pulled["kept"]).id == ids["kept"]
        docker_client.images.get(local)
        assert gc(home)["items"] == []
    finally:
        remove_images(docker_client, names)
