"""Evaluator: a candidate Model (and a baseline) on an Examples split → metrics per slice and a blessing.

One Beam pipeline reads the eval split once; each model predicts on it with
RunInference (record batches, batched) and its metrics are Beam CombineFns
(``beam_ml.transforms.metrics.ComputeMetrics``), overall and per slice. The
baseline, when there is one, is evaluated on the same rows in the same
pipeline.

The baseline is the ``baseline_model`` input, typically wired to a resolver,
``beam_ml.resolvers.LatestBlessedModel(candidate=...)`` (the blessing records
``model_id``/``model_uri``): the baseline is then a recorded input, in lineage
and in the cache key, so a newly blessed model re-runs the Evaluators that
compared against the old one. No baseline (nothing blessed yet, or none
wired): the model is judged on value thresholds alone. A baseline that is the
candidate itself is ignored.

Labels: binary 0/1, multiclass class ids 0..k-1 or regression numbers, as the
metrics expect. String labels (penguin species) are mapped to class ids by
``label_vocabulary`` (position in the list = class id = column of the model's
probability output); when the parameter is not given, a ``label_vocabulary``
list in the candidate Model artifact's properties is used. A label outside the
vocabulary fails the run, naming it.

Predictions: the model's single output (column ``prediction``), or the output
named by ``prediction_output`` when the signature has several. For
classification, ``output_kind="logits"`` has a sigmoid/softmax applied before
the probability metrics (log loss, calibration, AUC); left unset, each model's
``output_kind`` property (the Trainer records it from the Keras model's last
activation) decides, and "probabilities" when there is none.

Outputs:
- ModelEvaluation: ``metrics.json`` {slice: {metric: value}} for the candidate
  and, when there is a baseline, ``baseline_metrics.json`` in the same shape
  (NaN written as null); ``plots.json`` {slice: ROC/PR curves and calibration
  per class, confusion matrix} for classification (``transforms.metrics.PlotData``);
  properties ``overall``, ``baseline_overall``,
  ``slices``, ``model_id``, ``baseline_model_id``.
- ModelBlessing: an empty ``BLESSED`` or ``NOT_BLESSED`` file (as TFX writes
  it); properties ``blessed``, ``reasons`` (one per failed threshold, naming
  the metric and slice), ``model_id``, ``model_uri``, ``baseline_model_id``,
  ``baseline_model_uri``.

Beam, pyarrow, the metric CombineFns and TensorFlow are imported only when the
component runs: a pipeline file imports this module, and a fully cached rerun
must not pay for them.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Literal

from beam_ml import fs
from beam_ml.artifacts import Examples, Model, ModelBlessing, ModelEvaluation
from beam_ml.components._model_io import (
    json_safe,
    read_json,
    touch,
    write_json,
)
from beam_ml.components._model_io import label_vocabulary as find_label_vocabulary
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, component
from beam_ml.transforms.options import MetricsConfig
from beam_ml.transforms.thresholds import ChangeThreshold, ValueThreshold, validate_metrics

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

BLESSED_FILE, NOT_BLESSED_FILE = "BLESSED", "NOT_BLESSED"
PREDICTION_COLUMN = "prediction"
CANDIDATE, BASELINE = "candidate", "baseline"


def _label_ids(label: pa.Array, vocabulary: list[str], column: str) -> pa.Array:
    """String labels → int64 class ids (their position in ``vocabulary``); nulls stay null."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if not (pa.types.is_string(label.type) or pa.types.is_large_string(label.type)):
        label = pc.cast(label, pa.string())
    ids = pc.index_in(label, value_set=pa.array(vocabulary, pa.string()))
    unknown = pc.and_(label.is_valid(), ids.is_null())
    if pc.any(unknown).as_py():
        bad = label.filter(unknown)[0].as_py()
        raise ValueError(f"label column {column!r} holds {bad!r}, which is not in label_vocabulary {vocabulary}")
    return pc.cast(ids, pa.int64())


def _metrics_rows(
    batch: pa.RecordBatch, label: str, prediction_output: str | None, vocabulary: list[str] | None
) -> pa.RecordBatch:
    """The scored batch with the label as class ids and the chosen output as column ``prediction``."""
    import pyarrow as pa

    names = batch.schema.names
    source = prediction_output if prediction_output in names else PREDICTION_COLUMN
    if source not in names:
        raise KeyError(
            f"the model gives several outputs; name the one to evaluate with prediction_output "
            f"(columns after inference: {names})"
        )
    if label not in names:
        raise KeyError(f"label column {label!r} is not in the examples (columns: {names})")
    columns = {name: batch.column(name) for name in names if name not in (label, PREDICTION_COLUMN, source)}
    label_column = batch.column(label)
    if vocabulary is not None:
        label_column = _label_ids(label_column, vocabulary, label)
    elif pa.types.is_string(label_column.type) or pa.types.is_large_string(label_column.type):
        raise TypeError(f"label column {label!r} holds strings: give label_vocabulary to map them to class ids")
    columns[label] = label_column
    columns[PREDICTION_COLUMN] = batch.column(source)
    return pa.RecordBatch.from_arrays(list(columns.values()), list(columns))


def _overall(metrics: dict) -> dict:
    return json_safe(metrics.get("Overall", {}))


@component
def Evaluator(
    examples: Input[Examples],
    model: Input[Model],
    evaluation: Output[ModelEvaluation],
    blessing: Output[ModelBlessing],
    ctx: ExecutionContext,
    baseline_model: Input[Model] | None = None,
    *,
    label: str,
    task: Literal["binary", "multiclass", "regression"],
    split: str = "eval",
    slice_features: list[str | list[str]] | None = None,
    thresholds: list[ValueThreshold | ChangeThreshold] | None = None,
    prediction_output: str | None = None,
    label_vocabulary: list[str] | None = None,
    label_from_transform: bool = False,
    weight_column: str | None = None,
    decision_threshold: float | None = None,
    output_kind: Literal["probabilities", "logits"] | None = None,
    signature_name: str = "serving_default",
    max_batch_rows: int = 8192,
    metrics_config: MetricsConfig | None = None,
) -> None:
    """Evaluate the candidate (and the baseline) on ``split`` and bless it if every threshold holds.

    slice_features: one slice per value of each named feature; a list of names
      slices by their combinations. "Overall" is always computed.
    label_from_transform: the label is not a column of the examples but an output of the
      candidate model's ``transform_features`` signature (a label the preprocessing derives;
      TFX's ``eval_config`` says ``preprocessing_function_names=["transform_features"]``).
    signature_name: the signature that predicts (TFX's ``ModelSpec.signature_name``), fed
      serialized tf.Examples or feature columns, whichever it takes.
    thresholds: ``ValueThreshold`` (absolute bounds) and ``ChangeThreshold``
      (how much worse than the baseline) from ``beam_ml.transforms.thresholds``.
    metrics_config: every setting of the metrics (``num_thresholds`` of the AUC curves,
      ``decision_threshold``, slices, weights, output kind;
      ``beam_ml.transforms.options.MetricsConfig``), handed to ``ComputeMetrics`` whole. Its
      task and label must be the Evaluator's (or its defaults); ``slice_features``,
      ``weight_column``, ``decision_threshold`` and ``output_kind``, when given, replace its
      fields.
    """
    import apache_beam as beam

    from beam_ml.components._serving import AddTransformedLabel, ServingHandler
    from beam_ml.components._writers import WriteJson
    from beam_ml.components.examples_io import read_split
    from beam_ml.transforms.inference import PredictRecordBatches
    from beam_ml.transforms.metrics import ComputeMetrics, ComputePlots

    if split not in examples.splits:
        raise ValueError(f"Examples has no split {split!r}; it has {examples.splits}")
    examples.require_rows(split, "Evaluator")
    baseline = baseline_model
    if baseline is not None and (baseline.id == model.id or baseline.uri == model.uri):
        baseline = None  # the candidate was blessed before: no baseline to compare with but itself
    vocabulary = find_label_vocabulary(model, label_vocabulary)
    config = _metrics_config(metrics_config, task, label, weight_column, decision_threshold, slice_features)
    models = {CANDIDATE: model, **({BASELINE: baseline} if baseline is not None else {})}
    configs = {role: _with_output_kind(config, output_kind, artifact) for role, artifact in models.items()}
    paths = {CANDIDATE: evaluation.metrics_uri(), BASELINE: evaluation.metrics_uri(baseline=True)}

    with ctx.beam_pipeline() as pipeline:
        rows = read_split(pipeline, examples, split)
        if label_from_transform:
            rows = rows | "TransformedLabel" >> beam.ParDo(AddTransformedLabel(model.serving_uri, label))
        for role, artifact in models.items():
            scored = (
                rows
                | f"Predict[{role}]" >> PredictRecordBatches(ServingHandler(
                    artifact.serving_uri, signature_name=signature_name, exclude_columns=[label],
                    max_batch_rows=max_batch_rows))
                | f"Labels[{role}]" >> beam.Map(_metrics_rows, label, prediction_output, vocabulary)
            )
            _ = scored | f"Metrics[{role}]" >> ComputeMetrics(configs[role]) | f"Write[{role}]" >> beam.ParDo(WriteJson(paths[role]))
            if role == CANDIDATE:  # the plots of the views (beam_ml.views.evaluation)
                _ = (scored | "Plots" >> ComputePlots(configs[role])
                     | "WritePlots" >> beam.ParDo(WriteJson(evaluation.plots_uri())))

    results = {role: (read_json(paths[role]) if fs.exists(paths[role]) else {}) for role in models}
    for role, metrics in results.items():
        if not fs.exists(paths[role]):
            write_json(paths[role], metrics)
    candidate = _nan_for_none(results[CANDIDATE])
    baseline_metrics = _nan_for_none(results[BASELINE]) if baseline is not None else None

    if not candidate:
        blessed, reasons = False, [f"split {split!r} gave no rows to evaluate"]
    else:
        blessed, reasons = validate_metrics(candidate, list(thresholds or ()), baseline_metrics)

    evaluation.properties.update(
        split=split,
        overall=_overall(candidate),
        slices=list(candidate),
        model_id=model.id,
        baseline_model_id=None if baseline is None else baseline.id,
        baseline_overall=None if baseline_metrics is None else _overall(baseline_metrics),
        label_vocabulary=vocabulary,
    )
    touch(fs.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE))
    blessing.properties.update(
        blessed=blessed,
        reasons=reasons,
        model_id=model.id,
        model_uri=model.uri,
        baseline_model_id=None if baseline is None else baseline.id,
        baseline_model_uri=None if baseline is None else baseline.uri,
    )
    ctx.notes.update(rows_in=int(_overall(candidate).get("example_count") or 0), blessed=blessed)
    if not blessed:
        logger.warning("Evaluator: model %s (%s) is NOT blessed: %s", model.id, model.uri, "; ".join(reasons))


def _metrics_config(
    given: MetricsConfig | None,
    task: str,
    label: str,
    weight_column: str | None,
    decision_threshold: float | None,
    slice_features: list[str | list[str]] | None,
) -> MetricsConfig:
    """``given`` (or the defaults) for the Evaluator's task and label, with the parameters that were given."""
    default = MetricsConfig(task=task)
    base = given if given is not None else default
    if base.task != task:
        raise ValueError(f"metrics_config has task {base.task!r} but the Evaluator task={task!r}")
    if base.label_column not in (default.label_column, label):
        raise ValueError(f"metrics_config has label_column {base.label_column!r} but the Evaluator label={label!r}")
    if base.prediction_column != default.prediction_column:
        raise ValueError("metrics_config.prediction_column is the Evaluator's: choose the model output "
                         "with prediction_output instead")
    overrides = {"weight_column": weight_column, "decision_threshold": decision_threshold}
    config = dataclasses.replace(
        base, label_column=label, prediction_column=PREDICTION_COLUMN,
        **{name: value for name, value in overrides.items() if value is not None},
    )
    if slice_features is not None:
        config = config.with_slices(*(s if isinstance(s, str) else tuple(s) for s in slice_features))
    if () not in config.slices:  # "Overall" is always computed: the blessing and the properties read it
        config = dataclasses.replace(config, slices=((), *config.slices))
    return config


def _with_output_kind(config: MetricsConfig, output_kind: str | None, artifact: Model) -> MetricsConfig:
    """The metrics config for one model: its predictions are logits or probabilities (the
    parameter, else the model's ``output_kind`` property, else the config's)."""
    if config.task == "regression":
        return config
    kind = output_kind or artifact.properties.get("output_kind") or config.output_kind
    return dataclasses.replace(config, output_kind=kind)


def _nan_for_none(metrics: dict) -> dict:
    """JSON's null back to NaN, so validation says "NaN" rather than "missing"."""
    return {s: {m: (float("nan") if v is None else float(v)) for m, v in values.items()} for s, values in metrics.items()}


def load_metrics(evaluation: ModelEvaluation | str, *, baseline: bool = False) -> dict:
    """{slice: {metric: value}} of a ModelEvaluation (NaN for metrics that had none)."""
    uri = evaluation if isinstance(evaluation, str) else evaluation.uri
    return ModelEvaluation(uri).load_metrics(baseline=baseline)
