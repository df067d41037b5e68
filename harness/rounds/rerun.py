"""``harness rerun-winners``: run the private board's top K again, N times each with other seeds,
before ``finalize`` announces them.

Each re-run starts from the submission's record alone, as an audit does (``harness.proofs.audit``:
the recorded configuration, refused when the data changed since), with one change: the seed
(``HARNESS_SEED``). The re-runs are phases on the Ray cluster the competition's rounds use, handed
to a pool that asks Ray to spread them, so on a cluster the repeats of one submission run on
different nodes (each record names its node). No smoke stage: the winners passed theirs. The
re-runs' records go under ``final/reruns/<id>/`` (never the board's ``records/``); the report
(``harness.proofs.rerun_report``) goes beside the final board and onto each winner's MLflow run.
"""

from __future__ import annotations

import sys
from typing import TextIO

from harness.competition.core import Competition
from harness.competition.schema import SEED_MAX
from harness.evaluation.evaluation import Evaluation
from harness.evaluation.recording import record_evaluation
from harness.proofs.audit import data_differences, recorded_competition
from harness.proofs.rerun_report import Rerun, RerunReport, final_dir, save, top_of_board
from harness.records.record import EvaluationRecord, latest_record, load_record
from harness.records.sinks import RecordSinks
from harness.results import Results
from harness.rounds.distribution import cluster_staging
from harness.rounds.driver import driver_backend, release_versions
from harness.runner.backend import check_backend
from harness.runner.ray_pool import RayPhasePool, connect_ray
from harness.util.clock import stamped_id
from harness.util.errors import HarnessError

POLL_S = 0.5
SEED_STEP = 7919  # the n-th re-run's seed: the recorded one plus n times this (a prime), modulo the seed range


def rerun_winners(
    competition: Competition, top_k: int, times: int, *, sinks: RecordSinks | None = None, out: TextIO | None = None
) -> RerunReport:
    """Re-run the private board's ``top_k`` best ``times`` times each; save and return the report."""
    out = out or sys.stderr
    if top_k < 1 or times < 1:
        raise HarnessError(f"--top and --times must be at least 1, got {top_k} and {times}")
    top = top_of_board(competition, top_k)
    if not top:
        raise HarnessError(f"the private board of {competition.name} ranks no submission yet: nothing to re-run")
    metric = Results(competition).metric
    report = RerunReport(stamped_id("rerun"), competition.name, metric.name, metric.higher_is_better, top_k, times)
    directory = final_dir(competition) / "reruns" / report.rerun_id
    listed = Results(competition).listing()
    records: dict[str, EvaluationRecord] = {}
    evaluations: list[tuple[Rerun, Evaluation]] = []
    for rank, team, submission_id in top:
        path = latest_record(competition.paths.records, submission_id, listed)
        assert path is not None  # the board ranked it from this record
        record = records[submission_id] = load_record(path)
        entry = Rerun(rank, team, submission_id, record.evaluation_id, runs=[_run(record, metric.name)])
        report.entries.append(entry)
        evaluations += [(entry, _evaluation(competition, record, n, report.rerun_id)) for n in range(1, times + 1)]
    print(f"{report.rerun_id}: {len(evaluations)} re-run(s) of {len(top)} submission(s) on Ray", file=out, flush=True)
    _run_on_ray(competition, [evaluation for _, evaluation in evaluations])
    docker_version = driver_backend(competition).engine_version()
    for entry, evaluation in evaluations:
        rerun = record_evaluation(evaluation, directory, RecordSinks(), docker_version)
        entry.runs.append(_run(rerun, metric.name))
        print(f"{entry.team} {entry.submission} seed {entry.runs[-1]['seed']}: {rerun.verdict} {entry.runs[-1]['score']}", file=out)
    report.judge()
    paths = save(report, competition)
    status = "a rank would change" if report.rank_would_change else "ranks hold"
    for record in records.values():
        (sinks or RecordSinks()).audited(record, report.rerun_id, status, paths)
    return report


def _evaluation(competition: Competition, record: EvaluationRecord, n: int, rerun_id: str) -> Evaluation:
    """The ``n``-th re-run of ``record``: its recorded configuration with another seed."""
    seed = (int(record.manifest["seed"]) + n * SEED_STEP) % (SEED_MAX + 1)
    rerun, differences = recorded_competition(competition, record, [f"seed={seed}"])
    fatal = [d for d in [*data_differences(competition, record), *differences] if d.fatal and d.what != "seed"]
    if fatal:
        named = ", ".join(f"{d.kind} {d.what}" for d in fatal[:3])
        raise HarnessError(f"{record.submission.id} cannot be re-run from its record {record.evaluation_id}: different {named}")
    evaluation = Evaluation(rerun, record.submission, round_id=rerun_id, smoke=None)
    evaluation.origin = {"kind": "rerun", "evaluation_id": record.evaluation_id, "rerun_id": rerun_id}
    return evaluation


def _run_on_ray(competition: Competition, evaluations: list[Evaluation]) -> None:
    """Every evaluation's phases as Ray tasks, spread over the nodes, one after the other per evaluation."""
    runner = competition.settings.runner
    connect_ray(runner.address)
    pool = RayPhasePool(
        max_parallel=runner.max_parallel,
        staging=cluster_staging(competition, runner.node_cache, None),
        backend=check_backend(runner.backend),
        versions=release_versions,
        spread=True,
    )
    pool.warm_up()
    for evaluation in evaluations:
        _next_phase(pool, evaluation)
    while pool.busy:
        for evaluation, result in pool.wait(timeout=POLL_S):
            evaluation.accept(result)
            _next_phase(pool, evaluation)


def _next_phase(pool: RayPhasePool, evaluation: Evaluation) -> None:
    spec = evaluation.next_phase()
    if spec is not None:
        pool.submit(evaluation, spec, group=evaluation.submission.id)


def _run(record: EvaluationRecord, metric: str) -> dict:
    """What the report keeps of one run: its seed, record, verdict, private score and node."""
    return {
        "seed": record.manifest.get("seed"),
        "evaluation_id": record.evaluation_id,
        "verdict": record.verdict,
        "score": (record.scores.get("private") or {}).get(metric),
        "node": next((phase.node for phase in record.phases.ran().values() if phase.node), ""),
    }
