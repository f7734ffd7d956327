"""Statistics generators: a user's own generator runs in the same pass as the built-in
statistics and lands in the same proto, per slice, without changing anything else.

The user's generator is tests/pipelines/negative_values.py (the fraction of negative
values per numeric feature); the data is the Chicago taxi CSV plus a column with both
signs (fare - 10), so the fractions are neither all 0 nor all 1.
"""

from __future__ import annotations

from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pytest
from contracts.test_statistics_combine_fn import proto_differences
from pipelines.negative_values import NAME, NegativeValues
from tensorflow_metadata.proto.v0 import statistics_pb2

from beam_ml.components._writers import WriteProto
from beam_ml.transforms.statistics import (
    GenerateStatistics,
    StatsBatch,
    StatsGenerator,
    StatsOptions,
    generate_statistics_in_memory,
)


@pytest.fixture(scope="module")
def taxi(shared_data: Path) -> pa.Table:
    table = pa_csv.read_csv(
        shared_data / "chicago_taxi" / "data.csv",
        convert_options=pa_csv.ConvertOptions(
            strings_can_be_null=True, column_types={"pickup_census_tract": pa.int64()}
        ),
    )
    return table.append_column("fare_minus_10", pc.subtract(table["fare"], 10.0))


def expected_fractions(table: pa.Table) -> dict[str, float]:
    """Each numeric column's fraction of negative values among its non-null, non-NaN ones."""
    result = {}
    for name in table.column_names:
        column = table[name]
        if not (pa.types.is_integer(column.type) or pa.types.is_floating(column.type)):
            continue
        values = column.drop_null().to_numpy().astype(np.float64)
        values = values[~np.isnan(values)]
        if values.size:
            result[name] = float(np.count_nonzero(values < 0)) / values.size
    return result


def custom_fractions(dataset: statistics_pb2.DatasetFeatureStatistics) -> dict[str, float]:
    return {
        ".".join(feature.path.step): stat.num
        for feature in dataset.features
        for stat in feature.custom_stats
        if stat.name == NAME
    }


def without_custom(dataset: statistics_pb2.DatasetFeatureStatistics) -> statistics_pb2.DatasetFeatureStatistics:
    """The dataset with the user's custom statistic taken out again."""
    result = statistics_pb2.DatasetFeatureStatistics()
    result.CopyFrom(dataset)
    for feature in result.features:
        kept = [stat for stat in feature.custom_stats if stat.name != NAME]
        del feature.custom_stats[:]
        feature.custom_stats.extend(kept)
    return result


def test_a_custom_generator_lands_in_the_written_feature_stats(taxi: pa.Table, tmp_path: Path) -> None:
    """Through the Beam transform and the writer StatisticsGen uses (StatisticsGen itself
    builds its StatsOptions from its parameters): every numeric feature has its exact
    fraction, and the built-in statistics are those of a run without the generator."""
    out = tmp_path / "Split-train" / "FeatureStats.pb"
    out.parent.mkdir()
    options = StatsOptions(generators=(NegativeValues(),))
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | beam.Create(taxi.to_batches(max_chunksize=4000))
            | GenerateStatistics(options)
            | beam.ParDo(WriteProto(str(out)))
        )
    written = statistics_pb2.DatasetFeatureStatisticsList.FromString(out.read_bytes())
    [dataset] = written.datasets
    expected = expected_fractions(taxi)
    assert 0.0 < expected["fare_minus_10"] < 1.0 and expected["pickup_longitude"] == 1.0
    assert custom_fractions(dataset) == pytest.approx(expected, rel=1e-12)
    # Beam merges the batches' moments in its own order: means may differ by a few ulps.
    plain = generate_statistics_in_memory(taxi.to_batches(max_chunksize=4000)).datasets[0]
    assert proto_differences(plain, without_custom(dataset)) == []
    assert [f.path.step[:] for f in dataset.features] == [f.path.step[:] for f in plain.features]


def test_a_custom_generator_runs_per_slice(taxi: pa.Table) -> None:
    options = StatsOptions(generators=(NegativeValues(),)).with_slice_features("payment_type")
    stats = generate_statistics_in_memory(taxi.to_batches(max_chunksize=5000), options)
    assert custom_fractions(stats.datasets[0]) == pytest.approx(expected_fractions(taxi), rel=1e-12)
    slices = {dataset.name: dataset for dataset in stats.datasets[1:]}
    assert "payment_type_Cash" in slices
    for value in ("Cash", "Credit Card"):
        rows = taxi.filter(pc.equal(taxi["payment_type"], value))
        assert custom_fractions(slices[f"payment_type_{value}"]) == pytest.approx(expected_fractions(rows), rel=1e-12)


def test_generators_reach_struct_members_by_path() -> None:
    batch = pa.RecordBatch.from_pydict({"point": [{"x": -1.0, "y": 2}, {"x": 3.0, "y": -4}, None]})
    stats = generate_statistics_in_memory(batch, StatsOptions(generators=(NegativeValues(),)))
    assert custom_fractions(stats.datasets[0]) == {"point.x": 0.5, "point.y": 0.5}


class _Unnamed(StatsGenerator[int]):
    """Reports a feature by name only, which cannot be merged by path."""

    def create_accumulator(self) -> int:
        return 0

    def add_input(self, accumulator: int, batch: StatsBatch) -> int:
        return accumulator + batch.num_rows

    def merge_accumulators(self, accumulators) -> int:
        return sum(accumulators)

    def extract_output(self, accumulator: int) -> statistics_pb2.DatasetFeatureStatistics:
        result = statistics_pb2.DatasetFeatureStatistics()
        result.features.add(name="rows").custom_stats.add(name="rows", num=accumulator)
        return result


def test_a_feature_without_path_is_refused_with_the_fix() -> None:
    with pytest.raises(ValueError, match=r"_Unnamed .* without a path: name each feature by path"):
        generate_statistics_in_memory(pa.RecordBatch.from_pydict({"x": [1]}), StatsOptions(generators=[_Unnamed()]))


def test_options_refuse_what_is_not_a_generator() -> None:
    with pytest.raises(TypeError, match="StatsGenerator instances"):
        StatsOptions(generators=(lambda batch: None,))
