"""Schema inference with TFDV's semantics, and schema.pbtxt files."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from beam_ml.transforms.schema import (
    DEFAULT_SLICE_KEY,
    default_dataset_statistics,
    infer_schema,
    load_schema,
    write_schema,
)

Stats = statistics_pb2.FeatureNameStatistics


@pytest.fixture(scope="module")
def reference_stats(shared_reference: Path) -> statistics_pb2.DatasetFeatureStatisticsList:
    """TFDV 1.16.1's statistics of the taxi data."""
    text = (shared_reference / "tfdv_1.16.1_chicago_taxi_stats.pbtxt").read_text()
    return text_format.Parse(text, statistics_pb2.DatasetFeatureStatisticsList())


@pytest.fixture(scope="module")
def user_schema(shared_data: Path) -> schema_pb2.Schema:
    return load_schema(str(shared_data / "chicago_taxi" / "tfx_user_schema.pbtxt"))


def _features(schema: schema_pb2.Schema) -> dict[str, schema_pb2.Feature]:
    return {f.name: f for f in schema.feature}


def _domains(schema: schema_pb2.Schema) -> dict[str, list[str]]:
    return {d.name: list(d.value) for d in schema.string_domain}


# --- on TFDV's own statistics of the taxi data -------------------------------------------------


def test_types_match_the_tfx_schema_of_the_same_data(reference_stats, user_schema):
    inferred = _features(infer_schema(reference_stats))
    expected = _features(user_schema)
    assert inferred.keys() == expected.keys()
    assert {n: f.type for n, f in inferred.items()} == {n: f.type for n, f in expected.items()}
    assert inferred["fare"].type == schema_pb2.FLOAT
    assert inferred["trip_seconds"].type == schema_pb2.INT


def test_categorical_strings_get_sorted_string_domains(reference_stats, user_schema):
    schema = infer_schema(reference_stats)
    features, domains = _features(schema), _domains(schema)
    assert features["payment_type"].domain == "payment_type"
    assert features["company"].domain == "company"
    # TFX's schema came from the same rule on its own sample: the same seven payment types.
    assert domains["payment_type"] == _domains(user_schema)["payment_type"]
    assert len(domains["company"]) == 61 and domains["company"] == sorted(domains["company"])
    assert not any(f.WhichOneof("domain_info") for n, f in features.items() if n not in {"company", "payment_type"})


def test_too_many_distinct_strings_is_not_categorical(reference_stats):
    schema = infer_schema(reference_stats, max_string_domain_size=60)
    assert not _features(schema)["company"].HasField("domain")
    assert _domains(schema).keys() == {"payment_type"}


def test_presence_and_shape_as_tfdv_sets_them(reference_stats):
    features = _features(infer_schema(reference_stats))
    # Never missing: required everywhere, one value always, so a dense shape [1].
    for name in ("fare", "tips", "trip_miles", "payment_type", "trip_start_hour"):
        assert features[name].presence == schema_pb2.FeaturePresence(min_fraction=1.0, min_count=1)
        assert [d.size for d in features[name].shape.dim] == [1]
        assert not features[name].HasField("value_count")
    # Sometimes missing: present at least once, one value when present, no shape.
    for name in ("company", "dropoff_latitude", "pickup_census_tract"):
        assert features[name].presence == schema_pb2.FeaturePresence(min_count=1)
        assert features[name].value_count == schema_pb2.ValueCount(min=1, max=1)
        assert not features[name].HasField("shape")


def test_without_shape_inference_every_feature_gets_value_count(reference_stats, user_schema):
    schema = infer_schema(reference_stats, infer_feature_shape=False)
    assert not any(f.HasField("shape") for f in schema.feature)
    assert all(f.value_count == schema_pb2.ValueCount(min=1, max=1) for f in schema.feature)


# --- hand-made statistics: each inference rule -------------------------------------------------


def _stats(*features: Stats, num_examples: int = 10) -> statistics_pb2.DatasetFeatureStatisticsList:
    result = statistics_pb2.DatasetFeatureStatisticsList()
    result.datasets.add(num_examples=num_examples).features.extend(features)
    return result


def _numeric(name: str, lo: float, hi: float, *, type_: int = Stats.INT, missing: int = 0) -> Stats:
    feature = Stats(name=name, type=type_)
    feature.num_stats.min, feature.num_stats.max = lo, hi
    common = feature.num_stats.common_stats
    common.num_non_missing, common.num_missing = 10 - missing, missing
    common.min_num_values = common.max_num_values = 1
    return feature


def _strings(name: str, values: list[str], *, type_: int = Stats.STRING) -> Stats:
    feature = Stats(name=name, type=type_)
    feature.string_stats.common_stats.num_non_missing = 10
    feature.string_stats.common_stats.min_num_values = 1
    feature.string_stats.common_stats.max_num_values = 3
    feature.string_stats.unique = len(values)
    for value in values:
        feature.string_stats.rank_histogram.buckets.add(label=value, sample_count=1)
    return feature


def test_domain_candidates_in_tfdv_order():
    categorical_int = _strings("hour", ["7", "23", "0"], type_=Stats.INT)
    invalid = _strings("blob", ["a"])
    invalid.string_stats.invalid_utf8_count = 1
    schema = infer_schema(_stats(
        _numeric("flag", 0, 1),
        _numeric("count", 0, 5),
        _numeric("ratio", 0, 1, type_=Stats.FLOAT),
        _strings("yes_no", ["false", "true"]),
        _strings("zip", ["60601", "60602"]),
        _strings("raw", ["a", "b"], type_=Stats.BYTES),
        invalid,
        categorical_int,
    ))
    features = _features(schema)
    assert features["flag"].bool_domain == schema_pb2.BoolDomain()
    assert features["flag"].HasField("bool_domain")
    assert features["count"].WhichOneof("domain_info") is None
    assert features["ratio"].WhichOneof("domain_info") is None
    assert features["yes_no"].bool_domain == schema_pb2.BoolDomain(true_value="true", false_value="false")
    assert features["zip"].HasField("int_domain") and features["zip"].int_domain == schema_pb2.IntDomain()
    assert features["raw"].WhichOneof("domain_info") is None
    assert features["blob"].WhichOneof("domain_info") is None
    assert features["hour"].int_domain == schema_pb2.IntDomain(is_categorical=True, min=0, max=23)
    assert features["hour"].type == schema_pb2.INT
    assert not schema.string_domain


def test_value_counts_nested_and_variable_lengths():
    nested = _numeric("grid", 0, 9)
    nested.num_stats.common_stats.presence_and_valency_stats.add(min_num_values=2, max_num_values=2)
    nested.num_stats.common_stats.presence_and_valency_stats.add(min_num_values=1, max_num_values=4)
    variable = _strings("tags", ["a", "b"])
    sometimes_empty = _numeric("maybe", 0, 9)
    sometimes_empty.num_stats.common_stats.min_num_values = 0
    features = _features(infer_schema(_stats(nested, variable, sometimes_empty)))
    assert [(v.min, v.max) for v in features["grid"].value_counts.value_count] == [(2, 2), (1, 0)]
    assert not features["grid"].HasField("shape")
    assert features["tags"].value_count == schema_pb2.ValueCount(min=1)
    assert not features["maybe"].HasField("value_count") and not features["maybe"].HasField("shape")


def test_feature_never_present_gets_only_min_count_zero():
    never = _numeric("gone", 0, 0, missing=10)
    never.num_stats.common_stats.min_num_values = never.num_stats.common_stats.max_num_values = 0
    (feature,) = infer_schema(_stats(never)).feature
    assert feature.presence == schema_pb2.FeaturePresence(min_count=0)
    assert not feature.HasField("value_count") and not feature.HasField("shape")


def test_composite_features_without_common_stats_are_skipped_and_domain_names_unique():
    sparse = Stats(name="sparse", type=Stats.STRUCT)
    a = _strings("a", ["x", "y"])
    clash = _strings("a_renamed", ["z"])
    clash.name = ""
    clash.path.step.append("a")
    schema = infer_schema(_stats(sparse, a, clash))
    assert [f.name for f in schema.feature] == ["a", "a"]
    assert _domains(schema) == {"a": ["x", "y"], "a_1": ["z"]}
    assert [f.domain for f in schema.feature] == ["a", "a_1"]


def test_sliced_statistics_use_the_default_slice():
    stats = _stats(_numeric("x", 0, 5))
    stats.datasets[0].name = "hour=7"
    default = stats.datasets.add(name=DEFAULT_SLICE_KEY, num_examples=10)
    default.features.append(_numeric("y", 0, 5))
    assert [f.name for f in infer_schema(stats).feature] == ["y"]
    del stats.datasets[1]
    stats.datasets.add(name="hour=8")
    with pytest.raises(ValueError, match="default slice"):
        default_dataset_statistics(stats)
    with pytest.raises(TypeError):
        infer_schema(stats.datasets[0])


# --- files ---------------------------------------------------------------------------------------


def test_schema_pbtxt_round_trip(reference_stats, tmp_path):
    schema = infer_schema(reference_stats)
    path = str(tmp_path / "new_dir" / "schema.pbtxt")
    write_schema(schema, path)
    assert load_schema(path) == schema
    assert Path(path).read_text().startswith("feature {")


def test_user_schema_loads(user_schema):
    assert len(user_schema.feature) == 18
    assert _features(user_schema)["payment_type"].domain == "payment_type"
    assert _domains(user_schema).keys() == {"company", "payment_type"}


# --- list, nested and struct features ------------------------------------------------------------

LIST_DATA = Path(__file__).resolve().parent / "data"


def _list_reference(name: str, message):
    return text_format.Parse((LIST_DATA / f"tfdv_1.16.1_{name}.pbtxt").read_text(), message)


@pytest.mark.parametrize("name", ["list_features", "nested_features"])
def test_list_nested_and_struct_schema_equals_tfdv_infer_schema(name):
    """value_count (min 1 only when lengths vary, none when a list can be empty), value_counts
    per nesting level, no shape for varying lengths, struct members in struct_domain, a
    struct member's string domain named after its path: all as TFDV 1.16.1's infer_schema."""
    stats = _list_reference(name, statistics_pb2.DatasetFeatureStatisticsList())
    expected = _list_reference(f"{name}_schema_inferred", schema_pb2.Schema())
    assert infer_schema(stats) == expected


def test_nested_data_validates_against_its_inferred_schema():
    import pyarrow as pa
    from list_fixtures import nested_record_batch

    from beam_ml.transforms.statistics import generate_statistics_in_memory
    from beam_ml.transforms.validation import validate_statistics

    stats = generate_statistics_in_memory(nested_record_batch(pa))
    schema = infer_schema(stats)
    assert [f.name for f in schema.feature] == ["nested", "s", "weight"]
    assert [f.name for f in _features(schema)["s"].struct_domain.feature] == ["f1", "f2"]
    assert not validate_statistics(stats, schema).anomaly_info
    del _features(schema)["s"].struct_domain.feature[0]  # the data's s.f1 is then a new column
    assert list(validate_statistics(stats, schema).anomaly_info) == ["s.f1"]
