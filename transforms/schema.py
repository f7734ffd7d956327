"""Schema inference from statistics, and schema.pbtxt files, with TFDV's semantics.

`infer_schema` turns a `DatasetFeatureStatisticsList` into a tensorflow_metadata
`Schema` the way TFDV 1.16.1's `tfdv.infer_schema` does (its C++ `Schema::Updater
::CreateColumn` and `InitPresenceAndShape`), so a schema we infer can be read,
edited and used by TFX/TFDV users, and one they wrote validates here. No
TensorFlow is imported: only the tensorflow_metadata protos.

The small statistics accessors at the bottom of the public section are shared
with `validation`, which reads the same fields the same way.
"""

from __future__ import annotations

import re

from apache_beam.io.filesystems import FileSystems
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

__all__ = [
    "DEFAULT_SLICE_KEY",
    "common_statistics",
    "default_dataset_statistics",
    "feature_name",
    "infer_schema",
    "load_schema",
    "min_max_num_values",
    "num_missing_nested",
    "schema_feature_type",
    "string_value_counts",
    "write_schema",
]

# The name TFDV gives the unsliced dataset when statistics are sliced.
DEFAULT_SLICE_KEY = "All Examples"

_STATS_TYPE_TO_SCHEMA_TYPE = {
    statistics_pb2.FeatureNameStatistics.INT: schema_pb2.INT,
    statistics_pb2.FeatureNameStatistics.FLOAT: schema_pb2.FLOAT,
    statistics_pb2.FeatureNameStatistics.STRING: schema_pb2.BYTES,
    statistics_pb2.FeatureNameStatistics.BYTES: schema_pb2.BYTES,
    statistics_pb2.FeatureNameStatistics.STRUCT: schema_pb2.STRUCT,
}

# TFDV's bool_domain_util: the spellings it accepts as a boolean string feature.
_TRUE_STRINGS = frozenset({"TRUE", "true", "SET", "set", "1", ""})
_FALSE_STRINGS = frozenset({"FALSE", "false", "CLEAR", "clear", "0"})

# absl::SimpleAtoi accepts surrounding whitespace and an optional sign.
_INT_STRING = re.compile(r"\s*[+-]?\d+\s*")


def infer_schema(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    *,
    infer_feature_shape: bool = True,
    max_string_domain_size: int = 100,
) -> schema_pb2.Schema:
    """Infers a Schema from statistics, as `tfdv.infer_schema` does.

    Members of a struct feature (statistics path `c.f1`) go in the struct's
    `struct_domain`. Per feature: the type; presence (min_count 1 when present at all, min_fraction
    1.0 when never missing); a fixed `shape` when `infer_feature_shape` and the
    feature always has the same number of values, else `value_count`; and a
    domain chosen in TFDV's order: raw BYTES get none, then a bool domain, an
    (empty) int domain for strings that are all integers, a string domain
    (schema-level, named after the feature) for strings with at most
    `max_string_domain_size` distinct values in the rank histogram. Integer
    features that the statistics treat as categorical (they carry string
    statistics) get `int_domain {is_categorical: true}` with their observed
    range, where TFDV would build a string domain of digits.

    Args:
      statistics: statistics of one dataset, or of slices including TFDV's
        default slice ("All Examples"), which is then the one used.
      infer_feature_shape: infer `shape` for always-present fixed-length
        features, so tf.Transform reads them as dense tensors.
      max_string_domain_size: the most distinct values a string feature may have
        to be treated as categorical (TFDV's `enum_threshold`).
    """
    dataset = default_dataset_statistics(statistics)
    schema = schema_pb2.Schema()
    structs: dict[tuple[str, ...], schema_pb2.Feature] = {}
    for stats in dataset.features:
        if common_statistics(stats) is None:
            # Composite features (sparse, weighted) have no common stats and no
            # column of their own: TFDV drops them before inferring.
            continue
        path = tuple(stats.path.step) if stats.HasField("path") else (stats.name,)
        # A struct's member goes in its struct's struct_domain, under its own name.
        parent = structs[path[:-1]].struct_domain if len(path) > 1 and path[:-1] in structs else schema
        name = path[-1] if parent is not schema else feature_name(stats)
        feature = parent.feature.add(name=name, type=schema_feature_type(stats))
        if feature.type == schema_pb2.STRUCT:
            structs[path] = feature
        _init_presence_and_shape(stats, feature, infer_feature_shape=infer_feature_shape)
        _init_domain(stats, feature, schema, max_string_domain_size, feature_name(stats))
    return schema


def load_schema(path: str) -> schema_pb2.Schema:
    """Reads a text-format Schema (schema.pbtxt) from any Beam filesystem (local, gs://, s3://)."""
    with FileSystems.open(path) as f:
        text = f.read().decode("utf-8")
    return text_format.Parse(text, schema_pb2.Schema())


def write_schema(schema: schema_pb2.Schema, path: str) -> None:
    """Writes `schema` as a text proto (schema.pbtxt), the format TFX's SchemaGen writes."""
    with FileSystems.create(path) as f:
        f.write(text_format.MessageToString(schema).encode("utf-8"))


# --- statistics accessors, shared with validation -------------------------------------------


def default_dataset_statistics(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
) -> statistics_pb2.DatasetFeatureStatistics:
    """The statistics of the whole dataset: the only one, or TFDV's default slice among slices."""
    if not isinstance(statistics, statistics_pb2.DatasetFeatureStatisticsList):
        raise TypeError(
            f"statistics is a {type(statistics).__name__}, expected a DatasetFeatureStatisticsList"
        )
    if len(statistics.datasets) == 1:
        return statistics.datasets[0]
    for dataset in statistics.datasets:
        if dataset.name == DEFAULT_SLICE_KEY:
            return dataset
    raise ValueError(
        f"statistics hold {len(statistics.datasets)} datasets and none is the default slice "
        f"{DEFAULT_SLICE_KEY!r}"
    )


def feature_name(stats: statistics_pb2.FeatureNameStatistics) -> str:
    """The feature's name: TFDV writes `path`, older producers `name`; nested steps join with '.'."""
    if stats.HasField("path"):
        return ".".join(stats.path.step)
    return stats.name


def common_statistics(
    stats: statistics_pb2.FeatureNameStatistics,
) -> statistics_pb2.CommonStatistics | None:
    """The CommonStatistics of whichever typed statistics the feature carries, or None."""
    kind = stats.WhichOneof("stats")
    if kind is None:
        return None
    return getattr(stats, kind).common_stats


def schema_feature_type(stats: statistics_pb2.FeatureNameStatistics) -> int:
    """The schema FeatureType for a statistics type (STRING and BYTES are both BYTES)."""
    return _STATS_TYPE_TO_SCHEMA_TYPE.get(stats.type, schema_pb2.TYPE_UNKNOWN)


def string_value_counts(stats: statistics_pb2.FeatureNameStatistics) -> dict[str, float]:
    """Value → count from the rank histogram, sorted by value (TFDV's GetStringValuesWithCounts).

    TFDV reads the rank histogram, not top_values: it holds many more values
    (1000 by default), so it is the best available picture of the whole domain.
    """
    counts: dict[str, float] = {}
    for bucket in stats.string_stats.rank_histogram.buckets:
        counts.setdefault(bucket.label, bucket.sample_count)
    return dict(sorted(counts.items(), key=lambda item: item[0].encode("utf-8")))


def min_max_num_values(common: statistics_pb2.CommonStatistics) -> list[tuple[int, int]]:
    """Per nesting level (min, max) values per example; one level for flat features."""
    levels = [(max(p.min_num_values, 0), p.max_num_values) for p in common.presence_and_valency_stats]
    return levels or [(max(common.min_num_values, 0), common.max_num_values)]


def num_missing_nested(common: statistics_pb2.CommonStatistics) -> list[float]:
    """Per nesting level, the examples missing the feature; one level for flat features."""
    levels = [p.num_missing for p in common.presence_and_valency_stats]
    return levels or [common.num_missing]


# --- inference internals ---------------------------------------------------------------------


def _init_presence_and_shape(
    stats: statistics_pb2.FeatureNameStatistics,
    feature: schema_pb2.Feature,
    *,
    infer_feature_shape: bool,
) -> None:
    """Presence, then shape or value counts (TFDV's InitPresenceAndShape)."""
    common = common_statistics(stats)
    num_present = common.num_non_missing
    feature.presence.min_count = 1 if num_present >= 1 else 0
    if num_present <= 0:
        return
    if common.num_missing == 0:
        feature.presence.min_fraction = 1.0
    if infer_feature_shape and stats.type != statistics_pb2.FeatureNameStatistics.STRUCT:
        _init_fixed_shape(common, feature)
    if not feature.HasField("shape"):
        _init_value_count(common, feature)


def _init_fixed_shape(common: statistics_pb2.CommonStatistics, feature: schema_pb2.Feature) -> None:
    """A shape only when every level is always present with one fixed length: a dense tensor."""
    levels = min_max_num_values(common)
    if any(missing != 0 for missing in num_missing_nested(common)):
        return
    if any(lo != hi or lo <= 0 for lo, hi in levels):
        return
    for size, _ in levels:
        feature.shape.dim.add(size=size)


def _init_value_count(common: statistics_pb2.CommonStatistics, feature: schema_pb2.Feature) -> None:
    """Exact min/max when fixed (so TFT can parse dense), else only min 1; none if ever empty."""

    def fill(lo: int, hi: int, value_count: schema_pb2.ValueCount) -> None:
        if lo <= 0:
            return
        if lo == hi:
            value_count.min, value_count.max = lo, hi
        else:
            value_count.min = 1

    levels = min_max_num_values(common)
    if len(common.presence_and_valency_stats) > 1:
        for lo, hi in levels:
            fill(lo, hi, feature.value_counts.value_count.add())
    elif levels[0][0] > 0:
        fill(*levels[0], feature.value_count)


def _init_domain(
    stats: statistics_pb2.FeatureNameStatistics,
    feature: schema_pb2.Feature,
    schema: schema_pb2.Schema,
    max_string_domain_size: int,
    path_name: str,
) -> None:
    """Chooses at most one domain, in TFDV's order of candidates; a string domain is
    schema-level, named after the feature's path (`c.f1` for a struct member)."""
    types = statistics_pb2.FeatureNameStatistics
    if stats.type == types.BYTES or stats.string_stats.invalid_utf8_count > 0:
        return
    values = list(string_value_counts(stats))
    if stats.type == types.INT:
        if values:
            _init_categorical_int_domain(values, feature)
        elif stats.num_stats.min >= 0.0 and stats.num_stats.max == 1.0:
            feature.bool_domain.SetInParent()
        return
    if stats.type != types.STRING or not values:
        return
    if _is_bool_strings(values):
        for value in values:
            if value in _TRUE_STRINGS and not feature.bool_domain.HasField("true_value"):
                feature.bool_domain.true_value = value
            elif value in _FALSE_STRINGS and not feature.bool_domain.HasField("false_value"):
                feature.bool_domain.false_value = value
    elif all(_INT_STRING.fullmatch(v) for v in values):
        # Like TFDV: mark the strings as integers but do not bound them.
        feature.int_domain.SetInParent()
    elif len(values) <= max_string_domain_size:
        domain = schema.string_domain.add(name=_unique_domain_name(schema, path_name))
        domain.value.extend(values)
        feature.domain = domain.name


def _init_categorical_int_domain(values: list[str], feature: schema_pb2.Feature) -> None:
    """Categorical ints (string statistics on an INT feature): bound them by what was seen."""
    ints = [int(v) for v in values if _INT_STRING.fullmatch(v)]
    feature.int_domain.is_categorical = True
    if ints:
        feature.int_domain.min, feature.int_domain.max = min(ints), max(ints)


def _is_bool_strings(values: list[str]) -> bool:
    """One or two values, at most one spelling of true and one of false (TFDV's rule)."""
    if len(values) > 2:
        return False
    trues = [v for v in values if v in _TRUE_STRINGS]
    falses = [v for v in values if v in _FALSE_STRINGS]
    return len(trues) <= 1 and len(falses) <= 1 and len(trues) + len(falses) == len(values)


def _unique_domain_name(schema: schema_pb2.Schema, name: str) -> str:
    """The feature's name, or name_1, name_2, … if another string domain already has it."""
    taken = {d.name for d in schema.string_domain}
    candidate, suffix = name, 0
    while candidate in taken:
        suffix += 1
        candidate = f"{name}_{suffix}"
    return candidate
