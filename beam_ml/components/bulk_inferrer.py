"""BulkInferrer: predictions for every row of an Examples artifact → InferenceResult.

Beam RunInference (record batches, batched; raw feature columns or
serialized tf.Examples, whichever the model's signature takes) over each
split, in one pipeline. The model is the ``model`` input: a Trainer's, or
the latest blessed one through the resolver
``beam_ml.resolvers.LatestBlessedModel()``, which makes it a recorded input
(lineage, cache key: a newly blessed model re-runs the BulkInferrer). When
the resolver finds no blessed model the BulkInferrer fails, naming it.

Output: ``Split-<name>/*.parquet`` with every input column plus the
prediction columns (``prediction`` for a single-output signature, else one
column per output) and, when the label has a vocabulary, ``predicted_class``
(the class name) and ``predicted_score`` (its probability) beside the raw
output; properties ``splits``, ``split_rows`` (rows written),
``rows_in`` (rows read, per split), ``model_id``, ``model_uri``,
``label_vocabulary``. The vocabulary is the ``label_vocabulary`` parameter,
else the Model's property of that name (``_model_io.label_vocabulary``); a model of
several outputs names the one holding class scores with ``prediction_output``. Rows in must
equal rows out, or the component fails.

Beam and TensorFlow are imported only when the component runs: a pipeline
file imports this module, and a fully cached rerun must not pay for them.
"""

from __future__ import annotations

from beam_ml import fs
from beam_ml.artifacts import Examples, InferenceResult, Model
from beam_ml.components._model_io import label_vocabulary as find_label_vocabulary
from beam_ml.components._model_io import with_predicted_class
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, component


@component
def BulkInferrer(
    examples: Input[Examples],
    inference_result: Output[InferenceResult],
    model: Input[Model],
    ctx: ExecutionContext,
    *,
    splits: list[str] | None = None,
    max_batch_rows: int = 8192,
    label_vocabulary: list[str] | None = None,
    prediction_output: str | None = None,
) -> None:
    """Predict every row of ``splits`` (default: all of the Examples' splits)."""
    import apache_beam as beam

    from beam_ml.components._serving import ServingHandler
    from beam_ml.components.examples_io import read_split
    from beam_ml.transforms.inference import PredictRecordBatches
    from beam_ml.transforms.ingestion import WriteExamples

    names = splits or examples.splits
    unknown = sorted(set(names) - set(examples.splits))
    if unknown:
        raise ValueError(f"Examples has no split(s) {unknown}; it has {examples.splits}")
    examples.require_rows(names, "BulkInferrer")
    path = model.serving_uri
    vocabulary = find_label_vocabulary(model, label_vocabulary)
    scores_column = prediction_output or "prediction"
    output_kind = model.properties.get("output_kind")
    with ctx.beam_pipeline() as pipeline:
        predicted = {
            split: read_split(pipeline, examples, split)
            | f"Predict[{split}]" >> PredictRecordBatches(ServingHandler(path, max_batch_rows=max_batch_rows))
            for split in names
        }
        if vocabulary is not None:
            predicted = {
                split: rows | f"ClassNames[{split}]" >> beam.Map(with_predicted_class, vocabulary, output_kind, scores_column)
                for split, rows in predicted.items()
            }
        _ = predicted | "Write" >> WriteExamples(inference_result.uri)
    rows_in = {split: examples.count_rows(split) for split in names}
    for split in names:
        fs.makedirs(inference_result.split_uri(split))  # a split with no rows still has its directory
    rows_out = {split: inference_result.count_rows(split) for split in names}
    inference_result.properties.update(
        splits=names, split_rows=rows_out, rows_in=rows_in, model_id=model.id, model_uri=model.uri,
        label_vocabulary=vocabulary,
    )
    ctx.notes.update(rows_in=sum(rows_in.values()), rows_out=sum(rows_out.values()), model_id=model.id)
    if rows_in != rows_out:
        raise RuntimeError(f"BulkInferrer read {rows_in} rows per split but wrote {rows_out}")
