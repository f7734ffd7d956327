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
from beam_ml.artifacts import Artifact, Examples, Model, Statistics
from beam_ml.context import ResolverContext
from beam_ml.dsl import Component, Input, Node, resolver
from beam_ml.metadata.store import ArtifactRecord


def _usable(record: ArtifactRecord) -> bool:
    return record.state == "LIVE" and fs.exists(record.uri)


@resolver(outputs={"model": Model})
def LatestBlessedModel(
    ctx: ResolverContext,
    candidate: Input[Model] | None = None,
    for_examples: Input[Examples] | None = None,
    *,
    pipeline: str | None = None,
) -> dict[str, ArtifactRecord | None]:
    """The Model named by the newest blessed ModelBlessing of the pipeline (or of ``pipeline``).

    ``candidate``: the model being evaluated, never its own baseline; a cached rerun
    of a blessed candidate then resolves the same baseline as before (and stays cached).

    ``for_examples``: the Examples a Trainer is about to warm start on; a model blessed
    by an Evaluator that read these same Examples (a model trained on them) is skipped,
    so rerunning an unchanged span resolves the same base model as its first run, and
    the Trainer stays cached instead of going on from its own output.
    """
    for blessing in ctx.store.live_artifacts(
        "ModelBlessing", pipeline=pipeline or ctx.pipeline_name, where={"blessed": True}
    ):
        model_id = blessing.properties.get("model_id")
        if model_id is None or (candidate is not None and model_id == candidate.id):
            continue
        if for_examples is not None and _evaluated_on(ctx, blessing, for_examples):
            continue
        try:
            model = ctx.store.get_artifact(int(model_id))
        except KeyError:
            continue
        if _usable(model) and (candidate is None or model.fingerprint != candidate.fingerprint):
            return {"model": model}
    return {"model": None}


def _evaluated_on(ctx: ResolverContext, blessing: ArtifactRecord, examples: Examples) -> bool:
    """Whether the execution that wrote ``blessing`` read ``examples`` (its lineage in the store)."""
    evaluation = ctx.store.producer_of(blessing.id)
    if evaluation is None:
        return False
    read = ctx.store.inputs_of(evaluation.id).get("examples")
    return read is not None and read.id == examples.id


@resolver(outputs={"examples": Examples})
def PreviousSpan(ctx: ResolverContext, examples: Input[Examples]) -> dict[str, ArtifactRecord | None]:
    """The Examples of the span before ``examples``' (its latest version), from the same input pattern."""
    return {"examples": _previous_span(ctx, examples, "PreviousSpan")}


@resolver(outputs={"statistics": Statistics})
def PreviousSpanStatistics(
    ctx: ResolverContext, examples: Input[Examples], *, statistics_gen: str | None = None
) -> dict[str, ArtifactRecord | None]:
    """The Statistics computed from the previous span's Examples: the control of ExampleValidator's drift check.

        previous = PreviousSpanStatistics(examples=example_gen.outputs.examples)
        ExampleValidator(statistics=..., schema=..., previous_statistics=previous.outputs.statistics)

    Found by lineage, not by path: the previous span's Examples (as ``PreviousSpan``
    picks them), then the newest LIVE Statistics written by an execution that read
    them (only executions of the component ``statistics_gen``, when given). Empty
    on the first span, or when no statistics of the previous span were kept: the
    validator then checks the schema alone.
    """
    previous = _previous_span(ctx, examples, "PreviousSpanStatistics")
    if previous is None:
        return {"statistics": None}
    found: dict[int, ArtifactRecord] = {}
    for execution in ctx.store.consumers_of(previous.id):
        if statistics_gen is not None and execution.component_id != statistics_gen:
            continue
        for output in ctx.store.outputs_of(execution.id).values():
            if output.type_name == Statistics.TYPE_NAME and _usable(output):
                found[output.id] = output
    return {"statistics": found[max(found)] if found else None}


def _previous_span(ctx: ResolverContext, examples: Examples, who: str) -> ArtifactRecord | None:
    span = examples.properties.get("span")
    if span is None:
        raise ValueError(
            f"{who}: Examples {examples.id} has no span: give its ExampleGen an input_path with {{SPAN}}"
        )
    pattern = examples.properties.get("input_pattern")
    earlier = [
        record for record in ctx.store.live_artifacts("Examples", pipeline=ctx.pipeline_name)
        if record.properties.get("input_pattern") == pattern
        and record.properties.get("span") is not None and record.properties["span"] < span and _usable(record)
    ]
    if not earlier:
        return None
    return max(earlier, key=lambda r: (r.properties["span"], r.properties.get("version") or 0, r.id))


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
