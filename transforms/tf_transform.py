"""tf.Transform over Arrow record batches: analyze on one split, transform every split.

The data never becomes one Python dict per row. Parquet row groups are read as
Arrow record batches, each flat column is wrapped into the ``large_list`` form
tfx_bsl's TFXIO expects (one value per row; an empty list where the value is
null), and ``tensorflow_transform.beam`` receives ``(record batches,
TensorAdapterConfig)`` and gives record batches back
(``output_record_batches=True``). On taxi ×10 (150k rows, 7 columns, z-scores,
0-1 scaling, two vocabularies) this stage ran 17k rows/s Parquet to Parquet
against 1.7k rows/s for tf.Transform fed the same rows as instance dicts
from memory (DirectRunner, two shared cores).

Values are cast to what a tf.Example holds (int64, float32, bytes) on the way
in, so the transform graph's inputs match the Schema's feature spec and a
model that parses serialized raw tf.Examples at serving time sees exactly
what tf.Transform saw in training.

Which features arrive dense and which sparse follows the Schema: a feature
with a ``shape`` (always present, one value) becomes a dense ``[batch, 1]``
tensor; one without (it may be missing) becomes a ``SparseTensor`` of dense
shape ``[batch, 1]``, which a ``preprocessing_fn`` densifies with a default,
as TFX's taxi example does (``tf.sparse.to_dense``). A list-valued feature
without a fixed length is VarLen: a ``SparseTensor`` of shape ``[batch, None]``.
A nested list becomes a ``RaggedTensor`` with one ragged dimension per level,
and each member of a struct column a ``RaggedTensor`` named by its path
(``c.f1``). Tensor representations written in the Schema
(``tensor_representation_group``) take precedence.
A null in a dense feature without a default fails the read with
``MissingDenseValueError`` naming the feature and split (a schema inferred on
train with ``infer_feature_shape=True`` says "always present" for a column
that may still be missing in eval).

This module imports TensorFlow; the framework imports it only inside the
Transform component.

Not done: tf.Transform's analyzer cache (``tft_beam.analyzer_cache``) is not
wired in. It pays off when the same preprocessing_fn is re-analyzed over
growing spans; our cache works per component execution, so a re-run with
unchanged inputs is already served whole from the metadata store.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import tensorflow_transform as tft
import tensorflow_transform.beam as tft_beam
from apache_beam.pvalue import PBegin, PCollection
from tensorflow_metadata.proto.v0 import schema_pb2
from tensorflow_transform.tf_metadata import dataset_metadata, schema_utils
from tfx_bsl.tfxio import tensor_adapter, tensor_representation_util

from beam_ml.transforms.ingestion import WriteExamples
from beam_ml.transforms.tfxio_layout import (
    as_large_list,
    is_list_like,
    tfxio_value_type,
    to_tfxio_batch,
)

__all__ = [
    "AnalyzeAndTransformSplits",
    "MissingDenseValueError",
    "ReadSplit",
    "TransformResult",
    "dense_required_columns",
    "feature_columns",
    "raw_feature_spec",
    "scalar_output_columns",
    "tensor_adapter_config",
    "tfxio_value_type",
    "to_tfxio_batch",
    "transform_examples",
    "unwrap_scalar_columns",
]

TRANSFORM_FN_DIR = tft.TFTransformOutput.TRANSFORM_FN_DIR
TRANSFORMED_METADATA_DIR = tft.TFTransformOutput.TRANSFORMED_METADATA_DIR
RAW_METADATA_DIR = tft.TFTransformOutput.RAW_METADATA_DIR


# ------------------------------------------------------------- Arrow ↔ TFXIO layout


def unwrap_scalar_columns(batch: pa.RecordBatch, scalar_columns: Iterable[str]) -> pa.RecordBatch:
    """Transformed batch → the flat layout of our Examples.

    The named columns (scalar outputs: exactly one value per row) become flat
    arrays; every other column stays a list column.
    """
    scalars = set(scalar_columns)
    arrays = []
    for name in batch.schema.names:
        column = batch.column(name)
        if name in scalars and (pa.types.is_list(column.type) or pa.types.is_large_list(column.type)):
            lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
            if not np.all(lengths == 1):
                raise ValueError(f"transformed feature {name!r} is declared scalar but a row has "
                                 f"{int(lengths[lengths != 1][0])} values")
            column = pc.list_flatten(column)
        arrays.append(column)
    return pa.RecordBatch.from_arrays(arrays, batch.schema.names)


def feature_columns(schema: schema_pb2.Schema) -> list[str]:
    """The columns that tf.Transform gets: the schema's features, in schema order."""
    return [f.name for f in schema.feature]


def _tensor_representations(schema: schema_pb2.Schema) -> dict[str, Any]:
    representations = tensor_representation_util.GetTensorRepresentationsFromSchema(schema)
    if representations is None:
        representations = tensor_representation_util.InferTensorRepresentationsFromSchema(schema)
    return dict(representations)


def tensor_adapter_config(arrow_schema: pa.Schema, schema: schema_pb2.Schema) -> tensor_adapter.TensorAdapterConfig:
    """TFXIO's config for record batches shaped by ``to_tfxio_batch`` from Parquet of ``arrow_schema``.

    ``arrow_schema`` is the schema of the Examples; every schema feature must be in it.
    A flat or single-level list feature arrives as the Schema says (dense with a shape,
    else a SparseTensor); a nested list as a RaggedTensor with a ragged dimension per
    level; a struct's members as RaggedTensors named by path (``c.f1``), as tfx_bsl
    infers them.
    """
    missing = [name for name in feature_columns(schema) if name not in arrow_schema.names]
    if missing:
        raise ValueError(f"schema features not found in the examples: {missing}")
    fields = [pa.field(name, as_large_list(pa.array([], arrow_schema.field(name).type)).type)
              for name in feature_columns(schema)]
    representations = _tensor_representations(schema)
    for name in feature_columns(schema):
        field_type = arrow_schema.field(name).type
        nested = is_list_like(field_type) and is_list_like(field_type.value_type)
        if nested and representations.get(name, schema_pb2.TensorRepresentation()).WhichOneof("kind") != "ragged_tensor":
            # A nested list is ragged in every dimension: infer_schema gives it value_counts,
            # from which tfx_bsl would infer a flat VarLen feature.
            representation = schema_pb2.TensorRepresentation()
            representation.ragged_tensor.feature_path.step.append(name)
            representations[name] = representation
    return tensor_adapter.TensorAdapterConfig(pa.schema(fields), representations)


def raw_feature_spec(schema: schema_pb2.Schema) -> dict[str, Any]:
    """The ``tf.io`` feature spec of raw examples under ``schema`` (dense where it has a shape)."""
    return schema_utils.schema_as_feature_spec(schema).feature_spec


def scalar_output_columns(metadata: dataset_metadata.DatasetMetadata) -> list[str]:
    """Transformed features that are one value per row (``FixedLenFeature`` of shape ``[]``)."""
    import tensorflow as tf

    spec = schema_utils.schema_as_feature_spec(metadata.schema).feature_spec
    return sorted(name for name, feature in spec.items()
                  if isinstance(feature, tf.io.FixedLenFeature) and list(feature.shape) == [])


# ------------------------------------------------------------------- Beam transforms


def dense_required_columns(schema: schema_pb2.Schema) -> list[str]:
    """Features that must have a value in every row: dense in TFXIO, with no default."""
    return sorted(
        name for name, representation in _tensor_representations(schema).items()
        if representation.WhichOneof("kind") == "dense_tensor"
        and not representation.dense_tensor.HasField("default_value")
    )


class MissingDenseValueError(ValueError):
    """A feature the schema says is always present (it has a ``shape``) is missing in a row."""


class _ToTFXIOBatches(beam.DoFn):
    def __init__(self, columns: list[str], required: list[str], where: str) -> None:
        self._columns = columns
        self._required = required
        self._where = where

    def process(self, table: pa.Table) -> Iterator[pa.RecordBatch]:
        for batch in table.select(self._columns).to_batches():
            if not batch.num_rows:
                continue
            for name in self._required:
                if batch.column(name).null_count:
                    raise MissingDenseValueError(
                        f"feature {name!r} is missing in rows of {self._where}, but the schema gives it a "
                        "shape (always present), so tf.Transform wants it dense. Infer the schema with "
                        "infer_feature_shape=False (missing values then arrive as SparseTensors), drop its "
                        "shape, or give its tensor representation a default_value"
                    )
            yield to_tfxio_batch(batch)


class ReadSplit(beam.PTransform[PBegin, PCollection[pa.RecordBatch]]):
    """``<split dir>/*.parquet`` → record batches in TFXIO's layout, one per row group."""

    def __init__(self, split_uri: str, columns: list[str], required: list[str] = ()) -> None:
        super().__init__()
        self._split_uri = split_uri
        self._pattern = beam.io.filesystems.FileSystems.join(split_uri, "*.parquet")
        self._columns = columns
        self._required = list(required)

    def expand(self, pbegin: PBegin) -> PCollection[pa.RecordBatch]:
        return (
            pbegin
            | "ReadParquet" >> beam.io.ReadFromParquetBatched(self._pattern, columns=self._columns)
            | "ToTFXIO" >> beam.ParDo(_ToTFXIOBatches(self._columns, self._required, self._split_uri))
        )


class TransformResult(NamedTuple):
    transform_fn: PCollection
    splits: dict[str, PCollection[pa.RecordBatch]]  # flat layout, ready for WriteExamples
    metadata: dataset_metadata.DatasetMetadata  # of the transformed data, as known before the run


class AnalyzeAndTransformSplits(
    beam.PTransform[dict[str, PCollection[pa.RecordBatch]], TransformResult]
):
    """Record batches per split (TFXIO layout) → transform_fn analyzed on one split,
    and every split transformed by it (flat layout: scalar outputs unwrapped).

    Must be applied inside ``tft_beam.Context``.
    """

    def __init__(
        self,
        preprocessing_fn: Callable[[dict[str, Any]], dict[str, Any]],
        adapter_config: tensor_adapter.TensorAdapterConfig,
        analyze_split: str = "train",
    ) -> None:
        super().__init__()
        self._preprocessing_fn = preprocessing_fn
        self._config = adapter_config
        self._analyze_split = analyze_split

    def expand(self, splits: dict[str, PCollection[pa.RecordBatch]]) -> TransformResult:
        if self._analyze_split not in splits:
            raise ValueError(f"split to analyze {self._analyze_split!r} is not among {sorted(splits)}")
        transform_fn = (
            (splits[self._analyze_split], self._config)
            | "Analyze" >> tft_beam.AnalyzeDataset(self._preprocessing_fn)
        )
        transformed: dict[str, PCollection[pa.RecordBatch]] = {}
        metadata = None
        for name, batches in splits.items():
            output, output_metadata = (
                ((batches, self._config), transform_fn)
                | f"Transform[{name}]" >> tft_beam.TransformDataset(output_record_batches=True)
            )
            metadata = output_metadata.dataset_metadata
            scalars = scalar_output_columns(metadata)
            transformed[name] = output | f"Flat[{name}]" >> beam.Map(
                lambda batch_and_passthrough, scalars=scalars: unwrap_scalar_columns(batch_and_passthrough[0], scalars)
            )
        assert metadata is not None
        return TransformResult(transform_fn, transformed, metadata)


def transform_examples(
    pipeline: beam.Pipeline,
    *,
    split_uris: Mapping[str, str],
    arrow_schema: pa.Schema,
    schema: schema_pb2.Schema,
    preprocessing_fn: Callable[[dict[str, Any]], dict[str, Any]],
    transform_output_dir: str,
    transformed_examples_uri: str,
    temp_dir: str,
    analyze_split: str = "train",
) -> None:
    """Builds (does not run) the whole stage in ``pipeline``: read Parquet splits, analyze,
    transform, write the tf.Transform output directory and the transformed Parquet splits.

    The output directory is what ``tft.TFTransformOutput`` reads: ``transform_fn/``,
    ``transformed_metadata/`` and ``metadata/`` (the raw schema, as TFX writes it).
    """
    config = tensor_adapter_config(arrow_schema, schema)
    columns = feature_columns(schema)
    required = dense_required_columns(schema)
    with tft_beam.Context(temp_dir=temp_dir):
        raw = {name: pipeline | f"Read[{name}]" >> ReadSplit(uri, columns, required) for name, uri in split_uris.items()}
        result = raw | "AnalyzeAndTransform" >> AnalyzeAndTransformSplits(preprocessing_fn, config, analyze_split)
        _ = result.transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(transform_output_dir)
        _ = dataset_metadata.DatasetMetadata(schema) | "WriteRawMetadata" >> tft_beam.WriteMetadata(
            beam.io.filesystems.FileSystems.join(transform_output_dir, RAW_METADATA_DIR), pipeline
        )
        _ = result.splits | "WriteExamples" >> WriteExamples(transformed_examples_uri)
