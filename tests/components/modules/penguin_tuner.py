"""Penguin tuner_fn for the Tuner test: a two-trial random search over the hidden layer's width."""

import keras_tuner
from penguin_trainer_model import build_model

from beam_ml.components.tuner import TunerFnResult


def tuner_fn(fn_args):
    def build(hp):
        return build_model({"units": hp.Choice("units", [4, 12]), "learning_rate": hp.Fixed("learning_rate", 0.02)})

    tuner = keras_tuner.RandomSearch(
        build, objective="val_accuracy", max_trials=2, seed=0, directory=fn_args.model_run_dir, project_name="penguin"
    )
    return TunerFnResult(
        tuner,
        {
            "x": fn_args.train_dataset(batch_size=32, seed=0),
            "steps_per_epoch": fn_args.train_steps,
            "validation_data": fn_args.eval_dataset(batch_size=32),
            "validation_steps": fn_args.eval_steps,
            "epochs": 1,
            "verbose": 0,
        },
    )
