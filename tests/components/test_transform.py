"""Transform: tf.Transform fed Arrow record batches, analyzed on train, every split transformed.

Real Beam pipelines and real TensorFlow on small data. Helpers here (penguin
Examples/Schema artifacts) are shared with test_trainer.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from beam_ml import Examples, Output, Pipeline, Schema, component
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.transforms.schema import infer_schema, load_schema, write_schema
from beam_ml.transforms.statistics import generate_statistics_in_memory

MODULES = Path(__file__).resolve().parent / "modules"
PENGUIN_TRANSFORM = str(MODULES / "penguin_transform.py")
TAXI_TRANSFORM = str(MODULES / "taxi_transform.py")
NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def penguin_table() -> pa.Table:
    import palmerpenguins

    path = os.path.join(os.path.dirname(palmerpenguins.__file__), "data", "penguins.csv")
    options = pcsv.ConvertOptions(null_values=["NA"], strings_can_be_null=True)
    return pcsv.read_csv(path, convert_options=options)


def penguin_splits(eval_every: int = 3) -> dict[str, pa.Table]:
    table = penguin_table()
    is_eval = pa.array(np.arange(table.num_rows) % eval_every == 0)
    return {"train": table.filter(pc.invert(is_eval)), "eval": table.filter(is_eval)}


def write_examples(examples: Examples, splits: dict[str, pa.Table], row_group_size: int = 64) -> None:
    """ExampleGen's layout: Split-<name>/*.parquet (two files per split, small row groups)."""
    for name, table in splits.items():
        directory = Path(examples.split_uri(name))
        directory.mkdir(parents=True, exist_ok=True)
        half = table.num_rows // 2
        for index, part in enumerate((table.slice(0, half), table.slice(half))):
            pq.write_table(part, directory / f"data-{index:05d}-of-00002.parquet", row_group_size=row_group_size)
    examples.properties["splits"] = list(splits)


def write_schema_for(schema: Schema, table: pa.Table) -> None:
    write_schema(infer_schema(generate_statistics_in_memory(table)), os.path.join(schema.uri, Schema.FILE_NAME))


@component
def PenguinExamples(examples: Output[Examples], schema: Output[Schema], *, eval_every: int = 3) -> None:
    """Stands in for ExampleGen + SchemaGen in these tests."""
    splits = penguin_splits(eval_every)
    write_examples(examples, splits)
    write_schema_for(schema, splits["train"])


def read_split(examples_uri: str, split: str) -> pa.Table:
    return pq.read_table(os.path.join(examples_uri, f"Split-{split}"))


def test_penguin_transform_through_runner_analyzes_train_only_and_is_cached(tmp_path):
    from beam_ml.components.transform import Transform

    gen = PenguinExamples()
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
    pipeline = Pipeline("penguin_transform", root=str(tmp_path / "root"), components=[gen, transform])

    first = LocalDagRunner().run(pipeline)
    assert first.state == "COMPLETE", first.failed and first.failed.error
    outputs = first.outputs("Transform")
    graph_uri, examples_uri = outputs["transform_graph"].uri, outputs["transformed_examples"].uri
    assert outputs["transformed_examples"].properties["splits"] == ["train", "eval"]
    assert outputs["transformed_examples"].properties["split_rows"] == {"train": 229, "eval": 115}
    assert (Path(graph_uri) / "transform_fn" / "saved_model.pb").is_file()
    assert (Path(graph_uri) / "transformed_metadata" / "schema.pbtxt").is_file()
    assert sorted(os.listdir(Path(graph_uri) / "transform_fn" / "assets")) == ["island", "species"]

    raw = penguin_splits()
    expected_columns = sorted([f"{n}_xf" for n in NUMERIC] + ["island_xf", "species_xf"])
    for split in ("train", "eval"):
        table = read_split(examples_uri, split)
        assert sorted(table.column_names) == expected_columns
        assert table.num_rows == raw[split].num_rows
        assert pa.types.is_floating(table.schema.field("bill_length_mm_xf").type)  # flat, not list
        assert pa.types.is_integer(table.schema.field("species_xf").type)
        assert table.column("species_xf").null_count == 0

    # z-score analyzed on train only: the mean/std recovered from the (monotonic) map of eval rows
    # equal the train split's (missing filled with 0, as the preprocessing_fn does), not all rows'.
    name = "body_mass_g"
    x = np.sort(pc.fill_null(raw["eval"].column(name), 0).to_numpy().astype(np.float64))
    z = np.sort(read_split(examples_uri, "eval").column(f"{name}_xf").to_numpy().astype(np.float64))
    std = (x[-1] - x[0]) / (z[-1] - z[0])
    mean = float(np.median(x - z * std))
    train = pc.fill_null(raw["train"].column(name), 0).to_numpy().astype(np.float64)
    everything = np.concatenate([train, x])
    assert mean == pytest.approx(train.mean(), rel=1e-4)
    assert std == pytest.approx(train.std(), rel=1e-3)
    assert abs(everything.mean() - train.mean()) > 1.0  # the check can tell the two apart

    # the train split itself is centred
    train_z = read_split(examples_uri, "train").column(f"{name}_xf").to_numpy()
    assert abs(float(train_z.mean())) < 1e-4

    second = LocalDagRunner().run(pipeline)
    assert second.ran() == []
    assert second.outputs("Transform")["transform_graph"].id == outputs["transform_graph"].id


def taxi_table(shared_data: Path, rows: int) -> pa.Table:
    path = shared_data / "chicago_taxi" / "data.csv"
    if not path.is_file():
        pytest.skip(f"taxi data not found at {path}")
    options = pcsv.ConvertOptions(strings_can_be_null=True)
    table = pcsv.read_csv(path, convert_options=options).slice(0, rows)
    columns = ["fare", "trip_miles", "trip_seconds", "pickup_community_area", "payment_type", "company"]
    table = table.select(columns)
    return table.append_column("row_id", pa.array(np.arange(table.num_rows, dtype=np.int64)))


def _instances(table: pa.Table, schema) -> list[dict]:
    """Rows as tf.Transform instance dicts: [v] for a dense [1] feature, [] or [v] for a sparse one."""
    rows = table.to_pylist()
    instances = []
    for row in rows:
        instance = {}
        for feature in schema.feature:
            value = row[feature.name]
            if isinstance(value, str):
                value = value.encode()
            instance[feature.name] = [] if value is None else [value]
        instances.append(instance)
    return instances


def _reference(table: pa.Table, schema, preprocessing_fn, temp_dir: str) -> list[dict]:
    import apache_beam as beam
    import tensorflow_transform.beam as tft_beam
    from tensorflow_transform.tf_metadata import dataset_metadata

    metadata = dataset_metadata.DatasetMetadata(schema)
    path = os.path.join(temp_dir, "reference.pickle")

    def dump(rows: list[dict]) -> None:
        with open(path, "wb") as handle:
            pickle.dump(rows, handle)

    with beam.Pipeline() as pipeline, tft_beam.Context(temp_dir=temp_dir):
        instances = pipeline | beam.Create(_instances(table, schema))
        (transformed, _), _ = (instances, metadata) | tft_beam.AnalyzeAndTransformDataset(preprocessing_fn)
        _ = transformed | beam.combiners.ToList() | beam.Map(dump)
    with open(path, "rb") as handle:
        return pickle.load(handle)


def test_taxi_record_batches_equal_instance_dict_reference(tmp_path, shared_data):
    import apache_beam as beam

    from beam_ml.dsl import UserModule
    from beam_ml.transforms import tf_transform

    table = taxi_table(shared_data, rows=3000)
    examples = Examples(str(tmp_path / "examples"))
    write_examples(examples, {"train": table, "eval": table.slice(0, 500)}, row_group_size=700)
    schema = infer_schema(generate_statistics_in_memory(table))
    assert any(not f.HasField("shape") for f in schema.feature)  # some features arrive sparse
    preprocessing_fn = UserModule(TAXI_TRANSFORM).get("preprocessing_fn")

    with beam.Pipeline() as pipeline:
        tf_transform.transform_examples(
            pipeline,
            split_uris={s: examples.split_uri(s) for s in examples.splits},
            arrow_schema=table.schema,
            schema=schema,
            preprocessing_fn=preprocessing_fn,
            transform_output_dir=str(tmp_path / "graph"),
            transformed_examples_uri=str(tmp_path / "transformed"),
            temp_dir=str(tmp_path / "tmp"),
        )
    ours = read_split(str(tmp_path / "transformed"), "train").sort_by("row_id").to_pydict()
    reference = sorted(_reference(table, schema, preprocessing_fn, str(tmp_path / "ref_tmp")), key=lambda r: r["row_id"])

    assert len(reference) == len(ours["row_id"]) == table.num_rows
    assert ours["row_id"] == [int(r["row_id"]) for r in reference]
    for column, values in ours.items():
        expected = np.array([r[column] for r in reference])
        got = np.array(values)
        if expected.dtype.kind == "f":
            np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6, err_msg=column)
        else:
            np.testing.assert_array_equal(got, expected, err_msg=column)

    # the eval split went through the same transform_fn: its rows equal the train rows they copy
    eval_rows = read_split(str(tmp_path / "transformed"), "eval").sort_by("row_id").to_pydict()
    for column, values in eval_rows.items():
        np.testing.assert_allclose(np.array(values), np.array(ours[column][:500]), rtol=1e-6, err_msg=column)
    assert load_schema(str(tmp_path / "graph" / "transformed_metadata" / "schema.pbtxt")).feature


def test_missing_value_in_a_dense_feature_fails_naming_it(tmp_path):
    import apache_beam as beam

    from beam_ml.transforms import tf_transform

    splits = penguin_splits()
    complete = splits["train"].filter(pc.is_valid(splits["train"].column("bill_length_mm")))
    schema = infer_schema(generate_statistics_in_memory(complete))  # bill_length_mm gets a shape
    assert "bill_length_mm" in tf_transform.dense_required_columns(schema)
    examples = Examples(str(tmp_path / "examples"))
    write_examples(examples, {"eval": splits["eval"]})
    assert pc.any(pc.is_null(splits["eval"].column("bill_length_mm"))).as_py()
    columns = tf_transform.feature_columns(schema)
    required = tf_transform.dense_required_columns(schema)
    with pytest.raises(Exception, match=r"feature 'bill_\w+' is missing in rows of .*Split-eval.*infer_feature_shape=False"), beam.Pipeline() as pipeline:
        _ = pipeline | tf_transform.ReadSplit(examples.split_uri("eval"), columns, required)
