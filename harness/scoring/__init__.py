"""Scoring: validate a participant's predictions file, then score it against the hidden labels.

Runs in the harness process, never inside the participant's container.
"""

from harness.scoring import classification, regression  # noqa: F401 - the bundled metrics register themselves
from harness.scoring.metrics import METRICS, Metric, MetricError, check_metrics, get_metric, register_metric
from harness.scoring.score import LabelsError, ScoreNotFinite, load_labels, score_predictions
from harness.scoring.spec import PredictionsSpec, PredictionsSpecError
from harness.scoring.validate import Predictions, PredictionsError, validate_predictions

__all__ = [
    "METRICS",
    "LabelsError",
    "Metric",
    "MetricError",
    "Predictions",
    "PredictionsError",
    "PredictionsSpec",
    "PredictionsSpecError",
    "ScoreNotFinite",
    "check_metrics",
    "get_metric",
    "load_labels",
    "register_metric",
    "score_predictions",
    "validate_predictions",
]
