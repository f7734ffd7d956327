"""What the model components share, without Beam: a serving signature's kind,
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
    from beam_ml.transforms.inference import ServingModel


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
