"""Ingestion never changes a value behind the user's back: a column's type does not
depend on where a value sits, conflicting files fail, a split keeps its own columns,
and long, broken or undecodable fields are read or rejected row by row."""

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from beam_ml.transforms.formats import mixed_string_columns
from beam_ml.transforms.ingestion import IngestionError, ReadOptions, read_examples_in_memory

ROWS = 1_000_000


def write(path, text: str | bytes) -> str:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


def all_rows(result) -> pa.Table:
    return pa.concat_tables(result.splits.values())


def numbers_with_one_word(tmp_path, at: int) -> str:
    lines = [f"{i % 97}.5" for i in range(ROWS)]
    lines[at] = "oops"
    return write(tmp_path / f"bad_at_{at}.csv", "x\n" + "\n".join(lines) + "\n")


@pytest.mark.parametrize("at", [5_000, 900_000])
def test_a_word_in_a_float_column_is_a_rejected_row_wherever_it_sits(tmp_path, at):
    path = numbers_with_one_word(tmp_path, at)
    result = read_examples_in_memory(path, ReadOptions(format="csv"))
    assert all_rows(result).schema.field("x").type == pa.float64()
    assert [(r.line, r.raw) for r in result.rejected] == [(at + 2, "oops")]
    assert "'oops' does not fit double" in result.rejected[0].reason
    assert result.counts["rows_read"] == ROWS - 1


def test_a_column_of_mixed_values_is_string_and_said_so(tmp_path):
    path = write(tmp_path / "mixed.csv", "x,y\n" + "".join(f"{i},a{i}\n" if i % 10 else f"w{i},b\n" for i in range(500)))
    result = read_examples_in_memory(path, ReadOptions(format="csv", infer_bytes=64))
    schema = all_rows(result).schema
    assert schema.field("x").type == pa.string() and not result.rejected
    assert mixed_string_columns(schema) == ["x"]


def test_parquet_files_with_conflicting_types_fail_naming_both(tmp_path):
    pq.write_table(pa.table({"a": pa.array([1, 2], pa.int64())}), tmp_path / "one.parquet")
    pq.write_table(pa.table({"a": pa.array(["x", "y"])}), tmp_path / "two.parquet")
    with pytest.raises(IngestionError, match=r"'a' is int64 in .*one\.parquet but string in .*two\.parquet"):
        read_examples_in_memory(str(tmp_path / "*.parquet"), ReadOptions(format="parquet"))


def test_a_column_missing_from_one_splits_files_stays_missing_there(tmp_path):
    train = write(tmp_path / "train.csv", "a,b\n1,2\n3,4\n")
    eval_ = write(tmp_path / "eval.csv", "a\n5\n")
    result = read_examples_in_memory({"train": train, "eval": eval_}, ReadOptions(format="csv"))
    assert result.splits["train"].column_names == ["a", "b"]
    assert result.splits["eval"].column_names == ["a"]


def test_a_ten_megabyte_field_is_read(tmp_path):
    big = "z" * (10 << 20)
    path = write(tmp_path / "big.csv", f"id,text\n1,{big}\n2,short\n")
    result = read_examples_in_memory(path, ReadOptions(format="csv"))
    rows = sorted(all_rows(result).to_pylist(), key=lambda r: r["id"])
    assert not result.rejected
    assert rows == [{"id": 1, "text": big}, {"id": 2, "text": "short"}]


def test_an_unterminated_quote_is_reported_as_such_with_its_line(tmp_path):
    path = write(tmp_path / "quote.csv", 'a,b\n1,x\n2,"never closed\n')
    result = read_examples_in_memory(path, ReadOptions(format="csv"))
    assert [(r.line, r.reason) for r in result.rejected] == [
        (3, "unterminated quoted value: a quote opened in this row is never closed")]
    assert all_rows(result).to_pylist() == [{"a": 1, "b": "x"}]


def test_an_undecodable_byte_rejects_its_row_not_the_file(tmp_path):
    path = write(tmp_path / "latin1.csv", b"a,b\n1,ok\n2,caf\xe9\n3,fine\n")
    result = read_examples_in_memory(path, ReadOptions(format="csv"))
    assert [(r.line, r.path) for r in result.rejected] == [(3, path)]
    assert "invalid UTF-8" in result.rejected[0].reason
    assert sorted(all_rows(result).to_pylist(), key=lambda r: r["a"]) == [{"a": 1, "b": "ok"}, {"a": 3, "b": "fine"}]


def parses_by_first_line(monkeypatch) -> list[bytes]:
    """Record the first line of every text Arrow's CSV reader is given to parse."""
    import pyarrow.csv as pacsv

    parsed, read_csv = [], pacsv.read_csv

    def recording(source, *args, **kwargs):
        data = source.read()
        parsed.append(bytes(data[: data.find(b"\n")]))
        return read_csv(pa.BufferReader(data), *args, **kwargs)

    monkeypatch.setattr(pacsv, "read_csv", recording)
    return parsed


def items_of(path: str, options: ReadOptions) -> list[bytes]:
    """The first line of each work item of a CSV file."""
    from beam_ml.transforms.formats import FILE_FORMATS, _item_bytes

    _, items = FILE_FORMATS["csv"].plan("t", path, options)
    return [bytes(data[: data.find(b"\n")]) for data in (_item_bytes(item)[1] for item in items)]


def test_a_csv_whose_values_fit_its_heads_types_is_parsed_once(tmp_path, monkeypatch):
    # `late` is empty in the head and holds integers further on: read as text, then cast
    rows = "".join(f"{i},{i / 4},w{i % 7},{i if i > 2000 else ''}\n" for i in range(3000))
    path = write(tmp_path / "clean.csv", "n,x,s,late\n" + rows)
    options = ReadOptions(format="csv", infer_bytes=256, split_bytes=8 << 10)
    starts = items_of(path, options)
    parsed = parses_by_first_line(monkeypatch)
    result = read_examples_in_memory(path, options)
    table = all_rows(result)
    assert len(starts) > 3 and table.num_rows == 3000 and not result.rejected
    assert [table.schema.field(name).type for name in ("n", "x", "s", "late")] == [
        pa.int64(), pa.float64(), pa.string(), pa.int64()]
    assert sorted(table.column("late").drop_null().to_pylist()) == list(range(2001, 3000))
    # the head's sample once, then each work item once: no parse only to decide the types
    assert sorted(parsed[1:]) == sorted(starts)


def test_only_the_work_item_holding_a_misfit_is_parsed_again(tmp_path, monkeypatch):
    lines = [f"{i},w{i % 7}" for i in range(3000)]
    lines[2900] = "oops,w"
    path = write(tmp_path / "late.csv", "n,s\n" + "\n".join(lines) + "\n")
    options = ReadOptions(format="csv", infer_bytes=256, split_bytes=8 << 10)
    starts = items_of(path, options)
    parsed = parses_by_first_line(monkeypatch)
    result = read_examples_in_memory(path, options)
    assert all_rows(result).schema.field("n").type == pa.int64()
    assert [(r.line, r.raw) for r in result.rejected] == [(2902, "oops,w")]
    items_parsed = parsed[1:]  # after the head's sample
    assert all(items_parsed.count(start) == 1 for start in starts[:-1])
    assert items_parsed.count(starts[-1]) > 1


def test_an_item_whose_held_batches_are_gone_is_read_again(tmp_path, monkeypatch):
    """A retried bundle finds its item's held file taken: the item is read from its text."""
    from beam_ml.transforms import ingestion

    path = write(tmp_path / "x.csv", "n,s\n" + "".join(f"{i},w{i % 7}\n" for i in range(3000)))
    options = ReadOptions(format="csv", infer_bytes=256, split_bytes=8 << 10)
    expected = read_examples_in_memory(path, options).splits
    take = ingestion._take_held

    def taken_before(held):
        take(held)  # as a first attempt of the bundle would
        return take(held)

    monkeypatch.setattr(ingestion, "_take_held", taken_before)
    again = read_examples_in_memory(path, options).splits
    assert {name: table.to_pylist() for name, table in again.items()} == {
        name: table.to_pylist() for name, table in expected.items()}


def test_held_items_wait_under_the_temp_location_and_are_removed(tmp_path, monkeypatch):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.testing.util import assert_that, equal_to

    from beam_ml.transforms import ingestion
    from beam_ml.transforms.ingestion import IngestExamples, SplitConfig

    holds, hold = [], ingestion._hold
    monkeypatch.setattr(ingestion, "_hold", lambda *args: holds.append(hold(*args)) or holds[-1])

    path = write(tmp_path / "x.csv", "n,s\n" + "".join(f"{i},w{i % 7}\n" for i in range(3000)))
    options = ReadOptions(format="csv", infer_bytes=256, split_bytes=8 << 10)
    held = tmp_path / "temp"
    held.mkdir()
    pipeline = beam.Pipeline(options=PipelineOptions([f"--temp_location={held}"]))
    rows = (pipeline | IngestExamples(path, options, SplitConfig({"all": 1}))).splits["all"]
    assert_that(rows | beam.Map(lambda batch: batch.num_rows) | beam.CombineGlobally(sum), equal_to([3000]))
    pipeline.run().wait_until_finish()
    assert len(holds) == len(items_of(path, options)) and all(Path(p).parent == held for p in holds)  # in this process
    assert list(held.iterdir()) == []
