"""The penguin example end to end, as `make demo` runs it: pushed model, predictions, cache."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from beam_ml.orchestration.runner import LocalDagRunner

REPO = Path(__file__).resolve().parents[2]
PIPELINE = REPO / "examples" / "penguin" / "pipeline.py"
AFTER_TRAINING = {"Trainer", "Evaluator", "InfraValidator", "Pusher", "BulkInferrer"}


def load_example():
    sys.path.insert(0, str(PIPELINE.parent))
    try:
        import pipeline

        return pipeline
    finally:
        sys.path.pop(0)


def test_penguin_pipeline_end_to_end_then_cached_then_new_hyperparameters(tmp_path):
    root = tmp_path / "penguin"
    demo = subprocess.run(
        [sys.executable, "-m", "beam_ml.run", "run", str(PIPELINE), "--pipeline-root", str(root)],
        cwd=REPO, capture_output=True, text=True, check=False, env={**os.environ, "BEAM_ML_PENGUIN_TUNER": "0"},
    )
    assert demo.returncode == 0, demo.stderr[-3000:]
    out = demo.stdout
    accuracy = float(re.search(r"Evaluator\.evaluation: on eval: accuracy ([0-9.]+)", out).group(1))
    assert accuracy > 0.9, out
    assert "Evaluator.blessing: blessed" in out and "InfraValidator.blessing: blessed" in out
    pushed = re.search(r"Pusher\.pushed_model: pushed version (\d+) to (\S+)", out)
    assert pushed, out
    assert Path(pushed.group(2), "saved_model.pb").is_file()
    assert Path(pushed.group(2)).parent == root / "serving_model"
    assert "BulkInferrer.inference_result: rows: unlabelled 5" in out

    example = load_example()
    again = LocalDagRunner().run(example.create_pipeline(str(root), tune=False))
    assert again.state == "COMPLETE" and again.ran() == []
    predictions = pq.read_table(Path(again.outputs("BulkInferrer")["inference_result"].uri) / "Split-unlabelled")
    assert predictions.num_rows == 5
    assert "island" in predictions.column_names and "prediction" in predictions.column_names
    assert all(abs(sum(p) - 1.0) < 1e-4 for p in predictions["prediction"].to_pylist())
    # The class name and its score beside the raw output (the pipeline gives BulkInferrer the species).
    columns = ("prediction", "predicted_class", "predicted_score")
    for raw, name, score in zip(*(predictions[c].to_pylist() for c in columns), strict=True):
        assert name == example.SPECIES[max(range(len(raw)), key=raw.__getitem__)] and score == pytest.approx(max(raw))

    retrained = LocalDagRunner().run(
        example.create_pipeline(str(root), tune=False, hyperparameter_values={"units": 24})
    )
    assert retrained.state == "COMPLETE", retrained.failed and retrained.failed.error
    assert set(retrained.ran()) == AFTER_TRAINING
    assert retrained.nodes["Transform"].state == "CACHED"


QUICK_PIPELINE = """\
import importlib.util

_spec = importlib.util.spec_from_file_location("penguin_example_pipeline", {path!r})
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)


def create_pipeline():
    return _example.create_pipeline(tune=False, train_steps=5)
"""

#: Runs the CLI as `python -m beam_ml.run run FILE --pipeline-root ROOT` does, then says what it imported.
RUN_AND_REPORT_IMPORTS = (
    "import sys; from beam_ml.run import main; "
    "rc = main(['run', sys.argv[1], '--pipeline-root', sys.argv[2]]); "
    "print('heavy', [m for m in ('apache_beam', 'tensorflow') if m in sys.modules]); sys.exit(rc)"
)


@pytest.mark.slow
def test_fully_cached_rerun_of_penguin_imports_neither_beam_nor_tensorflow(tmp_path):
    """A rerun that only checks the cache must not pay Beam's and TensorFlow's imports (seconds)."""
    pipeline_file = tmp_path / "penguin_quick.py"
    pipeline_file.write_text(QUICK_PIPELINE.format(path=str(PIPELINE)))
    root = tmp_path / "penguin"
    command = [sys.executable, "-c", RUN_AND_REPORT_IMPORTS, str(pipeline_file), str(root)]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}

    first = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "(11 ran, 0 from cache)" in first.stdout, first.stdout

    rerun = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=False, env=env)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "(0 ran, 11 from cache)" in rerun.stdout, rerun.stdout
    assert "heavy []" in rerun.stdout, rerun.stdout
