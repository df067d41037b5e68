"""Overhead: the time per submission inside a round, and of one ``harness check``, against the floor:
raw ``docker run --rm`` of the same phases (the smoke stage's train and infer, then train and infer:
``common.raw_submission``) of the same image with the same limits and mounts.

The job sleeps 1 s in each phase (test submission ``nap1``). The round runs one phase at a time
(``runner.max_parallel=1``) so that its time per submission compares with the floor's; Ray's and
MLflow's one-time start-up is reported on its own line. Usage: ``python benchmarks/overhead.py [--quick]``.
"""

from __future__ import annotations

import subprocess
import sys
import time

from common import (
    ROOT,
    arguments,
    behave_image,
    competition,
    load_average,
    median,
    raw_submission,
    run_round,
    startup_line,
    submit_many,
    timed,
    work_home,
)


def main() -> None:
    args = arguments(__doc__)
    submissions, repeats = (3, 3) if args.quick else (10, 5)
    image = behave_image("nap1")
    with work_home() as home:
        comp = competition(home, "runner.max_parallel=1")
        floor = [timed(raw_submission(comp, image, home)) for _ in range(repeats)]
        submit_many(comp, image, submissions)
        summary, log = run_round(comp)
        floor += [timed(raw_submission(comp, image, home)) for _ in range(repeats)]
        check = []
        for _ in range(repeats):
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "harness.cli", "check", "digits", "--image", image],
                cwd=ROOT,
                check=True,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            check.append(time.monotonic() - started)

    floor_s, per_submission_s, check_s = median(floor), summary.wall_s / submissions, median(check)
    print(f"overhead benchmark: job nap1 (1 s per phase), {submissions} submissions, {repeats}+{repeats} floor runs, load {load_average()}")
    print(f"  floor: raw docker run --rm per phase {floor_s:6.2f} s per submission (median; min {min(floor):.2f}, max {max(floor):.2f})")
    print(
        f"  inside a round (max_parallel=1)      {per_submission_s:6.2f} s per submission   ratio {per_submission_s / floor_s:.2f}  (target <= 1.25)"
    )
    print(
        f"  harness check (whole command)        {check_s:6.2f} s                  {check_s - floor_s:+.2f} s over the floor (target <= +2 s)"
    )
    print(f"  one-time {startup_line(log)}")
    assert summary.verdicts == {"SCORED": submissions}, summary.verdicts


if __name__ == "__main__":
    main()
