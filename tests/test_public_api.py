"""The package's public API: ``from beam_ml import *`` gives every name ``__all__`` promises."""

import subprocess
import sys

import beam_ml


def test_star_import_gives_every_public_name():
    # A fresh interpreter: names another test imported must not hide a missing import here.
    code = "from beam_ml import *\nimport beam_ml\nmissing = [n for n in beam_ml.__all__ if n not in globals()]\nprint(missing)\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "[]"


def test_public_names_are_the_framework_objects():
    namespace: dict = {}
    exec("from beam_ml import *", namespace)
    assert namespace["FilePattern"] is beam_ml.dsl.FilePattern
    assert namespace["Pipeline"] is beam_ml.dsl.Pipeline
    assert sorted(beam_ml.__all__) == beam_ml.__all__
