"""A directed graph drawn with Plotly: nodes placed in layers by longest path from the sources.

Used by the run view (executions of a run) and the lineage view (artifacts
and executions); Plotly has no graph layout of its own, and the graphs here
are small DAGs, for which layering is the readable layout.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Horizontal room per layer, enough for a component name under its node.
LAYER_PIXELS = 120


@dataclass
class Node:
    key: str
    label: str
    hover: str
    color: str
    symbol: str = "circle"
    link: str | None = None


def layers(keys: list[str], edges: list[tuple[str, str]]) -> dict[str, int]:
    """Each node's layer: the length of the longest path reaching it (edges among ``keys`` only)."""
    parents: dict[str, list[str]] = {k: [] for k in keys}
    for source, target in edges:
        if source in parents and target in parents and source != target:
            parents[target].append(source)
    depth: dict[str, int] = {}

    def visit(key: str, trail: frozenset[str]) -> int:
        if key in depth:
            return depth[key]
        found = [visit(p, trail | {key}) + 1 for p in parents[key] if p not in trail]
        depth[key] = max(found, default=0)
        return depth[key]

    for key in keys:
        visit(key, frozenset())
    return depth


def graph_figure(nodes: list[Node], edges: list[tuple[str, str]]):
    """A Plotly figure of the DAG: left to right by layer, nodes of a layer stacked."""
    import plotly.graph_objects as go

    depth = layers([n.key for n in nodes], edges)
    column: dict[int, int] = {}
    position = {}
    for node in nodes:
        layer = depth[node.key]
        position[node.key] = (layer, -column.get(layer, 0))
        column[layer] = column.get(layer, 0) + 1
    figure = go.Figure()
    xs, ys = [], []
    for source, target in edges:
        if source in position and target in position:
            (x0, y0), (x1, y1) = position[source], position[target]
            xs += [x0, x1, None]
            ys += [y0, y1, None]
    figure.add_scatter(x=xs, y=ys, mode="lines", line={"color": "#b0bec5", "width": 1.5}, hoverinfo="skip", showlegend=False)
    for symbol in dict.fromkeys(n.symbol for n in nodes):
        group = [n for n in nodes if n.symbol == symbol]
        figure.add_scatter(
            x=[position[n.key][0] for n in group], y=[position[n.key][1] for n in group],
            mode="markers+text", text=[n.label for n in group],
            # neighbouring layers put their labels above and below, so long names do not run into each other
            textposition=["bottom center" if position[n.key][0] % 2 == 0 else "top center" for n in group],
            hovertext=[n.hover for n in group], hoverinfo="text", customdata=[n.link or "" for n in group],
            marker={"size": 18, "color": [n.color for n in group], "symbol": symbol, "line": {"width": 1, "color": "#37474f"}},
            showlegend=False,
        )
    width = max(depth.values(), default=0) + 1
    figure.update_layout(
        xaxis={"visible": False, "range": [-0.5, width - 0.5]},
        yaxis={"visible": False, "range": [-max(column.values(), default=1) + 0.3, 0.7]},
        width=max(500, LAYER_PIXELS * width),
    )
    return figure, max(column.values(), default=1)
