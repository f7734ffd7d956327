"""One measured stage per process: ``python -m benchmarks.workers STAGE DATASET_DIR WORK_DIR [MODEL_DIR]``.

The suite starts each measurement as a fresh process, so the peak RSS it reads
back (VmHWM, see ``peak_rss_mib``) is that stage's alone. The process prints one JSON line:
``rows``, ``seconds`` (the stage itself: from building the pipeline, or opening
the file, to the last output written; interpreter start and imports excluded,
they are measured by the startup benchmark), ``peak_rss_mib`` and any notes.

Stages (``ours_*`` are beam-ml on DirectRunner with the framework's default
options; ``limit_*`` pyarrow or TensorFlow alone in this process, no Beam;
``peer_*`` the path users take without beam-ml):

- ``ours_ingestion``: the ExampleGen component (CSV → hash-split Parquet Examples) run by
  the local DAG runner, metadata store included.
- ``limit_ingestion``: ``pyarrow.csv.read_csv`` + ``pyarrow.parquet.write_table``.
- ``ours_statistics``: CSV → ``ReadExamples`` → ``GenerateStatistics`` → FeatureStats.pb.
- ``ours_statistics_1_worker``, ``ours_statistics_2_workers``: the same on DirectRunner's
  multi-process mode (``--direct_running_mode=multi_processing``) with one and two worker
  processes; their peak RSS is the main process's alone.
- ``limit_statistics``: ``read_csv`` + the exact statistics per column (count, nulls,
  min, max, mean, std; value counts of strings) with ``pyarrow.compute``.
- ``ours_validation``: schema inference + ``validate_statistics`` on the data's statistics
  (computed before the clock starts) + row-level ``ValidateExamples`` over the Examples.
- ``ours_transform``: ``tf_transform.transform_examples`` (record batches, Parquet → Parquet).
- ``limit_transform``: the transform graph (the one ``ours_transform`` wrote in the same round,
  or ``export_transform_graph``'s; copying and writing it is not measured) applied without Beam: the same Parquet row groups, TFXIO's tensor adapter, the graph's
  ``transform_features_layer()`` in a plain loop, Parquet out.
- ``peer_transform``: ``tft_beam.AnalyzeAndTransformDataset`` fed instance dicts read from the
  same Parquet (``ReadFromParquet``), writing tf.Examples (the tutorials' path).
- ``peer_mltransform``: Beam's ``MLTransform`` (``apache_beam.ml.transforms.tft`` ops) with the same
  operations as our Transform's preprocessing_fn, fed dicts read from the same Parquet, writing Parquet
  (``MLTRANSFORM_NOTES`` says how the operations correspond).
- ``ours_inference``: ``ReadExamples`` → ``PredictRecordBatches`` (the exported SavedModel's
  raw-feature signature) → ``WriteExamples``.
- ``peer_inference``: Keras: ``keras.models.load_model`` of the same model's ``.keras`` file,
  ``model.predict`` (same batch size) on the rows of the same Parquet, predictions appended
  and written to Parquet.
- ``limit_inference``: the SavedModel's signature called in one process on the same
  Parquet's batches, predictions appended and written to Parquet.
- ``export_model``: writes the benchmark's Keras model (not measured).
- ``export_transform_graph``: writes the transform graph ``limit_transform`` applies (not measured).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

TRANSFORM_COLUMNS = ["fare", "trip_miles", "trip_seconds", "pickup_community_area", "payment_type", "company", "row_id"]
TRANSFORM_MODULE = Path(__file__).resolve().parent.parent / "tests" / "components" / "modules" / "taxi_transform.py"
NUMERIC_INPUTS = ["fare", "trip_miles", "trip_seconds", "trip_start_hour", "pickup_latitude", "pickup_longitude"]
STRING_INPUTS = ["payment_type", "company"]
INFERENCE_BATCH_ROWS = 8192


def peak_rss_mib() -> float:
    """This process's own peak RSS: VmHWM of its address space (Linux), else ru_maxrss.

    ru_maxrss is not enough on Linux: a child started with vfork (as subprocess does) keeps
    the parent's high-water mark across exec, so a child of a process that once held a
    large table would report that table.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _beam_options(beam_args: tuple[str, ...] = ()):
    from beam_ml.runners.options import pipeline_options

    return pipeline_options(list(beam_args))


#: DirectRunner's multi-process mode, one or two worker processes: the statistics stage's scaling with cores.
MULTI_PROCESS = ("--direct_running_mode=multi_processing",)


def _split_rows(uri: str) -> int:
    from beam_ml.artifacts import Examples

    return Examples(uri).count_rows("train")


# ------------------------------------------------------------------ ingestion


def ours_ingestion(data: Path, work: Path, _model: str | None) -> dict:
    import beam_ml.transforms.ingestion  # noqa: F401  # ExampleGen imports Beam when it runs: keep imports out of the timer
    from beam_ml import Pipeline
    from beam_ml.components.example_gen import ExampleGen
    from beam_ml.orchestration.runner import LocalDagRunner

    started = time.perf_counter()
    result = LocalDagRunner().run(Pipeline("bench", str(work / "root"), [ExampleGen(input_path=str(data / "data.csv"))]))
    seconds = time.perf_counter() - started
    assert result.state == "COMPLETE", result.failed and result.failed.error
    examples = result.outputs("ExampleGen")["examples"]
    return {"rows": examples.properties["rows_read"], "seconds": seconds,
            "rows_written": sum(examples.properties["split_rows"].values())}


def limit_ingestion(data: Path, work: Path, _model: str | None) -> dict:
    import pyarrow.csv as pcsv
    import pyarrow.parquet as pq

    started = time.perf_counter()
    table = pcsv.read_csv(data / "data.csv", convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    pq.write_table(table, work / "limit.parquet")
    return {"rows": table.num_rows, "seconds": time.perf_counter() - started}


# ------------------------------------------------------------------ statistics


def ours_statistics(data: Path, work: Path, _model: str | None, beam_args: tuple[str, ...] = ()) -> dict:
    import apache_beam as beam
    from tensorflow_metadata.proto.v0 import statistics_pb2

    from beam_ml.transforms.ingestion import ReadExamples, ReadOptions
    from beam_ml.transforms.statistics import GenerateStatistics

    out = work / "FeatureStats.pb"

    def write(stats) -> None:
        out.write_bytes(stats.SerializeToString())

    started = time.perf_counter()
    with beam.Pipeline(options=_beam_options(beam_args)) as pipeline:
        _ = (
            (pipeline | "Read" >> ReadExamples(str(data / "data.csv"), ReadOptions(format="csv"))).examples
            | "Stats" >> GenerateStatistics()
            | "Write" >> beam.Map(write)
        )
    seconds = time.perf_counter() - started
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(out.read_bytes())
    return {"rows": int(stats.datasets[0].num_examples), "seconds": seconds}


def ours_statistics_1_worker(data: Path, work: Path, model: str | None) -> dict:
    """``ours_statistics`` on DirectRunner's multi-process mode with one worker process."""
    return ours_statistics(data, work, model, (*MULTI_PROCESS, "--direct_num_workers=1"))


def ours_statistics_2_workers(data: Path, work: Path, model: str | None) -> dict:
    """``ours_statistics`` on DirectRunner's multi-process mode with two worker processes."""
    return ours_statistics(data, work, model, (*MULTI_PROCESS, "--direct_num_workers=2"))


def limit_statistics(data: Path, work: Path, _model: str | None) -> dict:
    """What one process with pyarrow alone does: read the CSV, exact statistics per column."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pcsv

    started = time.perf_counter()
    table = pcsv.read_csv(data / "data.csv", convert_options=pcsv.ConvertOptions(strings_can_be_null=True))
    summary = {}
    for name in table.column_names:
        column = table.column(name)
        entry = {"count": len(column) - column.null_count, "missing": column.null_count}
        if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
            minmax = pc.min_max(column)
            entry.update(min=minmax["min"].as_py(), max=minmax["max"].as_py(), mean=pc.mean(column).as_py(),
                         std=pc.stddev(column).as_py(), zeros=pc.sum(pc.equal(column, 0)).as_py())
        elif pa.types.is_string(column.type) or pa.types.is_large_string(column.type):
            counts = pc.value_counts(column)
            entry.update(unique=len(counts), top=counts.to_pylist()[:20],
                         avg_length=pc.mean(pc.utf8_length(column)).as_py())
        summary[name] = entry
    seconds = time.perf_counter() - started
    (work / "limit_stats.json").write_text(json.dumps(summary, default=str))
    return {"rows": table.num_rows, "seconds": seconds}


# ------------------------------------------------------------------ schema + validation


def ours_validation(data: Path, work: Path, _model: str | None) -> dict:
    import apache_beam as beam
    import pyarrow.parquet as pq

    from beam_ml.transforms.ingestion import ReadExamples, ReadOptions
    from beam_ml.transforms.schema import infer_schema
    from beam_ml.transforms.statistics import StatisticsCombineFn
    from beam_ml.transforms.validation import ValidateExamples, validate_statistics

    split = data / "examples" / "Split-train"
    combine = StatisticsCombineFn()
    accumulator = combine.create_accumulator()
    for path in sorted(split.glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=32768):
            accumulator = combine.add_input(accumulator, batch)
    stats = combine.extract_output(combine.compact(accumulator))

    started = time.perf_counter()
    schema = infer_schema(stats)
    anomalies = validate_statistics(stats, schema)
    schema_seconds = time.perf_counter() - started
    counts = work / "dead_letters.txt"

    def write(total: int) -> None:
        counts.write_text(str(total))

    with beam.Pipeline(options=_beam_options()) as pipeline:
        batches = (pipeline | "Read" >> ReadExamples(str(split / "*.parquet"), ReadOptions(format="parquet", batch_rows=32768))).examples
        validated = batches | "Validate" >> ValidateExamples(schema)
        _ = (
            validated.dead_letters
            | "Count" >> beam.Map(lambda batch: batch.num_rows)
            | "Sum" >> beam.CombineGlobally(sum)
            | "Write" >> beam.Map(write)
        )
    seconds = time.perf_counter() - started
    rows = sum(pq.ParquetFile(p).metadata.num_rows for p in split.glob("*.parquet"))
    return {"rows": rows, "seconds": seconds, "schema_and_validate_statistics_seconds": schema_seconds,
            "anomalies": len(anomalies.anomaly_info), "dead_letter_rows": int(counts.read_text())}


# ------------------------------------------------------------------ Transform


def _transform_schema(data: Path):
    """The schema both Transform paths get: inferred from the transform columns' statistics."""
    import pyarrow.parquet as pq

    from beam_ml.transforms.schema import infer_schema
    from beam_ml.transforms.statistics import StatisticsCombineFn

    combine = StatisticsCombineFn()
    accumulator = combine.create_accumulator()
    for path in sorted((data / "examples" / "Split-train").glob("*.parquet")):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=65536, columns=TRANSFORM_COLUMNS):
            accumulator = combine.add_input(accumulator, batch)
    return infer_schema(combine.extract_output(combine.compact(accumulator)))


def _preprocessing_fn():
    from beam_ml.dsl import UserModule

    return UserModule(str(TRANSFORM_MODULE)).get("preprocessing_fn")


def ours_transform(data: Path, work: Path, graph: str | None) -> dict:
    """Our Transform; given ``graph``, its transform graph is copied there after the timer
    (for ``limit_transform``, which the suite runs after it in each round)."""
    import shutil

    import apache_beam as beam
    import pyarrow.parquet as pq

    from beam_ml.transforms import tf_transform

    split = data / "examples" / "Split-train"
    schema = _transform_schema(data)
    arrow_schema = pq.read_schema(next(split.glob("*.parquet")))
    started = time.perf_counter()
    with beam.Pipeline(options=_beam_options()) as pipeline:
        tf_transform.transform_examples(
            pipeline,
            split_uris={"train": str(split)},
            arrow_schema=arrow_schema,
            schema=schema,
            preprocessing_fn=_preprocessing_fn(),
            transform_output_dir=str(work / "transform_graph"),
            transformed_examples_uri=str(work / "transformed"),
            temp_dir=str(work / "tft_tmp"),
        )
    seconds = time.perf_counter() - started
    if graph is not None:
        shutil.rmtree(graph, ignore_errors=True)
        shutil.copytree(work / "transform_graph", graph)
    return {"rows": _split_rows(str(work / "transformed")), "seconds": seconds}


def export_transform_graph(data: Path, work: Path, graph: str | None) -> dict:
    """Writes the transform graph the limit applies when ``ours_transform`` does not run (not
    measured): our Transform on this dataset, its tf.Transform output directory at ``graph``."""
    import apache_beam as beam
    import pyarrow.parquet as pq

    from beam_ml.transforms import tf_transform

    assert graph is not None
    split = data / "examples" / "Split-train"
    with beam.Pipeline(options=_beam_options()) as pipeline:
        tf_transform.transform_examples(
            pipeline,
            split_uris={"train": str(split)},
            arrow_schema=pq.read_schema(next(split.glob("*.parquet"))),
            schema=_transform_schema(data),
            preprocessing_fn=_preprocessing_fn(),
            transform_output_dir=graph,
            transformed_examples_uri=str(work / "transformed"),
            temp_dir=str(work / "tft_tmp"),
        )
    return {"rows": 0, "seconds": 0.0}


def limit_transform(data: Path, work: Path, graph: str | None) -> dict:
    """The saved transform graph applied without Beam: the same Parquet row groups as our
    Transform reads, turned into tensors by the same TFXIO adapter, through
    ``TFTransformOutput.transform_features_layer()`` in a plain loop, written to Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow_transform as tft
    from tfx_bsl.tfxio import tensor_adapter

    from beam_ml.transforms import tf_transform

    assert graph is not None
    split = data / "examples" / "Split-train"
    schema = _transform_schema(data)  # as ours_transform: outside the timer
    columns = tf_transform.feature_columns(schema)
    paths = sorted(split.glob("*.parquet"))
    adapter = tensor_adapter.TensorAdapter(tf_transform.tensor_adapter_config(pq.read_schema(paths[0]), schema))
    (work / "transformed").mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    layer = tft.TFTransformOutput(graph).transform_features_layer()
    rows, writer = 0, None
    for path in paths:
        source = pq.ParquetFile(path)
        for group in range(source.num_row_groups):
            batch = source.read_row_group(group, columns=columns).combine_chunks().to_batches()[0]
            outputs = layer(adapter.ToBatchTensors(tf_transform.to_tfxio_batch(batch, columns)))
            table = pa.table({name: pa.array(value.numpy()) for name, value in sorted(outputs.items())})
            if writer is None:
                writer = pq.ParquetWriter(work / "transformed" / "part-0.parquet", table.schema)
            writer.write_table(table)
            rows += table.num_rows
    if writer is not None:
        writer.close()
    return {"rows": rows, "seconds": time.perf_counter() - started}


def _instance(schema_features: list[tuple[str, bool]]):
    def to_instance(row: dict) -> dict:
        instance = {}
        for name, _dense in schema_features:
            value = row[name]
            if isinstance(value, str):
                value = value.encode()
            instance[name] = [] if value is None else [value]
        return instance

    return to_instance


def peer_transform(data: Path, work: Path, _model: str | None) -> dict:
    import apache_beam as beam
    import tensorflow_transform as tft
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata

    split = data / "examples" / "Split-train"
    schema = _transform_schema(data)
    metadata = dataset_metadata.DatasetMetadata(schema)
    to_instance = _instance([(f.name, f.HasField("shape")) for f in schema.feature])
    out_prefix = str(work / "transformed" / "part")
    started = time.perf_counter()
    with beam.Pipeline(options=_beam_options()) as pipeline, tft_beam.Context(temp_dir=str(work / "tft_tmp")):
        rows = pipeline | "Read" >> beam.io.ReadFromParquet(str(split / "*.parquet"), columns=TRANSFORM_COLUMNS)
        instances = rows | "ToInstances" >> beam.Map(to_instance)
        (transformed, transformed_metadata), transform_fn = (
            (instances, metadata) | "AnalyzeAndTransform" >> tft_beam.AnalyzeAndTransformDataset(_preprocessing_fn())
        )
        coder = tft.coders.ExampleProtoCoder(transformed_metadata.schema)
        _ = (
            transformed
            | "Encode" >> beam.Map(coder.encode)
            | "Write" >> beam.io.WriteToTFRecord(out_prefix, file_name_suffix=".tfrecord")
        )
        _ = transform_fn | "WriteTransformFn" >> tft_beam.WriteTransformFn(str(work / "transform_graph"))
    seconds = time.perf_counter() - started
    import tensorflow as tf

    written = sum(1 for path in (work / "transformed").glob("part*") for _ in tf.data.TFRecordDataset(str(path)))
    return {"rows": written, "seconds": seconds}


#: The taxi preprocessing_fn's defaults for a missing value (its ``_fill``), by input column.
MLTRANSFORM_FILL = {"fare": 0.0, "trip_miles": 0.0, "trip_seconds": 0.0, "pickup_community_area": 0.0,
                    "payment_type": "", "company": ""}
MLTRANSFORM_NOTES = (
    "same operations as taxi_transform.preprocessing_fn, all with an MLTransform equivalent: ScaleToZScore "
    "(fare, trip_miles, pickup_community_area), ScaleTo01 (trip_seconds), ComputeAndApplyVocabulary "
    "(payment_type; company with top_k=20, num_oov_buckets=1); row_id passes through. MLTransform has no "
    "default-filling op: missing values are filled with the preprocessing_fn's defaults in a beam.Map "
    "before it, and its inputs are VarLen (sparse) features where ours are dense"
)


def peer_mltransform(data: Path, work: Path, _model: str | None) -> dict:
    """Beam's ``MLTransform`` with the taxi preprocessing_fn's operations (``MLTRANSFORM_NOTES``): rows from
    the same Parquet (``ReadFromParquet``, dicts), nulls filled, MLTransform, rows written to Parquet."""
    import apache_beam as beam
    import pyarrow as pa
    import pyarrow.parquet as pq
    from apache_beam.ml.transforms.base import MLTransform
    from apache_beam.ml.transforms.tft import ComputeAndApplyVocabulary, ScaleTo01, ScaleToZScore

    split = data / "examples" / "Split-train"
    out_schema = pa.schema([("row_id", pa.int64())] + [(f"{n}_xf", pa.float32()) for n in
                           ("fare", "trip_miles", "trip_seconds", "pickup_community_area")]
                           + [(f"{n}_xf", pa.int64()) for n in ("payment_type", "company")])

    def fill(row: dict) -> dict:
        filled = {n: default if row[n] is None else type(default)(row[n]) for n, default in MLTRANSFORM_FILL.items()}
        filled["row_id"] = row["row_id"]
        return filled

    def to_output(row) -> dict:  # each transformed value is a one-element array
        values = row._asdict()
        out = {f"{n}_xf": values[n].item() for n in MLTRANSFORM_FILL}
        out["row_id"] = values["row_id"]
        return out

    started = time.perf_counter()
    with beam.Pipeline(options=_beam_options()) as pipeline:
        rows = pipeline | "Read" >> beam.io.ReadFromParquet(str(split / "*.parquet"), columns=TRANSFORM_COLUMNS)
        transformed = (
            rows
            | "FillMissing" >> beam.Map(fill)
            | "MLTransform" >> MLTransform(write_artifact_location=str(work / "mltransform_artifacts"))
            .with_transform(ScaleToZScore(columns=["fare", "trip_miles", "pickup_community_area"]))
            .with_transform(ScaleTo01(columns=["trip_seconds"]))
            .with_transform(ComputeAndApplyVocabulary(columns=["payment_type"], vocab_filename="payment_type"))
            .with_transform(ComputeAndApplyVocabulary(columns=["company"], top_k=20, num_oov_buckets=1,
                                                      vocab_filename="company"))
        )
        _ = (
            transformed
            | "ToOutput" >> beam.Map(to_output)
            | "Write" >> beam.io.WriteToParquet(str(work / "transformed" / "part"), out_schema, file_name_suffix=".parquet")
        )
    seconds = time.perf_counter() - started
    written = sum(pq.ParquetFile(p).metadata.num_rows for p in (work / "transformed").glob("part*.parquet"))
    return {"rows": written, "seconds": seconds, "notes": MLTRANSFORM_NOTES}


# ------------------------------------------------------------------ batch inference


KERAS_FILE = "model.keras"


def export_model(data: Path, work: Path, model: str | None) -> dict:
    """A small Keras MLP over eight taxi features (random weights): six numbers, and two strings
    hashed into 8-wide embeddings. ``model.export`` writes the SavedModel at ``model`` (its
    ``serving_default`` takes the raw features as named [batch] tensors and returns ``score``);
    ``<model>/model.keras`` is the same model for ``keras.models.load_model``."""
    import keras

    assert model is not None
    keras.utils.set_random_seed(0)
    inputs = {n: keras.Input(shape=(), name=n, dtype="float32") for n in NUMERIC_INPUTS}
    inputs.update({n: keras.Input(shape=(), name=n, dtype="string") for n in STRING_INPUTS})
    numeric = keras.ops.stack([inputs["fare"], inputs["trip_miles"], inputs["trip_seconds"] / 60.0,
                               inputs["trip_start_hour"], inputs["pickup_latitude"] - 41.8,
                               inputs["pickup_longitude"] + 87.6], axis=1)
    embedded = [
        keras.layers.Embedding(bins, 8, name=f"{name}_embedding")(keras.layers.Hashing(num_bins=bins, name=f"{name}_hash")(inputs[name]))
        for name, bins in zip(STRING_INPUTS, (17, 101), strict=True)
    ]
    x = keras.layers.Concatenate()([numeric, *embedded])
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dense(32, activation="relu")(x)
    score = keras.layers.Reshape(())(keras.layers.Dense(1, activation="sigmoid")(x))
    keras_model = keras.Model(inputs, {"score": score})
    keras_model.export(model, format="tf_saved_model", verbose=False)
    keras_model.save(Path(model) / KERAS_FILE)
    return {"rows": 0, "seconds": 0.0}


def _numpy_features(batch) -> dict:
    """What a plain user feeds: nulls filled (0, ""), numbers as float32, strings as object arrays."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    feed = {n: pc.fill_null(batch.column(n), 0).cast(pa.float32()).to_numpy(zero_copy_only=False) for n in NUMERIC_INPUTS}
    feed.update({n: np.asarray(pc.fill_null(batch.column(n), "").to_numpy(zero_copy_only=False), dtype=object) for n in STRING_INPUTS})
    return feed


def ours_inference(data: Path, work: Path, model: str | None) -> dict:
    import apache_beam as beam
    import tensorflow  # noqa: F401  imports are outside the timer, as in the peers' stages

    from beam_ml.transforms.inference import PredictRecordBatches
    from beam_ml.transforms.ingestion import ReadExamples, ReadOptions, WriteExamples

    assert model is not None
    split = data / "examples" / "Split-train"
    started = time.perf_counter()
    with beam.Pipeline(options=_beam_options()) as pipeline:
        batches = (pipeline | "Read" >> ReadExamples(str(split / "*.parquet"), ReadOptions(format="parquet", batch_rows=INFERENCE_BATCH_ROWS))).examples
        predicted = batches | "Predict" >> PredictRecordBatches(model, max_batch_rows=INFERENCE_BATCH_ROWS)
        _ = {"train": predicted} | "Write" >> WriteExamples(str(work / "predicted"))
    seconds = time.perf_counter() - started
    return {"rows": _split_rows(str(work / "predicted")), "seconds": seconds}


def peer_inference(data: Path, work: Path, model: str | None) -> dict:
    """Plain Keras: load the .keras model, ``model.predict`` over each Parquet file's rows, write Parquet."""
    import keras
    import pyarrow as pa
    import pyarrow.parquet as pq

    assert model is not None
    split = data / "examples" / "Split-train"
    started = time.perf_counter()
    keras_model = keras.models.load_model(Path(model) / KERAS_FILE)
    rows = 0
    (work / "predicted").mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(sorted(split.glob("*.parquet"))):
        table = pq.read_table(path)
        score = keras_model.predict(_numpy_features(table), batch_size=INFERENCE_BATCH_ROWS, verbose=0)["score"]
        pq.write_table(table.append_column("score", pa.array(score)), work / "predicted" / f"part-{index}.parquet")
        rows += table.num_rows
    return {"rows": rows, "seconds": time.perf_counter() - started}


def limit_inference(data: Path, work: Path, model: str | None) -> dict:
    """The plain path: load the SavedModel, call its signature on batches of the Parquet file, write Parquet."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    import tensorflow as tf

    assert model is not None
    split = data / "examples" / "Split-train"
    started = time.perf_counter()
    signature = tf.saved_model.load(model).signatures["serving_default"]
    rows = 0
    (work / "predicted").mkdir(parents=True, exist_ok=True)
    for index, path in enumerate(sorted(split.glob("*.parquet"))):
        source = pq.ParquetFile(path)
        with pq.ParquetWriter(work / "predicted" / f"part-{index}.parquet", source.schema_arrow.append(pa.field("score", pa.float32()))) as writer:
            for batch in source.iter_batches(batch_size=INFERENCE_BATCH_ROWS):
                feed = {n: tf.constant(v) for n, v in _numpy_features(batch).items()}
                score = signature(**feed)["score"].numpy()
                writer.write_batch(batch.append_column("score", pa.array(score)))
                rows += batch.num_rows
    return {"rows": rows, "seconds": time.perf_counter() - started}


STAGES = {f.__name__: f for f in (
    ours_ingestion, limit_ingestion, ours_statistics, ours_statistics_1_worker, ours_statistics_2_workers, limit_statistics,
    ours_validation,
    ours_transform, peer_transform, peer_mltransform, export_transform_graph, limit_transform, export_model, ours_inference, peer_inference, limit_inference,
)}


def main(argv: list[str]) -> None:
    stage, data, work = argv[0], Path(argv[1]), Path(argv[2])
    model = argv[3] if len(argv) > 3 else None
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    work.mkdir(parents=True, exist_ok=True)
    profile = os.environ.get("BEAM_ML_BENCH_PROFILE")
    if profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.005)
        profiler.start()
    figures = STAGES[stage](data, work, model)
    if profile:
        profiler.stop()
        Path(profile).write_text(profiler.output_text(unicode=False, color=False, show_all=False))
    figures["peak_rss_mib"] = peak_rss_mib()
    figures["tensorflow_imported"] = "tensorflow" in sys.modules
    print("BENCH-RESULT " + json.dumps(figures), flush=True)
    sys.stderr.flush()
    # TensorFlow can crash while the interpreter tears down (SIGSEGV in garbage collection after
    # the work is done and reported); the figures are out, so leave without the teardown.
    os._exit(0)


if __name__ == "__main__":
    main(sys.argv[1:])
