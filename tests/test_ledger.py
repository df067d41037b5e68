"""The ledger: one SQLite database per work directory, several competitions, crash-safe writes."""

from __future__ import annotations

import json
import re
import signal
import sqlite3
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta

import pytest

from harness.submissions.ledger import DISQUALIFIED, EVALUATED, PENDING, RUNNING, WITHDRAWN, Ledger
from harness.submissions.quota import QuotaExceeded
from harness.util.errors import HarnessError

DIGEST = "sha256:" + "0" * 64
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_round_trip_and_state_changes(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    first = ledger.add("  alpha  ", "img:1", DIGEST, now=T0)
    second = ledger.add("beta", "img:2", DIGEST, now=T0 + timedelta(seconds=1))
    assert first.team == "alpha" and first.submitted_at == "2026-03-01T12:00:00.000Z"
    assert ledger.get(first.id) == first
    first.state, first.evaluations, first.infra_failures = RUNNING, ["ev-1"], 1
    ledger.save(first)
    second.state = EVALUATED
    ledger.save(second)
    assert ledger.get(first.id).evaluations == ["ev-1"] and ledger.get(first.id).infra_failures == 1
    assert [s.id for s in ledger.all()] == [first.id, second.id]
    assert [s.id for s in ledger.pending()] == [first.id]  # "running" from a dead round is pending again
    with pytest.raises(HarnessError, match="no submission 'sub-nope'"):
        ledger.get("sub-nope")


def test_several_competitions_share_one_database(tmp_path):
    digits, other = Ledger(tmp_path, "digits"), Ledger(tmp_path, "other")
    a = digits.add("team", "img", DIGEST)
    b = other.add("team", "img", DIGEST)
    assert list(tmp_path.glob("*.sqlite3")) == [tmp_path / "ledger.sqlite3"]
    assert [s.id for s in digits.all()] == [a.id] and [s.id for s in other.all()] == [b.id]
    with pytest.raises(HarnessError, match="no submission"):
        digits.get(b.id)
    with pytest.raises(HarnessError, match="belongs to 'other'"):
        digits.save(b)
    b.state = EVALUATED
    other.save(b)
    other.finalize()
    assert digits.finalized_at() is None and digits.add("team", "img", DIGEST)


@pytest.mark.parametrize(
    ("team", "message"),
    [
        ("   ", "team name is empty"),
        ("x" * 65, "65 characters long; at most 64"),
        ("a\nb", "control character (U+000A)"),
        ("evil\u202eeman", "U+202E"),
    ],
)
def test_team_names_are_bounded_printable_text(tmp_path, team, message):
    with pytest.raises(HarnessError, match=re.escape(message)):
        Ledger(tmp_path, "digits").add(team, "img", DIGEST)


def test_free_text_team_names_are_kept_as_typed(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    team = "<script>alert(1)</script> 'x'; DROP TABLE submissions; --"
    assert ledger.get(ledger.add(team, "img", DIGEST).id).team == team


def test_concurrent_submissions_cannot_exceed_the_quota(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    outcomes: list[str] = []

    def submit() -> None:
        try:
            Ledger(tmp_path, "digits").add("racers", "img", DIGEST, per_day=3)
            outcomes.append("accepted")
        except QuotaExceeded:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["accepted"] * 3 + ["refused"] * 9
    assert len(ledger.all()) == 3


# The child that crashes mid-write: it runs one ledger operation through a connection that stops the
# process for good once the operation has run ``stop_after`` write statements, before the next
# statement (a later write of the same operation, or its COMMIT) runs. It says where it stopped and
# waits for the test's SIGKILL, so the kill lands at that exact point, every time.
WRITER = r"""
import json, sys, time
from pathlib import Path
from harness.util import sqlite as shared
from harness.submissions.ledger import DISQUALIFIED, EVALUATED, Ledger

home, operation, stop_after, ids = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), json.loads(sys.argv[4])
armed, writes = False, 0


class Stopping:
    def __init__(self, con):
        self._con = con

    def __getattr__(self, name):
        return getattr(self._con, name)

    def execute(self, sql, *args):
        global writes
        if armed and writes == stop_after:
            print(f"stopped after {writes} write(s), before {sql.split()[0].upper()}", flush=True)
            while True:
                time.sleep(60)
        cursor = self._con.execute(sql, *args)
        writes += armed and sql.lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "REPLACE"))
        return cursor

    def executemany(self, sql, rows):  # row by row, so that a stop can land between two rows
        for row in rows:
            cursor = self.execute(sql, row)
        return cursor


new_connection = shared.Connections._new
shared.Connections._new = lambda self: Stopping(new_connection(self))
ledger = Ledger(home, "digits")
armed = True
if operation == "add":
    ledger.add("C", "img:c", "sha256:" + "0" * 64, per_day=5)
elif operation == "save":
    s = ledger.get(ids["b1"])
    s.state, s.evaluations = EVALUATED, ["ev-9"]
    ledger.save(s)
elif operation == "select":
    ledger.select("A", [ids["a1"], ids["a2"]], limit=2, scored={ids["a1"], ids["a2"]})
elif operation == "moderate":
    ledger.moderate(ids["a1"], DISQUALIFIED, "copied team B's model")
elif operation == "set_phase":
    ledger.set_phase(ids["r1"], "infer", "ev-r")
print("done", flush=True)
"""
# Each operation's write statements, in order, then its COMMIT: a stop after write n lands before item n.
WRITE_STATEMENTS = {
    "add": ["INSERT", "COMMIT"],
    "save": ["INSERT", "COMMIT"],
    "select": ["DELETE", "INSERT", "INSERT", "COMMIT"],
    "moderate": ["UPDATE", "DELETE", "COMMIT"],
    "set_phase": ["UPDATE", "COMMIT"],
}
CRASH_POINTS = [(op, n) for op, statements in WRITE_STATEMENTS.items() for n in range(1, len(statements))]


def _crash_baseline(home) -> dict[str, str]:
    """Two evaluated submissions of team A (one selected), one pending of B, one running of R."""
    ledger = Ledger(home, "digits")
    ids = {}
    for name, team, state in (("a1", "A", EVALUATED), ("a2", "A", EVALUATED), ("b1", "B", PENDING), ("r1", "R", RUNNING)):
        s = ledger.add(team, "img:" + "x" * 2000, DIGEST)
        s.state, s.evaluations = state, ["ev"] * 50
        ledger.save(s)
        ids[name] = s.id
    ledger.set_phase(ids["r1"], "train", "ev-r0")
    ledger.select("A", [ids["a1"]], limit=2, scored={ids["a1"], ids["a2"]})
    return ids


def _dump(home) -> dict[str, list[tuple]]:
    with sqlite3.connect(home / "ledger.sqlite3") as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        assert con.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        return {table: sorted(con.execute(f"SELECT * FROM {table}"), key=repr) for table in ("submissions", "selections", "finalized")}


def _writer(home, operation: str, stop_after: int, ids: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WRITER, str(home), operation, str(stop_after), json.dumps(ids)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("operation", sorted(WRITE_STATEMENTS))
def test_each_crash_test_operation_changes_the_ledger(tmp_path, operation):
    """The premise of the crash test below: run to its end, each operation changes the ledger."""
    ids = _crash_baseline(tmp_path)
    before = _dump(tmp_path)
    proc = _writer(tmp_path, operation, -1, ids)
    out, err = proc.communicate(timeout=60)
    assert (proc.returncode, out) == (0, "done\n"), err
    assert _dump(tmp_path) != before


@pytest.mark.parametrize(("operation", "stop_after"), CRASH_POINTS)
def test_a_crash_mid_write_leaves_the_ledger_as_it_was_before_the_write(tmp_path, operation, stop_after):
    """SIGKILL a process inside a ledger write, after ``stop_after`` of its write statements ran and
    before the rest and the COMMIT: the ledger, reopened, is exactly what it was before the write."""
    ids = _crash_baseline(tmp_path)
    before = _dump(tmp_path)
    proc = _writer(tmp_path, operation, stop_after, ids)
    try:
        line = proc.stdout.readline()
        # the premise: the child stopped where the test means, inside the write's transaction
        assert line == f"stopped after {stop_after} write(s), before {WRITE_STATEMENTS[operation][stop_after]}\n", (
            proc.stderr.read() if not line else line
        )
        with sqlite3.connect(tmp_path / "ledger.sqlite3", timeout=0, isolation_level=None) as probe:
            with pytest.raises(sqlite3.OperationalError, match="database is locked"):
                probe.execute("BEGIN IMMEDIATE")  # the child holds the write lock: its write is under way
        probe.close()
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert _dump(tmp_path) == before
    ledger = Ledger(tmp_path, "digits")  # and it opens and takes the next write
    assert sorted(s.id for s in ledger.all()) == sorted(ids.values())  # added within a millisecond: their order is their ids
    ledger.add("D", "img", DIGEST)


def test_selection_rules(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    a1, a2, a3 = (ledger.add("A", "img", DIGEST) for _ in range(3))
    b1 = ledger.add("B", "img", DIGEST)
    scored = {a1.id, a2.id, a3.id, b1.id}
    with pytest.raises(HarnessError, match="at most 2"):
        ledger.select("A", [a1.id, a2.id, a3.id], limit=2, scored=scored)
    with pytest.raises(HarnessError, match=f"team 'A' has no submission '{b1.id}'"):
        ledger.select("A", [b1.id], limit=2, scored=scored)
    with pytest.raises(HarnessError, match="is not scored"):
        ledger.select("A", [a1.id], limit=2, scored={a2.id})
    ledger.select("A", [a1.id, a2.id], limit=2, scored=scored)
    ledger.select("A", [a3.id, a3.id], limit=2, scored=scored)  # replaces; a repeat counts once
    assert ledger.selections() == {"A": [a3.id]}


def test_finalize_waits_for_evaluations_then_closes_the_competition(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    waiting = ledger.add("A", "img", DIGEST)
    with pytest.raises(HarnessError, match=f"1 submission\\(s\\) of digits are not evaluated yet: {waiting.id} \\(team 'A', pending\\)"):
        ledger.finalize()
    waiting.state = EVALUATED
    ledger.save(waiting)
    at = ledger.finalize(now=T0)
    assert at == ledger.finalized_at() == "2026-03-01T12:00:00.000Z"
    for attempt in (
        lambda: ledger.add("A", "img", DIGEST),
        lambda: ledger.select("A", [waiting.id], limit=2, scored={waiting.id}),
        ledger.finalize,
    ):
        with pytest.raises(HarnessError, match="finalized at 2026-03-01T12:00:00.000Z"):
            attempt()


def test_finalize_names_what_blocks_it_and_the_commands_that_unblock_it(tmp_path):
    ledger = Ledger(tmp_path, "digits")
    stuck = ledger.add("A", "img", DIGEST, now=T0)
    stuck.infra_failures = 3  # INFRA_ERROR after every retry, three rounds running: pending again
    ledger.save(stuck)
    running = ledger.add("B", "img", DIGEST, now=T0 + timedelta(seconds=1))
    running.state = RUNNING
    ledger.save(running)
    with pytest.raises(HarnessError) as refused:
        ledger.finalize()
    assert str(refused.value) == (
        f"2 submission(s) of digits are not evaluated yet: {stuck.id} (team 'A', pending, 3 infrastructure failure(s)); "
        f"{running.id} (team 'B', running). Evaluate them with `harness round digits`, or end one that cannot be evaluated "
        f"with `harness withdraw digits {stuck.id} --reason TEXT` (at its team's request) or "
        f"`harness disqualify digits {stuck.id} --reason TEXT` (the organizer's decision)"
    )
    ledger.moderate(stuck.id, WITHDRAWN, "the team asked: the image needs a GPU we do not have")
    ledger.moderate(running.id, DISQUALIFIED, "shared a model with team A")
    assert ledger.finalize(now=T0 + timedelta(days=1))


V1_SCHEMA = """
CREATE TABLE submissions (
    id TEXT PRIMARY KEY, competition TEXT NOT NULL, team TEXT NOT NULL, image TEXT NOT NULL,
    image_digest TEXT NOT NULL, submitted_at TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'running', 'evaluated')),
    evaluations TEXT NOT NULL DEFAULT '[]', infra_failures INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX submissions_by_team ON submissions (competition, team, submitted_at);
CREATE TABLE selections (competition TEXT NOT NULL, team TEXT NOT NULL, submission TEXT NOT NULL REFERENCES submissions (id),
    PRIMARY KEY (competition, team, submission));
CREATE TABLE finalized (competition TEXT PRIMARY KEY, finalized_at TEXT NOT NULL);
INSERT INTO submissions VALUES ('sub-old1', 'digits', 'A', 'img', 'sha256:{zeros}', '2026-03-01T12:00:00.000Z', 'evaluated', '["ev-1"]', 0);
INSERT INTO submissions VALUES ('sub-old2', 'digits', 'B', 'img', 'sha256:{zeros}', '2026-03-01T12:00:01.000Z', 'pending', '["ev-2"]', 2);
INSERT INTO selections VALUES ('digits', 'A', 'sub-old1');
""".format(zeros="0" * 64)


def test_a_ledger_of_the_first_version_is_migrated_in_place_and_keeps_every_row(tmp_path):
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as con:
        con.executescript(V1_SCHEMA)
    ledger = Ledger(tmp_path, "digits")
    old1, old2 = ledger.all()
    assert (old1.id, old1.state, old1.evaluations, old1.moderated_at) == ("sub-old1", EVALUATED, ["ev-1"], None)
    assert (old2.id, old2.state, old2.infra_failures) == ("sub-old2", PENDING, 2)
    assert ledger.selections() == {"A": ["sub-old1"]}
    withdrawn = ledger.moderate("sub-old2", WITHDRAWN, "stuck after its retries", now=T0)
    assert ledger.get("sub-old2") == withdrawn and withdrawn.moderated_at == "2026-03-01T12:00:00.000Z"
    assert Ledger(tmp_path, "digits").get("sub-old2").state == WITHDRAWN  # opened again: nothing to migrate
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as con:
        assert con.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND name = 'submissions_by_team'").fetchone()
        with pytest.raises(sqlite3.IntegrityError):  # the state's CHECK constraint is still there, widened
            con.execute("UPDATE submissions SET state = 'banana'")


@pytest.mark.parametrize(
    "damage, says",
    [
        (lambda path: path.write_bytes(b"these are my notes, not a database\n" * 100), "file is not a database"),
        (lambda path: path.write_bytes(path.read_bytes()[:1500]), "malformed"),
    ],
    ids=["not-sqlite", "truncated"],
)
def test_a_damaged_ledger_is_one_line_naming_the_file_and_the_fix(tmp_path, damage, says):
    ledger = Ledger(tmp_path, "digits")
    for team in "ABCDEFGH":
        ledger.add(team * 40, "img", DIGEST)
    with sqlite3.connect(ledger.path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    damage(ledger.path)
    with pytest.raises(HarnessError) as refused:
        Ledger(tmp_path, "digits").all()
    message = str(refused.value)
    assert message.startswith(f"the ledger {ledger.path} cannot be used (") and says in message
    assert f"mv {ledger.path} {ledger.path}.damaged" in message and "\n" not in message


def test_another_programs_database_is_not_taken_for_a_ledger(tmp_path):
    with sqlite3.connect(tmp_path / "ledger.sqlite3") as con:
        con.execute("CREATE TABLE submissions (id INTEGER PRIMARY KEY, payload BLOB)")
    with pytest.raises(HarnessError) as refused:
        Ledger(tmp_path, "digits")
    assert str(refused.value).startswith(
        f"{tmp_path / 'ledger.sqlite3'} is not a harness ledger: its table submissions has no column competition"
    )
    assert "move it aside" in str(refused.value)


def test_a_team_cancels_only_its_own_queued_submission_and_gets_its_quota_back(tmp_path):
    from harness.submissions.ledger import CannotCancel, NoSuchSubmission

    ledger = Ledger(tmp_path, "digits")
    queued, running, done = (ledger.add("alpha", "img", DIGEST, per_day=3, now=T0 + timedelta(seconds=s)) for s in range(3))
    assert len(ledger.charged("alpha", T0 + timedelta(minutes=1))) == 3
    with pytest.raises(NoSuchSubmission) as theirs:
        ledger.cancel("beta", queued.id)
    with pytest.raises(NoSuchSubmission) as unknown:
        ledger.cancel("beta", "sub-000000000000")
    assert str(theirs.value).replace(queued.id, "X") == str(unknown.value).replace("sub-000000000000", "X")
    assert ledger.start(running) is True
    ledger.start(done)
    ledger.finish(done, "ev-1")
    with pytest.raises(CannotCancel, match=rf"^{running.id} is running \(between phases\): only a queued submission can be cancelled"):
        ledger.cancel("alpha", running.id)
    with pytest.raises(CannotCancel, match=rf"^{done.id} is evaluated already"):
        ledger.cancel("alpha", done.id)

    cancelled = ledger.cancel("alpha", queued.id, now=T0 + timedelta(minutes=2))
    stored = ledger.get(queued.id)
    assert stored == cancelled and (stored.state, stored.cancelled, stored.charged) == (WITHDRAWN, True, False)
    assert len(ledger.charged("alpha", T0 + timedelta(minutes=3))) == 2  # its slot is free again
    assert ledger.start(stored) is False and ledger.get(queued.id).state == WITHDRAWN  # a round that listed it skips it
    assert [s.id for s in ledger.pending()] == [running.id]
    with pytest.raises(CannotCancel, match="was cancelled at 2026-03-01T12:02:00.000Z already"):
        ledger.cancel("alpha", queued.id)
