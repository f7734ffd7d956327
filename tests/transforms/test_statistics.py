"""Statistics stage: TFDV 1.16.1's numbers on the taxi data, merging at scale, Beam, options.

Tolerances, and why:
- Counts, min, max, types and feature order are exact: they are plain arithmetic.
- mean and std_dev: 1e-9 relative. Both sides merge per-batch moments in
  float64, in a different order, so only rounding may differ.
- Quantile-sketch fields (median, histogram bounds and counts): the sketch
  guarantees each reported quantile's rank is within ε·N of its target rank
  (ε = 0.01, TFDV's default). TFDV's sketch and ours may each be off by
  ε·N in opposite directions, so we allow a rank difference of 2·ε·N for
  boundaries and a count difference of 2·ε·N per bucket.
- unique (KMV, k = 16384) and top values (Misra-Gries, 1024 buckets) are
  exact while a feature has fewer distinct values than the sketch keeps:
  KMV then holds every hash and Misra-Gries never decrements. The taxi
  features have at most 62 distinct strings, so we demand equality.
"""

from __future__ import annotations

import math
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from apache_beam.testing.util import assert_that
from google.protobuf import text_format
from google.protobuf.message import Message
from tensorflow_metadata.proto.v0 import statistics_pb2

from beam_ml.transforms.statistics import (
    GenerateStatistics,
    StatisticsCombineFn,
    StatsOptions,
    generate_statistics_in_memory,
)

EPSILON = StatsOptions().epsilon
MOMENT_RTOL = 1e-9
# Proto types the reference uses → the Arrow types TFDV's CSV decoder gives them.
ARROW_TYPE_FOR = {
    statistics_pb2.FeatureNameStatistics.INT: pa.int64(),
    statistics_pb2.FeatureNameStatistics.FLOAT: pa.float32(),
    statistics_pb2.FeatureNameStatistics.STRING: pa.string(),
}
Features = dict[str, statistics_pb2.FeatureNameStatistics]


# ---------------------------------------------------------------------------
# Fixtures: the taxi data read like TFDV reads it, and the reference
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(shared_reference: Path) -> statistics_pb2.DatasetFeatureStatistics:
    text = (shared_reference / "tfdv_1.16.1_chicago_taxi_stats.pbtxt").read_text()
    return text_format.Parse(text, statistics_pb2.DatasetFeatureStatisticsList()).datasets[0]


@pytest.fixture(scope="module")
def taxi_batches(shared_data: Path, reference: statistics_pb2.DatasetFeatureStatistics) -> list[pa.RecordBatch]:
    """Several batches, typed as TFDV typed them: ints as int64, floats as float32, empty strings missing.

    Explicit types also stop the streaming reader from guessing `null` for
    a column whose first block is empty (pickup_census_tract).
    """
    column_types = {feature.path.step[0]: ARROW_TYPE_FOR[feature.type] for feature in reference.features}
    reader = pa_csv.open_csv(
        shared_data / "chicago_taxi" / "data.csv",
        read_options=pa_csv.ReadOptions(block_size=1 << 18),
        convert_options=pa_csv.ConvertOptions(column_types=column_types, strings_can_be_null=True),
    )
    batches = list(reader)
    assert len(batches) > 4
    return batches


@pytest.fixture(scope="module")
def taxi_stats(taxi_batches: list[pa.RecordBatch]) -> statistics_pb2.DatasetFeatureStatisticsList:
    return generate_statistics_in_memory(taxi_batches)


@pytest.fixture(scope="module")
def ours(taxi_stats: statistics_pb2.DatasetFeatureStatisticsList) -> statistics_pb2.DatasetFeatureStatistics:
    assert len(taxi_stats.datasets) == 1
    return taxi_stats.datasets[0]


@pytest.fixture(scope="module")
def sorted_values(taxi_batches: list[pa.RecordBatch]) -> dict[str, np.ndarray]:
    """Each numeric column's non-null values, sorted: the ground truth for rank checks."""
    table = pa.Table.from_batches(taxi_batches)
    return {
        name: np.sort(table.column(name).drop_null().to_numpy().astype(np.float64))
        for name in table.column_names
        if pa.types.is_integer(table.schema.field(name).type) or pa.types.is_floating(table.schema.field(name).type)
    }


def by_name(dataset: statistics_pb2.DatasetFeatureStatistics) -> Features:
    return {feature.path.step[0]: feature for feature in dataset.features}


def common(feature: statistics_pb2.FeatureNameStatistics) -> statistics_pb2.CommonStatistics:
    stats = feature.num_stats if feature.HasField("num_stats") else feature.string_stats
    return stats.common_stats


def numeric_pairs(
    reference: statistics_pb2.DatasetFeatureStatistics, ours: statistics_pb2.DatasetFeatureStatistics
) -> Iterator[tuple[str, statistics_pb2.NumericStatistics, statistics_pb2.NumericStatistics]]:
    mine = by_name(ours)
    for name, expected in by_name(reference).items():
        if expected.HasField("num_stats"):
            yield name, expected.num_stats, mine[name].num_stats


def string_pairs(
    reference: statistics_pb2.DatasetFeatureStatistics, ours: statistics_pb2.DatasetFeatureStatistics
) -> Iterator[tuple[str, statistics_pb2.StringStatistics, statistics_pb2.StringStatistics]]:
    mine = by_name(ours)
    for name, expected in by_name(reference).items():
        if expected.HasField("string_stats"):
            yield name, expected.string_stats, mine[name].string_stats


def rank_gap(values: np.ndarray, a: float, b: float) -> int:
    """How many data values lie in (min(a, b), max(a, b)]: the rank distance of two quantile estimates."""
    low, high = sorted((a, b))
    return int(np.searchsorted(values, high, side="right") - np.searchsorted(values, low, side="right"))


def assert_histogram_close(
    expected: statistics_pb2.Histogram, actual: statistics_pb2.Histogram, values: np.ndarray, what: str
) -> None:
    """Same layout and NaN count; bounds within 2εN ranks, counts within 2εN, same total."""
    slack = 2 * EPSILON * values.size
    assert actual.type == expected.type, what
    assert actual.num_nan == expected.num_nan, what
    assert len(actual.buckets) == len(expected.buckets), what
    for i, (want, got) in enumerate(zip(expected.buckets, actual.buckets, strict=True)):
        for bound in ("low_value", "high_value"):
            gap = rank_gap(values, getattr(want, bound), getattr(got, bound))
            assert gap <= slack, f"{what} bucket {i} {bound}: {getattr(got, bound)} vs {getattr(want, bound)}"
        assert got.sample_count == pytest.approx(want.sample_count, abs=slack), f"{what} bucket {i}"
    total = sum(b.sample_count for b in expected.buckets)
    assert sum(b.sample_count for b in actual.buckets) == pytest.approx(total, rel=1e-9), what


# ---------------------------------------------------------------------------
# Against TFDV 1.16.1 on the taxi data: one test per stat family
# ---------------------------------------------------------------------------


def test_num_examples_feature_order_and_types(reference, ours) -> None:
    assert ours.num_examples == reference.num_examples == 15002
    assert not ours.name
    assert [f.path.step[:] for f in ours.features] == [f.path.step[:] for f in reference.features]
    assert [f.type for f in ours.features] == [f.type for f in reference.features]
    assert all(not f.name for f in ours.features), "TFDV identifies features by path, not name"


def test_common_counts(reference, ours) -> None:
    mine = by_name(ours)
    for name, expected in by_name(reference).items():
        want, got = common(expected), common(mine[name])
        for field in ("num_non_missing", "num_missing", "min_num_values", "max_num_values", "tot_num_values"):
            assert getattr(got, field) == getattr(want, field), f"{name}.{field}"
        assert got.avg_num_values == want.avg_num_values, name


def test_num_values_histogram(reference, ours) -> None:
    mine = by_name(ours)
    for name, expected in by_name(reference).items():
        want, got = common(expected).num_values_histogram, common(mine[name]).num_values_histogram
        assert got.type == statistics_pb2.Histogram.QUANTILES
        assert [(b.low_value, b.high_value) for b in got.buckets] == [(b.low_value, b.high_value) for b in want.buckets]
        assert [b.sample_count for b in got.buckets] == pytest.approx([b.sample_count for b in want.buckets], rel=1e-9)


def test_numeric_mean_and_std_dev(reference, ours) -> None:
    for name, want, got in numeric_pairs(reference, ours):
        assert got.mean == pytest.approx(want.mean, rel=MOMENT_RTOL), name
        assert got.std_dev == pytest.approx(want.std_dev, rel=MOMENT_RTOL), name


def test_numeric_min_max_and_zeros(reference, ours) -> None:
    for name, want, got in numeric_pairs(reference, ours):
        assert (got.min, got.max, got.num_zeros) == (want.min, want.max, want.num_zeros), name


def test_median_within_sketch_error(reference, ours, sorted_values) -> None:
    for name, want, got in numeric_pairs(reference, ours):
        values = sorted_values[name]
        assert rank_gap(values, want.median, got.median) <= 2 * EPSILON * values.size, name


def test_standard_and_quantiles_histograms(reference, ours, sorted_values) -> None:
    for name, want, got in numeric_pairs(reference, ours):
        assert [h.type for h in got.histograms] == [h.type for h in want.histograms], name
        for expected, actual in zip(want.histograms, got.histograms, strict=True):
            assert_histogram_close(expected, actual, sorted_values[name], f"{name} {actual.type}")


def test_string_unique_top_values_and_rank_histogram(reference, ours) -> None:
    for name, want, got in string_pairs(reference, ours):
        assert got.unique == want.unique, name
        assert list(got.top_values) == list(want.top_values), name
        assert list(got.rank_histogram.buckets) == list(want.rank_histogram.buckets), name


def test_string_avg_length(reference, ours) -> None:
    for name, want, got in string_pairs(reference, ours):
        assert got.avg_length == pytest.approx(want.avg_length, rel=1e-6), name


# ---------------------------------------------------------------------------
# Split, merged in several orders, compacted: past the sketches' exact capacity
# (the CombineFn contract itself, exact on smaller input and with every merge
# plan, is tests/contracts/test_statistics_combine_fn.py)
# ---------------------------------------------------------------------------

SKETCH_FIELDS = ("median", "histograms", "num_values_histogram", "unique", "top_values", "rank_histogram")


def split_rows(batches: list[pa.RecordBatch], rows: int) -> list[pa.RecordBatch]:
    return [b.slice(start, rows) for b in batches for start in range(0, b.num_rows, rows)]


def exact_part(stats: statistics_pb2.DatasetFeatureStatisticsList) -> statistics_pb2.DatasetFeatureStatisticsList:
    """A copy without the sketch-based fields, which are checked separately."""
    result = statistics_pb2.DatasetFeatureStatisticsList()
    result.CopyFrom(stats)
    stack: list[Message] = [result]
    while stack:
        message = stack.pop()
        for descriptor, value in message.ListFields():
            if descriptor.name in SKETCH_FIELDS:
                message.ClearField(descriptor.name)
            elif descriptor.message_type is None:
                continue
            elif descriptor.label == descriptor.LABEL_REPEATED:
                stack.extend(value)
            else:
                stack.append(value)
    return result


def float_mismatches(expected: Message, actual: Message, rtol: float, path: str = "") -> list[str]:
    """Paths where two protos differ: floats beyond rtol, anything else at all."""
    if type(expected) is not type(actual):
        return [path]
    if isinstance(expected, Message):
        want = {d.name: v for d, v in expected.ListFields()}
        got = {d.name: v for d, v in actual.ListFields()}
        out = [f"{path}.{k}" for k in want.keys() ^ got.keys()]
        for key in want.keys() & got.keys():
            out += float_mismatches(want[key], got[key], rtol, f"{path}.{key}")
        return out
    if isinstance(expected, float):
        return [] if math.isclose(expected, actual, rel_tol=rtol) else [f"{path}: {actual} vs {expected}"]
    if isinstance(expected, (str, bytes, int)):
        return [] if expected == actual else [f"{path}: {actual} vs {expected}"]
    if len(expected) != len(actual):
        return [f"{path}: length {len(actual)} vs {len(expected)}"]
    return [m for i, (a, b) in enumerate(zip(expected, actual, strict=True)) for m in float_mismatches(a, b, rtol, f"{path}[{i}]")]


def assert_same_statistics(
    expected: statistics_pb2.DatasetFeatureStatisticsList, actual: statistics_pb2.DatasetFeatureStatisticsList
) -> None:
    """Exact fields equal (moments to 1e-9); sketch fields within their error bounds."""
    assert float_mismatches(exact_part(expected), exact_part(actual), MOMENT_RTOL) == []
    for want_dataset, got_dataset in zip(expected.datasets, actual.datasets, strict=True):
        slack = 2 * EPSILON * want_dataset.num_examples
        got_features = by_name(got_dataset)
        for name, want in by_name(want_dataset).items():
            got = got_features[name]
            if want.HasField("string_stats"):
                assert got.string_stats.unique == want.string_stats.unique, name
                assert list(got.string_stats.top_values) == list(want.string_stats.top_values), name
                continue
            for expected_hist, actual_hist in zip(want.num_stats.histograms, got.num_stats.histograms, strict=True):
                counts = [b.sample_count for b in actual_hist.buckets]
                assert counts == pytest.approx([b.sample_count for b in expected_hist.buckets], abs=slack), name


def accumulate(combine_fn: StatisticsCombineFn, batches: list[pa.RecordBatch]) -> list:
    return [combine_fn.add_input(combine_fn.create_accumulator(), batch) for batch in batches]


def merge_in_order(combine_fn: StatisticsCombineFn, accumulators: list) -> object:
    return combine_fn.merge_accumulators(accumulators)


def merge_reversed(combine_fn: StatisticsCombineFn, accumulators: list) -> object:
    return combine_fn.merge_accumulators(list(reversed(accumulators)))


def merge_as_tree(combine_fn: StatisticsCombineFn, accumulators: list) -> object:
    """Pairwise, compacting every intermediate result, as a shuffle with combiner lifting does."""
    while len(accumulators) > 1:
        accumulators = [
            combine_fn.compact(combine_fn.merge_accumulators(accumulators[i : i + 2]))
            for i in range(0, len(accumulators), 2)
        ]
    return accumulators[0]


CONTRACT_OPTIONS = {
    "default": StatsOptions(),
    "weighted_and_sliced": StatsOptions().with_weight_feature("trip_start_day").with_slice_features("payment_type"),
}


@pytest.mark.parametrize("options", CONTRACT_OPTIONS.values(), ids=CONTRACT_OPTIONS.keys())
@pytest.mark.parametrize("merge", [merge_in_order, merge_reversed, merge_as_tree])
def test_split_merge_compact_equals_one_pass(
    taxi_batches: list[pa.RecordBatch], options: StatsOptions, merge: Callable[[StatisticsCombineFn, list], object]
) -> None:
    combine_fn = StatisticsCombineFn(options)
    one_pass = generate_statistics_in_memory(taxi_batches, options)
    merged = merge(combine_fn, accumulate(combine_fn, split_rows(taxi_batches, 1000)))
    assert_same_statistics(one_pass, combine_fn.extract_output(combine_fn.compact(merged)))


# ---------------------------------------------------------------------------
# Beam
# ---------------------------------------------------------------------------


def test_generate_statistics_in_beam_matches_in_memory(taxi_batches, taxi_stats) -> None:
    def matches_in_memory(outputs: list[statistics_pb2.DatasetFeatureStatisticsList]) -> None:
        assert len(outputs) == 1
        assert_same_statistics(taxi_stats, outputs[0])

    with beam.Pipeline(runner="DirectRunner") as pipeline:
        stats = pipeline | beam.Create(split_rows(taxi_batches, 3000)) | GenerateStatistics()
        assert_that(stats, matches_in_memory)


def test_empty_input_gives_zero_examples() -> None:
    stats = generate_statistics_in_memory([])
    assert len(stats.datasets) == 1
    assert stats.datasets[0].num_examples == 0
    assert not stats.datasets[0].features


# ---------------------------------------------------------------------------
# Hand-made data with known answers
# ---------------------------------------------------------------------------


def test_weighted_statistics() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "x": pa.array([1.0, 2.0, 3.0, None]),
            "s": pa.array(["a", "b", "a", None]),
            "w": pa.array([1.0, 0.5, 2.0, 4.0]),
        }
    )
    stats = generate_statistics_in_memory(batch, StatsOptions().with_weight_feature("w"))
    dataset = stats.datasets[0]
    assert dataset.weighted_num_examples == 7.5
    x = by_name(dataset)["x"].num_stats
    assert x.common_stats.weighted_common_stats == statistics_pb2.WeightedCommonStatistics(
        num_non_missing=3.5, num_missing=4.0, tot_num_values=3.5, avg_num_values=1.0
    )
    values, weights = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.5, 2.0])
    mean = np.average(values, weights=weights)
    assert x.weighted_numeric_stats.mean == pytest.approx(mean, rel=1e-12)
    assert x.weighted_numeric_stats.std_dev == pytest.approx(
        math.sqrt(np.average((values - mean) ** 2, weights=weights)), rel=1e-12
    )
    assert x.mean == pytest.approx(2.0) and x.std_dev == pytest.approx(math.sqrt(2 / 3))
    assert [h.type for h in x.weighted_numeric_stats.histograms] == [
        statistics_pb2.Histogram.STANDARD,
        statistics_pb2.Histogram.QUANTILES,
    ]
    for histogram in x.weighted_numeric_stats.histograms:
        assert sum(b.sample_count for b in histogram.buckets) == pytest.approx(3.5)
    s = by_name(dataset)["s"].string_stats
    # "b" weighs 0.5, under TFDV's weighted frequency threshold of 1.0: it is left out of the weighted list only.
    assert [(v.value, v.frequency) for v in s.weighted_string_stats.top_values] == [("a", 3.0)]
    assert [(v.value, v.frequency) for v in s.top_values] == [("a", 2.0), ("b", 1.0)]


def test_weight_feature_must_be_present() -> None:
    batch = pa.RecordBatch.from_pydict({"x": [1, 2], "w": [1.0, None]})
    with pytest.raises(ValueError, match="exactly one value in every row"):
        generate_statistics_in_memory(batch, StatsOptions().with_weight_feature("w"))


def test_slicing_by_feature_values() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "country": pa.array(["us", "us", "fr", None]),
            "year": pa.array([1, 1, 1, 2]),
            "x": pa.array([1.0, 2.0, 3.0, 4.0]),
        }
    )
    stats = generate_statistics_in_memory(batch, StatsOptions().with_slice_features("year", "country"))
    datasets = {dataset.name: dataset for dataset in stats.datasets}
    assert [d.name for d in stats.datasets] == ["All Examples", "country_fr_year_1", "country_us_year_1"]
    assert {name: d.num_examples for name, d in datasets.items()} == {
        "All Examples": 4,
        "country_fr_year_1": 1,
        "country_us_year_1": 2,
    }
    assert by_name(datasets["country_us_year_1"])["x"].num_stats.mean == 1.5
    assert by_name(datasets["All Examples"])["x"].num_stats.mean == 2.5


def test_list_columns_count_values_per_example() -> None:
    batch = pa.RecordBatch.from_pydict(
        {
            "ints": pa.array([[1, 2], None, [], [3, 4, 5]], pa.list_(pa.int64())),
            "words": pa.array([["ab"], ["c", "ab"], None, None], pa.large_list(pa.large_string())),
        }
    )
    features = by_name(generate_statistics_in_memory(batch).datasets[0])
    ints = features["ints"].num_stats
    assert (ints.common_stats.num_non_missing, ints.common_stats.num_missing) == (3, 1)
    assert (ints.common_stats.min_num_values, ints.common_stats.max_num_values) == (0, 3)
    assert ints.common_stats.tot_num_values == 5
    assert ints.common_stats.avg_num_values == pytest.approx(5 / 3)
    assert (ints.mean, ints.min, ints.max) == (3.0, 1.0, 5.0)
    words = features["words"].string_stats
    assert features["words"].type == statistics_pb2.FeatureNameStatistics.STRING
    assert (words.common_stats.tot_num_values, words.unique) == (3, 2)
    assert words.avg_length == pytest.approx(5 / 3)
    assert [(v.value, v.frequency) for v in words.top_values] == [("ab", 2.0), ("c", 1.0)]


def test_nan_and_infinities_follow_tfdv() -> None:
    batch = pa.RecordBatch.from_pydict({"x": [1.0, 2.0, math.nan, math.inf, -math.inf, 0.0]})
    x = by_name(generate_statistics_in_memory(batch).datasets[0])["x"].num_stats
    assert (x.min, x.max, x.num_zeros) == (-math.inf, math.inf, 1)
    standard, quantiles = x.histograms
    assert standard.num_nan == quantiles.num_nan == 1
    assert (standard.buckets[0].low_value, standard.buckets[0].sample_count) == (-math.inf, 1.0)
    assert (standard.buckets[-1].high_value, standard.buckets[-1].sample_count) == (math.inf, 1.0)
    assert (standard.buckets[1].low_value, standard.buckets[-2].high_value) == (0.0, 2.0)
    assert sum(b.sample_count for b in standard.buckets[1:-1]) == pytest.approx(3.0)
    assert sum(b.sample_count for b in quantiles.buckets) == pytest.approx(5.0)


def test_only_nan_values_give_only_nan_counts() -> None:
    batch = pa.RecordBatch.from_pydict({"x": [math.nan, math.nan]})
    x = by_name(generate_statistics_in_memory(batch).datasets[0])["x"].num_stats
    assert [(h.type, h.num_nan, len(h.buckets)) for h in x.histograms] == [
        (statistics_pb2.Histogram.STANDARD, 2, 0),
        (statistics_pb2.Histogram.QUANTILES, 2, 0),
    ]
    assert not x.HasField("weighted_numeric_stats") and x.mean == 0.0


# ---------------------------------------------------------------------------
# Options, sampling, dependencies
# ---------------------------------------------------------------------------


def test_options_are_frozen_and_builders_copy() -> None:
    base = StatsOptions()
    weighted = base.with_weight_feature("w")
    assert base.weight_feature is None and weighted.weight_feature == "w"
    assert StatsOptions(slice_features=["a"]).slice_features == ("a",)
    with pytest.raises(AttributeError):
        base.sample_rate = 0.5  # type: ignore[misc]
    with pytest.raises(ValueError, match="sample_rate"):
        StatsOptions(sample_rate=0.0)


def test_sampling_is_deterministic(taxi_batches) -> None:
    options = StatsOptions().with_sampling(0.1, seed=7)
    first = generate_statistics_in_memory(taxi_batches, options)
    assert first == generate_statistics_in_memory(taxi_batches, options)
    # Binomial(15002, 0.1): sd ≈ 37, so ±200 is over five standard deviations.
    assert abs(first.datasets[0].num_examples - 1500) < 200
    other_seed = generate_statistics_in_memory(taxi_batches, options.with_sampling(0.1, seed=8))
    assert other_seed.datasets[0].num_examples != first.datasets[0].num_examples or other_seed != first


def test_computing_statistics_does_not_import_tensorflow() -> None:
    script = (
        "import sys, pyarrow as pa\n"
        "from beam_ml.transforms.statistics import generate_statistics_in_memory\n"
        "generate_statistics_in_memory(pa.table({'x': [1.0, 2.0], 's': ['a', None]}))\n"
        "print(sorted(m for m in sys.modules if m == 'tensorflow' or m.startswith('tensorflow.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
