"""Organizer mistakes get one ``harness:`` line naming the file and the fix (exit 2), never a
traceback; a round never leaves submissions running because of one bad file; a value metric that
comes out infinite is a defined verdict."""

from __future__ import annotations

import csv
import json
import threading
import time
from pathlib import Path

import pytest
from test_resume import journals
from test_round import harness, submit

from harness.cli import main
from harness.runner.ray_pool import connect_ray
from harness.submissions.ledger import PENDING, Ledger
from harness.util.errors import HarnessError
from harness.util.files import write_text_atomic

# --- the ledger, through the command line -----------------------------------------------------


def test_a_ledger_that_is_not_a_database_is_one_line_for_every_command(home, capsys):
    (home / "ledger.sqlite3").write_bytes(b"\x00not a database\n" * 512)
    for argv in (["leaderboard", "digits"], ["finalize", "digits"], ["withdraw", "digits", "sub-1", "--reason", "stuck"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith(
            f"harness: the ledger {home / 'ledger.sqlite3'} cannot be used (file is not a database)"
        )
        assert "Traceback" not in err and "mv " in err


# --- round journals ---------------------------------------------------------------------------

JOURNAL = {
    "round_id": "round-20260301T120000-abcdef",
    "config_sha256": "0" * 64,
    "state": "running",
    "started_at": "2026-03-01T12:00:00.000Z",
}


@pytest.mark.parametrize(
    "content, says",
    [
        (json.dumps(JOURNAL)[:40], "it is not valid JSON (truncated?): Unterminated string starting at (line 1, column 14); "),
        ("", "it is empty; "),
        ("[]", "it holds an array, not an object; "),
        (json.dumps({k: v for k, v in JOURNAL.items() if k != "config_sha256"}), "it has no config_sha256; "),
        (json.dumps({**JOURNAL, "state": "exploded"}), "its state is 'exploded', not one of running, finished, cancelled, abandoned; "),
    ],
    ids=["truncated", "empty", "array", "missing-key", "unknown-state"],
)
def test_a_damaged_round_journal_stops_the_round_with_one_line_naming_it(home, capsys, content, says):
    rounds = home / "competitions/digits/rounds"
    rounds.mkdir(parents=True, exist_ok=True)
    path = rounds / f"{JOURNAL['round_id']}.json"
    path.write_text(content)
    assert main(["round", "digits"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"harness: {path} is not a round journal: {says}"), err
    assert f"mv {path} {path}.damaged" in err
    path.rename(f"{path}.damaged")  # the fix the line names: the round runs (nothing pending here)
    assert main(["round", "digits"]) == 0
    assert "no pending submissions" in capsys.readouterr().err


# --- --output in a folder that does not exist -------------------------------------------------


def test_an_output_file_in_a_missing_folder_is_one_line_naming_the_folder(tmp_path):
    target = tmp_path / "nonexistent" / "dir" / "board.html"
    with pytest.raises(HarnessError) as refused:
        write_text_atomic(target, "<html></html>\n", what="the leaderboard")
    assert str(refused.value) == (
        f"cannot write the leaderboard {target}: the folder {target.parent} does not exist; "
        f"create it (mkdir -p {target.parent}) or name another"
    )
    with pytest.raises(HarnessError, match=f"^the leaderboard {tmp_path} is a folder; name a file in it"):
        write_text_atomic(tmp_path, "x", what="the leaderboard")
    target.parent.mkdir(parents=True)
    write_text_atomic(target, "<html></html>\n")
    assert target.read_text() == "<html></html>\n" and oct(target.stat().st_mode & 0o777) == "0o644"
    assert [p.name for p in target.parent.iterdir()] == ["board.html"]  # no temporary file left


# --- a bad file mid-round ---------------------------------------------------------------------


@pytest.mark.docker
@pytest.mark.slow
def test_a_hidden_labels_file_broken_mid_round_leaves_the_submission_pending_not_running(home, behave_image, docker_client):
    """The organizer overwrites hidden/labels.csv while a round runs: the submission's scoring
    fails, the round goes on and ends, and the submission is pending again (not charged), never
    left running; finalize then names it."""
    sid = submit(home, "alpha", behave_image("nap2"))
    result: dict = {}
    # no smoke stage: the full phases' scoring is what reads the file broken (two containers, not four)
    overrides = ("runner.infra_retries=0", "competition.smoke.enabled=false")
    connect_ray()  # from this thread: Ray's processes end with the thread that started them
    driver = threading.Thread(target=lambda: result.update(done=harness(home, "round", "digits", *overrides)))
    driver.start()
    deadline = time.monotonic() + 240
    while not docker_client.containers.list(filters={"label": f"harness.submission={sid}", "status": "running"}):
        assert time.monotonic() < deadline and driver.is_alive(), "the round never got going"
        time.sleep(0.1)
    labels = home / "competitions/digits/hidden/labels.csv"
    labels.write_text("identifier;digit\n1;7\n")  # the organizer's slip: another file copied over it
    driver.join(timeout=300)
    err = result["done"].stderr
    assert result["done"].returncode == 0, err
    assert "Traceback" not in err
    assert f"alpha {sid}: its record could not be made (the hidden labels cannot be read: {labels}: missing columns" in err
    assert "it stays pending, not charged" in err
    submission = Ledger(home, "digits").get(sid)
    assert submission.state == PENDING and not submission.evaluations
    assert [j["state"] for j in journals(home)] == ["finished"]
    refused = harness(home, "finalize", "digits")
    assert refused.returncode == 2 and f"{sid} (team 'alpha', pending)" in refused.stderr


# --- a value competition whose metric overflows -----------------------------------------------

VALUES = """\
name: values
prepare: test_organizer_mistakes:prepare_values
predictions:
  kind: value
  target_column: y
metrics:
  primary: rmse
  others: [mae]
"""
HUGE = """\
import csv, os, sys
if sys.argv[1] == "train":
    open("/model/done", "w").close()
else:
    with open("/data/test/test.csv") as fh:
        ids = [row["id"] for row in csv.DictReader(fh)]
    with open("/output/predictions.csv", "w") as out:
        out.write("id,y\\n" + "".join(f"{i},1e200\\n" for i in ids))
"""


def prepare_values(root: Path, public_fraction: float) -> None:
    """A small regression competition: y = 2x, 20 train rows, 10 test rows."""
    if (root / "hidden/labels.csv").exists():
        return
    for folder in ("data/train", "data/test", "hidden"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    with open(root / "data/train/train.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("id", "x", "y"), *((i, i, 2 * i) for i in range(20))])
    with open(root / "data/test/test.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([("id", "x"), *((i, i) for i in range(20, 30))])
    with open(root / "hidden/labels.csv", "w", newline="") as fh:
        split = lambda i: "public" if i < 20 + 10 * public_fraction else "private"  # noqa: E731
        csv.writer(fh).writerows([("id", "y", "split"), *((i, 2 * i, split(i)) for i in range(20, 30))])


@pytest.fixture
def values_competition(tmp_path, monkeypatch):
    organizer = tmp_path / "organizer"
    (organizer / "competition").mkdir(parents=True)
    (organizer / "competition/values.yaml").write_text(VALUES)
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(organizer))
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    return organizer


@pytest.fixture
def huge_image(os_base, tmp_path):
    from harness.participant.images import build_context_image

    context = tmp_path / "huge"
    context.mkdir()
    (context / "main.py").write_text(HUGE)
    (context / "Dockerfile").write_text(
        'ARG BASE\nFROM ${BASE}\nCOPY main.py /app/main.py\nUSER 10001\nENTRYPOINT ["python3", "/app/main.py"]\n'
    )
    tag = "harness-test/huge-values:latest"
    build_context_image(tag, context, {"BASE": os_base}, log=lambda line: None)
    return tag


@pytest.mark.docker
def test_predictions_of_1e200_in_a_value_competition_are_a_verdict_with_a_message(values_competition, huge_image, capsys):
    code = main(["check", "values", "--image", huge_image, "--json"])
    out, err = capsys.readouterr()
    record = json.loads(out)
    assert code == 1 and "Traceback" not in err
    assert record["verdict"] == "INVALID_PREDICTIONS" and record["failed_phase"] == "score" and record["scores"] == {}
    assert record["message"] == "rmse is infinite: predictions as large as 1e+200 overflow; predict finite values of a sensible size"
