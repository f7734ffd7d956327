"""Continuous training on the penguin data: one run per new span, as TFX runs in production.

    python examples/continuous/make_spans.py pipelines/continuous-data --span 1
    python -m beam_ml.run run examples/continuous/pipeline.py --pipeline-root pipelines/continuous
    python examples/continuous/make_spans.py pipelines/continuous-data --span 2      # new data arrives
    python -m beam_ml.run run examples/continuous/pipeline.py --pipeline-root pipelines/continuous

ExampleGen reads the latest span of ``<data>/span-{SPAN}/*.csv`` (the data
directory is ``$BEAM_ML_CONTINUOUS_DATA``, default ``pipelines/continuous-data``);
StatisticsGen describes it; ExampleValidator checks it against the curated
schema (schema.pbtxt, ImportSchema) and against the statistics of the span
before (the PreviousSpanStatistics resolver: drift, with the schema's
thresholds). Transform and Trainer (the penguin model) follow; the Trainer
warm starts from the latest blessed model (fn_args.base_model), the Evaluator
blesses the new model only if it is accurate (>= 0.9) and no worse than that
model, and the Pusher pushes only a blessed model.

The anomaly policy is ``on_anomalies``: "fail" (the default here) stops the
run at ExampleValidator, so a drifted span trains nothing and the model in
serving stays the last one pushed; "warn" records the anomalies and goes on.
Set it with ``$BEAM_ML_CONTINUOUS_ON_ANOMALIES``.
"""

from __future__ import annotations

import os

from beam_ml import Pipeline
from beam_ml.components.evaluator import Evaluator
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.pusher import Pusher
from beam_ml.components.schema_gen import ImportSchema
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.components.trainer import Trainer
from beam_ml.components.transform import Transform
from beam_ml.resolvers import LatestBlessedModel, PreviousSpanStatistics
from beam_ml.transforms.thresholds import ChangeThreshold, ValueThreshold

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.join(HERE, "..", "penguin", "penguin_utils.py")
SCHEMA = os.path.join(HERE, "schema.pbtxt")
DEFAULT_ROOT = os.path.join("pipelines", "continuous")
DEFAULT_DATA = os.path.join("pipelines", "continuous-data")
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]  # penguin_utils.SPECIES, without importing TensorFlow here
NULLS = ["", "NA"]


def create_pipeline(
    root: str = DEFAULT_ROOT,
    data: str | None = None,
    *,
    train_steps: int = 100,
    on_anomalies: str | None = None,
) -> Pipeline:
    data = data or os.environ.get("BEAM_ML_CONTINUOUS_DATA", DEFAULT_DATA)
    on_anomalies = on_anomalies or os.environ.get("BEAM_ML_CONTINUOUS_ON_ANOMALIES", "fail")
    example_gen = ExampleGen(input_path=os.path.join(data, "span-{SPAN}", "*.csv"), null_values=NULLS)
    statistics_gen = StatisticsGen(examples=example_gen.outputs.examples)
    schema = ImportSchema(schema_file=SCHEMA)
    # the statistics of the span before, found in the store: the control of the drift comparators
    previous_statistics = PreviousSpanStatistics(examples=example_gen.outputs.examples)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs.statistics,
        schema=schema.outputs.schema,
        previous_statistics=previous_statistics.outputs.statistics,
        on_anomalies=on_anomalies,
    )
    transform = Transform(examples=example_gen.outputs.examples, schema=schema.outputs.schema, module_file=MODULE)
    # the model to warm start from: the latest blessed one, never one blessed on this very span
    base_model = LatestBlessedModel(for_examples=example_gen.outputs.examples).with_id("BaseModel")
    trainer = Trainer(
        examples=transform.outputs.transformed_examples,
        transform_graph=transform.outputs.transform_graph,
        base_model=base_model.outputs.model,
        anomalies=example_validator.outputs.anomalies,  # after validation; in the model's lineage
        module_file=MODULE,
        train_steps=train_steps,
        label_key="species_xf",
    )
    baseline = LatestBlessedModel(candidate=trainer.outputs.model).with_id("BaselineModel")
    evaluator = Evaluator(
        examples=example_gen.outputs.examples,
        model=trainer.outputs.model,
        baseline_model=baseline.outputs.model,
        label="species",
        task="multiclass",
        label_vocabulary=SPECIES,
        thresholds=[
            ValueThreshold("accuracy", lower_bound=0.9),
            ChangeThreshold("accuracy", direction="higher_is_better", absolute=0.0),  # no worse than the baseline
        ],
    )
    pusher = Pusher(
        model=trainer.outputs.model,
        model_blessing=evaluator.outputs.blessing,
        destination="serving_model",  # under the pipeline root
    )
    components = [example_gen, statistics_gen, schema, previous_statistics, example_validator,
                  transform, base_model, trainer, baseline, evaluator, pusher]
    return Pipeline("continuous", root=root, components=components)
