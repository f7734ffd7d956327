"""The penguin pipeline, `make demo`: TFX's whole lifecycle on the Palmer penguins data.

    python -m beam_ml.run run examples/penguin/pipeline.py --pipeline-root pipelines/penguin
    BEAM_ML_PENGUIN_TUNER=1 python -m beam_ml.run run examples/penguin/pipeline.py   # with the Tuner

ExampleGen → StatisticsGen → SchemaGen → ExampleValidator → Transform → (Tuner) →
Trainer → Evaluator → InfraValidator → Pusher, then BulkInferrer predicts the
species of a few unlabelled penguins (data/unlabelled.csv). The labelled data is
the raw table the palmerpenguins package ships (344 rows, 'NA' for missing), so
the pipeline runs on a fresh clone. Label: species.
"""

from __future__ import annotations

import importlib.util
import os

from beam_ml import Pipeline
from beam_ml.components.bulk_inferrer import BulkInferrer
from beam_ml.components.evaluator import Evaluator
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.infra_validator import InfraValidator
from beam_ml.components.pusher import Pusher
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.components.trainer import Trainer
from beam_ml.components.transform import Transform
from beam_ml.components.tuner import Tuner
from beam_ml.resolvers import LatestBlessedModel
from beam_ml.transforms.thresholds import ChangeThreshold, ValueThreshold

HERE = os.path.dirname(os.path.abspath(__file__))
MODULE = os.path.join(HERE, "penguin_utils.py")
UNLABELLED = os.path.join(HERE, "data", "unlabelled.csv")
DEFAULT_ROOT = os.path.join("pipelines", "penguin")
SPECIES = ["Adelie", "Chinstrap", "Gentoo"]  # penguin_utils.SPECIES, without importing TensorFlow here
NULLS = ["", "NA"]


def penguins_csv() -> str:
    """The raw penguins table (344 rows; 'NA' marks a missing value).

    Found from the package's location without importing it: palmerpenguins imports
    pandas (most of a second), which a fully cached rerun would otherwise pay for.
    """
    spec = importlib.util.find_spec("palmerpenguins")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the penguin example needs the palmerpenguins package (its data)")
    return os.path.join(spec.submodule_search_locations[0], "data", "penguins.csv")


def create_data_pipeline(root: str = DEFAULT_ROOT, data: str | None = None) -> Pipeline:
    """Only the data stages (ExampleGen → StatisticsGen → SchemaGen → ExampleValidator): no TensorFlow."""
    return Pipeline("penguin", root=root, components=_data_stages(data))


def _data_stages(data: str | None) -> list:
    example_gen = ExampleGen(input_path=data or penguins_csv(), null_values=NULLS)
    statistics_gen = StatisticsGen(examples=example_gen.outputs.examples)
    # Measurements are missing for a few penguins: no fixed shape, so Transform fills them in.
    schema_gen = SchemaGen(statistics=statistics_gen.outputs.statistics, infer_feature_shape=False)
    example_validator = ExampleValidator(statistics=statistics_gen.outputs.statistics, schema=schema_gen.outputs.schema)
    return [example_gen, statistics_gen, schema_gen, example_validator]


def create_pipeline(
    root: str = DEFAULT_ROOT,
    data: str | None = None,
    *,
    tune: bool | None = None,
    train_steps: int = 300,
    hyperparameter_values: dict | None = None,
) -> Pipeline:
    tune = os.environ.get("BEAM_ML_PENGUIN_TUNER") == "1" if tune is None else tune
    example_gen, statistics_gen, schema_gen, example_validator = _data_stages(data)
    transform = Transform(examples=example_gen.outputs.examples, schema=schema_gen.outputs.schema, module_file=MODULE)
    training = {
        "examples": transform.outputs.transformed_examples,
        "transform_graph": transform.outputs.transform_graph,
        "module_file": MODULE,
        "train_steps": train_steps,
        "eval_steps": None,
        "label_key": "species_xf",
    }
    components = [example_gen, statistics_gen, schema_gen, example_validator, transform]
    if tune:
        tuner = Tuner(**{**training, "train_steps": max(train_steps // 3, 1)}, custom_config={"max_trials": 4})
        trainer = Trainer(**training, hyperparameters=tuner.outputs.best_hyperparameters,
                          hyperparameter_values=hyperparameter_values)
        components.append(tuner)
    else:
        trainer = Trainer(**training, hyperparameter_values=hyperparameter_values)
    # the newest blessed model before this one: a recorded input of the Evaluator (lineage, cache key)
    baseline = LatestBlessedModel(candidate=trainer.outputs.model)
    evaluator = Evaluator(
        examples=example_gen.outputs.examples,
        model=trainer.outputs.model,
        baseline_model=baseline.outputs.model,
        label="species",
        task="multiclass",
        label_vocabulary=SPECIES,
        slice_features=["island"],
        thresholds=[
            ValueThreshold("accuracy", lower_bound=0.9),
            ChangeThreshold("accuracy", direction="higher_is_better", absolute=0.02),
        ],
    )
    infra_validator = InfraValidator(model=trainer.outputs.model, examples=example_gen.outputs.examples)
    pusher = Pusher(
        model=trainer.outputs.model,
        model_blessing=evaluator.outputs.blessing,
        infra_blessing=infra_validator.outputs.blessing,
        destination="serving_model",  # under the pipeline root
    )
    unlabelled_gen = ExampleGen(input_path={"unlabelled": UNLABELLED}, null_values=NULLS).with_id("UnlabelledExampleGen")
    bulk_inferrer = BulkInferrer(
        examples=unlabelled_gen.outputs.examples, model=trainer.outputs.model, label_vocabulary=SPECIES
    )
    components += [trainer, baseline, evaluator, infra_validator, pusher, unlabelled_gen, bulk_inferrer]
    return Pipeline("penguin", root=root, components=components)
