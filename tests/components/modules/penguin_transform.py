"""Penguin preprocessing_fn for the Transform and Trainer tests (TFX's penguin example, smaller)."""

import tensorflow as tf
import tensorflow_transform as tft

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
LABEL = "species"


def _dense(tensor, default):
    """A [batch, 1] dense or sparse input → [batch] dense, missing values → default (TFX taxi style)."""
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default
        )
    return tf.squeeze(tensor, axis=1)


def preprocessing_fn(inputs):
    outputs = {}
    for name in NUMERIC:
        outputs[f"{name}_xf"] = tft.scale_to_z_score(tf.cast(_dense(inputs[name], 0), tf.float32))
    outputs["island_xf"] = tft.compute_and_apply_vocabulary(_dense(inputs["island"], ""), vocab_filename="island")
    if LABEL in inputs:
        outputs["species_xf"] = tft.compute_and_apply_vocabulary(_dense(inputs[LABEL], ""), vocab_filename="species")
    return outputs
