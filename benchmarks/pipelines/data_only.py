"""A data-only pipeline for the startup benchmark: ExampleGen → StatisticsGen → SchemaGen → ExampleValidator.

The CSV is ``$BEAM_ML_BENCH_CSV``. None of these stages may import TensorFlow.
"""

import os

from beam_ml import Pipeline
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen


def create_pipeline() -> Pipeline:
    gen = ExampleGen(input_path=os.environ["BEAM_ML_BENCH_CSV"])
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    validator = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema)
    return Pipeline("bench_data_only", root=os.environ.get("ROOT", "pipelines/bench_data_only"),
                    components=[gen, stats, schema, validator])
