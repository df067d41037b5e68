"""A broken competition config is refused before anything runs, with the key and what is wrong."""

from __future__ import annotations

import os
import shutil

import pytest

import harness.competition.config
from harness.cli import main


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty work directory: a config error must stop the command before it writes anything."""
    monkeypatch.setenv("HARNESS_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("competition.quota.per_day=-1", "competition.quota.per_day: must be a positive whole number, got -1"),
        ("competition.quota.per_day=five", "competition.quota.per_day: must be a positive whole number, got 'five'"),
        ("competition.leaderboard.rule=worst", "competition.leaderboard.rule: must be one of best, last, got 'worst'"),
        ("competition.leaderboard.final_selections=0", "competition.leaderboard.final_selections: must be a positive whole number, got 0"),
        ("competition.intake.max_image_size=huge", "competition.intake.max_image_size: 'huge' is not a size"),
        ("competition.data.test_table=../hidden/labels.csv", "competition.data.test_table: must be a file name (no directory)"),
        ("competition.split.group_column=''", "competition.split.group_column: must be a column name or null"),
    ],
)
def test_bad_values_name_the_key(home, capsys, override, expected):
    assert main(["leaderboard", "digits", override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ") and expected in err and "Traceback" not in err
    assert not home.exists()


BROKEN = {  # (text in digits.yaml, its broken replacement): the message
    (
        "\nquota:",
        "\nqouta:",
    ): "competition.qouta: unknown key (known: name, title, prepare, source, command, predictions, metrics, intake, quota",
    ("per_day: 5", "per_dya: 5"): "competition.quota.per_dya: unknown key (known: per_day, charge_smoke_failures, concurrent_per_team)",
    ("rule: best", "rule: [best]"): "competition.leaderboard.rule: must be one of best, last, got ['best']",
    ("name: digits", "name: digts"): "competition.name: 'digts' differs from the file name digits.yaml",
}


@pytest.mark.parametrize("edit", BROKEN)
def test_a_broken_competition_file_is_refused_before_anything_runs(home, tmp_path, monkeypatch, capsys, edit):
    configs = tmp_path / "configs"
    shutil.copytree(harness.competition.config.BUNDLED_DIR, configs)
    path = configs / "competition" / "digits.yaml"
    assert edit[0] in path.read_text()
    path.write_text(path.read_text().replace(*edit))
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(configs))  # layered on the bundled configs: its digits.yaml wins
    assert main(["round", "digits"]) == 2
    assert BROKEN[edit] in capsys.readouterr().err
    assert not home.exists()  # nothing ran: no data prepared, no ledger


def test_a_composition_kept_for_reuse_follows_the_files_and_is_the_caller_s_own(home, tmp_path, monkeypatch):
    """A process composes the same configuration once while its files stay the same: an edit to a file
    (the same size and time even) is composed afresh, a caller changing its copy changes nobody
    else's, and a resolver call (``${oc.env:...}``) is composed every time."""
    from harness.competition.config import compose_config

    configs = tmp_path / "configs"
    shutil.copytree(harness.competition.config.BUNDLED_DIR, configs)
    monkeypatch.setenv("HARNESS_CONFIG_PATH", str(configs))
    path = configs / "competition" / "digits.yaml"
    first = compose_config("digits")
    first.competition.title = "changed by its caller"
    assert compose_config("digits").competition.title == "Handwritten digits (8x8)"

    stat = path.stat()
    path.write_text(path.read_text().replace("Handwritten digits (8x8)", "Handwritten digits (9x9)"))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert path.stat().st_size == stat.st_size and compose_config("digits").competition.title == "Handwritten digits (9x9)"

    monkeypatch.setenv("HARNESS_TEST_TITLE", "one")
    assert compose_config("digits", ["competition.title=${oc.env:HARNESS_TEST_TITLE}"]).competition.title == "one"
    monkeypatch.setenv("HARNESS_TEST_TITLE", "two")
    assert compose_config("digits", ["competition.title=${oc.env:HARNESS_TEST_TITLE}"]).competition.title == "two"
