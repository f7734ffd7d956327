"""A Chicago taxi module file as a TFX user writes it against TFX's public API, with a Keras 3 model.

``preprocessing_fn`` derives the label (did the tip exceed 20% of the fare?) and the model's
features; ``tuner_fn`` and ``run_fn`` read the transformed examples through
``fn_args.data_accessor.tf_dataset_factory`` with ``tfxio.TensorFlowDatasetOptions``, find the
transform output at ``fn_args.transform_graph_path`` and save to ``fn_args.serving_model_dir``
themselves, as TFX's native-Keras taxi module does (with Keras 3: ``tf.saved_model.save`` of a
``tf.Module`` holding the model and the transform layer): ``serving_default`` takes serialized
``tf.Example``s (``examples``) of raw rows without the label's source column and returns
``{"outputs": ...}``; ``transform_features`` gives the transformed features, label included.
The model ends in a sigmoid, so the Evaluator reads probabilities.
"""

import keras
import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

LABEL_KEY = "tipped_over_20pct"
FARE_KEY, TIPS_KEY = "fare", "tips"
#: Continuous features, z-scored.
NUMERIC_KEYS = ["fare", "trip_miles", "trip_seconds"]
#: Strings mapped to vocabulary ids, with one bucket for unseen values.
VOCABULARY_KEYS = {"payment_type": 10, "company": 50}
#: Coordinates cut into quantile buckets.
BUCKETIZED_KEYS = ["pickup_latitude", "pickup_longitude", "dropoff_latitude", "dropoff_longitude"]
BUCKETS = 8
#: Small integer ids kept as they are, with how many values each may take.
ID_KEYS = {"trip_start_hour": 24, "trip_start_day": 8, "trip_start_month": 13}
BATCH_SIZE = 64


def _xf(key):
    return key + "_xf"


def _dense(tensor, default):
    """A [batch, 1] feature that may be missing (sparse) as a [batch] tensor with ``default`` for gaps."""
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default_value=default)
    return tf.squeeze(tensor, axis=1)


def _number(inputs, key, dtype=tf.float32):
    return tf.cast(_dense(inputs[key], tf.constant(0, inputs[key].dtype)), dtype)


def preprocessing_fn(inputs):
    outputs = {}
    for key in NUMERIC_KEYS:
        outputs[_xf(key)] = tft.scale_to_z_score(_number(inputs, key))
    for key, top_k in VOCABULARY_KEYS.items():
        outputs[_xf(key)] = tft.compute_and_apply_vocabulary(
            _dense(inputs[key], ""), top_k=top_k, num_oov_buckets=1, vocab_filename=key)
    for key in BUCKETIZED_KEYS:
        outputs[_xf(key)] = tft.bucketize(_number(inputs, key), BUCKETS)
    for key, size in ID_KEYS.items():
        value = _number(inputs, key, tf.int64)
        outputs[_xf(key)] = tf.clip_by_value(value, 0, size - 1)
    fare = _number(inputs, FARE_KEY, tf.float64)
    tips = _number(inputs, TIPS_KEY, tf.float64)
    outputs[LABEL_KEY] = tf.cast(tips > 0.2 * fare, tf.int64)
    return outputs


def _input_fn(files, data_accessor, tf_transform_output, batch_size=BATCH_SIZE, num_epochs=None):
    return data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL_KEY, shuffle_seed=0,
                                       num_epochs=num_epochs),
        tf_transform_output.transformed_metadata.schema,
    )


def _categorical_sizes():
    sizes = {_xf(key): top_k + 1 for key, top_k in VOCABULARY_KEYS.items()}
    sizes.update({_xf(key): BUCKETS + 1 for key in BUCKETIZED_KEYS})
    sizes.update({_xf(key): size for key, size in ID_KEYS.items()})
    return sizes


def _search_space():
    hp = keras_tuner.HyperParameters()
    hp.Choice("hidden_units", [16, 32])
    hp.Choice("learning_rate", [0.003, 0.01])
    return hp


def _build_keras_model(hp):
    """Wide (one-hot ids) and deep (z-scored numbers through a hidden layer) into one sigmoid."""
    numeric = {_xf(key): keras.Input(shape=(), name=_xf(key)) for key in NUMERIC_KEYS}
    sizes = _categorical_sizes()
    categorical = {name: keras.Input(shape=(), name=name, dtype="int64") for name in sizes}
    deep = keras.layers.Concatenate()([keras.layers.Reshape((1,))(tensor) for tensor in numeric.values()])
    deep = keras.layers.Dense(hp.get("hidden_units"), activation="relu")(deep)
    wide = keras.layers.Concatenate()(
        [keras.layers.CategoryEncoding(sizes[name], output_mode="one_hot")(tensor)
         for name, tensor in categorical.items()])
    output = keras.layers.Dense(1, activation="sigmoid")(keras.layers.Concatenate()([deep, wide]))
    model = keras.Model({**numeric, **categorical}, output)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.get("learning_rate")),
        loss=keras.losses.BinaryCrossentropy(),
        metrics=[keras.metrics.BinaryAccuracy(name="accuracy")],
    )
    return model


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    keras.utils.set_random_seed(0)  # the trials' weights: the same winner whatever ran before in the process
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tuner = keras_tuner.RandomSearch(
        _build_keras_model, max_trials=2, hyperparameters=_search_space(), objective="val_accuracy", seed=0,
        directory=fn_args.working_dir, project_name="taxi_tfx_style",
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
            "validation_data": _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


def run_fn(fn_args: tfx.components.FnArgs):
    keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    hp = (keras_tuner.HyperParameters.from_config(fn_args.hyperparameters) if fn_args.hyperparameters
          else _search_space())
    model = _build_keras_model(hp)
    model.fit(
        _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
        steps_per_epoch=fn_args.train_steps,
        validation_data=_input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
        validation_steps=fn_args.eval_steps,
        epochs=1,
        verbose=0,
    )
    serving = tf.Module()
    serving.model = model
    serving.tft_layer = tf_transform_output.transform_features_layer()
    signatures = {
        "serving_default": _tf_examples_serving_signature(serving, tf_transform_output),
        "transform_features": _transform_features_signature(serving, tf_transform_output),
    }
    tf.saved_model.save(serving, fn_args.serving_model_dir, signatures=signatures)


def _tf_examples_serving_signature(serving, tf_transform_output):
    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples_fn(serialized_tf_example):
        raw_feature_spec = tf_transform_output.raw_feature_spec()
        raw_feature_spec.pop(TIPS_KEY)  # the label's source: unknown when a trip is served
        raw_features = tf.io.parse_example(serialized_tf_example, raw_feature_spec)
        transformed_features = serving.tft_layer(raw_features)
        return {"outputs": serving.model(transformed_features)}

    return serve_tf_examples_fn


def _transform_features_signature(serving, tf_transform_output):
    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features_fn(serialized_tf_example):
        raw_features = tf.io.parse_example(serialized_tf_example, tf_transform_output.raw_feature_spec())
        return serving.tft_layer(raw_features)

    return transform_features_fn
