"""Record batches cross Beam stages as Arrow IPC through RecordBatchCoder, whose size
estimate reads the buffers instead of encoding the batch; ingestion's batch outputs use it."""

import pickle

import apache_beam as beam
import pyarrow as pa
import pytest
from apache_beam.testing.util import assert_that, equal_to

from beam_ml.transforms.ingestion import IngestExamples, ReadExamples, ReadOptions, SplitConfig
from beam_ml.transforms.record_batch_coder import RecordBatchCoder, batch_output_types


def mixed_batch() -> pa.RecordBatch:
    """Nulls, text, lists, structs, a dictionary column and schema metadata."""
    batch = pa.RecordBatch.from_pydict({
        "n": pa.array([1, None, 3, 4], pa.int64()),
        "x": pa.array([0.5, 1.5, None, -2.0]),
        "s": pa.array(["a", None, "ccc", ""]),
        "l": pa.array([[1.0], [], None, [2.0, 3.0]], pa.list_(pa.float64())),
        "st": pa.array([{"a": 1}, None, {"a": 3}, {"a": None}], pa.struct([("a", pa.int64())])),
        "d": pa.array(["u", "v", "u", None]).dictionary_encode(),
    })
    return batch.replace_schema_metadata({b"beam_ml.mixed_string_columns": b'["s"]'})


@pytest.mark.parametrize("batch", [
    mixed_batch(),
    mixed_batch().slice(1, 2),  # a view with an offset: only its rows travel
    mixed_batch().slice(0, 0),
    pa.RecordBatch.from_pydict({"n": pa.array([], pa.int64())}),
], ids=["mixed", "slice", "empty-slice", "empty"])
def test_round_trip_keeps_values_types_and_metadata(batch):
    coder = RecordBatchCoder()
    decoded = coder.decode(coder.encode(batch))
    assert decoded.equals(batch)
    assert decoded.schema.equals(batch.schema, check_metadata=True)
    impl = coder.get_impl()
    assert impl.decode(impl.encode(batch)).equals(batch)


def test_size_estimate_is_the_buffer_size_not_an_encoding():
    batch = pa.RecordBatch.from_pydict({"x": pa.array(range(100_000), pa.float64())})
    impl = RecordBatchCoder().get_impl()
    assert impl.estimate_size(batch) == batch.nbytes == 800_000
    size, observables = impl.get_estimated_size_and_observables(batch)
    assert (size, observables) == (800_000, [])


def test_registered_for_record_batches_and_pickles():
    coder = beam.coders.registry.get_coder(pa.RecordBatch)
    assert isinstance(coder, RecordBatchCoder)
    assert pickle.loads(pickle.dumps(coder)) == coder
    assert not coder.is_deterministic()


def test_batches_cross_a_shuffle_through_the_coder():
    """A GroupByKey encodes and decodes every batch: the rows come out whole."""
    batches = [mixed_batch(), mixed_batch().slice(2, 2)]
    with beam.Pipeline() as pipeline:
        grouped = (
            pipeline
            | beam.Create(batches).with_output_types(pa.RecordBatch)
            | beam.Map(lambda b: (b.num_rows, b)).with_output_types(tuple[int, pa.RecordBatch])
            | beam.GroupByKey()
            | beam.FlatMap(lambda kv: [(kv[0], batch.to_pylist()) for batch in kv[1]])
        )
        assert_that(grouped, equal_to([(4, mixed_batch().to_pylist()), (2, mixed_batch().slice(2, 2).to_pylist())]))


def test_ingestion_outputs_are_typed_record_batches(tmp_path):
    path = tmp_path / "data.csv"
    path.write_text("a,b\n1,x\n2,y\n3,z\n")
    pipeline = beam.Pipeline()
    read = pipeline | "Read" >> ReadExamples(str(path), ReadOptions(format="csv"))
    splits = (pipeline | "Ingest" >> IngestExamples(str(path), ReadOptions(format="csv"),
                                                     SplitConfig({"train": 1, "self": 1}))).splits
    assert read.examples.element_type is pa.RecordBatch
    assert splits["train"].element_type is pa.RecordBatch
    assert batch_output_types(["train", "self"]) == {"train": pa.RecordBatch}


def test_a_split_named_self_still_runs(tmp_path):
    """`self` cannot be a keyword of with_output_types: that split stays untyped, and works."""
    path = tmp_path / "data.csv"
    path.write_text("a\n" + "".join(f"{i}\n" for i in range(40)))
    with beam.Pipeline() as pipeline:
        splits = (pipeline | IngestExamples(str(path), ReadOptions(format="csv"), SplitConfig({"self": 1, "other": 1}))).splits
        rows = ((splits["self"], splits["other"]) | beam.Flatten()
                | beam.FlatMap(lambda batch: batch.column("a").to_pylist()))
        assert_that(rows, equal_to(list(range(40))))
