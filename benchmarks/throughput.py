"""Throughput: a round of short submissions (1 CPU each, phases of 1 s of CPU: the smoke stage's
train and infer, then train and infer) on this machine's cores, against a raw loop of
``docker run --rm`` doing the same work (``common.raw_submission``) with as many runs in parallel.

Usage: ``python benchmarks/throughput.py [--quick]`` (50 submissions; 10 with --quick).
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

from common import (
    arguments,
    behave_image,
    competition,
    load_average,
    raw_submission,
    run_round,
    startup_line,
    submit_many,
    timed,
    work_home,
)


def main() -> None:
    args = arguments(__doc__)
    submissions, cores = (10 if args.quick else 50), os.cpu_count() or 1
    image = behave_image("spin1")
    with work_home() as home:
        comp = competition(home)
        started = time.monotonic()
        with ThreadPoolExecutor(cores) as pool:
            list(pool.map(lambda _: timed(raw_submission(comp, image, home)), range(submissions)))
        raw_s = time.monotonic() - started
        submit_many(comp, image, submissions)
        started = time.monotonic()
        summary, log = run_round(comp)
        with_startup_s = time.monotonic() - started

    print(f"throughput benchmark: {submissions} submissions of spin1 (1 CPU, 1 s per phase) on {cores} cores, load {load_average()}")
    print(f"  raw loop, {cores} docker run --rm at a time   {raw_s:7.1f} s   {submissions / raw_s * 60:6.1f} submissions/min")
    print(
        f"  harness round                        {summary.wall_s:7.1f} s   {submissions / summary.wall_s * 60:6.1f} submissions/min"
        f"   ratio {raw_s / summary.wall_s:.2f}  (target >= 0.9)"
    )
    print(f"  harness round with its start-up      {with_startup_s:7.1f} s                          ratio {raw_s / with_startup_s:.2f}")
    print(f"  one-time {startup_line(log)}")
    assert summary.verdicts == {"SCORED": submissions}, summary.verdicts


if __name__ == "__main__":
    main()
