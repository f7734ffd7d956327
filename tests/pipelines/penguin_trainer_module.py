"""The penguin module file, whose ``run_fn`` can pause once the model is saved: the moment to kill the Trainer.

TRAINER_MARKER names a local file ``run_fn`` creates after the real ``run_fn``
returned (the SavedModel sits in the Trainer's scratch directory, not yet on the
store); it then sleeps TRAINER_SLEEP seconds.
"""

import importlib.util
import os
import pathlib
import time

_UTILS = os.path.join(
    os.path.dirname(__file__), "..", "..", "examples", "penguin", "penguin_utils.py"
)
_spec = importlib.util.spec_from_file_location(
    "penguin_utils_for_trainer_faults", os.path.abspath(_UTILS)
)
_utils = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_utils)


def run_fn(fn_args):
    _utils.run_fn(fn_args)
    marker = os.environ.get("TRAINER_MARKER")
    if marker:
        pathlib.Path(marker).touch()
        time.sleep(float(os.environ.get("TRAINER_SLEEP", "0")))
