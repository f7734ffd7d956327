"""Trainer: a user run_fn trains a small Keras 3 penguin classifier on transformed Parquet
examples; the exported serving signature takes raw rows and predicts what the model
predicts on the transformed rows."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from test_transform import PENGUIN_TRANSFORM, PenguinExamples, penguin_splits

from beam_ml import Examples, HyperParameters, Output, Pipeline, component
from beam_ml.orchestration.runner import LocalDagRunner

MODULES = Path(__file__).resolve().parent / "modules"
PENGUIN_TRAINER = str(MODULES / "penguin_trainer.py")


@component
def TunedValues(hyperparameters: Output[HyperParameters], *, units: int = 4) -> None:
    """Stands in for a Tuner: writes hyperparameters.json."""
    Path(hyperparameters.uri, "hyperparameters.json").write_text(json.dumps({"units": units}))


def _sorted_rows(values: np.ndarray) -> np.ndarray:
    return values[np.lexsort(values.T[::-1])]


def test_penguin_trainer_serves_raw_rows_like_the_model_on_transformed_rows(tmp_path):
    import keras
    import tensorflow as tf

    from beam_ml.components.trainer import Trainer
    from beam_ml.components.transform import Transform
    from beam_ml.training import (
        load_serving_model,
        parquet_dataset,
        serialize_examples,
    )

    gen = PenguinExamples()
    tuned = TunedValues()
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
    trainer = Trainer(
        examples=transform.outputs.transformed_examples,
        transform_graph=transform.outputs.transform_graph,
        hyperparameters=tuned.outputs.hyperparameters,
        module_file=PENGUIN_TRAINER,
        train_steps=10,
        eval_steps=2,
        label_key="species_xf",
        hyperparameter_values={"units": 16, "learning_rate": 0.02},
    )
    pipeline = Pipeline("penguin_train", root=str(tmp_path / "root"), components=[gen, tuned, transform, trainer])
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error

    model, model_run = result.outputs("Trainer")["model"], result.outputs("Trainer")["model_run"]
    assert model.properties["hyperparameters"] == {"units": 4, "learning_rate": 0.02}  # artifact wins
    assert (Path(model.uri) / "Format-Serving" / "saved_model.pb").is_file()
    assert (Path(model_run.uri) / "training.csv").is_file()

    serving = load_serving_model(model.uri)
    assert set(serving.signatures) == {"serving_default", "transform_features"}

    raw_eval = penguin_splits()["eval"]
    serialized = tf.constant(serialize_examples(raw_eval.drop_columns(["species"])))  # no label at serving
    served = serving.signatures["serving_default"](examples=serialized)["outputs"].numpy()
    assert served.shape == (raw_eval.num_rows, 3)
    np.testing.assert_allclose(served.sum(axis=1), 1.0, rtol=1e-5)

    # the same Keras model applied to the Transform component's Parquet rows
    transformed_uri = result.outputs("Transform")["transformed_examples"].uri
    keras_model = keras.models.load_model(os.path.join(model_run.uri, "model.keras"))
    from tensorflow_transform import TFTransformOutput

    spec = TFTransformOutput(result.outputs("Transform")["transform_graph"].uri).transformed_feature_spec()
    batches = parquet_dataset(Examples(transformed_uri).files("eval"), spec, 50, label_key="species_xf")
    direct = np.concatenate([keras_model.predict_on_batch(features) for features, _ in batches])
    assert direct.shape == served.shape
    np.testing.assert_allclose(_sorted_rows(served), _sorted_rows(direct), rtol=1e-5, atol=1e-6)

    # transform_features (with the label) equals the Transform component's output, row set for row set
    transformed = serving.signatures["transform_features"](examples=tf.constant(serialize_examples(raw_eval)))
    parquet = pq.read_table(os.path.join(transformed_uri, "Split-eval"))
    for name in ("species_xf", "bill_length_mm_xf"):
        np.testing.assert_allclose(np.sort(transformed[name].numpy()), np.sort(parquet.column(name).to_numpy()), rtol=1e-6)

    again = LocalDagRunner().run(pipeline)
    assert again.ran() == []
    assert again.outputs("Trainer")["model"].id == model.id


def test_parquet_dataset_streams_dense_defaults_and_sparse_missing(tmp_path):
    import pyarrow as pa
    import tensorflow as tf

    from beam_ml.training import parquet_dataset

    table = pa.table({
        "x": pa.array([1.5, None, 3.0, 4.0, 5.0], pa.float64()),
        "tag": pa.array(["a", None, "c", "d", None]),
        "vec": pa.array([[1, 2], [3, 4], [5, 6], [7, 8], [9, 10]], pa.list_(pa.int64())),
        "y": pa.array([0, 1, 0, 1, 1], pa.int64()),
    })
    path = tmp_path / "part.parquet"
    pq.write_table(table, path, row_group_size=2)
    spec = {
        "x": tf.io.FixedLenFeature([], tf.float32, default_value=-1.0),
        "tag": tf.io.VarLenFeature(tf.string),
        "vec": tf.io.FixedLenFeature([2], tf.int64),
        "y": tf.io.FixedLenFeature([], tf.int64),
    }
    batches = list(parquet_dataset([str(path)], spec, batch_size=3, label_key="y"))
    assert [len(label) for _, label in batches] == [3, 2]  # record batches of at most 3 rows
    x = np.concatenate([f["x"].numpy() for f, _ in batches])
    np.testing.assert_array_equal(x, [1.5, -1.0, 3.0, 4.0, 5.0])
    vec = np.concatenate([f["vec"].numpy() for f, _ in batches])
    assert vec.shape == (5, 2) and vec[4].tolist() == [9, 10]
    first_tags = tf.sparse.to_dense(batches[0][0]["tag"], default_value=b"-").numpy()
    assert first_tags.tolist() == [[b"a"], [b"-"], [b"c"]]  # a null is no value, as parse_example gives it
    assert np.concatenate([label.numpy() for _, label in batches]).tolist() == [0, 1, 0, 1, 1]

    repeated = parquet_dataset([str(path)], spec, batch_size=5, shuffle=True, num_epochs=None, seed=1)
    rows = [sorted(b["y"].numpy().tolist()) for b in repeated.take(3)]
    assert rows == [[0, 0, 1, 1, 1]] * 3  # forever, each epoch the same rows in some order


def test_components_import_no_tensorflow():
    code = (
        "import sys, beam_ml.components.transform, beam_ml.components.trainer, beam_ml.training\n"
        "assert 'tensorflow' not in sys.modules and 'tensorflow_transform' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_serializing_examples_for_serving_imports_neither_tf_transform_nor_beam():
    # InfraValidator's fresh process serializes its canary rows this way (a null: a feature
    # with no values, which parse_example treats as absent); it must pay
    # for loading the model (TensorFlow), not for tf.Transform and Beam.
    code = (
        "import sys, pyarrow as pa\n"
        "from beam_ml.training import serialize_examples\n"
        "from tensorflow.core.example import example_pb2\n"
        "rows = serialize_examples(pa.table({'x': [1.5, None], 'tag': ['a', 'b']}))\n"
        "first, second = (example_pb2.Example.FromString(r).features.feature for r in rows)\n"
        "assert list(first['x'].float_list.value) == [1.5] and list(first['tag'].bytes_list.value) == [b'a']\n"
        "assert second['x'].WhichOneof('kind') is None and list(second['tag'].bytes_list.value) == [b'b']\n"
        "heavy = [m for m in ('tensorflow_transform', 'apache_beam') if m in sys.modules]\n"
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_tuner_finds_hyperparameters_that_trainer_uses(tmp_path):
    from beam_ml.components.trainer import Trainer
    from beam_ml.components.transform import Transform
    from beam_ml.components.tuner import Tuner

    gen = PenguinExamples()
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
    tuner = Tuner(
        examples=transform.outputs.transformed_examples,
        transform_graph=transform.outputs.transform_graph,
        module_file=str(MODULES / "penguin_tuner.py"),
        train_steps=5,
        eval_steps=2,
        label_key="species_xf",
    )
    trainer = Trainer(
        examples=transform.outputs.transformed_examples,
        transform_graph=transform.outputs.transform_graph,
        hyperparameters=tuner.outputs.best_hyperparameters,
        module_file=PENGUIN_TRAINER,
        train_steps=5,
        eval_steps=2,
        label_key="species_xf",
        hyperparameter_values={"units": 99},
    )
    result = LocalDagRunner().run(Pipeline("penguin_tune", str(tmp_path / "root"), [gen, transform, tuner, trainer]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    best = result.outputs("Tuner")["best_hyperparameters"]
    values = json.loads(Path(best.uri, "hyperparameters.json").read_text())
    assert values["units"] in (4, 12) and values["learning_rate"] == 0.02
    trials = json.loads(Path(best.uri, "trials.json").read_text())
    assert len(trials) == 2 and all(t["score"] is not None for t in trials)
    assert result.outputs("Trainer")["model"].properties["hyperparameters"]["units"] == values["units"]


def test_serialized_rows_leave_a_null_out_so_the_parse_default_applies():
    """A null must reach parse_example as an absent feature: an empty value list is an error
    for a FixedLenFeature, even one with a default."""
    import pyarrow as pa
    import tensorflow as tf

    from beam_ml.training import serialize_examples

    batch = pa.record_batch({"fare": pa.array([1.5, None, 3.0]), "company": pa.array(["a", None, None]),
                             "tags": pa.array([[1, 2], None, []], pa.list_(pa.int64()))})
    parsed = tf.io.parse_example(serialize_examples(batch), {
        "fare": tf.io.FixedLenFeature([], tf.float32, default_value=-1.0),
        "company": tf.io.FixedLenFeature([], tf.string, default_value=b"?"),
        "tags": tf.io.VarLenFeature(tf.int64),
    })
    np.testing.assert_allclose(parsed["fare"].numpy(), [1.5, -1.0, 3.0])
    assert parsed["company"].numpy().tolist() == [b"a", b"?", b"?"]
    assert tf.sparse.to_dense(parsed["tags"]).numpy().tolist() == [[1, 2], [0, 0], [0, 0]]
