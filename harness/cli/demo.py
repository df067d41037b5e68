"""``harness demo``: the main job once, through the service, on the bundled example.

Build the images, prepare the digits data, start ``harness serve digits`` (a subprocess on free
loopback ports, or ``--port``/``--registry-port``; no quota, the demo runs many times a day), add
the demo's team (or give it a new token when an earlier run added it), push the sample submission
as that team the way ``harness push`` does, follow it to its verdict the way ``harness status
--wait`` does, print the remote leaderboard and the pages' address, and stop the service
(``--keep-serving``: on Ctrl-C). Rerunnable on one work directory.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from harness.cli import images
from harness.cli.common import add_command, add_json, docker_client, load_competition, print_json, progress
from harness.cli.remote import exit_status, render_board, wait_for_verdict
from harness.util.children import bound_to_parent
from harness.util.errors import HarnessError

SAMPLE = "harness/sample-submission:latest"
TEAM = "demo"
NO_QUOTA = "competition.quota.per_day=null"
START_TIMEOUT_S = 300.0  # the service's start (its registry; the data is prepared before)
WAIT_S = 1800.0  # the sample's evaluation (the first round also starts Ray)
STOP_TIMEOUT_S = 90.0


def register(commands) -> None:
    demo = add_command(
        commands,
        "demo",
        _demo,
        "build the images, start the service, push the sample as a team, wait for its verdict, print the leaderboard",
        competition=False,
    )
    demo.add_argument("--port", type=int, help="the service's port on 127.0.0.1 (default: a free one)")
    demo.add_argument("--registry-port", type=int, help="the registry's port on 127.0.0.1 (default: a free one)")
    demo.add_argument("--keep-serving", action="store_true", help="keep the service running after the demo, until Ctrl-C")
    add_json(demo, "a summary: the submission, its verdict, the leaderboard, the addresses")


def _demo(args: argparse.Namespace) -> int:
    from harness.client import ServiceClient, push_image
    from harness.submissions.teams import Teams

    progress("harness demo: building the images (the first run builds them from scratch: minutes)")
    images.build(args.overrides)
    overrides = [NO_QUOTA, *args.overrides]
    progress("harness demo: preparing the digits data (on the first run)")
    competition = load_competition("digits", overrides)
    team, token = _team(Teams(competition.home, competition.name))
    port, registry_port = args.port or _free_port(), args.registry_port or _free_port()
    service = _start(competition.home, port, registry_port, overrides)
    before = signal.signal(signal.SIGTERM, _terminated)  # a SIGTERM to the demo stops the service too
    # Ctrl-C stops it even where SIGINT came ignored (a shell starts background jobs so), as it stops a round.
    before_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        url = f"http://127.0.0.1:{port}"
        client = ServiceClient(url, token)
        me = client.whoami()
        progress(f"harness demo: pushing {SAMPLE} as team {me['team']!r} to {me['registry']}")
        pushed = push_image(
            docker_client(), SAMPLE, registry=me["registry"], namespace=me["namespace"], username=me["team_id"], token=token, log=progress
        )
        submission = client.submit(competition.name, pushed.repository, pushed.digest, "harness demo: the sample submission")
        progress(f"harness demo: submitted {pushed.repository}@{pushed.digest} as {submission.id}; its states:")
        final = wait_for_verdict(client, competition.name, submission.id, WAIT_S)
        board = client.leaderboard(competition.name)
        urls = {"pages": f"{url}/", "api": f"{url}/api/v1", "docs": f"{url}/docs", "registry": me["registry"]}
        if args.json:
            print_json(
                {
                    "team": {"name": team.name, "id": team.id},
                    "submission": final.wire(),
                    "verdict": final.verdict,
                    "leaderboard": board,
                    "urls": urls,
                }
            )
        else:
            print(render_board(board))
            print(f"pages: {urls['pages']}  (API {urls['api']}, docs {urls['docs']}, registry {urls['registry']})")
        if args.keep_serving:
            progress(f"harness demo: the service keeps running at {url}/ (team {team.name!r}); Ctrl-C stops it")
            _serve_until_interrupted(service)
        return exit_status(final)
    finally:
        signal.signal(signal.SIGTERM, before)
        signal.signal(signal.SIGINT, before_int)
        _stop(service)


def _terminated(signum, frame) -> None:
    raise KeyboardInterrupt


def _team(teams):
    """The demo's team and a token for it: added on the first run, a new token on later ones."""
    if any(team.name == TEAM for team in teams.all()):
        team, token = teams.rotate(TEAM)
        progress(f"harness demo: team {TEAM!r} ({team.id}) exists from an earlier run; it has a new token")
    else:
        team, token = teams.add(TEAM)
        progress(f"harness demo: added team {TEAM!r} ({team.id}), pushing to {team.namespace}")
    return team, token


def _start(home: Path, port: int, registry_port: int, overrides: list[str]) -> subprocess.Popen:
    """``harness serve digits`` in a session of its own (the demo stops it; a Ctrl-C meant for the
    demo does not reach it twice), its output in ``service/digits/demo-serve.log``; once it answers.
    A demo that dies without stopping it (SIGKILL) takes it along: it gets the SIGTERM of a Ctrl-C."""
    import requests

    log_path = home / "service" / "digits" / "demo-serve.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "harness.cli", "serve", "digits", "--port", str(port), "--registry-port", str(registry_port)]
    progress(f"harness demo: starting the service on 127.0.0.1:{port} (registry 127.0.0.1:{registry_port}); its log: {log_path}")
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [*command, *overrides],
            env={**os.environ, "HARNESS_HOME": str(home)},
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            preexec_fn=bound_to_parent(signal.SIGTERM),
        )
    session = requests.Session()
    session.trust_env = False
    deadline = time.monotonic() + START_TIMEOUT_S
    try:
        while True:
            if process.poll() is not None:
                tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
                raise HarnessError(f"the service exited ({process.returncode}) before it answered: {tail[0]} (whole log: {log_path})")
            try:
                if session.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=2).status_code == 200:
                    return process
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise HarnessError(f"the service did not answer on 127.0.0.1:{port} in {START_TIMEOUT_S:g} s; see {log_path}")
            time.sleep(0.2)
    except BaseException:
        _stop(process)
        raise


def _serve_until_interrupted(process: subprocess.Popen) -> None:
    try:
        process.wait()
    except KeyboardInterrupt:
        progress("harness demo: stopping the service")
        return
    raise HarnessError(f"the service exited on its own ({process.returncode}); see service/digits/demo-serve.log")


def _stop(process: subprocess.Popen) -> None:
    """SIGTERM (as an organizer's Ctrl-C: the registry and the evaluator stop with it); SIGKILL to its group if it hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]
