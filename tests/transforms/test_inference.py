"""Batch inference: PredictRecordBatches on DirectRunner gives what the model gives in-process.

The model is built here: Keras 3, two numeric features through a Normalization
layer, one string feature through a StringLookup (one-hot), a Dense softmax
over 3 classes; exported with tf.saved_model.save from a tf.Module whose
serving signature takes the raw features as named [batch] tensors.
Predictions must equal calling the Keras model directly to 1e-6 (same
float32 graph, only batching differs).
"""

from __future__ import annotations

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that

from beam_ml.transforms.inference import PredictRecordBatches, SavedModelHandler

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

VOCABULARY = ["Cash", "Card", "Mobile"]
ROWS = 500


def _data(rows: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "trip_miles": rng.gamma(2.0, 3.0, rows).astype(np.float32),
        "fare": rng.normal(20.0, 8.0, rows).astype(np.float32),
        "payment_type": rng.choice([*VOCABULARY, "Unknown"], rows).astype(object),
    }


class _Serving(tf.Module):
    def __init__(self, model: keras.Model) -> None:
        super().__init__()
        self.model = model

    @tf.function(
        input_signature=[
            tf.TensorSpec([None], tf.float32, name="trip_miles"),
            tf.TensorSpec([None, 1], tf.float32, name="fare"),
            tf.TensorSpec([None], tf.string, name="payment_type"),
        ]
    )
    def serve(self, trip_miles, fare, payment_type):
        probabilities = self.model({"trip_miles": trip_miles, "fare": tf.reshape(fare, [-1]), "payment_type": payment_type})
        return {"probabilities": probabilities, "score": probabilities[:, 2:3], "label": tf.gather(tf.constant(["a", "b", "c"]), tf.argmax(probabilities, axis=1))}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.float32, name="trip_miles"), tf.TensorSpec([None], tf.float32, name="fare")])
    def score_only(self, trip_miles, fare):
        return {"out": trip_miles * 2.0 + fare}


def _build_model() -> keras.Model:
    keras.utils.set_random_seed(0)
    trip_miles = keras.Input(shape=(), name="trip_miles", dtype="float32")
    fare = keras.Input(shape=(), name="fare", dtype="float32")
    payment_type = keras.Input(shape=(), name="payment_type", dtype="string")
    numeric = keras.layers.Concatenate()([keras.layers.Reshape((1,))(trip_miles), keras.layers.Reshape((1,))(fare)])
    normalization = keras.layers.Normalization()
    data = _data(200, seed=1)
    normalization.adapt(np.stack([data["trip_miles"], data["fare"]], axis=1))
    lookup = keras.layers.StringLookup(vocabulary=VOCABULARY, output_mode="one_hot")
    hidden = keras.layers.Concatenate()([normalization(numeric), lookup(payment_type)])
    outputs = keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(8, activation="relu")(hidden))
    return keras.Model({"trip_miles": trip_miles, "fare": fare, "payment_type": payment_type}, outputs)


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, keras.Model]:
    model = _build_model()
    module = _Serving(model)
    path = str(tmp_path_factory.mktemp("model") / "saved_model")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve, "score_only": module.score_only})
    return path, model


def _expected_probabilities(model: keras.Model, data: dict[str, np.ndarray]) -> np.ndarray:
    return np.asarray(
        model({"trip_miles": tf.constant(data["trip_miles"]), "fare": tf.constant(data["fare"]), "payment_type": tf.constant(data["payment_type"].tolist())})
    )


def _record_batches(data: dict[str, np.ndarray], size: int) -> list[pa.RecordBatch]:
    table = pa.table({"row_id": np.arange(len(data["fare"])), **{k: pa.array(v.tolist() if v.dtype == object else v) for k, v in data.items()}})
    return table.to_batches(max_chunksize=size)


def _check(expected_probabilities: np.ndarray, input_names: list[str]):
    def check(batches: list[pa.RecordBatch]) -> None:
        table = pa.Table.from_batches(batches).sort_by("row_id")
        assert table.column_names == [*input_names, "label", "probabilities", "score"]
        assert table.num_rows == len(expected_probabilities)
        assert table.schema.field("probabilities").type == pa.list_(pa.float32(), 3)
        probabilities = np.asarray(table.column("probabilities").combine_chunks().flatten()).reshape(-1, 3)
        np.testing.assert_allclose(probabilities, expected_probabilities, rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(np.asarray(table.column("score")), expected_probabilities[:, 2], rtol=1e-6, atol=1e-6)
        assert table.column("label").to_pylist() == [["a", "b", "c"][i] for i in expected_probabilities.argmax(axis=1)]
        assert table.column("row_id").to_pylist() == list(range(len(expected_probabilities)))

    return check


def test_predictions_equal_the_model_in_process(exported: tuple[str, keras.Model]) -> None:
    path, model = exported
    data = _data(ROWS)
    expected = _expected_probabilities(model, data)
    batches = _record_batches(data, size=120)
    with BeamTestPipeline() as pipeline:
        result = pipeline | beam.Create(batches, reshuffle=False) | PredictRecordBatches(path)
        assert_that(result, _check(expected, batches[0].schema.names))


def test_single_output_is_named_prediction_and_nulls_are_filled(exported: tuple[str, keras.Model]) -> None:
    path, _ = exported
    batch = pa.record_batch({"trip_miles": pa.array([1.0, None, 3.0], pa.float64()), "fare": pa.array([10, 20, None])})
    handler = SavedModelHandler(path, signature_name="score_only", fill_values={"fare": -1.0})
    model = handler.load_model()
    [result] = handler.run_inference([batch], model)
    assert result.schema.names == ["trip_miles", "fare", "prediction"]
    # trip_miles null → 0 (default fill), fare null → -1 (fill_values).
    assert result.column("prediction").to_pylist() == [12.0, 20.0, 5.0]


def test_several_record_batches_in_one_call_keep_their_rows(exported: tuple[str, keras.Model]) -> None:
    path, model = exported
    data = _data(50, seed=3)
    batches = _record_batches(data, size=20)
    handler = SavedModelHandler(path, output_columns={"probabilities": "class_probabilities"})
    results = list(handler.run_inference(batches, handler.load_model()))
    assert [r.num_rows for r in results] == [20, 20, 10]
    assert "class_probabilities" in results[0].schema.names
    got = np.concatenate([np.asarray(r.column("class_probabilities").flatten()).reshape(-1, 3) for r in results])
    np.testing.assert_allclose(got, _expected_probabilities(model, data), rtol=1e-6, atol=1e-6)


def test_missing_input_and_bad_cast_are_refused(exported: tuple[str, keras.Model]) -> None:
    path, _ = exported
    handler = SavedModelHandler(path, signature_name="score_only")
    model = handler.load_model()
    with pytest.raises(KeyError, match="'fare' is not a column"):
        handler.run_inference([pa.record_batch({"trip_miles": [1.0]})], model)
    with pytest.raises(TypeError, match="cannot cast column of type string to float32"):
        handler.run_inference([pa.record_batch({"trip_miles": [1.0], "fare": ["ten"]})], model)
    with pytest.raises(KeyError, match="no signature 'nope'"):
        SavedModelHandler(path, signature_name="nope").load_model()


def test_batching_is_counted_in_rows() -> None:
    kwargs = SavedModelHandler("unused", max_batch_rows=1000).batch_elements_kwargs()
    assert kwargs["max_batch_size"] == 1000
    assert kwargs["element_size_fn"](pa.record_batch({"x": [1, 2, 3]})) == 3


def test_importing_the_module_does_not_import_tensorflow() -> None:
    import subprocess
    import sys

    code = "import sys, beam_ml.transforms.inference; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
