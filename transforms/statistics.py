"""Dataset statistics over Arrow record batches, with TFDV 1.16.1's semantics.

`GenerateStatistics` turns a PCollection of `pa.RecordBatch` into one
tensorflow_metadata `DatasetFeatureStatisticsList`, and
`generate_statistics_in_memory` does the same without Beam. Both run the same
`StatisticsCombineFn`, which reads every batch once and feeds all features'
accumulators from it: exact counts and moments come from vectorised
pyarrow/numpy, approximate ones from mergeable `tfx_bsl.sketches` (KMV for
distinct counts, Misra-Gries for top values, a quantiles sketch for
median, quantiles and histograms), so the result does not depend on how Beam
splits and merges the work.

Each kind of statistics is a `StatsGenerator` (Beam's CombineFn contract over
`StatsBatch`es, as TFDV's CombinerStatsGenerator): presence, numeric, string and
bytes statistics are the built-in ones; users add their own through
`StatsOptions.generators`, run in the same pass and merged by feature path
into the same proto.

The output copies TFDV's conventions so TFDV users can read it: features are
identified by `path`, listed in the order they are first seen; a flat column
counts as one value per non-null row; std_dev is the population standard
deviation; float columns are summarised as given (TFDV's own CSV reader
produces float32, so feed float32 to reproduce its numbers bit for bit).

This module never imports TensorFlow: a data-only pipeline starts fast.
"""

from __future__ import annotations

import abc
import math
import pickle
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam.pvalue import PCollection
from tensorflow_metadata.proto.v0 import statistics_pb2
from tfx_bsl import sketches

from beam_ml.transforms.options import StatsOptions
from beam_ml.transforms.threads import map_in_threads

__all__ = [
    "ALL_EXAMPLES_SLICE",
    "BytesStatsGenerator",
    "FeatureLevel",
    "FeatureValues",
    "GenerateStatistics",
    "NumericStatsGenerator",
    "PresenceStatsGenerator",
    "StatisticsCombineFn",
    "StatsBatch",
    "StatsGenerator",
    "StatsOptions",
    "StringStatsGenerator",
    "generate_statistics_in_memory",
    "stats_batch",
]

_FeatureType = statistics_pb2.FeatureNameStatistics.Type
_INT = statistics_pb2.FeatureNameStatistics.INT
_FLOAT = statistics_pb2.FeatureNameStatistics.FLOAT
_STRING = statistics_pb2.FeatureNameStatistics.STRING
_BYTES = statistics_pb2.FeatureNameStatistics.BYTES
_STRUCT = statistics_pb2.FeatureNameStatistics.STRUCT

# TFDV's names and sketch sizes, kept so our output reads like theirs.
ALL_EXAMPLES_SLICE = "All Examples"
_MISRA_GRIES_BUCKETS = 1024
_KMV_BUCKETS = 16384
_NON_UTF8_PLACEHOLDER = "__BYTES_VALUE__"
_LARGE_BYTES_PLACEHOLDER = "__LARGE_BYTES__"
_LARGE_STRING_THRESHOLD = 1024
# The standard histogram is rebuilt from this many quantile buckets per
# quantiles-histogram bucket; the median comes from the same quantiles.
_QUANTILES_PER_HISTOGRAM_BUCKET = 100
# Quantiles sketch capacity: TFDV's value, large enough for any data set.
_MAX_SKETCH_ELEMENTS = 1 << 32
_ROW_INDEX = "__beam_ml_row__"


# ---------------------------------------------------------------------------
# Reading a column
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FeatureLevel:
    """One nesting level of a feature: the value count of each present element (a row at
    the top level, a list or struct element below) and the batch row it belongs to."""

    num_values: np.ndarray
    rows: np.ndarray


@dataclass(frozen=True)
class FeatureValues:
    """One feature of a batch, reduced to what every statistic needs (what a
    `StatsGenerator` reads, in `StatsBatch.features`).

    `levels` holds, per nesting level (TFDV's presence and valency), the value
    counts of the present elements; a flat column is one level of single
    values. `innermost` holds, for a nested feature, each present top element's
    count of innermost values (TFDV's value counts of a nested feature).
    `values` holds the non-null leaf values and `value_rows` the batch row each
    came from (to look up weights). `present` marks the top elements present.
    `tot_num_values` counts the feature's values, null list elements included
    (TFDV's tot_num_values).
    """

    feature_type: _FeatureType | None
    present: np.ndarray
    levels: tuple[FeatureLevel, ...]
    innermost: np.ndarray | None
    values: pa.Array
    value_rows: np.ndarray
    tot_num_values: int

    @property
    def num_values(self) -> np.ndarray:
        return self.levels[0].num_values


def _feature_type(arrow_type: pa.DataType, name: str) -> _FeatureType | None:
    """Maps a leaf Arrow type to TFDV's feature type; None when the column is all-null typed."""
    if pa.types.is_null(arrow_type):
        return None
    if pa.types.is_integer(arrow_type):
        return _INT
    if pa.types.is_floating(arrow_type):
        return _FLOAT
    if (
        pa.types.is_string(arrow_type)
        or pa.types.is_large_string(arrow_type)
        or pa.types.is_binary(arrow_type)
        or pa.types.is_large_binary(arrow_type)
    ):
        return _STRING
    if pa.types.is_struct(arrow_type):
        return _STRUCT
    raise TypeError(
        f"feature {name!r} has Arrow type {arrow_type}; statistics support integer, "
        "floating point, string, binary and struct values, flat or in (nested) lists"
    )


def _is_list(arrow_type: pa.DataType) -> bool:
    """Multi-valued features arrive as list, large_list or fixed_size_list columns."""
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def _decoded(array: pa.Array) -> pa.Array:
    return array.dictionary_decode() if pa.types.is_dictionary(array.type) else array


def _view_column(array: pa.Array, name: str, rows: np.ndarray | None = None) -> FeatureValues:
    """Splits a column into its nesting levels, innermost counts and leaf values.

    `rows` are the batch rows of the array's elements (a struct field's elements
    belong to their struct's rows); by default the array is a batch column.
    Each list level is flattened in turn; a non-list array at the top counts
    as one level of one value per present element, as TFDV counts a flat
    column (and wraps a flat struct).
    """
    array = _decoded(array)
    if rows is None:
        rows = np.arange(len(array), dtype=np.int64)
    present = array.is_valid().to_numpy(zero_copy_only=False)
    if not _is_list(array.type):
        num_present = int(present.sum())
        level = FeatureLevel(np.ones(num_present, dtype=np.int64), rows[present])
        leaf = array.filter(pa.array(present)) if array.null_count else array
        return FeatureValues(_feature_type(array.type, name), present, (level,), None, leaf, rows[present], num_present)
    levels = []
    top = np.arange(len(array), dtype=np.int64)  # each element's top element
    num_top = len(array)
    while _is_list(array.type):
        valid = array.is_valid().to_numpy(zero_copy_only=False)
        lengths = pc.list_value_length(array).fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        levels.append(FeatureLevel(lengths[valid], rows[valid]))
        parents = pc.list_parent_indices(array).to_numpy(zero_copy_only=False)
        # A null slot may still span values; list_flatten skips them, so their parents go too.
        parents = parents[valid[parents]]
        array, rows, top = _decoded(pc.list_flatten(array)), rows[parents], top[parents]
    innermost = None
    if len(levels) > 1:
        # Innermost values (nulls included, as TFDV counts them) per present top element.
        innermost = np.bincount(top, minlength=num_top)[present].astype(np.int64)
    if array.null_count:
        valid = array.is_valid()
        rows = rows[valid.to_numpy(zero_copy_only=False)]
        array = array.filter(valid)
    return FeatureValues(_feature_type(array.type, name), present, tuple(levels), innermost, array, rows,
                         int(levels[-1].num_values.sum()))


def _enumerate_features(
    path: tuple[str, ...], array: pa.Array, rows: np.ndarray | None = None
) -> Iterator[tuple[tuple[str, ...], FeatureValues]]:
    """A column's features: itself, and for struct values each field (recursively) by path.

    A struct field's elements are the struct values, each belonging to its row,
    so the field's statistics count per struct value (TFDV's child features).
    """
    view = _view_column(array, ".".join(path), rows)
    yield path, view
    if view.feature_type == _STRUCT:
        structs = view.values  # the present struct values, every list level flattened
        for index, field in enumerate(structs.type):
            yield from _enumerate_features((*path, field.name), structs.field(index), view.value_rows)


def _example_weights(batch: pa.RecordBatch, weight_feature: str) -> np.ndarray:
    """One float64 weight per row; a weight is mandatory because every example must count."""
    index = batch.schema.get_field_index(weight_feature)
    if index < 0:
        raise ValueError(f"weight feature {weight_feature!r} is not a column of the batch")
    view = _view_column(batch.column(index), weight_feature)
    if view.feature_type not in (_INT, _FLOAT) or not view.present.all() or (view.num_values != 1).any():
        raise ValueError(
            f"weight feature {weight_feature!r} must be numeric with exactly one value in every row"
        )
    return view.values.to_numpy(zero_copy_only=False).astype(np.float64)


# ---------------------------------------------------------------------------
# Partial statistics: each has add(...) for a batch and merge(other)
# ---------------------------------------------------------------------------


def _new_quantiles_sketch(options: StatsOptions) -> sketches.QuantilesSketch:
    """One sketch per distribution, with TFDV's error bound, so our quantiles carry the same guarantee."""
    return sketches.QuantilesSketch(options.epsilon, _MAX_SKETCH_ELEMENTS, 1)


@dataclass
class _Moments:
    """Weight, mean and sum of squared deviations (M2), merged with Chan et al.'s formula.

    Keeping M2 per part instead of sums of squares avoids catastrophic
    cancellation, so merged means and variances stay accurate to ~1e-15.
    """

    weight: float = 0.0
    mean: float = 0.0
    m2: float = 0.0

    # Infinite values make the moments NaN, as in TFDV; that is a result, not a warning.
    @np.errstate(invalid="ignore")
    def add(self, values: np.ndarray, weights: np.ndarray | None = None) -> None:
        if weights is None:
            weight = float(values.size)
            mean = float(np.mean(values)) if values.size else 0.0
            m2 = float(np.sum(np.square(values - mean)))
        else:
            weight = float(np.sum(weights))
            if weight == 0.0:
                return
            mean = float(np.sum(weights * values) / weight)
            m2 = float(np.sum(weights * np.square(values - mean)))
        self._combine(weight, mean, m2)

    def merge(self, other: _Moments) -> None:
        self._combine(other.weight, other.mean, other.m2)

    def _combine(self, weight: float, mean: float, m2: float) -> None:
        if weight == 0.0:
            return
        if self.weight == 0.0:
            self.weight, self.mean, self.m2 = weight, mean, m2
            return
        total = self.weight + weight
        if not (math.isfinite(self.mean) and math.isfinite(mean)):
            # An infinite value: the mean is that infinity (NaN with both signs), as the
            # sum over the count would give, and no spread; the same in any merge order.
            self.weight, self.mean, self.m2 = total, self.mean + mean, math.nan
            return
        delta = mean - self.mean
        self.mean += delta * (weight / total)
        self.m2 += m2 + delta * delta * (self.weight * weight / total)
        self.weight = total

    @property
    def std_dev(self) -> float:
        """Population standard deviation, as TFDV reports it."""
        if self.weight == 0.0:
            return 0.0
        return math.sqrt(max(0.0, self.m2 / self.weight))


@dataclass
class _Presence:
    """How many rows (or, below the top nesting level, elements) have the feature and how
    many values they carry: TFDV's common stats, or one level's presence and valency."""

    num_values_sketch: sketches.QuantilesSketch
    num_non_missing: int = 0
    min_num_values: int = np.iinfo(np.int64).max
    max_num_values: int = 0
    tot_num_values: int = 0
    weighted_num_non_missing: float = 0.0
    weighted_tot_num_values: float = 0.0

    def add(self, counts: np.ndarray, rows: np.ndarray, weights: np.ndarray | None) -> None:
        """`counts`: the value counts of the present elements; `rows`: their batch rows."""
        self.num_non_missing += int(counts.size)
        if counts.size:
            self.min_num_values = min(self.min_num_values, int(counts.min()))
            self.max_num_values = max(self.max_num_values, int(counts.max()))
            self.tot_num_values += int(counts.sum())
            # Value counts repeat a lot: add each distinct count once, weighted by frequency.
            distinct, frequency = np.unique(counts, return_counts=True)
            self.num_values_sketch.AddValues(pa.array(distinct), pa.array(frequency.astype(np.float64)))
        if weights is not None:
            present_weights = weights[rows]
            self.weighted_num_non_missing += float(np.sum(present_weights))
            self.weighted_tot_num_values += float(np.sum(counts * present_weights))

    def merge(self, other: _Presence) -> None:
        self.num_non_missing += other.num_non_missing
        self.min_num_values = min(self.min_num_values, other.min_num_values)
        self.max_num_values = max(self.max_num_values, other.max_num_values)
        self.tot_num_values += other.tot_num_values
        self.weighted_num_non_missing += other.weighted_num_non_missing
        self.weighted_tot_num_values += other.weighted_tot_num_values
        self.num_values_sketch.Merge(other.num_values_sketch)


@dataclass
class _Numeric:
    """Value statistics of an INT or FLOAT feature; NaNs are counted, then left out of everything else."""

    quantiles: sketches.QuantilesSketch
    weighted_quantiles: sketches.QuantilesSketch | None
    moments: _Moments = field(default_factory=_Moments)
    weighted_moments: _Moments = field(default_factory=_Moments)
    num_nan: int = 0
    num_zeros: int = 0
    min: float = math.inf
    max: float = -math.inf
    finite_min: float = math.inf
    finite_max: float = -math.inf
    num_pos_inf: int = 0
    weighted_num_pos_inf: float = 0.0

    def add(self, view: FeatureValues, weights: np.ndarray | None) -> None:
        values = view.values.to_numpy(zero_copy_only=False)
        sketch_values = view.values
        not_nan = None
        if values.dtype.kind == "f":
            nan = np.isnan(values)
            if nan.any():
                self.num_nan += int(nan.sum())
                not_nan = ~nan
                values = values[not_nan]
                sketch_values = pa.array(values)
        if not values.size:
            return
        as_double = values.astype(np.float64)
        self._add_extremes(as_double)
        self.num_zeros += int(values.size - np.count_nonzero(values))
        pos_inf = np.isposinf(as_double)
        self.num_pos_inf += int(pos_inf.sum())
        self.moments.add(as_double)
        self.quantiles.AddValues(sketch_values)
        if weights is not None:
            value_weights = weights[view.value_rows]
            if not_nan is not None:
                value_weights = value_weights[not_nan]
            self.weighted_moments.add(as_double, value_weights)
            self.weighted_quantiles.AddValues(sketch_values, pa.array(value_weights))
            self.weighted_num_pos_inf += float(np.sum(value_weights[pos_inf]))

    def _add_extremes(self, values: np.ndarray) -> None:
        """Tracks min/max and, separately, the finite ones the standard histogram spans."""
        low, high = float(values.min()), float(values.max())
        self.min, self.max = min(self.min, low), max(self.max, high)
        if math.isinf(low) or math.isinf(high):
            finite = values[np.isfinite(values)]
            if not finite.size:
                return
            low, high = float(finite.min()), float(finite.max())
        self.finite_min, self.finite_max = min(self.finite_min, low), max(self.finite_max, high)

    def merge(self, other: _Numeric) -> None:
        self.quantiles.Merge(other.quantiles)
        if self.weighted_quantiles is not None:
            self.weighted_quantiles.Merge(other.weighted_quantiles)
        self.moments.merge(other.moments)
        self.weighted_moments.merge(other.weighted_moments)
        self.num_nan += other.num_nan
        self.num_zeros += other.num_zeros
        self.min, self.max = min(self.min, other.min), max(self.max, other.max)
        self.finite_min = min(self.finite_min, other.finite_min)
        self.finite_max = max(self.finite_max, other.finite_max)
        self.num_pos_inf += other.num_pos_inf
        self.weighted_num_pos_inf += other.weighted_num_pos_inf


def _new_misra_gries(options: StatsOptions) -> sketches.MisraGriesSketch:
    return sketches.MisraGriesSketch(
        num_buckets=max(_MISRA_GRIES_BUCKETS, options.num_top_values, options.num_rank_histogram_buckets),
        invalid_utf8_placeholder=_NON_UTF8_PLACEHOLDER,
        large_string_threshold=_LARGE_STRING_THRESHOLD,
        large_string_placeholder=_LARGE_BYTES_PLACEHOLDER,
    )


@dataclass
class _Strings:
    """Value statistics of a STRING feature: byte lengths, distinct count, frequent values."""

    distinct: sketches.KmvSketch
    top_values: sketches.MisraGriesSketch
    weighted_top_values: sketches.MisraGriesSketch | None
    total_bytes: int = 0

    def add(self, view: FeatureValues, weights: np.ndarray | None) -> None:
        if not len(view.values):
            return
        values = view.values  # numbers too: the sketches render them as TFDV's top values read
        self.total_bytes += _text_bytes(values)
        self.distinct.AddValues(values)
        self.top_values.AddValues(values)
        if weights is not None:
            # TFDV feeds Misra-Gries float32 weights; doing the same keeps counts identical.
            self.weighted_top_values.AddValues(values, pa.array(weights[view.value_rows], pa.float32()))

    def merge(self, other: _Strings) -> None:
        self.total_bytes += other.total_bytes
        self.distinct.Merge(other.distinct)
        self.top_values.Merge(other.top_values)
        if self.weighted_top_values is not None:
            self.weighted_top_values.Merge(other.weighted_top_values)


def _text_bytes(values: pa.Array) -> int:
    """Total length of the values as text: bytes of strings; for a categorical numeric
    feature, the length of Python's str of each number, as TFDV's avg_length counts it."""
    if pa.types.is_integer(values.type):
        return int(pc.sum(pc.binary_length(pc.cast(values, pa.string()))).as_py() or 0)
    if pa.types.is_floating(values.type):
        return sum(len(str(v)) for v in values.to_numpy(zero_copy_only=False).tolist())
    return int(pc.sum(pc.binary_length(values)).as_py() or 0)


@dataclass
class _Bytes:
    """Value statistics of a feature the schema declares raw bytes (an image_domain), as
    TFDV's BytesStatistics: sizes only; such values have no meaningful top values."""

    total_bytes: int = 0
    min_bytes: int = np.iinfo(np.int64).max
    max_bytes: int = -1

    def add(self, view: FeatureValues, weights: np.ndarray | None) -> None:
        if not len(view.values):
            return
        lengths = pc.binary_length(view.values)
        self.total_bytes += int(pc.sum(lengths).as_py())
        self.min_bytes = min(self.min_bytes, int(pc.min(lengths).as_py()))
        self.max_bytes = max(self.max_bytes, int(pc.max(lengths).as_py()))

    def merge(self, other: _Bytes) -> None:
        self.total_bytes += other.total_bytes
        self.min_bytes = min(self.min_bytes, other.min_bytes)
        self.max_bytes = max(self.max_bytes, other.max_bytes)


@dataclass
class _FeaturePresence:
    """Presence and value counts of one feature, and its type once values showed it.

    `deeper` holds the presence and valency of nesting levels below the top one,
    and `innermost` each example's count of innermost values, for nested lists.
    """

    presence: _Presence
    deeper: list[_Presence] = field(default_factory=list)
    innermost: _Presence | None = None
    feature_type: _FeatureType | None = None

    def add(self, view: FeatureValues, weights: np.ndarray | None, options: StatsOptions, name: str) -> None:
        self.feature_type = _settled_type(self.feature_type, view.feature_type, name)
        top = view.levels[0]
        self.presence.add(top.num_values, top.rows, weights)
        if len(view.levels) > 1:
            if not self.deeper:
                self.deeper = [_Presence(_new_quantiles_sketch(options)) for _ in view.levels[1:]]
                self.innermost = _Presence(_new_quantiles_sketch(options))
            elif len(self.deeper) != len(view.levels) - 1:
                raise TypeError(f"feature {name!r} is nested {len(self.deeper) + 1} and {len(view.levels)} levels deep")
            for presence, level in zip(self.deeper, view.levels[1:], strict=True):
                presence.add(level.num_values, level.rows, weights)
            self.innermost.add(view.innermost, top.rows, weights)

    @property
    def leaf_presence(self) -> _Presence:
        """The innermost level's presence: its total is the feature's number of values."""
        return self.deeper[-1] if self.deeper else self.presence

    def merge(self, other: _FeaturePresence, name: str) -> None:
        self.feature_type = _settled_type(self.feature_type, other.feature_type, name)
        self.presence.merge(other.presence)
        if other.deeper and not self.deeper:
            self.deeper, self.innermost = _adopted(other.deeper), _adopted(other.innermost)
        elif other.deeper:
            for mine, theirs in zip(self.deeper, other.deeper, strict=True):
                mine.merge(theirs)
            self.innermost.merge(other.innermost)

    def compact(self) -> None:
        for presence in [self.presence, *self.deeper, *([self.innermost] if self.innermost else [])]:
            presence.num_values_sketch.Compact()


def _settled_type(known: _FeatureType | None, seen: _FeatureType | None, name: str) -> _FeatureType | None:
    """An all-null batch says nothing about the type; two real types must agree."""
    if seen is None or known == seen:
        return known
    if known is None:
        return seen
    raise TypeError(
        f"feature {name!r} has values of type {_FeatureType.Name(known)} and {_FeatureType.Name(seen)}"
    )


_Owned = TypeVar("_Owned")


def _adopted(part: _Owned) -> _Owned:
    """A copy of a part of another accumulator, for the first accumulator to own.

    Beam's merge_accumulators may change only its first accumulator: the runner may
    still hold the others. Sharing a part the first lacks would let later merges,
    compaction and extract_output (which finalises sketches) change the other one
    too, so only what is adopted is copied (a pickle round trip: the sketches
    pickle, and it is faster than copy.deepcopy).
    """
    return pickle.loads(pickle.dumps(part, protocol=pickle.HIGHEST_PROTOCOL))


def _feature_paths(path: tuple[str, ...], arrow_type: pa.DataType) -> Iterator[tuple[str, ...]]:
    """A column's feature paths from its type: itself, then its struct fields' (through lists)."""
    yield path
    while _is_list(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_dictionary(arrow_type):
        arrow_type = arrow_type.value_type
    if pa.types.is_struct(arrow_type):
        for child in arrow_type:
            yield from _feature_paths((*path, child.name), child.type)


# ---------------------------------------------------------------------------
# Statistics generators: the built-in ones and the base class users extend
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class StatsBatch:
    """What each generator is given per batch: the rows (sampled, and one slice's when
    slicing), their example weights (None without a weight feature) and every feature of
    the batch read once, struct members by path, in the batch's column order."""

    record_batch: pa.RecordBatch
    weights: np.ndarray | None
    features: Mapping[tuple[str, ...], FeatureValues]

    @property
    def num_rows(self) -> int:
        return self.record_batch.num_rows


def stats_batch(batch: pa.RecordBatch, options: StatsOptions = StatsOptions()) -> StatsBatch:
    """A record batch as the generators see it (whole: neither sampled nor sliced), to run
    or test a generator on its own."""
    weights = _example_weights(batch, options.weight_feature) if options.weight_feature else None
    features = {
        path: view
        for name, column in zip(batch.schema.names, batch.columns, strict=True)
        for path, view in _enumerate_features((name,), column)
    }
    return StatsBatch(batch, weights, features)


_A = TypeVar("_A")


class StatsGenerator(abc.ABC, Generic[_A]):
    """One kind of statistics, computed in the same single pass as all the others.

    The methods are Beam's CombineFn contract over `StatsBatch`es, as TFDV's
    CombinerStatsGenerator: `StatisticsCombineFn` holds one accumulator per
    generator (per slice), so `merge_accumulators` may change only its first
    accumulator, and accumulators must pickle (they cross workers). The output is a
    `DatasetFeatureStatistics` whose features are named by `path`; it is merged
    into the built-in statistics of the same dataset, a feature's fields by
    `MergeFrom` (so e.g. its `custom_stats` are appended). Pass instances through
    `StatsOptions(generators=...)`; they must pickle too.
    """

    @abc.abstractmethod
    def create_accumulator(self) -> _A:
        """The accumulator of no input."""

    @abc.abstractmethod
    def add_input(self, accumulator: _A, batch: StatsBatch) -> _A:
        """Adds one batch; may change and return `accumulator`."""

    @abc.abstractmethod
    def merge_accumulators(self, accumulators: Iterable[_A]) -> _A:
        """One accumulator of all; may change the first, and no other."""

    def compact(self, accumulator: _A) -> _A:
        """Makes the accumulator smaller before it is shipped; by default it is kept as is."""
        return accumulator

    @abc.abstractmethod
    def extract_output(self, accumulator: _A) -> statistics_pb2.DatasetFeatureStatistics:
        """The statistics, features named by path."""


class _BuiltInGenerator(StatsGenerator[_A]):
    """A built-in generator: `StatisticsCombineFn` feeds every built-in one feature at a
    time in one threaded pass over a batch's columns (see `_begin_batch`, `_add_feature`);
    `add_input` does the same for one generator alone."""

    def __init__(self, options: StatsOptions) -> None:
        self._options = options

    def add_input(self, accumulator: _A, batch: StatsBatch) -> _A:
        self._begin_batch(accumulator, batch.record_batch, batch.weights)
        features = list(batch.features.items())
        map_in_threads(lambda item: self._add_feature(accumulator, item[0], item[1], batch.weights), features)
        return accumulator

    def _begin_batch(self, accumulator: _A, batch: pa.RecordBatch, weights: np.ndarray | None) -> None:
        """What the generator records once per batch, before its features (in the caller's thread)."""

    @abc.abstractmethod
    def _add_feature(
        self, accumulator: _A, path: tuple[str, ...], view: FeatureValues, weights: np.ndarray | None
    ) -> None:
        """Adds one feature of a batch; called for different features from several threads."""

    def merge_accumulators(self, accumulators: Iterable[_A]) -> _A:
        parts = iter(accumulators)
        result = next(parts)
        for other in parts:
            self._merge_into(result, other)
        return result

    @abc.abstractmethod
    def _merge_into(self, mine: _A, theirs: _A) -> None:
        """Merges `theirs` into `mine`, changing nothing of `theirs` and sharing none of it."""


@dataclass
class _PresenceAccumulator:
    """Examples of the slice and, per feature in first-seen order, its presence and type."""

    num_examples: int = 0
    weighted_num_examples: float = 0.0
    features: dict[tuple[str, ...], _FeaturePresence] = field(default_factory=dict)


class PresenceStatsGenerator(_BuiltInGenerator[_PresenceAccumulator]):
    """Example counts, each feature's type, and its common statistics (presence, value
    counts, per-level presence and valency, level value-count histograms).

    It decides each feature's reported type as TFDV does: a feature never seen with a
    value is STRING (BYTES when the schema says so), a categorical numeric feature keeps
    its type and its common statistics go under string_stats.
    """

    def create_accumulator(self) -> _PresenceAccumulator:
        return _PresenceAccumulator()

    def _begin_batch(self, accumulator: _PresenceAccumulator, batch: pa.RecordBatch,
                     weights: np.ndarray | None) -> None:
        accumulator.num_examples += batch.num_rows
        if weights is not None:
            accumulator.weighted_num_examples += float(np.sum(weights))
        for field_ in batch.schema:
            for path in _feature_paths((field_.name,), field_.type):
                if path not in accumulator.features:
                    accumulator.features[path] = _FeaturePresence(_Presence(_new_quantiles_sketch(self._options)))

    def _add_feature(self, accumulator: _PresenceAccumulator, path: tuple[str, ...], view: FeatureValues,
                     weights: np.ndarray | None) -> None:
        accumulator.features[path].add(view, weights, self._options, ".".join(path))

    def _merge_into(self, mine: _PresenceAccumulator, theirs: _PresenceAccumulator) -> None:
        mine.num_examples += theirs.num_examples
        mine.weighted_num_examples += theirs.weighted_num_examples
        for path, feature in theirs.features.items():
            known = mine.features.get(path)
            if known is None:
                mine.features[path] = _adopted(feature)
            else:
                known.merge(feature, ".".join(path))

    def compact(self, accumulator: _PresenceAccumulator) -> _PresenceAccumulator:
        for feature in accumulator.features.values():
            feature.compact()
        return accumulator

    def extract_output(self, accumulator: _PresenceAccumulator) -> statistics_pb2.DatasetFeatureStatistics:
        options = self._options
        result = statistics_pb2.DatasetFeatureStatistics(num_examples=accumulator.num_examples)
        if options.weight_feature:
            result.weighted_num_examples = accumulator.weighted_num_examples
        for path, feature in accumulator.features.items():
            result.features.append(_presence_stats(path, feature, accumulator, options))
        return result


@dataclass
class _Values(Generic[_A]):
    """One feature's value statistics (`part`, created once the feature's type calls for
    them), its type once seen (and whether it calls for them), and its number of values
    (null list elements included)."""

    feature_type: _FeatureType | None = None
    applies: bool = False
    tot_num_values: int = 0
    part: _A | None = None

    def merge(self, other: _Values) -> None:
        if self.feature_type is None:
            self.feature_type, self.applies = other.feature_type, other.applies
        self.tot_num_values += other.tot_num_values
        if self.part is None:
            self.part = None if other.part is None else _adopted(other.part)
        elif other.part is not None:
            self.part.merge(other.part)


class _ValueStatsGenerator(_BuiltInGenerator[dict]):
    """A built-in generator of value statistics for the features whose type it applies to;
    its accumulator maps a feature's path to its `_Values`."""

    def create_accumulator(self) -> dict[tuple[str, ...], _Values]:
        return {}

    @abc.abstractmethod
    def _applies(self, path: tuple[str, ...], feature_type: _FeatureType) -> bool:
        """Whether a feature of this type gets this generator's statistics."""

    @abc.abstractmethod
    def _new_part(self, weights: np.ndarray | None):
        """An empty partial statistic for one feature."""

    @abc.abstractmethod
    def _fill(self, result: statistics_pb2.FeatureNameStatistics, values: _Values) -> None:
        """Writes one feature's statistics."""

    def _add_feature(self, accumulator: dict[tuple[str, ...], _Values], path: tuple[str, ...],
                     view: FeatureValues, weights: np.ndarray | None) -> None:
        values = accumulator.get(path)
        if values is None:
            if view.feature_type is not None and not self._applies(path, view.feature_type):
                return
            values = accumulator[path] = _Values()
        if values.feature_type is None and view.feature_type is not None:
            values.feature_type, values.applies = view.feature_type, self._applies(path, view.feature_type)
        values.tot_num_values += view.tot_num_values
        if values.applies:
            if values.part is None:
                values.part = self._new_part(weights)
            values.part.add(view, weights)

    def _merge_into(self, mine: dict[tuple[str, ...], _Values], theirs: dict[tuple[str, ...], _Values]) -> None:
        for path, values in theirs.items():
            known = mine.get(path)
            if known is None:
                mine[path] = _adopted(values)
            else:
                known.merge(values)

    def extract_output(self, accumulator: dict[tuple[str, ...], _Values]) -> statistics_pb2.DatasetFeatureStatistics:
        result = statistics_pb2.DatasetFeatureStatistics()
        for path, values in accumulator.items():
            if values.applies:
                feature = result.features.add()
                feature.path.step.extend(path)
                self._fill(feature, values)
        return result


class NumericStatsGenerator(_ValueStatsGenerator):
    """Mean, standard deviation, zeros, min, max, median and histograms of INT and FLOAT
    features (weighted too with a weight feature), except those the schema marks categorical."""

    def _applies(self, path: tuple[str, ...], feature_type: _FeatureType) -> bool:
        return feature_type in (_INT, _FLOAT) and path not in self._options.categorical_paths

    def _new_part(self, weights: np.ndarray | None) -> _Numeric:
        return _Numeric(
            quantiles=_new_quantiles_sketch(self._options),
            weighted_quantiles=_new_quantiles_sketch(self._options) if weights is not None else None,
        )

    def compact(self, accumulator: dict[tuple[str, ...], _Values]) -> dict[tuple[str, ...], _Values]:
        for values in accumulator.values():
            if values.part is not None:
                values.part.quantiles.Compact()
                if values.part.weighted_quantiles is not None:
                    values.part.weighted_quantiles.Compact()
        return accumulator

    def _fill(self, result: statistics_pb2.FeatureNameStatistics, values: _Values) -> None:
        _fill_numeric_stats(result.num_stats, values.part, values.tot_num_values, self._options)


class StringStatsGenerator(_ValueStatsGenerator):
    """Average length, distinct count and top values of STRING features, and of numeric
    features the schema marks categorical (TFDV's string statistics)."""

    def _applies(self, path: tuple[str, ...], feature_type: _FeatureType) -> bool:
        if feature_type == _STRING:
            return path not in self._options.bytes_paths
        return feature_type in (_INT, _FLOAT) and path in self._options.categorical_paths

    def _new_part(self, weights: np.ndarray | None) -> _Strings:
        return _Strings(
            distinct=sketches.KmvSketch(_KMV_BUCKETS),
            top_values=_new_misra_gries(self._options),
            weighted_top_values=_new_misra_gries(self._options) if weights is not None else None,
        )

    def _fill(self, result: statistics_pb2.FeatureNameStatistics, values: _Values) -> None:
        _fill_string_stats(result.string_stats, values.part, values.tot_num_values, self._options)


class BytesStatsGenerator(_ValueStatsGenerator):
    """Sizes of the STRING features the schema declares raw bytes (an image_domain)."""

    def _applies(self, path: tuple[str, ...], feature_type: _FeatureType) -> bool:
        return feature_type == _STRING and path in self._options.bytes_paths

    def _new_part(self, weights: np.ndarray | None) -> _Bytes:
        return _Bytes()

    def _fill(self, result: statistics_pb2.FeatureNameStatistics, values: _Values) -> None:
        part, total = values.part, values.tot_num_values
        if part is not None and total:
            target = result.bytes_stats
            target.avg_num_bytes = part.total_bytes / total
            target.min_num_bytes = part.min_bytes
            target.max_num_bytes = target.max_num_bytes_int = part.max_bytes


def _built_in_generators(options: StatsOptions) -> tuple[_BuiltInGenerator, ...]:
    """Presence first: its output fixes the features' order and types."""
    return (PresenceStatsGenerator(options), NumericStatsGenerator(options), StringStatsGenerator(options),
            BytesStatsGenerator(options))


# The accumulator: slice name → one accumulator per generator (built-in ones first).
_Accumulator = dict[str, list]


# ---------------------------------------------------------------------------
# Sampling and slicing a batch
# ---------------------------------------------------------------------------


def _sample(batch: pa.RecordBatch, options: StatsOptions) -> pa.RecordBatch:
    """Keeps each row with probability sample_rate.

    The generator is seeded by the options' seed and a checksum of the
    batch's contents, so the same data gives the same sample however Beam
    orders or retries the bundles.
    """
    if options.sample_rate >= 1.0 or not batch.num_rows:
        return batch
    checksum = zlib.crc32(batch.serialize())
    keep = np.random.default_rng([options.seed, checksum]).random(batch.num_rows) < options.sample_rate
    return batch.filter(pa.array(keep))


def _slices(batch: pa.RecordBatch, slice_features: Sequence[str]) -> Iterator[tuple[str, pa.RecordBatch]]:
    """Yields (TFDV slice name, rows) for each combination of slice feature values in the batch.

    A row joins one slice per combination of its distinct values (a list
    feature can put a row in several); a row missing any slice feature, or a
    batch without the column, joins none. Names are TFDV's:
    `<feature>_<value>` over the features in sorted order, joined by `_`.
    """
    names = sorted(slice_features)
    combinations: pa.Table | None = None
    for name in names:
        index = batch.schema.get_field_index(name)
        if index < 0:
            return
        view = _view_column(batch.column(index), name)
        pairs = pa.table({_ROW_INDEX: pa.array(view.value_rows, pa.int64()), name: view.values})
        pairs = pairs.group_by([_ROW_INDEX, name]).aggregate([])
        combinations = pairs if combinations is None else combinations.join(pairs, _ROW_INDEX, join_type="inner")
    groups = combinations.group_by(names).aggregate([(_ROW_INDEX, "list")])
    keys = [groups.column(name).to_pylist() for name in names]
    rows = groups.column(f"{_ROW_INDEX}_list")
    for i in range(groups.num_rows):
        slice_name = "_".join(f"{name}_{_slice_value(key[i])}" for name, key in zip(names, keys, strict=True))
        yield slice_name, batch.take(pa.array(np.sort(rows[i].values.to_numpy())))


def _slice_value(value: object) -> str:
    """A slice value as TFDV spells it in slice names: text as is, bytes decoded, numbers via str()."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    return str(value)


# ---------------------------------------------------------------------------
# Histograms from quantiles (TFDV's quantiles_util semantics)
# ---------------------------------------------------------------------------


def _quantiles(sketch: sketches.QuantilesSketch, num_buckets: int) -> tuple[np.ndarray, np.ndarray]:
    """num_buckets + 1 boundaries and the cumulative weight at each boundary."""
    boundaries, cumulative = sketch.GetQuantilesAndCumulativeWeights(num_buckets)
    return (
        boundaries.flatten().to_numpy(zero_copy_only=False).astype(np.float64),
        cumulative.flatten().to_numpy(zero_copy_only=False).astype(np.float64),
    )


def _median(boundaries: np.ndarray) -> float:
    middle = boundaries.size // 2
    if boundaries.size % 2:
        return float(boundaries[middle])
    return float((boundaries[middle - 1] + boundaries[middle]) / 2.0)


def _bucket_counts(boundaries: np.ndarray, cumulative: np.ndarray) -> np.ndarray:
    """Weight in each bucket between consecutive boundaries, spreading ties evenly.

    Buckets that share an upper bound share their weight; the weight at the
    first boundary (the minimum's own count) is spread over the leading
    buckets identical to the first one. This is how TFDV lays out quantiles
    histograms over repeated values (e.g. ten [1, 1] buckets of equal count).
    """
    low, high = boundaries[:-1], boundaries[1:]
    counts = np.diff(cumulative)
    if not counts.size:
        return counts
    run = np.concatenate([[0], np.cumsum(high[1:] != high[:-1])])
    counts = (np.bincount(run, weights=counts) / np.bincount(run))[run]
    same_as_first = (low == low[0]) & (high == high[0])
    leading = int(np.argmin(same_as_first)) if not same_as_first.all() else same_as_first.size
    counts[:leading] += cumulative[0] / leading
    return counts


def _quantiles_histogram(boundaries: np.ndarray, cumulative: np.ndarray, num_nan: int) -> statistics_pb2.Histogram:
    histogram = statistics_pb2.Histogram(type=statistics_pb2.Histogram.QUANTILES, num_nan=num_nan)
    counts = _bucket_counts(boundaries, cumulative)
    for low, high, count in zip(boundaries[:-1], boundaries[1:], counts, strict=True):
        histogram.buckets.add(low_value=low, high_value=high, sample_count=count)
    return histogram


def _rebin(boundaries: np.ndarray, cumulative: np.ndarray, factor: int) -> tuple[np.ndarray, np.ndarray]:
    """Keeps every factor-th boundary (and the first): fine quantiles → coarse quantiles."""
    return (
        np.concatenate([boundaries[:1], boundaries[factor::factor]]),
        np.concatenate([cumulative[:1], cumulative[factor::factor]]),
    )


def _strip_infinities(
    boundaries: np.ndarray, cumulative: np.ndarray, finite_max: float, num_pos_inf: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """Removes -inf and +inf boundaries so the equal-width buckets span finite values only.

    Returns the finite boundaries, their cumulative weights (counting finite
    values only) and the weight of -inf values, which becomes its own bucket.
    """
    num_neg_boundaries = int(np.searchsorted(boundaries, -math.inf, side="right"))
    num_neg_inf = 0.0
    if num_neg_boundaries:
        num_neg_inf = float(cumulative[num_neg_boundaries - 1])
        boundaries = boundaries[num_neg_boundaries:]
        cumulative = cumulative[num_neg_boundaries:] - num_neg_inf
    if num_pos_inf:
        first_pos = int(np.searchsorted(boundaries, math.inf, side="left"))
        finite_total = cumulative[-1] - num_pos_inf
        boundaries = np.append(boundaries[:first_pos], finite_max)
        cumulative = np.append(cumulative[:first_pos], finite_total)
    return boundaries, cumulative, num_neg_inf


def _overlap_fractions(low: np.ndarray, high: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Fraction of each quantile bucket (column) inside each equal-width bucket (row).

    Weight is assumed uniform within a bucket. A zero-width bucket sitting
    on an edge between two buckets counts in the left one; one on the
    minimum counts in the first.
    """
    lo, hi = edges[:-1, None], edges[1:, None]
    touches = (high >= lo) & (low <= hi)
    point = low == high
    width = np.where(point, 1.0, high - low)
    spread = np.where(touches, (np.minimum(high, hi) - np.maximum(low, lo)) / width, 0.0)
    first_row = np.arange(lo.shape[0])[:, None] == 0
    point_share = np.where(low == lo, first_row, touches).astype(np.float64)
    return np.where(point, point_share, spread)


class _ValueRange(NamedTuple):
    """What the standard histogram needs besides quantiles, for value counts (no NaN, finite)."""

    finite_min: float
    finite_max: float
    num_nan: int = 0


def _standard_histogram(
    boundaries: np.ndarray,
    cumulative: np.ndarray,
    numeric: _Numeric | _ValueRange,
    num_buckets: int,
    num_pos_inf: float,
) -> statistics_pb2.Histogram:
    """Equal-width histogram between the finite min and max, interpolated from fine quantiles.

    Infinities get a bucket of their own at either end, as in TFDV.
    """
    histogram = statistics_pb2.Histogram(type=statistics_pb2.Histogram.STANDARD, num_nan=numeric.num_nan)
    if not math.isfinite(numeric.finite_min):
        histogram.buckets.add(low_value=numeric.finite_min, high_value=numeric.finite_max, sample_count=cumulative[-1])
        return histogram
    boundaries, cumulative, num_neg_inf = _strip_infinities(boundaries, cumulative, numeric.finite_max, num_pos_inf)
    if numeric.finite_min == numeric.finite_max:
        edges = np.array([numeric.finite_min, numeric.finite_max])
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            edges = np.linspace(numeric.finite_min, numeric.finite_max, num_buckets + 1)
        if not np.isfinite(edges).all():
            # The range overflows a double: no meaningful equal-width buckets exist.
            return histogram
    counts = _overlap_fractions(boundaries[:-1], boundaries[1:], edges) @ _bucket_counts(boundaries, cumulative)
    if num_neg_inf:
        histogram.buckets.add(low_value=-math.inf, high_value=-math.inf, sample_count=num_neg_inf)
    for low, high, count in zip(edges[:-1], edges[1:], counts, strict=True):
        histogram.buckets.add(low_value=low, high_value=high, sample_count=count)
    if num_pos_inf:
        histogram.buckets.add(low_value=math.inf, high_value=math.inf, sample_count=num_pos_inf)
    return histogram


def _value_histograms(
    sketch: sketches.QuantilesSketch, numeric: _Numeric, num_pos_inf: float, options: StatsOptions
) -> tuple[float, statistics_pb2.Histogram, statistics_pb2.Histogram]:
    """Median, standard histogram and quantiles histogram, all from one set of fine quantiles."""
    boundaries, cumulative = _quantiles(
        sketch, _QUANTILES_PER_HISTOGRAM_BUCKET * options.num_quantiles_histogram_buckets
    )
    standard = _standard_histogram(boundaries, cumulative, numeric, options.num_histogram_buckets, num_pos_inf)
    quantiles = _quantiles_histogram(
        *_rebin(boundaries, cumulative, _QUANTILES_PER_HISTOGRAM_BUCKET), numeric.num_nan
    )
    return _median(boundaries), standard, quantiles


# ---------------------------------------------------------------------------
# Building the protos
# ---------------------------------------------------------------------------


def _common_stats(
    feature: _FeaturePresence, num_examples: float, weighted_num_examples: float | None, options: StatsOptions
) -> statistics_pb2.CommonStatistics:
    """TFDV's common stats: presence at the top level, values counted at the innermost.

    `num_examples` is the number of elements the feature could be present in: the
    slice's examples, or for a struct member its struct's values. A nested feature
    also gets presence and valency per level (a level's missing are the elements of
    the level above that lack a list) and, as custom statistics, the value-count
    histograms of levels 2 and below.
    """
    presence, levels = feature.presence, [feature.presence, *feature.deeper]
    leaf = feature.leaf_presence
    result = statistics_pb2.CommonStatistics(
        num_non_missing=presence.num_non_missing,
        num_missing=int(num_examples) - presence.num_non_missing,
        tot_num_values=leaf.tot_num_values,
    )
    if presence.num_non_missing:
        counts = feature.innermost if feature.deeper else presence
        result.min_num_values = counts.min_num_values
        result.max_num_values = counts.max_num_values
        result.avg_num_values = leaf.tot_num_values / presence.num_non_missing
        result.num_values_histogram.CopyFrom(
            _quantiles_histogram(*_quantiles(counts.num_values_sketch, options.num_values_histogram_buckets), 0)
        )
    if feature.deeper:
        above = [num_examples, *(level.tot_num_values for level in levels[:-1])]
        for level, elements in zip(levels, above, strict=True):
            proto = result.presence_and_valency_stats.add(
                num_missing=int(elements) - level.num_non_missing, num_non_missing=level.num_non_missing
            )
            if level.num_non_missing:
                proto.min_num_values = level.min_num_values
                proto.max_num_values = level.max_num_values
                proto.tot_num_values = level.tot_num_values
    if weighted_num_examples is not None:
        weighted = result.weighted_common_stats
        weighted.num_non_missing = presence.weighted_num_non_missing
        weighted.num_missing = weighted_num_examples - presence.weighted_num_non_missing
        weighted.tot_num_values = leaf.weighted_tot_num_values
        if presence.weighted_num_non_missing:
            weighted.avg_num_values = leaf.weighted_tot_num_values / presence.weighted_num_non_missing
        if feature.deeper:
            above = [weighted_num_examples, *(level.weighted_tot_num_values for level in levels[:-1])]
            for level, elements in zip(levels, above, strict=True):
                proto = result.weighted_presence_and_valency_stats.add(
                    num_missing=elements - level.weighted_num_non_missing,
                    num_non_missing=level.weighted_num_non_missing,
                    tot_num_values=level.weighted_tot_num_values,
                )
                if level.weighted_num_non_missing:
                    proto.avg_num_values = level.weighted_tot_num_values / level.weighted_num_non_missing
    return result


def _level_histograms(feature: _FeaturePresence, options: StatsOptions) -> list[statistics_pb2.CustomStatistic]:
    """Value-count histograms of nesting levels 2 and below (level 1's is num_values_histogram)."""
    result = []
    for depth, level in enumerate(feature.deeper, start=2):
        if not level.num_non_missing:
            continue
        boundaries, cumulative = _quantiles(level.num_values_sketch, options.num_values_histogram_buckets)
        result.append(statistics_pb2.CustomStatistic(name=f"level_{depth}_value_list_length_quantiles",
                                                     histogram=_quantiles_histogram(boundaries, cumulative, 0)))
        value_range = _ValueRange(float(level.min_num_values), float(level.max_num_values))
        standard = _standard_histogram(boundaries, cumulative, value_range, options.num_values_histogram_buckets, 0)
        standard.ClearField("type")  # TFDV leaves these standard histograms' type unset
        result.append(statistics_pb2.CustomStatistic(name=f"level_{depth}_value_list_length_standard",
                                                     histogram=standard))
    return result


def _fill_numeric_stats(
    result: statistics_pb2.NumericStatistics, numeric: _Numeric | None, tot_num_values: int, options: StatsOptions
) -> None:
    """Value statistics of a numeric feature; none but NaN counts when it has no other value."""
    if numeric is None or tot_num_values == numeric.num_nan:
        if numeric is not None and numeric.num_nan:
            for kind in (statistics_pb2.Histogram.STANDARD, statistics_pb2.Histogram.QUANTILES):
                result.histograms.add(type=kind, num_nan=numeric.num_nan)
        return
    result.mean = numeric.moments.mean
    result.std_dev = numeric.moments.std_dev
    result.num_zeros = numeric.num_zeros
    result.min = numeric.min
    result.max = numeric.max
    result.median, standard, quantiles = _value_histograms(
        numeric.quantiles, numeric, numeric.num_pos_inf, options
    )
    result.histograms.extend([standard, quantiles])
    if numeric.weighted_quantiles is not None:
        weighted = result.weighted_numeric_stats
        weighted.mean = numeric.weighted_moments.mean
        weighted.std_dev = numeric.weighted_moments.std_dev
        weighted.median, standard, quantiles = _value_histograms(
            numeric.weighted_quantiles, numeric, numeric.weighted_num_pos_inf, options
        )
        weighted.histograms.extend([standard, quantiles])


def _fill_top_values(
    target: statistics_pb2.StringStatistics | statistics_pb2.WeightedStringStatistics,
    estimate: pa.StructArray,
    threshold: float,
    options: StatsOptions,
) -> None:
    """Top values and rank histogram, most frequent first, ties broken by value descending (TFDV's order)."""
    pairs = sorted(
        zip(estimate.field("counts").to_pylist(), estimate.field("values").to_pylist(), strict=True),
        reverse=True,
    )
    kept = [(count, value.decode("utf-8")) for count, value in pairs if count >= threshold]
    for count, value in kept[: options.num_top_values]:
        target.top_values.add(value=value, frequency=count)
    for rank, (count, value) in enumerate(kept[: options.num_rank_histogram_buckets]):
        target.rank_histogram.buckets.add(low_rank=rank, high_rank=rank, label=value, sample_count=count)


def _fill_string_stats(
    result: statistics_pb2.StringStatistics, strings: _Strings | None, tot_num_values: int, options: StatsOptions
) -> None:
    """avg_length over all values; unique and top values only once some value was seen (as TFDV)."""
    if strings is None or not tot_num_values:
        return
    result.avg_length = strings.total_bytes / tot_num_values
    estimate = strings.top_values.Estimate()
    if not len(estimate):
        return
    result.unique = strings.distinct.Estimate()
    _fill_top_values(result, estimate, options.frequency_threshold, options)
    if strings.weighted_top_values is not None:
        _fill_top_values(
            result.weighted_string_stats,
            strings.weighted_top_values.Estimate(),
            options.weighted_frequency_threshold,
            options,
        )


def _presence_stats(
    path: tuple[str, ...], feature: _FeaturePresence, accumulator: _PresenceAccumulator, options: StatsOptions
) -> statistics_pb2.FeatureNameStatistics:
    """One feature's type, path, common statistics (under the statistics its type gets) and
    level histograms; a feature never seen with a value is reported as STRING, like TFDV
    (or BYTES when the schema says so); a categorical numeric feature keeps its type and
    gets string statistics."""
    if len(path) == 1:
        num_examples: float = accumulator.num_examples
        weighted_num_examples = accumulator.weighted_num_examples if options.weight_feature else None
    else:  # a struct member: present or missing in each value of its struct
        parent = accumulator.features[path[:-1]].leaf_presence
        num_examples = parent.tot_num_values
        weighted_num_examples = parent.weighted_tot_num_values if options.weight_feature else None
    common = _common_stats(feature, num_examples, weighted_num_examples, options)
    raw_bytes = path in options.bytes_paths
    if feature.feature_type is None:
        feature_type = _BYTES if raw_bytes else _STRING
    else:
        feature_type = _BYTES if raw_bytes and feature.feature_type == _STRING else feature.feature_type
    result = statistics_pb2.FeatureNameStatistics(type=feature_type)
    result.path.step.extend(path)
    if feature_type == _BYTES:
        result.bytes_stats.CopyFrom(statistics_pb2.BytesStatistics(common_stats=common))
    elif feature_type == _STRING or (path in options.categorical_paths and feature_type in (_INT, _FLOAT)):
        result.string_stats.CopyFrom(statistics_pb2.StringStatistics(common_stats=common))
    elif feature_type == _STRUCT:
        result.struct_stats.common_stats.CopyFrom(common)
    else:
        result.num_stats.CopyFrom(statistics_pb2.NumericStatistics(common_stats=common))
    if feature.feature_type is not None:
        result.custom_stats.extend(_level_histograms(feature, options))
    return result


def _merged_dataset(name: str, outputs: list[statistics_pb2.DatasetFeatureStatistics],
                    generators: Sequence[StatsGenerator]) -> statistics_pb2.DatasetFeatureStatistics:
    """The generators' outputs of one slice as one dataset: the first output's features in
    its order, each later output's features merged into the same path's (new paths last)."""
    result = outputs[0]
    result.name = name
    by_path = {tuple(feature.path.step): feature for feature in result.features}
    for output, generator in zip(outputs[1:], generators[1:], strict=True):
        for feature in output.features:
            path = tuple(feature.path.step)
            if not path:
                raise ValueError(
                    f"{type(generator).__name__} reported statistics of a feature without a path: "
                    "name each feature by path (feature.path.step.extend([...]))"
                )
            known = by_path.get(path)
            if known is None:
                by_path[path] = result.features.add()
                by_path[path].CopyFrom(feature)
            else:
                feature.ClearField("path")  # MergeFrom would repeat its steps
                known.MergeFrom(feature)
        output.ClearField("features")
        result.MergeFrom(output)
    return result


# ---------------------------------------------------------------------------
# The combiner and its two wrappers
# ---------------------------------------------------------------------------


class StatisticsCombineFn(beam.CombineFn):
    """Record batches → DatasetFeatureStatisticsList, in one pass over the data.

    The accumulator maps slice names to one accumulator per generator: the
    built-in ones (`PresenceStatsGenerator`, `NumericStatsGenerator`,
    `StringStatsGenerator`, `BytesStatsGenerator`), then the options' own. Every
    batch feeds the "All Examples" slice and, with slice_features, each slice its
    rows fall in. Each feature of a batch is read once and given to every built-in
    generator in the same task (features in threads); the options' generators then
    get the batch with the features already read. Accumulators pickle (the sketches
    do), so Beam can ship them between workers.
    """

    def __init__(self, options: StatsOptions = StatsOptions()) -> None:
        super().__init__()
        self._options = options
        self._built_ins = _built_in_generators(options)
        self._generators: tuple[StatsGenerator, ...] = (*self._built_ins, *options.generators)

    def _new_slice(self) -> list:
        return [generator.create_accumulator() for generator in self._generators]

    def create_accumulator(self) -> _Accumulator:
        return {ALL_EXAMPLES_SLICE: self._new_slice()}

    def add_input(self, accumulator: _Accumulator, batch: pa.RecordBatch) -> _Accumulator:
        batch = _sample(batch, self._options)
        self._add(accumulator[ALL_EXAMPLES_SLICE], batch)
        if self._options.slice_features:
            for name, rows in _slices(batch, self._options.slice_features):
                if name not in accumulator:
                    accumulator[name] = self._new_slice()
                self._add(accumulator[name], rows)
        return accumulator

    def _add(self, parts: list, batch: pa.RecordBatch) -> None:
        """Adds a batch to one slice's accumulators (the built-in ones change in place)."""
        options = self._options
        weights = _example_weights(batch, options.weight_feature) if options.weight_feature else None
        built_ins = list(zip(self._built_ins, parts, strict=False))
        for generator, part in built_ins:
            generator._begin_batch(part, batch, weights)

        def add_column(column: tuple[str, pa.Array]) -> list[tuple[tuple[str, ...], FeatureValues]]:
            features = list(_enumerate_features((column[0],), column[1]))
            for path, view in features:
                for generator, part in built_ins:
                    generator._add_feature(part, path, view, weights)
            return features

        # Columns are independent: add them in threads (see beam_ml.transforms.threads).
        columns = map_in_threads(add_column, list(zip(batch.schema.names, batch.columns, strict=True)))
        if options.generators:
            stats_batch = StatsBatch(batch, weights, {path: view for column in columns for path, view in column})
            for index in range(len(self._built_ins), len(parts)):
                parts[index] = self._generators[index].add_input(parts[index], stats_batch)

    def merge_accumulators(self, accumulators: Iterable[_Accumulator]) -> _Accumulator:
        """Merges into the first accumulator and changes no other (see `_adopted`)."""
        parts = iter(accumulators)
        result = next(parts)
        for other in parts:
            for name, theirs in other.items():
                mine = result.get(name)
                if mine is None:
                    result[name] = _adopted(theirs)
                    continue
                for index, generator in enumerate(self._generators):
                    mine[index] = generator.merge_accumulators([mine[index], theirs[index]])
        return result

    def compact(self, accumulator: _Accumulator) -> _Accumulator:
        """Compacts the quantile sketches (and what the options' generators compact) so less
        data crosses the shuffle."""
        for parts in accumulator.values():
            for index, generator in enumerate(self._generators):
                parts[index] = generator.compact(parts[index])
        return accumulator

    def extract_output(self, accumulator: _Accumulator) -> statistics_pb2.DatasetFeatureStatisticsList:
        """One dataset per slice: "All Examples" first (unnamed without slicing), then slices by name."""
        result = statistics_pb2.DatasetFeatureStatisticsList()
        overall_name = ALL_EXAMPLES_SLICE if self._options.slice_features else ""
        names = [ALL_EXAMPLES_SLICE, *sorted(set(accumulator) - {ALL_EXAMPLES_SLICE})]
        for name in names:
            outputs = [generator.extract_output(part)
                       for generator, part in zip(self._generators, accumulator[name], strict=True)]
            dataset_name = overall_name if name == ALL_EXAMPLES_SLICE else name
            result.datasets.append(_merged_dataset(dataset_name, outputs, self._generators))
        return result


class GenerateStatistics(
    beam.PTransform[PCollection[pa.RecordBatch], PCollection[statistics_pb2.DatasetFeatureStatisticsList]]
):
    """Computes TFDV-style statistics of a PCollection of record batches as one proto."""

    def __init__(self, options: StatsOptions = StatsOptions()) -> None:
        super().__init__()
        self._options = options

    def expand(
        self, batches: PCollection[pa.RecordBatch]
    ) -> PCollection[statistics_pb2.DatasetFeatureStatisticsList]:
        return batches | "CombineStatistics" >> beam.CombineGlobally(StatisticsCombineFn(self._options))


def generate_statistics_in_memory(
    data: pa.Table | pa.RecordBatch | Iterable[pa.RecordBatch], options: StatsOptions = StatsOptions()
) -> statistics_pb2.DatasetFeatureStatisticsList:
    """Same statistics without Beam, for tests, notebooks and small data."""
    if isinstance(data, pa.Table):
        batches: Iterable[pa.RecordBatch] = data.to_batches()
    elif isinstance(data, pa.RecordBatch):
        batches = [data]
    else:
        batches = data
    combine_fn = StatisticsCombineFn(options)
    accumulator = combine_fn.create_accumulator()
    for batch in batches:
        accumulator = combine_fn.add_input(accumulator, batch)
    return combine_fn.extract_output(combine_fn.compact(accumulator))
