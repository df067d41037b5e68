"""Timeout precision: 20 submissions that never end (test submission ``sleeper``) under a 1 s wall
clock; each is killed for TIMEOUT. Reported: how far past the limit each container lived (Docker's
own start and finish times), worst and median. Usage: ``python benchmarks/timeout_precision.py [--quick]``.
"""

from __future__ import annotations

import json

from common import arguments, behave_image, competition, load_average, median, run_round, submit_many, work_home


def main() -> None:
    args = arguments(__doc__)
    submissions, limit_s = (10 if args.quick else 20), 1.0
    image = behave_image("sleeper")
    with work_home() as home:
        comp = competition(home, f"limits.train.wall_clock_s={limit_s}")
        submit_many(comp, image, submissions)
        summary, _ = run_round(comp)
        records = [json.loads(path.read_text()) for path in comp.paths.records.glob("*.json")]
        overshoot = [r["phases"]["train"]["timeout_overshoot_s"] for r in records]

    print(f"timeout precision: {submissions} TIMEOUT runs at a {limit_s:g} s wall clock, 2 at a time, load {load_average()}")
    print(f"  overshoot past the wall clock: worst {max(overshoot):.3f} s, median {median(overshoot):.3f} s  (target: worst <= 1 s)")
    assert summary.verdicts == {"TIMEOUT": submissions}, summary.verdicts


if __name__ == "__main__":
    main()
