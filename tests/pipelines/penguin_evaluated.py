"""The penguin data stages, then Transform → Trainer (few steps) → Evaluator, for the orchestrator tests.

No resolver (the Evaluator has no baseline) and no Pusher: what every
orchestrator runs the same way. PENGUIN_DATA names the input.
"""

import importlib.util
import os

from beam_ml import Pipeline
from beam_ml.components.evaluator import Evaluator
from beam_ml.components.trainer import Trainer
from beam_ml.components.transform import Transform

_EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "penguin", "pipeline.py")
_spec = importlib.util.spec_from_file_location("penguin_example_pipeline", os.path.abspath(_EXAMPLE))
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)

data_stages = _example._data_stages(os.environ.get("PENGUIN_DATA") or None)
example_gen, _statistics_gen, schema_gen, _validator = data_stages
transform = Transform(examples=example_gen.outputs.examples, schema=schema_gen.outputs.schema, module_file=_example.MODULE)
trainer = Trainer(
    examples=transform.outputs.transformed_examples,
    transform_graph=transform.outputs.transform_graph,
    module_file=_example.MODULE,
    train_steps=20,
    eval_steps=None,
    label_key="species_xf",
)
evaluator = Evaluator(
    examples=example_gen.outputs.examples,
    model=trainer.outputs.model,
    label="species",
    task="multiclass",
    label_vocabulary=_example.SPECIES,
)
pipeline = Pipeline("penguin_evaluated", root="unused-root", components=[*data_stages, transform, trainer, evaluator])
