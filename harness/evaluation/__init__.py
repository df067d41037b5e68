"""One submission's evaluation: the phases to run, scoring, the record; run in process or on Ray."""

from harness.evaluation.evaluation import PHASE_ORDER, Evaluation, score_file

__all__ = ["PHASE_ORDER", "Evaluation", "score_file"]
