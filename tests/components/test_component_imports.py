"""Importing a component module imports neither Beam nor TensorFlow.

A pipeline file imports every component module it uses, so what those modules
import at module level is paid by every run, a fully cached rerun that runs
nothing included; Beam alone takes about two seconds. Components import Beam,
the Beam transforms and TensorFlow inside their function bodies, or through the
helper modules they import from there (listed below).
"""

import pkgutil
import subprocess
import sys

import beam_ml.components

#: Helpers that exist to hold a component's Beam steps: imported only from component bodies.
BEAM_HELPERS = {"_serving", "_writers", "examples_io"}

PROBE = (
    "import importlib, sys; "
    "[importlib.import_module(name) for name in sys.argv[1:]]; "
    "print('heavy', [m for m in ('apache_beam', 'tensorflow') if m in sys.modules])"
)


def test_component_modules_and_thresholds_import_neither_beam_nor_tensorflow():
    names = [
        f"beam_ml.components.{module.name}"
        for module in pkgutil.iter_modules(beam_ml.components.__path__)
        if module.name not in BEAM_HELPERS
    ]
    assert "beam_ml.components.evaluator" in names and "beam_ml.components.statistics_gen" in names
    names.append("beam_ml.transforms.thresholds")
    result = subprocess.run([sys.executable, "-c", PROBE, *names], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "heavy []", result.stdout
