"""The penguin data stages over span directories, for the ``beam-ml watch`` tests.

``SPAN_DATA/span-N/*.csv`` holds the spans (tests write them from the shared
penguin data); ``ROOT`` names the pipeline root. Data stages only: no
TensorFlow, so a run takes seconds.
"""

import os

from beam_ml import Pipeline
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen

example_gen = ExampleGen(input_path=os.path.join(os.environ["SPAN_DATA"], "span-{SPAN}", "*.csv"))
statistics_gen = StatisticsGen(examples=example_gen.outputs.examples)
schema_gen = SchemaGen(statistics=statistics_gen.outputs.statistics)
pipeline = Pipeline("penguin_spans", root=os.environ["ROOT"], components=[example_gen, statistics_gen, schema_gen])
