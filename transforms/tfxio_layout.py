"""Arrow record batches in TFXIO's layout: what tf.Transform reads and tf.Examples hold.

Every column becomes a ``large_list`` of int64, float32 or large_binary (one value
per row for a flat column, ``[]`` for a null; nested lists and struct members keep
their structure with every level a ``large_list``).

Only pyarrow and numpy: ``beam_ml.training.serialize_examples`` uses this in
processes that serve a model (InfraValidator's fresh process) and must not pay
for importing tf.Transform and Beam; ``beam_ml.transforms.tf_transform`` uses it
to feed tf.Transform.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["as_large_list", "is_list_like", "tfxio_value_type", "to_tfxio_batch"]


def tfxio_value_type(value_type: pa.DataType) -> pa.DataType:
    """The value type a column gets on its way to tf.Transform: what a tf.Example can hold.

    Integers → int64, floats → float32, strings → large_binary, so the transform graph's
    inputs have the dtypes of the Schema's feature spec (INT, FLOAT, BYTES) and serving
    from parsed tf.Examples matches training exactly.
    """
    if pa.types.is_integer(value_type) or pa.types.is_boolean(value_type):
        return pa.int64()
    if pa.types.is_floating(value_type):
        return pa.float32()
    if pa.types.is_string(value_type) or pa.types.is_large_string(value_type) or pa.types.is_binary(value_type):
        return pa.large_binary()
    return value_type


def is_list_like(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def as_large_list(column: pa.Array) -> pa.Array:
    """A column → TFXIO's layout: a flat column becomes a ``large_list`` with one value per
    row and ``[]`` for a null; a list column keeps its lists (nested ones too) with every
    level a ``large_list``; struct values get every member in this layout."""
    if is_list_like(column.type):
        if not (is_list_like(column.type.value_type) or pa.types.is_struct(column.type.value_type)):
            return column.cast(pa.large_list(tfxio_value_type(column.type.value_type)))
        return _large_lists(column)
    if pa.types.is_struct(column.type):
        column = _tfxio_structs(column)
    else:
        column = column.cast(tfxio_value_type(column.type))
    if column.null_count == 0:
        offsets = pa.array(np.arange(len(column) + 1, dtype=np.int64))
        return pa.LargeListArray.from_arrays(offsets, column)
    lengths = column.is_valid().to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]))
    return pa.LargeListArray.from_arrays(offsets, pc.drop_null(column))


def _large_lists(column: pa.Array) -> pa.Array:
    """A (nested) list column with every level a large_list and TFXIO's value types."""
    values = pc.list_flatten(column)
    if is_list_like(values.type):
        values = _large_lists(values)
    elif pa.types.is_struct(values.type):
        values = _tfxio_structs(values)
    else:
        values = values.cast(tfxio_value_type(values.type))
    lengths = pc.list_value_length(column).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
    offsets = pa.array(np.concatenate([[0], np.cumsum(lengths)]))
    mask = column.is_null() if column.null_count else None
    return pa.LargeListArray.from_arrays(offsets, values, mask=mask)


def _tfxio_structs(structs: pa.StructArray) -> pa.StructArray:
    """Struct values with each member in TFXIO's layout (a list per struct value), so a
    member reaches tf.Transform as a RaggedTensor along its path (e.g. ``c.f1``)."""
    members = [as_large_list(structs.field(i)) for i in range(structs.type.num_fields)]
    names = [member.name for member in structs.type]
    mask = structs.is_null() if structs.null_count else None
    return pa.StructArray.from_arrays(members, names=names, mask=mask)


def to_tfxio_batch(batch: pa.RecordBatch, columns: Iterable[str] | None = None) -> pa.RecordBatch:
    """The batch (or the named columns of it) in TFXIO's layout: every column a ``large_list``
    of int64, float32 or large_binary (``tfxio_value_type``); a null becomes ``[]``."""
    names = list(columns) if columns is not None else batch.schema.names
    return pa.RecordBatch.from_arrays([as_large_list(batch.column(n)) for n in names], names)
