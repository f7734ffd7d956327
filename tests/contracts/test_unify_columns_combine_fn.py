"""Beam's CombineFn contract for ingestion's `_UnifyColumns` (every file's sampled columns →
the schema of each output tag): exact equality, the schema must not depend on how files were grouped."""

from __future__ import annotations

import pyarrow as pa
import pytest
from contracts.combine_fn_contract import CombineFnContract

from beam_ml.transforms.formats import FileColumns, ReadOptions
from beam_ml.transforms.ingestion import _UnifyColumns


class TestUnifyColumns(CombineFnContract):
    @pytest.fixture
    def combine_fn(self) -> _UnifyColumns:
        return _UnifyColumns(ReadOptions(format="csv"))

    @pytest.fixture
    def inputs(self) -> list[FileColumns]:
        """Files with their columns in different orders, some missing a column, some whose
        sample of a column was all empty ("null")."""
        return [
            FileColumns("data/part-3.csv", ("fare", "company", "tips"), ("float", "string", "float")),
            FileColumns("data/part-1.csv", ("company", "fare"), ("null", "float")),
            FileColumns("data/part-4.csv", ("tips", "trip_id"), ("null", "int")),
            FileColumns("data/part-0.csv", ("company", "fare", "tips"), ("string", "null", "float")),
            FileColumns("data/part-2.csv", ("trip_id", "fare"), ("int", "float")),
        ]

    def test_schema_of_the_inputs(self, combine_fn: _UnifyColumns, inputs: list[FileColumns]) -> None:
        """What the contract compares against: columns in the first file's order (by path),
        then those the first file lacks, each of its non-empty kind."""
        accumulator = combine_fn.create_accumulator()
        for columns in inputs:
            accumulator = combine_fn.add_input(accumulator, columns)
        assert combine_fn.extract_output(accumulator) == {"": pa.schema(
            [("company", pa.string()), ("fare", pa.float64()), ("tips", pa.float64()), ("trip_id", pa.int64())]
        )}  # one output tag ("") here; a tag's schema keeps only the columns its files have
