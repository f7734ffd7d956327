"""Running a ``tuner_fn``'s search: in this process for Keras 3 models, in a fresh one for ``tf.keras``.

keras-tuner picks its Keras when it is first imported, and with Keras 3
installed it picks Keras 3 and rejects a ``tf.keras`` (Keras 2, tf_keras)
model, as TFX 1.x module files build them. Such a search runs in a child
process that imports keras-tuner while ``keras`` names tf_keras (and
``TF_USE_LEGACY_KERAS=1``, as tensorflow_transform sets it), so keras-tuner
works on ``tf.keras`` there; the child loads the user module again, calls its
``tuner_fn`` and reports the search as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import os
import pickle
import subprocess
import sys
import tempfile
from typing import Any


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def run_search(tuner: Any, fit_kwargs: dict[str, Any]) -> dict[str, Any]:
    """``tuner.search(**fit_kwargs)``; the best values, their keras-tuner config and every trial (JSON-safe)."""
    tuner.search(**fit_kwargs)
    trials = [
        {"trial_id": t.trial_id, "score": t.score, "status": str(t.status), "values": t.hyperparameters.values}
        for t in tuner.oracle.trials.values()
    ]
    if not any(t["score"] is not None for t in trials):
        raise RuntimeError(f"every tuning trial failed ({len(trials)} trials; see the log above): {trials}")
    [best] = tuner.get_best_hyperparameters(num_trials=1)
    report = {"values": best.values, "config": best.get_config(), "trials": trials}
    return json.loads(json.dumps(report, default=_plain))


def builds_legacy_keras(tuner: Any) -> bool:
    """Whether the tuner's hypermodel builds a tf_keras (Keras 2) model (built once on the default values)."""
    model = tuner.hypermodel.build(tuner.oracle.get_space())
    return type(model).__module__.startswith("tf_keras")


def run_search_with_legacy_keras(module_path: str, tuner_fn: str, fn_args: Any, working_dir: str) -> dict[str, Any]:
    """``run_search`` of the module's ``tuner_fn`` in a child process whose keras-tuner runs on tf_keras.

    ``fn_args`` gets ``working_dir`` (and ``model_run_dir``) = ``working_dir``, a directory the
    in-process attempt did not touch.
    """
    fresh = dataclasses.replace(fn_args, working_dir=working_dir, model_run_dir=working_dir)
    with tempfile.TemporaryDirectory(prefix="beam_ml_tuning_") as scratch:
        request, report = os.path.join(scratch, "request.pkl"), os.path.join(scratch, "report.json")
        with open(request, "wb") as handle:
            pickle.dump((module_path, tuner_fn, fresh), handle)
        env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
        done = subprocess.run(
            [sys.executable, "-m", __name__, request, report], env=env, capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"the tf.keras (Keras 2) tuning process failed (exit {done.returncode}):\n{done.stderr[-4000:]}"
            )
        with open(report) as handle:
            return json.load(handle)


def _import_keras_tuner_on_tf_keras() -> None:
    import tf_keras

    previous = sys.modules.get("keras")
    sys.modules["keras"] = tf_keras
    try:
        import keras_tuner  # noqa: F401  (imported now, it binds to tf_keras for this process)
    finally:
        if previous is None:
            del sys.modules["keras"]
        else:
            sys.modules["keras"] = previous


def _main(request: str, report: str) -> None:
    _import_keras_tuner_on_tf_keras()
    from beam_ml.dsl import UserModule

    with open(request, "rb") as handle:
        module_path, tuner_fn, fn_args = pickle.load(handle)  # written by our parent process just now
    result = UserModule(module_path).get(tuner_fn)(fn_args)
    with open(report, "w") as handle:
        json.dump(run_search(result.tuner, result.fit_kwargs), handle)


if __name__ == "__main__":
    _main(*sys.argv[1:])
