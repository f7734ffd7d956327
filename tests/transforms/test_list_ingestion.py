"""List-valued and struct features are ingested as list and struct columns, values unchanged:
Parquet/Arrow lists, JSON Lines arrays and objects, multi-valued tf.Example features."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from list_fixtures import write_tf_examples

from beam_ml.transforms.formats import IngestionError
from beam_ml.transforms.ingestion import (
    ReadOptions,
    SplitConfig,
    assign_splits,
    read_examples_in_memory,
)


def rows(result) -> list[dict]:
    table = pa.concat_tables(result.splits.values())
    return sorted(table.to_pylist(), key=repr)


def test_parquet_list_nested_list_and_struct_columns_are_read_as_they_are(tmp_path):
    table = pa.table({
        "id": [1, 2, 3],
        "tags": pa.array([["a", "b"], [], None], pa.list_(pa.string())),
        "grid": pa.array([[[1, 2], [3]], None, [[]]], pa.list_(pa.list_(pa.int32()))),
        "c": pa.array([{"f1": 1.5, "f2": "x"}, None, {"f1": None, "f2": "y"}]),
    })
    pq.write_table(table, tmp_path / "d.parquet")
    result = read_examples_in_memory(str(tmp_path / "d.parquet"), ReadOptions(format="parquet"))
    assert not result.rejected
    out = pa.concat_tables(result.splits.values())
    assert out.schema.field("tags").type == pa.list_(pa.string())
    assert out.schema.field("grid").type == pa.list_(pa.list_(pa.int64()))
    assert out.schema.field("c").type == pa.struct([("f1", pa.float64()), ("f2", pa.string())])
    assert rows(result) == sorted(table.to_pylist(), key=repr)


def test_jsonl_arrays_and_objects_are_list_and_struct_columns(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": [1, 2], "o": {"k": "v"}}\n{"a": []}\n{"a": [3.5], "o": {"k": null, "n": 2}}\n{"b": 1}\n')
    result = read_examples_in_memory(str(path), ReadOptions(format="jsonl"))
    assert not result.rejected
    out = pa.concat_tables(result.splits.values())
    assert out.schema.field("a").type == pa.list_(pa.float64())
    assert sorted(map(repr, out.column("a").to_pylist())) == sorted(map(repr, [[1.0, 2.0], [], [3.5], None]))
    assert {"k": None, "n": 2} in out.column("o").to_pylist()


def test_multi_valued_tf_example_features_are_lists_wherever_the_multi_value_sits(tmp_path):
    # Feature "m" has one value in every example but the last of 20,000: it is a list column
    # all the same (the planner reads the whole file, not a head of batch_rows records).
    examples = [{"m": [float(i)], "s": [b"x"], "e": []} for i in range(19_999)]
    examples.append({"m": [1.0, 2.0], "s": [b"y"]})
    path = write_tf_examples(tmp_path / "d.tfrecord", examples)
    result = read_examples_in_memory(path, ReadOptions(format="tfrecord", batch_rows=1000))
    assert not result.rejected
    out = pa.concat_tables(result.splits.values())
    assert out.schema.field("m").type == pa.list_(pa.float64())
    assert out.schema.field("s").type == pa.string()  # one value in every example: single-valued
    assert out.schema.field("e").type == pa.list_(pa.string())  # present but empty: not missing
    by_m = {tuple(r["m"]): r for r in out.to_pylist()}
    assert by_m[(1.0, 2.0)]["s"] == "y" and by_m[(1.0, 2.0)]["e"] is None
    assert by_m[(5.0,)]["e"] == []


def test_single_and_multi_valued_files_join_as_a_list_column(tmp_path):
    write_tf_examples(tmp_path / "a.tfrecord", [{"m": [1]}, {"m": [2]}])
    write_tf_examples(tmp_path / "b.tfrecord", [{"m": [3, 4]}])
    result = read_examples_in_memory(str(tmp_path / "*.tfrecord"), ReadOptions(format="tfrecord"))
    assert not result.rejected
    assert sorted(pa.concat_tables(result.splits.values()).column("m").to_pylist()) == [[1], [2], [3, 4]]


def test_list_in_one_file_and_struct_in_another_fails_naming_the_file(tmp_path):
    pq.write_table(pa.table({"x": pa.array([[1]])}), tmp_path / "a.parquet")
    pq.write_table(pa.table({"x": pa.array([{"f": 1}])}), tmp_path / "b.parquet")
    with pytest.raises(IngestionError, match=r"b\.parquet.*'x'"):
        read_examples_in_memory(str(tmp_path / "*.parquet"), ReadOptions(format="parquet"))


def test_splits_of_list_and_struct_rows_depend_on_their_values_only():
    batch = pa.record_batch({"v": pa.array([[1, 2], [2, 1], [1, 2], None, [], [1]]),
                             "c": pa.array([{"f": "a"}, {"f": "a"}, {"f": "a"}, None, {"f": None}, {"f": "a"}])})
    config = SplitConfig(buckets=tuple((f"s{i}", 1) for i in range(1000)))
    splits = assign_splits(batch, config)
    assert splits[0] == splits[2] == assign_splits(batch.slice(2, 1), config)[0]  # equal rows, equal split
    assert len({int(s) for s in splits[[0, 1, 3, 4, 5]]}) == 5  # order, null, empty and length all count


def test_jsonl_single_value_in_a_list_column_is_a_one_value_list_and_other_misfits_are_rejected(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": [1.5, 2], "s": "x"}\n{"a": 3, "s": "y"}\n{"a": "three", "s": "z"}\n{"a": [4], "s": 5}\n')
    # Types from the first two lines (a: list<double>, s: string); the others come after the sample.
    result = read_examples_in_memory(str(path), ReadOptions(format="jsonl", infer_bytes=50))
    out = pa.concat_tables(result.splits.values())
    assert out.schema.field("a").type == pa.list_(pa.float64())
    assert sorted(out.to_pylist(), key=repr) == [{"a": [1.5, 2.0], "s": "x"}, {"a": [3.0], "s": "y"}]
    assert sorted(r.line for r in result.rejected) == [3, 4]  # text in a list of numbers; a number as text
