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


# --------------------------------------------------------------------------- feeding strings from Arrow buffers


def _as_objects(array: pa.Array, fill: bytes = b"") -> list[bytes]:
    return [fill if v is None else (v.encode() if isinstance(v, str) else v) for v in array.to_pylist()]


@pytest.mark.parametrize(
    "column",
    [
        pa.array(["Cash", None, "Credit Card", "", "Ünïcode", None]),
        pa.array(["Cash", None, "Credit Card", "", "Ünïcode", None]).slice(1, 4),  # offset into the buffers
        pa.array(["a", None, "bcd"], pa.large_string()),
        pa.array([b"\xff\x00raw", b"", None, b"\x00"], pa.binary()),  # not UTF-8, NUL bytes kept
        pa.array([b"x", b"yz"], pa.large_binary()).slice(1),
        pa.array(["", ""]),  # no data bytes at all
        pa.array([None, None], pa.string()),
        pa.array([], pa.string()),
        pa.chunked_array([pa.array(["p", None]), pa.array(["q"])]),
    ],
)
def test_string_columns_become_the_same_tensor_as_through_python_objects(column) -> None:
    from beam_ml.transforms.inference import _feature_tensor, _InputSpec

    spec = _InputSpec("s", "string", None)
    got = _feature_tensor([column], spec, "")
    assert got.dtype == tf.string and got.shape == (len(column),)
    expected = _as_objects(column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column)
    assert got.numpy().tolist() == expected


def test_string_parts_of_several_batches_and_widths_are_concatenated_in_order() -> None:
    from beam_ml.transforms.inference import _feature_tensor, _InputSpec

    parts = [pa.array(["a", None]), pa.array(["bc"], pa.large_string()), pa.array([b"\x01"], pa.binary())]
    got = _feature_tensor(parts, _InputSpec("s", "string", None), "?")
    assert got.numpy().tolist() == [b"a", b"?", b"bc", b"\x01"]
    lists = [pa.array([["a", "b"], ["c", None]]), pa.array([["d", "e"]])]
    got = _feature_tensor(lists, _InputSpec("s", "string", 2), "")
    assert got.shape == (3, 2) and got.numpy().tolist() == [[b"a", b"b"], [b"c", b""], [b"d", b"e"]]
    numbers = _feature_tensor([pa.array([1, None, 30])], _InputSpec("s", "string", 1), "")
    assert numbers.numpy().tolist() == [[b"1"], [b""], [b"30"]]
    floats = _feature_tensor([pa.array([1, None]), pa.array([2.5])], _InputSpec("x", "float32", None), 0)
    assert floats.dtype == tf.float32 and floats.numpy().tolist() == [1.0, 0.0, 2.5]


# --------------------------------------------------------------------------- real data, both kinds of signature

TAXI_NUMERIC = ["fare", "trip_miles", "pickup_latitude", "pickup_longitude"]
TAXI_STRINGS = ["payment_type", "company"]


def _taxi_keras_model() -> keras.Model:
    keras.utils.set_random_seed(1)
    inputs = {n: keras.Input(shape=(), name=n, dtype="float32") for n in TAXI_NUMERIC}
    inputs.update({n: keras.Input(shape=(), name=n, dtype="string") for n in TAXI_STRINGS})
    numeric = keras.ops.stack([inputs["fare"] / 10.0, inputs["trip_miles"], inputs["pickup_latitude"] - 41.8,
                               inputs["pickup_longitude"] + 87.6], axis=1)
    embedded = [keras.layers.Embedding(bins, 4)(keras.layers.Hashing(num_bins=bins)(inputs[n])) for n, bins in zip(TAXI_STRINGS, (7, 31), strict=True)]
    hidden = keras.layers.Dense(16, activation="relu")(keras.layers.Concatenate()([numeric, *embedded]))
    return keras.Model(inputs, {"score": keras.layers.Reshape(())(keras.layers.Dense(1, activation="sigmoid")(hidden))})


def test_raw_tensors_and_serialized_examples_give_the_keras_predictions_on_taxi_rows(shared_data, tmp_path) -> None:
    """The same Keras model exported twice: ``model.export`` (raw named inputs, fed from the
    columns, nulls filled by the handler) and ``export_serving_model`` (serialized tf.Examples,
    fed a binary column made by ``serialize_examples``); both must give what ``model.predict``
    gives on the same rows."""
    import pyarrow.csv as pcsv

    from beam_ml.training import export_serving_model, serialize_examples

    table = pcsv.read_csv(shared_data / "chicago_taxi" / "data.csv", convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    table = table.select([*TAXI_NUMERIC, *TAXI_STRINGS]).cast(
        pa.schema([*(pa.field(n, pa.float64()) for n in TAXI_NUMERIC), *(pa.field(n, pa.string()) for n in TAXI_STRINGS)])
    )
    assert table.column("company").null_count > 0 and table.column("pickup_latitude").null_count > 0
    model = _taxi_keras_model()
    raw_path, examples_path = str(tmp_path / "raw"), str(tmp_path / "examples")
    model.export(raw_path, format="tf_saved_model", verbose=False)
    spec = {n: tf.io.FixedLenFeature([], tf.float32, default_value=0.0) for n in TAXI_NUMERIC}
    spec.update({n: tf.io.FixedLenFeature([], tf.string, default_value="") for n in TAXI_STRINGS})
    export_serving_model(model, None, examples_path, raw_feature_spec=spec)

    feed = {n: table.column(n).fill_null(0).cast(pa.float32()).to_numpy() for n in TAXI_NUMERIC}
    feed.update({n: np.asarray(table.column(n).fill_null("").to_numpy(zero_copy_only=False), dtype=object) for n in TAXI_STRINGS})
    expected = model.predict(feed, batch_size=4096, verbose=0)["score"]

    # Through Beam on the first rows (the data is pickled into the pipeline), in process on all.
    rows = 4000
    batches = table.slice(0, rows).append_column("row_id", pa.array(np.arange(rows))).to_batches(max_chunksize=1500)
    expected_head = expected[:rows]
    with BeamTestPipeline() as pipeline:
        predicted = pipeline | beam.Create(batches, reshuffle=False) | PredictRecordBatches(raw_path, max_batch_rows=8192)

        def check(results: list[pa.RecordBatch]) -> None:
            got = pa.Table.from_batches(results).sort_by("row_id")
            assert got.num_rows == rows
            np.testing.assert_allclose(np.asarray(got.column("prediction")), expected_head, rtol=1e-5, atol=1e-6)

        assert_that(predicted, check)
    raw = SavedModelHandler(raw_path)
    results = raw.run_inference(table.to_batches(max_chunksize=3000), raw.load_model())
    np.testing.assert_allclose(np.concatenate([np.asarray(r.column("prediction")) for r in results]), expected, rtol=1e-5, atol=1e-6)

    # serialize_examples writes a null as an empty value list, which a FixedLenFeature with a
    # default refuses (only an absent key takes the default): serialize the filled rows.
    filled = pa.table({**feed, "row_id": np.arange(table.num_rows)}).to_batches(max_chunksize=3000)
    handler = SavedModelHandler(examples_path)
    fed = [b.append_column("examples", pa.array(serialize_examples(b), pa.binary())) for b in filled]
    results = handler.run_inference(fed, handler.load_model())
    got = np.concatenate([np.asarray(r.column("prediction")) for r in results])
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_list_nested_and_struct_columns_pass_through_unchanged(exported: tuple[str, keras.Model]) -> None:
    """BulkInferrer's rows keep their list-valued features: columns the model does not take
    come back exactly as they went in, whatever their type."""
    path, model = exported
    data = _data(6, seed=5)
    extra = {
        "tags": pa.array([["a", "b"], [], None, ["c"], ["a"] * 4, ["b"]], pa.list_(pa.string())),
        "grid": pa.array([[[1, 2], []], None, [[3]], [], [None, [4]], [[5, 6, 7]]], pa.list_(pa.list_(pa.int64()))),
        "c": pa.array([{"f1": 1.5, "f2": ["x"]}, None, {"f1": None, "f2": []}, {"f1": 2.0, "f2": None},
                       {"f1": 0.0, "f2": ["y", "z"]}, {"f1": -1.0, "f2": ["x"]}]),
    }
    [batch] = _record_batches(data, size=6)
    for name, column in extra.items():
        batch = batch.append_column(name, column)
    with BeamTestPipeline() as pipeline:
        result = pipeline | beam.Create([batch], reshuffle=False) | PredictRecordBatches(path)

        def check(batches: list[pa.RecordBatch]) -> None:
            [out] = batches
            for name, column in extra.items():
                assert out.column(name).equals(column), name
            probabilities = np.asarray(out.column("probabilities").flatten()).reshape(-1, 3)
            np.testing.assert_allclose(probabilities, _expected_probabilities(model, data), rtol=1e-6, atol=1e-6)

        assert_that(result, check)


def test_serialized_examples_carry_list_features_and_leave_out_nested_ones() -> None:
    """For a model that parses tf.Examples, a list column becomes a multi-valued feature (an
    empty list an empty one, a null an absent one); nested lists and structs, which a
    tf.Example cannot hold, are left out of the examples rather than failing the rows."""
    from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

    from beam_ml.components._serving import _with_serialized_examples

    batch = pa.record_batch({
        "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        "x": pa.array([1.5, None, 2.0]),
        "grid": pa.array([[[1]], None, []], pa.list_(pa.list_(pa.int64()))),
        "c": pa.array([{"f": 1}, None, {"f": 2}]),
    })
    serialized = _with_serialized_examples(batch, exclude=(), name="examples").column("examples").to_pylist()
    decoded = ExamplesToRecordBatchDecoder().DecodeBatch(serialized)
    assert sorted(decoded.schema.names) == ["tags", "x"]
    assert decoded.column("tags").to_pylist() == [[b"a", b"b"], [], None]
    assert decoded.column("x").to_pylist() == [[1.5], None, [2.0]]


def test_predict_record_batches_takes_a_model_handler_with_its_own_settings() -> None:
    """Components pass a ModelHandler (ours feeds serialized tf.Examples too); settings beside one
    would be dropped silently, so they are refused."""
    handler = SavedModelHandler("/nonexistent/model", max_batch_rows=16)
    assert PredictRecordBatches(handler)._handler is handler
    with pytest.raises(TypeError, match="max_batch_rows"):
        PredictRecordBatches(handler, max_batch_rows=8)
    built = PredictRecordBatches("/nonexistent/model", signature_name="other", max_batch_rows=8)._handler
    assert isinstance(built, SavedModelHandler) and built._signature_name == "other"
    assert built.batch_elements_kwargs()["max_batch_size"] == 8
