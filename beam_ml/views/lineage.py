"""The lineage of an artifact as a graph: artifacts (squares) and executions (circles), each once."""

from __future__ import annotations

from beam_ml.metadata.lineage import lineage_graph
from beam_ml.metadata.store import MetadataStore
from beam_ml.views.base import View, chart, render
from beam_ml.views.graph import Node, graph_figure
from beam_ml.views.run import STATE_COLORS, Links


def lineage_view(store: MetadataStore, artifact_id: int, links: Links | None = None, direction: str = "both") -> View:
    links = links or Links()
    graph = lineage_graph(store, artifact_id, direction)
    nodes = [
        Node(f"a{a.id}", f"{a.type_name} {a.id}", f"{a.type_name} {a.id} ({a.state})<br>{a.uri}",
             "#ffb300" if a.id == artifact_id else ("#fff59d" if a.state == "LIVE" else "#e0e0e0"),
             symbol="square", link=links.artifact(a.id))
        for a in sorted(graph.artifacts.values(), key=lambda a: a.id)
    ] + [
        Node(f"e{e.id}", e.component_id, f"{e.component_id}: execution {e.id} of {graph.runs[e.run_id]}, {e.state}",
             STATE_COLORS.get(e.state, "#bdbdbd"), link=links.execution(e.id))
        for e in sorted(graph.executions.values(), key=lambda e: e.id)
    ]
    edges = [(f"a{a}", f"e{e}") for a, e, _ in graph.inputs] + [(f"e{e}", f"a{a}") for e, a, _ in graph.outputs]
    figure, tallest = graph_figure(nodes, edges)
    html = render("lineage.html", graph=graph, links=links, chart=chart(figure, height=140 + 55 * tallest))
    return View(f"lineage of artifact {artifact_id}", html)
