"""Beam's CombineFn contract for each statistics generator on its own: the built-in ones
and a user's (tests/pipelines/negative_values.py), over `StatsBatch`es of the contract's
taxi batches (lists, nested lists, a struct, NaN and infinities, a mostly-null feature).

`StatisticsCombineFn` merges and ships one accumulator per generator, so each must keep
the contract by itself. With the schema, `company` is raw bytes (BytesStatsGenerator has
work) and `trip_start_hour` a categorical integer (string statistics of a number).
Equality as for StatisticsCombineFn: exact but for means and standard deviations.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from contracts.combine_fn_contract import CombineFnContract
from contracts.test_statistics_combine_fn import contract_batches, proto_differences
from pipelines.negative_values import NegativeValues
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from beam_ml.transforms.statistics import (
    BytesStatsGenerator,
    NumericStatsGenerator,
    PresenceStatsGenerator,
    StatsBatch,
    StatsGenerator,
    StatsOptions,
    StringStatsGenerator,
    stats_batch,
)


def _schema() -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    schema.feature.add(name="company", type=schema_pb2.BYTES).image_domain.SetInParent()
    schema.feature.add(name="trip_start_hour", type=schema_pb2.INT).int_domain.is_categorical = True
    return schema


OPTIONS = {
    "default": StatsOptions(),
    "weighted_with_schema": StatsOptions().with_weight_feature("trip_start_day").with_schema(_schema()),
}
GENERATORS = {
    "presence": PresenceStatsGenerator,
    "numeric": NumericStatsGenerator,
    "string": StringStatsGenerator,
    "bytes": BytesStatsGenerator,
    "user_negative_values": lambda _options: NegativeValues(),
}


class TestStatsGenerators(CombineFnContract):
    max_examples = 15

    @pytest.fixture(params=OPTIONS.keys())
    def options(self, request: pytest.FixtureRequest) -> StatsOptions:
        return OPTIONS[request.param]

    @pytest.fixture(params=GENERATORS.keys())
    def combine_fn(self, request: pytest.FixtureRequest, options: StatsOptions) -> StatsGenerator:
        return GENERATORS[request.param](options)

    @pytest.fixture
    def inputs(self, batches: list[pa.RecordBatch], options: StatsOptions) -> list[StatsBatch]:
        return [stats_batch(batch, options) for batch in batches]

    @pytest.fixture(scope="class")
    def batches(self, shared_data: Path) -> list[pa.RecordBatch]:
        return contract_batches(shared_data)

    def assert_same_output(
        self, expected: statistics_pb2.DatasetFeatureStatistics, actual: statistics_pb2.DatasetFeatureStatistics
    ) -> None:
        assert proto_differences(expected, actual) == []


@pytest.mark.parametrize("name", ["bytes", "string"])
def test_the_schema_gives_the_value_generators_work(shared_data: Path, name: str) -> None:
    """Without this the bytes contract above would check an empty output."""
    options = OPTIONS["weighted_with_schema"]
    generator = GENERATORS[name](options)
    accumulator = generator.create_accumulator()
    for batch in contract_batches(shared_data):
        accumulator = generator.add_input(accumulator, stats_batch(batch, options))
    paths = {".".join(feature.path.step) for feature in generator.extract_output(accumulator).features}
    assert ("company" in paths) == (name == "bytes")
    assert ("trip_start_hour" in paths) == (name == "string")
