"""The Chicago taxi pipeline: TFX's taxi example on beam-ml.

    python -m beam_ml.run run examples/chicago_taxi/pipeline.py --pipeline-root pipelines/chicago_taxi
    BEAM_ML_TAXI_DATA=/path/to/trips.csv python -m beam_ml.run run examples/chicago_taxi/pipeline.py

Reads ../shared/data/chicago_taxi/data.csv (or $BEAM_ML_TAXI_DATA), then
ExampleGen → StatisticsGen → SchemaGen → ExampleValidator → Transform →
Trainer (wide and deep) → Evaluator (binary accuracy ≥ 0.6) → InfraValidator
→ Pusher. The label, a tip of more than 20% of the fare, is computed by the
preprocessing, so the Evaluator takes it from the model's transform_features.
"""

from __future__ import annotations

import os

from beam_ml import Pipeline
from beam_ml.components.evaluator import Evaluator
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.infra_validator import InfraValidator
from beam_ml.components.pusher import Pusher
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.components.trainer import Trainer
from beam_ml.components.transform import Transform
from beam_ml.resolvers import LatestBlessedModel
from beam_ml.transforms.thresholds import ValueThreshold

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.join(HERE, "taxi_utils.py")
SHARED_DATA = os.path.normpath(os.path.join(HERE, "..", "..", "..", "shared", "data", "chicago_taxi", "data.csv"))
DEFAULT_ROOT = os.path.join("pipelines", "chicago_taxi")


def create_pipeline(root: str = DEFAULT_ROOT, data: str | None = None, *, train_steps: int = 1000) -> Pipeline:
    data = data or os.environ.get("BEAM_ML_TAXI_DATA") or SHARED_DATA
    if not os.path.exists(data) and "://" not in data:
        raise FileNotFoundError(f"taxi data not found at {data}: set BEAM_ML_TAXI_DATA or pass data=")
    example_gen = ExampleGen(input_path=data)
    statistics_gen = StatisticsGen(examples=example_gen.outputs.examples)
    schema_gen = SchemaGen(statistics=statistics_gen.outputs.statistics, infer_feature_shape=False)
    example_validator = ExampleValidator(statistics=statistics_gen.outputs.statistics, schema=schema_gen.outputs.schema)
    transform = Transform(examples=example_gen.outputs.examples, schema=schema_gen.outputs.schema, module_file=MODULE)
    trainer = Trainer(
        examples=transform.outputs.transformed_examples,
        transform_graph=transform.outputs.transform_graph,
        module_file=MODULE,
        train_steps=train_steps,
        eval_steps=None,
        label_key="big_tipper",
    )
    # the newest blessed model before this one: a recorded input of the Evaluator (lineage, cache key)
    baseline = LatestBlessedModel(candidate=trainer.outputs.model)
    evaluator = Evaluator(
        examples=example_gen.outputs.examples,
        model=trainer.outputs.model,
        baseline_model=baseline.outputs.model,
        label="big_tipper",
        label_from_transform=True,
        task="binary",
        slice_features=["trip_start_hour"],
        thresholds=[ValueThreshold("accuracy", lower_bound=0.6)],
    )
    infra_validator = InfraValidator(model=trainer.outputs.model, examples=example_gen.outputs.examples)
    pusher = Pusher(
        model=trainer.outputs.model,
        model_blessing=evaluator.outputs.blessing,
        infra_blessing=infra_validator.outputs.blessing,
        destination="serving_model",
    )
    return Pipeline(
        "chicago_taxi",
        root=root,
        components=[example_gen, statistics_gen, schema_gen, example_validator, transform, trainer,
                    baseline, evaluator, infra_validator, pusher],
    )
