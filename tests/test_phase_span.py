"""A phase's start, end and wall time from the engine's stamps, which can be out of order: Docker stamps
the start once runc reports the process running, the end from the exit itself, so a process that ends
within that latency (a constant predictor under load) seems to end before it starts."""

from datetime import UTC, datetime

from harness.runner.docker_backend import _span


def test_the_engine_s_stamps_in_order_are_kept():
    state = {"StartedAt": "2026-12-07T05:36:51.100000123Z", "FinishedAt": "2026-12-07T05:36:53.600000456Z"}
    started, ended = _span(state, datetime(2026, 12, 7, 5, 36, 50, tzinfo=UTC))
    assert (ended - started).total_seconds() == 2.5 and started.isoformat() == "2026-12-07T05:36:51.100000+00:00"


def test_an_end_stamped_before_the_start_starts_at_the_harness_s_start_call():
    # measured in a suite run: a constant image's train, 0.085 s of CPU, "ended" 1.2 ms before it "started"
    state = {"StartedAt": "2026-12-07T05:36:51.502407Z", "FinishedAt": "2026-12-07T05:36:51.501237Z"}
    called = datetime(2026, 12, 7, 5, 36, 51, 380000, tzinfo=UTC)
    started, ended = _span(state, called)
    assert started == called and (ended - started).total_seconds() > 0


def test_a_container_that_never_started_has_no_span():
    assert _span({"StartedAt": "0001-01-01T00:00:00Z", "FinishedAt": "0001-01-01T00:00:00Z"}, None) == (None, None)
