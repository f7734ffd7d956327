"""Tuner: a user module's ``tuner_fn(fn_args)`` searches hyperparameters with keras-tuner.

    tuner = Tuner(examples=transform.outputs.transformed_examples,
                  transform_graph=transform.outputs.transform_graph,
                  module_file="penguin_trainer.py", train_steps=50, eval_steps=5, label_key="species_xf")
    trainer = Trainer(..., hyperparameters=tuner.outputs.best_hyperparameters)

``tuner_fn`` gets the same ``beam_ml.training.FnArgs`` as ``run_fn`` (its
``model_run_dir`` is the directory to give the tuner for its trials) and
returns a ``TunerFnResult(tuner, fit_kwargs)``; the component runs
``tuner.search(**fit_kwargs)`` and writes the best trial's values to
``hyperparameters.json`` (which Trainer merges over its own defaults), their
keras-tuner config to ``hyperparameters_config.json`` (the Trainer's
``fn_args.hyperparameters``, as in TFX) and a summary of every trial to
``trials.json``. ``fn_args.working_dir`` (= ``model_run_dir``) is the
directory to give the tuner for its trials. A tuner whose hypermodel builds
``tf.keras`` (Keras 2) models searches in a child process where keras-tuner
runs on tf_keras (``beam_ml.components._tuning``).
"""

from __future__ import annotations

import os
from typing import Any, NamedTuple

from beam_ml import fs
from beam_ml.artifacts import Examples, HyperParameters, Schema, TransformGraph
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, UserModule, component


class TunerFnResult(NamedTuple):
    """What ``tuner_fn`` returns: a keras-tuner tuner and the keyword arguments of its ``search``."""

    tuner: Any
    fit_kwargs: dict[str, Any]


@component
def Tuner(
    examples: Input[Examples],
    best_hyperparameters: Output[HyperParameters],
    ctx: ExecutionContext,
    transform_graph: Input[TransformGraph] | None = None,
    schema: Input[Schema] | None = None,
    *,
    module_file: UserModule,
    tuner_fn: str = "tuner_fn",
    train_split: str = "train",
    eval_split: str = "eval",
    train_steps: int | None = None,
    eval_steps: int | None = None,
    label_key: str | None = None,
    custom_config: dict[str, Any] | None = None,
) -> None:
    """Search hyperparameters on ``train_split``, scoring on ``eval_split``."""
    from beam_ml.components._tuning import (
        builds_legacy_keras,
        run_search,
        run_search_with_legacy_keras,
    )
    from beam_ml.local_copies import local_scratch
    from beam_ml.training import build_fn_args

    # keras-tuner writes its trials with TensorFlow's file layer: a local directory where it cannot open the URI.
    with local_scratch(fs.join(ctx.tmp_dir, "tuner")) as working_dir, \
            local_scratch(fs.join(ctx.tmp_dir, "tuner-keras2")) as legacy_dir:
        fn_args = build_fn_args(
            "Tuner",
            examples,
            transform_graph,
            schema,
            train_split=train_split,
            eval_split=eval_split,
            serving_model_dir=os.path.join(working_dir, "unused-serving"),
            model_run_dir=working_dir,
            train_steps=train_steps,
            eval_steps=eval_steps,
            label_key=label_key,
            custom_config=custom_config,
        )
        result = module_file.get(tuner_fn)(fn_args)
        if not isinstance(result, TunerFnResult):
            raise TypeError(f"{tuner_fn} must return beam_ml.components.tuner.TunerFnResult, got {type(result).__name__}")
        if builds_legacy_keras(result.tuner):
            report = run_search_with_legacy_keras(module_file.path, tuner_fn, fn_args, legacy_dir)
        else:
            report = run_search(result.tuner, result.fit_kwargs)
    values, trials = report["values"], report["trials"]
    best_hyperparameters.write(values, report["config"], trials)
    best_hyperparameters.properties.update(values=values, trials=len(trials))
