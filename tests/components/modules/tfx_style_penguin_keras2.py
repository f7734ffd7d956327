"""A penguin run_fn as TFX 1.x module files have it: a ``tf.keras`` (Keras 2) model, TFX's imports."""

import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx_bsl.public import tfxio

from beam_ml.training import export_serving_model

LABEL = "species_xf"
NUMERIC = ["bill_length_mm_xf", "bill_depth_mm_xf", "flipper_length_mm_xf", "body_mass_g_xf"]


def _dataset(files, data_accessor, tf_transform_output):
    return data_accessor.tf_dataset_factory(
        files, tfxio.TensorFlowDatasetOptions(batch_size=32, label_key=LABEL, shuffle_seed=0),
        tf_transform_output.transformed_metadata.schema,
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    tf.keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    inputs = {name: tf.keras.Input(shape=(), name=name) for name in NUMERIC}
    stacked = tf.keras.layers.Concatenate()([tf.keras.layers.Reshape((1,))(inputs[name]) for name in NUMERIC])
    hidden = tf.keras.layers.Dense(16, activation="relu")(stacked)
    model = tf.keras.Model(inputs, tf.keras.layers.Dense(3)(hidden))
    model.compile(optimizer=tf.keras.optimizers.Adam(0.02),
                  loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=[tf.keras.metrics.SparseCategoricalAccuracy(name="accuracy")])
    model.fit(_dataset(fn_args.train_files, fn_args.data_accessor, tf_transform_output),
              steps_per_epoch=fn_args.train_steps, epochs=1, verbose=0)
    with open(f"{fn_args.model_run_dir}/keras_module.txt", "w") as handle:  # which Keras built it, for the test
        handle.write(type(model).__module__)
    export_serving_model(model, tf_transform_output, fn_args.serving_model_dir, label_key="species")
