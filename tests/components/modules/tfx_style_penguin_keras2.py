"""A penguin tuner_fn and run_fn as TFX 1.x module files have them: ``tf.keras`` (Keras 2) models, TFX's imports.

Like TFX's penguin module, ``run_fn`` saves the model itself (``model.save(..., save_format="tf")``),
not through beam-ml's export helper: its ``serving_default`` signature takes a batch of serialized
``tf.Example``s (``examples``), parses them with the transform output's raw feature spec (label
removed), applies ``transform_features_layer()`` and returns the model's logits unnamed;
``transform_features`` gives the transformed features, label included, for the Evaluator.
"""

import keras_tuner
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

LABEL = "species_xf"
RAW_LABEL = "species"
NUMERIC = ["bill_length_mm_xf", "bill_depth_mm_xf", "flipper_length_mm_xf", "body_mass_g_xf"]


def _dataset(files, data_accessor, tf_transform_output):
    return data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=32, label_key=LABEL, shuffle_seed=0),
        tf_transform_output.transformed_metadata.schema,
    )


def _search_space():
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [8, 16])
    hp.Choice("learning_rate", [0.01, 0.02])
    return hp


def _build(hp):
    inputs = {name: tf.keras.Input(shape=(), name=name) for name in NUMERIC}
    stacked = tf.keras.layers.Concatenate()([tf.keras.layers.Reshape((1,))(inputs[name]) for name in NUMERIC])
    hidden = tf.keras.layers.Dense(hp.get("units"), activation="relu")(stacked)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(hidden))
    model.compile(optimizer=tf.keras.optimizers.Adam(hp.get("learning_rate")),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    return model


def tuner_fn(fn_args: tfx.components.FnArgs) -> tfx.components.TunerFnResult:
    tf.keras.utils.set_random_seed(0)  # each trial's initial weights: without it the best trial varies by run
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tuner = keras_tuner.RandomSearch(_build, max_trials=2, hyperparameters=_search_space(), seed=0,
                                     objective="val_accuracy", directory=fn_args.working_dir, project_name="keras2")
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
            "validation_data": _dataset(fn_args.eval_files, fn_args.data_accessor, tf_transform_output),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    tf.keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    model = _build(keras_tuner.HyperParameters.from_config(fn_args.hyperparameters))
    model.fit(_dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
              steps_per_epoch=fn_args.train_steps, epochs=1, verbose=0)
    with open(f"{fn_args.model_run_dir}/keras_module.txt", "w") as handle:  # which Keras built it, for the test
        handle.write(type(model).__module__)
    model.save(fn_args.serving_model_dir, save_format="tf", signatures=_signatures(model, tf_transform_output))


def _signatures(model, tf_transform_output):
    model.tft_layer = tf_transform_output.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def serve_tf_examples_fn(serialized_tf_examples):
        feature_spec = tf_transform_output.raw_feature_spec()
        feature_spec.pop(RAW_LABEL)
        parsed_features = tf.io.parse_example(serialized_tf_examples, feature_spec)
        transformed_features = model.tft_layer(parsed_features)
        return model(transformed_features)

    @tf.function(input_signature=[tf.TensorSpec(shape=[None], dtype=tf.string, name="examples")])
    def transform_features_fn(serialized_tf_examples):
        parsed_features = tf.io.parse_example(serialized_tf_examples, tf_transform_output.raw_feature_spec())
        return model.tft_layer(parsed_features)

    return {"serving_default": serve_tf_examples_fn, "transform_features": transform_features_fn}
