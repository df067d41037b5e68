"""How far a score can be trusted: a bootstrap over the scored ids, the same resamples for every submission.

Each resample draws ``n`` ids with replacement from the ``n`` scored ones (``numpy``'s PCG64 from a
given seed, drawn in fixed chunks, so the same seed gives the same resamples, byte for byte). Every
submission is scored on the same resampled ids (paired resamples), which is what makes "the upper
one wins in 97% of them" a statement about the two submissions and not about two test sets.

- A metric that is a mean over ids (``PER_ID``: accuracy, MAE, log loss, RMSE before its square
  root) takes the fast path: a resample is a vector of counts (how often each id was drawn), and
  every submission's score on every resample is one matrix product of the counts and the per-id
  values, chunk by chunk.
- Any other metric (AUC, macro F1, a plugin's) is computed again, whole, on each resample; ROC AUC
  is counted from the drawn ids by groups of equal scores (the same value, without sorting each).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from harness.scoring.auc import ResampledAuc, per_row_counts
from harness.scoring.metrics import METRICS, Metric

CHUNK = 64  # resamples drawn (and multiplied) at once: part of the stream's definition, never tuned per call


@dataclass(frozen=True)
class PerId:
    """A metric as ``finish(mean over ids of values(y_true, y_pred, classes))``."""

    values: Callable[[np.ndarray, np.ndarray, tuple[str, ...]], np.ndarray]
    finish: Callable[[np.ndarray], np.ndarray] = lambda mean: mean


def _log_loss_values(y_true: np.ndarray, proba: np.ndarray, classes: tuple[str, ...]) -> np.ndarray:
    eps = np.finfo(float).eps
    p = np.clip(proba, eps, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    position = {c: i for i, c in enumerate(classes)}
    return -np.log(p[np.arange(len(y_true)), [position[y] for y in y_true]])


PER_ID: dict[str, PerId] = {
    "accuracy": PerId(lambda t, p, c: (t == p).astype(float)),
    "mae": PerId(lambda t, p, c: np.abs(t - p)),
    "rmse": PerId(lambda t, p, c: (t - p) ** 2, np.sqrt),
    "log_loss": PerId(_log_loss_values),
}


@dataclass(frozen=True)
class Spread:
    """Per submission, the resampled scores' interval; per adjacent pair (``i`` above ``i + 1``), the
    share of resamples in which the upper one scores better (an equal score counts half)."""

    low: list[float]
    high: list[float]
    beats_next: list[float]


def seed_of(*parts: str) -> int:
    """A seed from names (competition, board): the same board always draws the same resamples."""
    import hashlib

    return int.from_bytes(hashlib.sha256("\x00".join(parts).encode()).digest()[:4], "big")


def resample_ids(n: int, resamples: int, seed: int):
    """The resamples as chunks of id indices, ``(chunk, n)`` each, ``resamples`` rows in all."""
    rng = np.random.default_rng(seed)
    for start in range(0, resamples, CHUNK):
        yield rng.integers(0, n, size=(min(CHUNK, resamples - start), n))


def per_id_scores(values: np.ndarray, form: PerId, resamples: int, seed: int) -> np.ndarray:
    """``(resamples, submissions)`` scores from ``values`` (``(submissions, n)``, each one's per-id values)."""
    submissions, n = values.shape
    columns = exact_grid(np.asarray(values, dtype=np.float64), n).T  # BLAS reads it transposed
    out = np.empty((resamples, submissions))
    row = 0
    for ids in resample_ids(n, resamples, seed):
        out[row : row + len(ids)] = (per_row_counts(ids, n).astype(columns.dtype) @ columns) / n
        row += len(ids)
    return form.finish(out)


def exact_grid(values: np.ndarray, n: int) -> np.ndarray:
    """Each row of ``values`` rounded to a grid (its own: a power of two under 2**-49 of its largest
    value at 100,000 ids) on which every resampled sum of ``n`` draws is exact in float64. BLAS sums
    in an order that depends on how many submissions are multiplied at once; on this grid every
    order gives the same bits, so a submission's resampled scores do not depend on which others
    were computed with it (a board grown one submission at a time equals one computed at once)."""
    bits = 52 - int(np.ceil(np.log2(n + 1)))  # n draws of |k| < 2**bits sum below 2**52
    top = np.max(np.abs(values), axis=1, keepdims=True) if values.size else np.zeros((len(values), 1))
    exponent = np.where(top > 0, np.floor(np.log2(np.where(top > 0, top, 1.0))) + 1, 0.0)  # |value| < 2**exponent
    step = np.exp2(exponent - bits)
    grid = values / step
    np.round(grid, out=grid)
    grid *= step
    return grid


def whole_scores(
    y_true: np.ndarray, predicted: Sequence[np.ndarray], metric: Metric, classes: tuple[str, ...], resamples: int, seed: int
) -> np.ndarray:
    """``(resamples, submissions)`` scores, the metric computed again on each resample (NaN where it
    is undefined on one, e.g. AUC on a resample holding a single class). ROC AUC is counted from the
    drawn ids by groups of equal scores (``ResampledAuc``: the same value, without sorting each resample)."""
    out = np.empty((resamples, len(predicted)))
    row = 0
    plans = (
        [ResampledAuc(y_true, proba, classes) for proba in predicted]
        if metric.name == "roc_auc" and metric.fn is METRICS["roc_auc"].fn
        else None
    )
    for ids in resample_ids(len(y_true), resamples, seed):
        if plans is not None:
            for j, plan in enumerate(plans):
                out[row : row + len(ids), j] = plan.scores(ids)
            row += len(ids)
            continue
        for drawn in ids:
            truth = y_true[drawn]
            for j, y_pred in enumerate(predicted):
                out[row, j] = _score(metric, truth, y_pred[drawn], classes)
            row += 1
    return out


def _score(metric: Metric, truth: np.ndarray, y_pred: np.ndarray, classes: tuple[str, ...]) -> float:
    try:
        with np.errstate(all="ignore"):
            return float(metric.fn(truth, y_pred, classes))
    except ValueError:  # MetricError included: undefined on this resample
        return float("nan")


def spread(scores: np.ndarray, higher_is_better: bool, confidence: float) -> Spread:
    """Intervals (percentile, at ``confidence``) and adjacent win shares from ``(resamples, submissions)``
    scores, the submissions in rank order."""
    tail = (1 - confidence) / 2
    with np.errstate(all="ignore"):
        low, high = np.nanquantile(scores, [tail, 1 - tail], axis=0) if len(scores) else (np.full(scores.shape[1], np.nan),) * 2
    upper, lower = scores[:, :-1], scores[:, 1:]
    diff = upper - lower if higher_is_better else lower - upper
    valid = ~np.isnan(diff)
    wins = np.where(valid, (diff > 0) + 0.5 * (diff == 0), 0.0).sum(axis=0)
    with np.errstate(all="ignore"):
        share = wins / valid.sum(axis=0)
    return Spread([float(v) for v in low], [float(v) for v in high], [float(v) for v in share])
