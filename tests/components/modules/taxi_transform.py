"""Chicago taxi preprocessing_fn (after TFX's taxi example): z-scores, 0-1 scaling, vocabularies.

Features that may be missing arrive sparse and are densified with a default.
"""

import tensorflow as tf
import tensorflow_transform as tft


def _fill(tensor, default):
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(
            tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default
        )
    return tf.squeeze(tensor, axis=1)


def preprocessing_fn(inputs):
    return {
        "row_id": _fill(inputs["row_id"], -1),
        "fare_xf": tft.scale_to_z_score(tf.cast(_fill(inputs["fare"], 0.0), tf.float32)),
        "trip_miles_xf": tft.scale_to_z_score(tf.cast(_fill(inputs["trip_miles"], 0.0), tf.float32)),
        "trip_seconds_xf": tft.scale_to_0_1(tf.cast(_fill(inputs["trip_seconds"], 0), tf.float32)),
        "pickup_community_area_xf": tft.scale_to_z_score(tf.cast(_fill(inputs["pickup_community_area"], 0), tf.float32)),
        "payment_type_xf": tft.compute_and_apply_vocabulary(_fill(inputs["payment_type"], ""), vocab_filename="payment_type"),
        "company_xf": tft.compute_and_apply_vocabulary(
            _fill(inputs["company"], ""), top_k=20, num_oov_buckets=1, vocab_filename="company"
        ),
    }
