"""Statistics of list-valued, nested and struct features against TFDV 1.16.1's.

The fixture is our own (tests/transforms/list_fixtures.py): tf.Examples with
multi-valued, empty and missing features, and an Arrow batch with nested lists
and a list of structs. TFDV 1.16.1's statistics of it are committed in
tests/transforms/data/ (made by make_tfdv_list_reference.py in the peer venv).
Ours come end to end where the data has a file form: the TFRecord (or Parquet)
file read by our ingestion, then our statistics.

Tolerances: counts, value counts and types are exact; means, averages and other
floating-point figures agree to 1e-9 relative (both sides sum in float64 in a
different order). On 400 examples the quantile sketches hold every value, so
the histograms, medians, unique counts and top values agree to the same 1e-9.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from google.protobuf import text_format
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import Message
from list_fixtures import SCHEMA_TEXT, nested_record_batch, tf_examples, write_tf_examples
from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

from beam_ml.transforms.ingestion import ReadOptions, read_examples_in_memory
from beam_ml.transforms.statistics import (
    StatisticsCombineFn,
    StatsOptions,
    generate_statistics_in_memory,
)

DATA = Path(__file__).resolve().parent / "data"
RTOL = 1e-9


def reference(name: str) -> statistics_pb2.DatasetFeatureStatistics:
    text = (DATA / f"tfdv_1.16.1_{name}.pbtxt").read_text()
    return text_format.Parse(text, statistics_pb2.DatasetFeatureStatisticsList()).datasets[0]


def assert_proto_close(ours: Message, theirs: Message, where: str) -> None:
    """Field by field: integers, strings and enums equal, floats within RTOL, same fields set."""
    ours_fields = {f.name for f, _ in ours.ListFields()}
    theirs_fields = {f.name for f, _ in theirs.ListFields()}
    assert ours_fields == theirs_fields, f"{where}: fields {sorted(ours_fields)} != TFDV's {sorted(theirs_fields)}"
    for descriptor, value in theirs.ListFields():
        mine = getattr(ours, descriptor.name)
        at = f"{where}.{descriptor.name}"
        if descriptor.label == FieldDescriptor.LABEL_REPEATED:
            assert len(mine) == len(value), f"{at}: {len(mine)} entries, TFDV has {len(value)}"
            pairs = list(zip(mine, value, strict=True))
        else:
            pairs = [(mine, value)]
        for index, (a, b) in enumerate(pairs):
            here = f"{at}[{index}]" if len(pairs) > 1 else at
            if descriptor.type == FieldDescriptor.TYPE_MESSAGE:
                assert_proto_close(a, b, here)
            elif descriptor.type in (FieldDescriptor.TYPE_DOUBLE, FieldDescriptor.TYPE_FLOAT):
                assert math.isclose(a, b, rel_tol=RTOL, abs_tol=RTOL), f"{here}: {a} != TFDV's {b}"
            else:
                assert a == b, f"{here}: {a!r} != TFDV's {b!r}"


def assert_matches_tfdv(ours: statistics_pb2.DatasetFeatureStatistics, theirs: statistics_pb2.DatasetFeatureStatistics):
    assert ours.num_examples == theirs.num_examples
    assert math.isclose(ours.weighted_num_examples, theirs.weighted_num_examples, rel_tol=RTOL)
    by_path = {tuple(f.path.step): f for f in ours.features}
    assert sorted(by_path) == sorted(tuple(f.path.step) for f in theirs.features)
    for feature in theirs.features:
        assert_proto_close(by_path[tuple(feature.path.step)], feature, ".".join(feature.path.step))


@pytest.fixture(scope="module")
def examples(tmp_path_factory) -> pa.Table:
    """The tf.Example fixture as our ingestion stores it."""
    path = write_tf_examples(tmp_path_factory.mktemp("lists") / "examples.tfrecord", tf_examples())
    result = read_examples_in_memory(path, ReadOptions(format="tfrecord"))
    assert not result.rejected
    return pa.concat_tables(result.splits.values())


def test_ingested_examples_keep_lists_and_singles(examples):
    assert examples.num_rows == 400
    assert examples.schema.field("int_list").type == pa.list_(pa.int64())
    assert examples.schema.field("str_list").type == pa.list_(pa.string())
    assert examples.schema.field("label").type == pa.int64()


@pytest.mark.parametrize(
    ("reference_name", "options"),
    [
        ("list_features", StatsOptions()),
        ("list_features_weighted", StatsOptions(weight_feature="weight")),
        ("list_features_schema", StatsOptions(schema=text_format.Parse(SCHEMA_TEXT, schema_pb2.Schema()))),
    ],
)
def test_tf_example_list_features_match_tfdv(examples, reference_name, options):
    assert_matches_tfdv(generate_statistics_in_memory(examples, options).datasets[0], reference(reference_name))


@pytest.mark.parametrize(("reference_name", "options"), [
    ("nested_features", StatsOptions()),
    ("nested_features_weighted", StatsOptions(weight_feature="weight")),
])
def test_nested_list_and_struct_features_match_tfdv(reference_name, options):
    ours = generate_statistics_in_memory(nested_record_batch(pa), options).datasets[0]
    assert_matches_tfdv(ours, reference(reference_name))


def test_nested_features_read_from_parquet_match_tfdv(tmp_path):
    pq.write_table(pa.Table.from_batches([nested_record_batch(pa)]), tmp_path / "nested.parquet")
    result = read_examples_in_memory(str(tmp_path / "nested.parquet"), ReadOptions(format="parquet"))
    assert not result.rejected
    ours = generate_statistics_in_memory(pa.concat_tables(result.splits.values())).datasets[0]
    assert_matches_tfdv(ours, reference("nested_features"))


@pytest.mark.parametrize("weighted", [False, True])
def test_nested_statistics_merged_from_parts_match_tfdv(weighted):
    """Per-level presence, innermost counts and struct members survive split, compact and
    merge in any order (the accumulators Beam ships between workers)."""
    options = StatsOptions(weight_feature="weight" if weighted else None)
    combine = StatisticsCombineFn(options)
    batch = nested_record_batch(pa)
    parts = []
    for start, stop in [(0, 1), (1, 150), (150, 151), (151, 400)]:
        accumulator = combine.add_input(combine.create_accumulator(), batch.slice(start, stop - start))
        parts.append(pickle.loads(pickle.dumps(combine.compact(accumulator))))
    merged = combine.merge_accumulators([combine.create_accumulator(), parts[3], parts[0]])
    merged = combine.merge_accumulators([merged, combine.merge_accumulators([parts[2], parts[1]])])
    ours = combine.extract_output(combine.compact(merged)).datasets[0]
    assert_matches_tfdv(ours, reference("nested_features_weighted" if weighted else "nested_features"))


@pytest.mark.parametrize("options", [StatsOptions(), StatsOptions().with_weight_feature("w")], ids=["plain", "weighted"])
def test_values_hidden_under_a_null_list_are_not_counted(options):
    """Arrow lets a null list slot span values (offsets 2..4 below); they are not the row's.

    The same column written the usual way (an empty span under the null) must give
    the same statistics: flattening skips the hidden values, so the rows they are
    attributed to must skip them too.
    """
    weights = pa.array([1.0, 2.0, 3.0])
    hidden = pa.ListArray.from_arrays(
        pa.array([0, 2, 4, 5], pa.int32()), pa.array([1.0, 2.0, 3.0, 4.0, 5.0]), mask=pa.array([False, True, False])
    )
    usual = pa.array([[1.0, 2.0], None, [5.0]], pa.list_(pa.float64()))
    fn = StatisticsCombineFn(options)

    def stats(column: pa.Array) -> statistics_pb2.DatasetFeatureStatisticsList:
        batch = pa.RecordBatch.from_arrays([column, weights], names=["l", "w"])
        return fn.extract_output(fn.add_input(fn.create_accumulator(), batch))

    assert stats(hidden) == stats(usual)
