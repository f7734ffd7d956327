"""The penguin example pipeline (examples/penguin/pipeline.py) with ``train_steps`` from
``$BEAM_ML_BENCH_TRAIN_STEPS`` (default 300, the demo's; the quick run trains less) and its
root from ``$BEAM_ML_BENCH_ROOT``."""

import importlib.util
import os
from pathlib import Path

_FILE = Path(__file__).resolve().parents[2] / "examples" / "penguin" / "pipeline.py"
_spec = importlib.util.spec_from_file_location("bench_penguin_pipeline", _FILE)
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)


def create_pipeline(root: str | None = None):
    root = root or os.environ.get("BEAM_ML_BENCH_ROOT", _module.DEFAULT_ROOT)
    return _module.create_pipeline(root, train_steps=int(os.environ.get("BEAM_ML_BENCH_TRAIN_STEPS", "300")))
