"""InfraValidator: does the Model load and serve in a fresh process? → InfraBlessing.

A canary batch of real rows (the first ``canary_rows`` of ``split``) is
written to a temporary Parquet file and a NEW Python process
(``sys.executable -m beam_ml.components.infra_validator``), which never saw
the training code, loads the SavedModel and sends the batch through its
serving signature (raw feature columns, or serialized tf.Examples for models
exported by our Trainer). The model is blessed when the process exits within
``timeout_s``, every output has one row per canary row, and every numeric
output value is finite.

A model that cannot be loaded or called is NOT blessed with the child's error
as the reason; the component itself succeeds.

Output: InfraBlessing with an empty ``INFRA_BLESSED`` or ``INFRA_NOT_BLESSED``
file (TFX's names) and properties ``blessed``, ``reason``, ``canary_rows``,
``outputs`` ({name: shape}), ``model_id``.

pyarrow is imported only when the component runs (TensorFlow only in the
child process): a pipeline file imports this module, and a fully cached rerun
must not pay for them.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile

from beam_ml import fs
from beam_ml.artifacts import Examples, InfraBlessing, Model
from beam_ml.components._model_io import touch
from beam_ml.dsl import Input, Output, component

logger = logging.getLogger(__name__)

BLESSED_FILE, NOT_BLESSED_FILE = "INFRA_BLESSED", "INFRA_NOT_BLESSED"
_ERROR_TAIL = 2000


@component
def InfraValidator(
    model: Input[Model],
    examples: Input[Examples],
    blessing: Output[InfraBlessing],
    *,
    split: str = "eval",
    canary_rows: int = 16,
    timeout_s: float = 120.0,
) -> None:
    """Load the model in a fresh process and serve a canary batch of ``split``'s rows."""
    import pyarrow.parquet as pq

    from beam_ml.local_copies import local_copy

    if canary_rows < 1:
        raise ValueError(f"canary_rows must be at least 1, got {canary_rows}")
    canary = examples.head(split, canary_rows)
    with tempfile.TemporaryDirectory(prefix="beam_ml_infra_") as workdir:
        canary_path = os.path.join(workdir, "canary.parquet")
        result_path = os.path.join(workdir, "result.json")
        pq.write_table(canary, canary_path)
        blessed, reason, outputs = _probe_in_fresh_process(local_copy(model.serving_uri), canary_path, result_path, timeout_s)
    if blessed:
        blessed, reason = _check_outputs(outputs, canary.num_rows)
    touch(fs.join(blessing.uri, BLESSED_FILE if blessed else NOT_BLESSED_FILE))
    blessing.properties.update(
        blessed=blessed,
        reason=reason,
        canary_rows=canary.num_rows,
        outputs={name: info["shape"] for name, info in (outputs or {}).items()},
        model_id=model.id,
    )
    if not blessed:
        logger.warning("InfraValidator: model %s (%s) is NOT infra-blessed: %s", model.id, model.uri, reason)


def _probe_in_fresh_process(
    model_path: str, canary_path: str, result_path: str, timeout_s: float
) -> tuple[bool, str, dict | None]:
    command = [sys.executable, "-m", "beam_ml.components.infra_validator", model_path, canary_path, result_path]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        return False, f"the model did not load and serve the canary batch within {timeout_s:g} s", None
    if completed.returncode != 0 or not os.path.exists(result_path):
        error = _last_error(completed.stderr) or f"exit status {completed.returncode}"
        return False, f"the model failed in a fresh process: {error}", None
    with open(result_path) as handle:
        return True, "", json.load(handle)["outputs"]


def _last_error(stderr: str) -> str:
    """The traceback's last lines (the exception), not TensorFlow's start-up chatter."""
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    start = max((i for i, line in enumerate(lines) if line.startswith("Traceback")), default=max(len(lines) - 5, 0))
    text = "\n".join(lines[start:])
    tail = [line for line in lines[start:] if line and not line.startswith(" ")]
    summary = tail[-1] if tail else text
    return summary[-_ERROR_TAIL:]


def _check_outputs(outputs: dict | None, rows: int) -> tuple[bool, str]:
    if not outputs:
        return False, "the serving signature returned no outputs"
    for name, info in outputs.items():
        if info["shape"][0] != rows:
            return False, f"output {name!r} has {info['shape'][0]} rows for a canary batch of {rows}"
        if not info["finite"]:
            return False, f"output {name!r} holds NaN or infinite values on the canary batch"
    return True, f"served {rows} canary rows; outputs " + ", ".join(f"{n} {i['shape']}" for n, i in outputs.items())


def _probe(model_path: str, canary_path: str, result_path: str) -> None:
    """In the fresh process: load, serve the canary batch, describe each output."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    from beam_ml.components._serving import ServingHandler

    table = pq.read_table(canary_path)
    handler = ServingHandler(model_path)
    model = handler.load_model()
    batch = table.combine_chunks().to_batches()
    result = list(handler.run_inference(batch, model))
    outputs = {}
    for record_batch in result:
        for name in record_batch.schema.names:
            if name in table.schema.names:
                continue
            column = record_batch.column(name)
            width = column.type.list_size if hasattr(column.type, "list_size") else None
            values = column.flatten() if width is not None else column
            finite = column.null_count == 0 and values.null_count == 0
            if pa.types.is_floating(values.type):  # integers are finite; strings: present is all we ask
                finite = finite and bool(np.all(np.isfinite(values.to_numpy(zero_copy_only=False))))
            shape = [record_batch.num_rows] + ([width] if width is not None else [])
            previous = outputs.get(name)
            if previous is not None:
                shape[0] += previous["shape"][0]
                finite = finite and previous["finite"]
            outputs[name] = {"shape": shape, "finite": finite}
    with open(result_path, "w") as handle:
        json.dump({"outputs": outputs}, handle)


if __name__ == "__main__":
    _probe(*sys.argv[1:4])
