"""Records and boards under attack: forged, stray and broken record files, participant strings aimed
at spreadsheets, private scores before finalize, changes after it, and secrets in the configuration."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import shutil
from pathlib import Path

import pytest
from test_record import make_record

from harness import leaderboard
from harness.cli import main
from harness.competition.config import load_settings
from harness.records.signing import HMAC_KEY_ENV, HMAC_KEY_FILE_ENV, KEY_ENV, KEY_FILE_ENV, VERIFY_KEY_ENV
from harness.scoring import METRICS, get_metric
from harness.submissions.ledger import EVALUATED, RUNNING, Ledger, Submission
from harness.util.redact import MASK, config_sha256, redact_config, redact_text, secret_name

DIGEST = "sha256:" + "0" * 64


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in (KEY_ENV, KEY_FILE_ENV, VERIFY_KEY_ENV, HMAC_KEY_ENV, HMAC_KEY_FILE_ENV):
        monkeypatch.delenv(name, raising=False)


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def records_dir(home: Path) -> Path:
    directory = home / "competitions" / "digits" / "records"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


def submit(home: Path, team: str, score: float | None, day: int = 1, verdict: str = "SCORED") -> tuple[str, Path]:
    """A submission the ledger lists as evaluated, with its (valid) record; (submission id, record file)."""
    ledger = Ledger(home, "digits")
    submission = ledger.add(team, "img", DIGEST)
    evaluation = f"ev-{submission.id}"
    submission.state, submission.evaluations = EVALUATED, [evaluation]
    ledger.save(submission)
    scores = {"public": {"accuracy": score}, "private": {"accuracy": score}} if score is not None else {}
    record = make_record(evaluation, submission.id, team, verdict, scores, submitted_at=f"2026-01-0{day}T00:00:00Z")
    path = records_dir(home) / f"{evaluation}.json"
    path.write_text(json.dumps(record))
    return submission.id, path


def plant(home: Path, real: Path) -> dict[str, str]:
    """Hostile and broken files beside a real record; {file name: what it tries}."""
    directory, data = records_dir(home), json.loads(real.read_text())
    sid = data["submission"]["id"]
    better = {"public": {"accuracy": 1.0}, "private": {"accuracy": 1.0}}
    forged = make_record("ev-forged", sid, data["submission"]["team"], "SCORED", better, created_at="2026-02-01T00:00:00Z")
    (directory / "ev-forged.json").write_text(json.dumps(forged))  # a later record of a real submission
    (directory / "copy.json").write_text(json.dumps({**data, "scores": better}))  # the real evaluation id, another file
    ghost = make_record("ev-ghost", "sub-ghost", "Ghosts", "SCORED", better)
    (directory / "ev-ghost.json").write_text(json.dumps(ghost))  # a submission the ledger never had
    (directory / "truncated.json").write_text(real.read_text()[: len(real.read_text()) // 2])
    (directory / "list.json").write_text("[]")
    (directory / "missing.json").write_text(json.dumps({k: v for k, v in data.items() if k != "verdict"} | {"evaluation_id": "missing"}))
    (directory / "nan.json").write_text(real.read_text().replace('"accuracy": 0.', '"accuracy": NaN, "x": 0.', 1))
    (directory / "link.json").symlink_to(real)
    return {
        "ev-forged.json": "ledger lists no evaluation 'ev-forged'",
        "copy.json": "not 'copy'",
        "ev-ghost.json": "the ledger has no submission 'sub-ghost'",
        "truncated.json": "is not JSON",
        "list.json": "not an object",
        "missing.json": "'verdict' is a required property",
        "nan.json": "NaN is not a JSON number",
        "link.json": "a symbolic link",
    }


def assert_warned(err: str, planted: dict[str, str]) -> None:
    assert "Traceback" not in err
    for name, why in planted.items():
        lines = [line for line in err.splitlines() if f"records/{name} skipped" in line]
        assert len(lines) == 1 and why in lines[0], (name, err)


def test_forged_stray_and_broken_files_never_reach_the_board(home, monkeypatch, capsys):
    a, real = submit(home, "A", 0.8)
    b, _ = submit(home, "B", 0.7, day=2)
    planted = plant(home, real)

    status, out, err = run(capsys, "leaderboard", "digits", "--json")
    assert status == 0
    assert [(e["team"], e["submission"], e["score"]) for e in json.loads(out)] == [("A", a, 0.8), ("B", b, 0.7)]
    assert_warned(err, planted)
    status, out, err = run(capsys, "leaderboard", "digits", "--team", "A", "--format", "csv")
    assert status == 0 and [row["submission"] for row in csv.DictReader(io.StringIO(out))] == [a]
    assert_warned(err, planted)

    status, out, err = run(capsys, "select", "digits", "--team", "A", a)  # select reads validated records
    assert status == 0 and "Traceback" not in err
    for name in ("copy.json", "truncated.json", "list.json", "missing.json", "nan.json", "link.json"):
        assert f"records/{name} skipped: " in err

    (home / "hmac.key").write_text("k")
    monkeypatch.setenv(HMAC_KEY_FILE_ENV, str(home / "hmac.key"))
    status, out, err = run(capsys, "verify", "digits")
    assert status == 1 and "Traceback" not in err
    assert "truncated: unreadable (record truncated.json is not JSON" in out and "list: unreadable" in out
    assert "link: unreadable (record link.json cannot be read (a symbolic link))" in out


def test_with_a_key_only_the_organizers_signature_counts(home, tmp_path, monkeypatch, capsys):
    assert main(["keys", "generate", str(tmp_path / "keys")]) == 0
    monkeypatch.setenv(KEY_FILE_ENV, str(tmp_path / "keys" / "signing-key.pem"))
    a, real = submit(home, "A", 0.8)
    from harness.records.record import EvaluationRecord, save_record

    save_record(EvaluationRecord.from_dict(json.loads(real.read_text())), real.parent)  # signed
    b, other = submit(home, "B", 0.7, day=2)  # written unsigned: a replacement nobody signed
    tampered = json.loads(real.read_text())
    tampered["scores"]["public"]["accuracy"] = 0.99
    c, third = submit(home, "C", 0.6, day=3)
    third.write_text(json.dumps(tampered | {"evaluation_id": f"ev-{c}", "submission": tampered["submission"] | {"id": c, "team": "C"}}))

    status, out, err = run(capsys, "leaderboard", "digits", "--json")
    assert status == 0 and [(e["team"], e["score"]) for e in json.loads(out)] == [("A", 0.8)]
    assert f"records/{other.name} skipped: is unsigned" in err and f"records/{third.name} skipped: is tampered" in err
    monkeypatch.delenv(KEY_FILE_ENV)
    monkeypatch.setenv(VERIFY_KEY_ENV, str(tmp_path / "keys" / "signing-key.pub.pem"))  # the public key alone decides the same
    assert [e["team"] for e in json.loads(run(capsys, "leaderboard", "digits", "--json")[1])] == ["A"]


def test_recovery_trusts_only_the_ledgers_submissions(home, competition, capsys):
    from harness.rounds.recovery import recover

    ledger = Ledger.of(competition())
    done, forged_for, untouched = (ledger.add(team, "img", DIGEST) for team in ("a", "b", "c"))
    for submission in (done, forged_for, untouched):
        submission.state = RUNNING
        ledger.save(submission)
    directory = records_dir(home)
    real = make_record("ev-1", done.id, "a", round_id="round-x")
    (directory / "ev-1.json").write_text(json.dumps(real))
    (directory / "ev-2.json").write_text(json.dumps(make_record("ev-2", forged_for.id, "mallory", round_id="round-x")))
    (directory / "ev-3.json").write_text(json.dumps(make_record("ev-3", "sub-nobody", "c", round_id="round-x")))
    (directory / "ev-4.json").write_text(json.dumps({**real, "evaluation_id": "ev-4", "submission": {"id": untouched.id}}))
    (directory / "ev-5.json").write_text("[]")
    (directory / "ev-6.json").write_text(json.dumps(real)[:100])

    capsys.readouterr()
    assert recover(ledger, directory, ["round-x"]) == [done.id]
    err = capsys.readouterr().err
    assert "records/ev-2.json skipped: its team or image digest is not the ledger's" in err
    assert "records/ev-3.json skipped: the ledger has no submission 'sub-nobody'" in err
    assert "records/ev-4.json skipped: is not a valid harness.evaluation/1 record: submission" in err
    assert "records/ev-5.json skipped" in err and "records/ev-6.json skipped: is not JSON" in err
    assert ledger.get(done.id).state == EVALUATED and ledger.get(done.id).evaluations == ["ev-1"]
    assert {s.id for s in ledger.pending()} == {forged_for.id, untouched.id}


@pytest.mark.docker
def test_commands_that_rewrite_or_rerun_name_a_broken_file(home, capsys):
    _, real = submit(home, "A", 0.8)
    plant(home, real)
    status, out, err = run(capsys, "rescore", "digits", "--json")
    assert status == 0 and "Traceback" not in err
    skipped = json.loads(out)["skipped"]
    assert "is not JSON" in skipped["truncated"] and "not an object" in skipped["list"] and "ledger lists no" in skipped["ev-forged"]
    for command, named in (
        (["audit", "digits", "truncated"], "truncated.json"),
        (["audit", "digits", "ev-forged"], "ev-forged.json"),
        (["reinfer", "digits", "truncated"], "truncated.json is not JSON"),
        (["reinfer", "digits", "ev-forged"], "ledger lists no evaluation 'ev-forged'"),
    ):
        status, _, err = run(capsys, *command)
        last = err.splitlines()[-1]  # an audit says where its report is first
        assert status == 2 and last.startswith("harness: ") and named in last and "Traceback" not in err, (command, err)
    reports = [json.loads(p.read_text()) for p in (home / "competitions" / "digits" / "audits").glob("*/report.json")]
    observed = sorted(report["differences"][0]["observed"] for report in reports)
    assert {r["status"] for r in reports} == {"REFUSED"} and "ledger lists no" in observed[0] and "is not JSON" in observed[1]


# --- CSV ----------------------------------------------------------------------------------------

HOSTILE = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "＝fullwidth", "plain"]


def test_csv_neutralises_formulas_in_participant_strings(home, capsys):
    records = [
        make_record(f"ev-{n}", f"sub-{n}", team, "SCORED", {"public": {"accuracy": -0.5 + n / 10}}, message="")
        for n, team in enumerate(HOSTILE)
    ]
    records.append(make_record("ev-x", "sub-x", "=1+1", "TIMEOUT", message="-1+1 @x"))
    metric = get_metric("accuracy")
    for rows in (leaderboard.build(records, metric), leaderboard.history(records, metric)):
        parsed = list(csv.DictReader(io.StringIO(leaderboard.render(rows, "csv", metric, "t"))))
        teams = [row["team"] for row in parsed]
        assert sorted(teams) == sorted(["'" + t if t[0] in "=+-@\t\r＝" else t for t in HOSTILE] + ["'=1+1"])
        assert all(
            not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
            for row in parsed
            for k, cell in row.items()
            if k not in ("score", "public", "private")
        )
        assert next(row for row in parsed if row["team"] == "'-2+3")["message"] == ""
        note = next(row for row in parsed if row["team"] == "'=1+1")["message"]
        assert note == "'-1+1 @x"
        numbers = [row.get("score") or row.get("public") for row in parsed if row["team"] != "'=1+1"]
        assert float(min(numbers, key=float)) == -0.5  # negative numbers stay numbers
    ids = [submit(home, team, -0.5 + n / 10)[0] for n, team in enumerate(["=cmd()", "@x", "-y"])]
    status, out, _ = run(capsys, "leaderboard", "digits", "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert status == 0 and [(r["team"], float(r["score"]), r["submission"]) for r in parsed] == [
        ("'-y", -0.3, ids[2]),
        ("'@x", -0.4, ids[1]),
        ("'=cmd()", -0.5, ids[0]),
    ]


# --- private scores and finalize ---------------------------------------------------------------


def test_private_scores_are_the_organizers_before_finalize(home, capsys):
    submit(home, "A", 0.8)
    for argv in (["--private"], ["--private", "--team", "A"], ["--private", "--format", "html"]):
        status, out, err = run(capsys, "leaderboard", "digits", *argv)
        assert status == 2 and out == "" and err.count("\n") == 1
        assert err.startswith("harness: the private scores of digits are the organizer's until `harness finalize digits`")
        assert "--organizer" in err
    status, out, _ = run(capsys, "leaderboard", "digits", "--private", "--organizer")
    assert status == 0 and "private leaderboard (preview: not finalized)" in out and "0.80000" in out
    assert run(capsys, "leaderboard", "digits", "--team", "A", "--json")[1].count('"private": null') == 1  # public: blanked
    assert run(capsys, "finalize", "digits")[0] == 0
    status, out, _ = run(capsys, "leaderboard", "digits", "--private")
    assert status == 0 and "private leaderboard (final, " in out


@pytest.mark.docker
def test_rescore_and_reinfer_after_finalize_need_force_and_are_in_the_history(
    home, competition, docker_client, behave_image, monkeypatch, capsys
):
    from evaluations import evaluate

    digits = competition()
    record = evaluate(digits, docker_client, behave_image("constant"))
    sid, submission = record.submission.id, record.submission
    listed = (sid, "digits", submission.team, submission.image, submission.image_digest, submission.submitted_at)
    Ledger.of(digits).save(Submission(*listed, EVALUATED, [record.evaluation_id]))  # as a round would have left it
    assert run(capsys, "finalize", "digits")[0] == 0
    accuracy = METRICS["accuracy"]
    monkeypatch.setitem(METRICS, "accuracy", dataclasses.replace(accuracy, fn=lambda t, p, c: 1 - accuracy.fn(t, p, c)))

    status, _, err = run(capsys, "rescore", "digits")
    assert status == 2 and err.count("\n") == 1 and "was finalized at" in err and "pass --force to rescore anyway" in err
    saved = json.loads((digits.paths.records / f"{record.evaluation_id}.json").read_text())
    assert saved["scores"] == record.scores and saved["history"] == []  # untouched
    status, _, err = run(capsys, "rescore", "digits", "--force", "--json")
    assert status == 0, err
    saved = json.loads((digits.paths.records / f"{record.evaluation_id}.json").read_text())
    (entry,) = saved["history"]
    assert entry["reason"].startswith("rescore --force after finalize (") and entry["scores"] == record.scores
    monkeypatch.setitem(METRICS, "accuracy", accuracy)

    status, _, err = run(capsys, "reinfer", "digits", sid)
    assert status == 2 and err.count("\n") == 1 and "pass --force to reinfer anyway" in err
    assert len(list(digits.paths.records.glob("*.json"))) == 1
    status, out, err = run(capsys, "reinfer", "digits", sid, "--force", "--json")
    assert status == 0, err
    (new,) = json.loads(out)
    (entry,) = new["history"]
    assert entry["reason"].startswith("reinfer --force after finalize (") and entry["reason"].endswith(f"replaces {record.evaluation_id}")
    assert entry["scores"] == saved["scores"]
    assert Ledger.of(digits).get(sid).evaluations == [record.evaluation_id, new["evaluation_id"]]  # listed: the board takes it
    (row,) = json.loads(run(capsys, "leaderboard", "digits", "--json")[1])
    assert row["score"] == new["scores"]["private"]["accuracy"]


# --- no secret in a record ---------------------------------------------------------------------


def test_redaction_rules():
    assert redact_text("http://alice:s3cret@127.0.0.1:5000/x") == f"http://{MASK}@127.0.0.1:5000/x"
    assert redact_text("https://tok@host/a@b") == f"https://{MASK}@host/a@b"
    assert redact_text("sqlite:////tmp/mlflow.db") == "sqlite:////tmp/mlflow.db"
    assert [n for n in ("api_key", "accessToken", "db-password", "APIKey", "secret", "auth", "Credentials") if not secret_name(n)] == []
    assert [n for n in ("monkey", "keys_of", "author", "id_column", "max_bytes", "uri", "tokenizer") if secret_name(n)] == []
    config = {"tracking": {"uri": "http://u:p@h:1", "api_key": "abc", "token": None}, "list": ["ftp://x:y@z/"], "seed": 1}
    redacted = redact_config(config)
    assert redacted == {"tracking": {"uri": f"http://{MASK}@h:1", "api_key": MASK, "token": None}, "list": [f"ftp://{MASK}@z/"], "seed": 1}
    assert redact_config(redacted) == redacted  # idempotent: an audit of a redacted record hashes the same
    settings = load_settings("digits")
    assert config_sha256(settings.as_dict()) == settings.config_sha256  # nothing to redact: the same hash


@pytest.mark.docker
@pytest.mark.slow
def test_no_secret_in_anything_the_harness_wrote(home, competition, docker_client, behave_image, capsys):
    """A tracking URI with a password, pointing at a real ``mlflow server`` (its store under
    HARNESS_HOME), and a mirror URL with one: evaluate, audit, rescore, sync; then no file under
    HARNESS_HOME holds either password, and the record, the run and the report are all there."""
    from evaluations import evaluate
    from mlflow.tracking import MlflowClient
    from test_mlflow_server import MlflowServer

    from harness.records.tracking import Tracker

    server = MlflowServer(home / "mlflow-server")
    shutil.copyfile(home / "mlflow.db", server.root / "mlflow.db")  # the prepared empty store: no schema migrations at start
    server.start()
    try:
        image = behave_image("constant")
        server.wait()
        password, mirror_password = "s3cret-7d1f0a", "m1rr0r-9c2e"
        uri = server.uri.replace("http://", f"http://alice:{password}@")
        overrides = [f"tracking.uri={uri}", f"images.debian_mirror=http://bob:{mirror_password}@deb.example/debian"]
        digits = competition(*overrides)
        record = evaluate(digits, docker_client, image, tracker=Tracker.for_competition(digits))
        assert record.mlflow_run_id
        Ledger.of(digits).save(
            Submission(
                record.submission.id,
                "digits",
                "team",
                image,
                record.submission.image_digest,
                record.submission.submitted_at,
                EVALUATED,
                [record.evaluation_id],
            )
        )
        saved = json.loads((digits.paths.records / f"{record.evaluation_id}.json").read_text())
        assert saved["manifest"]["config"]["tracking"]["uri"] == server.uri.replace("http://", f"http://{MASK}@")
        assert saved["manifest"]["config_sha256"] == config_sha256(saved["manifest"]["config"]) != digits.settings.config_sha256

        assert run(capsys, "audit", "digits", record.evaluation_id, *overrides)[0] == 0
        assert run(capsys, "rescore", "digits", *overrides)[0] == 0
        status, out, err = run(capsys, "sync", "digits", "--json", *overrides)
        assert status == 0 and json.loads(out)["present"] == 1, err
        run_data = MlflowClient(tracking_uri=server.uri).get_run(record.mlflow_run_id)
        assert run_data.data.params["config_sha256"] == saved["manifest"]["config_sha256"]
        artifacts = [a.path for a in MlflowClient(tracking_uri=server.uri).list_artifacts(record.mlflow_run_id)]
        assert f"{record.evaluation_id}.json" in artifacts and "audits" in artifacts
    finally:
        server.stop()

    written = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()]
    assert any(p.suffix == ".db" for p in (home / "mlflow-server").rglob("*"))  # the server's store was searched too
    assert any("audits" in p.parts and p.name == "report.html" for p in written)
    leaks = [str(p) for p in written for secret in (password, mirror_password) if secret.encode() in contents(p)]
    assert leaks == []
    shutil.rmtree(home / "mlflow-server", ignore_errors=True)


@pytest.mark.docker
def test_no_secret_in_tracking_errors_or_a_commands_error_output(home, competition, docker_client, behave_image, capfd, monkeypatch):
    """A tracking URI with a password that fails: MLflow not listening while a record is uploaded (the
    client's own message names the URI), then ``harness sync`` on it, then commands whose URI cannot
    be used at all (a scheme MLflow does not know, a database driver not installed). What the user
    sees says which URI with its password masked; no file under HARNESS_HOME holds the password."""
    from evaluations import evaluate

    from harness.records.tracking import Tracker
    from tests.service_helpers import free_port, harness

    monkeypatch.setenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")  # refused at once, not after the backoff's seconds
    password = "tr4ck-5e1f9b"
    down = f"http://alice:{password}@127.0.0.1:{free_port()}"  # nothing listens there
    digits = competition(f"tracking.uri={down}")
    record = evaluate(digits, docker_client, behave_image("constant"), tracker=Tracker.for_competition(digits))
    assert record.mlflow_run_id is None
    warned = capfd.readouterr().err
    assert f"MLflow tracking failed for {record.evaluation_id}" in warned and down.replace(f"alice:{password}", MASK) in warned
    assert password not in warned

    cases = [
        (("sync", "digits", f"tracking.uri={down}"), f"MLflow at {down.replace(f'alice:{password}', MASK)} cannot be reached"),
        (("sync", "digits", f"tracking.uri=bogus://alice:{password}@h/x"), f"tracking.uri bogus://{MASK}@h/x cannot be used"),
        (
            ("rescore", "digits", f"tracking.uri=postgresql://alice:{password}@127.0.0.1:1/db"),
            f"tracking.uri postgresql://{MASK}@127.0.0.1:1/db cannot be used: ModuleNotFoundError",
        ),
    ]
    for argv, says in cases:
        done = harness(home, *argv, check=False)
        assert (done.returncode, done.stdout) == (2, ""), done.stderr
        assert done.stderr.startswith(f"harness: {says}") and done.stderr.count("\n") == 1, done.stderr
        assert password not in done.stderr
    leaks = [str(p) for p in home.rglob("*") if p.is_file() and not p.is_symlink() and password.encode() in contents(p)]
    assert leaks == []


def contents(path: Path) -> bytes:
    """A file's bytes; nothing for one gone since it was listed (SQLite's -shm and -wal files go
    when the last connection to their database closes)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return b""
