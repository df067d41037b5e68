"""The registry package against the real thing: Debian's distribution registry 2.8 verifying our
tokens, the Docker engine fetching them from a token endpoint on loopback and pushing and pulling
through the docker SDK; and the scope rules, keys and JWTs on their own."""

from __future__ import annotations

import base64
import json
import os
import stat
import subprocess
from datetime import UTC, datetime, timedelta

import pytest
import requests
import yaml
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from registry_helpers import DockerRefused, build_tiny_image, free_port, pull_by_digest, push, remove_images, running_registry

from harness.registry import (
    SERVICE,
    Access,
    IssuerKey,
    NotInRegistry,
    RegistryClient,
    RegistryServer,
    RegistryUnavailable,
    grant,
    issue_token,
    parse_scopes,
    registry_binary,
    token_answer,
)
from harness.registry.lookup import host_architecture
from harness.util.errors import HarnessError

TEAM_A, TOKEN_A = "team-0123456789ab", "hx_team-0123456789ab_" + "a" * 43
TEAM_B, TOKEN_B = "team-ba9876543210", "hx_team-ba9876543210_" + "b" * 43
WORKER, WORKER_SECRET = "harness-worker", "worker-secret-" + "w" * 30
CREDENTIALS = {TEAM_A: (TOKEN_A, "teams/team-a"), TEAM_B: (TOKEN_B, "teams/team-b"), WORKER: (WORKER_SECRET, None)}
AUTH_A = {"username": TEAM_A, "password": TOKEN_A}
AUTH_B = {"username": TEAM_B, "password": TOKEN_B}
AUTH_WORKER = {"username": WORKER, "password": WORKER_SECRET}
PAYLOAD_BYTES = 256 * 1024

# A P-256 key and its libtrust key id, derived outside Python:
#   openssl pkey -in key.pem -pubout -outform DER | sha256sum | cut -c1-60 | xxd -r -p | base32 | tr -d = | sed 's/..../&:/g'
VECTOR_KEY = b"""-----BEGIN PRIVATE KEY-----
MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQgClCDnvdnE6XB1Pc+
+ujrh/ZRVkie9oWvZJHaB3fR/L2hRANCAASC5wLlqw+f/q9akFlsrXvL9NjCyGS+
9NlVkX57YMKFkdOMNeAlnkKpH+YODmJAzUsIiWUfJVOX/X/GICJsudEy
-----END PRIVATE KEY-----
"""
VECTOR_KID = "UCKR:G47G:Q64R:K2RS:M5DG:WMSD:P6VS:2GY4:4K5Q:4C4C:AFVZ:SOLX"


def jwt_parts(token: str) -> tuple[dict, dict, bytes]:
    def decode(part: str) -> bytes:
        return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))

    header, claims, signature = token.split(".")
    return json.loads(decode(header)), json.loads(decode(claims)), decode(signature)


# --- keys -------------------------------------------------------------------------------------


def test_kid_matches_a_vector_computed_with_openssl(tmp_path):
    (tmp_path / "key.pem").write_bytes(VECTOR_KEY)
    assert IssuerKey.load_or_create(tmp_path).kid == VECTOR_KID


def test_key_is_made_private_once_and_reused(tmp_path):
    first = IssuerKey.load_or_create(tmp_path / "auth")
    key_file = tmp_path / "auth" / "key.pem"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    first.cert_path.unlink()  # derived from the key: rewritten, same key id
    again = IssuerKey.load_or_create(tmp_path / "auth")
    assert again.kid == first.kid and again.cert_path.exists()
    out = subprocess.run(["openssl", "x509", "-in", str(again.cert_path), "-noout", "-pubkey"], capture_output=True, check=True).stdout
    public = serialization.load_pem_public_key(out)
    assert public == first.private_key.public_key()


def test_a_certificate_for_another_key_is_replaced(tmp_path):
    other = IssuerKey.load_or_create(tmp_path / "other")
    mine = IssuerKey.load_or_create(tmp_path / "mine")
    (tmp_path / "mine" / "cert.pem").write_bytes(other.cert_path.read_bytes())
    reloaded = IssuerKey.load_or_create(tmp_path / "mine")
    assert reloaded.cert_path.read_bytes() != other.cert_path.read_bytes() and reloaded.kid == mine.kid


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"-----BEGIN PRIVATE KEY-----\nnot base64 at all\n-----END PRIVATE KEY-----\n", "is damaged"),
        (b"", "is damaged"),
        (VECTOR_KEY[:120], "is damaged"),
        (
            rsa.generate_private_key(public_exponent=65537, key_size=2048).private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
            "not an EC P-256 key",
        ),
    ],
    ids=["garbage", "empty", "truncated", "rsa"],
)
def test_a_damaged_key_is_refused_and_kept(tmp_path, content, message):
    (tmp_path / "key.pem").write_bytes(content)
    with pytest.raises(HarnessError, match=message) as caught:
        IssuerKey.load_or_create(tmp_path)
    assert str(tmp_path / "key.pem") in str(caught.value)
    assert (tmp_path / "key.pem").read_bytes() == content  # never overwritten: tokens issued with it stay explainable


# --- scopes -----------------------------------------------------------------------------------


def test_parse_scopes_reads_types_classes_and_actions_and_drops_malformed():
    parsed = parse_scopes(
        [
            "repository:teams/team-a/img:push,pull",
            "repository(plugin):teams/team-a/plug:pull",
            "registry:catalog:*",
            "repository:teams/team-a/img:pull,pull",
            "repository:teams/team-a/img",  # no actions
            "repository::pull",  # no name
            "Repository:teams/team-a/img:pull",  # type outside the grammar
            "repository:teams/team-a/img:pull,",  # an empty action
            "repository:teams/team-a/img:PUSH",
            "",
        ]
    )
    assert parsed == [
        Access("repository", "teams/team-a/img", ("push", "pull")),
        Access("repository(plugin)", "teams/team-a/plug", ("pull",)),
        Access("registry", "catalog", ("*",)),
        Access("repository", "teams/team-a/img", ("pull",)),
    ]


def test_a_name_with_a_colon_is_read_whole_and_granted_nothing():
    (access,) = parse_scopes(["repository:127.0.0.1:5050/teams/team-a/img:push,pull"])
    assert access.name == "127.0.0.1:5050/teams/team-a/img"
    assert grant([access], "teams/team-a")[0].actions == ()


def actions_for(name: str, namespace: str | None, actions=("push", "pull"), kind="repository") -> tuple[str, ...]:
    (granted,) = grant([Access(kind, name, actions)], namespace)
    assert (granted.type, granted.name) == (kind, name)
    return granted.actions


def test_a_team_gets_push_and_pull_under_its_namespace_only():
    assert actions_for("teams/team-a/img", "teams/team-a") == ("push", "pull")
    assert actions_for("teams/team-a/deep/er/img", "teams/team-a") == ("push", "pull")
    assert actions_for("teams/team-a/img", "teams/team-a", ("pull",)) == ("pull",)
    assert actions_for("teams/team-a/img", "teams/team-a", ("delete", "*", "push")) == ("push",)


@pytest.mark.parametrize(
    "name",
    [
        "teams/team-a",  # the namespace itself is not strictly under it
        "teams/team-a-evil/img",
        "teams/team-aa/img",
        "teams/team-b/img",
        "teams/team-a/../team-b/img",
        "teams/team-a/./img",
        "teams/team-a//img",
        "teams/team-a/img/",
        "/teams/team-a/img",
        "teams/team-a/Img",
        "teams/team-a/img%2f..",
        "teams/team-a/img\n",
        "teams/team-a/-img",
        "teams/team-a/img_",
        "teams/team-a/i..g",
        "teams/team-a/" + "x" * 250,
        "other/teams/team-a/img",
    ],
)
def test_a_team_gets_nothing_outside_its_namespace_or_the_grammar(name):
    assert actions_for(name, "teams/team-a") == ()


def test_separators_of_the_grammar_pass():
    for name in ("teams/team-a/my.img", "teams/team-a/my_img", "teams/team-a/my__img", "teams/team-a/my--img", "teams/team-a/1"):
        assert actions_for(name, "teams/team-a") == ("push", "pull"), name


def test_catalog_and_other_types_are_never_granted():
    for namespace in ("teams/team-a", None):
        assert actions_for("catalog", namespace, ("*",), kind="registry") == ()
        assert actions_for("teams/team-a/img", namespace, ("pull",), kind="repository(plugin)") == ()


def test_workers_pull_everything_and_push_nothing():
    assert actions_for("teams/team-a/img", None) == ("pull",)
    assert actions_for("teams/team-b/x/y", None, ("push",)) == ()
    assert actions_for("teams/team-a/../x", None, ("pull",)) == ()


def test_an_invalid_namespace_is_refused():
    with pytest.raises(HarnessError, match="namespace"):
        grant([Access("repository", "teams/x/img", ("pull",))], "teams/../x")


# --- tokens -----------------------------------------------------------------------------------


def test_issue_token_is_an_es256_jwt_with_a_raw_signature(tmp_path):
    key = IssuerKey.load_or_create(tmp_path)
    now = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
    access = [Access("repository", "teams/team-a/img", ("push", "pull"))]
    token = issue_token(key, subject=TEAM_A, audience=SERVICE, access=access, ttl_s=120, now=now)
    header, claims, signature = jwt_parts(token)
    assert header == {"typ": "JWT", "alg": "ES256", "kid": key.kid}
    assert {k: claims[k] for k in ("iss", "sub", "aud", "iat", "nbf", "exp")} == {
        "iss": "harness",
        "sub": TEAM_A,
        "aud": SERVICE,
        "iat": int(now.timestamp()),
        "nbf": int(now.timestamp()),
        "exp": int(now.timestamp()) + 120,
    }
    assert claims["access"] == [{"type": "repository", "name": "teams/team-a/img", "actions": ["push", "pull"]}]
    assert len(signature) == 64
    der = encode_dss_signature(int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big"))
    key.private_key.public_key().verify(der, token.rsplit(".", 1)[0].encode(), ec.ECDSA(hashes.SHA256()))
    assert jwt_parts(issue_token(key, subject=TEAM_A, audience=SERVICE, access=access, now=now))[1]["jti"] != claims["jti"]


def test_token_answer_grants_by_namespace(tmp_path):
    key = IssuerKey.load_or_create(tmp_path)
    before = datetime.now(UTC).replace(microsecond=0)
    answer = token_answer(
        key,
        service=SERVICE,
        scopes=["repository:teams/team-b/img:push,pull", "repository:teams/team-a/img:pull"],
        namespace="teams/team-a",
        subject=TEAM_A,
    )
    assert answer["token"] == answer["access_token"] and answer["expires_in"] == 60
    issued = datetime.fromisoformat(answer["issued_at"].replace("Z", "+00:00"))
    assert before <= issued <= datetime.now(UTC)  # issued now, by this clock
    claims = jwt_parts(answer["token"])[1]
    assert claims["exp"] - claims["iat"] == 60  # a revoked team's registry token outlives it by a minute at most
    assert claims["access"] == [
        {"type": "repository", "name": "teams/team-b/img", "actions": []},
        {"type": "repository", "name": "teams/team-a/img", "actions": ["pull"]},
    ]


# --- the registry process ---------------------------------------------------------------------


def test_the_registry_configuration(tmp_path):
    key = IssuerKey.load_or_create(tmp_path / "registry-auth")
    server = RegistryServer(tmp_path, realm="http://127.0.0.1:9/api/v1/registry/token", key=key, port=free_port())
    with server:
        assert stat.S_IMODE(server.config_path.stat().st_mode) == 0o600  # it holds the http secret
        config = yaml.safe_load(server.config_path.read_text())
        assert config["auth"] == {
            "token": {"realm": server.realm, "service": SERVICE, "issuer": "harness", "rootcertbundle": str(key.cert_path)}
        }
        assert config["http"]["addr"] == server.address and "debug" not in config["http"]
        assert config["storage"]["filesystem"]["rootdirectory"] == str(tmp_path / "registry")
        assert config["storage"]["delete"] == {"enabled": True}
        answer = requests.get(f"http://{server.address}/v2/", timeout=5)
        assert answer.status_code == 401
        assert f'realm="{server.realm}"' in answer.headers["WWW-Authenticate"]
        assert f'service="{SERVICE}"' in answer.headers["WWW-Authenticate"]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://{server.address}/v2/", timeout=5)


def test_environment_cannot_override_the_configuration(tmp_path, monkeypatch):
    monkeypatch.setenv("REGISTRY_AUTH", "")  # would switch token authentication off
    monkeypatch.setenv("REGISTRY_HTTP_ADDR", "127.0.0.1:1")
    key = IssuerKey.load_or_create(tmp_path / "registry-auth")
    with RegistryServer(tmp_path, realm="http://127.0.0.1:9/token", key=key, port=free_port()) as server:
        assert requests.get(f"http://{server.address}/v2/", timeout=5).status_code == 401


def test_a_port_in_use_is_a_clear_error(tmp_path):
    key = IssuerKey.load_or_create(tmp_path / "registry-auth")
    with RegistryServer(tmp_path / "first", realm="http://127.0.0.1:9/token", key=key, port=free_port()) as first:
        second = RegistryServer(tmp_path / "second", realm="http://127.0.0.1:9/token", key=key, port=first.port)
        with pytest.raises(HarnessError, match=f"cannot listen on {first.address}.*another registry port"):
            second.start()


def test_a_registry_that_fails_to_start_shows_its_log(tmp_path):
    key = IssuerKey.load_or_create(tmp_path / "registry-auth")
    key.cert_path.write_text("not a certificate\n")
    server = RegistryServer(tmp_path, realm="http://127.0.0.1:9/token", key=key, port=free_port())
    with pytest.raises(HarnessError, match=r"exited at start.*registry\.log says:\npanic: unable to configure authorization.*certificate$"):
        server.start()


def test_a_missing_registry_binary_says_how_to_install_it(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(HarnessError, match="scripts/setup.sh.*apt-get install docker-registry"):
        registry_binary()


# --- against the real registry and engine ------------------------------------------------------


@pytest.fixture(scope="module")
def registry(tmp_path_factory):
    with running_registry(tmp_path_factory.mktemp("service") / "digits", CREDENTIALS) as running:
        yield running


@pytest.fixture(scope="module")
def left_in_engine(docker_client):
    references: list[str] = []
    yield references
    remove_images(docker_client, references)


def build_and_push(
    docker_client, registry, left_in_engine, tmp_path_factory, repository: str, auth: dict, tag="v1"
) -> tuple[str, str, str]:
    """Build a tiny image with an incompressible payload as ``<registry>/<repository>:<tag>`` and
    push it with ``auth``: (reference, digest, image id)."""
    reference = f"{registry.address}/{repository}"
    image_id = build_tiny_image(docker_client, f"{reference}:{tag}", os.urandom(PAYLOAD_BYTES), tmp_path_factory.mktemp("context"))
    left_in_engine.append(f"{reference}:{tag}")
    return reference, push(docker_client, reference, tag, auth), image_id


@pytest.fixture(scope="module")
def image_a(docker_client, registry, left_in_engine, tmp_path_factory):
    return build_and_push(docker_client, registry, left_in_engine, tmp_path_factory, "teams/team-a/img", AUTH_A)


@pytest.fixture(scope="module")
def image_b(docker_client, registry, left_in_engine, tmp_path_factory):
    return build_and_push(docker_client, registry, left_in_engine, tmp_path_factory, "teams/team-b/img", AUTH_B)


def bearer(registry, access: list[Access], **options) -> dict[str, str]:
    options.setdefault("audience", SERVICE)
    options.setdefault("key", registry.key)
    return {"Authorization": f"Bearer {issue_token(subject=TEAM_A, access=access, **options)}"}


def get_manifest(registry, repository: str, digest: str, headers: dict[str, str]) -> requests.Response:
    accept = "application/vnd.docker.distribution.manifest.v2+json"
    return requests.get(f"http://{registry.address}/v2/{repository}/manifests/{digest}", headers={**headers, "Accept": accept}, timeout=10)


def test_a_team_pushes_into_its_namespace_and_the_digest_comes_back(registry, image_a, docker_client):
    reference, digest, image_id = image_a
    assert digest.startswith("sha256:") and len(digest) == 71
    assert docker_client.images.get(f"{reference}:v1").attrs["RepoDigests"] == [f"{reference}@{digest}"]
    assert registry.tokens.requests > 0  # the engine came to our realm for its token


def test_manifest_lookup_gives_the_digest_config_and_size(registry, image_a):
    reference, digest, image_id = image_a
    manifest = RegistryClient(registry.address, registry.key).manifest("teams/team-a/img", digest)
    assert manifest.digest == digest
    assert manifest.media_type == "application/vnd.docker.distribution.manifest.v2+json"
    assert manifest.config_digest == image_id  # the engine's image id is its config's digest
    assert PAYLOAD_BYTES < manifest.size_bytes < PAYLOAD_BYTES + 4096  # random bytes do not compress


def test_a_team_cannot_push_into_another_namespace(docker_client, registry, left_in_engine, tmp_path_factory):
    with pytest.raises(DockerRefused, match="denied"):
        build_and_push(docker_client, registry, left_in_engine, tmp_path_factory, "teams/team-b/stolen", AUTH_A)
    with pytest.raises(DockerRefused, match="denied"):
        build_and_push(docker_client, registry, left_in_engine, tmp_path_factory, "teams/team-a-evil/img", AUTH_A)
    with pytest.raises(NotInRegistry):
        RegistryClient(registry.address, registry.key).manifest("teams/team-b/stolen", "sha256:" + "0" * 64)


def test_a_team_cannot_pull_another_teams_image(docker_client, registry, image_b):
    reference, digest, _ = image_b
    with pytest.raises(DockerRefused, match="denied|unauthorized"):
        pull_by_digest(docker_client, reference, digest, AUTH_A)
    assert (
        get_manifest(registry, "teams/team-b/img", digest, bearer(registry, [Access("repository", "teams/team-b/img", ())])).status_code
        == 401
    )


def test_a_wrong_password_is_refused(docker_client, registry, image_a):
    reference, digest, _ = image_a
    refused = registry.tokens.refused
    with pytest.raises(DockerRefused):
        push(docker_client, reference, "v1", {"username": TEAM_A, "password": TOKEN_B})
    with pytest.raises(DockerRefused):
        pull_by_digest(docker_client, reference, digest, {"username": TEAM_A, "password": TOKEN_A + "x"})
    assert registry.tokens.refused >= refused + 2


def test_the_worker_pulls_any_repository_by_digest_but_cannot_push(docker_client, registry, image_a, image_b, left_in_engine):
    for reference, digest, image_id in (image_a, image_b):
        remove_images(docker_client, [f"{reference}:v1", f"{reference}@{digest}"])
        pull_by_digest(docker_client, reference, digest, AUTH_WORKER)
        left_in_engine.append(f"{reference}@{digest}")
        assert docker_client.images.get(f"{reference}@{digest}").id == image_id
        docker_client.images.get(image_id).tag(reference, "v1")
    with pytest.raises(DockerRefused, match="denied"):
        push(docker_client, image_a[0], "v1", AUTH_WORKER)


def test_the_catalog_is_denied_to_teams_and_workers(registry, image_a):
    catalog = f"http://{registry.address}/v2/_catalog"
    challenge = requests.get(catalog, timeout=5)
    assert challenge.status_code == 401 and 'scope="registry:catalog:*"' in challenge.headers["WWW-Authenticate"]
    for username, password in ((TEAM_A, TOKEN_A), (WORKER, WORKER_SECRET)):
        answer = requests.get(
            registry.tokens.realm, params={"service": SERVICE, "scope": "registry:catalog:*"}, auth=(username, password), timeout=5
        )
        assert answer.status_code == 200
        assert jwt_parts(answer.json()["token"])[1]["access"] == [{"type": "registry", "name": "catalog", "actions": []}]
        refused = requests.get(catalog, headers={"Authorization": f"Bearer {answer.json()['token']}"}, timeout=5)
        assert refused.status_code == 401 and "teams/" not in refused.text


def test_the_registry_refuses_expired_foreign_and_misaddressed_tokens(registry, image_a, tmp_path):
    _, digest, _ = image_a
    pull = [Access("repository", "teams/team-a/img", ("pull",))]
    assert get_manifest(registry, "teams/team-a/img", digest, bearer(registry, pull)).status_code == 200  # the control
    an_hour_ago = datetime.now(UTC) - timedelta(hours=1)
    assert get_manifest(registry, "teams/team-a/img", digest, bearer(registry, pull, now=an_hour_ago)).status_code == 401
    in_an_hour = datetime.now(UTC) + timedelta(hours=1)  # not valid before then
    assert get_manifest(registry, "teams/team-a/img", digest, bearer(registry, pull, now=in_an_hour)).status_code == 401
    assert get_manifest(registry, "teams/team-a/img", digest, bearer(registry, pull, audience="another-registry")).status_code == 401
    stranger = IssuerKey.load_or_create(tmp_path / "stranger")
    assert get_manifest(registry, "teams/team-a/img", digest, bearer(registry, pull, key=stranger)).status_code == 401
    forged = IssuerKey(private_key=stranger.private_key, cert_path=stranger.cert_path, kid=registry.key.kid)  # our kid, not our key
    assert get_manifest(registry, "teams/team-a/img", digest, bearer(registry, pull, key=forged)).status_code == 401


def test_an_index_is_sized_by_its_image_for_this_host(registry, image_a, docker_client, left_in_engine, tmp_path_factory):
    _, digest, image_id = image_a
    other_ref, other_digest, _ = build_and_push(
        docker_client, registry, left_in_engine, tmp_path_factory, "teams/team-a/img", AUTH_A, tag="other"
    )
    other = "s390x" if host_architecture() != "s390x" else "amd64"

    def entry(manifest_digest: str, arch: str) -> dict:
        size = len(
            get_manifest(
                registry, "teams/team-a/img", manifest_digest, bearer(registry, [Access("repository", "teams/team-a/img", ("pull",))])
            ).content
        )
        descriptor = {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": manifest_digest, "size": size}
        return {**descriptor, "platform": {"os": "linux", "architecture": arch}}

    media_type = "application/vnd.oci.image.index.v1+json"
    index = json.dumps(
        {"schemaVersion": 2, "mediaType": media_type, "manifests": [entry(other_digest, other), entry(digest, host_architecture())]}
    )
    put = requests.put(
        f"http://{registry.address}/v2/teams/team-a/img/manifests/multi",
        data=index,
        headers={**bearer(registry, [Access("repository", "teams/team-a/img", ("push", "pull"))]), "Content-Type": media_type},
        timeout=10,
    )
    assert put.status_code == 201, put.text
    index_digest = put.headers["Docker-Content-Digest"]
    manifest = RegistryClient(registry.address, registry.key).manifest("teams/team-a/img", index_digest)
    single = RegistryClient(registry.address, registry.key).manifest("teams/team-a/img", digest)
    assert (manifest.digest, manifest.media_type) == (index_digest, media_type)
    assert (manifest.size_bytes, manifest.config_digest) == (single.size_bytes, image_id)


def test_a_digest_never_pushed_is_not_in_the_registry(registry, image_a):
    never = "sha256:" + "ab" * 32
    with pytest.raises(NotInRegistry, match="push it first"):
        RegistryClient(registry.address, registry.key).manifest("teams/team-a/img", never)
    with pytest.raises(NotInRegistry, match="push it first"):
        RegistryClient(registry.address, registry.key).manifest("teams/team-a/never-pushed", image_a[1])


def test_a_client_with_another_key_is_told_the_registry_refuses_it(registry, image_a, tmp_path):
    stranger = IssuerKey.load_or_create(tmp_path)
    with pytest.raises(RegistryUnavailable, match="refuses the service's own token"):
        RegistryClient(registry.address, stranger).manifest("teams/team-a/img", image_a[1])


def test_a_registry_that_does_not_answer(tmp_path):
    key = IssuerKey.load_or_create(tmp_path)
    with pytest.raises(RegistryUnavailable, match="does not answer"):
        RegistryClient(f"127.0.0.1:{free_port()}", key).manifest("teams/team-a/img", "sha256:" + "0" * 64)


@pytest.mark.parametrize(
    ("repository", "digest", "message"),
    [
        ("teams/team-a/img", "sha256:" + "A" * 64, "not an image digest"),
        ("teams/team-a/img", "sha256:" + "0" * 63, "not an image digest"),
        ("teams/team-a/img", "sha512:" + "0" * 64, "not an image digest"),
        ("teams/team-a/img", "latest", "not an image digest"),
        ("teams/team-a/../b", "sha256:" + "0" * 64, "not a repository name"),
        ("Teams/x", "sha256:" + "0" * 64, "not a repository name"),
    ],
)
def test_lookups_are_validated_before_any_request(tmp_path, repository, digest, message):
    key = IssuerKey.load_or_create(tmp_path)
    with pytest.raises(HarnessError, match=message) as caught:
        RegistryClient(f"127.0.0.1:{free_port()}", key).manifest(repository, digest)  # nothing listens: a request would say so
    assert not isinstance(caught.value, RegistryUnavailable)
