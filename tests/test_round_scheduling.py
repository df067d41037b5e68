"""Who runs next (per-team fairness) and what a round reports while it runs; no Ray, no containers."""

from __future__ import annotations

import io
from collections import Counter

from harness.rounds.progress import Progress, duration, summary_table
from harness.runner.fair_queue import FairQueue


def drain(queue: FairQueue[str], slots: int) -> list[str]:
    """The order items start in when ``slots`` run at once and they finish in the order they started."""
    running: Counter[str] = Counter()
    started: list[tuple[str, str]] = []
    order = []
    while len(queue) or started:
        while len(started) < slots and (group := queue.next_group(running)) is not None:
            started.append((group, queue.pop(group)))
            running[group] += 1
            order.append(started[-1][1])
        group, _ = started.pop(0)
        running[group] -= 1
    return order


def test_one_teams_many_submissions_do_not_starve_the_others():
    queue: FairQueue[str] = FairQueue()
    for i in range(50):
        queue.push("greedy", f"greedy-{i}")
    queue.push("late", "late-0")
    queue.push("later", "later-0")
    order = drain(queue, slots=2)
    assert order[:4] == ["greedy-0", "late-0", "greedy-1", "later-0"]
    assert order[4:] == [f"greedy-{i}" for i in range(2, 50)]


def test_teams_take_turns_and_follow_ups_go_first_within_a_team():
    queue: FairQueue[str] = FairQueue()
    for i in range(3):
        queue.push("a", f"a-train-{i}")
        queue.push("b", f"b-train-{i}")
    assert drain(queue, slots=1) == ["a-train-0", "b-train-0", "a-train-1", "b-train-1", "a-train-2", "b-train-2"]
    queue.push("b", "b-train-3")
    queue.push("a", "a-train-3")
    queue.push("a", "a-infer-0", first=True)  # a follow-up: before every other item, its team's and others'
    assert queue.next_group({}) == "a" and queue.pop("a") == "a-infer-0"
    assert queue.next_group({}) == "b" and list(queue) == ["b-train-3", "a-train-3"]


def test_progress_line_counts_and_eta():
    now = [100.0]
    out = io.StringIO()
    progress = Progress(10, out, every_s=5, clock=lambda: now[0])
    assert progress.status(running=2) == "0/10 done, 2 running, 8 waiting | no verdicts yet | ETA unknown"
    now[0] = 120.0
    for verdict in ("SCORED", "SCORED", "TIMEOUT", "SCORED"):
        progress.finished(verdict)
    assert progress.status(running=2) == "4/10 done, 2 running, 4 waiting | 3 SCORED, 1 TIMEOUT | ETA 30s"
    progress.maybe_report(running=2)
    now[0] = 121.0
    progress.maybe_report(running=2)  # within 5 s of the last line: nothing
    assert out.getvalue().count("progress: ") == 1
    assert duration(59) == "59s" and duration(125) == "2m05s" and duration(7260) == "2h01m"


def test_summary_table():
    table = summary_table("round-x", 90.0, Counter(SCORED=45, TIMEOUT=3, RUNTIME_ERROR=2), retried=1, cancelled=0, left_pending=0)
    assert table.splitlines() == [
        "round-x: 50 evaluated in 1m30s (1.80 s per submission)",
        "  verdict        count",
        "  -------------  -----",
        "  SCORED            45",
        "  TIMEOUT            3",
        "  RUNTIME_ERROR      2",
        "  total             50",
        "  infrastructure retries: 1; cancelled: 0; left pending: 0",
    ]
