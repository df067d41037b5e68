"""Foreseeable mistakes get one clear line and exit code 2, never a traceback."""

from __future__ import annotations

import pytest

from harness.cli import main


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["round", "nope"], "unknown competition 'nope'; available: diabetes, digits"),
        (["round", "digits", "limits.train.memory=lots"], "limits.train.memory: 'lots' is not a size"),
        (["round", "digits", "limits.train.wal_clock_s=5"], "limits.train.wal_clock_s: no such configuration key"),
        (["round", "digits", "limits=tiny"], "Could not find 'limits/tiny'"),
        (["round", "digits", "seed=x"], "seed: must be a whole number"),
        (["round", "digits", "verbose"], "'verbose' is not an override; write key=value"),
        (["round", "digits", "competition.metrics.primary=log_loss"], "log_loss needs probabilities predictions"),
        (["round", "digits", "competition.metrics.primary=f2"], "competition.metrics"),
        (["round", "digits", "limits.infer.cpus=0"], "cpus must be positive"),
    ],
)
def test_config_errors_name_the_key(argv, expected, capsys, home):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ")
    assert expected in err
    assert "Traceback" not in err


@pytest.mark.docker
def test_submit_of_missing_image_says_what_to_do(capsys, home, docker_client):
    assert main(["submit", "digits", "--team", "t", "--image", "nobody/nothing:0"]) == 2
    err = capsys.readouterr().err
    assert "'nobody/nothing:0' is not on this machine's Docker engine" in err
    assert "docker build" in err


@pytest.mark.docker
def test_submit_with_blank_team_is_refused(capsys, home, behave_image):
    assert main(["submit", "digits", "--team", "  ", "--image", behave_image("constant")]) == 2
    assert "team name is empty" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv",
    [
        ["check", "digits", "--image", "nobody/nothing:0", "verbose"],
        ["leaderboard", "digits", "--json", "verbose"],
        ["verify", "digits", "--json", "ev-1", "=x"],
        ["leaderboard", "digits", "--json", "--nope"],
    ],
)
def test_a_bad_token_after_an_option_is_one_clear_line(argv, capsys, home, monkeypatch):
    monkeypatch.setenv("HARNESS_SIGNING_KEY", "k")  # verify gets as far as the configuration
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("harness: ") and err.count("\n") == 1 and "Traceback" not in err
