"""Each limit held and reported, runguard style: a real container per case, the exact verdict, the exact figure.

Memory over the limit and a plain SIGTERM-ignoring sleeper are in test_check.py.
"""

from __future__ import annotations

import shutil
import threading
import time

import psutil
import pytest
from test_check import check

from harness.limits.output_watch import measure

pytestmark = pytest.mark.docker

MIB = 1024**2
# What a disk filler may write past its limit before the watch stops it: one poll gap of writing
# (50 ms; about 150 MiB at the 3 GB/s page-cache rate measured here). See docs/security.md.
OUTPUT_OVERSHOOT_BOUND = 256 * MIB


def run_dir(home, record):
    return home / "competitions/digits/runs" / record.evaluation_id


def test_wall_clock_under_the_limit_is_ok(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("constant"), "limits.train.wall_clock_s=5")
    train = record.phases.train
    assert train.verdict == "OK" and train.limits.wall_clock_s == 5
    assert train.wall_s < 5 and train.timeout_overshoot_s is None


def test_wall_clock_kill_reaches_detached_children(competition, docker_client, behave_image, home):
    """The main process ignores SIGTERM; a grandchild in its own session beats a heart into /model."""
    record = check(competition, docker_client, behave_image("detach"), "limits.train.wall_clock_s=2")
    train = record.phases.train
    assert record.verdict == "TIMEOUT" and record.failed_phase == "train"
    assert record.message == "train ran past its wall-clock limit of 2 s and was killed"
    # never before the limit; killed without a stop grace period (the engine's default is 10 s)
    assert train.wall_s >= 2.0 and 0.0 <= train.timeout_overshoot_s < 10.0
    assert train.timeout_overshoot_s == round(train.wall_s - 2.0, 3)
    heartbeat = run_dir(home, record) / "model" / "heartbeat"
    beats = heartbeat.stat().st_size
    time.sleep(0.5)
    assert beats > 0 and heartbeat.stat().st_size == beats  # the detached grandchild died with the rest


def test_cpu_time_is_held_to_the_quota(competition, docker_client, behave_image):
    """Four hashing threads (hashlib releases the GIL) for 3 s, under half a CPU."""
    record = check(competition, docker_client, behave_image("cpuburn"), "limits.train.cpus=0.5")
    train = record.phases.train
    assert train.verdict == "OK" and train.limits.cpus == 0.5
    # CFS quota: 50 ms of CPU per 100 ms period; the margin is one period's worth
    assert train.cpu_s <= train.wall_s * 0.5 + 0.1
    assert train.cpu_s >= 0.5  # it did burn (1.5 s on an idle host; unthrottled, 6 s on 2+ cores)


def test_memory_under_the_limit_is_ok_and_measured(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("hold"), "limits.train.memory=256m")
    train = record.phases.train
    assert record.verdict == "SCORED", record.message
    assert train.limits.memory == 256 * MIB
    assert 128 * MIB <= train.peak_memory_bytes <= 1.25 * 128 * MIB  # it holds 128 MiB
    # (cgroup v1 counts the page cache it faults in too: its interpreter and libraries, up to ~25 MiB on a cold cache)


def test_fork_bomb_is_contained(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("forkbomb"), "limits.train.pids=64", "limits.train.wall_clock_s=3")
    train = record.phases.train
    assert record.verdict == "TIMEOUT"
    assert train.limits.pids == 64 and train.peak_pids == 64
    assert 0.0 <= train.timeout_overshoot_s < 10.0  # no stop grace period, even with 64 processes to end


def test_one_file_is_capped_by_the_kernel(competition, docker_client, behave_image, home):
    record = check(competition, docker_client, behave_image("diskfill"), "limits.train.disk=64m")
    train = record.phases.train
    assert record.verdict == "OUTPUT_LIMIT"
    # the write fails at the cap ("file too large"), unless the watch sees the file's extent block first
    assert "the disk limit of 64.0 MiB" in record.message
    assert (run_dir(home, record) / "model" / "fill.bin").stat().st_size == 64 * MIB
    assert 64 * MIB <= train.output_bytes <= 64 * MIB + 64 * 1024 and train.output_files == 1


def test_many_files_are_stopped_by_the_watch_and_host_growth_is_bounded(competition, docker_client, behave_image, home):
    """8 MiB files as fast as it can: each under the kernel's file-size cap, so only the watch stops it."""
    limit = 256 * MIB
    record = check(competition, docker_client, behave_image("diskfill_many"), f"limits.train.disk={limit}")
    train = record.phases.train
    model = run_dir(home, record) / "model"
    on_disk = measure([str(model)]).bytes
    assert record.verdict == "OUTPUT_LIMIT"
    assert record.message.startswith("train wrote ") and record.message.endswith(", over the disk limit of 256.0 MiB and was stopped")
    assert limit < train.output_bytes <= limit + OUTPUT_OVERSHOOT_BOUND
    assert on_disk <= train.output_bytes  # nothing landed after the figure was taken
    print(f"disk filler overshoot: {(train.output_bytes - limit) / MIB:.0f} MiB past {limit // MIB} MiB in {train.wall_s:.2f} s")
    shutil.rmtree(model)


def test_file_count_is_bounded(competition, docker_client, behave_image):
    record = check(competition, docker_client, behave_image("manyfiles"), "limits.train.files=100")
    train = record.phases.train
    assert record.verdict == "OUTPUT_LIMIT"
    assert record.message == "train created more than its limit of 100 files and directories and was stopped"
    assert train.output_files > 100 and train.limits.files == 100


def test_output_past_path_max_is_measured(competition, docker_client, behave_image):
    """A 32 MiB file at the bottom of 40 nested 200-character names: a path of 8 KB, past PATH_MAX."""
    record = check(competition, docker_client, behave_image("deepdir"), "limits.train.disk=16m")
    train = record.phases.train
    assert record.verdict == "OUTPUT_LIMIT", record.message
    assert record.message.endswith(", over the disk limit of 16.0 MiB and was stopped")
    assert train.output_bytes > 16 * MIB and train.output_files == 41


def test_log_flood_is_truncated_and_counted_while_the_harness_stays_flat(competition, docker_client, behave_image, home):
    """500 MiB to stdout, 1 MiB kept: the head and the tail, the true count, and flat harness memory."""
    process, peak, done = psutil.Process(), [0], threading.Event()

    def sample() -> None:
        while not done.wait(0.05):
            peak[0] = max(peak[0], process.memory_info().rss)

    image = behave_image("flood")
    before = process.memory_info().rss
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        record = check(competition, docker_client, image, "limits.train.log_bytes=1m")
    finally:
        done.set()
        sampler.join()
    train = record.phases.train
    assert record.verdict == "SCORED", record.message
    assert train.stdout_bytes == 500 * MIB and train.stderr_bytes == 0
    assert train.log_truncated is True
    saved = (run_dir(home, record) / "logs" / "train.stdout.log").read_bytes()
    head, marker, tail = saved.partition(b"\n[... harness: ")
    assert head == (b"x" * 1023 + b"\n") * 512  # the first half of the cap, exactly
    assert tail.endswith(b" bytes in all ...]\n" + (b"x" * 1023 + b"\n") * 512)
    assert len(saved) < MIB + 200
    growth = peak[0] - before
    print(f"log flood: {500 / train.wall_s:.0f} MiB/s, harness RSS {before / MIB:.0f} MiB, peak growth {growth / MIB:.1f} MiB")
    assert growth < 64 * MIB
