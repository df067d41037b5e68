"""``harness demo``: the main job through the real service. It builds the images, starts ``harness
serve digits`` on free loopback ports, pushes the sample as the demo's team with the client's push,
follows it to a verdict, prints the remote board and the pages' address, and stops the service;
run again on the same work directory it gives the team a new token; ``--keep-serving`` keeps the
service up until Ctrl-C (which stops it even where SIGINT came ignored), and a demo killed outright
takes its service along. A port in use is one clear line and leaves nothing running."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from harness.cli import main
from harness.util.children import has_ended
from tests.service_helpers import free_port

pytestmark = [pytest.mark.docker, pytest.mark.slow]

NO_SIZE_CAP = "competition.intake.max_image_size=null"
SHORT_TRAIN = "limits.train.wall_clock_s=5"


def answers(url: str) -> bool:
    try:
        return requests.get(f"{url}/api/v1/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


def registries_of(home: Path) -> list[int]:
    """Registry processes serving ``home`` (their command line names its config)."""
    config = str(home / "service" / "digits" / "registry.yml")
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and config in (proc / "cmdline").read_bytes().decode(errors="replace").split("\0"):
                found.append(int(proc.name))
        except OSError:
            pass
    return found


@pytest.fixture
def home(home, sample_wheelhouse) -> Path:
    """The work directory holding the wheelhouse the sample was built from (the demo verifies it
    instead of downloading it again; the download is tests/test_images_reproducible.py's)."""
    shutil.copytree(sample_wheelhouse, home / "wheelhouse", copy_function=link_or_copy)
    return home


def link_or_copy(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system (HARNESS_TEST_WHEELHOUSE_HOME)
        shutil.copy2(source, target)


def test_demo_twice_then_kept_serving_until_ctrl_c(home, sample_image, capsys):
    code = main(["demo", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    summary = json.loads(out)
    submission = summary["submission"]
    assert summary["verdict"] == "SCORED" == submission["verdict"] and submission["state"] == "evaluated"
    assert submission["team"] == "demo" and "/teams/demo/sample-submission@sha256:" in submission["image"]
    assert summary["leaderboard"]["metric"] in submission["public_scores"]
    assert submission["public_scores"]["accuracy"] >= 0.90  # the sample is good
    assert [(r["rank"], r["team"], r["submission_id"]) for r in summary["leaderboard"]["rows"]] == [(1, "demo", submission["id"])]
    url = summary["urls"]["pages"].rstrip("/")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url) and summary["urls"]["api"] == f"{url}/api/v1"
    # the states as they changed (the smoke stage first), then a stopped service: nothing answers, no registry is left
    assert f"{submission['id']}: queued" in err and "-> running smoke train" in err and "-> evaluated SCORED" in err
    assert "added team 'demo'" in err and not answers(url) and registries_of(home) == []

    # Again on the same work directory, as a subprocess, kept serving: a new token for the same team. Its
    # overrides reach the service: the full phases only, and a train of 5 s that the sample's overruns (its
    # training ran to a score above), so the verdict is the limit's and the exit status says it failed.
    # No size cap either: the intake's unpacked-size check (it streams the sample's 1.4 GB of layers) ran above.
    # It starts with SIGINT ignored, as a shell starts a background job: its Ctrl-C must stop it all the same.
    env = {**os.environ, "HARNESS_HOME": str(home)}
    inherited = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        demo = subprocess.Popen(
            [sys.executable, "-m", "harness.cli", "demo", "--keep-serving", "competition.smoke.enabled=false", SHORT_TRAIN, NO_SIZE_CAP],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
    finally:
        signal.signal(signal.SIGINT, inherited)
    said, deadline = [], time.monotonic() + 900
    try:
        for line in demo.stderr:
            said.append(line)
            if "Ctrl-C stops it" in line or time.monotonic() > deadline:
                break
        assert "Ctrl-C stops it" in said[-1], "".join(said[-20:])
        kept = re.search(r"keeps running at (http://127\.0\.0\.1:\d+)/", said[-1]).group(1)
        assert any("exists from an earlier run; it has a new token" in line for line in said)
        states = [line for line in said if re.match(r"sub-[0-9a-f]+: ", line)]
        assert any("-> running train" in line for line in states) and not any("smoke" in line for line in states)
        assert states[-1].rstrip().endswith("-> evaluated TIMEOUT (train)"), "".join(states)
        assert kept != url and answers(kept)
        board = requests.get(f"{kept}/api/v1/competitions/digits/leaderboard", timeout=30).json()
        assert [row["team"] for row in board["rows"]] == ["demo"]
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        out, rest = demo.communicate(timeout=120)
    finally:
        if demo.poll() is None:
            demo.kill()
    assert demo.returncode == 1, rest  # its submission failed
    assert "digits: public leaderboard" in out and f"pages: {kept}/" in out
    assert not answers(kept) and registries_of(home) == []


def test_demo_port_in_use_is_one_line_and_leaves_nothing_running(home, sample_image, capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = main(["demo", "--port", str(port)])
    out, err = capsys.readouterr()
    assert code == 2 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("harness: the service exited (") and f"127.0.0.1:{port}" in last and "demo-serve.log" in last
    assert registries_of(home) == []


def test_a_killed_demo_takes_its_service_along(home):
    """A demo killed outright (SIGKILL: no Ctrl-C, no chance to stop anything) still ends the service it
    started: the service gets the SIGTERM of a Ctrl-C and stops its registry and evaluator with it."""
    port, registry_port = free_port(), free_port()
    script = (
        "from pathlib import Path\nimport time\nfrom harness.cli.demo import _start\n"
        f"print(_start(Path({str(home)!r}), {port}, {registry_port}, []).pid, flush=True)\ntime.sleep(600)\n"
    )
    demo = subprocess.Popen(
        [sys.executable, "-c", script], env={**os.environ, "HARNESS_HOME": str(home)}, stdout=subprocess.PIPE, text=True
    )
    service = None
    try:
        service = int(demo.stdout.readline())  # printed once the service answers
        assert answers(f"http://127.0.0.1:{port}") and registries_of(home)
        demo.kill()
        demo.wait()
        deadline = time.monotonic() + 60
        while (not has_ended(service) or registries_of(home)) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert has_ended(service) and registries_of(home) == [] and not answers(f"http://127.0.0.1:{port}")
    finally:
        demo.kill()
        for pid in ([service] if service and not has_ended(service) else []) + registries_of(home):
            os.kill(pid, signal.SIGKILL)
