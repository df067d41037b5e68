"""``harness gc`` and the registry's blobs: a real registry (Debian's distribution 2.8) with the
service's storage and issuer key, images pushed by a team and pulled by digest as intake does, and a
real ledger. The manifests of submissions the policy does not keep are deleted through the
registry's API (a ``delete`` token signed by the issuer key); ``--registry`` (the service stopped)
deletes them with a registry of its own and runs the registry's garbage-collect, after which their
blobs are gone from the storage directory and the kept image still pulls."""

from __future__ import annotations

import json
import os
import secrets

import pytest
from registry_helpers import add_evaluated, build_tiny_image, pull_by_digest, push, remove_images, running_registry
from test_round import harness

from harness.competition.paths import ServicePaths
from harness.registry import IssuerKey, NotInRegistry, RegistryClient, RegistryServer
from harness.registry.storage import manifests
from harness.submissions.ledger import EVALUATED, PENDING, Ledger
from harness.util.errors import HarnessError

pytestmark = [pytest.mark.docker, pytest.mark.slow]

TEAM, TOKEN, WORKER, WORKER_TOKEN = "team-a", secrets.token_hex(16), "harness-worker", secrets.token_hex(16)
TEAM_AUTH, WORKER_AUTH = {"username": TEAM, "password": TOKEN}, {"username": WORKER, "password": WORKER_TOKEN}


def gc(home, *args: str, code: int = 0) -> dict:
    done = harness(home, "gc", "digits", "--json", *args)
    assert done.returncode == code, done.stderr
    return json.loads(done.stdout) if code == 0 else {"stderr": done.stderr}


def blob(storage, digest: str):
    hexdigest = digest.removeprefix("sha256:")
    return storage / "docker/registry/v2/blobs/sha256" / hexdigest[:2] / hexdigest / "data"


def test_gc_deletes_unkept_manifests_and_the_garbage_collect_frees_their_blobs(home, docker_client, tmp_path):
    root = ServicePaths.of("digits", home).root
    storage = root / "registry"
    names: list[str] = []
    try:
        with running_registry(root, {TEAM: (TOKEN, f"teams/{TEAM}"), WORKER: (WORKER_TOKEN, None)}) as registry:
            repository = f"{registry.address}/teams/{TEAM}/img"
            pulled, ids, layers = {}, {}, {}
            # pushed in this order: "latest" moves on, so only "tagged" and "kept" have a tag at the end;
            # "unsubmitted" is never submitted
            pushes = (("offline", "latest"), ("online", "latest"), ("tagged", "mine"), ("unsubmitted", "latest"), ("kept", "latest"))
            for version, tag_name in pushes:
                tag = f"{repository}:{tag_name}"
                names.append(tag)
                build_tiny_image(docker_client, tag, os.urandom(64 * 1024), tmp_path / version)  # random: no shared layer
                digest = push(docker_client, repository, tag_name, TEAM_AUTH)
                docker_client.images.remove(tag)
                pull_by_digest(docker_client, repository, digest, WORKER_AUTH)
                pulled[version] = f"{repository}@{digest}"
                names.append(pulled[version])
                ids[version] = docker_client.images.get(pulled[version]).id
                layers[version] = manifests(storage)[(f"teams/{TEAM}/img", digest)] | {digest}
            ledger = Ledger(home, "digits")
            ledger.add(TEAM, pulled["kept"], ids["kept"])  # pending: kept
            for version in ("online", "offline", "tagged"):  # evaluated without a score: not kept
                add_evaluated(ledger, TEAM, pulled[version], ids[version])
            before = {p for p in storage.rglob("*")}

            dry = gc(home, "--no-nodes")
            listed = {i["what"]: i for i in dry["items"] if i["kind"] == "registry-manifest"}
            assert set(listed) == {pulled["online"].split("/", 1)[1], pulled["offline"].split("/", 1)[1]}  # "unsubmitted": too young
            unsubmitted = pulled["unsubmitted"].split("/", 1)[1]
            aged = gc(home, "--no-nodes", "competition.retention.untagged_after_h=0")
            listed = {i["what"]: i for i in aged["items"] if i["kind"] == "registry-manifest"}
            assert set(listed) == {pulled["online"].split("/", 1)[1], pulled["offline"].split("/", 1)[1], unsubmitted}
            assert listed[unsubmitted]["bytes"] == sum(blob(storage, d).stat().st_size for d in layers["unsubmitted"])
            assert "never submitted, and no tag names it" in listed[unsubmitted]["why"]
            for version in ("online", "offline"):
                item = listed[pulled[version].split("/", 1)[1]]
                assert item["bytes"] == sum(blob(storage, d).stat().st_size for d in layers[version]) > 64 * 1024
                assert "not kept" in item["why"]
            assert {p for p in storage.rglob("*")} == before  # a dry run deletes nothing

            # the service runs: its gc deletes the manifest through the API; the blobs stay until a garbage-collect
            online = pulled["online"].split("/", 1)[1]
            ledger_offline = next(s for s in ledger.all() if s.image == pulled["offline"])
            ledger_offline.state = PENDING  # kept for now: only "online" goes while the registry runs
            ledger.save(ledger_offline)
            applied = gc(home, "--apply", "--no-nodes")
            assert [i["what"] for i in applied["items"] if i["kind"] == "registry-manifest"] == [online]
            assert (f"teams/{TEAM}/img", pulled["online"].split("@")[1]) not in manifests(storage)
            reader = RegistryClient(registry.address, registry.key)
            with pytest.raises(NotInRegistry):
                reader.manifest(f"teams/{TEAM}/img", pulled["online"].split("@")[1])
            reader.manifest(f"teams/{TEAM}/img", pulled["offline"].split("@")[1])
            assert sorted(i["what"] for i in applied["items"] if i["kind"] == "image") == sorted(
                [pulled["online"], pulled["tagged"]]
            )  # the head's copies
            assert all(blob(storage, d).is_file() for d in layers["online"])
            refused = gc(home, "--apply", "--registry", "--no-nodes", code=2)  # the registry runs: no garbage-collect now
            assert "--registry needs the registry stopped" in refused["stderr"] and "Traceback" not in refused["stderr"]
            ledger_offline.state = EVALUATED
            ledger.save(ledger_offline)

        # the service stopped: --registry deletes the rest with a registry of its own, then collects
        gone = layers["online"] | layers["offline"] | layers["unsubmitted"]
        sizes = {d: blob(storage, d).stat().st_size for d in gone}
        offline = gc(home, "--apply", "--registry", "--no-nodes", "competition.retention.untagged_after_h=0")
        deleted = sorted(i["what"] for i in offline["items"] if i["kind"] == "registry-manifest")
        assert deleted == sorted([pulled["offline"].split("/", 1)[1], unsubmitted])
        kinds = {i["kind"]: i for i in offline["items"]}
        assert kinds["registry-blobs"]["bytes"] == sum(sizes.values()) > 192 * 1024
        assert not any(blob(storage, d).exists() for d in gone)
        assert all(blob(storage, d).is_file() for d in layers["kept"])
        # the unkept image a tag still names is the team's (its budget counts it): it stays whole
        assert set(manifests(storage)) == {(f"teams/{TEAM}/img", pulled[v].split("@")[1]) for v in ("kept", "tagged")}
        assert all(blob(storage, d).is_file() for d in layers["tagged"])

        # the kept image still pulls, from a registry started again on the same storage
        remove_images(docker_client, [pulled["kept"]])
        with running_registry(root, {WORKER: (WORKER_TOKEN, None)}) as registry:
            again = f"{registry.address}/teams/{TEAM}/img"
            names.append(f"{again}@{pulled['kept'].split('@')[1]}")
            pull_by_digest(docker_client, again, pulled["kept"].split("@")[1], WORKER_AUTH)
            assert docker_client.images.get(names[-1]).id == ids["kept"]
        assert gc(home, "--no-nodes")["items"] == []
    finally:
        remove_images(docker_client, names)


def test_the_garbage_collect_runs_only_while_the_registry_is_stopped(home):
    root = ServicePaths.of("digits", home).root
    with running_registry(root, {}) as registry:
        with pytest.raises(HarnessError, match="needs the registry stopped"):
            registry.server.collect_garbage()
        other = RegistryServer(root, realm="http://127.0.0.1:9/unused", key=registry.key)  # another process's view of it
        with pytest.raises(HarnessError, match=r"needs the registry stopped: the registry \(pid \d+\) of another running instance"):
            other.collect_garbage()
    server = RegistryServer(root, realm="http://127.0.0.1:9/unused", key=IssuerKey.load_or_create(root / "registry-auth"))
    assert server.collect_garbage() == 0  # nothing pushed: nothing freed


def test_the_service_deletes_through_its_running_registry_and_collects_at_its_next_start(tmp_path, docker_client):
    """The real service (its registry on a port of the test's choosing, not the configured one): the
    gc deletes the unkept submission's manifest through it; the blobs go when the service starts again."""
    from tests.service_helpers import push as team_push
    from tests.service_helpers import running_service, tiny_image

    home = tmp_path / "serve"
    home.mkdir()
    names: list[str] = []
    with running_service(home, "competition.smoke.enabled=false") as service:
        try:
            alpha = service.add_team("Alpha")
            assert harness(home, "service", "pause", "digits", "evaluation").returncode == 0  # the rows stay as the test sets them
            subs, digests = {}, {}
            for version in ("free", "kept"):  # one tag: "kept" moves it on, so no tag names "free" at the end
                reference = f"{service.registry}/teams/alpha/img:latest"
                names.append(reference)
                tiny_image(docker_client, reference, note=os.urandom(48 * 1024))
                digests[version] = team_push(docker_client, reference, alpha)
                names.append(f"{service.registry}/teams/alpha/img@{digests[version]}")
                answer = service.call("POST", "c/submissions", alpha["token"], json={"image": reference, "digest": digests[version]})
                assert answer.status_code == 201, answer.text
                subs[version] = answer.json()["id"]
            ledger = Ledger(home, "digits")
            done = ledger.get(subs["free"])
            done.state = EVALUATED
            ledger.save(done)
            storage = ServicePaths.of("digits", home).registry
            layers = {v: manifests(storage)[("teams/alpha/img", digests[v])] | {digests[v]} for v in digests}

            freed = gc(home, "--apply", "--no-nodes")
            assert [i["what"] for i in freed["items"] if i["kind"] == "registry-manifest"] == [f"teams/alpha/img@{digests['free']}"]
            assert set(manifests(storage)) == {("teams/alpha/img", digests["kept"])}
            # the head's pulled copy too: team "Alpha" pushes under its namespace teams/alpha
            assert [i["what"] for i in freed["items"] if i["kind"] == "image"] == [f"{service.registry}/teams/alpha/img@{digests['free']}"]
            assert all(blob(storage, d).is_file() for d in layers["free"])  # until the registry's garbage-collect
            service.stop()
            service.start()
            assert "the registry's garbage-collect freed" in service.log.read_text()
            assert not any(blob(storage, d).exists() for d in layers["free"] - layers["kept"])
            assert all(blob(storage, d).is_file() for d in layers["kept"])
        finally:
            remove_images(docker_client, names)
