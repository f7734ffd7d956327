"""preprocessing_fn for tests/pipelines/spaced_columns.py: z-scores every numeric column."""

import tensorflow as tf
import tensorflow_transform as tft


def preprocessing_fn(inputs):
    return {
        name.replace(" ", "_") + "_xf": tft.scale_to_z_score(tf.cast(value, tf.float32))
        for name, value in inputs.items()
        if value.dtype != tf.string
    }
