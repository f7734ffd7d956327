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


@dataclass
class LineageGraph:
    """Lineage as a graph: each artifact and execution once, and the edges between them.

    The trees above repeat a shared ancestor under every path that reaches it;
    the graph names it once, which is what ``beam-ml lineage``, its ``--format
    dot`` and the HTML lineage view print.
    """

    root: int
    artifacts: dict[int, ArtifactRecord] = field(default_factory=dict)
    executions: dict[int, ExecutionRecord] = field(default_factory=dict)
    #: (artifact id, execution id, argument name): the execution read the artifact.
    inputs: set[tuple[int, int, str]] = field(default_factory=set)
    #: (execution id, artifact id, argument name): the execution wrote (or, cached, reused) the artifact.
    outputs: set[tuple[int, int, str]] = field(default_factory=set)
    #: The executions the root was made from (the rest were made from it).
    upstream_executions: set[int] = field(default_factory=set)
    #: The runs of the graph's executions: store id -> "run N of PIPELINE", as people name them.
    runs: dict[int, str] = field(default_factory=dict)

    def reads(self, execution_id: int) -> list[tuple[str, ArtifactRecord]]:
        return sorted(((n, self.artifacts[a]) for a, e, n in self.inputs if e == execution_id), key=lambda p: p[1].id)

    def writes(self, execution_id: int) -> list[tuple[str, ArtifactRecord]]:
        return sorted(((n, self.artifacts[a]) for e, a, n in self.outputs if e == execution_id), key=lambda p: p[1].id)

    def to_dot(self) -> str:
        """The graph in Graphviz's DOT language: artifacts as boxes, executions as ellipses."""

        def quote(text: str) -> str:
            return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'

        lines = ["digraph lineage {", "  rankdir=LR;", "  node [fontsize=10];"]
        for a in sorted(self.artifacts.values(), key=lambda a: a.id):
            style = ", style=bold" if a.id == self.root else ""
            label = f"{a.type_name} {a.id}\n{a.state}"
            lines.append(f"  a{a.id} [shape=box{style}, label={quote(label)}];")
        for e in sorted(self.executions.values(), key=lambda e: e.id):
            label = f"{e.component_id}\nexecution {e.id}, {self.runs[e.run_id]}\n{e.state}"
            lines.append(f"  e{e.id} [shape=ellipse, label={quote(label)}];")
        for artifact_id, execution_id, name in sorted(self.inputs):
            lines.append(f"  a{artifact_id} -> e{execution_id} [label={quote(name)}];")
        for execution_id, artifact_id, name in sorted(self.outputs):
            lines.append(f"  e{execution_id} -> a{artifact_id} [label={quote(name)}];")
        lines.append("}")
        return "\n".join(lines)


def lineage_graph(store: MetadataStore, artifact_id: int, direction: str = "both") -> LineageGraph:
    """The artifacts and executions upstream (``up``), downstream (``down``) or both of ``artifact_id``.

    Upstream follows producers only (the execution that wrote each artifact);
    downstream follows every finished consumer, cached ones included.
    """
    graph = LineageGraph(artifact_id)
    root = store.get_artifact(artifact_id)
    graph.artifacts[root.id] = root
    if direction in ("up", "both"):
        for artifact, producer in upstream(store, artifact_id).walk():
            graph.artifacts[artifact.id] = artifact
            if producer is not None:
                graph.executions[producer.id] = producer
                graph.upstream_executions.add(producer.id)
                graph.outputs.add((producer.id, artifact.id, _edge_name(store.outputs_of(producer.id), artifact.id)))
                for name, parent in store.inputs_of(producer.id).items():
                    graph.inputs.add((parent.id, producer.id, name))
    if direction in ("down", "both"):
        pending, seen = [root], set()
        while pending:
            artifact = pending.pop()
            if artifact.id in seen:
                continue
            seen.add(artifact.id)
            for consumer in store.consumers_of(artifact.id):
                graph.executions[consumer.id] = consumer
                graph.inputs.add((artifact.id, consumer.id, _edge_name(store.inputs_of(consumer.id), artifact.id)))
                for name, child in store.outputs_of(consumer.id).items():
                    graph.artifacts[child.id] = child
                    graph.outputs.add((consumer.id, child.id, name))
                    pending.append(child)
    for execution_id in graph.executions:  # every input an execution of the graph read from an artifact of the graph
        for name, artifact in store.inputs_of(execution_id).items():
            if artifact.id in graph.artifacts:
                graph.inputs.add((artifact.id, execution_id, name))
    graph.runs = {run_id: store.get_run(run_id).label for run_id in {e.run_id for e in graph.executions.values()}}
    return graph


def _edge_name(edges: dict[str, ArtifactRecord], artifact_id: int) -> str:
    return next((name for name, a in edges.items() if a.id == artifact_id), "")
