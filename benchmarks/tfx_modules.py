"""Wall time of Tuner → Trainer for TFX-style module files: Keras 3 against Keras 2 (``tf.keras``).

    python -m benchmarks.tfx_modules            # 2 runs of each module, alternating
    python -m benchmarks.tfx_modules --runs 3

A Keras 2 module's search runs in a child process whose keras-tuner is bound to tf_keras
(beam_ml/components/_tuning.py); this measures what that costs. The penguin data goes through
ExampleGen → StatisticsGen → SchemaGen → Transform once; then each run executes the Tuner
(2 trials) and the Trainer of tests/components/modules/tfx_style_penguin.py (Keras 3) or
tfx_style_penguin_keras2.py (Keras 2) on the same transformed examples, alternating modules so
that drift in the machine's load falls on both. Each run passes its own ``custom_config`` (which
the modules ignore) so that its Tuner and Trainer execute instead of coming from the cache. The
Evaluator runs after the timed part and gives each run's accuracy on the eval split.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

from beam_ml import Pipeline
from beam_ml.components.evaluator import Evaluator, load_metrics
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.components.trainer import Trainer
from beam_ml.components.transform import Transform
from beam_ml.components.tuner import Tuner
from beam_ml.orchestration.runner import LocalDagRunner

REPO = Path(__file__).resolve().parents[1]
MODULES = REPO / "tests" / "components" / "modules"
PENGUIN_TRANSFORM = MODULES / "penguin_transform.py"
TRAINING_MODULES = {"Keras 3": MODULES / "tfx_style_penguin.py", "Keras 2": MODULES / "tfx_style_penguin_keras2.py"}
TUNER_STEPS, TRAIN_STEPS, EVAL_STEPS = 30, 200, 4


def _penguin_example():
    """examples/penguin/pipeline.py, for where the penguin CSV is and how its nulls are written."""
    spec = importlib.util.spec_from_file_location("bench_tfx_penguin", REPO / "examples" / "penguin" / "pipeline.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _data_stages() -> list:
    penguin = _penguin_example()
    gen = ExampleGen(input_path=penguin.penguins_csv(), null_values=penguin.NULLS)
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics, infer_feature_shape=False)
    transform = Transform(examples=gen.outputs.examples, schema=schema.outputs.schema,
                          module_file=str(PENGUIN_TRANSFORM))
    return [gen, stats, schema, transform]


def _model_stages(data: list, module: Path, run: int) -> tuple[list, list]:
    gen, transform = data[0], data[-1]
    training = {"examples": transform.outputs.transformed_examples,
                "transform_graph": transform.outputs.transform_graph, "module_file": str(module),
                "label_key": "species_xf", "eval_steps": EVAL_STEPS, "custom_config": {"benchmark_run": run}}
    tuner = Tuner(**training, train_steps=TUNER_STEPS)
    trainer = Trainer(**training, hyperparameters=tuner.outputs.best_hyperparameters, train_steps=TRAIN_STEPS)
    evaluator = Evaluator(examples=gen.outputs.examples, model=trainer.outputs.model, label="species_xf",
                          label_from_transform=True, task="multiclass")
    return [tuner, trainer], [evaluator]


def _run(pipeline: Pipeline):
    result = LocalDagRunner().run(pipeline)
    if result.state != "COMPLETE":
        raise RuntimeError(f"{pipeline.name} failed: {result.failed and result.failed.error}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=2, help="runs of each module (at least 2)")
    args = parser.parse_args()
    if args.runs < 2:
        parser.error("--runs must be at least 2")
    walls: dict[str, list[float]] = {name: [] for name in TRAINING_MODULES}
    accuracies: dict[str, list[float]] = {name: [] for name in TRAINING_MODULES}
    with tempfile.TemporaryDirectory() as root:
        data = _data_stages()
        _run(Pipeline("tfx_modules", root, data))
        for run in range(args.runs):
            for name, module in TRAINING_MODULES.items():
                timed, evaluation = _model_stages(data, module, run)
                started = time.perf_counter()
                _run(Pipeline("tfx_modules", root, data + timed))
                walls[name].append(time.perf_counter() - started)
                result = _run(Pipeline("tfx_modules", root, data + timed + evaluation))
                accuracies[name].append(load_metrics(result.outputs("Evaluator")["evaluation"])["Overall"]["accuracy"])
                print(f"run {run + 1} {name}: Tuner → Trainer {walls[name][-1]:.1f} s, "
                      f"accuracy {accuracies[name][-1]:.4f}", flush=True)
    print("\n| module | runs | Tuner → Trainer wall (s), each | median (s) | accuracy, each |\n|---|---:|---|---:|---|")
    for name, module in TRAINING_MODULES.items():
        each = ", ".join(f"{wall:.1f}" for wall in walls[name])
        accuracy = ", ".join(f"{value:.4f}" for value in accuracies[name])
        print(f"| {name} ({module.name}) | {args.runs} | {each} | {statistics.median(walls[name]):.1f} | {accuracy} |")


if __name__ == "__main__":
    main()
