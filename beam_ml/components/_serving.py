"""How record batches reach a Model's signatures inside a Beam pipeline (and, for checks, without one).

Two kinds of serving signature are fed from the same record batches:

- raw features as named dense tensors (``SavedModelHandler``'s contract): the
  columns are fed as they are;
- one string input of serialized ``tf.Example``s, as
  ``beam_ml.training.export_serving_model`` (our Trainer) and TFX's module
  files (``model.save``/``tf.saved_model.save`` with their own serving
  function) export: the rows are serialized with
  ``beam_ml.training.serialize_examples`` first (a null becomes an absent
  feature) and that column is dropped again from the result.

`ServingHandler` (a Beam ``ModelHandler``) decides per loaded model from its
signature (``_model_io.examples_input``), so components need not know which
kind they were given; they run it with
``beam_ml.transforms.inference.PredictRecordBatches(handler)``, passing any
handler setting (signature, batch sizes, fill values, output names).
`AddTransformedLabel` calls the other signature both export,
``transform_features``.

This module imports Beam, so components import it inside their function
bodies, never at module level: a pipeline file imports every component
module, and a fully cached rerun must not pay Beam's import (seconds).
TensorFlow is imported only when a model is loaded.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import apache_beam as beam
import pyarrow as pa

from beam_ml.components._model_io import examples_input
from beam_ml.transforms.inference import SavedModelHandler, ServingModel


def _with_serialized_examples(batch: pa.RecordBatch, exclude: Sequence[str], name: str) -> pa.RecordBatch:
    """The batch plus a column ``name`` of its rows as serialized tf.Examples (``exclude`` left out)."""
    from beam_ml.training import serialize_examples

    columns = [f.name for f in batch.schema if f.name not in exclude and _fits_tf_example(f.type)]
    serialized = pa.array(serialize_examples(batch, columns) if batch.num_rows else [], type=pa.binary())
    return batch.append_column(name, serialized)


def _fits_tf_example(arrow_type: pa.DataType) -> bool:
    """Whether a column can be a tf.Example feature: one value or a flat list of values per
    row. Nested lists and structs cannot, so no model parsing tf.Examples reads them; they
    are not serialized (and stay in the output rows like every column)."""
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        arrow_type = arrow_type.value_type
    return not pa.types.is_nested(arrow_type)


class ServingHandler(SavedModelHandler):
    """`SavedModelHandler` that also feeds models whose signature parses serialized tf.Examples.

    ``exclude_columns`` are never serialized into the tf.Examples (e.g. the label);
    every other keyword is `SavedModelHandler`'s (``signature_name``, ``max_batch_rows``, ...).
    """

    def __init__(self, model_path: str, *, exclude_columns: Sequence[str] = (), **kwargs: Any) -> None:
        super().__init__(model_path, **kwargs)
        self._exclude = tuple(exclude_columns)

    def run_inference(
        self, batch: Sequence[pa.RecordBatch], model: ServingModel, inference_args: dict[str, Any] | None = None
    ) -> Iterable[pa.RecordBatch]:
        batch = list(batch)
        name = examples_input(model, batch[0].schema.names) if batch else None
        if name is None:
            return super().run_inference(batch, model, inference_args)
        fed = [_with_serialized_examples(b, self._exclude, name) for b in batch]
        results = super().run_inference(fed, model, inference_args)
        return [r.remove_column(r.schema.get_field_index(name)) for r in results]


class AddTransformedLabel(beam.DoFn):
    """Appends the label the model's own ``transform_features`` signature computes from the raw row.

    For labels the preprocessing derives (the taxi example's "tip > 20% of the
    fare"), as TFMA does with a model's preprocessing function.
    """

    def __init__(self, model_path: str, label: str) -> None:
        self._model_path = model_path
        self._label = label

    def setup(self) -> None:
        import tensorflow as tf

        from beam_ml.local_copies import local_copy

        self._transform = tf.saved_model.load(local_copy(self._model_path)).signatures["transform_features"]

    def process(self, batch: pa.RecordBatch):
        import tensorflow as tf

        from beam_ml.training import serialize_examples

        if batch.num_rows == 0:
            return
        transformed = self._transform(examples=tf.constant(serialize_examples(batch)))
        if self._label not in transformed:
            raise KeyError(f"transform_features gives no {self._label!r}; it gives {sorted(transformed)}")
        yield batch.append_column(self._label, pa.array(transformed[self._label].numpy().reshape(-1)))


def predict_in_process(model_path: str, table: pa.Table, exclude_columns: Sequence[str] = ()) -> pa.Table:
    """The same predictions without a Beam pipeline: load the model here, one call over the whole table."""
    handler = ServingHandler(model_path, exclude_columns=exclude_columns)
    batch = table.combine_chunks().to_batches()
    batch = batch or [pa.RecordBatch.from_pylist([], schema=table.schema)]
    return pa.Table.from_batches(list(handler.run_inference(batch, handler.load_model())))
