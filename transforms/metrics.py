"""Model evaluation metrics as mergeable Beam CombineFns, overall and per slice.

Each metric is a `beam.CombineFn` whose input elements are `LabeledBatch`es:
small frozen dataclasses of numpy arrays (labels, predictions, optional
example weights) holding many examples, so every update is vectorised numpy
and never a per-example Python loop. The accumulators are fixed-size numpy
arrays that merge by addition, so the result does not depend on how a runner
splits and merges the work (tests/contracts/test_metric_combine_fns.py checks
that contract for every CombineFn).

`ComputeMetrics` takes a PCollection of Arrow record batches with a label
column, a prediction column, an optional weight column and the slice feature
columns (`MetricsConfig` names them), keys each batch's rows by slice, combines
per slice and emits one plain dict::

    {"Overall": {"accuracy": 0.91, "auc_roc": 0.95, ...},
     "payment_type=Cash": {...},
     "company=Flash,payment_type=Cash": {...}}

`compute_metrics_in_memory` returns the same dict without Beam, running the
same CombineFns.

Input formats
-------------
- Labels: binary: 0/1 (int, float or bool); multiclass: integer class ids
  0..k-1; regression: numbers.
- Predictions: binary: probability of the positive class, shape [n] (a
  column of floats; [n, 1] and [n, 2] softmax outputs are accepted, the
  latter read as its column 1); multiclass: class probabilities, shape
  [n, k] (an Arrow fixed-size list or list column of k floats);
  regression: numbers. With ``MetricsConfig(output_kind="logits")`` the
  predictions are logits instead: a sigmoid ([n], [n, 1]) or softmax ([n, 2],
  [n, k]) turns them into probabilities before any metric sees them.
- Weights: optional non-negative example weights; all metrics are weighted.
- A row whose label, prediction or weight is null is left out of every metric;
  a row whose slice feature is null is left out of that slice only.

Metric definitions
------------------
- ``example_count`` (rows), ``weighted_example_count`` (sum of weights).
- Classification at a decision threshold (`ConfusionAtThreshold`, exact):
  binary predicts positive when ``p > threshold`` (0.5; Keras' convention),
  and ``precision``/``recall`` are those of the positive class. Multiclass
  predicts ``argmax(p)`` and ``precision``/``recall`` are macro averages over
  the k classes (one-vs-rest, as scikit-learn's ``average="macro"``). A 0/0
  precision or recall counts as 0, as in scikit-learn. ``accuracy`` is the
  weighted fraction predicted right.
- ``auc_roc`` and ``auc_pr`` (`AUCCurves`) are Keras' / TFMA's bucketed
  method: predictions are counted into ``num_thresholds`` (10,000) evenly
  spaced buckets over [0, 1]; true/false positives at each threshold come
  from reverse cumulative sums. ROC AUC is the trapezoidal rule over the
  (FPR, TPR) points; PR AUC is Davis & Goadrich's interpolation (Keras'
  ``summation_method="interpolation"``). The bucketing merges examples whose
  predictions fall in the same 1/(num_thresholds-1) bucket, as if tied; that
  is the only difference from the exact values. Multiclass: one-vs-rest per
  class, macro-averaged over the classes whose AUC is defined (a class with
  no positive or no negative examples has none); NaN if none is defined.
- ``log_loss``: weighted mean cross-entropy, probabilities clipped to
  [ε, 1 - ε] with ε the float64 machine epsilon (scikit-learn's clipping).
- Binary only (`Calibration`): ``mean_label``, ``mean_prediction`` and
  ``calibration`` = mean prediction / mean label (1.0 is well calibrated).
- Regression (`RegressionErrors`): ``mse``, ``mae``, ``rmse``, plus
  ``mean_label`` and ``mean_prediction``.

Validation: `validate_metrics(metrics, thresholds, baseline_metrics)` checks
`ValueThreshold`s (absolute bounds) and `ChangeThreshold`s (how much worse
than a baseline a candidate may be) and says why a model is not blessed.
They live in the Beam-free ``beam_ml.transforms.thresholds`` (a pipeline file
names thresholds without importing Beam) and are re-exported here.

This module never imports TensorFlow.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.pvalue import PCollection

from beam_ml.transforms.options import MetricsConfig
from beam_ml.transforms.thresholds import OVERALL, ChangeThreshold, ValueThreshold, validate_metrics

__all__ = [
    "OVERALL",
    "AUCCurves",
    "Calibration",
    "ChangeThreshold",
    "ComputeMetrics",
    "ConfusionAtThreshold",
    "ExampleCount",
    "LabeledBatch",
    "LogLoss",
    "MetricsCombineFn",
    "MetricsConfig",
    "RegressionErrors",
    "ValueThreshold",
    "compute_metrics_in_memory",
    "labeled_batch_from_record_batch",
    "slice_record_batch",
    "validate_metrics",
]

Metrics = dict[str, float]
SlicedMetrics = dict[str, Metrics]


# ---------------------------------------------------------------------------
# Input element
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LabeledBatch:
    """Many examples' labels, predictions and (optionally) weights, as numpy arrays.

    labels: [n]; predictions: [n] (binary probability, regression value) or
    [n, k] (class probabilities); weights: [n] or None (all 1).
    """

    labels: np.ndarray
    predictions: np.ndarray
    weights: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        if len(self.predictions) != n or (self.weights is not None and len(self.weights) != n):
            raise ValueError(
                f"labels, predictions and weights must have the same length, got {n}, "
                f"{len(self.predictions)} and {None if self.weights is None else len(self.weights)}"
            )

    def __len__(self) -> int:
        return len(self.labels)

    def weight_array(self) -> np.ndarray:
        if self.weights is None:
            return np.ones(len(self.labels), dtype=np.float64)
        return np.asarray(self.weights, dtype=np.float64)


def _binary_scores(predictions: np.ndarray) -> np.ndarray:
    """The positive-class probability from [n], [n, 1] or [n, 2] predictions."""
    p = np.asarray(predictions, dtype=np.float64)
    if p.ndim == 2 and p.shape[1] == 1:
        return p[:, 0]
    if p.ndim == 2 and p.shape[1] == 2:
        return p[:, 1]
    if p.ndim != 1:
        raise ValueError(f"binary predictions must have shape [n], [n, 1] or [n, 2], got {p.shape}")
    return p


def _as_classes(predictions: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(scores [n, k], integer labels [n]) for binary ([n] → k = 2) and multiclass input."""
    p = np.asarray(predictions, dtype=np.float64)
    if p.ndim == 1 or (p.ndim == 2 and p.shape[1] == 1):
        positive = p.reshape(-1)
        p = np.stack([1.0 - positive, positive], axis=1)
    if p.ndim != 2:
        raise ValueError(f"class predictions must have shape [n] or [n, k], got {p.shape}")
    y = np.asarray(labels)
    y_int = y.astype(np.int64)
    if len(y) and (np.any(y_int != y) or y_int.min() < 0 or y_int.max() >= p.shape[1]):
        bad = y[(y_int != y) | (y_int < 0) | (y_int >= p.shape[1])][0]
        raise ValueError(f"label {bad!r} is not a class id in 0..{p.shape[1] - 1}")
    return p, y_int


def _new_or_check(acc: np.ndarray | None, shape: tuple[int, ...], what: str) -> np.ndarray:
    if acc is None:
        return np.zeros(shape, dtype=np.float64)
    if acc.shape != shape:
        raise ValueError(f"{what}: inconsistent shapes {acc.shape} and {shape} (mixed numbers of classes?)")
    return acc


def _merge_arrays(accumulators: Iterable[np.ndarray | None], what: str) -> np.ndarray | None:
    """Sums the accumulators into the first one, mutating only that one (Beam's contract).

    When the first is still empty (None), the sum starts from a copy of the next one:
    the runner may still hold the others.
    """
    parts = iter(accumulators)
    result = next(parts)
    for acc in parts:
        if acc is None:
            continue
        if result is None:
            result = acc.copy()
        else:
            _new_or_check(result, acc.shape, what)
            result += acc
    return result


def _div(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


# ---------------------------------------------------------------------------
# Metric CombineFns over LabeledBatch
# ---------------------------------------------------------------------------


class ExampleCount(beam.CombineFn):
    """``example_count`` and ``weighted_example_count``. Accumulator: [rows, weight sum]."""

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(2, dtype=np.float64)

    def add_input(self, acc: np.ndarray, batch: LabeledBatch) -> np.ndarray:
        acc[0] += len(batch)
        acc[1] += batch.weight_array().sum()
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        it = iter(accumulators)
        result = next(it)
        for acc in it:
            result += acc
        return result

    def extract_output(self, acc: np.ndarray) -> Metrics:
        return {"example_count": float(acc[0]), "weighted_example_count": float(acc[1])}


class ConfusionAtThreshold(beam.CombineFn):
    """``accuracy``, ``precision``, ``recall`` from a weighted k×k confusion matrix (exact).

    Binary ([n] predictions): predicted positive iff p > threshold; precision
    and recall of class 1. Multiclass ([n, k]): predicted class is the argmax;
    precision and recall are macro averages. Accumulator: the matrix
    (rows = true class, columns = predicted), None before the first input.
    """

    def __init__(self, threshold: float = 0.5) -> None:
        self._threshold = threshold

    def create_accumulator(self) -> np.ndarray | None:
        return None

    def add_input(self, acc: np.ndarray | None, batch: LabeledBatch) -> np.ndarray | None:
        if len(batch) == 0:
            return acc
        p = np.asarray(batch.predictions, dtype=np.float64)
        if p.ndim == 1 or p.shape[1] == 1:
            scores, labels = _as_classes(p, batch.labels)
            predicted = (scores[:, 1] > self._threshold).astype(np.int64)
        else:
            scores, labels = _as_classes(p, batch.labels)
            predicted = np.argmax(scores, axis=1)
        k = scores.shape[1]
        acc = _new_or_check(acc, (k, k), "ConfusionAtThreshold")
        acc += np.bincount(labels * k + predicted, weights=batch.weight_array(), minlength=k * k).reshape(k, k)
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray | None]) -> np.ndarray | None:
        return _merge_arrays(accumulators, "ConfusionAtThreshold")

    def extract_output(self, acc: np.ndarray | None) -> Metrics:
        if acc is None:
            return {"accuracy": math.nan, "precision": math.nan, "recall": math.nan}
        correct = np.diag(acc)
        predicted = acc.sum(axis=0)
        actual = acc.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            precision = np.where(predicted > 0, correct / np.where(predicted > 0, predicted, 1), 0.0)
            recall = np.where(actual > 0, correct / np.where(actual > 0, actual, 1), 0.0)
        if acc.shape[0] == 2:  # binary: the positive class's precision and recall
            precision_value, recall_value = precision[1], recall[1]
        else:
            precision_value, recall_value = precision.mean(), recall.mean()
        return {
            "accuracy": _div(correct.sum(), acc.sum()),
            "precision": float(precision_value),
            "recall": float(recall_value),
        }


class AUCCurves(beam.CombineFn):
    """``auc_roc`` and ``auc_pr`` from bucketed confusion matrices (Keras' and TFMA's method).

    Accumulator: weighted positive and negative counts per prediction bucket,
    shape [k, 2, num_thresholds] (k = 1 for binary; one-vs-rest per class for
    multiclass), None before the first input. Bucket b holds predictions in
    (b-1, b] / (num_thresholds-1), b = 0 also holds 0; predictions outside
    [0, 1] are clipped.
    """

    def __init__(self, num_thresholds: int = 10_000) -> None:
        if num_thresholds < 3:
            raise ValueError(f"num_thresholds must be at least 3, got {num_thresholds}")
        self._num_thresholds = num_thresholds

    def create_accumulator(self) -> np.ndarray | None:
        return None

    def add_input(self, acc: np.ndarray | None, batch: LabeledBatch) -> np.ndarray | None:
        if len(batch) == 0:
            return acc
        t = self._num_thresholds
        p = np.asarray(batch.predictions, dtype=np.float64)
        if p.ndim == 1 or p.shape[1] <= 2:
            scores = _binary_scores(p)[:, None]
            positive = np.asarray(batch.labels, dtype=np.float64)[:, None]
            if np.any((positive != 0) & (positive != 1)):
                raise ValueError("binary labels must be 0 or 1")
        else:
            scores, labels = _as_classes(p, batch.labels)
            positive = (labels[:, None] == np.arange(scores.shape[1])).astype(np.float64)
        k = scores.shape[1]
        buckets = np.clip(np.ceil(np.clip(scores, 0.0, 1.0) * (t - 1)) - 1, 0, t - 1).astype(np.int64)
        index = (np.arange(k) * 2 * t)[None, :] + buckets  # [n, k] → positions in [k, 2, t]
        w = batch.weight_array()[:, None]
        acc = _new_or_check(acc, (k, 2, t), "AUCCurves")
        flat = acc.reshape(-1)
        flat += np.bincount(index.ravel(), weights=(w * positive).ravel(), minlength=flat.size)
        flat += np.bincount((index + t).ravel(), weights=(w * (1.0 - positive)).ravel(), minlength=flat.size)
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray | None]) -> np.ndarray | None:
        return _merge_arrays(accumulators, "AUCCurves")

    def extract_output(self, acc: np.ndarray | None) -> Metrics:
        if acc is None:
            return {"auc_roc": math.nan, "auc_pr": math.nan}
        roc, pr = [], []
        for positives, negatives in acc:
            # Counts strictly above each threshold: reverse cumulative sums.
            tp = np.cumsum(positives[::-1])[::-1]
            fp = np.cumsum(negatives[::-1])[::-1]
            total_pos, total_neg = tp[0], fp[0]
            if total_pos <= 0 or total_neg <= 0:
                continue  # undefined for a class without positives or negatives
            roc.append(_roc_auc(tp, fp, total_pos, total_neg))
            pr.append(_interpolated_pr_auc(tp, fp, total_pos))
        return {
            "auc_roc": float(np.mean(roc)) if roc else math.nan,
            "auc_pr": float(np.mean(pr)) if pr else math.nan,
        }


def _roc_auc(tp: np.ndarray, fp: np.ndarray, total_pos: float, total_neg: float) -> float:
    """Trapezoidal area under (FPR, TPR), thresholds ascending so FPR descends."""
    tpr = tp / total_pos
    fpr = fp / total_neg
    return float(np.sum((fpr[:-1] - fpr[1:]) * (tpr[:-1] + tpr[1:]) / 2.0))


def _interpolated_pr_auc(tp: np.ndarray, fp: np.ndarray, total_pos: float) -> float:
    """Davis & Goadrich (2006) interpolation between thresholds, as Keras' AUC(curve="PR")."""
    dtp = tp[:-1] - tp[1:]
    p = tp + fp
    dp = p[:-1] - p[1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        slope = np.where(dp > 0, dtp / np.where(dp > 0, dp, 1.0), 0.0)
        intercept = tp[1:] - slope * p[1:]
        both = (p[:-1] > 0) & (p[1:] > 0)
        ratio = np.where(both, p[:-1] / np.where(both, p[1:], 1.0), 1.0)
        increments = slope * (dtp + intercept * np.log(ratio))
    return float(np.sum(increments) / total_pos)


# scikit-learn's clipping (eps="auto" for float64 predictions).
_LOG_EPS = float(np.finfo(np.float64).eps)


class LogLoss(beam.CombineFn):
    """``log_loss``: weighted mean cross-entropy. Accumulator: [loss sum, weight sum]."""

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(2, dtype=np.float64)

    def add_input(self, acc: np.ndarray, batch: LabeledBatch) -> np.ndarray:
        if len(batch) == 0:
            return acc
        p = np.asarray(batch.predictions, dtype=np.float64)
        w = batch.weight_array()
        if p.ndim == 1 or p.shape[1] <= 2:
            q = np.clip(_binary_scores(p), _LOG_EPS, 1 - _LOG_EPS)
            y = np.asarray(batch.labels, dtype=np.float64)
            losses = -(y * np.log(q) + (1.0 - y) * np.log(1.0 - q))
        else:
            scores, labels = _as_classes(p, batch.labels)
            q = np.clip(scores[np.arange(len(labels)), labels], _LOG_EPS, 1 - _LOG_EPS)
            losses = -np.log(q)
        acc[0] += np.dot(w, losses)
        acc[1] += w.sum()
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return _merge_arrays(accumulators, "LogLoss")  # type: ignore[return-value]

    def extract_output(self, acc: np.ndarray) -> Metrics:
        return {"log_loss": _div(acc[0], acc[1])}


class Calibration(beam.CombineFn):
    """Binary ``mean_label``, ``mean_prediction``, ``calibration`` (their ratio).

    Accumulator: [weighted label sum, weighted prediction sum, weight sum].
    """

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(3, dtype=np.float64)

    def add_input(self, acc: np.ndarray, batch: LabeledBatch) -> np.ndarray:
        w = batch.weight_array()
        acc[0] += np.dot(w, np.asarray(batch.labels, dtype=np.float64))
        acc[1] += np.dot(w, _binary_scores(batch.predictions))
        acc[2] += w.sum()
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return _merge_arrays(accumulators, "Calibration")  # type: ignore[return-value]

    def extract_output(self, acc: np.ndarray) -> Metrics:
        return {
            "mean_label": _div(acc[0], acc[2]),
            "mean_prediction": _div(acc[1], acc[2]),
            "calibration": _div(acc[1], acc[0]),
        }


class RegressionErrors(beam.CombineFn):
    """``mse``, ``mae``, ``rmse``, ``mean_label``, ``mean_prediction`` (weighted).

    Accumulator: [Σw·err², Σw·|err|, Σw·label, Σw·prediction, Σw].
    """

    def create_accumulator(self) -> np.ndarray:
        return np.zeros(5, dtype=np.float64)

    def add_input(self, acc: np.ndarray, batch: LabeledBatch) -> np.ndarray:
        if len(batch) == 0:
            return acc
        y = np.asarray(batch.labels, dtype=np.float64)
        p = np.asarray(batch.predictions, dtype=np.float64).reshape(len(y), -1)
        if p.shape[1] != 1:
            raise ValueError(f"regression predictions must have shape [n] or [n, 1], got {p.shape}")
        p = p[:, 0]
        w = batch.weight_array()
        err = p - y
        acc += [np.dot(w, err * err), np.dot(w, np.abs(err)), np.dot(w, y), np.dot(w, p), w.sum()]
        return acc

    def merge_accumulators(self, accumulators: Iterable[np.ndarray]) -> np.ndarray:
        return _merge_arrays(accumulators, "RegressionErrors")  # type: ignore[return-value]

    def extract_output(self, acc: np.ndarray) -> Metrics:
        mse = _div(acc[0], acc[4])
        return {
            "mse": mse,
            "mae": _div(acc[1], acc[4]),
            "rmse": math.sqrt(mse) if not math.isnan(mse) else math.nan,
            "mean_label": _div(acc[2], acc[4]),
            "mean_prediction": _div(acc[3], acc[4]),
        }


class PlotData(beam.CombineFn):
    """What an evaluation's plots draw, from the same counts as the metrics.

    Per class (binary: the positive class; multiclass: one-vs-rest): the ROC
    and precision-recall curves at ``num_thresholds`` evenly spaced thresholds
    and a calibration table (the share of positives among the predictions in
    each of ``calibration_bins`` equal-width score bins); and the confusion
    matrix at the decision threshold (rows = true class). Accumulator:
    [ConfusionAtThreshold's, AUCCurves' (with ``num_thresholds`` buckets)].
    """

    def __init__(self, threshold: float = 0.5, num_thresholds: int = 101, calibration_bins: int = 10) -> None:
        if (num_thresholds - 1) % calibration_bins:
            raise ValueError("calibration_bins must divide num_thresholds - 1 (the bins are whole buckets)")
        self._confusion = ConfusionAtThreshold(threshold)
        self._curves = AUCCurves(num_thresholds)
        self._num_thresholds = num_thresholds
        self._bins = calibration_bins

    def create_accumulator(self) -> list[np.ndarray | None]:
        return [None, None]

    def add_input(self, acc: list[np.ndarray | None], batch: LabeledBatch) -> list[np.ndarray | None]:
        return [self._confusion.add_input(acc[0], batch), self._curves.add_input(acc[1], batch)]

    def merge_accumulators(self, accumulators: Iterable[list[np.ndarray | None]]) -> list[np.ndarray | None]:
        accumulators = list(accumulators)
        first = accumulators[0]
        first[0] = self._confusion.merge_accumulators([a[0] for a in accumulators])
        first[1] = self._curves.merge_accumulators([a[1] for a in accumulators])
        return first

    def extract_output(self, acc: list[np.ndarray | None]) -> dict[str, Any]:
        confusion, curves = acc
        out: dict[str, Any] = {}
        if confusion is not None:
            out["confusion_matrix"] = confusion.tolist()
        if curves is not None:
            out["classes"] = [self._class_plots(positives, negatives) for positives, negatives in curves]
        return out

    def _class_plots(self, positives: np.ndarray, negatives: np.ndarray) -> dict[str, Any]:
        t = self._num_thresholds
        # AUCCurves puts a score s in bucket ceil(s (t-1)) - 1 (0 for s = 0): bucket b holds (b/(t-1), (b+1)/(t-1)],
        # so the counts from bucket b on are the scores above threshold b/(t-1) (b = 0: every score).
        tp = np.cumsum(positives[::-1])[::-1]
        fp = np.cumsum(negatives[::-1])[::-1]
        total_pos, total_neg = float(tp[0]), float(fp[0])
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr = tp / total_pos if total_pos > 0 else np.full(t, np.nan)
            fpr = fp / total_neg if total_neg > 0 else np.full(t, np.nan)
            precision = np.where(tp + fp > 0, tp / (tp + fp), np.nan)
        thresholds = np.arange(t) / (t - 1)
        # bin i, scores in (i/bins, (i+1)/bins] (the first also holds 0): buckets i*width .. (i+1)*width - 1
        edges = np.arange(self._bins) * ((t - 1) // self._bins)
        pos_bins = np.add.reduceat(positives, edges)
        count_bins = pos_bins + np.add.reduceat(negatives, edges)
        with np.errstate(invalid="ignore", divide="ignore"):
            observed = np.where(count_bins > 0, pos_bins / count_bins, np.nan)
        return {
            "positives": total_pos,
            "negatives": total_neg,
            "thresholds": thresholds.tolist(),
            "tpr": tpr.tolist(),
            "fpr": fpr.tolist(),
            "precision": precision.tolist(),
            "calibration": {
                "bin_low": (np.arange(self._bins) / self._bins).tolist(),
                "bin_high": (np.arange(1, self._bins + 1) / self._bins).tolist(),
                "observed": observed.tolist(),
                "count": count_bins.tolist(),
            },
        }


class MetricsCombineFn(beam.CombineFn):
    """Several metric CombineFns over the same LabeledBatches; one dict of all their outputs.

    Accumulator: a list with one accumulator per metric. Later metrics win
    when two produce the same name.
    """

    def __init__(self, metrics: Sequence[beam.CombineFn]) -> None:
        self._metrics = tuple(metrics)

    def create_accumulator(self) -> list[Any]:
        return [m.create_accumulator() for m in self._metrics]

    def add_input(self, acc: list[Any], batch: LabeledBatch) -> list[Any]:
        for i, metric in enumerate(self._metrics):
            acc[i] = metric.add_input(acc[i], batch)
        return acc

    def merge_accumulators(self, accumulators: Iterable[list[Any]]) -> list[Any]:
        accumulators = list(accumulators)
        first = accumulators[0]
        for i, metric in enumerate(self._metrics):
            first[i] = metric.merge_accumulators([acc[i] for acc in accumulators])
        return first

    def compact(self, acc: list[Any]) -> list[Any]:
        return [metric.compact(a) for metric, a in zip(self._metrics, acc, strict=True)]

    def extract_output(self, acc: list[Any]) -> Metrics:
        result: Metrics = {}
        for metric, a in zip(self._metrics, acc, strict=True):
            result.update(metric.extract_output(a))
        return result


# ---------------------------------------------------------------------------
# Configuration, record batches → (slice, LabeledBatch)
# ---------------------------------------------------------------------------


def _column_numpy(array: pa.Array | pa.ChunkedArray, name: str) -> np.ndarray:
    """A column as numpy: flat columns [n], list columns [n, k] (every list k long)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if pa.types.is_fixed_size_list(array.type):
        width = array.type.list_size
        values = array.flatten()
        return values.to_numpy(zero_copy_only=False).reshape(len(array), width)
    if pa.types.is_list(array.type) or pa.types.is_large_list(array.type):
        lengths = pc.list_value_length(array).to_numpy(zero_copy_only=False)
        if len(lengths) and np.any(lengths != lengths[0]):
            raise ValueError(f"column {name!r}: every row must hold the same number of values")
        width = int(lengths[0]) if len(lengths) else 0
        return array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), width)
    return array.to_numpy(zero_copy_only=False)


def labeled_batch_from_record_batch(batch: pa.RecordBatch, config: MetricsConfig) -> LabeledBatch:
    """The label, prediction and weight columns as a LabeledBatch; rows with a null among them dropped."""
    names = [config.label_column, config.prediction_column]
    if config.weight_column is not None:
        names.append(config.weight_column)
    missing = [n for n in names if n not in batch.schema.names]
    if missing:
        raise KeyError(f"record batch has no column {missing[0]!r} (columns: {batch.schema.names})")
    columns = [batch.column(n) for n in names]
    if any(c.null_count for c in columns):
        valid = np.logical_and.reduce([c.is_valid().to_numpy(zero_copy_only=False) for c in columns])
        columns = [c.filter(pa.array(valid)) for c in columns]
    arrays = [_column_numpy(c, n) for c, n in zip(columns, names, strict=True)]
    if config.output_kind == "logits":
        arrays[1] = probabilities_from_logits(arrays[1])
    return LabeledBatch(arrays[0], arrays[1], arrays[2] if len(arrays) > 2 else None)


def probabilities_from_logits(logits: np.ndarray) -> np.ndarray:
    """Sigmoid of [n] / [n, 1] logits, softmax over the last axis of [n, k] logits (k ≥ 2), in float64."""
    values = np.asarray(logits, dtype=np.float64)
    if values.ndim == 1 or (values.ndim == 2 and values.shape[1] == 1):
        # exp of a non-positive number only: no overflow for large |logit|.
        exponent = np.exp(-np.abs(values))
        return np.where(values >= 0, 1.0 / (1.0 + exponent), exponent / (1.0 + exponent))
    shifted = np.exp(values - values.max(axis=-1, keepdims=True))
    return shifted / shifted.sum(axis=-1, keepdims=True)


def _slice_value(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def slice_record_batch(
    batch: pa.RecordBatch, slices: Sequence[Sequence[str]]
) -> Iterator[tuple[str, pa.RecordBatch]]:
    """(slice name, rows) for each slice spec and each combination of its features' values.

    ``()`` yields ("Overall", batch). Rows with a null slice feature are in no
    slice of that spec. Vectorised: one dictionary encoding per feature, one
    sort per spec.
    """
    for spec in slices:
        if not spec:
            yield OVERALL, batch
            continue
        missing = [name for name in spec if name not in batch.schema.names]
        if missing:
            raise KeyError(f"slice feature {missing[0]!r} is not a column (columns: {batch.schema.names})")
        codes = np.zeros(batch.num_rows, dtype=np.int64)
        valid = np.ones(batch.num_rows, dtype=bool)
        dictionaries = []
        for name in spec:
            column = batch.column(name)
            if pa.types.is_nested(column.type):
                raise TypeError(f"slice feature {name!r} must be a flat column, got {column.type}")
            encoded = pc.dictionary_encode(column)
            dictionary = encoded.dictionary.to_pylist()
            indices = encoded.indices
            valid &= indices.is_valid().to_numpy(zero_copy_only=False)
            codes = codes * (len(dictionary) + 1) + indices.fill_null(0).to_numpy(zero_copy_only=False)
            dictionaries.append(dictionary)
        rows = np.flatnonzero(valid)
        if not len(rows):
            continue
        order = rows[np.argsort(codes[rows], kind="stable")]
        sorted_codes = codes[order]
        starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
        for start, stop in zip(starts, [*starts[1:], len(order)], strict=True):
            code = int(sorted_codes[start])
            parts = []
            for name, dictionary in zip(reversed(spec), reversed(dictionaries), strict=True):
                code, index = divmod(code, len(dictionary) + 1)
                parts.append(f"{name}={_slice_value(dictionary[index])}")
            yield ",".join(reversed(parts)), batch.take(pa.array(order[start:stop]))


def _keyed_batches(batch: pa.RecordBatch, config: MetricsConfig) -> Iterator[tuple[str, LabeledBatch]]:
    for name, rows in slice_record_batch(batch, config.slices):
        labeled = labeled_batch_from_record_batch(rows, config)
        if len(labeled):
            yield name, labeled


def _ordered(metrics: Mapping[str, Metrics]) -> SlicedMetrics:
    """Overall first, then the slices by name."""
    names = sorted(metrics, key=lambda name: (name != OVERALL, name))
    return {name: dict(metrics[name]) for name in names}


class ComputeMetrics(beam.PTransform[PCollection[pa.RecordBatch], PCollection[SlicedMetrics]]):
    """Record batches → one dict {slice name: {metric: value}}; empty input gives {}."""

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, batches: PCollection[pa.RecordBatch]) -> PCollection[SlicedMetrics]:
        config = self._config
        return (
            batches
            | "KeyBySlice" >> beam.FlatMap(_keyed_batches, config)
            | "CombinePerSlice" >> beam.CombinePerKey(config.combine_fn())
            | "ToDict" >> beam.combiners.ToDict()
            | "Order" >> beam.Map(_ordered)
        )


class ComputePlots(beam.PTransform[PCollection[pa.RecordBatch], PCollection[dict]]):
    """Record batches → {slice name: PlotData's output} for a classification config; {} for regression."""

    def __init__(self, config: MetricsConfig) -> None:
        super().__init__()
        self._config = config

    def expand(self, batches: PCollection[pa.RecordBatch]) -> PCollection[dict]:
        config = self._config
        if config.task == "regression":
            return batches.pipeline | "NoPlots" >> beam.Create([{}])
        return (
            batches
            | "KeyBySlice" >> beam.FlatMap(_keyed_batches, config)
            | "CombinePerSlice" >> beam.CombinePerKey(PlotData(config.decision_threshold))
            | "ToDict" >> beam.combiners.ToDict()
            | "Order" >> beam.Map(_ordered)
        )


def compute_metrics_in_memory(batches: Iterable[pa.RecordBatch], config: MetricsConfig) -> SlicedMetrics:
    """What ComputeMetrics gives, without Beam, using the same CombineFns."""
    combine_fn = config.combine_fn()
    accumulators: dict[str, Any] = {}
    for batch in batches:
        for name, labeled in _keyed_batches(batch, config):
            if name not in accumulators:
                accumulators[name] = combine_fn.create_accumulator()
            accumulators[name] = combine_fn.add_input(accumulators[name], labeled)
    return _ordered({name: combine_fn.extract_output(acc) for name, acc in accumulators.items()})
