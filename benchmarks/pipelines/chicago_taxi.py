"""The Chicago taxi example pipeline (examples/chicago_taxi/pipeline.py) on ``$BEAM_ML_BENCH_CSV``
(the suite passes its ×1 dataset: the taxi sample, or synthetic taxi-like rows without ../shared),
with ``train_steps`` from ``$BEAM_ML_BENCH_TRAIN_STEPS`` (default 300; the example's own default is
1000) and its root from ``$BEAM_ML_BENCH_ROOT``."""

import importlib.util
import os
from pathlib import Path

_FILE = Path(__file__).resolve().parents[2] / "examples" / "chicago_taxi" / "pipeline.py"
_spec = importlib.util.spec_from_file_location("bench_chicago_taxi_pipeline", _FILE)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def create_pipeline(root: str | None = None):
    root = root or os.environ.get("BEAM_ML_BENCH_ROOT", _module.DEFAULT_ROOT)
    return _module.create_pipeline(root, os.environ.get("BEAM_ML_BENCH_CSV"),
                                   train_steps=int(os.environ.get("BEAM_ML_BENCH_TRAIN_STEPS", "300")))
