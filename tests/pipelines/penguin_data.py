"""The penguin example's data stages (no TensorFlow) for the CLI tests: PENGUIN_DATA names the input."""

import importlib.util
import os

_EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "penguin", "pipeline.py")
_spec = importlib.util.spec_from_file_location("penguin_example_pipeline", os.path.abspath(_EXAMPLE))
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)

pipeline = _example.create_data_pipeline(data=os.environ.get("PENGUIN_DATA") or None)
