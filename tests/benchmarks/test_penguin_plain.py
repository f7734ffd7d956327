"""The penguin pipeline's peer in the benchmark suite: the same work as a plain script
(benchmarks/penguin_plain.py). It must really do that work: a model as good as the one the
pipeline blesses (its Evaluator's bar: accuracy ≥ 0.9), exported as a SavedModel that
serves raw rows."""

from __future__ import annotations

from pathlib import Path

import pyarrow.csv as pcsv

from benchmarks import penguin_plain

REPO = Path(__file__).resolve().parents[2]
UNLABELLED = REPO / "examples" / "penguin" / "data" / "unlabelled.csv"


def test_plain_script_trains_evaluates_and_exports_a_serving_savedmodel(tmp_path):
    figures = penguin_plain.main([str(tmp_path), "--train-steps", "150"])  # in this process: one TensorFlow import
    assert figures["train_rows"] + figures["eval_rows"] == 344 and figures["train_steps"] == 150
    assert figures["accuracy"] >= 0.9  # what the pipeline's Evaluator asks of its model to bless it

    import tensorflow as tf

    serve = tf.saved_model.load(figures["saved_model"]).signatures["serving_default"]
    rows = pcsv.read_csv(UNLABELLED, convert_options=pcsv.ConvertOptions(null_values=["NA", ""], strings_can_be_null=True))
    feed = {name: tf.constant(rows[name].cast("float32").to_numpy(zero_copy_only=False).reshape(-1, 1))
            for name in penguin_plain.NUMERIC}
    feed.update({name: tf.constant([[value or ""] for value in rows[name].to_pylist()]) for name in penguin_plain.CATEGORICAL})
    [probabilities] = serve(**feed).values()
    assert probabilities.shape == (rows.num_rows, len(penguin_plain.SPECIES))
    assert tf.reduce_all(tf.abs(tf.reduce_sum(probabilities, axis=1) - 1.0) < 1e-4)
