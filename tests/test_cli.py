"""The command line people expect: any order after the command, --version, bare `harness`, completion, --json."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

import harness
import harness.cli.leaderboard
from harness.cli import CONFIG_PATH_ENV, main, parse

IMAGE = "nobody/nothing:0"
OVERRIDE = "limits.train.wall_clock_s=6"


def run(capsys, *argv: str) -> tuple[int, str, str]:
    capsys.readouterr()
    status = main(list(argv))
    out, err = capsys.readouterr()
    return status, out, err


def write_records(home, *records: tuple[str, str, float | None]) -> list[str]:
    """Queue (team, verdict, public score) submissions as evaluated, each with its record; returns their ids."""
    from harness.submissions.ledger import EVALUATED, Ledger

    ledger, ids = Ledger(home, "digits"), []
    directory = home / "competitions" / "digits" / "records"
    directory.mkdir(parents=True, exist_ok=True)
    for n, (team, verdict, score) in enumerate(records):
        from test_record import make_record

        submission = ledger.add(team, "img", "sha256:" + "0" * 64)
        submission.state, submission.evaluations = EVALUATED, [f"ev-{submission.id}"]
        ledger.save(submission)
        scores = {"public": {"accuracy": score}, "private": {"accuracy": score}} if score is not None else {}
        record = make_record(
            f"ev-{submission.id}",
            submission.id,
            team,
            verdict,
            scores,
            submitted_at=f"2026-01-0{n + 1}T00:00:00Z",
            message="" if score is not None else "failed",
        )
        (directory / f"ev-{submission.id}.json").write_text(json.dumps(record))
        ids.append(submission.id)
    return ids


# --- order, version, bare harness, mistakes ---------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "digits", "--image", IMAGE, OVERRIDE, "--json"],
        ["check", "digits", OVERRIDE, "--image", IMAGE, "--json"],
        ["check", "--json", "digits", "--image", IMAGE, OVERRIDE],
        ["check", "--image", IMAGE, "--json", "digits", OVERRIDE],
    ],
)
def test_options_and_overrides_in_any_order(argv):
    args = parse(argv)
    assert (args.competition, args.image, args.json, args.overrides) == ("digits", IMAGE, True, [OVERRIDE])


def test_ids_and_overrides_mix_with_options():
    args = parse(["select", "digits", "s-1", "--team", "A", "competition.leaderboard.final_selections=2", "s-2", "--json"])
    assert args.items == ["s-1", "competition.leaderboard.final_selections=2", "s-2"] and args.team == "A" and args.json
    args = parse(["verify", "digits", "--json", "ev-1", "a=1"])
    assert args.items == ["ev-1", "a=1"]


def test_an_override_after_an_option_reaches_the_configuration(home, capsys):
    # check loads the configuration before it looks for the image: the misspelled key is the first mistake.
    status, _, err = run(capsys, "check", "digits", "--image", IMAGE, "limits.train.wal_clock_s=6")
    assert status == 2 and err.startswith("harness: limits.train.wal_clock_s: no such configuration key")
    status, _, err = run(capsys, "leaderboard", "digits", "--json", "competition.leaderboard.rule=worst")
    assert status == 2 and "competition.leaderboard.rule: must be one of best, last, got 'worst'" in err


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["leaderboard", "digits", "--bogus"], "harness: unrecognized arguments: --bogus (see 'harness leaderboard --help')"),
        (["init", "a", "b"], "harness: unrecognized arguments: b (see 'harness init --help')"),
        (["check", "digits"], "harness: the following arguments are required: --image (see 'harness check --help')"),
        (["frobnicate"], "harness: argument COMMAND: invalid choice: 'frobnicate'"),
        (["completion", "cmd"], "harness: argument shell: invalid choice: 'cmd'"),
    ],
)
def test_usage_mistakes_are_one_line_and_exit_2(capsys, argv, expected):
    status, out, err = run(capsys, *argv)
    assert status == 2 and out == ""
    assert err.startswith(expected) and err.count("\n") == 1, err


def test_version(capsys):
    assert run(capsys, "--version") == (0, f"harness {harness.__version__}\n", "")
    assert re.fullmatch(r"\d+\.\d+\.\d+\S*", harness.__version__)


def test_bare_harness_lists_the_commands(capsys):
    status, out, err = run(capsys)
    assert status == 0 and err == ""
    assert out.startswith("usage: harness")
    for command in ("submit", "round", "leaderboard", "check", "audit", "verify", "completion", "--config-dir", "--version"):
        assert command in out


@pytest.mark.parametrize(("shell", "marker"), [("bash", "-F _shtab_harness harness"), ("zsh", "#compdef harness")])
def test_completion_scripts(capsys, shell, marker):
    status, out, _ = run(capsys, "completion", shell)
    assert status == 0 and marker in out
    for word in ("leaderboard", "--format", "--json", "--config-dir", "prepare"):
        assert word in out


@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_bash_completes_commands_and_options(capsys, tmp_path):
    script = tmp_path / "harness.bash"
    script.write_text(run(capsys, "completion", "bash")[1])

    def complete(*words: str) -> list[str]:
        line = f"source {script}; COMP_WORDS=(harness {' '.join(words)}); COMP_CWORD={len(words)}; _shtab_harness; echo ${{COMPREPLY[@]}}"
        return subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=True).stdout.split()

    assert complete("lea") == ["leaderboard"]
    assert complete("leaderboard", "digits", "--f") == ["--format"]
    assert complete("data", "c") == ["check"]


# --- --config-dir ---------------------------------------------------------------------------------


def test_config_dir_before_and_after_the_command_is_prepended_for_the_command(home, tmp_path, capsys, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    first.mkdir(), second.mkdir()
    monkeypatch.setenv(CONFIG_PATH_ENV, "/already/there")
    seen = []
    monkeypatch.setattr(harness.cli.leaderboard, "_leaderboard", lambda args: seen.append(os.environ[CONFIG_PATH_ENV]) or 0)
    assert main(["--config-dir", str(first), "leaderboard", "digits", "--config-dir", str(second)]) == 0
    assert seen == [os.pathsep.join([str(first), str(second), "/already/there"])]
    assert os.environ[CONFIG_PATH_ENV] == "/already/there"  # restored after the command
    monkeypatch.delenv(CONFIG_PATH_ENV)
    assert main(["leaderboard", "--config-dir", str(first), "digits"]) == 0
    assert seen[-1] == str(first) and CONFIG_PATH_ENV not in os.environ
    status, _, err = run(capsys, "leaderboard", "digits", "--config-dir", str(tmp_path / "missing"))
    assert status == 2 and err == f"harness: --config-dir {tmp_path / 'missing'}: no such directory\n"


# --- --json: data on standard output, nothing else ---------------------------------------------


def test_leaderboard_json_is_format_json(home, capsys):
    ids = write_records(home, ("A", "SCORED", 0.9), ("B", "SCORED", 0.95), ("C", "TIMEOUT", None))
    status, out, _ = run(capsys, "leaderboard", "digits", "--json")
    assert status == 0
    assert [(e["team"], e["submission"], e["rank"]) for e in json.loads(out)] == [("B", ids[1], 1), ("A", ids[0], 2), ("C", ids[2], None)]
    assert run(capsys, "leaderboard", "--format", "json", "digits")[1] == out
    history = json.loads(run(capsys, "leaderboard", "digits", "--team", "A", "--json")[1])
    assert [h["submission"] for h in history] == [ids[0]]


def test_select_and_finalize_json(home, capsys):
    ids = write_records(home, ("A", "SCORED", 0.9), ("A", "SCORED", 0.8))
    status, out, err = run(capsys, "select", "digits", ids[1], "--json", "--team", "A")
    assert status == 0 and json.loads(out) == {"competition": "digits", "team": "A", "selected": [ids[1]]}
    assert "team 'A' selected" in err
    status, out, _ = run(capsys, "finalize", "digits", "--json")
    final = json.loads(out)
    assert status == 0 and final["finalized_at"] and [(e["team"], e["submission"]) for e in final["leaderboard"]] == [("A", ids[1])]


def test_data_prepare_and_check_json(home, capsys):
    status, out, _ = run(capsys, "data", "prepare", "digits", "--json")
    prepared = json.loads(out)
    assert status == 0 and prepared["competition"] == "digits" and re.fullmatch(r"[0-9a-f]{64}", prepared["data_sha256"])
    status, out, _ = run(capsys, "data", "check", "--json", "digits")
    report = json.loads(out)
    assert status == 0 and report["errors"] == 0 and report["data"] == prepared["data"]
    assert {f["level"] for f in report["findings"]} == {"ok"} and len(report["findings"]) == 6


def test_verify_json(home, capsys, monkeypatch):
    from harness.records.signing import KEY_ENV, KEY_FILE_ENV

    monkeypatch.delenv(KEY_FILE_ENV, raising=False)
    monkeypatch.setenv(KEY_ENV, "organizer-key")
    ids = write_records(home, ("A", "SCORED", 0.9))
    status, out, _ = run(capsys, "verify", "digits", "--json")
    assert status == 1
    assert json.loads(out) == {"competition": "digits", "records": {f"ev-{ids[0]}": "unsigned"}, "verified": 0, "total": 1}


def test_init_json(tmp_path, capsys):
    status, out, _ = run(capsys, "init", "--json", str(tmp_path / "mine"))
    assert status == 0 and sorted(os.path.basename(p) for p in json.loads(out)) == ["Dockerfile", "README.md", "main.py"]


@pytest.mark.docker
def test_round_json_with_nothing_pending(home, capsys, docker_client):
    status, out, err = run(capsys, "round", "digits", "--json")
    assert status == 0 and "no pending submissions in digits" in err
    assert json.loads(out) == {
        "competition": "digits",
        "round_id": None,
        "verdicts": {},
        "evaluated": {},
        "retried": 0,
        "cancelled": [],
        "left_pending": [],
        "wall_s": 0.0,
    }
