"""Text a submission or a webhook receiver wrote reaches the organizer's terminal and channels only as
data: `harness check` and `harness webhooks list` write its control characters out instead of acting
on them, and a webhook body never carries it (its message is the harness's own summary)."""

from __future__ import annotations

import json

import pytest
from test_record_schema import phase

from harness.cli import main
from harness.records.model import Phases, Submission
from harness.records.outbox import Outbox, notification
from harness.records.record import EvaluationRecord
from tests.service_helpers import harness

HOSTILE = "\x1b[2J\x1b]0;owned\x07"


@pytest.mark.docker
def test_check_writes_the_containers_control_characters_out(home, behave_image, capsys):
    assert main(["check", "digits", "--image", behave_image("ansicrash"), "competition.smoke.enabled=false"]) == 1
    out = capsys.readouterr().out
    assert "verdict: RUNTIME_ERROR" in out and "train exited with code 3" in out
    assert "\\x1b[2J\\x1b]0;owned\\x07\\x1b[31mharness: all clear" in out
    assert "\x1b" not in out and "\x07" not in out and "\r" not in out


def test_a_webhook_body_never_carries_what_the_submission_wrote():
    record = EvaluationRecord(
        evaluation_id="ev-test",
        competition="digits",
        submission=Submission(id="sub-0123456789ab", team="alpha", image="x/y@sha256:" + "1" * 64, image_digest="sha256:" + "2" * 64),
        verdict="RUNTIME_ERROR",
        failed_phase="train",
        message=f"train exited with code 3: {HOSTILE}token=hx_team-0_abc\nlast lines of its output:\n{HOSTILE}",
        phases=Phases.model_validate({"train": phase(verdict="RUNTIME_ERROR", exit_code=3)}),
        scores={},
        manifest={},
        created_at="2025-01-01T00:00:00.000Z",
    )
    body = notification(record, "verdict")
    assert body["message"] == "the train phase failed (exit code 3)"
    assert "owned" not in json.dumps(body) and "hx_team" not in json.dumps(body)
    timeout = EvaluationRecord(**{**record.__dict__, "verdict": "TIMEOUT", "failed_phase": "infer", "message": f"{HOSTILE} slow"})
    assert notification(timeout, "verdict")["message"] == "the infer phase ended TIMEOUT"
    refused = EvaluationRecord(
        **{**record.__dict__, "verdict": "INVALID_PREDICTIONS", "failed_phase": "score", "message": f"unknown ids: {HOSTILE}"}
    )
    assert notification(refused, "verdict")["message"] == "the predictions were refused when scored"


def test_webhooks_list_writes_a_receivers_control_characters_out(home, competition):
    from test_webhooks import a_record, hook, hooks_override

    from harness.records.outbox import webhooks
    from harness.records.sinks import OutboxSink

    comp = competition(hooks_override(hook("http://127.0.0.1:9/hook")))
    OutboxSink(comp, webhooks(comp)).evaluated(a_record(), home)
    (delivery,) = Outbox(home, "digits").all()
    Outbox(home, "digits").attempt_failed(delivery.id, f"HTTP 500: {HOSTILE}all good\r", None)
    out = harness(home, "webhooks", "list", "digits").stdout
    assert "last error: HTTP 500: \\x1b[2J\\x1b]0;owned\\x07all good\\x0d" in out and "\x1b" not in out
