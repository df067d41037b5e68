"""The participant's install: ``pip install harness`` without the organizer extra, into a fresh
virtual environment, with its dependencies really installed from the package index (no borrowed
site-packages, unlike test_package.py): Ray, MLflow and scikit-learn are truly absent there.

The participant commands work (``--version``, ``init``, ``check --kit`` against a kit the
organizer's side exported with a real container, and the remote ones against the real service:
``login``, ``push``, ``submissions``, ``leaderboard --remote``, ``kit pull``); an organizer
command says in one ``harness:`` line what to install. The install takes about 20 s with a warm pip cache (README, "Installing").
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from wheels import run_in

from harness.cli import main
from tests.service_helpers import running_service, tiny_image

ORGANIZER_ONLY = ("ray", "mlflow", "sklearn")


@pytest.fixture(scope="module")
def light(wheel, tmp_path_factory) -> Path:
    """A fresh virtual environment holding the wheel built from this checkout and its light dependencies."""
    tmp = tmp_path_factory.mktemp("light")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    proc = subprocess.run(
        [venv / "bin" / "python", "-m", "pip", "install", "-q", "--disable-pip-version-check", str(wheel)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return venv


def test_the_organizer_side_is_absent(light, tmp_path):
    for module in ORGANIZER_ONLY:
        proc = run_in(light, str(light / "bin" / "python"), "-c", f"import {module}", cwd=tmp_path, home=tmp_path / "home")
        assert proc.returncode != 0 and "ModuleNotFoundError" in proc.stderr, f"{module} is importable in the light install"


def test_participant_commands_work(light, tmp_path):
    home = tmp_path / "home"
    version = run_in(light, "harness", "--version", cwd=tmp_path, home=home)
    assert version.returncode == 0 and version.stdout.startswith("harness "), version.stdout + version.stderr
    init = run_in(light, "harness", "init", str(tmp_path / "mine"), cwd=tmp_path, home=home)
    assert init.returncode == 0, init.stdout + init.stderr
    assert (tmp_path / "mine" / "Dockerfile").is_file() and (tmp_path / "mine" / "main.py").is_file()


def test_an_organizer_command_names_the_extra(light, tmp_path):
    proc = run_in(light, "harness", "round", "digits", cwd=tmp_path, home=tmp_path / "home")
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("harness: "), proc.stderr
    assert "pip install 'harness[organizer]'" in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.docker
def test_check_kit_scores_in_the_light_install(light, behave_image, tmp_path):
    image = behave_image("constant")
    kit = tmp_path / "kit"
    organizer_home = tmp_path / "organizer-home"
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_CONFIG_DIR", "HARNESS_CONFIG_PATH")}
    env["HARNESS_HOME"] = str(organizer_home)
    exported = subprocess.run(
        [sys.executable, "-m", "harness.cli", "kit", "digits", "--output", str(kit)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert exported.returncode == 0, exported.stdout + exported.stderr
    participant_home = tmp_path / "participant-home"  # empty: the check needs nothing of the organizer's
    proc = run_in(light, "harness", "check", "--kit", str(kit), "--image", image, cwd=tmp_path, home=participant_home, timeout=600)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SCORED" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.docker
def test_the_remote_commands_work_in_the_light_install(light, home, docker_client, tmp_path):
    main(["service", "pause", "digits", "evaluation"])  # the organizer's side: nothing here needs a round
    tiny = "harness-light/tiny:1"
    tiny_image(docker_client, tiny)
    config = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    try:
        with running_service(home) as service:
            team = service.add_team("Light Team")

            def participant(*args: str):
                proc = run_in(light, "harness", *args, cwd=tmp_path, home=tmp_path / "participant-home", env=config, timeout=300)
                assert proc.returncode == 0 and "Traceback" not in proc.stderr, f"harness {' '.join(args)}: {proc.stdout}{proc.stderr}"
                return proc.stdout

            participant("login", service.url, "--token", team["token"])
            pushed = json.loads(participant("push", "digits", tiny, "-m", "from the light install", "--json"))
            assert pushed["state"] == "queued" and pushed["message"] == "from the light install"
            listed = json.loads(participant("submissions", "digits", "--json"))["submissions"]
            assert [s["id"] for s in listed] == [pushed["id"]]
            assert "public leaderboard" in participant("leaderboard", "digits", "--remote")
            participant("kit", "pull", "digits", "--output", str(tmp_path / "kit"))
            assert (tmp_path / "kit" / "kit.json").is_file()
    finally:
        docker_client.images.remove(tiny, force=True)
