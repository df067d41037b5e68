"""The memory and CPU series a phase's watch loop samples (a scripted reader; no container)."""

from __future__ import annotations

from harness.limits.telemetry import Telemetry


def test_series_sample_at_the_interval_skip_repeats_and_count_busy_cores():
    clock = [1000.0]
    readings = {
        1000.0: (1000.0, 100, 0.0),
        1000.5: (1000.0, 100, 0.0),  # a fallback reader that had nothing new
        1001.0: (1001.0, 300, 0.5),
        1001.5: None,
        1002.0: (1002.0, 200, 2.5),
    }
    asked = []

    def read():
        asked.append(clock[0])
        return readings[clock[0]]

    telemetry = Telemetry(read, interval=0.5, clock=lambda: clock[0])
    for _ in range(9):  # polled every 0.25 s: read every 0.5 s
        telemetry.poll()
        clock[0] += 0.25
    assert asked == [1000.0, 1000.5, 1001.0, 1001.5, 1002.0]
    assert telemetry.series() == {
        "memory_bytes": [(1000.0, 100.0), (1001.0, 300.0), (1002.0, 200.0)],
        "cpu_cores": [(1001.0, 0.5), (1002.0, 2.0)],
    }
    assert Telemetry(lambda: None).series() == {}
