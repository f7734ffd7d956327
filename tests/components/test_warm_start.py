"""Warm start: the penguin and taxi models load the weights of a model export_serving_model saved
(what fn_args.base_model points at), and a model of another shape fails, naming the difference."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def _module(path: Path):
    spec = importlib.util.spec_from_file_location(f"warm_start_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _export(model, path: Path) -> str:
    """The model as the Trainer exports it; its inputs stand for the transformed features."""
    import tensorflow as tf

    from beam_ml.training import export_serving_model

    spec = {tensor.name: tf.io.FixedLenFeature([], tf.int64 if tensor.dtype == "int64" else tf.float32)
            for tensor in model.inputs}
    export_serving_model(model, None, str(path), raw_feature_spec=spec)
    return str(path)


@pytest.mark.parametrize("example", ["penguin/penguin_utils.py", "chicago_taxi/taxi_utils.py"])
def test_a_fresh_model_takes_the_saved_models_weights(tmp_path, example):
    import keras

    from beam_ml.training import warm_start

    utils = _module(EXAMPLES / example)
    keras.utils.set_random_seed(0)
    base = utils.build_model({})
    _export(base, tmp_path / "base" / "Format-Serving")  # a Model artifact's layout

    keras.utils.set_random_seed(1)
    fresh = utils.build_model({})
    assert not all(np.array_equal(a, b) for a, b in zip(base.get_weights(), fresh.get_weights(), strict=True))
    warm_start(fresh, str(tmp_path / "base"))  # the artifact's uri; fn_args.base_model is its Format-Serving
    assert all(np.array_equal(a, b) for a, b in zip(base.get_weights(), fresh.get_weights(), strict=True))


def test_a_model_of_another_shape_is_not_warm_started(tmp_path):
    import keras

    from beam_ml.training import warm_start

    utils = _module(EXAMPLES / "penguin" / "penguin_utils.py")
    base = utils.build_model({"units": 16})
    saved = _export(base, tmp_path / "base")
    keras.utils.set_random_seed(0)
    with pytest.raises(ValueError, match=r"cannot warm start from .*base: .*shape \(11, 16\).*build the model as"):
        warm_start(utils.build_model({"units": 8}), saved)
