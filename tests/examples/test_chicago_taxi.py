"""The Chicago taxi example end to end on the shared data: binary accuracy of at least 0.6."""

import sys
from pathlib import Path

from beam_ml.orchestration.runner import LocalDagRunner

PIPELINE_DIR = Path(__file__).resolve().parents[2] / "examples" / "chicago_taxi"


def test_taxi_pipeline_reaches_the_accuracy_threshold(shared_data, tmp_path):
    sys.path.insert(0, str(PIPELINE_DIR))
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("taxi_pipeline", PIPELINE_DIR / "pipeline.py")
        taxi = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(taxi)
    finally:
        sys.path.pop(0)
    pipeline = taxi.create_pipeline(str(tmp_path / "taxi"), str(shared_data / "chicago_taxi" / "data.csv"), train_steps=400)
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error
    evaluation = result.outputs("Evaluator")["evaluation"].properties
    assert evaluation["overall"]["accuracy"] >= 0.6
    assert evaluation["overall"]["example_count"] == result.outputs("ExampleGen")["examples"].properties["split_rows"]["eval"]
    assert any(s.startswith("trip_start_hour=") for s in evaluation["slices"])
    assert result.outputs("Evaluator")["blessing"].properties["blessed"] is True
    pushed = result.outputs("Pusher")["pushed_model"].properties
    assert pushed["pushed"] and Path(pushed["destination"], "saved_model.pb").is_file()
