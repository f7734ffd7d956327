"""A penguin tuner_fn and run_fn written against TFX's public module-file API, as a TFX user has them.

Only TFX's names are used for what the framework hands over (``tfx.components.FnArgs``,
``TunerFnResult``, ``fn_args.data_accessor``, ``working_dir``, ``transform_graph_path``,
keras-tuner's config in ``fn_args.hyperparameters``); the model outputs logits, like TFX's penguin.
"""

from typing import Any

import keras
import keras_tuner
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx_bsl.public import tfxio

from beam_ml.training import export_serving_model

LABEL = "species_xf"
NUMERIC = ["bill_length_mm_xf", "bill_depth_mm_xf", "flipper_length_mm_xf", "body_mass_g_xf"]
BATCH = 32


def _input_fn(files: list, data_accessor: DataAccessor, tf_transform_output: tft.TFTransformOutput,
              batch_size: int, num_epochs: Any = None):
    return data_accessor.tf_dataset_factory(
        files,
        tfxio.TensorFlowDatasetOptions(batch_size=batch_size, label_key=LABEL, shuffle_seed=0, num_epochs=num_epochs),
        tf_transform_output.transformed_metadata.schema,
    )


def _search_space() -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Choice("units", [8, 16])
    hp.Choice("learning_rate", [0.01, 0.03])
    return hp


def _build(hp: keras_tuner.HyperParameters) -> keras.Model:
    inputs = {name: keras.Input(shape=(), name=name) for name in NUMERIC}
    inputs["island_xf"] = keras.Input(shape=(), name="island_xf", dtype="int64")
    columns = [keras.layers.Reshape((1,))(inputs[name]) for name in NUMERIC]
    columns.append(keras.layers.CategoryEncoding(3, output_mode="one_hot")(inputs["island_xf"]))
    hidden = keras.layers.Dense(hp.get("units"), activation="relu")(keras.layers.Concatenate()(columns))
    logits = keras.layers.Dense(3)(hidden)
    model = keras.Model(inputs, logits)
    model.compile(
        optimizer=keras.optimizers.Adam(hp.get("learning_rate")),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
    )
    return model


def tuner_fn(fn_args: FnArgs) -> tfx.components.TunerFnResult:
    keras.utils.set_random_seed(0)  # each trial's initial weights: without it the best trial varies by run
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_graph_path)
    tuner = keras_tuner.RandomSearch(
        _build, max_trials=2, hyperparameters=_search_space(), objective="val_accuracy", seed=0,
        directory=fn_args.working_dir, project_name="penguin_tfx_style",
    )
    return tfx.components.TunerFnResult(
        tuner=tuner,
        fit_kwargs={
            "x": _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, BATCH),
            "validation_data": _input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, BATCH),
            "steps_per_epoch": fn_args.train_steps,
            "validation_steps": fn_args.eval_steps,
            "verbose": 0,
        },
    )


def run_fn(fn_args: tfx.components.FnArgs) -> None:
    keras.utils.set_random_seed(0)
    tf_transform_output = tft.TFTransformOutput(fn_args.transform_output)
    hparams = (keras_tuner.HyperParameters.from_config(fn_args.hyperparameters) if fn_args.hyperparameters
               else _search_space())
    model = _build(hparams)
    model.fit(
        _input_fn(fn_args.train_files, fn_args.data_accessor, tf_transform_output, BATCH),
        steps_per_epoch=fn_args.train_steps,
        validation_data=_input_fn(fn_args.eval_files, fn_args.data_accessor, tf_transform_output, BATCH),
        validation_steps=fn_args.eval_steps,
        epochs=1,
        verbose=0,
    )
    export_serving_model(model, tf_transform_output, fn_args.serving_model_dir, label_key="species")
