"""Test fixtures for the model components: penguin-like data and tiny raw-feature SavedModels.

The data: three species ("Adelie", "Chinstrap", "Gentoo") with four numeric
measurements drawn around per-species means and an ``island`` string whose
distribution depends on the species.

The model: a tf.Module (no Keras, no training, so exporting takes a second)
whose ``serving_default`` takes the raw features as named [batch] tensors,
like the exported models of the brief, and returns ``{"probabilities": [batch, 3]}``:
a Gaussian classifier with the true species means (``quality="good"``,
accurate) or with the means shuffled between species and jittered
(``quality="bad"``, much worse). It is written to ``<dir>/Format-Serving``, a
Model artifact's layout. TensorFlow is imported inside the functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from beam_ml import Examples, Model, Output, component

SPECIES = ["Adelie", "Chinstrap", "Gentoo"]
ISLANDS = ["Biscoe", "Dream", "Torgersen"]
NUMERIC = ["culmen_length_mm", "culmen_depth_mm", "flipper_length_mm", "body_mass_g"]
MEANS = np.array(
    [[38.8, 18.3, 190.0, 3700.0], [48.8, 18.4, 196.0, 3733.0], [47.5, 15.0, 217.0, 5076.0]], dtype=np.float64
)
SCALES = np.array([3.0, 1.1, 7.0, 450.0])
ISLAND_PROBABILITIES = np.array([[0.3, 0.35, 0.35], [0.05, 0.9, 0.05], [0.9, 0.05, 0.05]])


def penguin_table(rows: int, seed: int = 0) -> pa.Table:
    """Penguin-like rows: four float64 measurements, ``island`` (string), ``species`` (string label)."""
    rng = np.random.default_rng(seed)
    species = rng.integers(0, 3, rows)
    columns: dict[str, pa.Array] = {}
    for j, name in enumerate(NUMERIC):
        columns[name] = pa.array(rng.normal(MEANS[species, j], SCALES[j] * 1.3))
    island = [ISLANDS[rng.choice(3, p=ISLAND_PROBABILITIES[s])] for s in species]
    columns["island"] = pa.array(island, pa.string())
    columns["species"] = pa.array([SPECIES[s] for s in species], pa.string())
    return pa.table(columns)


def export_penguin_model(
    directory: str | Path, *, quality: Literal["good", "bad"] = "good", seed: int = 0, logits: bool = False
) -> str:
    """A raw-feature SavedModel at ``<directory>/Format-Serving``; returns that path.

    With ``logits`` the same classifier returns ``{"logits": ...}``, its scores before the softmax.
    A good model with a ``seed`` other than 0 has its means moved by 1% of a scale: as good,
    but another model (other bytes, another fingerprint).
    """
    import tensorflow as tf

    output_logits = logits
    means = MEANS.copy()
    island_logp = np.log(ISLAND_PROBABILITIES)
    if quality == "bad":
        rng = np.random.default_rng(seed)
        means = means[[2, 0, 1]] + rng.normal(0.0, 1.0, means.shape) * SCALES
        island_logp = island_logp[[1, 2, 0]]
    elif seed:
        means = means + np.random.default_rng(seed).normal(0.0, 0.01, means.shape) * SCALES

    class Serving(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.means = tf.Variable(means.astype(np.float32), name="means")
            self.scales = tf.Variable(SCALES.astype(np.float32), name="scales")
            self.island_logp = tf.Variable(island_logp.astype(np.float32), name="island_logp")

        @tf.function(
            input_signature=[tf.TensorSpec([None], tf.float32, name=name) for name in NUMERIC]
            + [tf.TensorSpec([None], tf.string, name="island")]
        )
        def serve(self, culmen_length_mm, culmen_depth_mm, flipper_length_mm, body_mass_g, island):
            x = tf.stack([culmen_length_mm, culmen_depth_mm, flipper_length_mm, body_mass_g], axis=1)
            z = (tf.expand_dims(x, 1) - tf.expand_dims(self.means, 0)) / self.scales
            logits = -0.5 * tf.reduce_sum(z * z, axis=2)
            one_hot = tf.stack([tf.cast(tf.equal(island, name), tf.float32) for name in ISLANDS], axis=1)
            logits += tf.matmul(one_hot, self.island_logp, transpose_b=True)
            if output_logits:
                return {"logits": logits}
            return {"probabilities": tf.nn.softmax(logits)}

    module = Serving()
    path = str(Path(directory) / "Format-Serving")
    tf.saved_model.save(module, path, signatures={"serving_default": module.serve})
    return path


def write_examples(uri: str, splits: dict[str, pa.Table], rows_per_file: int | None = None) -> None:
    """Write tables as an Examples layout: ``<uri>/Split-<name>/data-NNNNN.parquet``."""
    for name, table in splits.items():
        directory = Path(uri) / f"Split-{name}"
        directory.mkdir(parents=True, exist_ok=True)
        step = rows_per_file or max(table.num_rows, 1)
        for index, start in enumerate(range(0, max(table.num_rows, 1), step)):
            pq.write_table(table.slice(start, step), directory / f"data-{index:05d}.parquet")


@component
def PenguinData(examples: Output[Examples], *, train_rows: int = 200, eval_rows: int = 300, seed: int = 0) -> None:
    """Examples with a train and an eval split of penguin-like rows (eval in two files)."""
    splits = {"train": penguin_table(train_rows, seed), "eval": penguin_table(eval_rows, seed + 1)}
    write_examples(examples.uri, splits, rows_per_file=(eval_rows + 1) // 2)
    examples.properties.update(splits=list(splits), split_rows={k: v.num_rows for k, v in splits.items()})


@component
def PenguinModel(
    model: Output[Model], *, quality: Literal["good", "bad"] = "good", seed: int = 0, logits: bool = False
) -> None:
    """A Model artifact holding the fixture SavedModel; declares its label vocabulary."""
    export_penguin_model(model.uri, quality=quality, seed=seed, logits=logits)
    model.properties.update(label_vocabulary=SPECIES, quality=quality)


@component
def BrokenModel(model: Output[Model]) -> None:
    """A Model artifact whose saved_model.pb is garbage: it cannot load."""
    serving = Path(model.uri) / "Format-Serving"
    serving.mkdir(parents=True)
    (serving / "saved_model.pb").write_bytes(b"this is not a SavedModel \x00\xff" * 10)
