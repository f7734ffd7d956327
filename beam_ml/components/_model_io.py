"""What the model components share, without Beam: a serving signature's kind,
a label's class names,
and small JSON and marker files.

Feeding rows to a model inside a Beam pipeline is ``_serving.py``'s job. This
module imports neither Beam nor TensorFlow, so component modules can import it
at module level: a pipeline file imports every component module, and a fully
cached rerun must not pay those imports (seconds). Files are read through
``beam_ml.fs``; Beam's ``FileSystems`` is imported only to write them, which
happens only while a component runs.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any

from beam_ml import fs

if TYPE_CHECKING:
    import pyarrow as pa

    from beam_ml.artifacts import Model
    from beam_ml.transforms.inference import ServingModel

#: Columns BulkInferrer adds beside the raw output when the label has a vocabulary.
PREDICTED_CLASS, PREDICTED_SCORE = "predicted_class", "predicted_score"


def examples_input(model: ServingModel, columns: Collection[str] = ()) -> str | None:
    """The input to feed serialized tf.Examples, or None when the signature takes feature columns.

    A signature with one string input of shape [batch] parses tf.Examples (TFX module
    files name it ``examples``; the name does not matter) unless ``columns`` has a
    column of that name: rows that already hold it (serialized examples, or a model
    of one string feature) are fed as they are.
    """
    if len(model.inputs) != 1:
        return None
    spec = model.inputs[0]
    if spec.dtype != "string" or spec.width is not None or spec.name in columns:
        return None
    return spec.name


# --------------------------------------------------------------------------- the store


def label_vocabulary(model: Model, given: list[str] | None = None) -> list[str] | None:
    """A classifier's class names: position in the list = class id = column of its probability output.

    ``given`` (a component's ``label_vocabulary`` parameter) first, then the
    Model's ``label_vocabulary`` property (a run_fn may set it); None when neither says.
    Never looked up in the store: what a step reads must be its recorded input or
    parameter, or the cache would serve a result the look-up no longer gives (and the
    answer would depend on which step happened to run first).
    """
    if given is not None:
        return list(given)
    if model.properties.get("label_vocabulary") is not None:
        return list(model.properties["label_vocabulary"])
    return None


def with_predicted_class(
    batch: pa.RecordBatch, vocabulary: list[str], output_kind: str | None, column: str = "prediction"
) -> pa.RecordBatch:
    """``batch`` with ``predicted_class`` (the class name) and ``predicted_score`` (its probability) appended.

    ``column`` holds k class scores per row (k = len(vocabulary)), or one score of
    the second class for a binary model of two classes; logits (``output_kind``)
    go through softmax / sigmoid first. A row whose output is null gets nulls.
    """
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    raw = batch.column(column)
    k = len(vocabulary)
    if pa.types.is_fixed_size_list(raw.type) or pa.types.is_list(raw.type) or pa.types.is_large_list(raw.type):
        lengths = pc.list_value_length(raw).to_numpy(zero_copy_only=False)
        valid = raw.is_valid().to_numpy(zero_copy_only=False)
        width = {int(n) for n, ok in zip(lengths, valid, strict=True) if ok}
        if width - {k}:
            raise ValueError(
                f"column {column!r} holds {sorted(width)} scores per row but label_vocabulary names {k} classes: {vocabulary}"
            )
        scores = np.full((len(raw), k), np.nan)
        if valid.any():
            scores[valid] = np.asarray(pc.list_flatten(raw.filter(pa.array(valid))), dtype=float).reshape(-1, k)
    elif k == 2 and (pa.types.is_floating(raw.type) or pa.types.is_integer(raw.type)):
        valid = raw.is_valid().to_numpy(zero_copy_only=False)
        positive = np.asarray(raw.cast(pa.float64()).fill_null(np.nan), dtype=float)
        if output_kind == "logits":
            positive = 1.0 / (1.0 + np.exp(-positive))
        scores, output_kind = np.stack([1.0 - positive, positive], axis=1), "probabilities"
    else:
        raise ValueError(f"column {column!r} ({raw.type}) is not one score per class of {vocabulary}")
    if output_kind == "logits" and valid.any():
        kept = scores[valid]
        shifted = np.exp(kept - kept.max(axis=1, keepdims=True))
        scores[valid] = shifted / shifted.sum(axis=1, keepdims=True)
    best = np.argmax(np.nan_to_num(scores, nan=-np.inf), axis=1)
    names = pa.array([vocabulary[i] if ok else None for i, ok in zip(best, valid, strict=True)], pa.string())
    top = pa.array(np.where(valid, scores[np.arange(len(best)), best], np.nan), pa.float64(), mask=~valid)
    return pa.RecordBatch.from_arrays(
        [*batch.columns, names, top], [*batch.schema.names, PREDICTED_CLASS, PREDICTED_SCORE]
    )



def json_safe(value: Any) -> Any:
    """NaN and infinities → None, recursively: metrics go into strict JSON and the store."""
    if isinstance(value, float):
        return value if value == value and value not in (float("inf"), float("-inf")) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def write_json(path: str, value: Any) -> None:
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as handle:
        handle.write(json.dumps(json_safe(value), indent=2, sort_keys=False, allow_nan=False).encode("utf-8"))


def read_json(path: str) -> Any:
    with fs.open_read(path) as handle:
        return json.loads(handle.read().decode("utf-8"))


def touch(path: str) -> None:
    """A marker file (BLESSED, NOT_BLESSED, INFRA_BLESSED, ...) holding its own name.

    TFX writes these empty and readers only check that they exist; ours hold a line
    because Beam's S3 filesystem cannot write an empty object (a multipart upload
    with no part fails to complete).
    """
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(path) as handle:
        handle.write(path.rstrip("/").rsplit("/", 1)[-1].encode() + b"\n")
