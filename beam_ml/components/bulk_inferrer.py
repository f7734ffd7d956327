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
column per output); properties ``splits``, ``split_rows`` (rows written),
``rows_in`` (rows read, per split), ``model_id``, ``model_uri``. Rows in must
equal rows out, or the component fails.

Beam and TensorFlow are imported only when the component runs: a pipeline
file imports this module, and a fully cached rerun must not pay for them.
"""

from __future__ import annotations

from beam_ml import fs
from beam_ml.artifacts import Examples, InferenceResult, Model
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
) -> None:
    """Predict every row of ``splits`` (default: all of the Examples' splits)."""
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
    with ctx.beam_pipeline() as pipeline:
        predicted = {
            split: read_split(pipeline, examples, split)
            | f"Predict[{split}]" >> PredictRecordBatches(ServingHandler(path, max_batch_rows=max_batch_rows))
            for split in names
        }
        _ = predicted | "Write" >> WriteExamples(inference_result.uri)
    rows_in = {split: examples.count_rows(split) for split in names}
    for split in names:
        fs.makedirs(inference_result.split_uri(split))  # a split with no rows still has its directory
    rows_out = {split: inference_result.count_rows(split) for split in names}
    inference_result.properties.update(
        splits=names, split_rows=rows_out, rows_in=rows_in, model_id=model.id, model_uri=model.uri
    )
    ctx.notes.update(rows_in=sum(rows_in.values()), rows_out=sum(rows_out.values()), model_id=model.id)
    if rows_in != rows_out:
        raise RuntimeError(f"BulkInferrer read {rows_in} rows per split but wrote {rows_out}")
