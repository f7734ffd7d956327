"""Transform with and without tf.Transform's analyzer cache on a rolling window of 2 spans.

    python -m benchmarks.analyzer_cache [--copies 10] [--repeat 3] [--work DIR]

Three spans, each the taxi sample ×``copies`` (benchmarks/data.py; synthetic taxi-like
rows where ../shared is absent), are ingested by ExampleGen with ``rolling=2`` through
the local runner: the window [1, 2], then [2, 3] (StatisticsGen and SchemaGen too, for
the Schema). Transform's stage (``tf_transform.transform_examples``, with the
component's dataset keys: one per span) analyzes window [1, 2] once to write a cache
(not timed); then window [2, 3] is transformed alternately with that cache (span 2's
analysis read from it, only span 3 read for analysis) and without (both spans
analyzed), ``--repeat`` times each, each time into fresh output directories. Both
write their own cache, as the component does. Prints one JSON line per run and the
medians; the transformed rows of the two are checked to be equal.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.data import prepare


def preprocessing_fn(inputs):
    """The taxi benchmark's preprocessing (tests/components/modules/taxi_transform.py) without its row id."""
    import tensorflow as tf
    import tensorflow_transform as tft

    def fill(tensor, default):
        if isinstance(tensor, tf.sparse.SparseTensor):
            tensor = tf.sparse.to_dense(
                tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default)
        return tf.squeeze(tensor, axis=1)

    return {
        "fare_xf": tft.scale_to_z_score(tf.cast(fill(inputs["fare"], 0.0), tf.float32)),
        "trip_miles_xf": tft.scale_to_z_score(tf.cast(fill(inputs["trip_miles"], 0.0), tf.float32)),
        "trip_seconds_xf": tft.scale_to_0_1(tf.cast(fill(inputs["trip_seconds"], 0), tf.float32)),
        "pickup_community_area_xf": tft.scale_to_z_score(tf.cast(fill(inputs["pickup_community_area"], 0), tf.float32)),
        "payment_type_xf": tft.compute_and_apply_vocabulary(fill(inputs["payment_type"], ""), vocab_filename="payment_type"),
        "company_xf": tft.compute_and_apply_vocabulary(fill(inputs["company"], ""), top_k=20, num_oov_buckets=1,
                                                       vocab_filename="company"),
    }


def _window(root: Path, spans_dir: Path):
    """ExampleGen (rolling=2), StatisticsGen, SchemaGen through the runner: (Examples, Schema) of the latest window."""
    from beam_ml import Pipeline
    from beam_ml.components.example_gen import ExampleGen
    from beam_ml.components.schema_gen import SchemaGen
    from beam_ml.components.statistics_gen import StatisticsGen
    from beam_ml.orchestration.runner import LocalDagRunner

    gen = ExampleGen(input_path=str(spans_dir / "span-{SPAN}" / "data.csv"), rolling=2)
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics, infer_feature_shape=False)
    result = LocalDagRunner().run(Pipeline("analyzer_cache_bench", str(root), [gen, stats, schema]))
    if result.state != "COMPLETE":
        raise RuntimeError(f"ingesting the window failed: {result.failed and result.failed.error}")
    return result.outputs("ExampleGen")["examples"], result.outputs("SchemaGen")["schema"]


def _transform(examples, schema, work: Path, cache_in: Path | None) -> dict:
    import apache_beam as beam

    from beam_ml.artifacts import Examples, Schema
    from beam_ml.components.transform import analysis_datasets, tensor_bytes
    from beam_ml.runners.options import pipeline_options
    from beam_ml.transforms import tf_transform

    examples = Examples(examples.uri, examples.properties, fingerprint=examples.fingerprint)
    schema_proto = Schema(schema.uri).load()
    arrow_schema = examples.arrow_schema("train")
    config = tf_transform.tensor_adapter_config(arrow_schema, schema_proto)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.perf_counter()
    with beam.Pipeline(options=pipeline_options([])) as pipeline:
        plan = tf_transform.transform_examples(
            pipeline,
            split_uris={name: examples.split_uri(name) for name in examples.splits},
            arrow_schema=arrow_schema,
            schema=schema_proto,
            preprocessing_fn=preprocessing_fn,
            transform_output_dir=str(work / "transform_graph"),
            transformed_examples_uri=str(work / "transformed"),
            temp_dir=str(work / "tmp"),
            analysis_datasets=analysis_datasets(examples, "train", tensor_bytes(config)),
            cache_input_dir=str(cache_in) if cache_in is not None else None,
            cache_output_dir=str(work / "cache"),
        )
    seconds = time.perf_counter() - started
    rows = sum(Examples(str(work / "transformed")).count_rows(name) for name in examples.splits)
    return {"seconds": round(seconds, 2), "rows": rows, "from_cache": plan.from_cache, "analyzed": plan.analyzed}


def _rows(directory: Path):
    import pyarrow.parquet as pq

    table = pq.read_table(directory)
    return table.sort_by([(name, "ascending") for name in sorted(table.column_names)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=10, help="taxi sample copies per span (default 10)")
    parser.add_argument("--repeat", type=int, default=3, help="runs with and without cache, alternating")
    parser.add_argument("--work", type=Path, default=None, help="work directory (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="beam-ml-analyzer-cache-"))
    dataset = prepare(work / "data", args.copies)
    spans = work / "spans"
    shutil.rmtree(spans, ignore_errors=True)
    root = work / "root"
    shutil.rmtree(root, ignore_errors=True)
    for span in (1, 2):
        (spans / f"span-{span}").mkdir(parents=True)
        shutil.copy(dataset.csv, spans / f"span-{span}" / "data.csv")
    first_window = _window(root, spans)
    setup = _transform(*first_window, work / "setup", None)
    print(json.dumps({"run": "setup [1, 2]", **setup}), flush=True)
    (spans / "span-3").mkdir()
    shutil.copy(dataset.csv, spans / "span-3" / "data.csv")
    window = _window(root, spans)
    times: dict[str, list[float]] = {"with_cache": [], "without_cache": []}
    for index in range(args.repeat):
        for name, cache_in in (("with_cache", work / "setup" / "cache"), ("without_cache", None)):
            measured = _transform(*window, work / f"{name}-{index}", cache_in)
            times[name].append(measured["seconds"])
            print(json.dumps({"run": f"{name} [2, 3] #{index + 1}", **measured}), flush=True)
    for split in window[0].properties["splits"]:
        if not _rows(work / "with_cache-0" / "transformed" / f"Split-{split}").equals(
                _rows(work / "without_cache-0" / "transformed" / f"Split-{split}")):
            raise SystemExit(f"split {split}: the transformed rows differ with and without the cache")
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(json.dumps({
        "dataset": dataset.name, "rows_per_span": dataset.rows, "window_rows": 2 * dataset.rows,
        "median_seconds": medians, "speedup": round(medians["without_cache"] / medians["with_cache"], 2),
        "runs": times,
    }))


if __name__ == "__main__":
    main()
