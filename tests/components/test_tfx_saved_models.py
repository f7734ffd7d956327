"""Models that a run_fn saved itself, as TFX module files do: what kind of output they give is read
from the saved graph, and the Evaluator predicts with the signature it is told, fed serialized
tf.Examples whatever that signature's input is named.

The TFX-style module files that save their own models run end to end in test_tfx_compat.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from model_fixtures import ISLANDS, NUMERIC, SPECIES, PenguinData, export_penguin_model

from beam_ml import Model, Output, Pipeline, component
from beam_ml.orchestration.runner import LocalDagRunner

pytest.importorskip("tensorflow")

EXAMPLES_SIGNATURE = "from_examples"


def _save_scaled_model(path: str) -> None:
    """A model whose output is neither a softmax/sigmoid nor a dense layer's sum: its kind is unknown."""
    import tensorflow as tf

    module = tf.Module()
    module.scale = tf.Variable(2.0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="x")])
    def serve(x):
        return {"y": x * module.scale}

    tf.saved_model.save(module, path, signatures={"serving_default": serve})


def test_the_output_kind_is_read_from_the_saved_graph(tmp_path):
    from beam_ml.training import saved_output_kind

    assert saved_output_kind(export_penguin_model(tmp_path / "probabilities")) == "probabilities"
    assert saved_output_kind(export_penguin_model(tmp_path / "logits", logits=True)) == "logits"
    _save_scaled_model(str(tmp_path / "scaled"))
    assert saved_output_kind(str(tmp_path / "scaled")) is None
    assert saved_output_kind(str(tmp_path / "absent")) is None
    assert saved_output_kind(export_penguin_model(tmp_path / "other"), signature_name="no_such") is None


@component
def PenguinModelWithExamplesSignature(model: Output[Model]) -> None:
    """The fixture classifier (raw features in ``serving_default``) plus a signature that parses
    serialized tf.Examples from an input named ``serialized`` and calls it, as a TFX run_fn exports."""
    import tensorflow as tf

    raw = tf.saved_model.load(export_penguin_model(Path(model.uri) / "raw"))
    feature_spec = {name: tf.io.FixedLenFeature([], tf.float32) for name in NUMERIC}
    feature_spec["island"] = tf.io.FixedLenFeature([], tf.string)
    module = tf.Module()
    module.raw = raw

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="serialized")])
    def from_examples(serialized):
        return module.raw.signatures["serving_default"](**tf.io.parse_example(serialized, feature_spec))

    tf.saved_model.save(module, str(Path(model.uri) / "Format-Serving"),
                        signatures={"serving_default": raw.signatures["serving_default"],
                                    EXAMPLES_SIGNATURE: from_examples})
    model.properties.update(label_vocabulary=SPECIES)


def test_the_evaluator_predicts_with_the_signature_it_is_told_fed_serialized_examples(tmp_path):
    from beam_ml.components.evaluator import Evaluator, load_metrics

    data = PenguinData()
    model = PenguinModelWithExamplesSignature()
    common = {"examples": data.outputs.examples, "model": model.outputs.model, "label": "species",
              "task": "multiclass", "slice_features": ["island"]}
    on_features = Evaluator(**common)
    on_examples = Evaluator(**common, signature_name=EXAMPLES_SIGNATURE).with_id("OnExamples")
    result = LocalDagRunner().run(Pipeline("signatures", str(tmp_path / "root"), [data, model, on_features, on_examples]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    expected = load_metrics(result.outputs("Evaluator")["evaluation"])
    got = load_metrics(result.outputs("OnExamples")["evaluation"])
    assert set(got) == set(expected) == {"Overall", *(f"island={island}" for island in ISLANDS)}
    assert expected["Overall"]["accuracy"] > 0.8
    for slice_name, values in expected.items():
        assert got[slice_name] == pytest.approx(values, abs=1e-6), slice_name
