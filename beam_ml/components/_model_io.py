"""What the model components share: where a Model's SavedModel is, how rows reach it, canary rows,
and finding the latest blessed model in the metadata store.

Two kinds of serving signature are fed from the same record batches:

- raw features as named dense tensors (``SavedModelHandler``'s contract): the
  columns are fed as they are;
- one string input ``examples`` of serialized ``tf.Example``s, as
  ``beam_ml.training.export_serving_model`` (our Trainer) exports: the rows
  are serialized with ``beam_ml.training.serialize_examples`` first (a null
  becomes an absent feature) and the ``examples`` column is dropped again
  from the result.

`ServingHandler` decides per loaded model, so components need not know which
kind they were given. TensorFlow is imported only when a model is loaded.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import RunInference
from apache_beam.pvalue import PCollection

from beam_ml import fs
from beam_ml.artifacts import Examples, Model
from beam_ml.transforms.inference import SavedModelHandler, ServingModel

#: The input name of a signature fed serialized tf.Examples.
EXAMPLES_INPUT = "examples"


def takes_examples(model: ServingModel) -> bool:
    """Whether the signature is fed serialized tf.Examples rather than feature columns."""
    return len(model.inputs) == 1 and model.inputs[0].name == EXAMPLES_INPUT and model.inputs[0].dtype == "string"


def _with_serialized_examples(batch: pa.RecordBatch, exclude: Sequence[str]) -> pa.RecordBatch:
    from beam_ml.training import serialize_examples

    columns = [n for n in batch.schema.names if n not in exclude]
    serialized = pa.array(serialize_examples(batch, columns) if batch.num_rows else [], type=pa.binary())
    return batch.append_column(EXAMPLES_INPUT, serialized)


class ServingHandler(SavedModelHandler):
    """`SavedModelHandler` that also feeds ``examples``-signature models (serialized raw rows).

    ``exclude_columns`` are never serialized into the tf.Examples (e.g. the label).
    """

    def __init__(self, model_path: str, *, exclude_columns: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(model_path, **kwargs)
        self._exclude = tuple(exclude_columns)

    def run_inference(
        self, batch: Sequence[pa.RecordBatch], model: ServingModel, inference_args: dict[str, Any] | None = None
    ) -> Iterable[pa.RecordBatch]:
        batch = list(batch)
        if not batch or not takes_examples(model) or EXAMPLES_INPUT in batch[0].schema.names:
            return super().run_inference(batch, model, inference_args)
        fed = [_with_serialized_examples(b, self._exclude) for b in batch]
        results = super().run_inference(fed, model, inference_args)
        return [r.remove_column(r.schema.get_field_index(EXAMPLES_INPUT)) for r in results]


class Predict(beam.PTransform[PCollection[pa.RecordBatch], PCollection[pa.RecordBatch]]):
    """Record batches → the same rows plus prediction columns (RunInference with `ServingHandler`).

    `PredictRecordBatches` with the serialized-tf.Example case added; the
    prediction column naming is the same (``prediction`` for a single output).
    """

    def __init__(self, model_path: str, *, exclude_columns: Sequence[str] = (), max_batch_rows: int = 65_536) -> None:
        super().__init__()
        self._handler = ServingHandler(model_path, exclude_columns=exclude_columns, max_batch_rows=max_batch_rows)

    def expand(self, batches: PCollection[pa.RecordBatch]) -> PCollection[pa.RecordBatch]:
        return batches | "RunInference" >> RunInference(self._handler)


def predict_in_process(model_path: str, table: pa.Table, exclude_columns: Sequence[str] = ()) -> pa.Table:
    """The same predictions without Beam: load the model here, one call over the whole table."""
    handler = ServingHandler(model_path, exclude_columns=exclude_columns)
    batch = table.combine_chunks().to_batches()
    batch = batch or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    return pa.Table.from_batches(list(handler.run_inference(batch, handler.load_model())))


# --------------------------------------------------------------------------- canary rows


def canary_rows(examples: Examples, split: str, rows: int) -> pa.Table:
    """The first ``rows`` rows of a split (files in name order): real data for canary requests."""
    if split not in examples.splits:
        raise ValueError(f"Examples has no split {split!r}; it has {examples.splits}")
    found = FileSystems.match([fs.join(examples.split_uri(split), "*.parquet")])[0].metadata_list
    tables: list[pa.Table] = []
    taken = 0
    for metadata in sorted(found, key=lambda m: m.path):
        with FileSystems.open(metadata.path) as handle:
            table = pq.read_table(handle)
        tables.append(table.slice(0, rows - taken))
        taken += tables[-1].num_rows
        if taken >= rows:
            break
    if not tables:
        raise ValueError(f"split {split!r} of {examples.uri} has no Parquet files")
    return pa.concat_tables(tables, promote_options="default")


# --------------------------------------------------------------------------- the store


def latest_blessed_model(store: Any, pipeline: str) -> Model | None:
    """The Model that the newest LIVE blessed ModelBlessing of ``pipeline`` names, if it is still LIVE.

    A ModelBlessing records ``model_id`` and ``model_uri`` in its properties
    (the Evaluator writes them) so the model can be found from the blessing.
    """
    blessing = store.latest_artifact("ModelBlessing", pipeline=pipeline, where={"blessed": True})
    if blessing is None or blessing.properties.get("model_id") is None:
        return None
    try:
        record = store.get_artifact(int(blessing.properties["model_id"]))
    except KeyError:
        return None
    if record.state != "LIVE" or not fs.exists(record.uri):
        return None
    return Model(record.uri, record.properties, id=record.id, fingerprint=record.fingerprint, state=record.state)


def json_safe(value: Any) -> Any:
    """NaN and infinities → None, recursively: metrics go into strict JSON and the store."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str, value: Any) -> None:
    with FileSystems.create(path) as handle:
        handle.write(json.dumps(json_safe(value), indent=2, sort_keys=False, allow_nan=False).encode("utf-8"))


def read_json(path: str) -> Any:
    with FileSystems.open(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def touch(path: str) -> None:
    """An empty marker file (BLESSED, NOT_BLESSED, INFRA_BLESSED, ...)."""
    with FileSystems.create(path):
        pass
