"""Evaluator on a model that outputs logits: softmax/sigmoid first, so log loss matches the
same model with a softmax output; the Trainer records which kind a Keras model outputs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from model_fixtures import PenguinData, PenguinModel

from beam_ml import Pipeline
from beam_ml.orchestration.runner import LocalDagRunner

pytest.importorskip("tensorflow")


def test_logits_model_gives_the_log_loss_of_the_equivalent_softmax_model(tmp_path):
    from beam_ml.components.evaluator import Evaluator, load_metrics

    data = PenguinData()
    softmax_model = PenguinModel()
    logits_model = PenguinModel(logits=True).with_id("LogitsModel")
    common = {"examples": data.outputs.examples, "label": "species", "task": "multiclass",
              "slice_features": ["island"]}
    on_softmax = Evaluator(model=softmax_model.outputs.model, **common)
    on_logits = Evaluator(model=logits_model.outputs.model, output_kind="logits", **common).with_id("OnLogits")
    as_probabilities = Evaluator(model=logits_model.outputs.model, **common).with_id("LogitsAsProbabilities")
    pipeline = Pipeline("logits", str(tmp_path / "root"),
                        [data, softmax_model, logits_model, on_softmax, on_logits, as_probabilities])
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error

    expected = load_metrics(result.outputs("Evaluator")["evaluation"])
    got = load_metrics(result.outputs("OnLogits")["evaluation"])
    assert set(got) == set(expected) and len(got) > 1
    for slice_name, values in expected.items():
        assert got[slice_name]["log_loss"] == pytest.approx(values["log_loss"], abs=1e-6), slice_name
        assert got[slice_name]["accuracy"] == pytest.approx(values["accuracy"], abs=1e-12)
        assert got[slice_name]["auc_roc"] == pytest.approx(values["auc_roc"], abs=1e-3)
    wrong = load_metrics(result.outputs("LogitsAsProbabilities")["evaluation"])
    assert abs(wrong["Overall"]["log_loss"] - expected["Overall"]["log_loss"]) > 0.1


def test_binary_logits_through_a_sigmoid_match_probabilities():
    from beam_ml.transforms.metrics import MetricsConfig, compute_metrics_in_memory

    rng = np.random.default_rng(0)
    logits = rng.normal(0, 3, 500)
    labels = (rng.random(500) < 1 / (1 + np.exp(-logits))).astype(np.int64)
    probabilities = 1 / (1 + np.exp(-logits))
    as_logits = compute_metrics_in_memory(
        pa.table({"label": labels, "prediction": logits}).to_batches(), MetricsConfig("binary", output_kind="logits"))
    as_probabilities = compute_metrics_in_memory(
        pa.table({"label": labels, "prediction": probabilities}).to_batches(), MetricsConfig("binary"))
    for name in ("log_loss", "mean_prediction", "calibration", "accuracy"):
        assert as_logits["Overall"][name] == pytest.approx(as_probabilities["Overall"][name], abs=1e-9), name
    with pytest.raises(ValueError, match="regression"):
        MetricsConfig("regression", output_kind="logits")


def test_export_records_whether_a_keras_model_outputs_logits(tmp_path):
    import keras
    import tensorflow as tf

    from beam_ml.training import export_serving_model, read_output_kind

    spec = {"x": tf.io.FixedLenFeature([], tf.float32)}
    kinds = {}
    for activation in (None, "softmax"):
        inputs = {"x": keras.Input(shape=(), name="x")}
        outputs = keras.layers.Dense(3, activation=activation)(keras.layers.Reshape((1,))(inputs["x"]))
        path = str(tmp_path / str(activation))
        export_serving_model(keras.Model(inputs, outputs), None, path, raw_feature_spec=spec)
        kinds[activation] = read_output_kind(path)
    assert kinds == {None: "logits", "softmax": "probabilities"}
