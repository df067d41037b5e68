"""The bundled metrics of values, with numpy alone, each equal to ``sklearn.metrics``' function where
that one is defined (``tests/test_metric_reference.py``). Where it is not, a ``MetricError`` says so
(the organizer's data: the evaluation is an ``INFRA_ERROR``):

- ``r2`` is undefined when the true values are all equal (scikit-learn answers 1.0 or 0.0 there);
- ``mape`` (a fraction, not a percentage: 0.1 is 10%) is undefined when a true value is 0
  (scikit-learn divides by 2.2e-16 instead and answers an enormous number).

Values so large that the arithmetic overflows give an infinite score, which scoring refuses as
``INVALID_PREDICTIONS`` naming the metric (``harness.scoring.score``).
"""

from __future__ import annotations

import numpy as np

from harness.scoring.metrics import MetricError, register_metric


@register_metric("rmse", higher_is_better=False, needs="value")
def _rmse(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    return float(np.sqrt(np.mean((y_true - y_pred) ** 2)))


@register_metric("mae", higher_is_better=False, needs="value")
def _mae(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    return float(np.mean(np.abs(y_true - y_pred)))


@register_metric("r2", higher_is_better=True, needs="value")
def _r2(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    spread = np.sum((y_true - np.mean(y_true)) ** 2)
    if not spread > 0:
        raise MetricError(f"r2 is undefined when the true values are all equal ({y_true[0]:g}, {len(y_true)} of them)")
    return float(1 - np.sum((y_true - y_pred) ** 2) / spread)


@register_metric("mape", higher_is_better=False, needs="value")
def _mape(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    zeros = int(np.sum(y_true == 0))
    if zeros:
        raise MetricError(f"mape is undefined when a true value is 0 ({zeros} of {len(y_true)} are); choose rmse or mae")
    return float(np.mean(np.abs(y_true - y_pred) / np.abs(y_true)))
