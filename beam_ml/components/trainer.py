"""Trainer: runs a user module's ``run_fn(fn_args)`` (TFX's convention) and publishes the model.

    trainer = Trainer(examples=transform.outputs.transformed_examples,
                      transform_graph=transform.outputs.transform_graph,
                      module_file="penguin_trainer.py", train_steps=100, eval_steps=10,
                      label_key="species_xf")

``fn_args`` is a ``beam_ml.training.FnArgs``: Parquet → ``tf.data`` factories
for the train and eval splits, the ``tft.TFTransformOutput``, the schema,
hyperparameters, step counts, ``serving_model_dir`` and ``model_run_dir``
(TensorBoard logs). The module exports with
``beam_ml.training.export_serving_model``, or saves a SavedModel there itself
as TFX module files do (``model.save``/``tf.saved_model.save`` with their own
signatures); whether the model outputs logits or probabilities is then read
from the saved graph (``beam_ml.training.saved_output_kind``).

Outputs:
- ``model``: a SavedModel in ``<uri>/Format-Serving`` (TFX's layout) whose
  ``serving_default`` takes serialized raw ``tf.Example``s (the transform graph
  is inside) and whose ``transform_features`` gives the transformed features.
- ``model_run``: whatever ``run_fn`` writes to ``fn_args.model_run_dir``
  (TensorBoard logs).

Hyperparameters: the ``hyperparameter_values`` dict gives defaults; a
``hyperparameters`` input artifact (``hyperparameters.json``, e.g. a Tuner's
best values) overrides them key by key; the result is
``fn_args.hyperparameter_values``. ``fn_args.hyperparameters`` is what TFX
gives: keras-tuner's config when a Tuner chose the values (read it with
``keras_tuner.HyperParameters.from_config``), else the same dict (None if empty).

Warm start: the optional ``base_model`` input (wired from
``beam_ml.resolvers.LatestBlessedModel``, as TFX wires its ``base_model``) is
``fn_args.base_model``, a local path to its SavedModel directory (None when the
resolver found no model: the first run trains from scratch). It is a recorded
input, so a newly blessed base model re-runs the Trainer. Modules load its
weights with ``beam_ml.training.warm_start``.

Data validation: the optional ``anomalies`` input (ExampleValidator's output
for the examples it trains on) orders the Trainer after the validation, puts
that validation, and the previous span's statistics it compared against, in
the model's lineage, and copies its anomaly counts per split to the model's
``data_anomalies`` property (a pipeline whose policy is ``on_anomalies="warn"``
then shows which models were trained on data with anomalies).

TensorFlow is imported only when the component runs (by the user module).
"""

from __future__ import annotations

from typing import Any

from beam_ml import fs
from beam_ml.artifacts import (
    Anomalies,
    Examples,
    HyperParameters,
    Model,
    ModelRun,
    Schema,
    TransformGraph,
)
from beam_ml.dsl import Input, Output, UserModule, component


@component
def Trainer(
    examples: Input[Examples],
    model: Output[Model],
    model_run: Output[ModelRun],
    transform_graph: Input[TransformGraph] | None = None,
    schema: Input[Schema] | None = None,
    hyperparameters: Input[HyperParameters] | None = None,
    base_model: Input[Model] | None = None,
    anomalies: Input[Anomalies] | None = None,
    *,
    module_file: UserModule,
    run_fn: str = "run_fn",
    train_split: str = "train",
    eval_split: str = "eval",
    train_steps: int | None = None,
    eval_steps: int | None = None,
    label_key: str | None = None,
    hyperparameter_values: dict[str, Any] | None = None,
    custom_config: dict[str, Any] | None = None,
) -> None:
    """Train with the module's ``run_fn`` on ``train_split``, evaluate on ``eval_split``."""
    from beam_ml.local_copies import local_copy, local_output
    from beam_ml.training import (
        SERVING_DIR,
        build_fn_args,
        read_output_kind,
        saved_output_kind,
        serving_path,
    )

    examples.require_rows([train_split, eval_split], "Trainer")
    values = dict(hyperparameter_values or {})
    config = None
    if hyperparameters is not None:
        values.update(hyperparameters.values())
        config = hyperparameters.config()
    # Keras and TensorFlow write with their own file layer: local directories where it cannot open the URIs.
    with local_output(fs.join(model.uri, SERVING_DIR)) as serving_model_dir, local_output(model_run.uri) as run_dir:
        fn_args = build_fn_args(
            "Trainer",
            examples,
            transform_graph,
            schema,
            train_split=train_split,
            eval_split=eval_split,
            serving_model_dir=serving_model_dir,
            model_run_dir=run_dir,
            hyperparameters=config if config is not None else (values or None),
            hyperparameter_values=values,
            train_steps=train_steps,
            eval_steps=eval_steps,
            label_key=label_key,
            custom_config=custom_config,
            base_model=local_copy(serving_path(base_model.uri)) if base_model is not None else None,
        )
        module_file.get(run_fn)(fn_args)
        if not fs.exists(fs.join(serving_model_dir, "saved_model.pb")):
            raise RuntimeError(
                f"{run_fn} did not export a SavedModel to fn_args.serving_model_dir ({serving_model_dir}); "
                "call beam_ml.training.export_serving_model, or save a SavedModel there"
            )
        output_kind = read_output_kind(serving_model_dir) or saved_output_kind(serving_model_dir)
    model.properties.update({"format": "SavedModel", "serving_dir": SERVING_DIR})
    if label_key is not None:
        model.properties["label_key"] = label_key
    model.properties["hyperparameters"] = values
    # What it was warm started from (None: from scratch); the input itself is in the lineage.
    model.properties["base_model_id"] = base_model.id if base_model is not None else None
    if anomalies is not None:
        model.properties["data_anomalies"] = anomalies.properties.get("anomalies")
    if output_kind is not None:
        model.properties["output_kind"] = output_kind
