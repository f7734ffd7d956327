"""Our own data with list-valued, nested and struct features, for the TFDV comparison.

Plain Python (random with a fixed seed, no beam-ml import) so the same rows come out in
our venv and in TFDV 1.16.1's peer venv, where tests/transforms/data/make_tfdv_list_reference.py
builds the reference statistics from them.
"""

from __future__ import annotations

import random

WORDS = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "lambda"]
NUM_EXAMPLES = 400


def tf_examples() -> list[dict[str, list]]:
    """Feature → values per example; a feature absent from the dict is missing there.

    int_list/float_list/str_list hold 0 to 5 values (an empty list is present, not
    missing); label and weight one value each; code and fcode are small sets of ints and
    floats (made categorical by a schema); blob is text of varying length (made BYTES by a
    schema).
    Floats are multiples of 1/8 so float32 holds them exactly.
    """
    rng = random.Random(20261203)
    examples = []
    for _ in range(NUM_EXAMPLES):
        example: dict[str, list] = {}
        if rng.random() >= 0.1:
            example["int_list"] = [rng.randint(-5, 40) for _ in range(rng.randint(0, 4))]
        if rng.random() >= 0.2:
            example["float_list"] = [rng.randint(-80, 160) / 8 for _ in range(rng.randint(1, 5))]
        if rng.random() >= 0.15:
            example["str_list"] = [rng.choice(WORDS).encode() for _ in range(rng.randint(0, 5))]
        example["label"] = [rng.randint(0, 1)]
        example["weight"] = [rng.randint(1, 8) / 4]
        if rng.random() < 0.6:
            example["code"] = [rng.choice([3, 7, 11, 42, 42, 42])]
        if rng.random() < 0.8:
            example["blob"] = [("x" * rng.randint(1, 30)).encode()]
        if rng.random() < 0.7:
            example["fcode"] = [rng.choice([0.5, 2.0, 2.5, 10.25])]
        examples.append(example)
    return examples


def nested_columns() -> dict[str, list]:
    """Columns in TFDV's layout (every feature a list per example), as Python values:
    `nested` list<list<int64>> with missing rows, null and empty inner lists; `s`
    list<struct<f1: list<double>, f2: list<string>>>; `weight` one value per row."""
    rng = random.Random(777)
    nested, structs, weights = [], [], []
    for _ in range(NUM_EXAMPLES):
        if rng.random() < 0.1:
            nested.append(None)
        else:
            nested.append([None if rng.random() < 0.1 else [rng.randint(0, 9) for _ in range(rng.randint(0, 3))]
                           for _ in range(rng.randint(0, 3))])
        if rng.random() < 0.15:
            structs.append(None)
        else:
            row = []
            for _ in range(rng.randint(0, 3)):
                f1 = None if rng.random() < 0.2 else [rng.randint(-16, 16) / 4 for _ in range(rng.randint(0, 2))]
                f2 = None if rng.random() < 0.3 else [rng.choice(WORDS) for _ in range(rng.randint(1, 2))]
                row.append({"f1": f1, "f2": f2})
            structs.append(row)
        weights.append([rng.randint(1, 4) / 2])
    return {"nested": nested, "s": structs, "weight": weights}


def nested_record_batch(pa):
    """nested_columns() as a pyarrow RecordBatch (pyarrow passed in: the two venvs differ)."""
    columns = nested_columns()
    types = {
        "nested": pa.list_(pa.list_(pa.int64())),
        "s": pa.list_(pa.struct([("f1", pa.list_(pa.float64())), ("f2", pa.list_(pa.string()))])),
        "weight": pa.list_(pa.float64()),
    }
    return pa.RecordBatch.from_arrays([pa.array(columns[name], types[name]) for name in types], list(types))


def serialized_examples(examples: list[dict[str, list]]) -> list[bytes]:
    """Examples serialized as tf.Example; a feature's kind (int64, float, bytes) is that of
    its values anywhere (bytes when it never has one); an empty list is set, not missing."""
    from tensorflow.core.example import example_pb2

    kinds: dict[str, str] = {}
    for values in examples:
        for name, feature_values in values.items():
            for value in feature_values:
                kind = "float_list" if isinstance(value, float) else "bytes_list" if isinstance(value, bytes) else "int64_list"
                kinds.setdefault(name, kind)
    out = []
    for values in examples:
        example = example_pb2.Example()
        for name, feature_values in values.items():
            value_list = getattr(example.features.feature[name], kinds.get(name, "bytes_list"))
            value_list.SetInParent()
            value_list.value.extend(feature_values)
        out.append(example.SerializeToString())
    return out


def write_tf_examples(path, examples: list[dict[str, list]]) -> str:
    """A TFRecord file of the examples (see serialized_examples); returns its path."""
    from apache_beam.io.tfrecordio import _TFRecordUtil

    with open(path, "wb") as f:
        for record in serialized_examples(examples):
            _TFRecordUtil.write_record(f, record)
    return str(path)


SCHEMA_TEXT = """
feature { name: "code" type: INT int_domain { is_categorical: true } }
feature { name: "blob" type: BYTES image_domain { } }
feature { name: "fcode" type: FLOAT float_domain { is_categorical: true } }
"""
