"""Live logs (issue 15 b): a running phase's bounded log can be followed.

The reader's slicing against the writer's snapshots (no engine); then the real service with real
containers: a participant's ``harness logs --follow`` and the organizer's ``--local --follow`` see a
ticking phase's lines before it ends, every line once, in order; a flood past the log limit shows
the bounded window and its "not kept" lines while the disk never holds more than the limit; another
team's follow is a 404; the team page's log grows in Chromium while the phase runs.
"""

from __future__ import annotations

import os
import random
import re
import subprocess
import sys
import threading
import time

import pytest

from harness.runner.logs import BoundedLog, LiveLogs, log_path, parse_cursor, read_phase_logs, sidecar_path
from harness.submissions.ledger import RUNNING, Ledger
from tests.browser import launched_chromium
from tests.service_helpers import SHARED_TRAIN_LOG_BYTES, Service, push

LOG_LIMIT = SHARED_TRAIN_LOG_BYTES  # limits.train.log_bytes on the service: "gush" writes ~80 KiB past it
NOT_KEPT = re.compile(r"\n\[\.\.\. harness: (\d+) bytes not kept \.\.\.\]\n")
TICKS = [f"tick {n:03d}" for n in range(15)]  # tests/images/behave/behave.py "ticker"
NOTES = [f"note {n:03d}" for n in range(0, 15, 5)]
EVALUATED_TIMEOUT_S = 300


# -- the reader against the writer, no engine ------------------------------------------------------


@pytest.mark.parametrize("seed", range(4))
def test_a_follower_gets_every_byte_once_or_a_not_kept_line_for_it(tmp_path, seed):
    """Random caps, answer limits and write/poll interleavings: what a follower prints, less the
    "not kept" lines, plus the bytes those name, is the stream; while running, only whole lines."""
    rng = random.Random(seed)
    for trial in range(60):
        cap, limit = rng.choice([0, 1, 10, 64, 300, 4096]), rng.choice([8, 40, 100, 10_000])
        log_dir = tmp_path / f"{trial}"
        logs = {"stdout": BoundedLog(cap), "stderr": BoundedLog(cap)}
        live = LiveLogs(log_dir, "train", logs, every_s=0)
        written, shown, cursor = b"", b"", (0, 0)
        for n in range(rng.randint(1, 60)):
            line = b"line %d %s\n" % (n, b"." * rng.randint(0, 30))
            logs["stdout"].write(line)
            written += line
            if rng.random() < 0.4:
                live.poll()
                answer = read_phase_logs(log_dir, "train", limit, cursor)
                assert answer is not None and answer.running
                text = answer.streams["stdout"].text.encode()
                shown, cursor = shown + text, parse_cursor(answer.cursor)
                # whole lines while running, unless one fills the limit or the window's head cut it
                assert not text or text.endswith(b"\n") or len(text) >= limit or cursor[0] == cap // 2
        live.close({"verdict": "OK", "exit_code": 0})
        while True:
            answer = read_phase_logs(log_dir, "train", limit, cursor)
            assert not answer.running and answer.outcome["verdict"] == "OK"
            text = answer.streams["stdout"].text.encode()
            shown, cursor = shown + text, parse_cursor(answer.cursor)
            if not text:
                break
        assert cursor == (len(written), 0)
        gaps = sum(int(n) for n in NOT_KEPT.findall(shown.decode()))
        kept = NOT_KEPT.sub("", shown.decode()).encode()
        assert len(kept) + gaps == len(written), (cap, limit)
        if cap >= len(written):
            assert shown == written and gaps == 0
        assert len(log_path(log_dir, "train", "stdout").read_bytes()) <= cap + 100  # the limit, and the marker


def test_a_log_that_does_not_match_its_sidecar_is_not_sliced(tmp_path):
    """A reader that caught the writer between a log and its sidecar does not slice stale bytes."""
    logs = {"stdout": BoundedLog(100), "stderr": BoundedLog(100)}
    live = LiveLogs(tmp_path, "train", logs, every_s=0)
    logs["stdout"].write(b"one\n")
    live.poll()
    log_path(tmp_path, "train", "stdout").write_bytes(b"one\ntwo\n")  # a newer log, an older sidecar
    assert read_phase_logs(tmp_path, "train", 100, (0, 0)) is None
    logs["stdout"].write(b"two\n")
    live.poll()
    assert read_phase_logs(tmp_path, "train", 100, (4, 0)).streams["stdout"].text == "two\n"


def test_a_phase_that_never_started_leaves_no_logs(tmp_path):
    live = LiveLogs(tmp_path, "train", {"stdout": BoundedLog(10), "stderr": BoundedLog(10)})
    live.close()  # cut short before its first snapshot: nothing, as when the container never started
    assert read_phase_logs(tmp_path, "train", 100) is None and not sidecar_path(tmp_path, "train").exists()


def test_the_ledger_notes_the_running_evaluation_and_forgets_it_after(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    submission = ledger.add("A", "img", "sha256:" + "0" * 64)
    submission.state = RUNNING
    ledger.save(submission)
    ledger.set_phase(submission.id, "train", "ev-1")
    ledger.set_phase(submission.id, None)  # between phases: the evaluation stays
    assert (ledger.get(submission.id).evaluation, ledger.get(submission.id).latest_evaluation) == ("ev-1", "ev-1")
    submission.state, submission.evaluations = "evaluated", ["ev-1"]
    ledger.save(submission)
    assert ledger.get(submission.id).evaluation is None and ledger.get(submission.id).latest_evaluation == "ev-1"


def test_a_ledger_without_the_evaluation_column_is_migrated(tmp_path):
    import sqlite3

    ledger = Ledger(tmp_path, "digits")
    ledger.add("A", "img", "sha256:" + "0" * 64)
    with sqlite3.connect(ledger.path) as con:
        con.execute("ALTER TABLE submissions DROP COLUMN evaluation")
    (again,) = Ledger(tmp_path, "digits").all()
    assert again.team == "A" and again.evaluation is None


# -- the real service ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service(shared_service):
    return shared_service  # no smoke stage there: the full train phase is what is followed here


@pytest.fixture(scope="module")
def teams(service):
    return {"Alpha": service.add_team("Live Alpha"), "Beta": service.add_team("Live Beta")}


@pytest.fixture(scope="module")
def submit(service, teams, docker_client, behave_image):
    """``submit(behaviour)``: Alpha's submission of that behave image, pushed to the service's registry."""

    def make(behaviour: str, team: str = "Alpha") -> str:
        member = teams[team]
        reference = f"{service.registry}/{member['namespace']}/{behaviour}:1"
        docker_client.images.get(behave_image(behaviour)).tag(reference)
        digest = push(docker_client, reference, member)
        answer = service.call("POST", "c/submissions", member["token"], json={"image": reference, "digest": digest})
        assert answer.status_code == 201, answer.text
        return answer.json()["id"]

    return make


class Follower:
    """``harness logs ... --follow`` in a subprocess, its lines as they arrive."""

    def __init__(self, service: Service, *args: str, token: str | None = None) -> None:
        env = {**os.environ, "HARNESS_HOME": str(service.home)}
        if token:
            env.update(HARNESS_SERVER=service.url, HARNESS_TOKEN=token)
        command = [sys.executable, "-m", "harness.cli", "logs", service.competition, *args, "--follow"]
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.out: list[str] = []
        self.err: list[str] = []
        self.first = threading.Event()
        self._readers = [
            threading.Thread(target=self._read, args=(s, into), daemon=True)
            for s, into in ((self.process.stdout, self.out), (self.process.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream, into: list) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))
            if into is self.out:
                self.first.set()

    def wait(self, timeout: float = EVALUATED_TIMEOUT_S) -> int:
        code = self.process.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(10)
        return code


def wait_evaluated(service: Service, token: str, sid: str) -> dict:
    deadline = time.monotonic() + EVALUATED_TIMEOUT_S
    while (view := service.call("GET", f"c/submissions/{sid}", token).json())["state"] != "evaluated":
        assert time.monotonic() < deadline, f"{sid} was not evaluated: {service.log.read_text()[-2000:]}"
        time.sleep(0.5)
    return view


@pytest.mark.docker
def test_following_a_running_phase_sees_its_lines_before_it_ends(service, teams, submit):
    alpha = teams["Alpha"]
    sid = submit("ticker")
    team = Follower(service, sid, token=alpha["token"])
    organizer = Follower(service, sid, "--local")
    assert team.first.wait(EVALUATED_TIMEOUT_S) and organizer.first.wait(EVALUATED_TIMEOUT_S), (team.err, organizer.err)
    # both followers had the first line while the service still says the phase runs: lines come as
    # the phase writes them, not at its end
    during = service.call("GET", f"c/submissions/{sid}/logs?phase=train", alpha["token"]).json()
    assert during["running"] is True and during["verdict"] is None and during["stdout"].startswith("tick 000\n")
    assert service.call("GET", f"c/submissions/{sid}", alpha["token"]).json()["phase"] == "train"
    assert team.wait() == 0 and organizer.wait() == 0, (team.err, organizer.err)

    for follower in (team, organizer):
        assert follower.out == TICKS  # every line once, in order
        assert follower.err[-1] == "train ended: OK"
        assert [line for line in follower.err if line.startswith("note")] == NOTES
    view = wait_evaluated(service, alpha["token"], sid)
    assert view["verdict"] == "SCORED"
    after = service.call("GET", f"c/submissions/{sid}/logs?phase=train", alpha["token"]).json()
    assert after["running"] is False and after["verdict"] == "OK" and after["stdout"] == "".join(t + "\n" for t in TICKS)
    assert (
        after["seen_bytes"] == {"stdout": 9 * len(TICKS), "stderr": 9 * len(NOTES)}
        and after["next"] == f"{9 * len(TICKS)}:{9 * len(NOTES)}"
    )
    rest = service.call("GET", f"c/submissions/{sid}/logs?phase=train&since={after['next']}", alpha["token"]).json()
    assert (rest["stdout"], rest["stderr"], rest["next"]) == ("", "", after["next"])
    middle = service.call("GET", f"c/submissions/{sid}/logs?phase=train&since=18:0", alpha["token"]).json()
    assert middle["stdout"].splitlines() == TICKS[2:] and middle["stderr"].splitlines() == NOTES

    # hostile: another team's follow and logs, a malformed cursor
    beta = Follower(service, sid, token=teams["Beta"]["token"])
    assert beta.wait(60) == 2 and "has no submission" in "\n".join(beta.err) and beta.out == []
    assert service.call("GET", f"c/submissions/{sid}/logs?phase=train&since=0:0", teams["Beta"]["token"]).status_code == 404
    for since in ("x", "1:2:3", "-1:0", "1" * 40 + ":0", "0:" + "9" * 70):
        answer = service.call("GET", f"c/submissions/{sid}/logs?phase=train&since={since}", alpha["token"])
        assert answer.status_code == 422, (since, answer.text)


@pytest.mark.docker
def test_a_flood_past_the_log_limit_is_followed_through_its_bounded_window(service, teams, submit):
    alpha = teams["Alpha"]
    sid = submit("gush")
    team = Follower(service, sid, token=alpha["token"])
    sizes: list[int] = []
    while team.process.poll() is None:  # the disk, while it runs: never more than the limit (and its marker)
        logs = service.home / "competitions" / "digits" / "runs"
        sizes += [p.stat().st_size for p in logs.glob("*/logs/train.stdout.log")]
        time.sleep(0.1)
    assert team.wait() == 0, team.err
    assert sizes and max(sizes) <= LOG_LIMIT + 100
    text = "".join(line + "\n" for line in team.out)
    numbers = [int(n) for n in re.findall(r"^line (\d{5}) ", text, re.M)]
    assert numbers == sorted(set(numbers))  # once each, in order
    assert numbers[0] == 0 and numbers[-1] == 1499 and len(numbers) < 1500  # the head's first line, the tail's last
    gaps = [int(n) for n in NOT_KEPT.findall(text)]
    # what it printed, less the "not kept" lines, plus the bytes they name: every byte gush wrote (1500 lines of 52)
    assert gaps and len(NOT_KEPT.sub("", text)) + sum(gaps) == 1500 * 52
    assert team.err[-1] == "train ended: OK"


@pytest.mark.docker
def test_the_team_page_log_grows_while_the_phase_runs(service, teams, submit, browser):
    alpha = teams["Alpha"]
    sid = submit("ticker")
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(f"{service.url}/team")
    tab.fill("#token", alpha["token"])
    tab.click("#sign-in")
    tab.wait_for_url(f"{service.url}/team")
    tab.goto(f"{service.url}/team/submissions/{sid}")
    stdout = tab.locator('[data-phase="train"] [data-field="stdout"]')
    note = tab.locator('[data-phase="train"] [data-field="note"]')
    note.filter(has_text="Running").wait_for(timeout=EVALUATED_TIMEOUT_S * 1000)
    seen = [stdout.text_content()]
    deadline = time.monotonic() + 60
    while "tick 014" not in seen[-1] and time.monotonic() < deadline:
        tab.wait_for_timeout(300)
        seen.append(stdout.text_content())
    growing = [text for text in dict.fromkeys(seen) if text]
    assert len(growing) >= 2 and all(a != b and b.startswith(a) for a, b in zip(growing, growing[1:], strict=False)), growing
    assert growing[-1] == "".join(t + "\n" for t in TICKS)
    tab.locator('[data-field="state"]', has_text="evaluated").wait_for(timeout=EVALUATED_TIMEOUT_S * 1000)
    assert note.text_content() == "" and tab.locator("main b, main img, main script").count() == 0
    context.close()


@pytest.fixture(scope="module")
def browser():
    with launched_chromium() as launched:
        yield launched
