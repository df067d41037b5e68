"""Scale: a round of 2,000 trivial submissions (test submission ``constant``). While it runs, the
driver's memory (RSS) and the number of records written are sampled; reported are the driver's
peak memory, its growth per submission (per window, and the slope of a linear fit after the first
window, whose start-up head start it leaves out; and over the whole round, smoke stage included),
and the time per submission as the round grows.
Usage: ``python benchmarks/scale.py [--quick] [--submissions N]`` (100 with --quick).
"""

from __future__ import annotations

import statistics
import threading
import time

import psutil
from common import arguments, behave_image, competition, load_average, run_round, startup_line, submit_many, work_home

MIB = 1024**2
KIB = 1024


def sample(records_dir, stop: threading.Event, samples: list[tuple[float, int, int]]) -> None:
    process = psutil.Process()
    while not stop.wait(0.25):
        samples.append((time.monotonic(), sum(1 for _ in records_dir.glob("*.json")), process.memory_info().rss))


def main() -> None:
    args = arguments(__doc__, submissions=2000)
    submissions = args.submissions
    window = submissions // 5
    image = behave_image("constant")
    with work_home() as home:
        comp = competition(home)
        submit_many(comp, image, submissions)
        samples: list[tuple[float, int, int]] = []
        stop = threading.Event()
        sampler = threading.Thread(target=sample, args=(comp.paths.records, stop, samples))
        sampler.start()
        summary, log = run_round(comp)
        stop.set()
        sampler.join()

    # When the k-th record appeared (first sample that saw it), and the RSS then.
    done_at: dict[int, tuple[float, int]] = {}
    for at, done, rss in samples:
        for k in range(len(done_at) + 1, done + 1):
            done_at[k] = (at, rss)
    ks = sorted(done_at)
    starts = range(ks[0], ks[-1] - window + 1, window)
    per_window = [(done_at[k + window][0] - done_at[k][0]) / window for k in starts]
    growth = statistics.linear_regression(list(starts), per_window).slope if len(per_window) > 1 else 0.0
    memory_per_window = [(done_at[k + window][1] - done_at[k][1]) / window for k in starts]
    steady = [k for k in ks if k >= window]
    memory_slope = statistics.linear_regression(steady, [done_at[k][1] for k in steady]).slope
    peak = max(rss for _, _, rss in samples)
    # Records appear only in the round's second half (every smoke stage runs first): this one also
    # covers the smoke stage, taking the round's progress to be even in time.
    tenth = next(rss for at, _, rss in samples if at >= samples[0][0] + (samples[-1][0] - samples[0][0]) / 10)
    whole_round = (samples[-1][2] - tenth) / (submissions * 0.9)

    print(f"scale benchmark: a round of {submissions} trivial submissions, load {load_average()}")
    print(f"  round wall {summary.wall_s:.1f} s, {summary.wall_s / submissions:.3f} s per submission; verdicts {dict(summary.verdicts)}")
    print(f"  time per submission by window of {window}: " + ", ".join(f"{s:.3f}" for s in per_window) + " s")
    print(f"  slope of the time per submission: {growth * 100 * 1000:+.1f} ms per 100 submissions done (flat: about 0)")
    print(
        f"  driver memory: peak {peak / MIB:.0f} MiB; at {window}: {done_at[window][1] / MIB:.0f} MiB, at {ks[-1]}: "
        f"{done_at[ks[-1]][1] / MIB:.0f} MiB"
    )
    print(
        f"  driver memory growth by window of {window}: " + ", ".join(f"{g / KIB:+.1f}" for g in memory_per_window) + " KiB per submission"
    )
    print(f"  driver memory growth after the first window: {memory_slope / KIB:+.1f} KiB per submission (linear fit)")
    print(
        f"  driver memory over the whole round, smoke stage included, from its first tenth to its end: {tenth / MIB:.0f} -> "
        f"{samples[-1][2] / MIB:.0f} MiB, {whole_round / KIB:+.1f} KiB per submission"
    )
    print(f"  one-time {startup_line(log)}")
    assert summary.verdicts == {"SCORED": submissions}, summary.verdicts


if __name__ == "__main__":
    main()
