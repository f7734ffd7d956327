"""Validation against a schema: statistics-level anomalies (TFDV layout), drift, skew, and
row-level dead letters in a Beam pipeline, on the Chicago taxi data."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pv
import pytest
from apache_beam.testing.util import assert_that
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from beam_ml.transforms.schema import infer_schema, load_schema
from beam_ml.transforms.statistics import generate_statistics_in_memory as generate_statistics
from beam_ml.transforms.validation import (
    DEAD_LETTER_REASONS_COLUMN,
    RowValidator,
    ValidateExamples,
    jensen_shannon_divergence,
    linf_distance,
    validate_statistics,
)

AnomalyInfo = anomalies_pb2.AnomalyInfo
Measurement = anomalies_pb2.DriftSkewInfo.Measurement




@pytest.fixture(scope="module")
def taxi(shared_data: Path) -> pa.Table:
    # Empty fields are missing values, as TFDV's CSV decoder reads them.
    options = pv.ConvertOptions(strings_can_be_null=True)
    return pv.read_csv(shared_data / "chicago_taxi" / "data.csv", convert_options=options)


@pytest.fixture(scope="module")
def taxi_split(taxi: pa.Table) -> tuple[pa.Table, pa.Table]:
    """(train, eval): every third row is eval, a deterministic split of our own."""
    is_eval = np.arange(taxi.num_rows) % 3 == 0
    return taxi.filter(pa.array(~is_eval)), taxi.filter(pa.array(is_eval))


@pytest.fixture(scope="module")
def train_stats(taxi_split):
    return generate_statistics(taxi_split[0])


@pytest.fixture(scope="module")
def eval_stats(taxi_split):
    return generate_statistics(taxi_split[1])


@pytest.fixture(scope="module")
def curated_schema(train_stats) -> schema_pb2.Schema:
    """The inferred training schema with the two edits the TFDV taxi tutorial makes.

    Both are facts of this data, not of our code: `company` has a long tail of
    one-trip companies (10 of eval's are not in train), so the domain is
    allowed 10% unseen mass; `pickup_census_tract` has one value in 15,002 rows
    (it lands in train), so it cannot be required.
    """
    schema = infer_schema(train_stats)
    features = {f.name: f for f in schema.feature}
    features["company"].distribution_constraints.min_domain_mass = 0.9
    features["pickup_census_tract"].presence.min_count = 0
    return schema


def _reason_types(anomalies: anomalies_pb2.Anomalies) -> dict[str, list[str]]:
    return {
        name: [AnomalyInfo.Type.Name(r.type) for r in info.reason]
        for name, info in anomalies.anomaly_info.items()
    }


def _replace(table: pa.Table, name: str, array: pa.Array) -> pa.Table:
    return table.set_column(table.schema.get_field_index(name), name, array)


# --- dataset-level validation on the taxi split ----------------------------------------------


def test_inferred_schema_flags_only_the_datas_own_quirks(train_stats, eval_stats):
    """Uncurated, exactly the two facts of the data the tutorial edits for are reported."""
    anomalies = validate_statistics(eval_stats, infer_schema(train_stats))
    types = _reason_types(anomalies)
    assert types["company"] == ["ENUM_TYPE_UNEXPECTED_STRING_VALUES"]
    assert set(types) <= {"company", "pickup_census_tract"}


def test_eval_split_conforms_to_curated_train_schema(curated_schema, eval_stats):
    anomalies = validate_statistics(eval_stats, curated_schema)
    assert dict(anomalies.anomaly_info) == {}
    assert anomalies.baseline == curated_schema
    assert anomalies.anomaly_name_format == anomalies_pb2.Anomalies.SERIALIZED_PATH


def test_new_value_new_column_and_missing_column_are_exactly_three_anomalies(curated_schema, taxi_split):
    eval_table = taxi_split[1]
    payment = eval_table["payment_type"].to_numpy(zero_copy_only=False).copy()
    payment[:50] = "Bitcoin"
    corrupted = _replace(eval_table, "payment_type", pa.array(payment))
    corrupted = corrupted.append_column("driver_rating", pa.array(np.ones(eval_table.num_rows)))
    corrupted = corrupted.drop_columns(["tips"])

    anomalies = validate_statistics(generate_statistics(corrupted), curated_schema)

    assert _reason_types(anomalies) == {
        "payment_type": ["ENUM_TYPE_UNEXPECTED_STRING_VALUES"],
        "driver_rating": ["SCHEMA_NEW_COLUMN"],
        "tips": ["SCHEMA_MISSING_COLUMN"],
    }
    payment_info = anomalies.anomaly_info["payment_type"]
    assert payment_info.severity == AnomalyInfo.ERROR
    assert list(payment_info.path.step) == ["payment_type"]
    assert payment_info.short_description == "Unexpected string values"
    assert payment_info.description == (
        f"50 of {eval_table.num_rows} values (1%) are not in the schema's domain 'payment_type' of 7 "
        "values: Bitcoin (50, 1%); the schema allows none outside it."
    )
    assert anomalies.anomaly_info["driver_rating"].description == (
        f"New column: present in {eval_table.num_rows} of {eval_table.num_rows} rows (100%); the schema has "
        "no such feature."
    )
    assert anomalies.anomaly_info["tips"].short_description == "Column dropped"
    assert anomalies.anomaly_info["tips"].description == (
        f"The column is not in the data (0 of {eval_table.num_rows} rows); the schema requires it in 100% of rows and at least 1 row."
    )


def test_user_edited_tfx_schema_validates_the_taxi_data(shared_data, taxi):
    """TFX's hand-edited schema was written for TFX's own sample: this sample breaks it in two ways.

    Two trips lack a pickup location where the schema requires one everywhere,
    and 11 small companies are not in its `company` domain.
    """
    schema = load_schema(str(shared_data / "chicago_taxi" / "tfx_user_schema.pbtxt"))
    anomalies = validate_statistics(generate_statistics(taxi), schema)
    low_presence = ["FEATURE_TYPE_LOW_FRACTION_PRESENT"]
    assert _reason_types(anomalies) == {
        "company": ["ENUM_TYPE_UNEXPECTED_STRING_VALUES"],
        "pickup_community_area": low_presence,
        "pickup_latitude": low_presence,
        "pickup_longitude": low_presence,
    }
    assert anomalies.anomaly_info["pickup_latitude"].description == (
        "Present in 15000 of 15002 rows (99.99%); the schema requires 100%."
    )
    assert "6743 - Luhak Corp (1, 0.01%)" in anomalies.anomaly_info["company"].description


def test_environment_exempts_a_label_missing_at_serving(curated_schema, taxi_split):
    schema = schema_pb2.Schema()
    schema.CopyFrom(curated_schema)
    schema.default_environment.extend(["TRAINING", "SERVING"])
    next(f for f in schema.feature if f.name == "tips").not_in_environment.append("SERVING")
    serving = generate_statistics(taxi_split[1].drop_columns(["tips"]))
    assert dict(validate_statistics(serving, schema, environment="SERVING").anomaly_info) == {}
    assert "tips" in validate_statistics(serving, schema, environment="TRAINING").anomaly_info
    with pytest.raises(ValueError, match="environment"):
        validate_statistics(serving, schema, environment="STAGING")


# --- drift and skew --------------------------------------------------------------------------


def _with_comparators(schema: schema_pb2.Schema, kind: str) -> schema_pb2.Schema:
    """payment_type by L-infinity, trip_start_hour by Jensen-Shannon, thresholds as a user would set.

    Not fare: TFDV's JSD reads the equal-width STANDARD histogram, and one $700
    fare in train puts 99.9% of its mass in the first of ten buckets, so even
    the two halves of one sample are 0.33 apart. That is TFDV's semantics too.
    """
    result = schema_pb2.Schema()
    result.CopyFrom(schema)
    features = {f.name: f for f in result.feature}
    getattr(features["payment_type"], kind).infinity_norm.threshold = 0.05
    getattr(features["trip_start_hour"], kind).jensen_shannon_divergence.threshold = 0.05
    return result


def _later_hours(table: pa.Table) -> pa.Table:
    return _replace(table, "trip_start_hour", pc.add(table["trip_start_hour"], 6))


def _fewer_cash_rides(table: pa.Table) -> pa.Table:
    """Drops four in five cash rides: the payment mix changes, nothing else does much."""
    is_cash = pc.equal(table["payment_type"], "Cash").to_numpy(zero_copy_only=False)
    keep = ~is_cash | (np.arange(table.num_rows) % 5 == 0)
    return table.filter(pa.array(keep))


@pytest.mark.parametrize("kind", ["drift_comparator", "skew_comparator"])
def test_same_distribution_passes_and_reports_distances(kind, curated_schema, train_stats, eval_stats):
    schema = _with_comparators(curated_schema, kind)
    control = {"previous_statistics" if kind == "drift_comparator" else "serving_statistics": train_stats}
    anomalies = validate_statistics(eval_stats, schema, **control)
    assert dict(anomalies.anomaly_info) == {}
    infos = {info.path.step[0]: info for info in anomalies.drift_skew_info}
    assert set(infos) == {"trip_start_hour", "payment_type"}
    field = "drift_measurements" if kind == "drift_comparator" else "skew_measurements"
    (linf,) = getattr(infos["payment_type"], field)
    (jsd,) = getattr(infos["trip_start_hour"], field)
    assert linf.type == Measurement.L_INFTY and 0 <= linf.value < 0.05 and linf.threshold == pytest.approx(0.05)
    assert jsd.type == Measurement.JENSEN_SHANNON_DIVERGENCE and 0 <= jsd.value < 0.05


def test_drift_flags_shifted_numeric_and_changed_category_mix(curated_schema, taxi_split, train_stats):
    schema = _with_comparators(curated_schema, "drift_comparator")
    current = generate_statistics(_fewer_cash_rides(_later_hours(taxi_split[1])))
    anomalies = validate_statistics(current, schema, previous_statistics=train_stats)

    assert _reason_types(anomalies) == {
        "trip_start_hour": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
        "payment_type": ["COMPARATOR_L_INFTY_HIGH"],
    }
    linf_info = anomalies.anomaly_info["payment_type"]
    assert linf_info.short_description == "High Linfty distance between current and previous"
    distance = {i.path.step[0]: i for i in anomalies.drift_skew_info}["payment_type"].drift_measurements[0].value
    assert linf_info.description.startswith(
        f"The Linfty distance between current and previous is {distance:g}, above the threshold 0.05 of the "
        "schema's drift_comparator.infinity_norm. The value with the largest difference is 'Cash': "
    )
    infos = {info.path.step[0]: info for info in anomalies.drift_skew_info}
    assert infos["payment_type"].drift_measurements[0].value > 0.05
    assert infos["trip_start_hour"].drift_measurements[0].value > 0.05
    assert "Jensen-Shannon divergence between current and previous" in anomalies.anomaly_info["trip_start_hour"].description


def test_skew_flags_serving_data_that_differs_from_training(curated_schema, taxi_split, train_stats):
    schema = _with_comparators(curated_schema, "skew_comparator")
    serving = generate_statistics(_fewer_cash_rides(_later_hours(taxi_split[1])))
    anomalies = validate_statistics(train_stats, schema, serving_statistics=serving)

    assert _reason_types(anomalies) == {
        "trip_start_hour": ["COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"],
        "payment_type": ["COMPARATOR_L_INFTY_HIGH"],
    }
    assert anomalies.anomaly_info["payment_type"].short_description == (
        "High Linfty distance between training and serving"
    )
    infos = {info.path.step[0]: info for info in anomalies.drift_skew_info}
    assert infos["trip_start_hour"].skew_measurements[0].value > 0.05
    assert not infos["trip_start_hour"].drift_measurements


def test_comparator_without_control_feature_reports_missing_control(curated_schema, taxi_split, train_stats):
    schema = _with_comparators(curated_schema, "drift_comparator")
    previous = generate_statistics(taxi_split[0].drop_columns(["payment_type"]))
    anomalies = validate_statistics(train_stats, schema, previous_statistics=previous)
    assert _reason_types(anomalies) == {"payment_type": ["COMPARATOR_CONTROL_DATA_MISSING"]}


# --- hand-made statistics: the rules one by one ------------------------------------------------


def _one_feature_stats(**common) -> statistics_pb2.DatasetFeatureStatisticsList:
    result = statistics_pb2.DatasetFeatureStatisticsList()
    dataset = result.datasets.add(num_examples=100)
    feature = dataset.features.add(name="x", type=statistics_pb2.FeatureNameStatistics.INT)
    feature.num_stats.min, feature.num_stats.max = 0, 50
    feature.num_stats.common_stats.MergeFrom(statistics_pb2.CommonStatistics(**common))
    return result


def test_presence_value_count_type_and_int_domain_reasons():
    schema = schema_pb2.Schema()
    feature = schema.feature.add(name="x", type=schema_pb2.FLOAT)
    feature.presence.min_fraction = 1.0
    feature.presence.min_count = 95
    feature.value_count.max = 1
    feature.int_domain.max = 10
    stats = _one_feature_stats(num_non_missing=90, num_missing=10, min_num_values=1, max_num_values=3)
    info = validate_statistics(stats, schema).anomaly_info["x"]
    assert [AnomalyInfo.Type.Name(r.type) for r in info.reason] == [
        "FEATURE_TYPE_HIGH_NUMBER_VALUES",
        "FEATURE_TYPE_LOW_NUMBER_PRESENT",
        "FEATURE_TYPE_LOW_FRACTION_PRESENT",
        "UNEXPECTED_DATA_TYPE",
        "INT_TYPE_BIG_INT",
    ]
    assert info.short_description == "Multiple errors"
    assert info.reason[3].description == "Expected data of type: FLOAT but got INT"
    assert info.reason[2].description == "Present in 90 of 100 rows (90%); the schema requires 100%."


def test_feature_present_in_no_example_is_not_present():
    schema = schema_pb2.Schema()
    schema.feature.add(name="x", type=schema_pb2.INT).presence.min_count = 1
    info = validate_statistics(_one_feature_stats(num_missing=100), schema).anomaly_info["x"]
    assert [AnomalyInfo.Type.Name(r.type) for r in info.reason] == ["FEATURE_TYPE_NOT_PRESENT"]


def test_linf_distance_and_jsd_match_hand_computation():
    assert linf_distance({"a": 3, "b": 1}, {"a": 1, "b": 1}) == ("b", pytest.approx(0.25))
    same = statistics_pb2.Histogram(buckets=[
        statistics_pb2.Histogram.Bucket(low_value=0, high_value=1, sample_count=5),
        statistics_pb2.Histogram.Bucket(low_value=1, high_value=2, sample_count=5),
    ])
    assert jensen_shannon_divergence(same, same) == pytest.approx(0.0)
    disjoint = statistics_pb2.Histogram(buckets=[
        statistics_pb2.Histogram.Bucket(low_value=5, high_value=6, sample_count=5),
    ])
    assert jensen_shannon_divergence(same, disjoint) == pytest.approx(1.0)
    # Half of `same` lies in [0, 0.5] ∪ ... rebucketed uniformly: overlap of one half-bucket.
    shifted = statistics_pb2.Histogram(buckets=[
        statistics_pb2.Histogram.Bucket(low_value=1, high_value=3, sample_count=10),
    ])
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.0, 0.5, 0.5])
    m = (p + q) / 2
    expected = sum(x * np.log2(x / y) for x, y in zip(np.r_[p, q], np.r_[m, m], strict=True) if x > 0) / 2
    assert jensen_shannon_divergence(same, shifted) == pytest.approx(expected)


# --- descriptions state the measured figure and the schema's expectation ---------------------


def test_penguin_feature_missing_in_two_rows_says_how_many(tmp_path):
    """The demo's case: bill_depth_mm lacks 2 of 344 values where the schema, inferred from
    complete rows, requires it in every row. Not "Column dropped": it is there, nearly always."""
    import palmerpenguins  # the package ships the raw CSV ('NA' for missing)

    path = Path(palmerpenguins.__file__).parent / "data" / "penguins.csv"
    penguins = pv.read_csv(path, convert_options=pv.ConvertOptions(null_values=["NA"], strings_can_be_null=True))
    complete = penguins.filter(pc.is_valid(penguins["bill_depth_mm"]))
    schema = infer_schema(generate_statistics(complete))
    assert next(f for f in schema.feature if f.name == "bill_depth_mm").presence.min_fraction == 1.0

    info = validate_statistics(generate_statistics(penguins), schema).anomaly_info["bill_depth_mm"]

    reasons = {AnomalyInfo.Type.Name(r.type): r for r in info.reason}
    assert set(reasons) == {"FEATURE_TYPE_LOW_FRACTION_PRESENT", "INVALID_FEATURE_SHAPE"}
    presence = reasons["FEATURE_TYPE_LOW_FRACTION_PRESENT"]
    assert presence.description == "Present in 342 of 344 rows (99.4%); the schema requires 100%."
    assert presence.short_description == "Missing in some rows"
    # The inferred schema also gives it shape [1], which a missing value breaks.
    assert reasons["INVALID_FEATURE_SHAPE"].description == (
        "It is missing in 2 rows; the schema's shape [1] needs exactly 1 value in every row."
    )
    assert not any("dropped" in r.short_description for r in info.reason)


def _schema(text: str) -> schema_pb2.Schema:
    return text_format.Parse(text, schema_pb2.Schema())


def _described(columns: dict, schema_text: str, feature: str = "x", **kwargs) -> AnomalyInfo.Reason:
    """The one reason validation gives for `feature` of a table made of `columns`."""
    anomalies = validate_statistics(generate_statistics(pa.table(columns)), _schema(schema_text), **kwargs)
    reasons = list(anomalies.anomaly_info[feature].reason)
    assert len(reasons) == 1, reasons
    return reasons[0]


def _statistics(columns: dict) -> statistics_pb2.DatasetFeatureStatisticsList:
    return generate_statistics(pa.table(columns))


# (anomaly type, table, schema, keyword arguments of validate_statistics) → what the text must say.
DESCRIBED_FROM_DATA = {
    "new_column": (
        "SCHEMA_NEW_COLUMN", {"x": [1, 2, None, 4], "y": [1, 2, 3, 4]},
        'feature { name: "y" type: INT }', {},
        "New column: present in 3 of 4 rows (75%); the schema has no such feature.",
    ),
    "missing_column": (
        "SCHEMA_MISSING_COLUMN", {"y": [1, 2]},
        'feature { name: "x" type: INT presence { min_fraction: 1.0 } } feature { name: "y" type: INT }', {},
        "The column is not in the data (0 of 2 rows); the schema requires it in 100% of rows.",
    ),
    "not_present": (
        "FEATURE_TYPE_NOT_PRESENT", {"x": pa.array([None, None, None], pa.int64())},
        'feature { name: "x" type: INT presence { min_count: 1 } }', {},
        "The column has no value in any row (present in 0 of 3 rows); the schema requires it in at least 1 row.",
    ),
    "not_in_environment": (
        "SCHEMA_NEW_COLUMN", {"x": [1, 2, 3, 4]},
        'default_environment: "TRAINING" default_environment: "SERVING" '
        'feature { name: "x" type: INT not_in_environment: "SERVING" }', {"environment": "SERVING"},
        "Column x is present in 4 of 4 rows (100%), but the schema excludes it from the environment SERVING.",
    ),
    "few_values": (
        "FEATURE_TYPE_LOW_NUMBER_VALUES", {"x": [[1, 2], [1], [1, 2]]},
        'feature { name: "x" type: INT value_count { min: 2 } }', {},
        "The fewest values in a row is 1; the schema requires at least 2.",
    ),
    "many_values": (
        "FEATURE_TYPE_HIGH_NUMBER_VALUES", {"x": [[1, 2], [1, 2, 3], [1]]},
        'feature { name: "x" type: INT value_count { max: 2 } }', {},
        "The most values in a row is 3; the schema allows at most 2.",
    ),
    "shape_not_always_present": (
        "INVALID_FEATURE_SHAPE", {"x": [[1.0, 2.0], None, [3.0, 4.0]]},
        'feature { name: "x" type: FLOAT shape { dim { size: 2 } } }', {},
        "It is missing in 1 row; the schema's shape [2] needs exactly 2 values in every row.",
    ),
    "shape_other_length": (
        "INVALID_FEATURE_SHAPE", {"x": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]},
        'feature { name: "x" type: FLOAT shape { dim { size: 2 } } }', {},
        "Every row has 3 values; the schema's shape [2] needs exactly 2 values in every row.",
    ),
    "present_in_few_rows": (
        "FEATURE_TYPE_LOW_NUMBER_PRESENT", {"x": [1, None, None, 4]},
        'feature { name: "x" type: INT presence { min_count: 3 } }', {},
        "Present in 2 of 4 rows; the schema requires at least 3.",
    ),
    "present_in_low_fraction": (
        "FEATURE_TYPE_LOW_FRACTION_PRESENT", {"x": [1, None, 3, 4]},
        'feature { name: "x" type: INT presence { min_fraction: 0.9 } }', {},
        "Present in 3 of 4 rows (75%); the schema requires 90%.",
    ),
    "unexpected_type": (
        "UNEXPECTED_DATA_TYPE", {"x": [1.5, 2.5]},
        'feature { name: "x" type: INT }', {},
        "Expected data of type: INT but got FLOAT",
    ),
    "values_outside_string_domain": (
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES", {"x": ["a", "b", "c", "c", "d", "a", "a", "a"]},
        'feature { name: "x" type: BYTES string_domain { name: "letters" value: "a" value: "b" } }', {},
        "3 of 8 values (37.5%) are not in the schema's domain 'letters' of 2 values: c (2, 25%), "
        "d (1, 12.5%); the schema allows none outside it.",
    ),
    "values_outside_incomplete_string_domain": (
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES", {"x": ["a"] * 8 + ["c", "c"]},
        'feature { name: "x" type: BYTES string_domain { value: "a" } '
        "distribution_constraints { min_domain_mass: 0.9 } }", {},
        "2 of 10 values (20%) are not in the schema's domain 'x' of 1 values: c (2, 20%); the schema allows "
        "at most 10% (min_domain_mass 0.9) outside it.",
    ),
    "strings_that_are_not_ints": (
        "INT_TYPE_NOT_INT_STRING", {"x": ["1", "2", "x"]},
        'feature { name: "x" type: BYTES int_domain { min: 0 } }', {},
        '1 of the 3 distinct values seen are not integers, such as "x"; the schema\'s int_domain requires integers.',
    ),
    "int_below_min": (
        "INT_TYPE_SMALL_INT", {"x": [-5, 1, 2, 3, 4, 5, 6, 7, 8, 9]},
        'feature { name: "x" type: INT int_domain { min: 0 } }', {},
        "The smallest value is -5, below the schema's int_domain min 0 (up to about ",
    ),
    "int_above_max": (
        "INT_TYPE_BIG_INT", {"x": [1, 2, 3, 4, 5, 6, 7, 8, 9, 300]},
        'feature { name: "x" type: INT int_domain { max: 100 } }', {},
        "The largest value is 300, above the schema's int_domain max 100 (up to about ",
    ),
    "string_ints_above_max": (
        "INT_TYPE_BIG_INT", {"x": ["1", "2", "2", "300"]},
        'feature { name: "x" type: BYTES int_domain { max: 100 } }', {},
        "The largest value is 300, above the schema's int_domain max 100 (1 of 4 values are above it).",
    ),
    "nan": (
        "FLOAT_TYPE_HAS_NAN", {"x": [1.0, math.nan, 2.0, math.nan]},
        'feature { name: "x" type: FLOAT float_domain { disallow_nan: true } }', {},
        "2 of 4 values are NaN; the schema's float_domain disallows NaN.",
    ),
    "float_below_min": (
        "FLOAT_TYPE_SMALL_FLOAT", {"x": [-1.5, 0.5, 1.0, 1.5]},
        'feature { name: "x" type: FLOAT float_domain { min: 0 } }', {},
        "The smallest value is -1.5, below the schema's float_domain min 0 (up to about ",
    ),
    "float_above_max": (
        "FLOAT_TYPE_BIG_FLOAT", {"x": [0.5, 1.0, 1.5, 2.5]},
        'feature { name: "x" type: FLOAT float_domain { max: 2 } }', {},
        "The largest value is 2.5, above the schema's float_domain max 2 (up to about ",
    ),
    "infinity": (
        "FLOAT_TYPE_HAS_INF", {"x": [1.0, math.inf, 2.0]},
        'feature { name: "x" type: FLOAT float_domain { disallow_inf: true } }', {},
        "1 of 3 values are infinite (min 1, max inf); the schema's float_domain disallows Inf.",
    ),
    "bool_string": (
        "BOOL_TYPE_UNEXPECTED_STRING", {"x": ["true", "false", "yes", "true"]},
        'feature { name: "x" type: BYTES bool_domain { true_value: "true" false_value: "false" } }', {},
        '1 of 4 values are not in the schema\'s bool_domain {"false", "true"}: "yes" (1).',
    ),
    "bool_int_below_0": (
        "BOOL_TYPE_SMALL_INT", {"x": [0, 1, -1, 1]},
        'feature { name: "x" type: INT bool_domain { } }', {},
        "The smallest value is -1 (up to about ",
    ),
    "bool_int_above_1": (
        "BOOL_TYPE_BIG_INT", {"x": [0, 1, 2, 1]},
        'feature { name: "x" type: INT bool_domain { } }', {},
        "The largest value is 2 (up to about ",
    ),
    "bool_float": (
        "BOOL_TYPE_UNEXPECTED_FLOAT", {"x": [0.0, 1.0, 1.5]},
        'feature { name: "x" type: FLOAT bool_domain { } }', {},
        "Values range from 0 to 1.5, so at least 1.5 is neither 0 nor 1; the schema's bool_domain allows only 0 and 1.",
    ),
}


@pytest.mark.parametrize("case", DESCRIBED_FROM_DATA.values(), ids=DESCRIBED_FROM_DATA.keys())
def test_each_anomaly_describes_the_measurement_and_the_expectation(case):
    anomaly_type, columns, schema_text, kwargs, expected = case
    reason = _described(columns, schema_text, **kwargs)
    assert AnomalyInfo.Type.Name(reason.type) == anomaly_type
    assert reason.description.startswith(expected), reason.description


def test_comparator_descriptions_give_distance_threshold_and_comparator():
    current = _statistics({"x": ["a", "a", "a", "b"], "h": [1.0, 2.0, 3.0, 4.0]})
    previous = _statistics({"x": ["a", "b", "b", "b"], "h": [100.0, 101.0, 102.0, 103.0]})
    schema = _schema(
        'feature { name: "x" type: BYTES drift_comparator { infinity_norm { threshold: 0.1 } } '
        "skew_comparator { normalized_abs_difference { threshold: 0.1 } } } "
        'feature { name: "h" type: FLOAT drift_comparator { jensen_shannon_divergence { threshold: 0.1 } } }'
    )
    drift = validate_statistics(current, schema, previous_statistics=previous).anomaly_info
    assert drift["x"].reason[0].description == (
        "The Linfty distance between current and previous is 0.5, above the threshold 0.1 of the schema's "
        "drift_comparator.infinity_norm. The value with the largest difference is 'b': 1 of 4 current values "
        "(25%) and 3 of 4 previous values (75%)."
    )
    assert drift["h"].reason[0].description == (
        "The approximate Jensen-Shannon divergence between current and previous is 1, above the threshold "
        "0.1 of the schema's drift_comparator.jensen_shannon_divergence."
    )
    skew = validate_statistics(current, schema, serving_statistics=previous).anomaly_info
    assert skew["x"].reason[0].description == (
        "The normalized absolute difference between training and serving is 0.25, above the threshold 0.1 "
        "of the schema's skew_comparator.normalized_abs_difference. The value with the largest difference is "
        "'b': 1 of 4 training values (25%) and 3 of 4 serving values (75%)."
    )
    missing = validate_statistics(current, schema, previous_statistics=_statistics({"h": [1.0]})).anomaly_info
    assert AnomalyInfo.Type.Name(missing["x"].reason[0].type) == "COMPARATOR_CONTROL_DATA_MISSING"
    assert missing["x"].reason[0].description == (
        "The feature is not in the previous data, so its drift cannot be measured; the schema's "
        "drift_comparator compares it with that data."
    )


def test_descriptions_of_kinds_our_statistics_do_not_produce():
    """Nested lists, invalid UTF-8 and BYTES statistics come from other producers (TFDV's
    statistics can be validated too): hand-made statistics with known figures."""
    stats = _one_feature_stats(num_non_missing=100, presence_and_valency_stats=[
        statistics_pb2.PresenceAndValencyStatistics(num_non_missing=100, min_num_values=1, max_num_values=2),
        statistics_pb2.PresenceAndValencyStatistics(num_non_missing=150, min_num_values=1, max_num_values=3),
    ])
    nested = validate_statistics(stats, _schema('feature { name: "x" type: INT value_count { max: 2 } }'))
    (reason,) = nested.anomaly_info["x"].reason
    assert AnomalyInfo.Type.Name(reason.type) == "VALUE_NESTEDNESS_MISMATCH"
    assert reason.description.startswith("The values are nested 2 levels deep; the schema's value_count describes one level")

    utf8 = statistics_pb2.DatasetFeatureStatisticsList()
    feature = utf8.datasets.add(num_examples=10).features.add(name="x", type=statistics_pb2.FeatureNameStatistics.STRING)
    feature.string_stats.common_stats.num_non_missing = 10
    feature.string_stats.common_stats.tot_num_values = 10
    feature.string_stats.invalid_utf8_count = 3
    (reason,) = validate_statistics(utf8, _schema('feature { name: "x" type: BYTES string_domain { value: "a" } }')).anomaly_info["x"].reason
    assert AnomalyInfo.Type.Name(reason.type) == "ENUM_TYPE_INVALID_UTF8"
    assert reason.description == "3 of 10 values are not valid UTF-8; the schema's string domain holds text."

    feature.type = statistics_pb2.FeatureNameStatistics.BYTES
    (reason,) = validate_statistics(utf8, _schema('feature { name: "x" type: BYTES int_domain { min: 0 } }')).anomaly_info["x"].reason
    assert AnomalyInfo.Type.Name(reason.type) == "DOMAIN_INVALID_FOR_TYPE"
    assert reason.description == (
        "The data is BYTES, but the schema gives the feature a int_domain; BYTES data takes only a "
        "natural_language_domain, image_domain or url_domain."
    )


# --- row-level validation ----------------------------------------------------------------------


def _rows_schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    payment = schema.feature.add(name="payment_type", type=schema_pb2.BYTES, domain="payment_type")
    payment.presence.min_fraction = 1.0
    schema.string_domain.add(name="payment_type", value=["Cash", "Credit Card"])
    fare = schema.feature.add(name="fare", type=schema_pb2.FLOAT)
    fare.presence.min_fraction = 1.0
    fare.shape.dim.add(size=1)
    hour = schema.feature.add(name="trip_start_hour", type=schema_pb2.INT)
    hour.int_domain.min, hour.int_domain.max = 0, 23
    return schema


def test_row_validator_splits_a_batch_and_says_why():
    batch = pa.RecordBatch.from_pydict({
        "payment_type": ["Cash", "Bitcoin", "Credit Card", None],
        "fare": [1.0, 2.0, None, 4.0],
        "trip_start_hour": [1, 2, 3, 30],
    })
    valid, dead = RowValidator.from_schema(_rows_schema()).split(batch)
    assert valid.to_pydict() == {"payment_type": ["Cash"], "fare": [1.0], "trip_start_hour": [1]}
    reasons = dead.column(DEAD_LETTER_REASONS_COLUMN).to_pylist()
    assert dead.column("fare").to_pylist() == [2.0, None, 4.0]
    assert [[r.split(": ")[:2] for r in row] for row in reasons] == [
        [["payment_type", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"]],
        [["fare", "FEATURE_TYPE_LOW_FRACTION_PRESENT"]],  # missing, not also "too few values"
        [["payment_type", "FEATURE_TYPE_LOW_FRACTION_PRESENT"], ["trip_start_hour", "INT_TYPE_BIG_INT"]],
    ]


def test_row_validator_reads_dictionary_encoded_strings():
    batch = pa.RecordBatch.from_pydict({
        "payment_type": pa.array(["Cash", "Bitcoin"]).dictionary_encode(),
        "fare": [1.0, 2.0],
    })
    valid, dead = RowValidator.from_schema(_rows_schema()).split(batch)
    assert valid.column("fare").to_pylist() == [1.0]
    assert dead.column("payment_type").to_pylist() == ["Bitcoin"]


def test_row_validator_checks_types_and_list_value_counts():
    schema = schema_pb2.Schema()
    ids = schema.feature.add(name="ids", type=schema_pb2.INT)
    ids.value_count.min, ids.value_count.max = 1, 2
    batch = pa.RecordBatch.from_pydict({"ids": [["1", "2"], ["3", "x"], [], ["4", "5", "6"], None]})
    valid, dead = RowValidator.from_schema(schema).split(batch)
    assert valid.column("ids").to_pylist() == [["1", "2"], None]
    assert [r[0].split(": ")[1] for r in dead.column(DEAD_LETTER_REASONS_COLUMN).to_pylist()] == [
        "UNEXPECTED_DATA_TYPE", "FEATURE_TYPE_LOW_NUMBER_VALUES", "FEATURE_TYPE_HIGH_NUMBER_VALUES",
    ]


def test_validate_examples_in_a_beam_pipeline(taxi_split, curated_schema):
    eval_table = taxi_split[1].slice(0, 3000)
    payment = eval_table["payment_type"].to_numpy(zero_copy_only=False).copy()
    payment[[5, 1500]] = "Bitcoin"
    fare = eval_table["fare"].to_numpy(zero_copy_only=False).astype(object)
    fare[[7, 2500]] = None
    corrupted = _replace(eval_table, "payment_type", pa.array(payment))
    corrupted = _replace(corrupted, "fare", pa.array(fare, type=pa.float64()))
    # A column the schema does not know rides along untouched; it lets us compare in order.
    corrupted = corrupted.append_column("row_id", pa.array(np.arange(corrupted.num_rows)))
    bad_rows = {5, 1500, 7, 2500}
    expected_valid = corrupted.filter(pa.array([i not in bad_rows for i in range(corrupted.num_rows)]))

    def valid_rows_unchanged(batches):
        assert pa.Table.from_batches(batches).sort_by("row_id").equals(expected_valid)

    def dead_letters_with_reasons(batches):
        rows = pa.Table.from_batches(batches).to_pylist()
        reasons = {r["row_id"]: [x.split(": ")[:2] for x in r[DEAD_LETTER_REASONS_COLUMN]] for r in rows}
        unknown_payment = [["payment_type", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"]]
        missing_fare = [["fare", "FEATURE_TYPE_LOW_FRACTION_PRESENT"]]
        assert reasons == {5: unknown_payment, 1500: unknown_payment, 7: missing_fare, 2500: missing_fare}
        assert {r["row_id"]: r["payment_type"] for r in rows}[5] == "Bitcoin"

    with beam.Pipeline("DirectRunner") as pipeline:
        validated = (
            pipeline
            | beam.Create(corrupted.to_batches(max_chunksize=1000))
            | ValidateExamples(curated_schema)
        )
        assert_that(validated.valid, valid_rows_unchanged, label="Valid")
        assert_that(validated.dead_letters, dead_letters_with_reasons, label="DeadLetters")


def test_schema_and_validation_do_not_import_tensorflow(tmp_path):
    script = """
import sys
import pyarrow as pa
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2
from beam_ml.transforms.schema import infer_schema, write_schema, load_schema
from beam_ml.transforms.validation import RowValidator, validate_statistics
stats = statistics_pb2.DatasetFeatureStatisticsList()
feature = stats.datasets.add(num_examples=1).features.add(name="s", type=2)
feature.string_stats.common_stats.num_non_missing = 1
feature.string_stats.rank_histogram.buckets.add(label="a", sample_count=1)
schema = infer_schema(stats)
write_schema(schema, sys.argv[1])
validate_statistics(stats, load_schema(sys.argv[1]))
RowValidator.from_schema(schema).split(pa.RecordBatch.from_pydict({"s": ["a", "b"]}))
assert "tensorflow" not in sys.modules, "tensorflow was imported"
"""
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "schema.pbtxt")], check=True)
