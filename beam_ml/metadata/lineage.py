"""Lineage: what an artifact was made from, and what was made from it.

Both directions are trees read from the store's events: upstream follows each
artifact to the execution that wrote it and on to that execution's inputs;
downstream follows each artifact to the executions that read it (run or
served from cache) and on to their outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from beam_ml.metadata.store import ArtifactRecord, ExecutionRecord, MetadataStore


@dataclass
class Upstream:
    """An artifact, the execution that wrote it, and the same for each of that execution's inputs."""

    artifact: ArtifactRecord
    producer: ExecutionRecord | None
    inputs: dict[str, Upstream] = field(default_factory=dict)

    def walk(self):
        """Every (artifact, producer) pair in the tree, depth first, root first."""
        yield self.artifact, self.producer
        for parent in self.inputs.values():
            yield from parent.walk()


@dataclass
class Downstream:
    """An artifact and, for each execution that read it, what that execution produced."""

    artifact: ArtifactRecord
    consumers: list[tuple[ExecutionRecord, dict[str, Downstream]]] = field(default_factory=list)

    def walk(self):
        """Every artifact in the tree, depth first, root first."""
        yield self.artifact
        for _, outputs in self.consumers:
            for child in outputs.values():
                yield from child.walk()


def upstream(store: MetadataStore, artifact_id: int) -> Upstream:
    """The chain of executions and artifacts that produced ``artifact_id``."""
    memo: dict[int, Upstream] = {}

    def visit(artifact: ArtifactRecord) -> Upstream:
        if artifact.id in memo:
            return memo[artifact.id]
        producer = store.producer_of(artifact.id)
        node = memo[artifact.id] = Upstream(artifact, producer)
        if producer is not None:
            node.inputs = {name: visit(parent) for name, parent in store.inputs_of(producer.id).items()}
        return node

    return visit(store.get_artifact(artifact_id))


def downstream(store: MetadataStore, artifact_id: int) -> Downstream:
    """Everything produced, directly or not, from ``artifact_id``."""
    seen: set[int] = set()

    def visit(artifact: ArtifactRecord) -> Downstream:
        node = Downstream(artifact)
        if artifact.id in seen:
            return node
        seen.add(artifact.id)
        for consumer in store.consumers_of(artifact.id):
            outputs = {name: visit(child) for name, child in store.outputs_of(consumer.id).items()}
            node.consumers.append((consumer, outputs))
        return node

    return visit(store.get_artifact(artifact_id))
