"""The penguin pipeline: `make demo`, on the Palmer penguins data the palmerpenguins package ships.

    python -m beam_ml.run run examples/penguin/pipeline.py --pipeline-root pipelines/penguin

ExampleGen → StatisticsGen → SchemaGen → ExampleValidator. Label: species.
"""

from __future__ import annotations

import os
from importlib import resources

from beam_ml import Pipeline
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen

DEFAULT_ROOT = os.path.join("pipelines", "penguin")


def penguins_csv() -> str:
    """The raw penguins table (344 rows; 'NA' marks a missing value)."""
    return str(resources.files("palmerpenguins") / "data" / "penguins.csv")


def create_pipeline(root: str = DEFAULT_ROOT, data: str | None = None) -> Pipeline:
    example_gen = ExampleGen(input_path=data or penguins_csv(), null_values=["", "NA"])
    statistics_gen = StatisticsGen(examples=example_gen.outputs.examples)
    schema_gen = SchemaGen(statistics=statistics_gen.outputs.statistics)
    example_validator = ExampleValidator(
        statistics=statistics_gen.outputs.statistics, schema=schema_gen.outputs.schema
    )
    return Pipeline(
        "penguin",
        root=root,
        components=[example_gen, statistics_gen, schema_gen, example_validator],
    )
