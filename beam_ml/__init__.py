"""beam-ml: ML pipelines on Apache Beam.

The public entry points are re-exported here so a pipeline file needs one
import line: ``from beam_ml import component, Input, Output, Pipeline``.
"""

__version__ = "0.1.0"

from beam_ml.artifacts import (
    Anomalies,
    Artifact,
    Examples,
    HyperParameters,
    InferenceResult,
    InfraBlessing,
    Model,
    ModelBlessing,
    ModelEvaluation,
    ModelRun,
    PushedModel,
    Schema,
    Statistics,
    TransformCache,
    TransformGraph,
)
from beam_ml.context import ExecutionContext
from beam_ml.dsl import (
    FilePattern,
    Input,
    Output,
    Pipeline,
    PipelineDefinitionError,
    UserModule,
    component,
)

__all__ = [
    "Anomalies",
    "Artifact",
    "Examples",
    "ExecutionContext",
    "FilePattern",
    "HyperParameters",
    "InferenceResult",
    "InfraBlessing",
    "Input",
    "Model",
    "ModelBlessing",
    "ModelEvaluation",
    "ModelRun",
    "Output",
    "Pipeline",
    "PipelineDefinitionError",
    "PushedModel",
    "Schema",
    "Statistics",
    "TransformCache",
    "TransformGraph",
    "UserModule",
    "component",
]
