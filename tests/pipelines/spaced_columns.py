"""A CSV whose column names contain spaces, through ExampleGen, StatisticsGen, SchemaGen and Transform.

The columns are named as in scikit-learn's breast cancer table ("mean radius").
Where TensorFlow names a placeholder after such a feature it logs "`mean
radius` is not a valid node name" and uses an unnamed one; nothing is wrong
with the data, so that belongs in the execution's log file, not on the console.

Environment: ROOT (pipeline root), CSV (the input file, written by the test).
"""

import os

from beam_ml import Pipeline
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.components.transform import Transform

MODULE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "spaced_transform.py")


def create_pipeline() -> Pipeline:
    example_gen = ExampleGen(input_path=os.environ["CSV"])
    statistics_gen = StatisticsGen(examples=example_gen.outputs.examples)
    schema_gen = SchemaGen(statistics=statistics_gen.outputs.statistics)
    transform = Transform(examples=example_gen.outputs.examples, schema=schema_gen.outputs.schema, module_file=MODULE)
    return Pipeline("spaced", root=os.environ["ROOT"], components=[example_gen, statistics_gen, schema_gen, transform])
