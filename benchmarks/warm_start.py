"""Warm start: span 2 of the continuous-training example trained from span 1's blessed model vs from scratch.

    python -m benchmarks.warm_start [--target ACCURACY] [--steps 5,10,20,40,80,160]

Delivers spans 1 and 2 of examples/continuous (make_spans.py) to a temporary
directory, runs the example's pipeline on span 1 (trained from scratch, blessed),
then trains span 2 both ways with more and more steps (``--steps``), through the
same Trainer and Evaluator: warm started (the pipeline as it is: base_model from
LatestBlessedModel) and from scratch (base_model unwired). The target is the
accuracy span 1's blessed model reaches on span 2's eval split (the blessing's
"no worse than the baseline"), unless ``--target`` gives one. For each way it
prints the fewest steps that reach the target, the Trainer's wall time for
that run (from the metadata store: training, export, TensorFlow's graph
building) and the accuracy; then the ratio of the Trainer times.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import tempfile
from pathlib import Path

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "continuous"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"continuous_example_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _span_2_pipeline(example, root: str, data: str, steps: int, warm: bool):
    """The example's pipeline on span 2 without its Pusher: ``steps`` train steps, warm or from scratch."""
    pipeline = example.create_pipeline(root, data, train_steps=steps)
    nodes = []
    for node in pipeline.components:
        if node.id == "Pusher" or (node.id == "BaseModel" and not warm):
            continue
        if node.id == "Trainer" and not warm:
            node = node.with_inputs(base_model=None)
        nodes.append(node)
    return pipeline.with_components(nodes)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--target", type=float, help="accuracy to reach on span 2's eval split")
    parser.add_argument("--steps", default="5,10,20,40,80,160", help="train steps to try, ascending")
    args = parser.parse_args(argv)
    ladder = [int(s) for s in args.steps.split(",")]

    from beam_ml.orchestration.runner import LocalDagRunner

    make_spans, example = _load("make_spans"), _load("pipeline")
    runner = LocalDagRunner()
    with tempfile.TemporaryDirectory(prefix="beam_ml_warm_start_") as scratch:
        data, root = str(Path(scratch, "data")), str(Path(scratch, "root"))
        make_spans.write_span(data, 1)
        first = runner.run(example.create_pipeline(root, data))
        if first.state != "COMPLETE" or not first.outputs("Evaluator")["blessing"].properties["blessed"]:
            raise SystemExit(f"span 1 was not blessed: {first.failed and first.failed.error}")
        make_spans.write_span(data, 2)
        target = args.target
        figures: dict[str, dict] = {}
        for way, warm in (("warm start", True), ("from scratch", False)):
            for steps in ladder:
                result = runner.run(_span_2_pipeline(example, root, data, steps, warm))
                if result.state != "COMPLETE":
                    raise SystemExit(f"{way}, {steps} steps: {result.failed.node_id}: {result.failed.error}")
                evaluation = result.outputs("Evaluator")["evaluation"].properties
                if target is None:  # span 1's blessed model on span 2's eval split
                    target = evaluation["baseline_overall"]["accuracy"]
                accuracy = evaluation["overall"]["accuracy"]
                trainer = result.nodes["Trainer"]
                print(f"{way}: {steps} steps: accuracy {accuracy:.4f} (target {target:.4f}), "
                      f"Trainer {trainer.elapsed:.1f}s", flush=True)
                if accuracy >= target:
                    figures[way] = {"steps": steps, "trainer_s": round(trainer.elapsed, 2), "accuracy": accuracy}
                    break
            else:
                figures[way] = {"steps": None, "trainer_s": None, "accuracy": None}
    print(json.dumps({"target_accuracy": target, **figures}, indent=2))
    warm_s, scratch_s = figures["warm start"]["trainer_s"], figures["from scratch"]["trainer_s"]
    if warm_s and scratch_s:
        print(f"from scratch / warm start, Trainer wall time to the target: {scratch_s / warm_s:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
