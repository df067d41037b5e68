"""What the benchmarks share: a work directory, test submissions, raw ``docker run`` (the floor), a round.

A benchmark measures the harness and its floor side by side, in the same run, and prints ratios;
nothing here asserts a timing.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from harness.competition.config import compose_config, load_settings  # noqa: E402
from harness.competition.core import Competition  # noqa: E402
from harness.competition.paths import CompetitionPaths  # noqa: E402
from harness.competition.smoke import smoke_stage  # noqa: E402
from harness.limits import Limits, PhaseLimits  # noqa: E402
from harness.limits.docker_options import contract_environment  # noqa: E402
from harness.participant.images import build_context_image, ensure_os_base  # noqa: E402
from harness.rounds.driver import drive_round  # noqa: E402
from harness.rounds.round import RoundSummary  # noqa: E402
from harness.runner.docker_backend import (  # noqa: E402
    DockerBackend,  # noqa: E402
    container_user,
    make_writable_dir,
)
from harness.runner.engine import connect  # noqa: E402
from harness.submissions.intake import pin_image  # noqa: E402
from harness.submissions.ledger import Ledger  # noqa: E402

BEHAVE_DIR = ROOT / "tests" / "images" / "behave"


def arguments(description: str, submissions: int | None = None) -> argparse.Namespace:
    """The common options; with ``submissions``, also ``--submissions N`` (that many by default)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer submissions and repetitions (a minute or two)")
    if submissions is not None:
        parser.add_argument("--submissions", type=int, help=f"how many (default {submissions}; 100 with --quick)")
    args = parser.parse_args()
    if submissions is not None and args.submissions is None:
        args.submissions = 100 if args.quick else submissions
    return args


def behave_image(behaviour: str) -> str:
    """The tag of a test submission with that behaviour (tests/images/behave), built if missing."""
    tag = f"harness-test/{behaviour}:latest"
    try:
        connect().images.get(tag)
    except Exception:  # noqa: BLE001 - any failure to find it: build it
        base = ensure_os_base(compose_config("digits").images, log=lambda line: None)
        build_context_image(tag, BEHAVE_DIR, {"BASE": base, "BEHAVIOUR": behaviour}, log=lambda line: None)
    return tag


@contextmanager
def work_home() -> Iterator[Path]:
    """A fresh work directory (HARNESS_HOME) with the digits data prepared; removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="harness-bench-"))
    os.environ["HARNESS_HOME"] = str(home)
    try:
        competition(home).ensure_data()
        yield home
    finally:
        shutil.rmtree(home, ignore_errors=True)


def competition(home: Path, *overrides: str) -> Competition:
    return Competition.load(load_settings("digits", list(overrides)), home)


def submit_many(comp: Competition, image: str, count: int, teams: int | None = None) -> list[str]:
    digest = pin_image(DockerBackend(connect()), image).digest
    ledger = Ledger.of(comp)
    return [ledger.add(f"team{i % (teams or count)}", image, digest).id for i in range(count)]


def run_round(comp: Competition) -> tuple[RoundSummary, str]:
    """The round as ``harness round`` runs it, in this process; returns its summary and its output."""
    log = io.StringIO()
    summary = drive_round(comp, out=log)
    assert summary is not None
    return summary, log.getvalue()


def startup_line(log: str) -> str:
    return next(line for line in log.splitlines() if line.startswith("start-up:"))


def raw_phase(image: str, phase: str, limits: PhaseLimits, mounts: Sequence[tuple[Path, str, bool]], seed: int = 42) -> list[str]:
    """``docker run --rm`` of one phase with the same limits, isolation, environment and mounts as the harness."""
    uid, gid = container_user()
    args = [
        "docker",
        "run",
        "--rm",
        "--network",
        "none",
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges",
        "--ipc",
        "private",
        "--oom-score-adj",
        "1000",
        "--pids-limit",
        str(limits.pids),
        "--memory",
        str(limits.memory),
        "--memory-swap",
        str(limits.memory),
        "--cpus",
        f"{limits.cpus:g}",
        "--tmpfs",
        f"/tmp:rw,nosuid,nodev,size={limits.tmp},mode=1777",
        "--ulimit",
        f"fsize={limits.disk}:{limits.disk}",
        "--ulimit",
        "core=0:0",
        "--log-driver",
        "none",
        "--user",
        f"{uid}:{gid}",
        "--hostname",
        "sandbox",
    ]
    for key, value in contract_environment(phase, limits, seed).items():
        args += ["-e", f"{key}={value}"]
    for source, target, read_only in mounts:
        args += ["-v", f"{source}:{target}:{'ro' if read_only else 'rw'}"]
    return [*args, image, phase]


def raw_submission(comp: Competition, image: str, work: Path) -> list[list[str]]:
    """The raw runs of one submission as a round runs them: the smoke stage's train and infer first
    when the competition has one (on its data, under its limits), then train and infer; each pair in
    fresh directories under ``work``."""
    smoke = smoke_stage(comp)
    stages = ([(smoke.paths, smoke.limits)] if smoke is not None else []) + [(comp.paths, comp.settings.limits)]
    return [run for paths, limits in stages for run in raw_pair(image, paths, limits, work)]


def raw_pair(image: str, paths: CompetitionPaths, limits: Limits, work: Path) -> list[list[str]]:
    """The two raw runs (train, then infer) on ``paths``' data, in fresh directories under ``work``."""
    run = Path(tempfile.mkdtemp(dir=work))
    model, output = run / "model", run / "output"
    make_writable_dir(model)
    make_writable_dir(output)
    return [
        raw_phase(image, "train", limits.phase("train"), [(paths.train, "/data/train", True), (model, "/model", False)]),
        raw_phase(
            image, "infer", limits.phase("infer"), [(paths.test, "/data/test", True), (model, "/model", True), (output, "/output", False)]
        ),
    ]


def timed(commands: Sequence[Sequence[str]]) -> float:
    """Seconds to run ``commands`` one after the other (each must succeed)."""
    started = time.monotonic()
    for command in commands:
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.monotonic() - started


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def load_average() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def on_engine(commands: Sequence[Sequence[str]], host: str) -> list[list[str]]:
    """The same ``docker ...`` commands sent to another engine (``-H``: its ``DOCKER_HOST``)."""
    return [["docker", "-H", host, *command[1:]] for command in commands]


ENGINE_PROCESSES = ("dockerd", "containerd", "containerd-shim", "containerd-shim-runc-v2", "runc", "docker-init")


def process_role(process: psutil.Process, ours: bool) -> str:
    """Who a process works for: this benchmark (itself, the Ray nodes and engines it started) or not."""
    if not ours:
        return "other processes"
    if process.pid == os.getpid():
        return "driver"
    name = process.name()
    if name in ENGINE_PROCESSES:
        return "engines"
    return "Ray workers" if name.startswith("ray::") or "default_worker.py" in " ".join(process.cmdline()) else "Ray services"


def cpu_seconds() -> dict[int, tuple[str, float]]:
    """Each live process's role and the CPU seconds it has used (user and system)."""
    found = {}
    ours = {os.getpid()}
    for process in sorted(psutil.process_iter(["ppid", "create_time"]), key=lambda p: p.info["create_time"] or 0.0):  # parents first
        try:
            if process.info["ppid"] in ours:
                ours.add(process.pid)
            with process.oneshot():
                times = process.cpu_times()
                found[process.pid] = (process_role(process, process.pid in ours), times.user + times.system)
        except psutil.Error:
            pass  # gone, or not ours to read
    return found


def cpu_used(before: dict[int, tuple[str, float]], after: dict[int, tuple[str, float]]) -> Counter[str]:
    """CPU seconds per role between two ``cpu_seconds()`` (of the processes alive at the second: one
    that ended between them, such as a container's, is missed)."""
    used: Counter[str] = Counter()
    for pid, (role, seconds) in after.items():
        used[role] += seconds - before.get(pid, (role, 0.0))[1]
    return used
