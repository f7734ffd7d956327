"""Evaluation metrics: scikit-learn's numbers, Beam = in memory, validation (the combiner
contract is in tests/contracts/test_metric_combine_fns.py).

Tolerances, and why:
- example counts, accuracy, precision, recall: exact (the confusion matrix
  at the decision threshold is plain weighted counting; 1e-12 for float sums).
- log loss: 1e-6 (ours sums per batch, sklearn in one go; both clip at the
  float64 epsilon).
- MSE/MAE: 1e-9.
- AUC-ROC: 1e-4. Our AUC buckets predictions into 10,000 thresholds (Keras'
  and TFMA's method); examples in the same 1e-4-wide bucket count as tied,
  which moves the area by at most the share of positive/negative pairs that
  share a bucket; with a few thousand continuous predictions that is ~1e-5.
- AUC-PR: 1e-3. Besides bucketing, the methods differ: ours interpolates
  precision between thresholds (Davis & Goadrich, Keras' default) while
  sklearn's average precision is a step function; the gap shrinks like
  1/positives (measured ~1e-5 here). The Keras test below checks the same
  method to 1e-5.
"""

from __future__ import annotations

import math
import subprocess
import sys

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from beam_ml.transforms.metrics import (
    OVERALL,
    AUCCurves,
    ChangeThreshold,
    ComputeMetrics,
    ConfusionAtThreshold,
    ExampleCount,
    LabeledBatch,
    LogLoss,
    MetricsCombineFn,
    MetricsConfig,
    ValueThreshold,
    compute_metrics_in_memory,
    validate_metrics,
)

sk = pytest.importorskip("sklearn.metrics")
from sklearn.preprocessing import label_binarize  # noqa: E402

N = 3000
PAYMENT_TYPES = np.array(["Cash", "Card", "Mobile"])


def _batches(columns: dict[str, pa.Array | np.ndarray], size: int = 700) -> list[pa.RecordBatch]:
    table = pa.table(columns)
    return table.to_batches(max_chunksize=size)


@pytest.fixture(scope="module")
def binary() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, N)
    # Some predictions exactly 0 or 1 so clipping is exercised too.
    p = np.clip(rng.normal(0.3 + 0.4 * y, 0.25), 0.0, 1.0)
    return {"label": y, "prediction": p, "weight": rng.uniform(0.5, 2.0, N), "payment_type": rng.choice(PAYMENT_TYPES, N)}


@pytest.fixture(scope="module")
def multiclass() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(2)
    k = 3
    y = rng.integers(0, k, N)
    logits = rng.normal(size=(N, k)) + 1.5 * np.eye(k)[y]
    probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return {"label": y, "prediction": probabilities, "weight": rng.uniform(0.5, 2.0, N), "payment_type": rng.choice(PAYMENT_TYPES, N)}


@pytest.fixture(scope="module")
def regression() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(3)
    y = rng.normal(10.0, 3.0, N)
    return {"label": y, "prediction": y + rng.normal(0.0, 1.0, N), "weight": rng.uniform(0.5, 2.0, N), "payment_type": rng.choice(PAYMENT_TYPES, N)}


def _arrow_columns(data: dict[str, np.ndarray]) -> dict[str, pa.Array]:
    columns = {}
    for name, values in data.items():
        if values.ndim == 2:
            columns[name] = pa.FixedSizeListArray.from_arrays(pa.array(values.ravel()), values.shape[1])
        else:
            columns[name] = pa.array(values)
    return columns


def _rows(data: dict[str, np.ndarray], slice_name: str) -> dict[str, np.ndarray]:
    if slice_name == OVERALL:
        return data
    mask = data["payment_type"] == slice_name.split("=", 1)[1]
    return {name: values[mask] for name, values in data.items()}


SLICES = [OVERALL, "payment_type=Card", "payment_type=Cash", "payment_type=Mobile"]


# ---------------------------------------------------------------------------
# Equal to scikit-learn, overall and per slice
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("weighted", [False, True])
def test_binary_metrics_equal_sklearn(binary: dict[str, np.ndarray], weighted: bool) -> None:
    config = MetricsConfig("binary").with_slices("payment_type").with_weight_column("weight" if weighted else None)
    result = compute_metrics_in_memory(_batches(_arrow_columns(binary)), config)
    assert list(result) == SLICES
    for slice_name in SLICES:
        rows = _rows(binary, slice_name)
        y, p = rows["label"], rows["prediction"]
        w = rows["weight"] if weighted else None
        got = result[slice_name]
        predicted = (p > 0.5).astype(int)
        assert got["example_count"] == len(y)
        assert got["weighted_example_count"] == pytest.approx(len(y) if w is None else w.sum(), rel=1e-12)
        assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted, sample_weight=w), rel=1e-12)
        assert got["precision"] == pytest.approx(sk.precision_score(y, predicted, sample_weight=w), rel=1e-12)
        assert got["recall"] == pytest.approx(sk.recall_score(y, predicted, sample_weight=w), rel=1e-12)
        assert got["log_loss"] == pytest.approx(sk.log_loss(y, p, sample_weight=w), abs=1e-6)
        assert got["auc_roc"] == pytest.approx(sk.roc_auc_score(y, p, sample_weight=w), abs=1e-4)
        assert got["auc_pr"] == pytest.approx(sk.average_precision_score(y, p, sample_weight=w), abs=1e-3)
        assert got["calibration"] == pytest.approx(np.average(p, weights=w) / np.average(y, weights=w), rel=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_metrics_equal_sklearn(multiclass: dict[str, np.ndarray], weighted: bool) -> None:
    config = MetricsConfig("multiclass").with_slices("payment_type").with_weight_column("weight" if weighted else None)
    result = compute_metrics_in_memory(_batches(_arrow_columns(multiclass)), config)
    assert list(result) == SLICES
    for slice_name in SLICES:
        rows = _rows(multiclass, slice_name)
        y, p = rows["label"], rows["prediction"]
        w = rows["weight"] if weighted else None
        got = result[slice_name]
        predicted = p.argmax(axis=1)
        assert got["example_count"] == len(y)
        assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, predicted, sample_weight=w), rel=1e-12)
        assert got["precision"] == pytest.approx(sk.precision_score(y, predicted, average="macro", sample_weight=w), rel=1e-12)
        assert got["recall"] == pytest.approx(sk.recall_score(y, predicted, average="macro", sample_weight=w), rel=1e-12)
        assert got["log_loss"] == pytest.approx(sk.log_loss(y, p, sample_weight=w), abs=1e-6)
        assert got["auc_roc"] == pytest.approx(
            sk.roc_auc_score(y, p, multi_class="ovr", average="macro", sample_weight=w), abs=1e-4
        )
        one_hot = label_binarize(y, classes=[0, 1, 2])
        assert got["auc_pr"] == pytest.approx(
            sk.average_precision_score(one_hot, p, average="macro", sample_weight=w), abs=1e-3
        )
        assert "calibration" not in got


def test_regression_metrics_equal_sklearn(regression: dict[str, np.ndarray]) -> None:
    config = MetricsConfig("regression").with_slices("payment_type").with_weight_column("weight")
    result = compute_metrics_in_memory(_batches(_arrow_columns(regression)), config)
    assert list(result) == SLICES
    for slice_name in SLICES:
        rows = _rows(regression, slice_name)
        y, p, w = rows["label"], rows["prediction"], rows["weight"]
        got = result[slice_name]
        assert got["example_count"] == len(y)
        assert got["mse"] == pytest.approx(sk.mean_squared_error(y, p, sample_weight=w), abs=1e-9)
        assert got["mae"] == pytest.approx(sk.mean_absolute_error(y, p, sample_weight=w), abs=1e-9)
        assert got["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(y, p, sample_weight=w)), abs=1e-9)


def test_auc_equals_keras_bucketed_auc(binary: dict[str, np.ndarray]) -> None:
    """Same method as Keras' AUC (10,000 thresholds, interpolation): equal up to float32 rounding."""
    keras = pytest.importorskip("keras")
    y, p = binary["label"], binary["prediction"]
    ours = AUCCurves().extract_output(AUCCurves().add_input(None, LabeledBatch(y, p)))
    for curve, name in (("ROC", "auc_roc"), ("PR", "auc_pr")):
        metric = keras.metrics.AUC(num_thresholds=10_000, curve=curve)
        metric.update_state(y.astype("float32"), p.astype("float32"))
        assert ours[name] == pytest.approx(float(metric.result()), abs=1e-5)


def test_binary_accepts_two_column_softmax_and_drops_null_rows() -> None:
    y = np.array([0, 1, 1, 0, 1])
    p = np.array([0.2, 0.8, 0.4, 0.6, 0.9])
    two_columns = np.stack([1 - p, p], axis=1)
    batch = pa.record_batch(
        {
            "label": pa.array([0, 1, 1, 0, 1, None]),
            "prediction": pa.FixedSizeListArray.from_arrays(pa.array([*two_columns.ravel(), 0.5, 0.5]), 2),
        }
    )
    got = compute_metrics_in_memory([batch], MetricsConfig("binary"))[OVERALL]
    assert got["example_count"] == 5
    assert got["accuracy"] == pytest.approx(sk.accuracy_score(y, p > 0.5))
    assert got["log_loss"] == pytest.approx(sk.log_loss(y, p), abs=1e-9)


def test_slice_names_combinations_and_nulls() -> None:
    batch = pa.record_batch(
        {
            "label": [1, 0, 1, 0],
            "prediction": [0.9, 0.1, 0.2, 0.7],
            "payment_type": ["Cash", "Card", None, "Cash"],
            "hour": [3, 3, 4, 5],
        }
    )
    config = MetricsConfig("binary", slices=((), ("payment_type",), ("payment_type", "hour")))
    result = compute_metrics_in_memory([batch], config)
    assert list(result) == [
        OVERALL,
        "hour=3,payment_type=Card",
        "hour=3,payment_type=Cash",
        "hour=5,payment_type=Cash",
        "payment_type=Card",
        "payment_type=Cash",
    ]
    assert result[OVERALL]["example_count"] == 4
    assert result["payment_type=Cash"]["example_count"] == 2
    assert result["payment_type=Cash"]["accuracy"] == 0.5


def test_bad_labels_are_refused() -> None:
    with pytest.raises(ValueError, match="not a class id"):
        ConfusionAtThreshold().add_input(None, LabeledBatch(np.array([0, 3]), np.full((2, 3), 1 / 3)))


def test_metrics_module_does_not_import_tensorflow() -> None:
    code = "import sys, beam_ml.transforms.metrics; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------------
# Combining (the CombineFn contract itself: tests/contracts/test_metric_combine_fns.py)
# ---------------------------------------------------------------------------


def _labeled(data: dict[str, np.ndarray]) -> LabeledBatch:
    return LabeledBatch(data["label"], data["prediction"], data["weight"])


def test_metrics_combine_fn_is_all_its_metrics(binary: dict[str, np.ndarray]) -> None:
    batch = _labeled(binary)
    metrics = [ExampleCount(), LogLoss()]
    fn = MetricsCombineFn(metrics)
    combined = fn.extract_output(fn.add_input(fn.create_accumulator(), batch))
    separate = {}
    for metric in metrics:
        separate.update(metric.extract_output(metric.add_input(metric.create_accumulator(), batch)))
    assert combined == separate


# ---------------------------------------------------------------------------
# Beam
# ---------------------------------------------------------------------------


def _approx_equal(expected: dict[str, dict[str, float]]):
    def check(actual: list[dict[str, dict[str, float]]]) -> None:
        assert len(actual) == 1, actual
        assert list(actual[0]) == list(expected)
        for slice_name, metrics in expected.items():
            assert actual[0][slice_name] == pytest.approx(metrics, rel=1e-9, abs=1e-12), slice_name

    return check


def test_beam_pipeline_equals_in_memory(binary: dict[str, np.ndarray]) -> None:
    config = MetricsConfig("binary").with_slices("payment_type").with_weight_column("weight")
    batches = _batches(_arrow_columns(binary), size=250)
    expected = compute_metrics_in_memory(batches, config)
    with BeamTestPipeline() as pipeline:
        result = pipeline | beam.Create(batches, reshuffle=False) | ComputeMetrics(config)
        assert_that(result, _approx_equal(expected))


# ---------------------------------------------------------------------------
# validate_metrics
# ---------------------------------------------------------------------------

CANDIDATE = {OVERALL: {"auc_roc": 0.80, "log_loss": 0.45}, "payment_type=Cash": {"auc_roc": 0.70}}
BASELINE = {OVERALL: {"auc_roc": 0.85, "log_loss": 0.44}}


def test_value_threshold_passes_and_fails() -> None:
    assert validate_metrics(CANDIDATE, [ValueThreshold("auc_roc", lower_bound=0.75)]) == (True, [])
    blessed, reasons = validate_metrics(
        CANDIDATE,
        [ValueThreshold("auc_roc", lower_bound=0.75, slice="payment_type=Cash"), ValueThreshold("log_loss", upper_bound=0.4)],
    )
    assert not blessed
    assert len(reasons) == 2
    assert "auc_roc on slice 'payment_type=Cash' = 0.7 is below the lower bound 0.75" in reasons[0]
    assert "log_loss on slice 'Overall' = 0.45 is above the upper bound 0.4" in reasons[1]


def test_change_threshold_against_baseline() -> None:
    loose = [ChangeThreshold("auc_roc", "higher_is_better", absolute=0.1), ChangeThreshold("log_loss", "lower_is_better", relative=0.05)]
    assert validate_metrics(CANDIDATE, loose, BASELINE) == (True, [])

    strict = [ChangeThreshold("auc_roc", "higher_is_better", absolute=0.01)]
    blessed, reasons = validate_metrics(CANDIDATE, strict, BASELINE)
    assert not blessed
    assert reasons == [
        "auc_roc on slice 'Overall' = 0.8 is worse than the baseline's 0.85 by 0.05 (higher_is_better), "
        "more than the absolute tolerance 0.01"
    ]
    blessed, reasons = validate_metrics(CANDIDATE, [ChangeThreshold("log_loss", "lower_is_better", relative=0.01)], BASELINE)
    assert not blessed
    assert "log_loss" in reasons[0] and "0.45" in reasons[0] and "0.44" in reasons[0] and "relative tolerance 0.01" in reasons[0]
    # No baseline yet: change thresholds are not checked.
    assert validate_metrics(CANDIDATE, strict, None) == (True, [])


def test_missing_or_nan_metric_fails() -> None:
    blessed, reasons = validate_metrics({OVERALL: {"auc_roc": math.nan}}, [ValueThreshold("auc_roc", lower_bound=0.5), ValueThreshold("accuracy", lower_bound=0.5)])
    assert not blessed
    assert reasons == ["auc_roc on slice 'Overall': NaN in the candidate's metrics", "accuracy on slice 'Overall': missing in the candidate's metrics"]


def test_threshold_specs_are_checked() -> None:
    with pytest.raises(ValueError, match="lower or an upper bound"):
        ValueThreshold("auc_roc")
    with pytest.raises(ValueError, match="must be >= 0"):
        ChangeThreshold("auc_roc", "higher_is_better", absolute=-0.1)
    with pytest.raises(ValueError, match="direction"):
        ChangeThreshold("auc_roc", "up", absolute=0.1)  # type: ignore[arg-type]
