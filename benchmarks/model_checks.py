"""The cost of judging a model after its phase: a plain 40 MiB model against one 40 MiB file behind
6,000 hard links (234 GiB to read name by name, 40 MiB on disk). Judging is measuring the tree
(``measure``: one stat per name, blocks and apparent size) and the disk limit's verdict; only a
model within the limit is then hashed and archived. Printed: each one's judge time, their ratio,
and what reading the linked model in full would have cost (hashing it, as ``harness check`` did
before the apparent size was bounded: 162 s), measured on 60 of its links and scaled.
Usage: ``python benchmarks/model_checks.py [--quick]``."""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

from common import arguments, load_average, median

from harness.limits.output_watch import measure
from harness.util.hashing import tree_sha256

MIB = 1024**2
DISK = 1024 * MIB  # the train phase's default disk limit


def model(root: Path, links: int) -> Path:
    root.mkdir()
    with open(root / "weights.bin", "wb") as fh:
        fh.write(os.urandom(MIB) * 40)
    for i in range(links):
        os.link(root / "weights.bin", root / f"weights-{i}.bin")
    return root


def judged(root: Path) -> tuple[float, str | None]:
    start = time.perf_counter()
    verdict = measure([str(root)]).exceeds(DISK, 10_000)
    return time.perf_counter() - start, verdict


def _timed(work, *args) -> float:
    start = time.perf_counter()
    work(*args)
    return time.perf_counter() - start


def main() -> None:
    args = arguments(__doc__)
    repeats = 3 if args.quick else 7
    with tempfile.TemporaryDirectory(prefix="model-checks-") as tmp:
        plain, linked, sample = model(Path(tmp) / "plain", 0), model(Path(tmp) / "linked", 6000), model(Path(tmp) / "sample", 59)
        plain_s = median([judged(plain)[0] for _ in range(repeats)])
        hashed_s = median([_timed(tree_sha256, plain) for _ in range(repeats)])
        linked_runs = [judged(linked) for _ in range(repeats)]
        linked_s, verdict = median([s for s, _ in linked_runs]), linked_runs[0][1]
        assert judged(plain)[1] is None and verdict is not None, verdict
        read_s = _timed(tree_sha256, sample) * 6001 / 60
    print(f"model checks: judging a model after its phase (median of {repeats}), load {load_average()}")
    floor = plain_s + hashed_s
    print(f"  plain 40 MiB model: judged {plain_s * 1000:.2f} ms, then hashed {hashed_s * 1000:.1f} ms (the floor: {floor * 1000:.1f} ms)")
    print(
        f"  40 MiB behind 6,000 hard links: judged {linked_s * 1000:.1f} ms and refused, never hashed: ratio {linked_s / floor:.2f} of the floor"
    )
    print(f"    verdict: {verdict}")
    print(f"  reading the linked model in full (what hashing it would take, scaled from 60 links): {read_s:.0f} s")


if __name__ == "__main__":
    main()
