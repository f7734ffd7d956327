"""The settings of the data transforms, as frozen dataclasses that import neither Beam nor TensorFlow.

A component takes a transform's whole options object as one parameter
(``ExampleGen(read_options=...)``, ``StatisticsGen(stats_options=...)``,
``Evaluator(metrics_config=...)``), so no setting of the transform can be
dropped on the way; a pipeline file imports the component modules, and with
them these classes, so they must stay light: a fully cached rerun does not pay
for Beam. The transforms (``ingestion``, ``statistics``, ``metrics``) take the
same objects and re-export them.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from tensorflow_metadata.proto.v0 import schema_pb2

if TYPE_CHECKING:
    import apache_beam as beam

    from beam_ml.transforms.metrics import MetricsCombineFn
    from beam_ml.transforms.statistics import StatsGenerator

__all__ = ["FORMATS", "MetricsConfig", "OutputKind", "ReadOptions", "StatsOptions", "Task"]

FORMATS = ("csv", "parquet", "tfrecord", "avro", "jsonl")
_SCHEMA_KINDS = {schema_pb2.INT: "int", schema_pb2.FLOAT: "float", schema_pb2.BYTES: "string"}
Task = Literal["binary", "multiclass", "regression"]
OutputKind = Literal["probabilities", "logits"]


@dataclasses.dataclass(frozen=True)
class ReadOptions:
    """How to read input files.

    format: one of FORMATS; stated, never guessed, so a wrong file fails loudly.
    schema: declares column types (INT→int64, FLOAT→float64, BYTES→string); columns it
      does not name are inferred.
    column_names: CSV only: the files have no header line; these are the columns.
    null_values: CSV only: the field texts that mean "missing" (an empty field by
      default, as TFDV's CSV decoder; ("", "NA") for R-style files).
    newlines_in_values: CSV only: whether quoted values may hold newlines. None detects
      it per file (quote parity per line), which costs one scan of a large file while
      planning. A file with newlines in values is read as one work item, because a byte
      offset cannot tell whether it is inside a quoted value.
    split_bytes: the target size of one work item (a byte range of an uncompressed CSV or
      JSON Lines file, a run of Parquet row groups). Compressed, Avro and TFRecord files
      are one work item each. A reader holds one item's bytes and rows at a time, so
      this bounds its memory: 16 MiB keeps the statistics of taxi ×100 (183 MiB) at
      the peak RSS of ×10 (18 MiB, one item), which 64 MiB did not.
    infer_bytes: how much of each file's head is sampled to infer column types.
    batch_rows: rows per record batch for record formats (Parquet, Avro, TFRecord);
      CSV and JSON Lines batches follow block_bytes (grown for a row longer than it).
    max_mixed_fraction: CSV only: the fraction of a column's non-empty values that may
      fail to parse as numbers with the column still typed numeric (those rows are
      rejected); above it the column is string.
    """

    format: str
    schema: schema_pb2.Schema | None = dataclasses.field(default=None, hash=False)
    column_names: tuple[str, ...] | None = None
    delimiter: str = ","
    null_values: tuple[str, ...] = ("",)
    newlines_in_values: bool | None = None
    split_bytes: int = 16 << 20
    infer_bytes: int = 1 << 20
    block_bytes: int = 4 << 20
    batch_rows: int = 8192
    max_mixed_fraction: float = 0.01

    def __post_init__(self) -> None:
        if self.format not in FORMATS:
            raise ValueError(f"format must be one of {FORMATS}, got {self.format!r}")
        if self.column_names is not None:
            object.__setattr__(self, "column_names", tuple(self.column_names))
        object.__setattr__(self, "null_values", tuple(self.null_values))

    def declared_kinds(self) -> dict[str, str]:
        """The kinds the schema declares, by column name."""
        if self.schema is None:
            return {}
        return {f.name: _SCHEMA_KINDS[f.type] for f in self.schema.feature if f.type in _SCHEMA_KINDS}


@dataclass(frozen=True)
class StatsOptions:
    """What to compute; frozen so a pipeline's settings cannot drift after it is built.

    Defaults are TFDV 1.16.1's. `seed` makes sampling reproducible;
    `epsilon` is the quantiles sketch's rank error (0.01 = 1% of the count).
    Thresholds drop top values seen fewer times (or with less weight).
    `generators` are the user's own `StatsGenerator`s (``beam_ml.transforms.statistics``),
    run in the same pass as the built-in statistics and merged into the same proto.
    """

    sample_rate: float = 1.0
    seed: int = 0
    num_top_values: int = 20
    num_rank_histogram_buckets: int = 1000
    num_values_histogram_buckets: int = 10
    num_histogram_buckets: int = 10
    num_quantiles_histogram_buckets: int = 10
    epsilon: float = 0.01
    frequency_threshold: int = 1
    weighted_frequency_threshold: float = 1.0
    weight_feature: str | None = None
    slice_features: tuple[str, ...] = ()
    schema: schema_pb2.Schema | None = field(default=None, hash=False)
    generators: tuple[StatsGenerator, ...] = ()

    def __post_init__(self) -> None:
        if not 0.0 < self.sample_rate <= 1.0:
            raise ValueError(f"sample_rate must be in (0, 1], got {self.sample_rate}")
        counts = {
            "num_top_values": self.num_top_values,
            "num_rank_histogram_buckets": self.num_rank_histogram_buckets,
            "num_values_histogram_buckets": self.num_values_histogram_buckets,
            "num_histogram_buckets": self.num_histogram_buckets,
            "num_quantiles_histogram_buckets": self.num_quantiles_histogram_buckets,
        }
        for name, value in counts.items():
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}")
        if not 0.0 < self.epsilon < 1.0:
            raise ValueError(f"epsilon must be in (0, 1), got {self.epsilon}")
        # A list would make the options unhashable and mutable behind our back.
        object.__setattr__(self, "slice_features", tuple(self.slice_features))
        object.__setattr__(self, "generators", tuple(self.generators))
        if self.generators:  # only then: the statistics module imports Beam
            from beam_ml.transforms.statistics import StatsGenerator

            for generator in self.generators:
                if not isinstance(generator, StatsGenerator):
                    raise TypeError(
                        f"generators must be StatsGenerator instances (beam_ml.transforms.statistics), "
                        f"got {type(generator).__name__}"
                    )

    def with_schema(self, schema: schema_pb2.Schema | None) -> StatsOptions:
        """A copy that reads the schema's claims as TFDV's StatsOptions.schema does: an INT or
        FLOAT feature it marks categorical gets string statistics (unique, top values), a
        feature with an image_domain is reported as BYTES (sizes, no top values)."""
        return dataclasses.replace(self, schema=schema)

    @functools.cached_property
    def categorical_paths(self) -> frozenset[tuple[str, ...]]:
        """Paths of the numeric features the schema marks categorical (TFDV's is_categorical_feature)."""
        return frozenset(path for path, feature in _schema_leaves(self.schema) if _is_categorical_numeric(feature))

    @functools.cached_property
    def bytes_paths(self) -> frozenset[tuple[str, ...]]:
        """Paths of the features the schema declares raw bytes (an image_domain, as TFDV)."""
        return frozenset(path for path, feature in _schema_leaves(self.schema)
                         if feature.WhichOneof("domain_info") == "image_domain")

    def with_sampling(self, sample_rate: float, seed: int = 0) -> StatsOptions:
        """A copy that summarises a reproducible Bernoulli sample of the rows."""
        return dataclasses.replace(self, sample_rate=sample_rate, seed=seed)

    def with_weight_feature(self, weight_feature: str | None) -> StatsOptions:
        """A copy that also computes weighted statistics using this column as example weight."""
        return dataclasses.replace(self, weight_feature=weight_feature)

    def with_slice_features(self, *slice_features: str) -> StatsOptions:
        """A copy that also computes statistics per combination of these features' values."""
        return dataclasses.replace(self, slice_features=slice_features)

    def with_generators(self, *generators: StatsGenerator) -> StatsOptions:
        """A copy that also runs these statistics generators."""
        return dataclasses.replace(self, generators=generators)


def _schema_leaves(schema: schema_pb2.Schema | None, prefix: tuple[str, ...] = ()):
    """(path, feature) of every feature of a schema, struct members by their path."""
    if schema is None:
        return
    for feature in schema.feature:
        path = (*prefix, feature.name)
        yield path, feature
        if feature.HasField("struct_domain"):
            yield from _schema_leaves(feature.struct_domain, path)


def _is_categorical_numeric(feature: schema_pb2.Feature) -> bool:
    if feature.type == schema_pb2.INT:
        return (feature.HasField("int_domain") and feature.int_domain.is_categorical) or feature.WhichOneof(
            "domain_info"
        ) in ("bool_domain", "natural_language_domain")
    if feature.type == schema_pb2.FLOAT:
        return feature.HasField("float_domain") and feature.float_domain.is_categorical
    return False


@dataclass(frozen=True)
class MetricsConfig:
    """Which columns hold labels, predictions and weights; which slices; which metrics.

    `slices` lists feature-name tuples; ``()`` is the overall slice
    ("Overall"); ``("payment_type",)`` gives one slice per value
    ("payment_type=Cash"); ``("company", "payment_type")`` one per
    combination ("company=Flash,payment_type=Cash", names sorted).
    """

    task: Task
    label_column: str = "label"
    prediction_column: str = "prediction"
    weight_column: str | None = None
    slices: tuple[tuple[str, ...], ...] = ((),)
    num_thresholds: int = 10_000
    decision_threshold: float = 0.5
    #: "logits": predictions are turned into probabilities (sigmoid / softmax) first.
    output_kind: OutputKind = "probabilities"

    def __post_init__(self) -> None:
        if self.task not in ("binary", "multiclass", "regression"):
            raise ValueError(f"task must be 'binary', 'multiclass' or 'regression', got {self.task!r}")
        if self.output_kind not in ("probabilities", "logits"):
            raise ValueError(f"output_kind must be 'probabilities' or 'logits', got {self.output_kind!r}")
        if self.output_kind == "logits" and self.task == "regression":
            raise ValueError("output_kind='logits' is for classification; a regression model outputs values")
        normalised = tuple(tuple(sorted((s,) if isinstance(s, str) else s)) for s in self.slices)
        object.__setattr__(self, "slices", tuple(dict.fromkeys(normalised)))

    def with_slices(self, *slices: str | Sequence[str]) -> MetricsConfig:
        """A copy computing Overall plus these slices (a name or a tuple of names each)."""
        return dataclasses.replace(self, slices=((), *(((s,) if isinstance(s, str) else tuple(s)) for s in slices)))

    def with_weight_column(self, weight_column: str | None) -> MetricsConfig:
        return dataclasses.replace(self, weight_column=weight_column)

    def metrics(self) -> tuple[beam.CombineFn, ...]:
        """The metric CombineFns for this task."""
        from beam_ml.transforms.metrics import (
            AUCCurves,
            Calibration,
            ConfusionAtThreshold,
            ExampleCount,
            LogLoss,
            RegressionErrors,
        )

        if self.task == "regression":
            return (ExampleCount(), RegressionErrors())
        classification = (
            ExampleCount(),
            ConfusionAtThreshold(self.decision_threshold),
            AUCCurves(self.num_thresholds),
            LogLoss(),
        )
        return (*classification, Calibration()) if self.task == "binary" else classification

    def combine_fn(self) -> MetricsCombineFn:
        from beam_ml.transforms.metrics import MetricsCombineFn

        return MetricsCombineFn(self.metrics())
