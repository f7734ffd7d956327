"""Makes TFDV 1.16.1's reference statistics for tests/transforms/test_list_statistics.py.

Run inside the TFDV 1.16.1 peer venv (benchmarks/peers/venvs.py creates it):

    ~/.cache/beam-ml/bench-venvs/tfdv-1.16.1/bin/python tests/transforms/data/make_tfdv_list_reference.py

It writes our fixture (tests/transforms/list_fixtures.py) as a TFRecord of tf.Example and
has TFDV compute statistics with its own reader (generate_statistics_from_tfrecord) by
default, with a weight feature, and with a schema (categorical INT and FLOAT features, an
image_domain BYTES feature; TFDV's sketch-based top-k, which it requires for the FLOAT
one); and the nested/struct fixture as an Arrow RecordBatch through tfdv.GenerateStatistics on DirectRunner, plain and weighted. Each result is one
DatasetFeatureStatisticsList text proto in tests/transforms/data/. TFDV's infer_schema of the
plain tf.Example and nested statistics is written beside them (`*_schema_inferred.pbtxt`).
"""

import os
import sys
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import apache_beam as beam
import pyarrow as pa
import tensorflow_data_validation as tfdv
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import schema_pb2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
import list_fixtures  # noqa: E402


def write(name: str, stats) -> None:
    (HERE / name).write_text(
        f"# TFDV {tfdv.__version__} output; made by {Path(__file__).name}, do not edit.\n"
        + text_format.MessageToString(stats)
    )
    if name in ("tfdv_1.16.1_list_features.pbtxt", "tfdv_1.16.1_nested_features.pbtxt"):
        write(name.replace(".pbtxt", "_schema_inferred.pbtxt"), tfdv.infer_schema(stats))


def from_record_batch(batch: pa.RecordBatch, options: tfdv.StatsOptions):
    with tempfile.TemporaryDirectory() as tmp:
        output = os.path.join(tmp, "stats.tfrecord")
        with beam.Pipeline() as pipeline:
            _ = (
                pipeline
                | beam.Create([batch], reshuffle=False)
                | tfdv.GenerateStatistics(options)
                | tfdv.WriteStatisticsToTFRecord(output)
            )
        return tfdv.load_statistics(output)


def main() -> None:
    schema = text_format.Parse(list_fixtures.SCHEMA_TEXT, schema_pb2.Schema())
    with tempfile.TemporaryDirectory() as tmp:
        path = list_fixtures.write_tf_examples(os.path.join(tmp, "examples.tfrecord"), list_fixtures.tf_examples())
        for name, options in [
            ("tfdv_1.16.1_list_features.pbtxt", tfdv.StatsOptions()),
            ("tfdv_1.16.1_list_features_weighted.pbtxt", tfdv.StatsOptions(weight_feature="weight")),
            # TFDV summarises categorical FLOAT features only with its sketch-based top-k.
            ("tfdv_1.16.1_list_features_schema.pbtxt",
             tfdv.StatsOptions(schema=schema, use_sketch_based_topk_uniques=True)),
        ]:
            write(name, tfdv.generate_statistics_from_tfrecord(path, stats_options=options))
    batch = list_fixtures.nested_record_batch(pa)
    write("tfdv_1.16.1_nested_features.pbtxt", from_record_batch(batch, tfdv.StatsOptions()))
    write("tfdv_1.16.1_nested_features_weighted.pbtxt",
          from_record_batch(batch, tfdv.StatsOptions(weight_feature="weight")))


if __name__ == "__main__":
    main()
