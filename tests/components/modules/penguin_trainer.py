"""Penguin run_fn for the Trainer tests: a tiny Keras 3 classifier on the transformed features."""

import keras
from penguin_trainer_model import build_model

from beam_ml.training import export_serving_model


def run_fn(fn_args):
    keras.utils.set_random_seed(0)
    model = build_model(fn_args.hyperparameter_values)
    model.fit(
        fn_args.train_dataset(batch_size=32, seed=0),
        steps_per_epoch=fn_args.train_steps,
        validation_data=fn_args.eval_dataset(batch_size=32),
        validation_steps=fn_args.eval_steps,
        epochs=int(fn_args.hyperparameter_values.get("epochs", 1)),
        callbacks=[keras.callbacks.CSVLogger(f"{fn_args.model_run_dir}/training.csv")],
        verbose=0,
    )
    model.save(f"{fn_args.model_run_dir}/model.keras")  # for the test that compares predictions
    export_serving_model(model, fn_args.tf_transform_output, fn_args.serving_model_dir,
                         label_key="species")
