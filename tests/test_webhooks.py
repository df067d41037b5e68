"""Webhooks: a round queues its verdicts in the outbox, the delivery worker POSTs them signed to a
real receiver on loopback, retries with growing delays, survives its own restart, and never holds
a round back; through the real service too. The receiver verifies signatures with its own code."""

from __future__ import annotations

import hashlib
import hmac
import json
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from omegaconf import OmegaConf

from harness.competition.config import load_settings
from harness.competition.core import Competition
from harness.competition.kit import participant_config
from harness.competition.schema import NotifyConfig
from harness.records.model import Phases, Submission
from harness.records.outbox import DELIVERED, FAILED, PENDING, Outbox, verdict_summary, webhooks
from harness.records.record import EvaluationRecord
from harness.records.sinks import OutboxSink
from harness.service.notify import Notifier
from harness.util.errors import ConfigError
from tests.service_helpers import Service, push, tiny_image

SECRET = "s3cret-for-the-test"
BODY_KEYS = {"event", "competition", "submission", "team", "verdict", "message", "public_score", "failed_phase", "evaluated_at"}


class Receiver:
    """A webhook receiver on 127.0.0.1: records each request, answers the statuses of ``answers`` in
    turn (then 200); while ``hold`` is clear, a request waits for it (at most 120 s)."""

    def __init__(self, answers: tuple = (), hold: threading.Event | None = None, location: str = "", port: int = 0) -> None:
        self.answers, self.hold, self.location = list(answers), hold, location
        self.requests: list[dict] = []
        self.in_flight, self.closed = 0, False
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.in_flight += 1
                if receiver.hold is not None:
                    receiver.hold.wait(120)
                receiver.in_flight -= 1
                receiver.requests.append({"at": time.monotonic(), "headers": dict(self.headers), "body": body, "path": self.path})
                status = receiver.answers.pop(0) if receiver.answers else 200
                self.send_response(status)
                if receiver.location:
                    self.send_header("Location", receiver.location)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"no" if status >= 300 else b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def close(self) -> None:
        if self.hold is not None:
            self.hold.set()
        if not self.closed:
            self.closed = True
            self.server.shutdown()
            self.server.server_close()


@pytest.fixture
def receiver():
    """``receiver(*statuses, hold=, location=, port=)``: a started Receiver, closed after the test."""
    made: list[Receiver] = []

    def make(*answers: int, hold: threading.Event | None = None, location: str = "", port: int = 0) -> Receiver:
        made.append(Receiver(answers, hold, location, port))
        return made[-1]

    yield make
    for r in made:
        r.close()


def verifies(secret: str, request: dict) -> bool:
    """What a receiver does (the organizer guide's snippet): HMAC-SHA256 of "<timestamp>.<body>"."""
    headers = request["headers"]
    expected = hmac.new(secret.encode(), headers["X-Harness-Timestamp"].encode() + b"." + request["body"], hashlib.sha256).hexdigest()
    return hmac.compare_digest(headers["X-Harness-Signature"], f"sha256={expected}")


def hook(url: str, env: str = "HOOK_SECRET", events: str = "") -> str:
    return f"{{url:'{url}',secret_env:{env}{f',events:[{events}]' if events else ''}}}"


def hooks_override(*hooks: str) -> str:
    return f"competition.webhooks=[{','.join(hooks)}]"


def notify_settings(**changes):
    return OmegaConf.merge(OmegaConf.structured(NotifyConfig), {"poll_s": 0.05, **changes})


def wait_until(condition, timeout: float = 60.0, what: str = "the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.05)
    raise AssertionError(f"{what} did not happen in {timeout:g} s")


def cli(home: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """``harness ARGS`` in this process (the command line's own ``main``, without a new interpreter's start-up)."""
    from test_round import in_process

    done = in_process(home, *args)
    if check:
        assert done.returncode == 0, f"harness {' '.join(args)} exited {done.returncode}: {done.stderr}"
    return done


def a_record(verdict: str = "SCORED") -> EvaluationRecord:
    return EvaluationRecord(
        evaluation_id="ev-test",
        competition="digits",
        submission=Submission(id="sub-0123456789ab", team="alpha", image="x/y@sha256:" + "1" * 64, image_digest="sha256:" + "2" * 64),
        verdict=verdict,
        failed_phase=None,
        message="scored",
        phases=Phases(),
        scores={"public": {"accuracy": 0.5}, "private": {"accuracy": 0.987654}},
        manifest={},
        created_at="2025-01-01T00:00:00.000Z",
    )


# --- configuration ----------------------------------------------------------------------------


def test_webhook_keys_their_defaults_and_the_refusals(home, tmp_path, monkeypatch):
    settings = load_settings(
        "digits", [hooks_override(hook("https://hooks.example/x"), hook("http://127.0.0.1:9/y", "OTHER", "verdict,rescore"))]
    )
    hooks = webhooks(Competition.load(settings, home))
    assert [(h.url, h.secret_env, h.events) for h in hooks] == [
        ("https://hooks.example/x", "HOOK_SECRET", ["verdict"]),
        ("http://127.0.0.1:9/y", "OTHER", ["verdict", "rescore"]),
    ]
    assert webhooks(Competition.load(load_settings("digits"), home)) == []
    assert "webhooks" not in participant_config(settings)["competition"]  # the organizer's receivers stay out of the kit
    refusals = {
        hooks_override(
            "{url:'https://h.example/x',secret_env:HOOK_SECRET,secret:abc}"
        ): "a webhook's secret is never written in the configuration",
        hooks_override(hook("ftp://h.example/x")): "must be an http:// or https:// URL, got 'ftp://h.example/x'",
        hooks_override(hook("https://h.example/x", "NOT-A-NAME")): "must be the NAME of an environment variable",
        hooks_override(hook("https://h.example/x", events="delivered")): "must be a list of: verdict, rescore",
        hooks_override("{secret_env:HOOK_SECRET}"): "competition.webhooks[0].url: missing",
    }
    for override, said in refusals.items():
        with pytest.raises(ConfigError) as refused:
            load_settings("digits", [override])
        assert said in str(refused.value), (override, str(refused.value))
    # the same mistake in an organizer's YAML file names the key and where the secret goes
    config = tmp_path / "config"
    (config / "competition").mkdir(parents=True)
    digits = Path(sys.modules["harness.configs"].__file__).parent / "competition" / "digits.yaml"
    text = digits.read_text().replace("name: digits", "name: hooked")
    (config / "competition" / "hooked.yaml").write_text(text + "webhooks:\n  - url: https://h.example/x\n    secret: abc\n")
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(config))
    with pytest.raises(ConfigError) as refused:
        load_settings("hooked")
    assert str(refused.value).startswith("competition.webhooks[].secret: a webhook's secret is never written")
    assert "secret_env: HOOK_SECRET" in str(refused.value)


# --- delivery ---------------------------------------------------------------------------------


def test_retried_with_growing_delays_then_delivered_signed_without_private_scores(home, competition, receiver):
    answering = receiver(500, 500)
    comp = competition(hooks_override(hook(answering.url)))
    sink = OutboxSink(comp, webhooks(comp))
    sink.evaluated(a_record(), home)
    sink.evaluated(a_record("INFRA_ERROR"), home)  # the organizer's failure: evaluated again, not a verdict
    sink.audited(a_record(), "audit-1", "pass", [])
    (row,) = Outbox(home, "digits").all()
    notifier = Notifier(Outbox(home, "digits"), notify_settings(first_retry_s=0.4), {"HOOK_SECRET": SECRET})
    notifier.start()
    try:
        wait_until(lambda: Outbox(home, "digits").get(row.id).state == DELIVERED, 30, "the delivery")
    finally:
        notifier.stop()
    first, second, third = answering.requests
    assert 0.35 <= second["at"] - first["at"] < third["at"] - second["at"]  # 0.4 s, then 0.8 s
    assert third["at"] - second["at"] >= 0.75
    assert {r["headers"]["X-Harness-Delivery"] for r in answering.requests} == {row.id}
    assert all(verifies(SECRET, r) for r in answering.requests)
    assert not verifies("another-secret", third)
    tampered = {**third, "body": third["body"].replace(b"0.5", b"0.9")}
    assert not verifies(SECRET, tampered)
    headers, body = third["headers"], json.loads(third["body"])
    assert headers["Content-Type"] == "application/json" and headers["X-Harness-Event"] == "verdict"
    assert abs(int(headers["X-Harness-Timestamp"]) - time.time()) < 30
    assert set(body) == BODY_KEYS and body["public_score"] == {"accuracy": 0.5} and body["verdict"] == "SCORED"
    assert body["submission"] == "sub-0123456789ab" and body["team"] == "alpha" and body["failed_phase"] is None
    assert b"private" not in third["body"] and b"0.987654" not in third["body"] and b"image" not in third["body"]
    stored = Outbox(home, "digits").get(row.id)
    assert (stored.attempts, stored.last_error) == (3, "")


def test_the_outbox_survives_a_restart_of_the_worker_and_failures_are_shown(home, competition, receiver):
    gone = receiver()
    port = gone.server.server_address[1]
    gone.close()  # nobody listens there now
    comp = competition(hooks_override(hook(f"http://127.0.0.1:{port}/hook")))
    sink = OutboxSink(comp, webhooks(comp))
    sink.evaluated(a_record(), home)
    first = Notifier(Outbox(home, "digits"), notify_settings(first_retry_s=0.2, max_attempts=2), {"HOOK_SECRET": SECRET})
    first.start()
    wait_until(lambda: Outbox(home, "digits").all(FAILED), 30, "the failure after 2 attempts")
    first.stop()  # the service stops
    (failed,) = Outbox(home, "digits").all()
    assert failed.attempts == 2 and "cannot reach" in failed.last_error
    (shown,) = json.loads(cli(home, "webhooks", "list", "digits", "--json").stdout)["deliveries"]
    assert shown["state"] == FAILED and shown["id"] == failed.id and shown["verdict"] == "SCORED" and shown["secret_env"] == "HOOK_SECRET"
    assert "cannot reach" in cli(home, "webhooks", "list", "digits").stdout
    # while no worker runs, a round queues another verdict; the organizer sends the failed one again
    sink.evaluated(a_record("RUNTIME_ERROR"), home)
    assert json.loads(cli(home, "webhooks", "retry", "digits", "--json").stdout) == {"retried": [failed.id]}
    assert {d.state for d in Outbox(home, "digits").all()} == {PENDING}
    assert "no failed deliveries" in cli(home, "webhooks", "retry", "digits").stderr
    unknown = cli(home, "webhooks", "retry", "digits", "dlv-nope", check=False)
    assert unknown.returncode == 2 and "no webhook delivery 'dlv-nope'" in unknown.stderr
    # the receiver is back, the service starts again: a new worker delivers what the outbox kept
    back = receiver(port=port)
    second = Notifier(Outbox(home, "digits"), notify_settings(first_retry_s=0.2), {"HOOK_SECRET": SECRET})
    second.start()
    try:
        wait_until(lambda: {d.state for d in Outbox(home, "digits").all()} == {DELIVERED}, 30, "both deliveries")
    finally:
        second.stop()
    assert sorted(json.loads(r["body"])["verdict"] for r in back.requests) == ["RUNTIME_ERROR", "SCORED"]
    delivered = cli(home, "webhooks", "retry", "digits", failed.id, check=False)
    assert delivered.returncode == 2 and "was delivered at" in delivered.stderr


def test_redirects_timeouts_and_a_missing_secret_are_failed_attempts(home, competition, receiver):
    elsewhere = receiver()
    redirecting = receiver(302, location=elsewhere.url)
    hanging = receiver(hold=threading.Event())
    comp = competition(hooks_override(hook(redirecting.url), hook(hanging.url), hook(elsewhere.url, "UNSET_SECRET")))
    OutboxSink(comp, webhooks(comp)).evaluated(a_record(), home)
    notifier = Notifier(Outbox(home, "digits"), notify_settings(timeout_s=0.5, max_attempts=1), {"HOOK_SECRET": SECRET})
    assert notifier.deliver_due() == 3
    errors = {d.url: d.last_error for d in Outbox(home, "digits").all(FAILED)}
    assert "HTTP 302 redirect" in errors[redirecting.url] and "redirects are not followed" in errors[redirecting.url]
    assert errors[hanging.url] == "no answer within 0.5 s"
    assert "UNSET_SECRET" in errors[elsewhere.url] and "not set in the service's environment" in errors[elsewhere.url]
    assert elsewhere.requests == []  # neither the redirect nor the delivery without its secret reached it


# --- a real round, the real service -----------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_a_round_is_not_held_by_a_hanging_receiver_and_its_verdicts_arrive(home, behave_image, receiver):
    released = threading.Event()
    holding = receiver(hold=released)
    ids = {}
    for team, behaviour in (("alpha", "constant"), ("beta", "crash")):
        done = cli(home, "submit", "digits", "--team", team, "--image", behave_image(behaviour))
        assert done.returncode == 0, done.stderr
        ids[done.stdout.strip()] = behaviour
    rescores_only = holding.url.replace("/hook", "/rescores")
    override = hooks_override(hook(holding.url), hook(rescores_only, events="rescore"))
    notifier = Notifier(Outbox(home, "digits"), notify_settings(timeout_s=120), {"HOOK_SECRET": SECRET})
    notifier.start()
    try:
        # without the smoke stage (what is held is the verdicts' delivery): two containers for "constant", not four
        done = cli(home, "round", "digits", override, "limits.train.wall_clock_s=60", "competition.smoke.enabled=false")
        # the round ended while the receiver still held the first delivery: nothing was answered yet
        wait_until(lambda: holding.in_flight == 1, 10, "the first delivery to be under way")
        assert holding.requests == []
        rows = Outbox(home, "digits").all()
        assert len(rows) == 2 and {r.url for r in rows} == {holding.url} and {r.event for r in rows} == {"verdict"}
        released.set()
        wait_until(lambda: {d.state for d in Outbox(home, "digits").all()} == {DELIVERED}, 60, "the deliveries")
    finally:
        released.set()
        notifier.stop()
    records = {r["submission"]["id"]: r for r in (json.loads(p.read_text()) for p in (home / "competitions/digits/records").glob("*.json"))}
    assert {r["path"] for r in holding.requests} == {"/hook"}
    for request in holding.requests:
        assert verifies(SECRET, request) and not verifies(SECRET + "x", request)
        body = json.loads(request["body"])
        record = records[body["submission"]]
        assert set(body) == BODY_KEYS and body["event"] == "verdict" and body["competition"] == "digits"
        assert (body["verdict"], body["message"], body["failed_phase"], body["team"]) == (
            record["verdict"],
            verdict_summary(EvaluationRecord.from_dict(record)),
            record["failed_phase"],
            record["submission"]["team"],
        )
        assert body["evaluated_at"] == record["created_at"]
        if ids[body["submission"]] == "constant":
            assert body["verdict"] == "SCORED" and body["public_score"] == record["scores"]["public"]
            assert b"private" not in request["body"] and "private" in record["scores"]
        else:
            assert body["verdict"] == "RUNTIME_ERROR" and body["failed_phase"] == "train" and body["public_score"] is None


@pytest.mark.docker
@pytest.mark.slow
def test_the_service_delivers_a_signed_verdict_and_retries_it(home, docker_client, receiver, monkeypatch):
    answering = receiver(500)
    monkeypatch.setenv("HOOK_SECRET", SECRET)  # the service's environment holds the secret; the config names it
    service = Service(home, overrides=(hooks_override(hook(answering.url)), "service.notify.first_retry_s=0.3"))
    service.start()
    try:
        team = service.add_team("Alpha")
        reference = f"{service.registry}/teams/alpha/tiny:1"
        tiny_image(docker_client, reference)
        digest = push(docker_client, reference, team)
        answer = service.call("POST", "c/submissions", team["token"], json={"image": reference, "digest": digest})
        assert answer.status_code == 201, answer.text
        sid = answer.json()["id"]
        wait_until(lambda: len(answering.requests) >= 2, 240, f"two attempts ({service.log})")
        view = service.call("GET", f"c/submissions/{sid}", team["token"]).json()
    finally:
        service.stop()
        service.kill()
    failed, delivered = answering.requests
    assert failed["headers"]["X-Harness-Delivery"] == delivered["headers"]["X-Harness-Delivery"]
    assert delivered["at"] - failed["at"] >= 0.25
    assert verifies(SECRET, failed) and verifies(SECRET, delivered) and not verifies("wrong", delivered)
    body = json.loads(delivered["body"])
    assert (body["submission"], body["team"], body["verdict"], body["failed_phase"], body["public_score"]) == (
        sid,
        "Alpha",
        "RUNTIME_ERROR",
        "train",
        None,
    )
    # it could not start, so no exit code: the summary names the phase and the verdict only
    assert body["message"] == "the train phase ended RUNTIME_ERROR" and view["verdict"] == "RUNTIME_ERROR"
    (row,) = Outbox(home, "digits").all()
    assert (row.state, row.attempts, row.id) == (DELIVERED, 2, delivered["headers"]["X-Harness-Delivery"])
