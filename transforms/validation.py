"""Validating data against a schema: whole-dataset statistics, and row by row.

Two levels, as in TFX:

- `validate_statistics` compares a dataset's statistics (and optionally the
  previous span's and serving data's) with a Schema and returns a
  tensorflow_metadata `Anomalies` proto laid out as TFDV 1.16.1's
  `tfdv.validate_statistics` lays it out (its C++ `Schema::UpdateFeatureInternal`
  and `SchemaAnomalies`): anomaly_info keyed by feature name, one reason per
  problem with TFDV's anomaly type, and `drift_skew_info` with every distance
  measured. The human text is ours: each description states the measured figure
  and the schema's expectation ("present in 126 of 128 rows (98.4%); the schema
  requires 100%"), never more than the statistics show.
- `ValidateExamples` is a Beam PTransform over Arrow record batches that keeps
  the rows that conform to the schema as record batches and sends each row that
  does not, with its reasons, to a dead-letter output. The checks are pyarrow
  compute kernels over whole columns; Python only touches the rejected rows.

No TensorFlow is imported.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from apache_beam import pvalue
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from beam_ml.transforms.schema import (
    common_statistics,
    default_dataset_statistics,
    feature_name,
    min_max_num_values,
    num_missing_nested,
    schema_feature_type,
    string_value_counts,
)

__all__ = [
    "DEAD_LETTER_REASONS_COLUMN",
    "RowValidator",
    "SplitBatch",
    "ValidateExamples",
    "ValidatedExamples",
    "jensen_shannon_divergence",
    "linf_distance",
    "validate_statistics",
]

AnomalyInfo = anomalies_pb2.AnomalyInfo
Measurement = anomalies_pb2.DriftSkewInfo.Measurement
StatsType = statistics_pb2.FeatureNameStatistics

# The column that dead-letter record batches carry on top of the rejected row's own columns.
DEAD_LETTER_REASONS_COLUMN = "__validation_reasons__"

_DEPRECATED_STAGES = frozenset(
    {
        schema_pb2.PLANNED,
        schema_pb2.ALPHA,
        schema_pb2.DEPRECATED,
        schema_pb2.DEBUG_ONLY,
        schema_pb2.DISABLED,
    }
)
# BYTES data may carry these semantic domains; any other domain contradicts the type.
_DOMAINS_VALID_FOR_BYTES = frozenset({None, "natural_language_domain", "image_domain", "url_domain"})


# --- statistics validation -------------------------------------------------------------------


def validate_statistics(
    statistics: statistics_pb2.DatasetFeatureStatisticsList,
    schema: schema_pb2.Schema,
    *,
    previous_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    serving_statistics: statistics_pb2.DatasetFeatureStatisticsList | None = None,
    environment: str | None = None,
) -> anomalies_pb2.Anomalies:
    """Finds where `statistics` break `schema`, as `tfdv.validate_statistics` does.

    Args:
      statistics: the statistics of the data being validated (the default
        slice is used when they are sliced).
      schema: the expected schema. It is not modified.
      previous_statistics: the previous span's statistics, the control for
        each feature's `drift_comparator`.
      serving_statistics: serving data's statistics, the control for each
        feature's `skew_comparator`.
      environment: validate only the features in this environment (one of the
        schema's `default_environment`), e.g. "SERVING" without the label.

    Returns:
      Anomalies with `baseline` set to the schema; an empty `anomaly_info` means
      the data conforms. Distances measured by comparators are reported in
      `drift_skew_info` whether or not they exceed their thresholds.
    """
    if environment is not None and environment not in schema.default_environment:
        raise ValueError(
            f"environment {environment!r} is not one of the schema's default_environment "
            f"{list(schema.default_environment)}"
        )
    dataset = default_dataset_statistics(statistics)
    result = anomalies_pb2.Anomalies(anomaly_name_format=anomalies_pb2.Anomalies.SERIALIZED_PATH)
    result.baseline.CopyFrom(schema)
    if dataset.num_examples == 0:
        result.data_missing = True
        return result

    context = _Context(
        schema=schema,
        environment=environment,
        num_examples=dataset.num_examples,
        controls={
            "drift": _features_by_name(previous_statistics),
            "skew": _features_by_name(serving_statistics),
        },
    )
    schema_features = dict(_features_by_path(schema.feature))
    present = set()
    drift_skew: dict[str, anomalies_pb2.DriftSkewInfo] = {}
    for stats in dataset.features:
        if common_statistics(stats) is None:
            continue
        name = feature_name(stats)
        present.add(name)
        feature = schema_features.get(name)
        if feature is None:
            reasons = [_reason(
                AnomalyInfo.SCHEMA_NEW_COLUMN, "New column",
                f"New column: present in {_presence(common_statistics(stats), dataset.num_examples)}; "
                "the schema has no such feature.")]
        elif _is_deprecated(feature):
            continue
        else:
            reasons, info = _check_feature(feature, stats, context)
            if info is not None:
                drift_skew[name] = info
        if reasons:
            result.anomaly_info[name].CopyFrom(_anomaly_info(name, reasons))

    for feature in schema.feature:
        if feature.name not in present and _is_existence_required(feature, schema, environment):
            reason = _reason(
                AnomalyInfo.SCHEMA_MISSING_COLUMN, "Column dropped",
                f"The column is not in the data (0 of {_rows(dataset.num_examples)}); the schema "
                f"requires it in {_presence_requirement(feature)}.")
            result.anomaly_info[feature.name].CopyFrom(_anomaly_info(feature.name, [reason]))

    for name in sorted(drift_skew):
        result.drift_skew_info.append(drift_skew[name])
    return result


def _features_by_path(features, prefix: str = "") -> Iterator[tuple[str, schema_pb2.Feature]]:
    """The schema's features by the name statistics give them: a struct member as `c.f1`."""
    for feature in features:
        yield prefix + feature.name, feature
        if feature.HasField("struct_domain"):
            yield from _features_by_path(feature.struct_domain.feature, f"{prefix}{feature.name}.")


@dataclass(frozen=True)
class _Context:
    """What checking one feature needs beyond its own statistics."""

    schema: schema_pb2.Schema
    environment: str | None
    num_examples: float
    # "drift" / "skew" → the control dataset's features by name, or None without one.
    controls: Mapping[str, Mapping[str, statistics_pb2.FeatureNameStatistics] | None]


def _features_by_name(
    statistics: statistics_pb2.DatasetFeatureStatisticsList | None,
) -> dict[str, statistics_pb2.FeatureNameStatistics] | None:
    if statistics is None:
        return None
    dataset = default_dataset_statistics(statistics)
    return {feature_name(f): f for f in dataset.features if common_statistics(f) is not None}


def _reason(anomaly_type: int, short: str, description: str) -> AnomalyInfo.Reason:
    return AnomalyInfo.Reason(type=anomaly_type, short_description=short, description=description)


def _count(value: float) -> str:
    """A count as people write it: 128, not 128.0; weighted counts keep their fraction."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


def _rows(count: float) -> str:
    """"1 row", "128 rows"."""
    return f"{_count(count)} row{'' if count == 1 else 's'}"


def _percent(fraction: float, *, unlike: float | None = None) -> str:
    """A fraction as a percentage with one decimal, or as many more as it takes to tell it
    from `unlike` (the bound it breaks) and from 0% and 100%, which are printed only when exact."""
    for digits in range(1, 7):
        text = f"{100 * fraction:.{digits}f}"
        ambiguous = (unlike is not None and fraction != unlike and text == f"{100 * unlike:.{digits}f}") or (
            fraction not in (0.0, 1.0) and float(text) in (0.0, 100.0)
        )
        if not ambiguous:
            break
    return text.rstrip("0").rstrip(".") + "%"


def _presence(common: statistics_pb2.CommonStatistics, num_examples: float) -> str:
    """"126 of 128 rows (98.4%)"."""
    present = common.num_non_missing
    fraction = present / num_examples if num_examples else 0.0
    return f"{_count(present)} of {_rows(num_examples)} ({_percent(fraction)})"


def _presence_requirement(feature: schema_pb2.Feature) -> str:
    """What the schema's presence asks for, in words: "100% of rows", "at least 5 rows"."""
    parts = []
    if feature.presence.min_fraction > 0:
        parts.append(f"{_percent(feature.presence.min_fraction)} of rows")
    if feature.presence.min_count > 0:
        parts.append(f"at least {_rows(feature.presence.min_count)}")
    return " and ".join(parts) or "some rows"


def _anomaly_info(name: str, reasons: list[AnomalyInfo.Reason]) -> AnomalyInfo:
    """One feature's anomaly: its reasons, and a summary as TFDV unifies them."""
    if all(r.type == AnomalyInfo.SCHEMA_NEW_COLUMN for r in reasons):
        reasons = reasons[:1]  # several "new column" findings say one thing
    info = AnomalyInfo(severity=AnomalyInfo.ERROR)
    info.path.step.append(name)
    info.reason.extend(reasons)
    described = [r for r in reasons if r.description]
    if len(described) == 1:
        info.description = described[0].description
        info.short_description = described[0].short_description
    elif described:
        info.description = " ".join(r.description for r in described)
        info.short_description = "Multiple errors"
    return info


def _is_deprecated(feature: schema_pb2.Feature) -> bool:
    return feature.deprecated or (
        feature.HasField("lifecycle_stage") and feature.lifecycle_stage in _DEPRECATED_STAGES
    )


def _in_environment(feature: schema_pb2.Feature, schema: schema_pb2.Schema, environment: str | None) -> bool:
    """TFDV's rule: in_environment, else not not_in_environment, else the schema's default."""
    if environment is None:
        return True
    if environment in feature.in_environment:
        return True
    if environment in feature.not_in_environment:
        return False
    return environment in schema.default_environment


def _is_existence_required(
    feature: schema_pb2.Feature, schema: schema_pb2.Schema, environment: str | None
) -> bool:
    if _is_deprecated(feature):
        return False
    if feature.presence.min_count <= 0 and feature.presence.min_fraction <= 0.0:
        return False
    return _in_environment(feature, schema, environment)


def _check_feature(
    feature: schema_pb2.Feature,
    stats: statistics_pb2.FeatureNameStatistics,
    context: _Context,
) -> tuple[list[AnomalyInfo.Reason], anomalies_pb2.DriftSkewInfo | None]:
    """All checks of one feature that is both in the data and the schema, in TFDV's order."""
    common = common_statistics(stats)
    if common.num_non_missing == 0:
        if _is_existence_required(feature, context.schema, context.environment):
            return [_reason(
                AnomalyInfo.FEATURE_TYPE_NOT_PRESENT, "No values",
                f"The column has no value in any row (present in 0 of {_rows(context.num_examples)}); "
                f"the schema requires it in {_presence_requirement(feature)}.")], None
        return [], None

    reasons: list[AnomalyInfo.Reason] = []
    if not _in_environment(feature, context.schema, context.environment):
        reasons.append(_reason(
            AnomalyInfo.SCHEMA_NEW_COLUMN, "Column missing in environment",
            f"Column {feature.name} is present in {_presence(common, context.num_examples)}, but the "
            f"schema excludes it from the environment {context.environment}."))
    reasons += _value_count_reasons(feature, common)
    reasons += _shape_reasons(feature, common)
    reasons += _presence_reasons(feature, common, context.num_examples)
    if schema_feature_type(stats) != feature.type:
        reasons.append(_reason(
            AnomalyInfo.UNEXPECTED_DATA_TYPE, "Unexpected data type",
            f"Expected data of type: {schema_pb2.FeatureType.Name(feature.type)} "
            f"but got {StatsType.Type.Name(stats.type)}"))
    reasons += _domain_reasons(feature, stats, context.schema)

    info = anomalies_pb2.DriftSkewInfo()
    info.path.step.append(feature.name)
    for kind, comparator, measurements in (
        ("drift", feature.drift_comparator, info.drift_measurements),
        ("skew", feature.skew_comparator, info.skew_measurements),
    ):
        if feature.HasField(f"{kind}_comparator"):
            found, measured = _compare(kind, comparator, stats, context.controls[kind])
            reasons += found
            measurements.extend(measured)
    has_measurements = bool(info.drift_measurements) or bool(info.skew_measurements)
    return reasons, info if has_measurements else None


def _value_count_reasons(
    feature: schema_pb2.Feature, common: statistics_pb2.CommonStatistics
) -> list[AnomalyInfo.Reason]:
    levels = min_max_num_values(common)
    if feature.HasField("value_count"):
        if len(levels) > 1:
            return [_reason(
                AnomalyInfo.VALUE_NESTEDNESS_MISMATCH, "Mismatched value nest level",
                f"The values are nested {len(levels)} levels deep; the schema's value_count "
                "describes one level (use value_counts, one per level). Value counts are not checked.")]
        return _level_reasons(feature.value_count, levels[0], "")
    if feature.HasField("value_counts"):
        expected = feature.value_counts.value_count
        if len(expected) != len(levels):
            return [_reason(
                AnomalyInfo.VALUE_NESTEDNESS_MISMATCH, "Mismatched value nest level",
                f"The values are nested {len(levels)} level{'s' if len(levels) > 1 else ''} deep; "
                f"the schema's value_counts describe {len(expected)}. Value counts are not checked.")]
        reasons = []
        for i, (value_count, level) in enumerate(zip(expected, levels, strict=True)):
            reasons += _level_reasons(value_count, level, f" at nestedness level {i}")
        return reasons
    return []


def _level_reasons(
    value_count: schema_pb2.ValueCount, level: tuple[int, int], where: str
) -> list[AnomalyInfo.Reason]:
    lo, hi = level
    reasons = []
    if value_count.HasField("min") and lo < value_count.min:
        reasons.append(_reason(
            AnomalyInfo.FEATURE_TYPE_LOW_NUMBER_VALUES, "Missing values",
            f"The fewest values in a row{where} is {lo}; the schema requires at least {value_count.min}."))
    if value_count.HasField("max") and hi > value_count.max:
        reasons.append(_reason(
            AnomalyInfo.FEATURE_TYPE_HIGH_NUMBER_VALUES, "Superfluous values",
            f"The most values in a row{where} is {hi}; the schema allows at most {value_count.max}."))
    return reasons


def _shape_reasons(
    feature: schema_pb2.Feature, common: statistics_pb2.CommonStatistics
) -> list[AnomalyInfo.Reason]:
    """A fixed shape promises a dense tensor: always present, always that many values."""
    if not feature.HasField("shape"):
        return []
    expected = math.prod(dim.size for dim in feature.shape.dim)
    wanted = (
        f"the schema's shape [{', '.join(str(d.size) for d in feature.shape.dim)}] needs exactly "
        f"{expected} value{'' if expected == 1 else 's'} in every row"
    )
    levels = min_max_num_values(common)
    actual = math.prod(lo for lo, _ in levels) if all(lo == hi != 0 for lo, hi in levels) else -1
    missing = num_missing_nested(common)
    if actual <= 0 or any(m != 0 for m in missing):
        found = []
        if missing[0]:
            found.append(f"it is missing in {_rows(missing[0])}")
        found += [
            f"it is missing in {_count(m)} lists at nesting level {i}" for i, m in enumerate(missing) if i and m
        ]
        found += [
            f"rows have {lo} to {hi} values" + (f" at nesting level {i}" if len(levels) > 1 else "")
            for i, (lo, hi) in enumerate(levels) if lo != hi or hi == 0
        ]
        return [_reason(
            AnomalyInfo.INVALID_FEATURE_SHAPE, "Not the schema's shape",
            f"{'; '.join(found).capitalize()}; {wanted}.")]
    if actual != expected:
        return [_reason(
            AnomalyInfo.INVALID_FEATURE_SHAPE, "Not the schema's shape",
            f"Every row has {actual} values; {wanted}.")]
    return []


def _presence_reasons(
    feature: schema_pb2.Feature, common: statistics_pb2.CommonStatistics, num_examples: float
) -> list[AnomalyInfo.Reason]:
    if not feature.HasField("presence"):
        return []
    presence = feature.presence
    num_present = common.num_non_missing
    reasons = []
    if presence.HasField("min_count") and num_present < presence.min_count:
        reasons.append(_reason(
            AnomalyInfo.FEATURE_TYPE_LOW_NUMBER_PRESENT, "Present in too few rows",
            f"Present in {_count(num_present)} of {_rows(num_examples)}; the schema requires at "
            f"least {presence.min_count}."))
    if presence.HasField("min_fraction") and num_examples > 0:
        fraction = 1.0 if common.num_missing == 0 else num_present / num_examples
        min_fraction = presence.min_fraction
        if fraction < min_fraction:
            reasons.append(_reason(
                AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT, "Missing in some rows",
                f"Present in {_count(num_present)} of {_rows(num_examples)} "
                f"({_percent(fraction, unlike=min_fraction)}); the schema requires "
                f"{_percent(min_fraction)}."))
            min_fraction = float(np.float32(fraction))  # TFDV stores it in a float field
        if min_fraction == 1.0 and common.num_missing != 0:
            # So few missing that the fraction rounds to 1.0: still a violation.
            reasons.append(_reason(
                AnomalyInfo.FEATURE_TYPE_LOW_FRACTION_PRESENT, "Missing in some rows",
                f"Missing in {_count(common.num_missing)} of {_rows(num_examples)}; the schema "
                "requires 100%."))
    return reasons


def _domain_reasons(
    feature: schema_pb2.Feature, stats: statistics_pb2.FeatureNameStatistics, schema: schema_pb2.Schema
) -> list[AnomalyInfo.Reason]:
    domain = feature.WhichOneof("domain_info")
    if stats.type == StatsType.BYTES and domain not in _DOMAINS_VALID_FOR_BYTES:
        return [_reason(
            AnomalyInfo.DOMAIN_INVALID_FOR_TYPE, "Invalid domain type",
            f"The data is BYTES, but the schema gives the feature a {domain}; BYTES data takes only "
            "a natural_language_domain, image_domain or url_domain.")]
    if domain == "domain":
        return _string_domain_reasons(feature, stats, _named_string_domain(schema, feature.domain))
    if domain == "string_domain":
        return _string_domain_reasons(feature, stats, feature.string_domain)
    if domain == "int_domain":
        return _int_domain_reasons(feature.int_domain, stats)
    if domain == "float_domain":
        return _float_domain_reasons(feature.float_domain, stats)
    if domain == "bool_domain":
        return _bool_domain_reasons(feature.bool_domain, stats)
    return []


def _named_string_domain(schema: schema_pb2.Schema, name: str) -> schema_pb2.StringDomain:
    for string_domain in schema.string_domain:
        if string_domain.name == name:
            return string_domain
    raise ValueError(f"the schema refers to string domain {name!r} but does not define it")


def _string_domain_reasons(
    feature: schema_pb2.Feature,
    stats: statistics_pb2.FeatureNameStatistics,
    string_domain: schema_pb2.StringDomain,
) -> list[AnomalyInfo.Reason]:
    common = common_statistics(stats)
    total = common.tot_num_values or common.num_non_missing * common.avg_num_values
    invalid = stats.string_stats.invalid_utf8_count
    if invalid > 0:
        return [_reason(
            AnomalyInfo.ENUM_TYPE_INVALID_UTF8, "Invalid UTF8 strings",
            f"{_count(invalid)} of {_count(total)} values are not valid UTF-8; the schema's string "
            "domain holds text.")]
    allowed = set(string_domain.value)
    missing = {v: c for v, c in string_value_counts(stats).items() if v not in allowed}
    constraints = feature.distribution_constraints
    max_off_domain = 1.0 - constraints.min_domain_mass if constraints.HasField("min_domain_mass") else 0.0
    off_domain = sum(missing.values()) / total if total else 0.0
    if not missing or (off_domain <= max_off_domain and max_off_domain != 0):
        return []
    listed = ", ".join(f"{_c_escape(v)} ({_count(c)}, {_percent(c / total)})" for v, c in missing.items())
    name = string_domain.name or feature.name
    tolerated = (
        f"at most {_percent(max_off_domain, unlike=off_domain)} (min_domain_mass {constraints.min_domain_mass:g})"
        if max_off_domain else "none"
    )
    return [_reason(
        AnomalyInfo.ENUM_TYPE_UNEXPECTED_STRING_VALUES, "Unexpected string values",
        f"{_count(sum(missing.values()))} of {_count(total)} values "
        f"({_percent(off_domain, unlike=max_off_domain)}) are not in the schema's domain {name!r} "
        f"of {len(allowed)} values: {listed}; the schema allows {tolerated} outside it.")]


def _c_escape(value: str) -> str:
    """Escapes as absl::Utf8SafeCEscape does for the characters that matter in a message."""
    escapes = {"\n": "\\n", "\r": "\\r", "\t": "\\t", '"': '\\"', "'": "\\'", "\\": "\\\\"}
    return "".join(escapes.get(ch, ch) for ch in value)


def _share_outside(stats: statistics_pb2.FeatureNameStatistics, low: float | None, high: float | None) -> str:
    """"up to about 10% of values": the quantiles-histogram buckets that reach below `low` or
    above `high`, as a share of all values (an upper bound, up to the sketch's rank error);
    empty without that histogram."""
    histogram = next(
        (h for h in stats.num_stats.histograms if h.type == statistics_pb2.Histogram.QUANTILES), None
    )
    if histogram is None:
        return ""
    total = sum(b.sample_count for b in histogram.buckets)
    outside = sum(
        b.sample_count for b in histogram.buckets
        if (low is not None and b.low_value < low) or (high is not None and b.high_value > high)
    )
    if not total or not outside:
        return ""
    return f"up to about {_percent(min(outside / total, 1.0))} of values"


def _beyond(share: str, where: str) -> str:
    """" (up to about 10% of values are below it)", or nothing when the share is unknown."""
    return f" ({share} are {where})" if share else ""


def _int_domain_reasons(
    int_domain: schema_pb2.IntDomain, stats: statistics_pb2.FeatureNameStatistics
) -> list[AnomalyInfo.Reason]:
    """Range checks from num_stats, or from the values of categorical/string-encoded ints."""
    counts = string_value_counts(stats)
    values = list(counts)
    if stats.type == StatsType.FLOAT or stats.type == StatsType.STRUCT:
        return []
    if stats.type == StatsType.INT and not values:
        lo, hi = stats.num_stats.min, stats.num_stats.max
        below = _share_outside(stats, int_domain.min, None) if int_domain.HasField("min") else ""
        above = _share_outside(stats, None, int_domain.max) if int_domain.HasField("max") else ""
    else:
        not_ints = [v for v in values if not _is_int(v)]
        if not_ints:
            found = (
                f'{len(not_ints)} of the {len(values)} distinct values seen are not integers, such as '
                f'"{not_ints[0]}"; the schema\'s int_domain requires integers.'
            )
            if stats.type == StatsType.INT:
                if not (int_domain.HasField("min") or int_domain.HasField("max")):
                    return []
                return [_reason(AnomalyInfo.DOMAIN_INVALID_FOR_TYPE, "Invalid values", found)]
            return [_reason(AnomalyInfo.INT_TYPE_NOT_INT_STRING, "Invalid values", found)]
        if not values:
            return []
        ints = {v: int(v) for v in values}
        lo, hi = min(ints.values()), max(ints.values())
        total = sum(counts.values())

        def share(outside: list[str]) -> str:
            return f"{_count(sum(counts[v] for v in outside))} of {_count(total)} values" if total else ""

        below = share([v for v, i in ints.items() if int_domain.HasField("min") and i < int_domain.min])
        above = share([v for v, i in ints.items() if int_domain.HasField("max") and i > int_domain.max])
    reasons = []
    if int_domain.HasField("min") and int_domain.min > lo:
        reasons.append(_reason(
            AnomalyInfo.INT_TYPE_SMALL_INT, "Out-of-range values",
            f"The smallest value is {int(lo)}, below the schema's int_domain min {int_domain.min}"
            f"{_beyond(below, 'below it')}."))
    if int_domain.HasField("max") and int_domain.max < hi:
        reasons.append(_reason(
            AnomalyInfo.INT_TYPE_BIG_INT, "Out-of-range values",
            f"The largest value is {int(hi)}, above the schema's int_domain max {int_domain.max}"
            f"{_beyond(above, 'above it')}."))
    return reasons


def _is_int(value: str) -> bool:
    try:
        int(value)
    except ValueError:
        return False
    return True


def _float_domain_reasons(
    float_domain: schema_pb2.FloatDomain, stats: statistics_pb2.FeatureNameStatistics
) -> list[AnomalyInfo.Reason]:
    """Range, NaN and Inf checks for numeric statistics."""
    if not stats.HasField("num_stats"):
        return []
    num = stats.num_stats
    total = _count(num.common_stats.tot_num_values)
    reasons = []
    num_nan = max((h.num_nan for h in num.histograms), default=0)
    if float_domain.disallow_nan and num_nan > 0:
        reasons.append(_reason(
            AnomalyInfo.FLOAT_TYPE_HAS_NAN, "Invalid values",
            f"{_count(num_nan)} of {total} values are NaN; the schema's float_domain disallows NaN."))
    if float_domain.HasField("min") and num.min < float_domain.min:
        reasons.append(_reason(
            AnomalyInfo.FLOAT_TYPE_SMALL_FLOAT, "Out-of-range values",
            f"The smallest value is {num.min:g}, below the schema's float_domain min {float_domain.min:g}"
            f"{_beyond(_share_outside(stats, float_domain.min, None), 'below it')}."))
    if float_domain.HasField("max") and num.max > float_domain.max:
        reasons.append(_reason(
            AnomalyInfo.FLOAT_TYPE_BIG_FLOAT, "Out-of-range values",
            f"The largest value is {num.max:g}, above the schema's float_domain max {float_domain.max:g}"
            f"{_beyond(_share_outside(stats, None, float_domain.max), 'above it')}."))
    if float_domain.disallow_inf and (math.isinf(num.min) or math.isinf(num.max)):
        standard = next((h for h in num.histograms if h.type == statistics_pb2.Histogram.STANDARD), None)
        infinite = sum(
            b.sample_count for b in (standard.buckets if standard else [])
            if math.isinf(b.low_value) and b.low_value == b.high_value
        )
        found = f"{_count(infinite)} of {total} values are" if infinite else "Values include"
        reasons.append(_reason(
            AnomalyInfo.FLOAT_TYPE_HAS_INF, "Invalid values",
            f"{found} infinite (min {num.min:g}, max {num.max:g}); the schema's float_domain disallows Inf."))
    return reasons


def _bool_domain_reasons(
    bool_domain: schema_pb2.BoolDomain, stats: statistics_pb2.FeatureNameStatistics
) -> list[AnomalyInfo.Reason]:
    if stats.type == StatsType.STRING:
        valid = {v for v in (bool_domain.true_value, bool_domain.false_value) if v}
        counts = string_value_counts(stats)
        unexpected = {v: c for v, c in counts.items() if v not in valid}
        if unexpected:
            shown = '{"' + '", "'.join(sorted(valid)) + '"}' if valid else "{}"
            total = sum(counts.values())
            listed = ", ".join(f'"{_c_escape(v)}" ({_count(c)})' for v, c in unexpected.items())
            return [_reason(
                AnomalyInfo.BOOL_TYPE_UNEXPECTED_STRING, "Non-boolean values",
                f"{_count(sum(unexpected.values()))} of {_count(total)} values are not in the schema's "
                f"bool_domain {shown}: {listed}.")]
        return []
    num = stats.num_stats
    if stats.type == StatsType.INT:
        if num.min < 0.0:
            return [_reason(
                AnomalyInfo.BOOL_TYPE_SMALL_INT, "Non-boolean values",
                f"The smallest value is {num.min:g}{_beyond(_share_outside(stats, 0.0, None), 'below 0')}; "
                "the schema's bool_domain allows only 0 and 1.")]
        if num.max > 1.0:
            return [_reason(
                AnomalyInfo.BOOL_TYPE_BIG_INT, "Non-boolean values",
                f"The largest value is {num.max:g}{_beyond(_share_outside(stats, None, 1.0), 'above 1')}; "
                "the schema's bool_domain allows only 0 and 1.")]
    if stats.type == StatsType.FLOAT:
        for bound in (num.min, num.max):
            if bound not in (0.0, 1.0):
                return [_reason(
                    AnomalyInfo.BOOL_TYPE_UNEXPECTED_FLOAT, "Non-boolean values",
                    f"Values range from {num.min:g} to {num.max:g}, so at least {bound:g} is neither 0 "
                    "nor 1; the schema's bool_domain allows only 0 and 1.")]
    return []


# --- drift and skew comparators ----------------------------------------------------------------

# kind → (treatment, control) as TFDV names them in descriptions.
_COMPARISON_NAMES = {"drift": ("current", "previous"), "skew": ("training", "serving")}


def _compare(
    kind: str,
    comparator: schema_pb2.FeatureComparator,
    stats: statistics_pb2.FeatureNameStatistics,
    control_features: Mapping[str, statistics_pb2.FeatureNameStatistics] | None,
) -> tuple[list[AnomalyInfo.Reason], list[Measurement]]:
    """Distances between a feature and its control, and the thresholds they exceed."""
    has_linf = comparator.infinity_norm.HasField("threshold")
    has_nad = comparator.normalized_abs_difference.HasField("threshold")
    has_jsd = comparator.jensen_shannon_divergence.HasField("threshold")
    if control_features is None or not (has_linf or has_nad or has_jsd):
        return [], []
    treatment, control = _COMPARISON_NAMES[kind]
    control_stats = control_features.get(feature_name(stats))
    if control_stats is None:
        return [_reason(
            AnomalyInfo.COMPARATOR_CONTROL_DATA_MISSING, f"{control} data missing",
            f"The feature is not in the {control} data, so its {kind} cannot be measured; the "
            f"schema's {kind}_comparator compares it with that data.")], []

    reasons, measurements = [], []
    current, baseline = string_value_counts(stats), string_value_counts(control_stats)
    for present, threshold, measure, anomaly, title, setting in (
        (has_linf, comparator.infinity_norm.threshold, Measurement.L_INFTY,
         AnomalyInfo.COMPARATOR_L_INFTY_HIGH, "Linfty distance", "infinity_norm"),
        (has_nad, comparator.normalized_abs_difference.threshold,
         Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE,
         AnomalyInfo.COMPARATOR_NORMALIZED_ABSOLUTE_DIFFERENCE_HIGH, "normalized absolute difference",
         "normalized_abs_difference"),
    ):
        if not present:
            continue
        combined = measure == Measurement.NORMALIZED_ABSOLUTE_DIFFERENCE
        value_at, distance = linf_distance(current, baseline, combined_total=combined)
        measurements.append(Measurement(type=measure, value=distance, threshold=threshold))
        if distance > threshold:
            reasons.append(_reason(
                anomaly, f"High {title} between {treatment} and {control}",
                f"The {title} between {treatment} and {control} is {distance:g}, above the threshold "
                f"{threshold:g} of the schema's {kind}_comparator.{setting}. The value with the largest "
                f"difference is {value_at!r}: {_value_share(current, value_at, treatment)} and "
                f"{_value_share(baseline, value_at, control)}."))
    if has_jsd:
        threshold = comparator.jensen_shannon_divergence.threshold
        divergence = _feature_jsd(stats, control_stats, comparator.jensen_shannon_divergence.source)
        if divergence is not None:
            measurements.append(Measurement(
                type=Measurement.JENSEN_SHANNON_DIVERGENCE, value=divergence, threshold=threshold))
            if divergence > threshold:
                reasons.append(_reason(
                    AnomalyInfo.COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH,
                    f"High approximate Jensen-Shannon divergence between {treatment} and {control}",
                    f"The approximate Jensen-Shannon divergence between {treatment} and {control} "
                    f"is {divergence:g}, above the threshold {threshold:g} of the schema's "
                    f"{kind}_comparator.jensen_shannon_divergence."))
    return reasons, measurements


def _value_share(counts: Mapping[str, float], value: str, side: str) -> str:
    """"40 of 100 current values (40%)": one value's count among all counted values."""
    total = sum(counts.values())
    count = counts.get(value, 0.0)
    share = f" ({_percent(count / total)})" if total else ""
    return f"{_count(count)} of {_count(total)} {side} values{share}"


def linf_distance(
    counts: Mapping[str, float], control_counts: Mapping[str, float], *, combined_total: bool = False
) -> tuple[str, float]:
    """The largest difference of one value's share between two count maps, and that value.

    Shares are each map's counts over its own total (TFDV's L-infinity distance),
    or over both totals together (its normalized absolute difference). Ties go
    to the last value in byte order, as in TFDV.
    """
    if combined_total:
        scale = sum(counts.values()) + sum(control_counts.values())
        a = {k: v / scale for k, v in counts.items()} if scale else dict(counts)
        b = {k: v / scale for k, v in control_counts.items()} if scale else dict(control_counts)
    else:
        a, b = _normalize(counts), _normalize(control_counts)
    best_value, best = "", 0.0
    for key in sorted(a.keys() | b.keys(), key=lambda k: k.encode("utf-8")):
        difference = abs(a.get(key, 0.0) - b.get(key, 0.0))
        if difference >= best:
            best_value, best = key, difference
    return best_value, best


def _normalize(counts: Mapping[str, float]) -> dict[str, float]:
    total = sum(counts.values())
    return {k: v / total for k, v in counts.items()} if total else dict(counts)


def _feature_jsd(
    stats: statistics_pb2.FeatureNameStatistics,
    control_stats: statistics_pb2.FeatureNameStatistics,
    source: schema_pb2.HistogramSelection,
) -> float | None:
    """JSD over value counts for categorical features, else over the selected histograms."""
    current, baseline = string_value_counts(stats), string_value_counts(control_stats)
    if current and baseline:
        if any(c <= 0 for c in (*current.values(), *baseline.values())):
            return None
        return _jsd(_normalize(current), _normalize(baseline))
    wanted = (
        statistics_pb2.Histogram.QUANTILES
        if source.type == schema_pb2.HistogramSelection.QUANTILES
        else statistics_pb2.Histogram.STANDARD
    )
    histograms = [
        next((h for h in s.num_stats.histograms if h.type == wanted), None)
        for s in (stats, control_stats)
    ]
    if any(h is None for h in histograms):
        return None
    return jensen_shannon_divergence(*histograms)


def jensen_shannon_divergence(
    histogram: statistics_pb2.Histogram, control_histogram: statistics_pb2.Histogram
) -> float | None:
    """Approximate JSD (log base 2, capped at 1) between two numeric histograms, as TFDV computes it.

    The histograms are first put on common buckets: zero-width buckets become
    point masses, buckets with an infinite bound one mass each, NaNs one more;
    the finite buckets are cut at the union of both bucket boundaries, assuming
    values spread uniformly within a bucket. None when either histogram is empty.
    """
    p = _aligned_masses(histogram, control_histogram)
    q = _aligned_masses(control_histogram, histogram)
    # The infinite and NaN masses are laid out so each side's falls in its own slot.
    p_extra, q_extra = _extra_masses(histogram, control_histogram)
    p, q = np.concatenate([p, p_extra]), np.concatenate([q, q_extra])
    if p.sum() == 0 or q.sum() == 0:
        return None
    return _jsd(p / p.sum(), q / q.sum())


def _aligned_masses(histogram: statistics_pb2.Histogram, other: statistics_pb2.Histogram) -> np.ndarray:
    """`histogram`'s finite masses on buckets cut at both histograms' boundaries, then point masses."""
    boundaries = sorted(
        {x for h in (histogram, other) for b in _finite_ranges(h) for x in (b.low_value, b.high_value)}
    )
    masses = np.zeros(max(len(boundaries) - 1, 0))
    edges = np.asarray(boundaries)
    for bucket in _finite_ranges(histogram):
        lo = np.searchsorted(edges, bucket.low_value)
        hi = np.searchsorted(edges, bucket.high_value)
        widths = np.diff(edges[lo : hi + 1])
        masses[lo:hi] += bucket.sample_count * widths / (bucket.high_value - bucket.low_value)
    points = sorted({b.low_value for h in (histogram, other) for b in _point_buckets(h)})
    own_points: dict[float, float] = {}
    for bucket in _point_buckets(histogram):
        own_points[bucket.low_value] = own_points.get(bucket.low_value, 0.0) + bucket.sample_count
    return np.concatenate([masses, [own_points.get(x, 0.0) for x in points]])


def _finite_ranges(histogram: statistics_pb2.Histogram) -> list[statistics_pb2.Histogram.Bucket]:
    return [
        b for b in histogram.buckets
        if math.isfinite(b.low_value) and math.isfinite(b.high_value) and b.low_value != b.high_value
    ]


def _point_buckets(histogram: statistics_pb2.Histogram) -> list[statistics_pb2.Histogram.Bucket]:
    return [
        b for b in histogram.buckets
        if math.isfinite(b.low_value) and b.low_value == b.high_value
    ]


def _extra_masses(
    histogram: statistics_pb2.Histogram, control: statistics_pb2.Histogram
) -> tuple[np.ndarray, np.ndarray]:
    """Infinite-bound and NaN masses as slots that never overlap between the two sides (TFDV)."""

    def infinite(h: statistics_pb2.Histogram) -> float:
        return sum(
            b.sample_count for b in h.buckets
            if not (math.isfinite(b.low_value) and math.isfinite(b.high_value))
        )

    p, q = [], []
    if infinite(histogram):
        p, q = [*p, infinite(histogram)], [*q, 0.0]
    if infinite(control):
        p, q = [*p, 0.0], [*q, infinite(control)]
    if histogram.num_nan > 0 or control.num_nan > 0:
        p, q = [*p, 0.0, histogram.num_nan], [*q, control.num_nan, 0.0]
    return np.asarray(p, dtype=float), np.asarray(q, dtype=float)


def _jsd(p: Mapping[str, float] | np.ndarray, q: Mapping[str, float] | np.ndarray) -> float:
    """JSD(P‖Q) = (KL(P‖M) + KL(Q‖M)) / 2 with M their mean, in bits, capped at 1 like TFDV."""
    if isinstance(p, Mapping):
        keys = sorted(p.keys() | q.keys())
        p = np.asarray([p.get(k, 0.0) for k in keys])
        q = np.asarray([q.get(k, 0.0) for k in keys])
    m = (p + q) / 2

    def kl(x: np.ndarray) -> float:
        mask = (x > 0) & (m > 0)
        return float(np.sum(x[mask] * np.log2(x[mask] / m[mask])))

    return min((kl(p) + kl(q)) / 2, 1.0)


# --- row-level validation ------------------------------------------------------------------


class SplitBatch(NamedTuple):
    """A record batch split into conforming rows and rejected ones (None when there are none)."""

    valid: pa.RecordBatch
    dead_letters: pa.RecordBatch | None


@dataclass(frozen=True)
class _ColumnRule:
    """What the schema demands of each value of one column, precompiled from a Feature."""

    name: str
    feature_type: int
    required: bool
    min_values: int | None
    max_values: int | None
    allowed_strings: frozenset[str] | None
    domain_name: str
    int_range: tuple[int | None, int | None]
    float_range: tuple[float | None, float | None]
    disallow_nan: bool


@dataclass(frozen=True)
class RowValidator:
    """Checks every row of record batches against a schema, vectorised per column.

    A row is rejected when a column the schema requires in every example
    (presence.min_fraction 1.0, or a fixed shape) is missing or null, when it
    has fewer or more values than value_count/shape allow, when a value has the
    wrong type (e.g. a string that is no integer for an INT feature), or when a
    value is outside the feature's string/int/float/bool domain (a string domain
    with `distribution_constraints.min_domain_mass` below 1 is declared
    incomplete, so its unseen values are tolerated). Columns that the
    schema does not know are left alone: a new column is a dataset-level finding
    for `validate_statistics`, not a fault of any one row.
    """

    rules: tuple[_ColumnRule, ...]

    @classmethod
    def from_schema(cls, schema: schema_pb2.Schema, *, environment: str | None = None) -> RowValidator:
        """Compiles the schema's active features (not deprecated, in `environment`) into rules."""
        domains = {d.name: d for d in schema.string_domain}
        rules = []
        for feature in schema.feature:
            if _is_deprecated(feature) or not _in_environment(feature, schema, environment):
                continue
            rules.append(_compile_rule(feature, domains))
        return cls(rules=tuple(rules))

    def split(self, batch: pa.RecordBatch) -> SplitBatch:
        """Splits `batch` into its valid rows (unchanged) and a dead-letter batch with reasons."""
        findings = [
            (reason, mask) for rule in self.rules for reason, mask in _rule_violations(rule, batch)
        ]
        if not findings:
            return SplitBatch(batch, None)
        bad = np.logical_or.reduce([mask for _, mask in findings])
        if not bad.any():
            return SplitBatch(batch, None)
        bad_rows = np.flatnonzero(bad)
        reasons: dict[int, list[str]] = {int(row): [] for row in bad_rows}
        for reason, mask in findings:
            for row in np.flatnonzero(mask):
                reasons[int(row)].append(reason)
        valid = batch.filter(pa.array(~bad))
        rejected = batch.take(pa.array(bad_rows))
        reason_column = pa.array([reasons[int(row)] for row in bad_rows], type=pa.list_(pa.string()))
        dead = rejected.append_column(DEAD_LETTER_REASONS_COLUMN, reason_column)
        return SplitBatch(valid, dead)


def _compile_rule(feature: schema_pb2.Feature, domains: Mapping[str, schema_pb2.StringDomain]) -> _ColumnRule:
    domain = feature.WhichOneof("domain_info")
    allowed: frozenset[str] | None = None
    domain_name = ""
    if domain == "domain":
        domain_name = feature.domain
        if domain_name not in domains:
            raise ValueError(f"the schema refers to string domain {domain_name!r} but does not define it")
        allowed = frozenset(domains[domain_name].value)
    elif domain == "string_domain":
        domain_name = feature.string_domain.name or feature.name
        allowed = frozenset(feature.string_domain.value)
    if allowed is not None and _tolerates_off_domain(feature):
        allowed = None
    if domain == "bool_domain" and feature.type == schema_pb2.BYTES:
        allowed = frozenset(v for v in (feature.bool_domain.true_value, feature.bool_domain.false_value) if v)
        domain_name = "bool_domain"
    int_domain, float_domain = feature.int_domain, feature.float_domain
    min_values = max_values = None
    if feature.HasField("shape"):
        min_values = max_values = math.prod(d.size for d in feature.shape.dim)
    elif feature.HasField("value_count"):
        if feature.value_count.HasField("min"):
            min_values = feature.value_count.min
        if feature.value_count.HasField("max"):
            max_values = feature.value_count.max
    return _ColumnRule(
        name=feature.name,
        feature_type=feature.type,
        required=feature.presence.min_fraction >= 1.0 or feature.HasField("shape"),
        min_values=min_values,
        max_values=max_values,
        allowed_strings=allowed,
        domain_name=domain_name,
        int_range=(
            int_domain.min if domain == "int_domain" and int_domain.HasField("min") else None,
            int_domain.max if domain == "int_domain" and int_domain.HasField("max") else None,
        ),
        float_range=(
            float_domain.min if domain == "float_domain" and float_domain.HasField("min") else None,
            float_domain.max if domain == "float_domain" and float_domain.HasField("max") else None,
        ),
        disallow_nan=domain == "float_domain" and float_domain.disallow_nan,
    )


def _tolerates_off_domain(feature: schema_pb2.Feature) -> bool:
    """A min_domain_mass below 1 declares the domain incomplete: unseen values are no row's fault."""
    constraints = feature.distribution_constraints
    return constraints.HasField("min_domain_mass") and constraints.min_domain_mass < 1.0


def _rule_violations(rule: _ColumnRule, batch: pa.RecordBatch) -> Iterator[tuple[str, np.ndarray]]:
    """(reason, row mask) for each way the rows of `batch` break `rule`."""
    n = batch.num_rows
    index = batch.schema.get_field_index(rule.name)
    if index < 0:
        if rule.required:
            yield (f"{rule.name}: SCHEMA_MISSING_COLUMN: the column is missing", np.ones(n, dtype=bool))
        return
    column = batch.column(index)
    present = _to_numpy(column.is_valid())
    if rule.required:
        yield (
            f"{rule.name}: FEATURE_TYPE_LOW_FRACTION_PRESENT: missing a value the schema "
            "requires in every example",
            ~present,
        )
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        values = pc.list_flatten(column)
        parents = _to_numpy(pc.list_parent_indices(column))
        lengths = _to_numpy(pc.list_value_length(column).fill_null(0))
    else:
        values = column
        parents = np.arange(n)
        lengths = present.astype(np.int64)
    if rule.min_values is not None:
        yield (
            f"{rule.name}: FEATURE_TYPE_LOW_NUMBER_VALUES: fewer than {rule.min_values} values",
            present & (lengths < rule.min_values),
        )
    if rule.max_values is not None:
        yield (
            f"{rule.name}: FEATURE_TYPE_HIGH_NUMBER_VALUES: more than {rule.max_values} values",
            present & (lengths > rule.max_values),
        )
    if pa.types.is_dictionary(values.type):  # Parquet often reads strings dictionary-encoded
        values = values.dictionary_decode()
    wrong_type = _wrong_type(rule.feature_type, values)
    if wrong_type is not None:
        yield (
            f"{rule.name}: UNEXPECTED_DATA_TYPE: a value is not of type "
            f"{schema_pb2.FeatureType.Name(rule.feature_type)}",
            _rows_of(wrong_type, parents, n),
        )
        return  # domain checks would only restate the type error
    for reason, bad_values in _domain_violations(rule, values):
        yield (f"{rule.name}: {reason}", _rows_of(bad_values, parents, n))


def _to_numpy(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    return np.asarray(array.to_numpy(zero_copy_only=False))


def _rows_of(bad_values: pa.Array, parents: np.ndarray, num_rows: int) -> np.ndarray:
    """Row mask from a per-value mask: a row is bad when any of its values is."""
    mask = np.zeros(num_rows, dtype=bool)
    bad = _to_numpy(bad_values.fill_null(False))
    mask[parents[bad]] = True
    return mask


_INT_PATTERN = r"^\s*[+-]?\d+\s*$"
_FLOAT_PATTERN = r"^\s*[+-]?(\d+\.?\d*([eE][+-]?\d+)?|\.\d+([eE][+-]?\d+)?|inf|nan|infinity)\s*$"


def _wrong_type(feature_type: int, values: pa.Array) -> pa.Array | None:
    """Per-value mask of values that cannot be of `feature_type`, or None when all can."""
    value_type = values.type
    numeric = pa.types.is_integer(value_type) or pa.types.is_boolean(value_type)
    textual = pa.types.is_string(value_type) or pa.types.is_large_string(value_type)
    binary = textual or pa.types.is_binary(value_type) or pa.types.is_large_binary(value_type)
    if feature_type == schema_pb2.INT:
        if numeric:
            return None
        if pa.types.is_floating(value_type):
            finite = pc.is_finite(values)
            return pc.invert(pc.and_(finite, pc.equal(values, pc.floor(values))))
        if textual:
            return pc.invert(pc.match_substring_regex(values, _INT_PATTERN))
    elif feature_type == schema_pb2.FLOAT:
        if numeric or pa.types.is_floating(value_type):
            return None
        if textual:
            return pc.invert(pc.match_substring_regex(values, _FLOAT_PATTERN, ignore_case=True))
    elif feature_type == schema_pb2.BYTES:
        if binary:
            return None
    else:
        return None  # STRUCT and untyped features have no value-level type to check
    return pc.is_valid(values)


def _domain_violations(rule: _ColumnRule, values: pa.Array) -> Iterable[tuple[str, pa.Array]]:
    """(reason, per-value mask) for values outside the rule's domain."""
    if rule.allowed_strings is not None:
        allowed = pa.array(sorted(rule.allowed_strings), type=pa.string())
        as_text = values if pa.types.is_string(values.type) else values.cast(pa.string())
        yield (
            "ENUM_TYPE_UNEXPECTED_STRING_VALUES: value not in string domain "
            f"{rule.domain_name!r}",
            pc.and_(pc.is_valid(as_text), pc.invert(pc.is_in(as_text, value_set=allowed))),
        )
    numbers = values
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        if rule.int_range == (None, None) and rule.float_range == (None, None):
            return
        numbers = values.cast(pa.float64())  # the type check has already vetted the text
    low, high = rule.int_range if rule.int_range != (None, None) else rule.float_range
    kind = "INT" if rule.int_range != (None, None) else "FLOAT"
    if low is not None:
        yield (f"{kind}_TYPE_SMALL_{kind}: value below the domain's min {low}", pc.less(numbers, low))
    if high is not None:
        yield (f"{kind}_TYPE_BIG_{kind}: value above the domain's max {high}", pc.greater(numbers, high))
    if rule.disallow_nan and pa.types.is_floating(numbers.type):
        yield ("FLOAT_TYPE_HAS_NAN: NaN where the domain disallows it", pc.is_nan(numbers))


class _SplitRowsFn(beam.DoFn):
    """Emits each batch's valid rows on the main output and its rejected rows as dead letters."""

    def __init__(self, validator: RowValidator) -> None:
        self._validator = validator

    def process(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch | pvalue.TaggedOutput]:
        valid, dead = self._validator.split(batch)
        if valid.num_rows:
            yield valid
        if dead is not None:
            yield pvalue.TaggedOutput(ValidateExamples.DEAD_LETTERS, dead)


class ValidatedExamples(NamedTuple):
    """The two outputs of ValidateExamples."""

    # Conforming rows, as record batches with the input's columns.
    valid: beam.PCollection[pa.RecordBatch]
    # Rejected rows, as record batches with the input's columns plus
    # DEAD_LETTER_REASONS_COLUMN: list<string>, one "feature: ANOMALY_TYPE: detail" each.
    dead_letters: beam.PCollection[pa.RecordBatch]


class ValidateExamples(beam.PTransform[beam.PCollection[pa.RecordBatch], ValidatedExamples]):
    """Routes rows that break the schema to a dead-letter output; valid rows flow on.

    Use it in front of training or inference, where one malformed row would
    otherwise fail a whole bundle or silently skew a model. See RowValidator
    for what makes a row invalid.
    """

    DEAD_LETTERS = "dead_letters"

    def __init__(self, schema: schema_pb2.Schema, *, environment: str | None = None) -> None:
        super().__init__()
        self._validator = RowValidator.from_schema(schema, environment=environment)

    def expand(self, batches: beam.PCollection[pa.RecordBatch]) -> ValidatedExamples:
        outputs = batches | "SplitValidRows" >> beam.ParDo(_SplitRowsFn(self._validator)).with_outputs(
            self.DEAD_LETTERS, main="valid"
        )
        return ValidatedExamples(valid=outputs.valid, dead_letters=outputs[self.DEAD_LETTERS])
