"""The Chicago taxi model: TFX's taxi preprocessing and a wide-and-deep Keras 3 classifier.

Predicts whether a trip's tip is more than 20% of its fare.
"""

import keras
import tensorflow as tf
import tensorflow_transform as tft

from beam_ml.training import export_serving_model, warm_start

DENSE_FLOAT_FEATURES = ["trip_miles", "fare", "trip_seconds"]
VOCAB_FEATURES = ["payment_type", "company"]
VOCAB_SIZE = 1000
OOV_SIZE = 10
BUCKET_FEATURES = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
FEATURE_BUCKET_COUNT = 10
#: Categorical ints passed through, with the number of ids each may take (larger ids map to 0).
CATEGORICAL_FEATURES = {
    "trip_start_hour": 24,
    "trip_start_day": 31,
    "trip_start_month": 13,
    "pickup_census_tract": 2000,
    "dropoff_census_tract": 2000,
    "pickup_community_area": 80,
    "dropoff_community_area": 80,
}
FARE, TIPS = "fare", "tips"
LABEL = "big_tipper"


def transformed_name(name: str) -> str:
    return f"{name}_xf"


def _fill_in_missing(tensor, default):
    """[batch, 1] sparse or dense → [batch] dense; a missing value → ``default``."""
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default)
    return tf.squeeze(tensor, axis=1)


def preprocessing_fn(inputs):
    outputs = {}
    for name in DENSE_FLOAT_FEATURES:
        value = tf.cast(_fill_in_missing(inputs[name], tf.constant(0, inputs[name].dtype)), tf.float32)
        outputs[transformed_name(name)] = tft.scale_to_z_score(value)
    for name in VOCAB_FEATURES:
        outputs[transformed_name(name)] = tft.compute_and_apply_vocabulary(
            _fill_in_missing(inputs[name], ""), top_k=VOCAB_SIZE, num_oov_buckets=OOV_SIZE, vocab_filename=name
        )
    for name in BUCKET_FEATURES:
        value = tf.cast(_fill_in_missing(inputs[name], tf.constant(0, inputs[name].dtype)), tf.float32)
        outputs[transformed_name(name)] = tft.bucketize(value, FEATURE_BUCKET_COUNT)
    for name, size in CATEGORICAL_FEATURES.items():
        value = tf.cast(_fill_in_missing(inputs[name], tf.constant(0, inputs[name].dtype)), tf.int64)
        outputs[transformed_name(name)] = tf.where((value >= 0) & (value < size), value, tf.zeros_like(value))
    if TIPS in inputs:
        fare = tf.cast(_fill_in_missing(inputs[FARE], tf.constant(0, inputs[FARE].dtype)), tf.float64)
        tips = tf.cast(_fill_in_missing(inputs[TIPS], tf.constant(0, inputs[TIPS].dtype)), tf.float64)
        outputs[LABEL] = tf.cast(tips > fare * 0.2, tf.int64)
    return outputs


def build_model(hyperparameters) -> keras.Model:
    """Wide (one-hot categorical ids) and deep (z-scored floats through a DNN)."""
    deep_inputs = {transformed_name(n): keras.Input(shape=(), name=transformed_name(n)) for n in DENSE_FLOAT_FEATURES}
    sizes = {transformed_name(n): VOCAB_SIZE + OOV_SIZE for n in VOCAB_FEATURES}
    sizes.update({transformed_name(n): FEATURE_BUCKET_COUNT + 1 for n in BUCKET_FEATURES})
    sizes.update({transformed_name(n): size for n, size in CATEGORICAL_FEATURES.items()})
    wide_inputs = {name: keras.Input(shape=(), name=name, dtype="int64") for name in sizes}
    deep = keras.layers.Concatenate()([keras.layers.Reshape((1,))(i) for i in deep_inputs.values()])
    for units in hyperparameters.get("hidden_units", [100, 70, 50, 25]):
        deep = keras.layers.Dense(int(units), activation="relu")(deep)
    wide = keras.layers.Concatenate()(
        [keras.layers.CategoryEncoding(sizes[name], output_mode="one_hot")(i) for name, i in wide_inputs.items()]
    )
    output = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Concatenate()([deep, wide]))
    model = keras.Model({**deep_inputs, **wide_inputs}, output)
    model.compile(
        optimizer=keras.optimizers.Adam(float(hyperparameters.get("learning_rate", 0.001))),
        loss="binary_crossentropy",
        metrics=[keras.metrics.BinaryAccuracy()],
    )
    return model


def run_fn(fn_args):
    keras.utils.set_random_seed(0)
    model = build_model(fn_args.hyperparameter_values)
    if fn_args.base_model:  # continuous training: go on from the latest blessed model's weights
        warm_start(model, fn_args.base_model)
    model.fit(
        fn_args.train_dataset(batch_size=int(fn_args.hyperparameter_values.get("batch_size", 128)), seed=0),
        steps_per_epoch=fn_args.train_steps,
        validation_data=fn_args.eval_dataset(batch_size=512),
        validation_steps=fn_args.eval_steps,
        epochs=1,
        callbacks=[keras.callbacks.TensorBoard(log_dir=fn_args.log_dir)],
        verbose=0,
    )
    export_serving_model(model, fn_args.tf_transform_output, fn_args.serving_model_dir, label_key=TIPS)
