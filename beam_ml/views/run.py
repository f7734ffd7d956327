"""A run: its pipeline graph with each node's state and duration, a timeline, and the executions' outputs.

The graph's edges come from the store's events: an execution depends on the
execution of the same run that wrote (or, cached, reused) one of its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from beam_ml.metadata.store import ExecutionRecord, MetadataStore
from beam_ml.views.base import View, chart, render
from beam_ml.views.graph import Node, graph_figure

STATE_COLORS = {
    "COMPLETE": "#66bb6a", "CACHED": "#42a5f5", "RUNNING": "#ffca28",
    "FAILED": "#ef5350", "CANCELLED": "#ab47bc", "ABANDONED": "#9e9e9e",
}


class Links:
    """Where a view links an execution, artifact or lineage to: anchors inside one report page by default."""

    def execution(self, execution_id: int) -> str:
        return f"#execution-{execution_id}"

    def artifact(self, artifact_id: int) -> str:
        return f"#artifact-{artifact_id}"

    def lineage(self, artifact_id: int) -> str | None:
        return None


@dataclass
class ExecutionRow:
    execution: ExecutionRecord
    inputs: dict
    outputs: dict


def run_rows(store: MetadataStore, run_id: int) -> list[ExecutionRow]:
    return [ExecutionRow(e, store.inputs_of(e.id), store.outputs_of(e.id)) for e in store.executions_of_run(run_id)]


def run_view(store: MetadataStore, run_id: int, links: Links | None = None) -> View:
    import plotly.graph_objects as go

    links = links or Links()
    run = store.get_run(run_id)
    rows = run_rows(store, run_id)
    writer = {a.id: row.execution.id for row in rows for a in row.outputs.values()}
    edges = list(dict.fromkeys(
        (f"e{writer[a.id]}", f"e{row.execution.id}")
        for row in rows for a in row.inputs.values() if a.id in writer
    ))
    nodes = [
        Node(
            f"e{r.execution.id}",
            r.execution.component_id + (f"<br>{r.execution.duration:.1f}s" if r.execution.duration is not None else ""),
            f"{r.execution.component_id}: {r.execution.state}"
            + (f" in {r.execution.duration:.1f}s" if r.execution.duration is not None else ""),
            STATE_COLORS.get(r.execution.state, "#bdbdbd"), link=links.execution(r.execution.id),
        )
        for r in rows
    ]
    graph, tallest = graph_figure(nodes, edges)
    graph.update_layout(title="pipeline graph (colour: state; under each step: its duration)")
    start = min((r.execution.started_at for r in rows), default=run.created_at)
    timeline = go.Figure()
    for state in dict.fromkeys(r.execution.state for r in rows):
        group = [r for r in rows if r.execution.state == state]
        timeline.add_bar(
            y=[r.execution.component_id for r in group],
            x=[max(r.execution.duration or 0.0, 0.05) for r in group],
            base=[r.execution.started_at - start for r in group],
            orientation="h", name=state, marker_color=STATE_COLORS.get(state, "#bdbdbd"),
            hovertemplate="%{y}: from %{base:.1f}s, %{x:.1f}s<extra>" + state + "</extra>",
        )
    timeline.update_layout(title="timeline (seconds from the run's first step)", barmode="overlay",
                           yaxis={"autorange": "reversed", "categoryorder": "array",
                                  "categoryarray": [r.execution.component_id for r in rows]})
    html = render(
        "run.html", run=run, rows=rows, links=links,
        graph=chart(graph, height=120 + 60 * tallest),
        timeline=chart(timeline, height=80 + 22 * max(len(rows), 1)),
    )
    return View(run.label, html)
