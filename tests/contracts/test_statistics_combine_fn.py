"""Beam's CombineFn contract for StatisticsCombineFn, on rows of the Chicago taxi data.

The input: the first rows of the taxi CSV in batches of uneven sizes, with a list
column (0 to 3 values per row, some rows null), a nested list column, a struct
column and NaN and infinite values added,
so every kind of partial statistic is split and merged: presence and value
counts, moments, quantile sketches, KMV and Misra-Gries sketches, a feature
(pickup_census_tract) that is all-null in most batches, weights, and slices that
some accumulators never see.

Equality: exact, except means and standard deviations (1e-12 relative); see
`proto_differences`.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from contracts.combine_fn_contract import CombineFnContract
from google.protobuf.message import Message
from pipelines.negative_values import NegativeValues
from tensorflow_metadata.proto.v0 import statistics_pb2

from beam_ml.transforms.statistics import StatisticsCombineFn, StatsOptions

OPTIONS = {
    "default": StatsOptions(),
    "weighted_and_sliced": StatsOptions().with_weight_feature("trip_start_day").with_slice_features("payment_type"),
    "sliced_with_a_user_generator": StatsOptions(generators=(NegativeValues(),)).with_slice_features("payment_type"),
}


class TestStatisticsCombineFn(CombineFnContract):
    max_examples = 30

    @pytest.fixture(params=OPTIONS.values(), ids=OPTIONS.keys())
    def combine_fn(self, request: pytest.FixtureRequest) -> StatisticsCombineFn:
        return StatisticsCombineFn(request.param)

    @pytest.fixture(scope="class")
    def inputs(self, shared_data: Path) -> list[pa.RecordBatch]:
        return contract_batches(shared_data)

    def assert_same_output(
        self,
        expected: statistics_pb2.DatasetFeatureStatisticsList,
        actual: statistics_pb2.DatasetFeatureStatisticsList,
    ) -> None:
        assert proto_differences(expected, actual) == []


def contract_batches(shared_data: Path) -> list[pa.RecordBatch]:
    """The taxi rows in uneven batches, with the list, nested, struct, NaN and infinite values above."""
    table = pa_csv.read_csv(
        shared_data / "chicago_taxi" / "data.csv",
        convert_options=pa_csv.ConvertOptions(
            strings_can_be_null=True,
            column_types={"pickup_census_tract": pa.int64(), "trip_start_day": pa.int64()},
        ),
    ).slice(0, 2400)
    rng = np.random.default_rng(5)
    null_rows = rng.random(table.num_rows) < 0.1
    lengths = np.where(null_rows, 0, rng.integers(0, 4, table.num_rows))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    values = pa.array(rng.normal(size=int(offsets[-1])))
    lists = pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=pa.array(null_rows))
    fare = table["fare"].to_numpy(zero_copy_only=False).copy()
    fare[rng.choice(table.num_rows, 30, replace=False)] = np.nan
    fare[rng.choice(table.num_rows, 3, replace=False)] = np.inf
    table = table.set_column(table.schema.get_field_index("fare"), "fare", pa.array(fare))
    table = table.append_column("readings", lists)
    # A nested list (value counts per level) and a struct (statistics per leaf path).
    table = table.append_column(
        "nested", pa.array([[[int(v)] * (v % 3) for v in range(row % 4)] if row % 7 else None for row in range(table.num_rows)])
    )
    table = table.append_column(
        "point", pa.StructArray.from_arrays([pa.array(rng.normal(size=table.num_rows)), table["company"].combine_chunks()], names=["x", "company"])
    )
    edges = [0, 100, 150, 700, 701, 1200, 1900, 2400]
    return [table.slice(a, b - a).combine_chunks().to_batches()[0] for a, b in itertools.pairwise(edges)]


# Moments merge per-part means and M2 (Chan et al.) in float64: another grouping rounds
# differently, by a few ulps (measured: ≤ 5e-14 relative on these inputs).
MOMENT_FIELDS = frozenset({"mean", "std_dev"})
MOMENT_RTOL = 1e-12


def proto_differences(expected: Message, actual: Message, path: str = "") -> list[str]:
    """Where two statistics protos differ: moments beyond MOMENT_RTOL, anything else at all.

    Everything else is exact: counts, min/max, and the sketch-based fields too
    (median, histograms, unique, top values). The tfx_bsl sketches merge
    losslessly while they hold fewer items than their capacity (KMV 16384 hashes,
    Misra-Gries 1024 counters, the quantiles sketch's buffer at ε = 0.01), which
    these 2,400 rows are: any difference there is a merge bug, not sketch error.
    """
    if isinstance(expected, Message):
        want = {d.name: v for d, v in expected.ListFields()}
        got = {d.name: v for d, v in actual.ListFields()}
        out = [f"{path}.{name}: only in one" for name in sorted(want.keys() ^ got.keys())]
        for name in want.keys() & got.keys():
            out += proto_differences(want[name], got[name], f"{path}.{name}")
        return out
    if isinstance(expected, float):
        field_name = path.rsplit(".", 1)[-1]
        rtol = MOMENT_RTOL if field_name in MOMENT_FIELDS else 0.0
        same = math.isclose(expected, actual, rel_tol=rtol) or (math.isnan(expected) and math.isnan(actual))
        return [] if same else [f"{path}: {actual!r}, one shot {expected!r}"]
    if isinstance(expected, (int, str, bytes)):
        return [] if expected == actual else [f"{path}: {actual!r}, one shot {expected!r}"]
    if len(expected) != len(actual):
        return [f"{path}: {len(actual)} items, one shot {len(expected)}"]
    return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in proto_differences(e, a, f"{path}[{i}]")]


@pytest.mark.parametrize("order", ["finite first", "infinite first"])
def test_infinite_values_give_the_same_moments_in_any_order(order: str) -> None:
    """The mean of values with +inf is +inf however batches are grouped (it was NaN or inf by
    order); the standard deviation is 0, as TFDV's max(0, NaN) reports it."""
    batches = [pa.RecordBatch.from_pydict({"x": [1.0, 2.0]}), pa.RecordBatch.from_pydict({"x": [3.0, math.inf]})]
    if order == "infinite first":
        batches.reverse()
    combine_fn = StatisticsCombineFn()
    accumulators = [combine_fn.add_input(combine_fn.create_accumulator(), batch) for batch in batches]
    stats = combine_fn.extract_output(combine_fn.merge_accumulators(accumulators)).datasets[0].features[0].num_stats
    assert stats.mean == math.inf
    assert stats.std_dev == 0.0
