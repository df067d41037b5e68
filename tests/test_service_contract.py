"""The API's contract tells the truth (issue 22): the real service's ``/openapi.json`` declares
every status each operation can answer, every error with the one body ``{"detail": str}`` (422
included: FastAPI's validation-error array is not in the document), the kit as ``application/gzip``,
and ``Retry-After`` on 429; and a property-based fuzzer (schemathesis, driven by that document)
sends bounded generated requests, as a team, to the real ``harness serve`` under uvicorn on
loopback and finds no server error, no undocumented status and no body outside its schema.

The service is the worker's shared one (tests/conftest.py): the fuzzer's failed sign-ins throttle
its address for its short failure window, which the next module it is lent to waits out."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import jsonschema
import pytest
import requests

from harness import __version__
from harness.service.api import ROUTERS
from harness.service.auth import bearer_team
from tests.service_helpers import harness

C = "/api/v1/competitions/{c}"
ERROR = {"$ref": "#/components/schemas/ErrorBody"}
# Every operation and every status its code can answer (the middleware's 413 on all of them; a
# team's token: 401, and 429 once the address failed too often; {c} not served: 404; see the
# routes and harness/service/submit.py, views.py, auth.py for the rest).
EXPECTED = {
    ("get", "/api/v1/health"): {200, 413},
    ("get", "/api/v1/whoami"): {200, 401, 413, 429},
    ("get", "/api/v1/registry/token"): {200, 400, 401, 413, 429, 503},
    ("get", f"{C}/leaderboard"): {200, 401, 404, 413, 429},
    ("get", f"{C}/kit"): {200, 401, 404, 413, 429},
    ("get", f"{C}/quota"): {200, 401, 404, 413, 429},
    ("get", f"{C}/selection"): {200, 401, 404, 413, 429},
    ("put", f"{C}/selection"): {200, 401, 404, 409, 413, 422, 429},
    ("get", f"{C}/submissions"): {200, 401, 404, 413, 429},
    ("post", f"{C}/submissions"): {201, 401, 403, 404, 409, 413, 422, 429, 503},
    ("get", f"{C}/submissions/{{submission_id}}"): {200, 401, 404, 413, 429},
    ("post", f"{C}/submissions/{{submission_id}}/cancel"): {200, 401, 404, 409, 413, 429},
    ("get", f"{C}/submissions/{{submission_id}}/logs"): {200, 401, 404, 413, 422, 429},
}
# Where the API's statuses are raised (``ServiceError(N``, ``not_found``): each must be in EXPECTED.
SOURCES = [
    "harness/service/api",
    "harness/service/submit.py",
    "harness/service/views.py",
    "harness/service/auth.py",
    "harness/service/context.py",
]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def service(shared_service):
    return shared_service


@pytest.fixture(scope="module")
def team(service):
    return service.add_team("Fuzz")


@pytest.fixture(scope="module")
def document(service):
    answer = requests.get(f"{service.url}/openapi.json", timeout=60)
    assert answer.status_code == 200
    return answer.json()


def operations(document):
    return {(method, path): operation for path, methods in document["paths"].items() for method, operation in methods.items()}


def test_the_document_declares_exactly_the_statuses_each_operation_answers(document):
    assert document["info"]["version"] == __version__  # the harness that answers, not FastAPI's default
    declared = {key: {int(status) for status in operation["responses"]} for key, operation in operations(document).items()}
    assert declared == EXPECTED


def test_every_error_is_the_one_error_model_and_fastapis_validation_array_is_gone(document):
    assert document["components"]["schemas"]["ErrorBody"] == {
        "properties": {"detail": {"type": "string", "title": "Detail", "description": "one line a person can act on"}},
        "type": "object",
        "required": ["detail"],
        "title": "ErrorBody",
        "description": "Every error's body, a malformed request's (422) included.",
    }
    assert "ValidationError" not in str(document)  # neither HTTPValidationError nor its items, anywhere
    for (method, path), operation in operations(document).items():
        for status, answer in operation["responses"].items():
            if int(status) >= 400:
                assert answer["content"] == {"application/json": {"schema": ERROR}}, (method, path, status)
                assert answer["description"], (method, path, status)


def test_every_team_operation_documents_401_and_429_with_their_headers(document, service):
    team_routes = {
        (method.lower(), route.path)
        for router in ROUTERS
        for route in router.routes
        for method in route.methods
        if any(dependency.call is bearer_team for dependency in route.dependant.dependencies)
    }
    assert len(team_routes) == 10  # every API route but health, the leaderboard (token optional) and the registry's issuer
    documented = operations(document)
    for key in team_routes | {("get", f"{C}/leaderboard"), ("get", "/api/v1/registry/token")}:
        responses = documented[key]["responses"]
        assert {"401", "429"} <= set(responses), key
        assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True, key
        retry = responses["429"]["headers"]["Retry-After"]
        assert retry["schema"] == {"type": "integer", "minimum": 1}, key
        # the failure limiter's 429 always says when; only submit's quota 429 may not
        assert retry["required"] is (key != ("post", f"{C}/submissions")), key
    for key in team_routes:
        assert documented[key]["security"] == [{"team": []}], key
    assert documented[("get", f"{C}/leaderboard")]["security"] == [{}, {"team": []}]
    assert document["components"]["securitySchemes"]["team"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "a team's token (`harness teams add` prints it)",
    }


def test_the_kit_is_declared_as_gzip_and_is_gzip(document, service, team):
    declared = operations(document)[("get", f"{C}/kit")]["responses"]["200"]["content"]
    assert declared == {"application/gzip": {"schema": {"type": "string", "format": "binary"}}}
    kit = service.call("GET", "c/kit", team["token"])
    assert kit.status_code == 200 and kit.headers["content-type"] == "application/gzip"
    assert kit.content[:2] == b"\x1f\x8b"


def test_every_status_the_code_raises_is_declared_somewhere():
    """A new ``ServiceError(418, ...)`` in the API's code without a declaration fails here."""
    raised = set()
    for source in SOURCES:
        for path in [ROOT / source] if source.endswith(".py") else sorted((ROOT / source).glob("*.py")):
            text = path.read_text()
            raised |= {int(status) for status in re.findall(r"ServiceError\(\s*(\d{3})", text)}
            raised |= {404} if "not_found(" in text else set()
    assert raised  # the scan found the raises
    assert raised <= set().union(*EXPECTED.values())


def answered(service, document, method, path, status, **kwargs):
    """A real answer, checked against the document: its status is declared for the operation, its
    body validates against the declared schema, each required header is there."""
    template = next(
        key for key in operations(document) if key[0] == method and re.fullmatch(re.sub(r"\{[^}]+\}", "[^/]+", key[1]), path.split("?")[0])
    )
    answer = requests.request(method, service.url + path, timeout=120, **kwargs)
    assert answer.status_code == status, (method, path, answer.status_code, answer.text)
    declared = operations(document)[template]["responses"][str(status)]
    schema = declared["content"]["application/json"]["schema"]
    jsonschema.validate(answer.json(), {**schema, "components": document["components"]})
    for name, header in declared.get("headers", {}).items():
        assert not header["required"] or name in answer.headers, (method, path, status, name)
    return answer


def test_real_errors_are_what_the_document_declares(service, document, team):
    """One real request for each error the fuzzer may not reach, each checked against the document."""
    bearer = {"Authorization": f"Bearer {team['token']}"}
    digits = "/api/v1/competitions/digits"
    answered(service, document, "get", "/api/v1/whoami", 401)
    answered(service, document, "get", "/api/v1/competitions/other/quota", 404, headers=bearer)
    answered(service, document, "get", "/api/v1/health", 413, data=b"x" * (64 * 1024 + 1))
    malformed = answered(
        service, document, "put", f"{digits}/selection", 422, headers={**bearer, "Content-Type": "application/json"}, data=b"{"
    )
    assert malformed.json()["detail"].startswith("the request body is not valid JSON")
    answered(service, document, "put", f"{digits}/selection", 422, headers=bearer, json={"submissions": "not a list"})
    # bodies json.loads raises on with something else than a JSON error (FastAPI's own answer: 400, with its own text)
    for body, why in ((b"9\xff", "it is not UTF-8 text"), (b"[" * 50_000, "it nests too deeply")):
        unparsed = answered(
            service, document, "put", f"{digits}/selection", 422, headers={**bearer, "Content-Type": "application/json"}, data=body
        )
        assert unparsed.json() == {"detail": f"the request body is not valid JSON ({why})"}
    answered(service, document, "get", f"{digits}/submissions/none/logs?since=" + "9" * 65, 422, headers=bearer)
    answered(service, document, "get", f"{digits}/submissions/none/logs?phase=smoke", 422, headers=bearer)
    foreign = {"image": "elsewhere/teams/other/x:1", "digest": "sha256:" + "0" * 64}
    answered(service, document, "post", f"{digits}/submissions", 403, headers=bearer, json=foreign)
    answered(service, document, "get", "/api/v1/registry/token?service=other", 400)
    harness(service.home, "service", "pause", "digits", "intake")
    try:
        answered(service, document, "post", f"{digits}/submissions", 503, headers=bearer, json=foreign)
    finally:
        harness(service.home, "service", "resume", "digits", "intake")
    basic = {"Authorization": "Basic " + base64.b64encode(f"{team['id']}:{team['token']}".encode()).decode()}
    answered(service, document, "get", "/api/v1/registry/token?service=harness-registry", 200, headers=basic)
    for _ in range(12):  # past the failure limit (10): then 429 with Retry-After, and a valid token still answered
        last = requests.get(f"{service.url}/api/v1/whoami", headers={"Authorization": "Bearer wrong"}, timeout=60)
    assert last.status_code == 429
    answered(service, document, "get", "/api/v1/whoami", 429, headers={"Authorization": "Bearer wrong"})
    answered(service, document, "get", f"{digits}/quota", 200, headers=bearer)


FUZZ_EXAMPLES = 150  # generated requests in all, over every operation


@pytest.mark.timeout(600)  # a hang, not a speed: the run itself takes seconds
def test_a_fuzzer_driven_by_the_document_finds_no_server_error_and_no_undeclared_answer(service, team):
    """schemathesis reads the real service's /openapi.json and sends ``FUZZ_EXAMPLES`` generated
    requests (valid by the document, and invalid ones), mostly with the team's token, some with
    none or a wrong one (so 401, then the limiter's 429, come back too), to the competition the
    service runs or any other; each answer must be no 5xx, a status the operation declares, a
    declared content type, the declared headers, and a body the declared schema accepts."""
    import schemathesis
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import strategies as st
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    schema = schemathesis.openapi.from_url(f"{service.url}/openapi.json", timeout=60)
    modes = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]
    cases = st.one_of(
        *(schema.as_strategy(mode) for mode in modes),
        *(schema.include(path_regex="/competitions/").as_strategy(mode, path_parameters={"c": service.competition}) for mode in modes),
    )
    basic = base64.b64encode(f"{team['id']}:{team['token']}".encode()).decode()
    credentials = {"team": f"Bearer {team['token']}", "none": None, "wrong": "Bearer hx_team-000000000000_" + "A" * 43}
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_headers_conformance,
        response_schema_conformance,
    ]
    seen: dict[int, int] = {}

    @settings(
        max_examples=FUZZ_EXAMPLES,
        deadline=None,
        database=None,
        phases=[Phase.generate],  # no shrinking: the first failure is reported as found (its curl included)
        suppress_health_check=list(HealthCheck),
    )
    @given(case=cases, who=st.sampled_from(["team"] * 8 + ["none", "wrong"]))
    def fuzz(case, who):
        authorization = credentials[who]
        if authorization is not None and who == "team" and case.path == "/api/v1/registry/token":
            authorization = f"Basic {basic}"
        headers = {"Authorization": authorization} if authorization else {}
        response = case.call(base_url=service.url, headers=headers, timeout=120)
        seen[response.status_code] = seen.get(response.status_code, 0) + 1
        case.validate_response(response, checks=checks, headers=headers)

    fuzz()
    assert sum(seen.values()) >= FUZZ_EXAMPLES // 2, seen  # it did send requests
    # it reached past the door and was refused at it (401, or 429 once this address failed too often, here or before)
    assert {200, 404, 422} <= set(seen) and {401, 429} & set(seen), seen
