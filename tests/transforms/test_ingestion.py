"""Ingestion: every format reads to the same rows, splits are deterministic on every
runner, bad rows are rejected with their lines, and bad inputs fail naming the path."""

import collections
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.testing.util import assert_that, equal_to
from tensorflow_metadata.proto.v0 import schema_pb2

from beam_ml.transforms.formats import FILE_FORMATS
from beam_ml.transforms.ingestion import (
    IngestExamples,
    IngestionError,
    ReadExamples,
    ReadOptions,
    RejectedRow,
    SplitConfig,
    WriteExamples,
    assign_splits,
    ingestion_counts,
    read_examples_in_memory,
    write_examples_in_memory,
)

TESTDATA = "tfx_testdata"


def normalised_rows(table: pa.Table) -> collections.Counter:
    """Rows as comparable tuples: tf.Example and Avro hold float32, so every number is
    compared as float32; the Parquet test file was written by pandas, which stored a
    missing string as the text 'nan'; columns in name order; a multiset, since order is
    not kept."""
    names = sorted(table.column_names)
    rows = collections.Counter()
    for row in table.select(names).to_pylist():
        rows[tuple(normalised(v) for v in row.values())] += 1
    return rows


def normalised(value):
    if value is None or value == "nan":
        return None
    return value if isinstance(value, str) else float(np.float32(value))


def all_rows(result) -> pa.Table:
    return pa.concat_tables(result.splits.values())


def schema_of(**kinds: int) -> schema_pb2.Schema:
    schema = schema_pb2.Schema()
    for name, kind in kinds.items():
        schema.feature.add(name=name, type=kind)
    return schema


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


@pytest.fixture(scope="module")
def csv_rows(shared_data):
    result = read_examples_in_memory(str(shared_data / TESTDATA / "csv" / "*.csv"), ReadOptions(format="csv"))
    assert not result.rejected
    return normalised_rows(all_rows(result))


# ---------------------------------------------------------------------------- formats


@pytest.mark.parametrize(("folder", "fmt"), [("parquet", "parquet"), ("avro", "avro")])
def test_format_reads_the_same_rows_as_csv(shared_data, csv_rows, folder, fmt):
    result = read_examples_in_memory(str(shared_data / TESTDATA / folder / "*"), ReadOptions(format=fmt))
    assert not result.rejected
    assert sum(csv_rows.values()) == 10000
    assert normalised_rows(all_rows(result)) == csv_rows


def test_tfrecord_examples_hold_the_csv_rows(shared_data, csv_rows):
    """TFX's TFRecord test data has 15,000 rows: the CSV's 10,000 and 5,000 more."""
    result = read_examples_in_memory(str(shared_data / TESTDATA / "tfrecord" / "*.gz"), ReadOptions(format="tfrecord"))
    assert not result.rejected
    rows = normalised_rows(all_rows(result))
    assert sum(rows.values()) == 15000
    assert not csv_rows - rows


def test_tfrecord_types_are_flat(shared_data):
    table = all_rows(read_examples_in_memory(str(shared_data / TESTDATA / "tfrecord" / "*.gz"), ReadOptions(format="tfrecord")))
    assert table.schema.field("trip_start_hour").type == pa.int64()
    assert table.schema.field("fare").type == pa.float64()
    assert table.schema.field("company").type == pa.string()


def test_multi_line_csv_keeps_embedded_newlines(shared_data):
    result = read_examples_in_memory(str(shared_data / TESTDATA / "csv_multi_line_string" / "*.csv"), ReadOptions(format="csv"))
    table = all_rows(result)
    assert not result.rejected
    assert table.num_rows == 3
    assert '"2,\n"3",\n4\n5"' in table.column("B").to_pylist()


def test_csv_with_an_empty_column_gives_its_columns(shared_data):
    table = all_rows(read_examples_in_memory(str(shared_data / TESTDATA / "csv_empty" / "*.csv"), ReadOptions(format="csv")))
    assert table.column_names == ["A", "B", "C", "D"]
    assert table.column("B").null_count == table.num_rows == 3


def test_header_only_and_zero_byte_csv_give_empty_results(tmp_path):
    header = read_examples_in_memory(write(tmp_path / "h.csv", "a,b\n"), ReadOptions(format="csv"))
    assert header.splits["train"].column_names == ["a", "b"]
    assert sum(t.num_rows for t in header.splits.values()) == 0
    zero = read_examples_in_memory(write(tmp_path / "z.csv", ""), ReadOptions(format="csv", column_names=("x",)))
    assert zero.splits["eval"].column_names == ["x"] and zero.splits["eval"].num_rows == 0


def test_gzip_csv_and_given_column_names(tmp_path):
    import gzip

    path = tmp_path / "d.csv.gz"
    path.write_bytes(gzip.compress(b"1,a\n2,b\n"))
    table = all_rows(read_examples_in_memory(str(path), ReadOptions(format="csv", column_names=("n", "s"))))
    assert sorted(table.to_pylist(), key=str) == [{"n": 1, "s": "a"}, {"n": 2, "s": "b"}]


def test_jsonl_reads_rows_and_rejects_bad_lines(tmp_path):
    path = write(tmp_path / "d.jsonl", '{"a": 1, "b": "x"}\n{"a": 2.5}\nnot json\n\n{"a": 3, "b": null}\n')
    result = read_examples_in_memory(path, ReadOptions(format="jsonl"))
    assert normalised_rows(all_rows(result)) == normalised_rows(pa.table({"a": [1.0, 2.5, 3.0], "b": ["x", None, None]}))
    assert [(r.line, r.raw) for r in result.rejected] == [(3, "not json")]


def test_types_unify_across_files_int_then_float(tmp_path):
    write(tmp_path / "a.csv", "x,y\n1,a\n")
    write(tmp_path / "b.csv", "x,y\n2.5,3\n")
    table = all_rows(read_examples_in_memory(str(tmp_path / "*.csv"), ReadOptions(format="csv")))
    assert table.schema == pa.schema([("x", pa.float64()), ("y", pa.string())])
    assert sorted(table.column("x").to_pylist()) == [1.0, 2.5]


def test_schema_declares_types(shared_data):
    schema = schema_of(trip_start_hour=schema_pb2.FLOAT, company=schema_pb2.BYTES, pickup_community_area=schema_pb2.INT)
    table = all_rows(read_examples_in_memory(str(shared_data / TESTDATA / "csv" / "*.csv"), ReadOptions(format="csv", schema=schema)))
    assert table.schema.field("trip_start_hour").type == pa.float64()
    assert table.schema.field("pickup_community_area").type == pa.int64()


def test_byte_ranges_read_the_same_rows_as_one_item(shared_data, csv_rows):
    path = str(shared_data / TESTDATA / "csv" / "data.csv")
    options = ReadOptions(format="csv", split_bytes=100_000)
    _, items = FILE_FORMATS["csv"].plan("t", path, options)
    assert len(items) == 14
    assert normalised_rows(all_rows(read_examples_in_memory(path, options))) == csv_rows


def test_csv_with_newlines_in_values_is_one_work_item(shared_data):
    path = str(shared_data / TESTDATA / "csv_multi_line_string" / "data.csv")
    _, items = FILE_FORMATS["csv"].plan("t", path, ReadOptions(format="csv", split_bytes=10))
    assert [(i.start, i.stop, i.newlines_in_values) for i in items] == [(0, -1, True)]


# ---------------------------------------------------------------------------- bad rows


BAD_CSV = "n,s\n1,a\n2\n3,b\nten,c\n4,d,extra\n\n5,e\n"
EXPECTED_REJECTS = [
    (3, "2", "expected 2 fields, got 1"),
    (5, "ten,c", "column 'n': value 'ten' does not fit int64"),
    (6, "4,d,extra", "expected 2 fields, got 3"),
]


def rejects(rows):
    return sorted((r.line, r.raw, r.reason) for r in rows)


@pytest.mark.parametrize("split_bytes", [1 << 20, 9])
def test_bad_rows_are_rejected_with_their_lines(tmp_path, split_bytes):
    path = write(tmp_path / "bad.csv", BAD_CSV)
    options = ReadOptions(format="csv", schema=schema_of(n=schema_pb2.INT), split_bytes=split_bytes)
    result = read_examples_in_memory(path, options)
    assert rejects(result.rejected) == EXPECTED_REJECTS
    assert {r.path for r in result.rejected} == {path}
    assert sorted(all_rows(result).column("n").to_pylist()) == [1, 3, 5]
    assert result.counts["rows_read"] == 3 and result.counts["rows_rejected"] == 3


def test_value_not_fitting_an_inferred_type_is_rejected(tmp_path):
    path = write(tmp_path / "late.csv", "n,f\n" + "1,2\n" * 200 + "x,1.5\n")
    result = read_examples_in_memory(path, ReadOptions(format="csv", infer_bytes=20))
    assert rejects(result.rejected) == [(202, "x,1.5", "column 'n': value 'x' does not fit int64")]
    assert all_rows(result).schema.field("f").type == pa.float64()  # typed by its late 1.5 too


def test_beam_rejected_rows_and_counts(tmp_path):
    path = write(tmp_path / "bad.csv", BAD_CSV)
    options = ReadOptions(format="csv", schema=schema_of(n=schema_pb2.INT))
    pipeline = beam.Pipeline()
    result = pipeline | IngestExamples(path, options)
    assert_that(result.rejected | beam.Map(lambda r: (r.line, r.raw, r.reason)), equal_to(EXPECTED_REJECTS))
    run = pipeline.run()
    run.wait_until_finish()
    counts = ingestion_counts(run)
    assert counts["rows_read"] == 3 and counts["rows_rejected"] == 3
    assert counts.get("rows_split_train", 0) + counts.get("rows_split_eval", 0) == 3


# ---------------------------------------------------------------------------- errors


def test_missing_file_and_empty_glob_name_the_path(tmp_path):
    for pattern in (str(tmp_path / "missing.csv"), str(tmp_path / "*.csv")):
        with pytest.raises(IngestionError, match=pattern.replace("*", r"\*")):
            read_examples_in_memory(pattern, ReadOptions(format="csv"))
        with pytest.raises(IngestionError, match="no input files"):
            beam.Pipeline() | ReadExamples(pattern, ReadOptions(format="csv"))


@pytest.mark.parametrize("fmt", ["parquet", "avro", "tfrecord", "jsonl"])
def test_wrong_format_names_the_path(shared_data, fmt):
    path = str(shared_data / TESTDATA / "csv" / "data.csv")
    with pytest.raises(IngestionError, match=f"{path} is not a readable {fmt} file"):
        read_examples_in_memory(path, ReadOptions(format=fmt))


def test_binary_file_is_not_csv_in_beam(shared_data):
    path = str(shared_data / TESTDATA / "parquet" / "data.parquet")
    with pytest.raises(IngestionError, match=f"{path} is not a readable csv file"), beam.Pipeline() as p:
        p | ReadExamples(path, ReadOptions(format="csv"))


# ---------------------------------------------------------------------------- splits


def test_split_assignment_ignores_batch_boundaries_and_runs(shared_data):
    path = str(shared_data / TESTDATA / "csv" / "*.csv")
    first = read_examples_in_memory(path, ReadOptions(format="csv"))
    second = read_examples_in_memory(path, ReadOptions(format="csv", block_bytes=1 << 16))
    for name in ("train", "eval"):
        assert normalised_rows(first.splits[name]) == normalised_rows(second.splits[name])
    train = first.splits["train"].num_rows / 10000
    assert 0.63 < train < 0.70
    batch = pa.concat_tables(first.splits.values()).combine_chunks().to_batches()[0]
    assert np.array_equal(assign_splits(batch, SplitConfig())[5:9], assign_splits(batch.slice(5, 4), SplitConfig()))


def test_partition_feature_keeps_a_value_in_one_split(shared_data):
    config = SplitConfig(buckets={"a": 1, "b": 1, "c": 1}, partition_feature="company")
    result = read_examples_in_memory(str(shared_data / TESTDATA / "csv" / "*.csv"), ReadOptions(format="csv"), config)
    seen = {name: set(table.column("company").to_pylist()) for name, table in result.splits.items()}
    assert all(seen.values())
    assert not (seen["a"] & seen["b"]) and not (seen["a"] & seen["c"]) and not (seen["b"] & seen["c"])


def test_per_split_patterns_share_one_schema(tmp_path):
    (tmp_path / "train").mkdir()
    (tmp_path / "eval").mkdir()
    write(tmp_path / "train" / "1.csv", "x\n1\n2\n")
    write(tmp_path / "eval" / "1.csv", "x\n0.5\n")
    patterns = {"train": str(tmp_path / "train" / "*.csv"), "eval": str(tmp_path / "eval" / "*.csv")}
    result = read_examples_in_memory(patterns, ReadOptions(format="csv"))
    assert result.splits["train"].column("x").to_pylist() == [1.0, 2.0]
    assert result.splits["eval"].column("x").to_pylist() == [0.5]
    with pytest.raises(ValueError, match="per-split patterns"):
        IngestExamples(patterns, ReadOptions(format="csv"), SplitConfig())
    with beam.Pipeline() as p:
        splits = (p | IngestExamples(patterns, ReadOptions(format="csv"))).splits
        for name, values in (("train", [1.0, 2.0]), ("eval", [0.5])):
            column = splits[name] | f"X[{name}]" >> beam.FlatMap(lambda b: b.column("x").to_pylist())
            assert_that(column, equal_to(values), label=f"Check[{name}]")


def run_and_write(path: str, uri: Path, options: ReadOptions, *flags: str) -> dict[str, collections.Counter]:
    with beam.Pipeline(options=PipelineOptions(list(flags))) as p:
        result = p | IngestExamples(path, options)
        result.splits | WriteExamples(str(uri))
    return {
        split.name.removeprefix("Split-"): normalised_rows(pq.read_table(split))
        for split in sorted(uri.glob("Split-*"))
    }


def test_beam_splits_and_written_parquet_equal_in_memory(shared_data, tmp_path):
    path = str(shared_data / TESTDATA / "csv" / "data.csv")
    options = ReadOptions(format="csv", split_bytes=300_000)
    written = run_and_write(path, tmp_path / "out", options)
    expected = read_examples_in_memory(path, options).splits
    assert written == {name: normalised_rows(table) for name, table in expected.items()}
    assert not list((tmp_path / "out").glob(".tmp-*"))


@pytest.mark.slow
def test_splits_identical_in_multiprocessing_and_across_runs(shared_data, tmp_path):
    path = str(shared_data / TESTDATA / "csv" / "data.csv")
    options = ReadOptions(format="csv", split_bytes=300_000)
    first = run_and_write(path, tmp_path / "a", options)
    second = run_and_write(path, tmp_path / "b", options, "--direct_num_workers=2",
                           "--direct_running_mode=multi_processing")
    assert first == second
    assert sum(sum(c.values()) for c in first.values()) == 10000


def test_write_in_memory(tmp_path):
    tables = {"train": pa.table({"x": [1, 2]}), "eval": pa.table({"x": [3]})}
    paths = write_examples_in_memory(tables, str(tmp_path))
    assert [Path(p).parent.name for p in paths] == ["Split-train", "Split-eval"]
    assert pq.read_table(tmp_path / "Split-eval").column("x").to_pylist() == [3]


def test_rejected_row_has_a_schema_coder():
    coder = beam.coders.registry.get_coder(RejectedRow)
    row = RejectedRow("f.csv", 3, "2", "expected 2 fields, got 1")
    assert coder.decode(coder.encode(row)) == row


def test_reading_tfrecords_does_not_import_tensorflow(shared_data):
    code = (
        "import sys\n"
        "from beam_ml.transforms.ingestion import ReadOptions, read_examples_in_memory\n"
        f"read_examples_in_memory({str(shared_data / TESTDATA / 'tfrecord' / '*.gz')!r}, ReadOptions(format='tfrecord'))\n"
        "assert 'tensorflow' not in sys.modules, 'tensorflow was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_a_column_empty_in_the_sampled_head_is_typed_from_the_whole_file(tmp_path):
    path = tmp_path / "sparse.csv"
    rows = [f"{i}," for i in range(200)] + ["200,17031081401"]
    path.write_text("id,tract\n" + "\n".join(rows) + "\n")
    result = read_examples_in_memory(str(path), ReadOptions(format="csv", infer_bytes=64), SplitConfig({"all": 1}))
    table = result.splits["all"]
    assert table.schema.field("tract").type == pa.int64()
    assert table["tract"].drop_null().to_pylist() == [17031081401]
