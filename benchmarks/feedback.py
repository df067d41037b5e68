"""Feedback through the service: what a participant waits for, what 200 pollers cost, what the API
process keeps per submission. The real ``harness serve digits`` runs in a subprocess on free
loopback ports (tests/service_helpers.py), started once: its evaluation child keeps Ray up between
rounds, so only the first submission after the start pays Ray's start-up (reported on its own).

a. Latency: ``harness push`` (the real command, a subprocess) of a FROM-scratch image whose
   entrypoint does not exist, then polling the API the way ``harness status --wait`` does (its own
   function) until the verdict; the same through the client functions in this process. The floor,
   in the same run: a raw push of an image of the same size through the SDK with the team's
   credential, then one raw ``docker run`` of it. Every image is new (its own content), so each
   push uploads its layer: absent in both.
b. Load: 200 client threads (4 teams, 50 clients each sharing its token; a requests session each)
   polling one of their team's submissions and the public leaderboard every 2 s (the steady pace
   of ``status --wait``) while a round of ``nap1`` submissions runs; the same round without them.
c. Memory: many submissions through the API (evaluation paused: the API process alone is
   measured), each followed by a status call, every tenth by a leaderboard and a logs call; the
   ``harness serve`` process's VmRSS after a warm-up and at the end.
d. Smoke: a submission that trains for minutes on the full data (``slowcrash``: 0.1 s per training
   row) and then crashes in infer, pushed to a service with the competition's smoke stage and to one
   without it (``competition.smoke.enabled=false``); the time from the push to the verdict in each,
   after a warm-up submission (Ray up in both).

Usage: ``python benchmarks/feedback.py [--quick]``. Nothing here asserts a timing.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import resource
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

import requests
from common import ROOT, arguments, behave_image, load_average, median, work_home

from harness.cli.remote import wait_for_verdict
from harness.client import ServiceClient, push_image
from harness.client.wire import SubmissionView
from harness.competition.paths import ServicePaths
from harness.runner.engine import connect
from harness.service.control import set_paused
from tests.service_helpers import Service, push, tiny_image

COMPETITION = "digits"
CLIENTS, LOAD_TEAMS, POLL_S = 200, 4, 2.0
WARMUP = 200
TAGS: list[str] = []  # what this run tagged on the engine, removed at the end


def main() -> None:
    args = arguments(__doc__)
    repeats, load_s, round_size, total = (3, 20.0, 6, 300) if args.quick else (7, 60.0, 16, 2000)
    docker = connect()
    nap = behave_image("nap1")
    print(f"feedback benchmark: client and service on this machine ({os.cpu_count()} cores, shared), load {load_average()}")
    with work_home() as home:
        started = time.monotonic()
        service = Service(home, overrides=("competition.quota.per_day=null",)).start()
        print(
            f"  service up in {time.monotonic() - started:.1f} s (API {service.url}, registry {service.registry}); started once, Ray kept warm"
        )
        try:
            latency(service, docker, repeats)
            teams = [service.add_team(f"load {i}") for i in range(LOAD_TEAMS)]
            for team in teams:
                repository = f"{service.registry}/{team['namespace']}/nap1"
                docker.images.get(nap).tag(repository, "1")
                TAGS.append(f"{repository}:1")
                team["nap"] = (repository, push(docker, f"{repository}:1", team))
            load(service, teams, round_size, load_s)
            memory(service, docker, teams[0], total)
        finally:
            service.stop()
        smoke(docker, home)
    for tag in TAGS:
        with contextlib.suppress(Exception):
            docker.images.remove(tag, force=True)


# -- a. latency ------------------------------------------------------------------------------------
def latency(service: Service, docker, repeats: int) -> None:
    team = service.add_team("latency")
    env = {**os.environ, "HARNESS_SERVER": service.url, "HARNESS_TOKEN": team["token"], "XDG_CONFIG_HOME": str(service.home / "config")}
    client = ServiceClient(service.url, team["token"])
    registry = f"{service.registry}/{team['namespace']}"
    floor, command, inproc, ready = [], [], [], []
    first = None
    for i in range(repeats + 1):
        local = fresh_tiny(docker, f"fb-harness-{i}")
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", "harness.cli", "push", COMPETITION, local, "--json"], env=env, capture_output=True, text=True, cwd=ROOT
        )
        assert done.returncode == 0, done.stderr
        submission_id = json.loads(done.stdout)["id"]
        verdict = quietly(wait_for_verdict, client, COMPETITION, submission_id, 600.0)
        took = time.monotonic() - started
        assert verdict.verdict == "RUNTIME_ERROR", verdict
        ready.append(server_seconds(verdict))
        if i == 0:
            first = took  # the first after the start: the evaluator may still be bringing Ray up
        else:
            command.append(took)
            inproc.append(in_process(service, client, team, docker, f"fb-client-{i}"))
        floor.append(raw_floor(docker, registry, team, fresh_tiny(docker, f"fb-floor-{i}"), i))
    f = median(floor)
    print(f"a. feedback latency: a FROM-scratch image whose entrypoint does not exist, {repeats} pushes each way (+1 first)")
    print(f"  floor: SDK push (team credential) + docker run  median {f:5.2f} s  max {max(floor):5.2f} s")
    row("harness push (command) -> verdict polled", command, f)
    row("client functions in-process -> verdict", inproc, f)
    print(f"  first submission after the service's start       {first:5.2f} s  ({first - f:+.2f} s over the floor)")
    print(f"  (submit -> verdict recorded, server side: median {median(ready):.2f} s; the rest is the push and the poll's 0.25-2 s steps)")


def row(what: str, values: list[float], floor: float) -> None:
    m = median(values)
    print(f"  {what:<48} median {m:5.2f} s  max {max(values):5.2f} s  {m - floor:+.2f} s over the floor (target <= +3 s)")


def in_process(service: Service, client: ServiceClient, team: dict, docker, tag: str) -> float:
    local = fresh_tiny(docker, tag)
    started = time.monotonic()
    me = client.whoami()
    pushed = push_image(docker, local, registry=me["registry"], namespace=me["namespace"], username=me["team_id"], token=team["token"])
    submission = client.submit(COMPETITION, pushed.repository, pushed.digest)
    quietly(wait_for_verdict, client, COMPETITION, submission.id, 600.0)
    return time.monotonic() - started


def raw_floor(docker, registry: str, team: dict, local: str, i: int) -> float:
    target = f"{registry}/floor"
    docker.images.get(local).tag(target, str(i))
    TAGS.append(f"{target}:{i}")
    started = time.monotonic()
    push(docker, f"{target}:{i}", team)
    subprocess.run(["docker", "run", "--rm", "--network", "none", local, "train"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def fresh_tiny(docker, name: str) -> str:
    """A tiny image with content of its own (its layer is in no registry yet)."""
    tag = f"harness-bench/{name}-{os.getpid()}-{random.getrandbits(32):08x}:latest"
    tiny_image(docker, tag)
    TAGS.append(tag)
    return tag


def server_seconds(submission: SubmissionView) -> float:
    assert submission.evaluated_at is not None
    return (datetime.fromisoformat(submission.evaluated_at) - datetime.fromisoformat(submission.submitted_at)).total_seconds()


def quietly(function, *args):
    with contextlib.redirect_stderr(io.StringIO()):
        return function(*args)


# -- b. load ---------------------------------------------------------------------------------------
def load(service: Service, teams: list[dict], size: int, seconds: float) -> None:
    alone_s = timed_round(service, teams, size)
    stop, samples, errors = threading.Event(), [], []
    ids: dict[str, list[str]] = {}
    start_cpu = os.times()
    threads = [threading.Thread(target=poller, args=(service, teams[i % len(teams)], ids, stop, samples, errors)) for i in range(CLIENTS)]
    # each client signs in once first (the service hashes a token with scrypt on its first use only)
    for team in teams:
        requests.get(f"{service.url}/api/v1/whoami", headers={"Authorization": f"Bearer {team['token']}"}, timeout=30).raise_for_status()
    loaded: dict = {}
    round_thread = threading.Thread(target=lambda: loaded.update(s=timed_round(service, teams, size, ids)))
    round_thread.start()
    while len(ids) < len(teams):
        time.sleep(0.05)
    wall = time.monotonic()
    for t in threads:
        t.start()
    stop.wait(seconds)
    stop.set()
    for t in threads:
        t.join()
    wall = time.monotonic() - wall
    round_thread.join()
    cpu = os.times()
    client_cpu = (cpu.user - start_cpu.user) + (cpu.system - start_cpu.system)
    loaded_s = loaded["s"]
    ms = sorted(s * 1000 for s in samples)
    p99 = ms[min(len(ms) - 1, int(len(ms) * 0.99))]
    print(f"b. load: {CLIENTS} client threads ({LOAD_TEAMS} teams, {CLIENTS // LOAD_TEAMS} clients sharing each token), one status and one")
    print(
        f"  leaderboard call each every {POLL_S:g} s for {seconds:g} s while a round of {size} nap1 submissions runs (client on this machine)"
    )
    print(
        f"  latency: {len(ms)} calls, p50 {statistics.median(ms):.1f} ms  p99 {p99:.1f} ms  max {ms[-1]:.1f} ms (target p99 <= 100 ms);"
        f" errors {len(errors)} (target 0){'; first: ' + errors[0] if errors else ''}"
    )
    alone, busy = size / alone_s * 60, size / loaded_s * 60
    print(
        f"  round throughput: alone {alone:.1f}/min ({alone_s:.1f} s), under the pollers {busy:.1f}/min ({loaded_s:.1f} s),"
        f" ratio {busy / alone:.2f} (target >= 0.9)"
    )
    print(f"  the client's own CPU: {client_cpu:.1f} s in {wall:.1f} s ({client_cpu / wall / (os.cpu_count() or 1):.0%} of the machine)")


def poller(service: Service, team: dict, ids: dict, stop: threading.Event, samples: list, errors: list) -> None:
    session = requests.Session()
    session.trust_env = False
    headers = {"Authorization": f"Bearer {team['token']}"}
    mine = random.choice(ids[team["id"]])
    urls = [
        f"{service.url}/api/v1/competitions/{COMPETITION}/submissions/{mine}",
        f"{service.url}/api/v1/competitions/{COMPETITION}/leaderboard",
    ]
    stop.wait(random.uniform(0, POLL_S))  # spread the clients over the period
    while not stop.is_set():
        beat = time.monotonic()
        for url in urls:
            started = time.monotonic()
            try:
                response = session.get(url, headers=headers if "submissions" in url else None, timeout=30)
                if response.status_code != 200:
                    errors.append(f"{response.status_code} {response.text[:100]}")
            except requests.RequestException as exc:
                errors.append(type(exc).__name__)
            samples.append(time.monotonic() - started)
        stop.wait(max(0.0, POLL_S - (time.monotonic() - beat)))


def timed_round(service: Service, teams: list[dict], size: int, ids: dict | None = None) -> float:
    """Queue ``size`` nap1 submissions (evaluation paused), resume evaluation; seconds to the last verdict."""
    paths = ServicePaths.of(COMPETITION, service.home)
    set_paused(paths, ["evaluation"], True)
    clients = {team["id"]: ServiceClient(service.url, team["token"]) for team in teams}
    queued: list[tuple[str, str]] = []
    for i in range(size):
        team = teams[i % len(teams)]
        image, digest = team["nap"]
        queued.append((team["id"], clients[team["id"]].submit(COMPETITION, image, digest).id))
    if ids is not None:
        for team_id, submission_id in queued:
            ids.setdefault(team_id, []).append(submission_id)
    started = time.monotonic()
    set_paused(paths, ["evaluation"], False)
    left = set(queued)
    while left:
        time.sleep(0.25)
        left = {(t, s) for t, s in left if clients[t].submission(COMPETITION, s).state != "evaluated"}
    return time.monotonic() - started


# -- c. memory -------------------------------------------------------------------------------------
def memory(service: Service, docker, team: dict, total: int) -> None:
    paths = ServicePaths.of(COMPETITION, service.home)
    client = ServiceClient(service.url, team["token"])
    scored = next(s.id for s in client.submissions(COMPETITION) if s.state == "evaluated")
    local = fresh_tiny(docker, "fb-memory")
    me = client.whoami()
    pushed = push_image(docker, local, registry=me["registry"], namespace=me["namespace"], username=me["team_id"], token=team["token"])
    set_paused(paths, ["evaluation"], True)
    pid = service.process.pid
    started, warm = time.monotonic(), None
    for i in range(total):
        if i == WARMUP:
            warm = rss_kib(pid)
        submission = client.submit(COMPETITION, pushed.repository, pushed.digest, f"memory {i}")
        client.submission(COMPETITION, submission.id)
        if i % 10 == 0:
            client.leaderboard(COMPETITION)
            client.logs(COMPETITION, scored, "train")
    end = rss_kib(pid)
    took = time.monotonic() - started
    set_paused(paths, ["evaluation"], False)
    grown = end - warm
    print(f"c. memory: {total} submissions through the API (the same pushed digest each time; evaluation paused, so the")
    print(f"  API process alone is measured), each with a status call, every 10th with a leaderboard and a logs call; {took:.0f} s")
    print(
        f"  harness serve VmRSS: {warm / 1024:.1f} MiB after {WARMUP}, {end / 1024:.1f} MiB after {total}:"
        f" {grown / (total - WARMUP):+.2f} KiB per submission (target <= 1 KiB)"
    )
    print(f"  (this process's own peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB)")


# -- d. smoke -------------------------------------------------------------------------------------
def smoke(docker, home: Path) -> None:
    slow = behave_image("slowcrash")
    took: dict[str, tuple[float, dict]] = {}
    for label, overrides in (("with the smoke stage", ()), ("without it", ("competition.smoke.enabled=false",))):
        service = Service(home / label.replace(" ", "-"), overrides=("competition.quota.per_day=null", *overrides))
        shutil.copytree(home / "competitions", service.home / "competitions", symlinks=True)  # the prepared data
        service.start()
        try:
            team = service.add_team("smoke")
            client = ServiceClient(service.url, team["token"])
            me = client.whoami()
            warm = push_image(
                docker,
                fresh_tiny(docker, "fb-warm"),
                registry=me["registry"],
                namespace=me["namespace"],
                username=me["team_id"],
                token=team["token"],
            )
            quietly(wait_for_verdict, client, COMPETITION, client.submit(COMPETITION, warm.repository, warm.digest).id, 600.0)
            started = time.monotonic()
            pushed = push_image(
                docker, slow, registry=me["registry"], namespace=me["namespace"], username=me["team_id"], token=team["token"]
            )
            verdict = quietly(
                wait_for_verdict, client, COMPETITION, client.submit(COMPETITION, pushed.repository, pushed.digest).id, 1800.0
            )
            took[label] = (time.monotonic() - started, verdict)
        finally:
            service.stop()
    print("d. smoke: slowcrash (train 0.1 s per training row, then infer crashes), push -> verdict, after a warm-up submission")
    for label, (seconds, verdict) in took.items():
        print(
            f"  {label:<22} {seconds:7.1f} s  {verdict.verdict} in {verdict.failed_phase}: {(verdict.verdict_message or '').splitlines()[0][:90]}"
        )
    on, off = took["with the smoke stage"][0], took["without it"][0]
    print(f"  the smoke stage gives the verdict {off / on:.0f}x sooner ({off - on:.0f} s less to wait)")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for {pid}")


if __name__ == "__main__":
    main()
