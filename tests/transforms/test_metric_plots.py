"""PlotData / ComputePlots: the evaluation plots' numbers agree with direct counts and scikit-learn."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from sklearn.metrics import confusion_matrix

from beam_ml.transforms.metrics import LabeledBatch, MetricsConfig, PlotData

N = 2000


def test_binary_curves_calibration_and_confusion_match_direct_counts():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, N)
    p = np.clip(0.35 * y + rng.uniform(0.0, 0.65, N), 0.0, 1.0)
    fn = PlotData(threshold=0.5)
    out = fn.extract_output(fn.add_input(fn.create_accumulator(), LabeledBatch(y, p, None)))
    (plots,) = out["classes"]
    for threshold in (0.1, 0.5, 0.8):
        b = plots["thresholds"].index(pytest.approx(threshold))
        assert plots["tpr"][b] == pytest.approx(np.mean(p[y == 1] > threshold))
        assert plots["fpr"][b] == pytest.approx(np.mean(p[y == 0] > threshold))
        assert plots["precision"][b] == pytest.approx(np.mean(y[p > threshold]))
    calibration = plots["calibration"]
    for i, (low, high) in enumerate(zip(calibration["bin_low"], calibration["bin_high"], strict=True)):
        inside = (p > low) & (p <= high) if i else (p <= high)
        assert calibration["count"][i] == inside.sum()
        if inside.any():
            assert calibration["observed"][i] == pytest.approx(np.mean(y[inside]))
    assert out["confusion_matrix"] == confusion_matrix(y, (p > 0.5).astype(int)).tolist()


def test_multiclass_confusion_matrix_and_one_curve_per_class():
    rng = np.random.default_rng(8)
    y = rng.integers(0, 3, N)
    logits = rng.normal(size=(N, 3)) + 2.0 * np.eye(3)[y]
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    fn = PlotData()
    out = fn.extract_output(fn.add_input(fn.create_accumulator(), LabeledBatch(y, p, None)))
    assert out["confusion_matrix"] == confusion_matrix(y, p.argmax(axis=1)).tolist()
    assert len(out["classes"]) == 3
    for k, plots in enumerate(out["classes"]):
        assert plots["positives"] == (y == k).sum()
        assert plots["tpr"][0] == 1.0 and plots["fpr"][0] == 1.0  # every score is above threshold 0


def test_compute_plots_per_slice_in_a_beam_pipeline():
    import apache_beam as beam
    from apache_beam.testing.util import assert_that

    from beam_ml.transforms.metrics import ComputePlots

    batch = pa.RecordBatch.from_pydict({
        "label": [0, 1, 1, 0, 1, 0], "prediction": [0.1, 0.9, 0.6, 0.4, 0.2, 0.7], "island": list("aabbab"),
    })
    config = MetricsConfig("binary").with_slices("island")

    def check(outputs):
        (plots,) = outputs
        assert list(plots) == ["Overall", "island=a", "island=b"]
        assert plots["Overall"]["confusion_matrix"] == [[2, 1], [1, 2]]
        assert plots["island=a"]["confusion_matrix"] == [[1, 0], [1, 1]]

    with beam.Pipeline() as pipeline:
        assert_that(pipeline | beam.Create([batch]) | ComputePlots(config), check)
