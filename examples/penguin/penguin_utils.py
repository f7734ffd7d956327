"""The penguin model: tf.Transform preprocessing, a Keras 3 classifier, and its tuning space.

Used by examples/penguin/pipeline.py as the Transform, Tuner and Trainer user
module (TFX's penguin example, adapted to Keras 3 and beam-ml's FnArgs).
"""

import keras
import tensorflow as tf
import tensorflow_transform as tft

from beam_ml.components.tuner import TunerFnResult
from beam_ml.training import export_serving_model, warm_start

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
CATEGORICAL = {"island": ["Biscoe", "Dream", "Torgersen"], "sex": ["female", "male"]}
LABEL = "species"
#: Class ids are positions in this list (the Evaluator's label_vocabulary).
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]


def transformed_name(name: str) -> str:
    return f"{name}_xf"


def _to_dense(tensor, default):
    """[batch, 1] sparse or dense → [batch] dense, a missing value → ``default``."""
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default)
    return tf.squeeze(tensor, axis=1)


def _lookup(values, vocabulary):
    """Index of each value in a fixed vocabulary; unknown or missing → len(vocabulary).

    Compared against the few entries directly rather than through a lookup
    table: a table built inside the traced preprocessing_fn is re-initialized
    on every call, which TensorFlow warns about (absl "Tables initialized
    inside a tf.function").
    """
    matches = tf.equal(tf.expand_dims(values, -1), tf.constant(vocabulary))
    index = tf.argmax(tf.cast(matches, tf.int64), axis=-1)
    return tf.where(tf.reduce_any(matches, axis=-1), index, tf.constant(len(vocabulary), tf.int64))


def preprocessing_fn(inputs):
    """z-scored measurements (a missing one becomes the mean, 0), one-hot ids for island and sex."""
    outputs = {}
    for name in NUMERIC:
        scaled = tft.scale_to_z_score(tf.cast(inputs[name], tf.float32))
        outputs[transformed_name(name)] = _to_dense(scaled, 0.0)
    for name, vocabulary in CATEGORICAL.items():
        outputs[transformed_name(name)] = _lookup(_to_dense(inputs[name], ""), vocabulary)
    if LABEL in inputs:
        outputs[transformed_name(LABEL)] = _lookup(_to_dense(inputs[LABEL], ""), SPECIES)
    return outputs


def build_model(hyperparameters) -> keras.Model:
    inputs = {transformed_name(n): keras.Input(shape=(), name=transformed_name(n)) for n in NUMERIC}
    inputs.update(
        {transformed_name(n): keras.Input(shape=(), name=transformed_name(n), dtype="int64") for n in CATEGORICAL}
    )
    columns = [keras.layers.Reshape((1,))(inputs[transformed_name(n)]) for n in NUMERIC]
    columns += [
        keras.layers.CategoryEncoding(len(vocabulary) + 1, output_mode="one_hot")(inputs[transformed_name(n)])
        for n, vocabulary in CATEGORICAL.items()
    ]
    hidden = keras.layers.Concatenate()(columns)
    for _ in range(int(hyperparameters.get("layers", 2))):
        hidden = keras.layers.Dense(int(hyperparameters.get("units", 16)), activation="relu")(hidden)
    outputs = keras.layers.Dense(len(SPECIES), activation="softmax")(hidden)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer=keras.optimizers.Adam(float(hyperparameters.get("learning_rate", 0.01))),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def run_fn(fn_args):
    keras.utils.set_random_seed(int(fn_args.hyperparameter_values.get("seed", 0)))
    model = build_model(fn_args.hyperparameter_values)
    if fn_args.base_model:  # continuous training: go on from the latest blessed model's weights
        warm_start(model, fn_args.base_model)
    model.fit(
        fn_args.train_dataset(batch_size=32, seed=0),  # repeats: train_steps bounds it
        shuffle=False,  # the dataset shuffles itself; Keras would only warn that it ignores this
        steps_per_epoch=fn_args.train_steps,
        validation_data=fn_args.eval_dataset(batch_size=32),
        validation_steps=fn_args.eval_steps,
        epochs=int(fn_args.hyperparameter_values.get("epochs", 1)),
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.log_dir)],
        verbose=0,
    )
    export_serving_model(model, fn_args.tf_transform_output, fn_args.serving_model_dir, label_key=LABEL)


def tuner_fn(fn_args):
    import keras_tuner

    def build(hp):
        return build_model(
            {
                "units": hp.Choice("units", [8, 16, 32]),
                "layers": hp.Int("layers", 1, 2),
                "learning_rate": hp.Choice("learning_rate", [0.003, 0.01, 0.03]),
            }
        )

    tuner = keras_tuner.RandomSearch(
        build, objective="val_accuracy", max_trials=int((fn_args.custom_config or {}).get("max_trials", 4)), seed=0,
        directory=fn_args.model_run_dir, project_name="penguin",
    )
    return TunerFnResult(
        tuner,
        {
            "x": fn_args.train_dataset(batch_size=32, seed=0),
            "shuffle": False,
            "steps_per_epoch": fn_args.train_steps,
            "validation_data": fn_args.eval_dataset(batch_size=32),
            "validation_steps": fn_args.eval_steps,
            "epochs": 1,
            "verbose": 0,
        },
    )
