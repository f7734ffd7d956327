"""Batch inference over Arrow record batches with Beam's RunInference and our SavedModels.

`SavedModelHandler` is a Beam `ModelHandler` for a TensorFlow SavedModel whose
serving signature (``serving_default`` unless told otherwise) takes raw
features as named tensors of shape [batch] or [batch, k] and returns a dict of
named outputs. Its unit of inference is an Arrow `RecordBatch`: RunInference
groups consecutive record batches with `BatchElements` (adaptive batch size,
counted in rows via ``element_size_fn``, at most ``max_batch_rows``), the
handler concatenates their feature columns, calls the signature once, and
gives back each input record batch with the prediction columns appended.
RunInference loads the model once per worker process and shares it between
threads (`Shared`); ``large_model=True`` shares one copy across the worker's
processes instead.

`PredictRecordBatches(model_path)` (or `PredictRecordBatches(handler)`, any ModelHandler of
record batches) is the PTransform:
PCollection[RecordBatch] → PCollection[RecordBatch] with the input columns plus
prediction columns:

- a single-output signature gives a column ``prediction``; several outputs give
  one column per output, named as the output (``output_columns`` renames);
- outputs of shape [batch] or [batch, 1] become flat columns, [batch, k]
  (e.g. class probabilities) fixed-size lists of k values, higher ranks are
  flattened per row; string outputs become string columns (binary if not UTF-8).

Inputs: every tensor the signature names must be a column (extra columns are
passed through untouched, unused). Columns are cast to the signature's dtype
with a safe cast (a float column fed to an int64 input fails rather than
truncates); string inputs take string or binary columns (numbers are
formatted). A [batch, k] input with k > 1 takes a list column of k values per
row. String and binary columns reach the signature as ``tf.string`` tensors cut
from the Arrow buffers, without a Python object per row. Missing values: dense
signatures cannot express "missing", so nulls are filled per dtype before the
call: 0 for numbers, False for booleans, "" for strings, unless
``fill_values`` gives a value for that feature. Models that must see
missingness should say so in their own serving function (e.g. take a NaN or a
sentinel and handle it).

TensorFlow is imported only when a model is loaded or called.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.ml.inference.base import ModelHandler, RunInference
from apache_beam.pvalue import PCollection

__all__ = ["PredictRecordBatches", "SavedModelHandler", "ServingModel"]

DEFAULT_SIGNATURE = "serving_default"
SINGLE_OUTPUT_COLUMN = "prediction"


@dataclass(frozen=True)
class _InputSpec:
    name: str
    dtype: str  # TensorFlow dtype name: "float32", "int64", "string", "bool", ...
    width: int | None  # None: shape [batch]; k: shape [batch, k]


class ServingModel:
    """A loaded SavedModel's signature and what it expects; keeps the loaded object alive."""

    def __init__(self, loaded: Any, signature_name: str) -> None:
        if signature_name not in loaded.signatures:
            raise KeyError(f"SavedModel has no signature {signature_name!r} (has: {sorted(loaded.signatures)})")
        self.loaded = loaded  # the signature's variables live as long as this object
        self.signature = loaded.signatures[signature_name]
        args, kwargs = self.signature.structured_input_signature
        if args:
            raise ValueError(f"signature {signature_name!r} takes positional inputs; expected named tensors")
        self.inputs = tuple(_input_spec(name, spec) for name, spec in sorted(kwargs.items()))
        self.output_names = tuple(sorted(self.signature.structured_outputs))

    def __call__(self, features: Mapping[str, Any]) -> dict[str, np.ndarray]:
        """Calls the signature on numpy arrays or tensors (as `_feature_tensor` makes them), one per input."""
        import tensorflow as tf

        tensors = {}
        for spec in self.inputs:
            value = features[spec.name]
            tensors[spec.name] = value if isinstance(value, tf.Tensor) else tf.constant(value, dtype=spec.dtype)
        return {name: value.numpy() for name, value in self.signature(**tensors).items()}


def _input_spec(name: str, spec: Any) -> _InputSpec:
    import tensorflow as tf

    if not isinstance(spec, tf.TensorSpec):
        raise TypeError(f"signature input {name!r} is a {type(spec).__name__}; only dense tensors are supported")
    shape = spec.shape.as_list() if spec.shape.rank is not None else None
    if shape is None or len(shape) not in (1, 2) or (len(shape) == 2 and shape[1] is None):
        raise ValueError(f"signature input {name!r} has shape {spec.shape}; expected [batch] or [batch, k]")
    return _InputSpec(name, spec.dtype.name, shape[1] if len(shape) == 2 else None)


_ARROW_TYPES = {
    "float16": pa.float16(),
    "float32": pa.float32(),
    "float64": pa.float64(),
    "int8": pa.int8(),
    "int16": pa.int16(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "uint8": pa.uint8(),
    "uint16": pa.uint16(),
    "uint32": pa.uint32(),
    "uint64": pa.uint64(),
    "bool": pa.bool_(),
}


def _default_fill(dtype: str) -> Any:
    if dtype == "string":
        return ""
    if dtype == "bool":
        return False
    return 0


def _feature_array(column: pa.Array, spec: _InputSpec, fill_value: Any) -> np.ndarray:
    """One column as the numpy array the signature input wants (nulls filled); strings as objects."""
    values = _flat_values(column, spec, fill_value)
    return _shaped(values.to_numpy(zero_copy_only=False), len(column), spec)


def _feature_tensor(columns: Sequence[pa.Array | pa.ChunkedArray], spec: _InputSpec, fill_value: Any) -> Any:
    """The columns of one input (one per record batch, in order) as one tensor for the signature.

    Numbers and booleans go through numpy (no copy where Arrow allows); strings go from
    the Arrow buffers straight into a ``tf.string`` tensor (`_string_tensor`), never
    through one Python object per row.
    """
    import tensorflow as tf

    parts = [_flat_values(column, spec, fill_value) for column in columns]
    rows = sum(len(column) for column in columns)
    if len(parts) > 1 and len({part.type for part in parts}) > 1:  # binary and large_binary
        parts = [part.cast(pa.large_binary()) for part in parts]
    values = parts[0] if len(parts) == 1 else pa.concat_arrays(parts)
    if spec.dtype != "string":
        return tf.constant(_shaped(values.to_numpy(zero_copy_only=False), rows, spec), dtype=spec.dtype)
    tensor = _string_tensor(values)
    return tensor if spec.width is None else tf.reshape(tensor, [rows, spec.width])


def _shaped(values: np.ndarray, rows: int, spec: _InputSpec) -> np.ndarray:
    return values if spec.width is None else values.reshape(rows, spec.width)


def _flat_values(column: pa.Array | pa.ChunkedArray, spec: _InputSpec, fill_value: Any) -> pa.Array:
    """One column's values in row order, of the input's type (strings: binary), nulls filled;
    a list column (k values per row) is flattened after its lengths are checked."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if (spec.width is not None and spec.width > 1) or pa.types.is_nested(column.type):
        if not pa.types.is_nested(column.type):
            raise TypeError(f"input {spec.name!r} wants {spec.width} values per row; column type is {column.type}")
        if column.null_count:
            raise ValueError(f"input {spec.name!r}: a list column may not have null rows")
        lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
        if np.any(lengths != (spec.width or 1)):
            raise ValueError(f"input {spec.name!r}: every row must hold {spec.width or 1} values")
        column = column.flatten()
    return _cast_and_fill(column, spec, fill_value)


def _cast_and_fill(column: pa.Array, spec: _InputSpec, fill_value: Any) -> pa.Array:
    if spec.dtype == "string":
        if pa.types.is_string(column.type):
            column = column.cast(pa.binary())  # the same buffers, no copy
        elif pa.types.is_large_string(column.type):
            column = column.cast(pa.large_binary())
        elif not (pa.types.is_binary(column.type) or pa.types.is_large_binary(column.type)):
            column = pc.cast(pc.cast(column, pa.string()), pa.binary())  # numbers are formatted
    else:
        target = _ARROW_TYPES.get(spec.dtype)
        if target is None:
            raise TypeError(f"input {spec.name!r} has dtype {spec.dtype}, which record batches cannot feed")
        if column.type != target:
            try:
                column = pc.cast(column, target, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
                raise TypeError(f"input {spec.name!r}: cannot cast column of type {column.type} to {spec.dtype}: {error}") from error
    if column.null_count:
        fill = fill_value.encode() if spec.dtype == "string" and isinstance(fill_value, str) else fill_value
        column = column.fill_null(pa.scalar(fill, type=column.type))
    return column


def _string_tensor(values: pa.Array) -> Any:
    """A binary Arrow array without nulls → a [n] ``tf.string`` tensor.

    The data buffer becomes one scalar string and ``tf.strings.substr`` cuts it at
    the array's offsets: no Python object per row. Measured on taxi ×100's two string
    columns (CPU time, best of 7): 10% less than building a numpy object array and
    converting it at 8,192-row batches, 30-50% less at 65,536.
    """
    import tensorflow as tf

    if len(values) == 0:
        return tf.zeros([0], dtype=tf.string)
    large = pa.types.is_large_binary(values.type)
    _, offsets_buffer, data_buffer = values.buffers()
    offsets = np.frombuffer(offsets_buffer, dtype=np.int64 if large else np.int32)
    offsets = offsets[values.offset : values.offset + len(values) + 1]
    first, last = int(offsets[0]), int(offsets[-1])
    blob = data_buffer[first:last].to_pybytes() if data_buffer is not None and last > first else b""
    positions = offsets[:-1] - offsets.dtype.type(first)
    return tf.strings.substr(tf.constant(blob), positions, np.diff(offsets))


def _output_array(values: np.ndarray, name: str) -> pa.Array:
    n = values.shape[0]
    if values.ndim > 1 and int(np.prod(values.shape[1:])) != 1:
        flat = values.reshape(n, -1)
        return pa.FixedSizeListArray.from_arrays(_flat_output(flat.reshape(-1), name), flat.shape[1])
    return _flat_output(values.reshape(n), name)


def _flat_output(values: np.ndarray, name: str) -> pa.Array:
    if values.dtype == object:  # tf.string → bytes
        array = pa.array(values.tolist(), type=pa.binary())
        try:
            return pc.cast(array, pa.string())
        except pa.ArrowInvalid:
            return array
    return pa.array(values)


def _num_rows(batch: pa.RecordBatch) -> int:
    return batch.num_rows


class SavedModelHandler(ModelHandler[pa.RecordBatch, pa.RecordBatch, ServingModel]):
    """RunInference over record batches with a SavedModel's serving signature.

    Each result is the input record batch plus prediction columns. Batching is
    Beam's adaptive `BatchElements`, sized in rows (``min_batch_rows`` to
    ``max_batch_rows``); a record batch is never split.
    """

    def __init__(
        self,
        model_path: str,
        *,
        signature_name: str = DEFAULT_SIGNATURE,
        output_columns: Mapping[str, str] | None = None,
        fill_values: Mapping[str, Any] | None = None,
        min_batch_rows: int = 1,
        max_batch_rows: int = 65_536,
        large_model: bool = False,
    ) -> None:
        super().__init__(
            min_batch_size=min_batch_rows,
            max_batch_size=max_batch_rows,
            element_size_fn=_num_rows,
            large_model=large_model,
        )
        self._model_path = model_path
        self._signature_name = signature_name
        self._output_columns = dict(output_columns or {})
        self._fill_values = dict(fill_values or {})

    def load_model(self) -> ServingModel:
        import tensorflow as tf

        from beam_ml.local_copies import local_copy

        return ServingModel(tf.saved_model.load(local_copy(self._model_path)), self._signature_name)

    def update_model_path(self, model_path: str | None = None) -> None:
        if model_path is not None:
            self._model_path = model_path

    def validate_inference_args(self, inference_args: dict[str, Any] | None) -> None:
        if inference_args:
            raise ValueError(f"SavedModelHandler takes no inference_args, got {sorted(inference_args)}")

    def run_inference(
        self,
        batch: Sequence[pa.RecordBatch],
        model: ServingModel,
        inference_args: dict[str, Any] | None = None,
    ) -> Iterable[pa.RecordBatch]:
        batch = list(batch)
        if not batch:
            # BatchElements emits an empty batch when the first record batch alone
            # exceeds its target size (sizes counted with element_size_fn).
            return []
        features = {}
        for spec in model.inputs:
            fill = self._fill_values.get(spec.name, _default_fill(spec.dtype))
            columns = []
            for record_batch in batch:
                index = record_batch.schema.get_field_index(spec.name)
                if index < 0:
                    raise KeyError(f"the model's input {spec.name!r} is not a column (columns: {record_batch.schema.names})")
                columns.append(record_batch.column(index))
            features[spec.name] = _feature_tensor(columns, spec, fill)
        outputs = model(features)
        names = self._column_names(model.output_names)
        offset = 0
        results = []
        for record_batch in batch:
            stop = offset + record_batch.num_rows
            result = record_batch
            for output_name, column_name in names.items():
                if column_name in record_batch.schema.names:
                    raise ValueError(f"prediction column {column_name!r} would overwrite an input column; rename it with output_columns")
                result = result.append_column(column_name, _output_array(outputs[output_name][offset:stop], output_name))
            results.append(result)
            offset = stop
        return results

    def _column_names(self, output_names: Sequence[str]) -> dict[str, str]:
        unknown = sorted(set(self._output_columns) - set(output_names))
        if unknown:
            raise KeyError(f"output_columns names outputs the signature does not have: {unknown} (has: {list(output_names)})")
        if len(output_names) == 1 and not self._output_columns:
            return {output_names[0]: SINGLE_OUTPUT_COLUMN}
        return {name: self._output_columns.get(name, name) for name in output_names}

    def get_num_bytes(self, batch: Sequence[pa.RecordBatch]) -> int:
        return sum(b.nbytes for b in batch)

    def get_metrics_namespace(self) -> str:
        return "BeamML_SavedModel"


class PredictRecordBatches(beam.PTransform[PCollection[pa.RecordBatch], PCollection[pa.RecordBatch]]):
    """Record batches → the same rows with prediction columns appended (see the module docstring).

    ``model`` is any Beam ``ModelHandler`` of record batches (e.g. a `SavedModelHandler`
    subclass that feeds another kind of signature), or a SavedModel path: then a
    `SavedModelHandler` is built with ``settings`` (its keywords: ``signature_name``,
    ``output_columns``, ``fill_values``, ``min_batch_rows``, ``max_batch_rows``,
    ``large_model``). A handler carries its own settings, so none may be given with one.
    """

    def __init__(self, model: str | ModelHandler[pa.RecordBatch, pa.RecordBatch, Any], **settings: Any) -> None:
        super().__init__()
        if isinstance(model, ModelHandler):
            if settings:
                raise TypeError(f"settings {sorted(settings)} go to the ModelHandler itself, not with one")
            self._handler = model
        else:
            self._handler = SavedModelHandler(model, **settings)

    def expand(self, batches: PCollection[pa.RecordBatch]) -> PCollection[pa.RecordBatch]:
        return batches | "RunInference" >> RunInference(self._handler)
