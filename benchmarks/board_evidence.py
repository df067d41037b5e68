"""Board evidence: the time to compute every ranked row's bootstrap interval and every adjacent
pair's win share (``harness.scoring.bootstrap``), at the size the issue names: a 100,000-id test
set, 1,000 teams, 1,000 paired resamples.

(a) A per-id metric (accuracy): each team's per-id values from its predictions, then the resampled
scores of every team as chunked products of the resample-count matrix and the per-id values, then
the intervals and win shares. Measured whole, at full size.

(b) A whole metric (binary ROC AUC) computed again on each resample, counted from the drawn ids by
groups of equal scores: measured on ``--whole-teams`` teams (it is linear in teams) with all resamples at the full
100,000 ids, with what 1,000 teams take at that rate; and the same by sklearn on each resample's
drawn ids (what any other whole metric costs), on 2 teams x 4 resamples.

Wall and CPU seconds both: on a shared machine CPU time is the steadier figure.

Usage: ``python benchmarks/board_evidence.py [--ids N] [--teams T] [--resamples R] [--whole-teams W]``
(defaults 100000, 1000, 1000, 10).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time

import numpy as np

from harness.scoring import Metric, get_metric
from harness.scoring.bootstrap import PER_ID, per_id_scores, spread, whole_scores


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ids", type=int, default=100_000)
    parser.add_argument("--teams", type=int, default=1_000)
    parser.add_argument("--resamples", type=int, default=1_000)
    parser.add_argument("--whole-teams", type=int, default=10, help="teams the whole-metric part measures (it scales linearly)")
    args = parser.parse_args()
    n, teams, resamples = args.ids, args.teams, args.resamples
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores; numpy {np.__version__}")
    rng = np.random.default_rng(0)
    truth = rng.integers(0, 10, n).astype(str).astype(object)

    # (a) accuracy, per-id path
    accuracy = PER_ID["accuracy"]
    values = np.empty((teams, n))
    with timed() as prepared:
        for t in range(teams):
            right = rng.random(n) < 0.80 + 0.15 * t / teams
            values[t] = accuracy.values(truth, np.where(right, truth, "x").astype(object), ())
    with timed() as resampled:
        scores = per_id_scores(values, accuracy, resamples, seed=1)
    with timed() as summarised:
        order = np.argsort(-values.mean(axis=1), kind="stable")
        result = spread(scores[:, order], True, 0.95)
    tied = sum(share < 0.95 for share in result.beats_next)
    print(f"(a) per-id metric (accuracy): {n:,} ids, {teams:,} teams, {resamples:,} resamples")
    print(
        f"    per-id values from predictions: {prepared} ({prepared.cpu / teams * 1000:.2f} CPU ms a team; once per evaluation, then kept)"
    )
    print(f"    resampled scores (count matrix x per-id values): {resampled}")
    print(f"    intervals and adjacent win shares: {summarised}; {tied} of {teams - 1} adjacent pairs tied at 95%")
    print(f"    peak memory {_peak_mib():,.0f} MiB")
    del values, scores

    # (b) binary ROC AUC, whole on each resample
    auc = get_metric("roc_auc")
    labels = (rng.random(n) < 0.3).astype(int).astype(str).astype(object)
    few = min(teams, args.whole_teams)
    predicted = []
    for t in range(few):
        p1 = np.clip(0.3 + (labels == "1") * (0.2 + 0.1 * t / few) + rng.normal(0, 0.25, n), 0, 1).round(3)  # rounded: ties
        predicted.append(np.column_stack([1 - p1, p1]))
    with timed() as fast:
        whole_scores(labels, predicted, auc, ("0", "1"), resamples, seed=1)
    per_team = fast.wall / few
    print(
        f"(b) whole metric (binary roc_auc, counted from the drawn ids by groups of equal scores): {n:,} ids, {few} teams, {resamples:,} resamples"
    )
    print(
        f"    {fast}; {per_team:.2f} s a team: {teams:,} teams at that rate {per_team * teams / 60:.1f} min ({fast.cpu / few * teams / 60:.1f} CPU-min)"
    )
    slow_metric = Metric(auc.name, auc.higher_is_better, auc.needs, lambda *a: auc.fn(*a))  # not the built-in: sklearn on the drawn ids
    with timed() as slow:
        whole_scores(labels, predicted[:2], slow_metric, ("0", "1"), 4, seed=1)
    ratio = (slow.wall / 8) / (fast.wall / (few * resamples))
    print(f"    the same by sklearn on each resample's drawn ids: {slow.wall / 8 * 1000:.0f} ms per (team, resample), {ratio:.0f}x slower")


class timed:
    """Wall and CPU seconds of a ``with`` block (the machine is shared: CPU time is the steadier figure)."""

    def __enter__(self) -> timed:
        self.started, self.cpu_started = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.wall, self.cpu = time.perf_counter() - self.started, time.process_time() - self.cpu_started

    def __str__(self) -> str:
        return f"{self.wall:.2f} s wall, {self.cpu:.2f} s CPU"


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main()
