"""The service's JSON API, from outside: the real `harness serve` under uvicorn on loopback, its
real registry, real SQLite, pushes through the docker SDK. The worker's shared service (its failure
window 2 s so the rate-limit tests can see it pass, a quota of 3, no smoke stage: a smoke failure
is not charged, and the quota test counts every submission), and one of the module's with the
limits of intake and its evaluation paused, for the tests of those and the SIGKILL test (restarted,
it starts no Ray: the shared service is never killed, so it starts Ray once)."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
import threading
import time

import docker
import pytest
import requests

from harness.cli import main
from harness.service.context import SERVICE_NAME
from harness.submissions.ledger import WITHDRAWN, Ledger
from harness.util.pause import PAUSE_DIR_ENV
from tests.service_helpers import PAUSES, harness, push, running_service, tiny_image
from tests.service_helpers import SHARED_WINDOW_S as WINDOW_S

REQUIRED = {"detail": "a valid team token is required"}


@pytest.fixture(scope="module")
def service(shared_service):
    return shared_service


@pytest.fixture(scope="module")
def teams(service):
    return {name: service.add_team(name) for name in ("Alpha", "Beta")}


@pytest.fixture(scope="module")
def pushed(service, teams, docker_client):
    """A tiny image in Alpha's namespace: (reference pushed, digest)."""
    reference = f"{service.registry}/teams/alpha/tiny:1"
    tiny_image(docker_client, reference)
    return reference, push(docker_client, reference, teams["Alpha"])


@pytest.fixture(scope="module")
def limited(prepared_data, tmp_path_factory):
    """A service with intake's limits: a 16 KiB cap on an image, a 1 KiB registry budget per team,
    and this machine as a trusted proxy; its evaluation paused (nothing here needs a round, so its
    restarts after a SIGKILL start no Ray), and it may be held at a pause point (only killed_at arms one)."""
    home = tmp_path_factory.mktemp("limited") / "home"
    shutil.copytree(prepared_data, home, symlinks=True)
    (home / PAUSES).mkdir()
    harness(home, "service", "pause", "digits", "evaluation")
    limits = ("competition.intake.max_image_size=16k", "competition.intake.team_registry_size=1k")
    overrides = (*limits, f"service.sign_in.window_s={WINDOW_S}", "service.trusted_proxies=[127.0.0.1]")
    with running_service(home, *overrides, environment={PAUSE_DIR_ENV: str(home / PAUSES)}) as running:
        yield running


def submit(service, team, image, digest, message="", **kwargs):
    return service.call("POST", "c/submissions", team["token"], json={"image": image, "digest": digest, "message": message}, **kwargs)


def wait_for(service, team, sid, states, timeout=240):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        view = service.call("GET", f"c/submissions/{sid}", team["token"]).json()
        if view["state"] in states:
            return view
        time.sleep(0.25)
    raise AssertionError(f"{sid} still {view['state']} after {timeout} s: {service.log.read_text()[-2000:]}")


def test_whoami_and_every_kind_of_bad_token_is_the_same_401(service, teams):
    alpha = teams["Alpha"]
    me = service.call("GET", "/api/v1/whoami", alpha["token"]).json()
    assert me == {
        "team": "Alpha",
        "team_id": alpha["id"],
        "namespace": "teams/alpha",
        "competition": "digits",
        "registry": service.registry,
    }
    revoked = service.add_team("Gone")
    harness(service.home, "teams", "revoke", "digits", "Gone")
    secret = alpha["token"][-1]
    wrong = alpha["token"][:-1] + ("A" if secret != "A" else "B")
    for token in (None, "nonsense", wrong, revoked["token"]):
        answer = service.call("GET", "/api/v1/whoami", token)
        assert (answer.status_code, answer.json()) == (401, REQUIRED), token
    assert service.call("GET", "c/quota", None).status_code == 401
    assert service.call("GET", "/api/v1/competitions/other/quota", alpha["token"]).status_code == 404
    time.sleep(WINDOW_S)  # these failures leave the window before the next test


def test_bodies_over_the_cap_and_malformed_json(service, teams):
    token = teams["Alpha"]["token"]
    big = service.call("POST", "c/submissions", token, data=b"x" * 70_000, headers={"content-type": "application/json"})
    chunked = service.call(
        "POST", "c/submissions", token, data=(b" " * 1000 for _ in range(70)), headers={"content-type": "application/json"}
    )
    for answer in (big, chunked):
        assert answer.status_code == 413 and "over 64.0 KiB" in answer.json()["detail"]
    assert "Content-Length" not in chunked.request.headers
    bad = service.call("POST", "c/submissions", token, data=b'{"image": ', headers={"content-type": "application/json"})
    assert bad.status_code == 422 and bad.json()["detail"].startswith("the request body is not valid JSON")
    missing = service.call("POST", "c/submissions", token, json={"image": "x"})
    assert missing.status_code == 422 and missing.json()["detail"] == "digest: Field required"


def test_submit_refusals_store_nothing(service, teams, pushed):
    alpha, (reference, digest) = teams["Alpha"], pushed
    image = reference.rsplit(":", 1)[0]
    cases = [
        (submit(service, alpha, f"{service.registry}/teams/beta/tiny", digest), 403, "not under your team's namespace"),
        (submit(service, alpha, "elsewhere.example/teams/alpha/tiny", digest), 403, "not under your team's namespace"),
        (submit(service, alpha, image, "sha256:abc"), 422, "is not sha256:<64 lowercase hex>"),
        (submit(service, alpha, image, digest, "x" * 501), 422, "at most 500 are allowed"),
        (submit(service, alpha, image, digest, "two\nlines"), 422, "control or invisible character (U+000A)"),
        (submit(service, alpha, image, "sha256:" + "0" * 64), 404, "push it first"),
    ]
    for answer, status, says in cases:
        assert answer.status_code == status and says in answer.json()["detail"], answer.text
    assert Ledger(service.home, "digits").of_team("Alpha") == []


def test_an_image_over_the_size_cap_is_refused_from_its_manifest(limited, docker_client):
    team = limited.add_team("Big")
    reference = f"{limited.registry}/teams/big/blob:1"
    tiny_image(docker_client, reference, note=os.urandom(64 * 1024))
    try:
        digest = push(docker_client, reference, team)
        answer = submit(limited, team, reference.rsplit(":", 1)[0], digest)
    finally:
        docker_client.images.remove(reference, force=True)
    assert answer.status_code == 413, answer.text
    assert "over the competition's size cap of 16.0 KiB" in answer.json()["detail"]
    assert Ledger(limited.home, "digits").of_team("Big") == []


def test_what_the_registry_tells_is_checked_before_any_pull(home, docker_client):
    """Refused from the registry alone, and never pulled onto the head: an image whose metadata
    intake refuses (ENV LD_PRELOAD), one whose 64 KiB layer unpacks to 64 MiB past a 16 MiB cap,
    and any image of a team that has used its quota."""
    harness(home, "service", "pause", "digits", "evaluation")  # nothing here needs a round
    with running_service(home, "competition.intake.max_image_size=16m", "competition.quota.per_day=1") as capped:
        team = capped.add_team("Careful")

        def pushed_then_forgotten(name: str, **image) -> tuple[str, str]:
            """Pushed, then removed from this engine: only a pull would bring it back."""
            reference = f"{capped.registry}/teams/careful/{name}:1"
            tiny_image(docker_client, reference, **image)
            try:
                digest = push(docker_client, reference, team)
            finally:
                docker_client.images.remove(reference, force=True)
            return reference.rsplit(":", 1)[0], digest

        def never_pulled(repository: str, digest: str) -> bool:
            try:
                docker_client.images.get(f"{repository}@{digest}")
            except docker.errors.ImageNotFound:
                return True
            return False

        preload = pushed_then_forgotten("preload", note=os.urandom(64), extra="ENV LD_PRELOAD=/note\n")
        answer = submit(capped, team, *preload)
        assert answer.status_code == 422 and "sets ENV LD_PRELOAD" in answer.json()["detail"], answer.text
        bomb = pushed_then_forgotten("bomb", note=bytes(64 * 1024 * 1024))
        answer = submit(capped, team, *bomb)
        assert answer.status_code == 413, answer.text
        assert answer.json()["detail"] == "the image unpacks to more than 16.0 MiB, the competition's size cap; it was not pulled"
        assert never_pulled(*preload) and never_pulled(*bomb) and Ledger(capped.home, "digits").all() == []
        first = pushed_then_forgotten("first", note=os.urandom(64))
        assert submit(capped, team, *first).status_code == 201
        second = pushed_then_forgotten("second", note=os.urandom(64))
        answer = submit(capped, team, *second)
        assert answer.status_code == 429 and "has used its quota of 1" in answer.json()["detail"], answer.text
        assert never_pulled(*second) and not never_pulled(*first) and len(Ledger(capped.home, "digits").all()) == 1


def test_a_team_past_its_registry_budget_may_pull_but_not_push(limited, docker_client, monkeypatch, capsys):
    """A 1 KiB budget: the first push (4 KiB of incompressible data) takes the team past it; then
    the token issuer grants no push (a second `docker push` is refused by the real registry) while
    the team still pulls its image, the quota answer shows the usage, and `harness push` refuses up
    front saying why."""
    team = limited.add_team("Thrifty")
    first, second = (f"{limited.registry}/teams/thrifty/{name}:1" for name in ("first", "second"))
    for reference in (first, second):
        tiny_image(docker_client, reference, note=os.urandom(4096))
    try:
        push(docker_client, first, team)
        time.sleep(11)  # the issuer's reading of the registry, cached 10 s, was made before the push
        quota = limited.call("GET", "c/quota", team["token"]).json()
        assert quota["registry_budget_bytes"] == 1024 and quota["registry_bytes"] > 4096, quota
        with pytest.raises(AssertionError, match="denied|unauthorized|authentication required"):
            push(docker_client, second, team)
        granted = registry_token(limited, team["id"], team["token"], "repository:teams/thrifty/second:push,pull").json()
        assert jwt_claims(granted["token"])["access"] == [{"type": "repository", "name": "teams/thrifty/second", "actions": ["pull"]}]
        docker_client.images.remove(first, force=True)
        docker_client.images.pull(first, auth_config={"username": team["id"], "password": team["token"]})
        monkeypatch.setenv("HARNESS_SERVER", limited.url)
        monkeypatch.setenv("HARNESS_TOKEN", team["token"])
        monkeypatch.setenv("HARNESS_ALLOW_HTTP", "1")
        capsys.readouterr()
        assert main(["push", "digits", second]) == 2
        said = capsys.readouterr().err
        assert "your team's images take" in said and "its whole budget of 1.0 KiB" in said and "harness gc" in said
    finally:
        for reference in (first, second):
            try:
                docker_client.images.remove(reference, force=True)
            except docker.errors.ImageNotFound:
                pass


def test_submit_through_the_registry_until_a_verdict_and_the_quota(service, teams, pushed):
    alpha, beta, (reference, digest) = teams["Alpha"], teams["Beta"], pushed
    answer = submit(service, alpha, reference, digest, "first try")
    assert answer.status_code == 201, answer.text
    view = answer.json()
    assert view["state"] in ("queued", "running") and view["message"] == "first try" and view["team"] == "Alpha"
    assert view["image"] == f"{service.registry}/teams/alpha/tiny@{digest}" and view["registry_digest"] == digest
    assert view["image_digest"].startswith("sha256:") and view["image_digest"] != digest  # the pinned image id
    done = wait_for(service, alpha, view["id"], ("evaluated",))
    assert done["verdict"] == "RUNTIME_ERROR" and done["failed_phase"] == "train" and "no-such-program" in done["verdict_message"]
    assert done["phases"]["train"]["verdict"] == "RUNTIME_ERROR" and done["public_scores"] == {}
    assert service.call("GET", f"c/submissions/{view['id']}/logs?phase=infer", alpha["token"]).status_code == 404
    # another team sees nothing of it: the same 404 as an unknown id
    for path in (f"c/submissions/{view['id']}", f"c/submissions/{view['id']}/logs?phase=train"):
        theirs, unknown = (
            service.call("GET", path, beta["token"]),
            service.call("GET", path.replace(view["id"], "sub-000000000000"), beta["token"]),
        )
        assert theirs.status_code == unknown.status_code == 404
        assert theirs.json()["detail"].replace(view["id"], "X") == unknown.json()["detail"].replace("sub-000000000000", "X")
    assert service.call("GET", "c/submissions", beta["token"]).json() == {"submissions": []}
    rows = service.call("GET", "c/leaderboard", beta["token"]).json()["rows"]
    assert all("submission_id" not in row for row in rows)
    # the quota over the API is intake's: 3 a day here
    for _ in range(2):
        assert submit(service, alpha, reference, digest).status_code == 201
    quota = service.call("GET", "c/quota", alpha["token"]).json()
    assert quota["per_day"] == 3 and quota["used"] == 3 and quota["left"] == 0 and quota["next_allowed_at"]
    refused = submit(service, alpha, reference, digest)
    assert refused.status_code == 429 and "has used its quota of 3" in refused.json()["detail"]
    mine = service.call("GET", "c/submissions", alpha["token"]).json()["submissions"]
    assert len(mine) == 3 == len(Ledger(service.home, "digits").of_team("Alpha")) and mine[-1]["id"] == view["id"]


def test_pause_and_resume(service, teams, pushed, docker_client):
    beta = teams["Beta"]
    reference = f"{service.registry}/teams/beta/tiny:1"
    docker_client.images.get(pushed[0]).tag(reference)
    digest = push(docker_client, reference, beta)
    harness(service.home, "service", "pause", "digits", "intake")
    assert service.call("GET", "/api/v1/health").json() == {"status": "ok", "intake": "paused", "evaluation": "running"}
    answer = submit(service, beta, reference, digest)
    assert answer.status_code == 503 and "intake is paused" in answer.json()["detail"]
    harness(service.home, "service", "resume", "digits", "intake")
    harness(service.home, "service", "pause", "digits", "evaluation")
    assert service.call("GET", "/api/v1/health").json()["evaluation"] == "paused"
    time.sleep(1)  # a round the evaluator was starting has begun by now
    queued = submit(service, beta, reference, digest).json()
    time.sleep(2)
    assert service.call("GET", f"c/submissions/{queued['id']}", beta["token"]).json()["state"] == "queued"
    harness(service.home, "service", "resume", "digits")
    assert wait_for(service, beta, queued["id"], ("evaluated",))["verdict"] == "RUNTIME_ERROR"


def test_a_port_in_use_is_one_line_and_exit_2(service):
    taken = harness(service.home, "serve", "digits", "--port", str(service.port), check=False)
    assert taken.returncode == 2 and taken.stderr.strip().count("\n") == 0
    assert taken.stderr.startswith(f"harness: the service cannot listen on 127.0.0.1:{service.port}")


def test_failures_throttle_the_guesser_never_a_valid_token(service, teams):
    """Fifteen made-up tokens from one address (behind a proxy: every participant's): the wrong ones
    get 429 past the budget, until the window passes; a valid token from the same address is
    answered all along (before, it was refused with them)."""
    for _ in range(10):
        assert service.call("GET", "/api/v1/whoami", "hx_team-000000000000_" + "a" * 43).status_code == 401
    for _ in range(5):
        limited = service.call("GET", "/api/v1/whoami", "hx_wrong")
        assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= WINDOW_S
    assert service.call("GET", "/api/v1/whoami", teams["Beta"]["token"]).status_code == 200
    time.sleep(int(limited.headers["Retry-After"]) + 0.5)
    assert service.call("GET", "/api/v1/whoami", "hx_wrong").status_code == 401


def killed_at(service, point: str, call):
    """Run ``call`` (a request) in a thread with the service's pause point ``point`` armed; once the
    request is held there, SIGKILL the service (its whole group). What the call got back, or raised."""
    armed, reached = service.home / PAUSES / point, service.home / PAUSES / f"{point}.reached"
    armed.touch()
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(_try(call)))
    thread.start()
    try:
        deadline = time.monotonic() + 120
        while not reached.exists():
            assert thread.is_alive(), f"the request ended before {point}: {answers}"
            assert time.monotonic() < deadline, f"the request never reached {point}: {service.log.read_text()[-2000:]}"
            time.sleep(0.05)
        assert thread.is_alive()  # held there: the kill lands inside the request
        service.kill()
    finally:
        armed.unlink()
        reached.unlink(missing_ok=True)
        thread.join()
    return answers[0]


def registry_token(service, username: str, password: str, scope: str) -> requests.Response:
    """The service's own token endpoint, as the engine calls it (``docker login``, push, pull): HTTP Basic."""
    return requests.get(
        f"{service.url}/api/v1/registry/token", params={"service": SERVICE_NAME, "scope": scope}, auth=(username, password), timeout=30
    )


def jwt_claims(token: str) -> dict:
    part = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))


def test_a_team_pulling_another_teams_image_through_the_services_issuer_is_refused(service, teams, pushed, docker_client):
    alpha, beta = teams["Alpha"], teams["Beta"]
    repository = "teams/beta/private"
    reference = f"{service.registry}/{repository}"
    docker_client.images.get(pushed[0]).tag(f"{reference}:1")
    digest = push(docker_client, f"{reference}:1", beta)

    def manifest(token: str) -> requests.Response:
        accept = "application/vnd.docker.distribution.manifest.v2+json"
        url = f"http://{service.registry}/v2/{repository}/manifests/{digest}"
        return requests.get(url, headers={"Authorization": f"Bearer {token}", "Accept": accept}, timeout=30)

    # the issuer signs Alpha a token for the scope asked, granting nothing on Beta's repository
    asked = registry_token(service, alpha["id"], alpha["token"], f"repository:{repository}:pull,push")
    assert asked.status_code == 200, asked.text
    stolen = jwt_claims(asked.json()["token"])
    assert stolen["sub"] == alpha["id"] and stolen["aud"] == SERVICE_NAME
    assert stolen["access"] == [{"type": "repository", "name": repository, "actions": []}]
    # the same scope for Beta is granted, and the registry takes the issuer's tokens: the premise
    own = registry_token(service, beta["id"], beta["token"], f"repository:{repository}:pull")
    assert jwt_claims(own.json()["token"])["access"] == [{"type": "repository", "name": repository, "actions": ["pull"]}]
    assert manifest(own.json()["token"]).status_code == 200
    # the real registry refuses Alpha's token: the API call and a pull through the engine with Alpha's credentials
    refused = manifest(asked.json()["token"])
    assert refused.status_code == 401 and refused.json()["errors"][0]["code"] == "UNAUTHORIZED", refused.text
    with pytest.raises(docker.errors.APIError, match="denied|unauthorized"):
        docker_client.images.pull(reference, tag=digest, auth_config={"username": alpha["id"], "password": alpha["token"]})
    pulled = docker_client.images.pull(reference, tag=digest, auth_config={"username": beta["id"], "password": beta["token"]})
    assert pulled.id == docker_client.images.get(pushed[0]).id


def test_the_registry_basic_auth_path_is_rate_limited_like_the_api(service, teams, docker_client):
    """Wrong Basic credentials at the service's own token issuer count with the API's failures: past
    the budget the wrong ones (a team's, the worker's) get 429 at the issuer and at the API, while
    the right ones get their token, answer the API and `docker login` through the engine."""
    time.sleep(WINDOW_S)  # the earlier tests' failures leave the window: this one counts from zero
    beta, scope = teams["Beta"], "repository:teams/beta/tiny:pull"
    assert registry_token(service, beta["id"], beta["token"], scope).status_code == 200
    for _ in range(10):
        assert registry_token(service, beta["id"], "hx_wrong", scope).status_code == 401
    limited = registry_token(service, beta["id"], "hx_wrong", scope)
    assert limited.status_code == 429 and 1 <= int(limited.headers["Retry-After"]) <= WINDOW_S, limited.text
    assert registry_token(service, "harness-worker", "hx_wrong", scope).status_code == 429
    assert service.call("GET", "/api/v1/whoami", "hx_wrong").status_code == 429
    assert registry_token(service, beta["id"], beta["token"], scope).status_code == 200
    assert service.call("GET", "/api/v1/whoami", beta["token"]).status_code == 200
    assert docker_client.login(username=beta["id"], password=beta["token"], registry=service.registry, reauth=True)["Status"] == (
        "Login Succeeded"
    )
    time.sleep(int(limited.headers["Retry-After"]) + 0.5)
    assert registry_token(service, beta["id"], "hx_wrong", scope).status_code == 401


def test_behind_a_trusted_proxy_failures_count_per_forwarded_client(limited):
    """With the proxy's address in service.trusted_proxies, a stranger's failures (forwarded as
    203.0.113.9) throttle the stranger only: another participant behind the same proxy still gets a
    401 for a wrong token, not a 429. A forged X-Forwarded-For from a client that is not a trusted
    proxy is ignored (tests/test_service_auth.py has the address rule)."""
    team = limited.add_team("Proxied")

    def whoami(token: str, client: str) -> int:
        answer = requests.get(f"{limited.url}/api/v1/whoami", headers={"Authorization": f"Bearer {token}", "X-Forwarded-For": client})
        return answer.status_code

    for _ in range(10):
        assert whoami("hx_wrong", "203.0.113.9") == 401
    assert whoami("hx_wrong", "203.0.113.9") == 429
    assert whoami("hx_wrong", "198.51.100.7") == 401
    assert whoami(team["token"], "203.0.113.9") == 200


def test_a_sigkill_during_submit_loses_nothing_and_charges_nothing_twice(limited, docker_client):
    gamma = limited.add_team("Gamma")  # the service's evaluation is paused: rows stay pending, nothing else writes them
    reference = f"{limited.registry}/teams/gamma/tiny:1"
    tiny_image(docker_client, reference)
    digest = push(docker_client, reference, gamma)
    ledger = Ledger(limited.home, "digits")
    image = f"{limited.registry}/teams/gamma/tiny@{digest}"

    # killed after every check, the pull and the pin, before the ledger's row: nothing stored, nothing charged
    lost = killed_at(limited, "submit.pinned", lambda: submit(limited, gamma, reference, digest, "crash"))
    assert isinstance(lost, requests.ConnectionError), lost
    assert ledger.of_team("Gamma") == []
    limited.start()
    assert limited.call("GET", "c/submissions", gamma["token"]).json() == {"submissions": []}
    assert limited.call("GET", "c/quota", gamma["token"]).json()["used"] == 0

    # killed after the row's commit, before the answer: the row is whole, and charged once
    unanswered = killed_at(limited, "submit.recorded", lambda: submit(limited, gamma, reference, digest, "crash"))
    assert isinstance(unanswered, requests.ConnectionError), unanswered
    (row,) = ledger.of_team("Gamma")
    assert (row.message, row.image, row.state) == ("crash", image, "pending") and row.image_digest.startswith("sha256:")
    limited.start()
    (listed,) = limited.call("GET", "c/submissions", gamma["token"]).json()["submissions"]
    assert (listed["id"], listed["state"], listed["message"], listed["image"]) == (row.id, "queued", "crash", image)
    assert listed["image_digest"] == row.image_digest
    assert limited.call("GET", "c/quota", gamma["token"]).json()["used"] == 1

    # the team, never answered, submits again: one more row, charged once more, the first one unchanged
    answer = submit(limited, gamma, reference, digest, "again")
    assert answer.status_code == 201, answer.text
    rows = {r.id: r for r in ledger.of_team("Gamma")}
    assert set(rows) == {row.id, answer.json()["id"]} and rows[row.id] == row
    assert limited.call("GET", "c/quota", gamma["token"]).json()["used"] == 2


def test_an_image_refused_after_its_pull_leaves_nothing_on_the_heads_engine(service, teams, docker_client):
    """Every check before the pull passes; the quota is used up while the service pins the pulled
    image (three rows written meanwhile, as a team's other submits would): the ledger's own check
    refuses it, after the pull, and the service removes the image it pulled."""
    delta = service.add_team("Delta")
    reference = f"{service.registry}/teams/delta/refused:1"
    image_id = tiny_image(docker_client, reference, note=os.urandom(256))
    digest = push(docker_client, reference, delta)
    docker_client.images.remove(reference)  # the engine is the head's too: only the service's pull may bring it back
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image_id)
    harness(service.home, "service", "pause", "digits", "evaluation")  # the rows written meanwhile stay pending
    ledger = Ledger(service.home, "digits")
    armed, reached = service.home / PAUSES / "submit.pinned", service.home / PAUSES / "submit.pinned.reached"
    armed.touch()
    answers: list = []
    thread = threading.Thread(target=lambda: answers.append(_try(lambda: submit(service, delta, reference, digest))))
    thread.start()
    filled = []
    try:
        deadline = time.monotonic() + 120
        while not reached.exists():
            assert thread.is_alive() and time.monotonic() < deadline, f"the submit never reached its pin: {answers}"
            time.sleep(0.05)
        assert docker_client.images.get(image_id).id == image_id  # pulled and pinned on the head
        filled = [ledger.add("Delta", f"{service.registry}/teams/delta/other@sha256:{n * 64}", f"sha256:{n * 64}") for n in "123"]
    finally:
        armed.unlink()
        thread.join()
        reached.unlink(missing_ok=True)
        for row in filled:
            ledger.moderate(row.id, WITHDRAWN, "the test's stand-in for other submits")
    (answer,) = answers
    assert answer.status_code == 429 and "has used its quota of 3" in answer.json()["detail"], answer.text
    assert {r.id for r in ledger.of_team("Delta")} == {r.id for r in filled}  # no row of its own
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(image_id)  # nor an image: the refused pull was removed
    with pytest.raises(docker.errors.ImageNotFound):
        docker_client.images.get(f"{service.registry}/teams/delta/refused@{digest}")


def _try(call):
    try:
        return call()
    except Exception as exc:  # noqa: BLE001 - the connection dies with the service
        return exc


@pytest.mark.parametrize(
    ("host", "public_url", "warned"),
    [
        ("127.0.0.1", None, False),
        ("::1", None, False),
        ("localhost", None, False),
        ("0.0.0.0", None, True),
        ("::", None, True),
        ("192.0.2.7", "http://competition.example", True),
        ("service.internal", None, True),
        ("0.0.0.0", "https://competition.example", False),
    ],
)
def test_plain_http_beyond_loopback_is_warned_about(host, public_url, warned):
    """`harness serve` says so when it listens beyond this machine with no TLS in front of it (a
    public_url that is https says a proxy terminates TLS)."""
    from harness.service.serve import plain_http_warning

    said = plain_http_warning(host, public_url)
    assert (said is not None) == warned
    if warned:
        assert said.startswith(f"harness serve: warning: listening on {host} over plain HTTP") and "TLS reverse proxy" in said


def test_a_team_cancels_its_queued_submission_which_is_never_evaluated_nor_charged(service, teams, pushed, docker_client):
    zeta, beta = service.add_team("Zeta"), teams["Beta"]
    reference = f"{service.registry}/teams/zeta/tiny:1"
    docker_client.images.get(pushed[0]).tag(reference)
    digest = push(docker_client, reference, zeta)
    harness(service.home, "service", "pause", "digits", "evaluation")  # both stay queued until the test resumes it
    time.sleep(1)  # a round the evaluator was starting has begun by now
    first, second = (submit(service, zeta, reference, digest, note).json()["id"] for note in ("cancel me", "keep me"))
    assert service.call("GET", "c/quota", zeta["token"]).json()["used"] == 2

    # another team's id is answered exactly as an unknown one, and changes nothing
    theirs = service.call("POST", f"c/submissions/{first}/cancel", beta["token"])
    unknown = service.call("POST", "c/submissions/sub-000000000000/cancel", beta["token"])
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json()["detail"].replace(first, "X") == unknown.json()["detail"].replace("sub-000000000000", "X")

    # the participant's command, through the service
    env = {**os.environ, "HARNESS_SERVER": service.url, "HARNESS_TOKEN": zeta["token"], "HARNESS_HOME": str(service.home / "zeta")}
    done = subprocess.run(
        [sys.executable, "-m", "harness.cli", "cancel", "digits", first, "--json"], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["state"] == "cancelled"
    assert service.call("GET", "c/quota", zeta["token"]).json()["used"] == 1  # refunded
    again = service.call("POST", f"c/submissions/{first}/cancel", zeta["token"])
    assert again.status_code == 409 and again.json()["detail"].startswith(f"{first} was cancelled at ")

    # a running one is refused, saying why (a round takes it: here the ledger's own transition, the evaluator being paused)
    ledger = Ledger(service.home, "digits")
    held = ledger.get(second)
    assert ledger.start(held)
    running = service.call("POST", f"c/submissions/{second}/cancel", zeta["token"])
    assert running.status_code == 409
    assert (
        running.json()["detail"]
        == f"{second} is running (between phases): only a queued submission can be cancelled; its verdict will stand"
    )
    ledger.requeue(held)

    harness(service.home, "service", "resume", "digits")
    assert wait_for(service, zeta, second, ("evaluated",))["verdict"] == "RUNTIME_ERROR"
    listed = {s["id"]: s["state"] for s in service.call("GET", "c/submissions", zeta["token"]).json()["submissions"]}
    assert listed == {first: "cancelled", second: "evaluated"}
    cancelled = ledger.get(first)
    assert (cancelled.state, cancelled.evaluations, cancelled.charged) == (WITHDRAWN, [], False)  # never evaluated, not charged
    assert service.call("GET", "c/quota", zeta["token"]).json()["used"] == 1
