"""The bundled metrics of classes: on predicted labels, and on class probabilities.

Computed with numpy alone (the participant's ``harness check`` imports no scikit-learn), each equal
to ``sklearn.metrics``' function of the same name where that one is defined
(``tests/test_metric_reference.py`` compares them on random data). Where it is not, the metric
says so with a ``MetricError`` (the organizer's data, not the participant's predictions: the
evaluation is an ``INFRA_ERROR``), never a warning or a NaN:

- ``roc_auc`` needs two classes among the true labels; ``average_precision`` (binary) needs a true
  label of the positive class.
- Binary (two classes): the positive class is the last one of ``predictions.classes``, its column
  the score. More classes: one-vs-rest, the macro mean over the classes present among the true
  labels (a class absent from them has no ROC curve and no precision-recall curve).
- ``log_loss`` clips probabilities to ``[eps, 1 - eps]`` (eps of float64, as scikit-learn does), so
  a confident wrong answer costs about 36 rather than infinity; a row's sum is not renormalised
  (the validator holds it to 1 within 0.001).
"""

from __future__ import annotations

import numpy as np

from harness.scoring.metrics import MetricError, register_metric


def class_index(y_true: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    """Each true label's column among ``classes``."""
    position = {c: i for i, c in enumerate(classes)}
    unknown = sorted({y for y in y_true if y not in position})
    if unknown:
        raise MetricError(f"true labels {', '.join(unknown[:5])} are not among the classes {', '.join(classes)}")
    return np.asarray([position[y] for y in y_true], dtype=int)


# --- on labels -----------------------------------------------------------------------------------


@register_metric("accuracy", higher_is_better=True, needs="label")
def _accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    return float(np.mean(y_true == y_pred))


@register_metric("balanced_accuracy", higher_is_better=True, needs="label")
def _balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    # The mean recall over the classes present in y_true; a class only predicted does not count.
    return float(np.mean([np.mean(y_pred[y_true == label] == label) for label in np.unique(y_true)]))


@register_metric("macro_f1", higher_is_better=True, needs="label")
def _macro_f1(y_true: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    # Averaged over the classes present in y_true or y_pred; a class never predicted right scores 0.
    scores = []
    for label in np.unique(np.concatenate([y_true, y_pred])):
        true, predicted = y_true == label, y_pred == label
        hits = np.sum(true & predicted)
        scores.append(2 * hits / (np.sum(true) + np.sum(predicted)))
    return float(np.mean(scores))


# --- on probabilities ----------------------------------------------------------------------------


@register_metric("log_loss", higher_is_better=False, needs="probabilities")
def _log_loss(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...]) -> float:
    # Computed directly: sklearn would reorder the columns by sorted label, not by ``classes``.
    eps = np.finfo(float).eps
    picked = np.clip(proba, eps, 1 - eps)[np.arange(len(y_true)), class_index(y_true, classes)]
    return float(-np.mean(np.log(picked)))


@register_metric("roc_auc", higher_is_better=True, needs="probabilities")
def _roc_auc(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...]) -> float:
    index = class_index(y_true, classes)
    if len(np.unique(index)) < 2:
        raise MetricError(f"roc_auc is undefined when the true labels hold a single class ({y_true[0]})")
    return _one_vs_rest(_auc, index, proba)


@register_metric("average_precision", higher_is_better=True, needs="probabilities")
def _average_precision(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...]) -> float:
    index = class_index(y_true, classes)
    if len(classes) == 2 and not np.any(index == 1):
        raise MetricError(f"average_precision is undefined when no true label is the positive class {classes[1]!r} (the last one)")
    return _one_vs_rest(_precision_recall_area, index, proba)


def _one_vs_rest(measure, index: np.ndarray, proba: np.ndarray) -> float:
    """Binary: ``measure`` of the last class's column. Else the mean of each present class against the rest."""
    if proba.shape[1] == 2:
        return measure(index == 1, proba[:, 1])
    return float(np.mean([measure(index == k, proba[:, k]) for k in np.unique(index)]))


def _auc(positive: np.ndarray, score: np.ndarray) -> float:
    """The area under the ROC curve: the chance that a positive outscores a negative, ties counting
    one half (the Mann-Whitney statistic, from the mid-ranks of the scores)."""
    _, inverse, counts = np.unique(score, return_inverse=True, return_counts=True)
    ranks = (np.cumsum(counts) - (counts - 1) / 2)[inverse]
    n_pos = int(np.sum(positive))
    n_neg = len(positive) - n_pos
    return float((np.sum(ranks[positive]) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _precision_recall_area(positive: np.ndarray, score: np.ndarray) -> float:
    """Average precision: the precision at each distinct score threshold (highest first), weighted
    by the recall it adds."""
    order = np.argsort(-score, kind="mergesort")
    hits = positive[order]
    last = np.r_[np.flatnonzero(np.diff(score[order])), len(hits) - 1]  # the last row of each distinct score
    found = np.cumsum(hits)[last]
    recall = found / found[-1]
    return float(np.sum(np.diff(recall, prepend=0.0) * found / (last + 1)))
