"""Pusher: a blessed Model → ``<destination>/<version>/`` (TF Serving's layout) → PushedModel.

The model is pushed only when the ModelBlessing says blessed (and names this
model) and, when wired, the InfraBlessing says blessed too. Otherwise the
component succeeds without pushing: PushedModel's properties say
``pushed: False`` and ``reason``, and a warning says why.

``version`` is the Unix time in seconds; if ``<destination>/<version>`` exists
(two pushes in one second) the next free number is taken, so an existing
version is never overwritten. The SavedModel is copied to a hidden temporary
directory beside it and renamed into place, so TF Serving, which watches
``<destination>``, never sees a half-copied version.

``tflite=True`` also converts the SavedModel with
``tf.lite.TFLiteConverter.from_saved_model`` (TFLite built-in ops; if those
cannot express the graph, built-ins plus SELECT_TF_OPS, which needs the
Flex delegate at serving time; ``tflite_ops`` says which) and writes
``<version>/model.tflite``. Before pushing, the TFLite model's outputs on a
canary batch (the first ``canary_rows`` rows of ``split`` of the ``examples``
input, which ``tflite`` requires) must equal the SavedModel's within
``tflite_tolerance`` (max absolute difference); if not, nothing is pushed and
the reason says by how much they differ. A model whose signature takes
serialized tf.Examples (our Trainer's export) needs SELECT_TF_OPS for
``ParseExample``.

PushedModel properties: ``pushed``, ``reason``, ``version``, ``destination``
(the version directory), ``model_id``, and with TFLite ``tflite_ops`` and
``tflite_max_abs_diff``.

Beam, pyarrow and TensorFlow are imported only when the component runs: a
pipeline file imports this module, and a fully cached rerun must not pay for
them.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from beam_ml import fs
from beam_ml.artifacts import Examples, InfraBlessing, Model, ModelBlessing, PushedModel
from beam_ml.components._model_io import examples_input, write_json
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, component

if TYPE_CHECKING:
    import pyarrow as pa

logger = logging.getLogger(__name__)

TFLITE_FILE = "model.tflite"
PUSH_RECORD = "pushed.json"
_COPY_CHUNK = 8 << 20


@component
def Pusher(
    model: Input[Model],
    model_blessing: Input[ModelBlessing],
    pushed_model: Output[PushedModel],
    ctx: ExecutionContext,
    infra_blessing: Input[InfraBlessing] | None = None,
    examples: Input[Examples] | None = None,
    *,
    destination: str,
    tflite: bool = False,
    tflite_tolerance: float = 1e-4,
    split: str = "eval",
    canary_rows: int = 16,
) -> None:
    """Push the model to ``destination`` if it is blessed (see the module docstring).

    A relative ``destination`` is under the pipeline root, so moving the root moves the pushes.
    """
    if fs.is_local(destination) and not os.path.isabs(destination):
        destination = fs.join(ctx.pipeline_root, destination)
    if tflite and examples is None:
        raise ValueError("tflite=True checks the converted model on canary rows: wire the examples input")
    reason = _why_not(model, model_blessing, infra_blessing)
    tflite_bytes, tflite_facts = None, {}
    if reason is None and tflite:
        canary = examples.head(split, canary_rows)
        tflite_bytes, tflite_facts = _convert_and_check(model.serving_uri, canary)
        if tflite_facts["tflite_max_abs_diff"] > tflite_tolerance:
            reason = (
                f"the TFLite model's outputs differ from the SavedModel's by up to "
                f"{tflite_facts['tflite_max_abs_diff']:.3g} on {canary.num_rows} canary rows, "
                f"more than tflite_tolerance {tflite_tolerance:g}"
            )
    pushed_model.properties.update(model_id=model.id, **tflite_facts)
    if reason is not None:
        pushed_model.properties.update(pushed=False, reason=reason, version=None, destination=None)
        write_json(fs.join(pushed_model.uri, PUSH_RECORD), dict(pushed_model.properties))
        logger.warning("Pusher: model %s (%s) was NOT pushed: %s", model.id, model.uri, reason)
        return
    version, target = _push(model.serving_uri, destination, tflite_bytes)
    pushed_model.properties.update(pushed=True, reason="blessed", version=version, destination=target)
    write_json(fs.join(pushed_model.uri, PUSH_RECORD), dict(pushed_model.properties))
    logger.info("Pusher: pushed model %s as version %s to %s", model.id, version, target)


def _why_not(model: Model, model_blessing: ModelBlessing, infra_blessing: InfraBlessing | None) -> str | None:
    props = model_blessing.properties
    if not props.get("blessed"):
        reasons = "; ".join(props.get("reasons") or []) or "no reason recorded"
        return f"the model is not blessed by the Evaluator: {reasons}"
    if props.get("model_id") is not None and model.id is not None and props["model_id"] != model.id:
        return f"the ModelBlessing is for model {props['model_id']}, not for model {model.id}"
    if infra_blessing is not None and not infra_blessing.properties.get("blessed"):
        return f"the model is not blessed by the InfraValidator: {infra_blessing.properties.get('reason', 'no reason recorded')}"
    return None


def _push(serving: str, destination: str, tflite_bytes: bytes | None) -> tuple[int, str]:
    """Copy the SavedModel (and model.tflite) to a new version directory; (version, its path)."""
    from apache_beam.io.filesystems import FileSystems

    fs.makedirs(destination)
    staging = fs.join(destination, f".tmp-{uuid.uuid4().hex}")
    prefix = serving.rstrip("/") + "/"
    for source in fs.list_files(serving):
        target = fs.join(staging, source[len(prefix):])
        fs.makedirs(target.rsplit("/", 1)[0])
        # A stream, not FileSystems.copy: the model and the destination may be on different filesystems.
        with fs.open_read(source) as reader, FileSystems.create(target) as writer:
            shutil.copyfileobj(reader, writer, _COPY_CHUNK)
    if tflite_bytes is not None:
        with FileSystems.create(fs.join(staging, TFLITE_FILE)) as handle:
            handle.write(tflite_bytes)
    version = int(time.time())
    while True:
        target = fs.join(destination, str(version))
        if not fs.exists(target):
            try:
                fs.rename(staging, target)
                return version, target
            except Exception:
                if not fs.exists(target):  # not a race with another pusher: a real failure
                    fs.remove_tree(staging)
                    raise
        version += 1


# --------------------------------------------------------------------------- TFLite


def _convert(saved_model: str) -> tuple[bytes, str]:
    import tensorflow as tf

    from beam_ml.local_copies import local_copy

    saved_model = local_copy(saved_model)
    try:
        return tf.lite.TFLiteConverter.from_saved_model(saved_model).convert(), "TFLITE_BUILTINS"
    except Exception as builtin_error:
        converter = tf.lite.TFLiteConverter.from_saved_model(saved_model)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS, tf.lite.OpsSet.SELECT_TF_OPS]
        try:
            return converter.convert(), "TFLITE_BUILTINS,SELECT_TF_OPS"
        except Exception as error:
            raise RuntimeError(
                f"TFLite cannot convert {saved_model}: with built-in ops: {builtin_error}; with SELECT_TF_OPS: {error}"
            ) from error


def _convert_and_check(saved_model: str, canary: pa.Table) -> tuple[bytes, dict[str, Any]]:
    """(model.tflite bytes, facts): the max absolute difference from the SavedModel on the canary rows."""
    import numpy as np
    import tensorflow as tf

    from beam_ml.components._serving import ServingHandler
    from beam_ml.transforms.inference import _default_fill, _feature_array

    content, ops = _convert(saved_model)
    handler = ServingHandler(saved_model)
    model = handler.load_model()
    batch = canary.combine_chunks().to_batches()[0]
    examples_name = examples_input(model, batch.schema.names)
    if examples_name is not None:
        from beam_ml.training import serialize_examples

        features = {examples_name: np.array(serialize_examples(batch), dtype=object)}
    else:
        features = {spec.name: _feature_array(batch.column(spec.name), spec, _default_fill(spec.dtype)) for spec in model.inputs}
    expected = model(features)
    with tempfile.TemporaryDirectory(prefix="beam_ml_tflite_") as workdir:
        path = Path(workdir, TFLITE_FILE)
        path.write_bytes(content)
        interpreter = tf.lite.Interpreter(model_path=str(path))
        runner = interpreter.get_signature_runner("serving_default")
        got = runner(**features)
    missing = sorted(set(expected) - set(got))
    if missing:
        raise RuntimeError(f"the TFLite model lacks outputs {missing} of the SavedModel (has {sorted(got)})")
    diff = 0.0
    for name, values in expected.items():
        if values.dtype == object:
            diff = max(diff, 0.0 if np.array_equal(values, got[name]) else float("inf"))
        else:
            diff = max(diff, float(np.max(np.abs(values.astype(np.float64) - got[name].astype(np.float64)), initial=0.0)))
    return content, {"tflite_ops": ops, "tflite_max_abs_diff": diff}
