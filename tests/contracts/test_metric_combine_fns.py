"""Beam's CombineFn contract for every metric CombineFn (beam_ml.transforms.metrics).

Equality: the same metric names; values to 1e-12 relative (and absolute), because
accumulators are float64 sums that a different split adds in a different order.
"""

from __future__ import annotations

import itertools

import apache_beam as beam
import numpy as np
import pytest
from contracts.combine_fn_contract import CombineFnContract

from beam_ml.transforms.metrics import (
    AUCCurves,
    Calibration,
    ConfusionAtThreshold,
    ExampleCount,
    LabeledBatch,
    LogLoss,
    MetricsCombineFn,
    MetricsConfig,
    PlotData,
    RegressionErrors,
)

N = 3000


def _pieces(labels: np.ndarray, predictions: np.ndarray, weights: np.ndarray, count: int = 13) -> list[LabeledBatch]:
    """`count` LabeledBatches of uneven sizes; the third is empty on purpose."""
    edges = np.linspace(0, len(labels), count + 1).astype(int)
    edges[3] = edges[2]
    return [LabeledBatch(labels[a:b], predictions[a:b], weights[a:b]) for a, b in itertools.pairwise(edges)]


class MetricContract(CombineFnContract):
    def assert_same_output(self, expected: dict[str, float], actual: dict[str, float]) -> None:
        assert actual.keys() == expected.keys()
        for name, value in expected.items():
            assert actual[name] == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), name


class TestBinaryMetrics(MetricContract):
    @pytest.fixture(
        params=[ExampleCount(), ConfusionAtThreshold(), AUCCurves(), LogLoss(), Calibration(),
                MetricsConfig("binary").combine_fn(), MetricsCombineFn([])],
        ids=lambda fn: type(fn).__name__,
    )
    def combine_fn(self, request: pytest.FixtureRequest) -> beam.CombineFn:
        return request.param

    @pytest.fixture(scope="class")
    def inputs(self) -> list[LabeledBatch]:
        rng = np.random.default_rng(1)
        y = rng.integers(0, 2, N)
        # Some predictions exactly 0 or 1 so clipping is exercised too.
        p = np.clip(rng.normal(0.3 + 0.4 * y, 0.25), 0.0, 1.0)
        return _pieces(y, p, rng.uniform(0.5, 2.0, N))


class TestMulticlassMetrics(MetricContract):
    @pytest.fixture(
        params=[ConfusionAtThreshold(), AUCCurves(), LogLoss(), MetricsConfig("multiclass").combine_fn()],
        ids=lambda fn: type(fn).__name__,
    )
    def combine_fn(self, request: pytest.FixtureRequest) -> beam.CombineFn:
        return request.param

    @pytest.fixture(scope="class")
    def inputs(self) -> list[LabeledBatch]:
        rng = np.random.default_rng(2)
        k = 3
        y = rng.integers(0, k, N)
        logits = rng.normal(size=(N, k)) + 1.5 * np.eye(k)[y]
        probabilities = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return _pieces(y, probabilities, rng.uniform(0.5, 2.0, N))


class TestRegressionMetrics(MetricContract):
    @pytest.fixture(
        params=[ExampleCount(), RegressionErrors(), MetricsConfig("regression").combine_fn()],
        ids=lambda fn: type(fn).__name__,
    )
    def combine_fn(self, request: pytest.FixtureRequest) -> beam.CombineFn:
        return request.param

    @pytest.fixture(scope="class")
    def inputs(self) -> list[LabeledBatch]:
        rng = np.random.default_rng(3)
        y = rng.normal(10.0, 3.0, N)
        return _pieces(y, y + rng.normal(0.0, 1.0, N), rng.uniform(0.5, 2.0, N))


class TestPlotData(CombineFnContract):
    """The plots' curves, calibration and confusion matrix: nested lists compared number by number."""

    @pytest.fixture(params=["binary", "multiclass"])
    def inputs(self, request: pytest.FixtureRequest) -> list[LabeledBatch]:
        rng = np.random.default_rng(3)
        y = rng.integers(0, 3 if request.param == "multiclass" else 2, N)
        if request.param == "binary":
            p = np.clip(0.3 * y + rng.uniform(0.0, 0.7, N), 0.0, 1.0)
        else:
            logits = rng.normal(size=(N, 3)) + 1.5 * np.eye(3)[y]
            p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        return _pieces(y, p, rng.uniform(0.5, 2.0, N))

    @pytest.fixture
    def combine_fn(self) -> beam.CombineFn:
        return PlotData()

    def assert_same_output(self, expected, actual) -> None:
        def flat(value, path=""):
            if isinstance(value, dict):
                assert isinstance(actual_at(path), dict)
                return [item for key in sorted(value) for item in flat(value[key], f"{path}/{key}")]
            if isinstance(value, list):
                return [item for i, v in enumerate(value) for item in flat(v, f"{path}/{i}")]
            return [(path, value)]

        def actual_at(path):
            node = actual
            for step in [p for p in path.split("/") if p]:
                node = node[int(step)] if isinstance(node, list) else node[step]
            return node

        for path, value in flat(expected):
            assert actual_at(path) == pytest.approx(value, rel=1e-12, abs=1e-12, nan_ok=True), path
        assert len(flat(actual)) == len(flat(expected))
