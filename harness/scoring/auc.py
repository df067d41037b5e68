"""ROC AUC on many resamples at once, each given as drawn ids: the whole-metric path of
``harness.scoring.bootstrap`` for the one non-decomposable metric worth a fast path."""

from __future__ import annotations

import numpy as np


def per_row_counts(columns: np.ndarray, width: int) -> np.ndarray:
    """``(rows, width)``: how often each value in ``[0, width)`` occurs in each row of ``columns``."""
    k = len(columns)
    return np.bincount((columns + (np.arange(k) * width)[:, None]).ravel(), minlength=k * width).reshape(k, width)


class ResampledAuc:
    """The harness's ``roc_auc`` (binary: the last class positive; multiclass: one-vs-rest averaged
    over the classes a resample holds; NaN where it holds one class only) on resamples given as
    drawn ids. Per class, each id is put once in a column (its group of equal scores, positives and
    negatives apart); a resample is then one count per column, and its AUC the share of
    (positive, negative) pairs ordered right, a tie counting half: sklearn's value on the drawn ids."""

    def __init__(self, y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...]) -> None:
        position = {c: i for i, c in enumerate(classes)}
        self.index = np.asarray([position[y] for y in y_true])
        self.classes = len(classes)
        targets = [1] if len(classes) == 2 else range(len(classes))
        self.columns = {k: self._columns(self.index == k, proba[:, k]) for k in targets}

    @staticmethod
    def _columns(positive: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, int]:
        _, group = np.unique(score, return_inverse=True)  # groups of equal scores, ascending
        groups = int(group.max()) + 1
        return (group + groups * ~positive).astype(np.intp), groups

    def scores(self, ids: np.ndarray) -> np.ndarray:
        if self.classes == 2:
            return self._auc(ids, *self.columns[1])
        present = per_row_counts(self.index[ids], self.classes) > 0
        total = np.zeros(len(ids))
        for k, (column, groups) in self.columns.items():
            if present[:, k].any():
                total += np.where(present[:, k], np.nan_to_num(self._auc(ids, column, groups)), 0.0)
        held = present.sum(axis=1)
        with np.errstate(all="ignore"):
            return np.where(held >= 2, total / held, np.nan)

    @staticmethod
    def _auc(ids: np.ndarray, column: np.ndarray, groups: int) -> np.ndarray:
        counts = per_row_counts(column[ids], 2 * groups)
        positives, negatives = counts[:, :groups], counts[:, groups:]
        below = np.cumsum(negatives, axis=1) - negatives
        pairs = (positives * (2 * below + negatives)).sum(axis=1) / 2  # a tie counts half
        with np.errstate(all="ignore"):
            return pairs / (positives.sum(axis=1) * negatives.sum(axis=1).astype(float))
