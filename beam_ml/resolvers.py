"""Resolvers: nodes of the graph that pick existing artifacts from the metadata store.

    latest = LatestBlessedModel(candidate=trainer.outputs.model)
    evaluator = Evaluator(model=trainer.outputs.model, baseline_model=latest.outputs.model, ...)

What a resolver picks becomes a recorded input of its consumer (an INPUT event
under the consumer's argument name), so lineage shows it and the consumer's
cache key changes when it changes: a newly blessed model re-runs the Evaluator
that compared against the old one. An empty resolution (nothing blessed yet)
is a defined state: an optional input is then None (the Evaluator judges on
value thresholds alone), and a required one fails the consumer, naming the
resolver.

Resolvers read only the store; they write nothing and record no execution.
"""

from __future__ import annotations

from typing import Any

from beam_ml import fs
from beam_ml.artifacts import Artifact, Examples, Model
from beam_ml.context import ResolverContext
from beam_ml.dsl import Component, Input, Node, resolver
from beam_ml.metadata.store import ArtifactRecord


def _usable(record: ArtifactRecord) -> bool:
    return record.state == "LIVE" and fs.exists(record.uri)


@resolver(outputs={"model": Model})
def LatestBlessedModel(
    ctx: ResolverContext, candidate: Input[Model] | None = None, *, pipeline: str | None = None
) -> dict[str, ArtifactRecord | None]:
    """The Model named by the newest blessed ModelBlessing of the pipeline (or of ``pipeline``).

    ``candidate``: the model being evaluated, never its own baseline; a cached rerun
    of a blessed candidate then resolves the same baseline as before (and stays cached).
    """
    for blessing in ctx.store.live_artifacts(
        "ModelBlessing", pipeline=pipeline or ctx.pipeline_name, where={"blessed": True}
    ):
        model_id = blessing.properties.get("model_id")
        if model_id is None or (candidate is not None and model_id == candidate.id):
            continue
        try:
            model = ctx.store.get_artifact(int(model_id))
        except KeyError:
            continue
        if _usable(model) and (candidate is None or model.fingerprint != candidate.fingerprint):
            return {"model": model}
    return {"model": None}


@resolver(outputs={"examples": Examples})
def PreviousSpan(ctx: ResolverContext, examples: Input[Examples]) -> dict[str, ArtifactRecord | None]:
    """The Examples of the span before ``examples``' (its latest version), from the same input pattern."""
    span = examples.properties.get("span")
    if span is None:
        raise ValueError(
            f"PreviousSpan: Examples {examples.id} has no span: give its ExampleGen an input_path with {{SPAN}}"
        )
    pattern = examples.properties.get("input_pattern")
    earlier = [
        record for record in ctx.store.live_artifacts("Examples", pipeline=ctx.pipeline_name)
        if record.properties.get("input_pattern") == pattern
        and record.properties.get("span") is not None and record.properties["span"] < span and _usable(record)
    ]
    if not earlier:
        return {"examples": None}
    best = max(earlier, key=lambda r: (r.properties["span"], r.properties.get("version") or 0, r.id))
    return {"examples": best}


def _latest_artifact(
    ctx: ResolverContext, *, type_name: str, where: dict[str, Any] | None = None, pipeline: str | None = None
) -> dict[str, ArtifactRecord | None]:
    found = next(
        (r for r in ctx.store.live_artifacts(type_name, pipeline=pipeline or ctx.pipeline_name, where=where)
         if _usable(r)),
        None,
    )
    return {"artifact": found}


def LatestArtifact(
    artifact_type: type[Artifact], *, where: dict[str, Any] | None = None, pipeline: str | None = None
) -> Node:
    """The newest LIVE artifact of ``artifact_type`` in the pipeline (or ``pipeline``) whose
    properties equal ``where``; output ``artifact``. Id: ``Latest<Type>``."""
    base = resolver(_latest_artifact, outputs={"artifact": artifact_type})
    node = Component(base.spec)(type_name=artifact_type.TYPE_NAME, where=where, pipeline=pipeline)
    return node.with_id(f"Latest{artifact_type.TYPE_NAME}")
