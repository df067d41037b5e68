"""The metric registry.

A metric states what it ``needs``: ``label`` (predicted classes), ``probabilities`` (an n x k
matrix, columns in ``classes`` order) or ``value`` (numbers). Label metrics also accept
probabilities, taking the most probable class (ties go to the earlier class). The bundled metrics
register themselves from ``harness.scoring.classification`` and ``harness.scoring.regression``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.scoring.validate import Predictions
from harness.util.plugins import plugins

# fn(y_true, y_pred, classes): y_true is an array of label strings, or floats for ``value``.
MetricFn = Callable[[np.ndarray, np.ndarray, tuple[str, ...]], float]
NEEDS = ("label", "probabilities", "value")
PLUGIN_GROUP = "harness.metrics"


class MetricError(ValueError):
    """A metric is unknown, does not fit the predictions kind, or is undefined on the data."""


@dataclass(frozen=True)
class Metric:
    name: str
    higher_is_better: bool
    needs: str
    fn: MetricFn

    def accepts(self, kind: str) -> bool:
        """Whether predictions of ``kind`` can be scored by this metric."""
        return kind == self.needs or (self.needs == "label" and kind == "probabilities")

    def compute(self, y_true: Sequence[str] | Sequence[float] | np.ndarray, predictions: Predictions) -> float:
        """The metric's value; infinite or NaN when the arithmetic overflows (the caller decides what
        that means: ``score_predictions`` makes it an INVALID_PREDICTIONS verdict), never a warning."""
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            return self._compute(y_true, predictions)

    def _compute(self, y_true: Sequence[str] | Sequence[float] | np.ndarray, predictions: Predictions) -> float:
        return float(self.fn(*self.inputs(y_true, predictions), predictions.classes))

    def inputs(self, y_true: Sequence[str] | Sequence[float] | np.ndarray, predictions: Predictions) -> tuple[np.ndarray, np.ndarray]:
        """``(y_true, y_pred)`` as ``fn`` takes them, row for row: what a resample indexes."""
        if not self.accepts(predictions.kind):
            raise MetricError(f"metric {self.name} needs {self.needs} predictions, got {predictions.kind}")
        if len(y_true) != len(predictions):
            raise MetricError(f"metric {self.name}: {len(y_true)} labels for {len(predictions)} predictions")
        if not len(predictions):
            raise MetricError(f"metric {self.name}: no predictions to score")
        if self.needs == "value":
            return np.asarray(y_true, dtype=float), predictions.values  # type: ignore[return-value]
        truth = np.asarray([str(y) for y in y_true], dtype=object)
        if self.needs == "probabilities":
            return truth, predictions.probabilities  # type: ignore[return-value]
        if predictions.labels is not None:
            return truth, np.asarray(predictions.labels, dtype=object)
        classes = np.asarray(predictions.classes, dtype=object)
        return truth, classes[np.argmax(predictions.probabilities, axis=1)]


METRICS: dict[str, Metric] = {}


def register_metric(name: str, *, higher_is_better: bool, needs: str) -> Callable[[MetricFn], MetricFn]:
    """Decorator: ``@register_metric("accuracy", higher_is_better=True, needs="label")``."""
    if needs not in NEEDS:
        raise ValueError(f"needs must be one of {', '.join(NEEDS)}, got {needs!r}")

    def add(fn: MetricFn) -> MetricFn:
        if name in METRICS:
            raise ValueError(f"metric {name!r} is already registered")
        METRICS[name] = Metric(name, higher_is_better, needs, fn)
        return fn

    return add


def get_metric(name: str) -> Metric:
    if name not in METRICS:
        _load_plugin(name)
    try:
        return METRICS[name]
    except KeyError:
        known = sorted({*METRICS, *plugins(PLUGIN_GROUP)})
        raise MetricError(f"unknown metric {name!r} (known: {', '.join(known)})") from None


def _load_plugin(name: str) -> None:
    """Metrics from other packages: an entry point ``name`` in ``harness.metrics`` names a module whose
    ``@register_metric`` registers it, or a ``Metric`` object."""
    entry = plugins(PLUGIN_GROUP).get(name)
    if entry is None:
        return
    loaded = entry.load()
    if isinstance(loaded, Metric) and loaded.name not in METRICS:
        METRICS[loaded.name] = loaded


def check_metrics(names: Sequence[str], kind: str) -> list[Metric]:
    """The metrics for ``names``, refusing unknown ones and ones that cannot score ``kind`` predictions."""
    found = [get_metric(n) for n in names]
    for metric in found:
        if not metric.accepts(kind):
            raise MetricError(f"metric {metric.name} needs {metric.needs} predictions; this competition's are {kind}")
    return found
