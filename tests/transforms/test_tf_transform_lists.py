"""tf.Transform over list-valued features: they reach the preprocessing_fn as VarLen
(SparseTensor) features, per the schema SchemaGen infers for them, and list outputs come
back as list columns."""

from __future__ import annotations

import collections

import pyarrow as pa
import pyarrow.parquet as pq

from beam_ml.transforms.schema import infer_schema
from beam_ml.transforms.statistics import generate_statistics_in_memory


def preprocessing_fn(inputs):
    import tensorflow as tf
    import tensorflow_transform as tft

    tags, scores = inputs["tags"], inputs["scores"]
    assert isinstance(tags, tf.SparseTensor) and isinstance(scores, tf.SparseTensor)
    rows = tf.shape(inputs["id"], out_type=tf.int64)[0]
    per_row = tf.reshape(tf.sparse.reduce_sum(scores, axis=1), [-1])  # a row without values: 0
    return {
        "id": tf.reshape(inputs["id"], [-1]),
        "tag_ids": tft.compute_and_apply_vocabulary(tags),  # var-len in, var-len out
        "score_total": tf.fill([rows], tft.sum(scores)),  # a full pass over every value
        "scores_per_row": per_row,
    }


def test_var_len_features_reach_tf_transform_as_sparse_and_come_back_as_lists(tmp_path):
    import apache_beam as beam

    from beam_ml.transforms import tf_transform

    table = pa.table({
        "id": pa.array([1, 2, 3, 4, 5, 6]),
        "tags": pa.array([["a", "b"], ["b"], [], None, ["c", "b", "a"], ["b", "b"]], pa.list_(pa.string())),
        "scores": pa.array([[1.5], [2.0, 3.0], None, [0.25, 0.25, 0.5], [], [4.0]], pa.list_(pa.float64())),
    })
    schema = infer_schema(generate_statistics_in_memory(table))
    by_name = {f.name: f for f in schema.feature}
    assert by_name["id"].HasField("shape")
    assert not by_name["tags"].HasField("shape") and not by_name["scores"].HasField("shape")
    for split in ("train", "eval"):
        (tmp_path / "examples" / f"Split-{split}").mkdir(parents=True)
        pq.write_table(table, tmp_path / "examples" / f"Split-{split}" / "data.parquet")

    with beam.Pipeline() as pipeline:
        tf_transform.transform_examples(
            pipeline,
            split_uris={s: str(tmp_path / "examples" / f"Split-{s}") for s in ("train", "eval")},
            arrow_schema=table.schema,
            schema=schema,
            preprocessing_fn=preprocessing_fn,
            transform_output_dir=str(tmp_path / "graph"),
            transformed_examples_uri=str(tmp_path / "transformed"),
            temp_dir=str(tmp_path / "tmp"),
        )
    out = pq.read_table(tmp_path / "transformed" / "Split-train").sort_by("id").to_pydict()
    counts = collections.Counter(t for row in table.column("tags").to_pylist() if row for t in row)
    vocabulary = sorted(counts, key=lambda t: (-counts[t], t))  # most frequent first: b (5), a (2), c (1)
    assert vocabulary == ["b", "a", "c"]
    ids = {t: i for i, t in enumerate(vocabulary)}
    assert out["tag_ids"] == [[ids[t] for t in row] if row else [] for row in table.column("tags").to_pylist()]
    assert out["score_total"] == [11.5] * 6  # 1.5 + 2 + 3 + 0.25 + 0.25 + 0.5 + 4
    assert out["scores_per_row"] == [1.5, 5.0, 0.0, 1.0, 0.0, 4.0]


def nested_preprocessing_fn(inputs):
    import tensorflow as tf
    import tensorflow_transform as tft

    grid, f1 = inputs["grid"], inputs["c.f1"]
    assert isinstance(grid, tf.RaggedTensor) and grid.ragged_rank == 2
    assert isinstance(f1, tf.RaggedTensor)
    rows = tf.shape(inputs["id"], out_type=tf.int64)[0]
    return {
        "id": tf.reshape(inputs["id"], [-1]),
        "inner_lists": grid.row_lengths(axis=1),  # lists per row
        "grid_values": tf.reduce_sum(grid, axis=[1, 2]),  # values per row, summed
        "grid_total": tf.fill([rows], tft.sum(grid.flat_values)),
        "f1_sum": tf.reduce_sum(f1, axis=[1, 2]),  # over the row's struct values, then their f1 values
    }


def test_nested_lists_and_struct_members_reach_tf_transform_as_ragged_tensors(tmp_path):
    import apache_beam as beam

    from beam_ml.transforms import tf_transform

    table = pa.table({
        "id": pa.array([1, 2, 3, 4]),
        "grid": pa.array([[[1, 2], [3]], None, [[], [4]], [[5, 6, 7]]], pa.list_(pa.list_(pa.int64()))),
        "c": pa.array([[{"f1": [1.5, 2.0]}], None, [{"f1": None}, {"f1": [0.5]}], []],
                      pa.list_(pa.struct([("f1", pa.list_(pa.float64()))]))),
    })
    schema = infer_schema(generate_statistics_in_memory(table))
    (tmp_path / "examples" / "Split-train").mkdir(parents=True)
    pq.write_table(table, tmp_path / "examples" / "Split-train" / "data.parquet")
    with beam.Pipeline() as pipeline:
        tf_transform.transform_examples(
            pipeline,
            split_uris={"train": str(tmp_path / "examples" / "Split-train")},
            arrow_schema=table.schema,
            schema=schema,
            preprocessing_fn=nested_preprocessing_fn,
            transform_output_dir=str(tmp_path / "graph"),
            transformed_examples_uri=str(tmp_path / "transformed"),
            temp_dir=str(tmp_path / "tmp"),
        )
    out = pq.read_table(tmp_path / "transformed" / "Split-train").sort_by("id").to_pydict()
    assert out["inner_lists"] == [2, 0, 2, 1]
    assert out["grid_values"] == [6, 0, 4, 18]
    assert out["grid_total"] == [28] * 4
    assert out["f1_sum"] == [3.5, 0.0, 0.5, 0.0]
