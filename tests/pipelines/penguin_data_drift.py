"""The penguin data stages with a resolver: ExampleValidator compares with the statistics of an earlier run.

``EarlierStatistics`` reads the store, so under an orchestrator it is no task of its own: the
ExampleValidator's task resolves it (``beam_ml.orchestration.node_task``). PENGUIN_DATA names the input.
"""

import importlib.util
import os

from beam_ml import Pipeline
from beam_ml.artifacts import Statistics
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.context import ResolverContext
from beam_ml.dsl import Input, resolver
from beam_ml.metadata.store import ArtifactRecord

_EXAMPLE = os.path.join(os.path.dirname(__file__), "..", "..", "examples", "penguin", "pipeline.py")
_spec = importlib.util.spec_from_file_location("penguin_example_pipeline", os.path.abspath(_EXAMPLE))
_example = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_example)


@resolver(outputs={"statistics": Statistics})
def EarlierStatistics(ctx: ResolverContext, current: Input[Statistics]) -> dict[str, ArtifactRecord | None]:
    """The newest LIVE statistics of the pipeline computed on other data than ``current``."""
    for record in ctx.store.live_artifacts("Statistics", pipeline=ctx.pipeline_name):
        if record.fingerprint != current.fingerprint:
            return {"statistics": record}
    return {"statistics": None}


_example_gen, _statistics_gen, _schema_gen, _ = _example.create_data_pipeline(
    data=os.environ.get("PENGUIN_DATA") or None
).components
_earlier = EarlierStatistics(current=_statistics_gen.outputs.statistics)
_validator = ExampleValidator(
    statistics=_statistics_gen.outputs.statistics,
    schema=_schema_gen.outputs.schema,
    previous_statistics=_earlier.outputs.statistics,
)
pipeline = Pipeline("penguin", root="pipelines/penguin", components=[_example_gen, _statistics_gen, _schema_gen, _earlier, _validator])
