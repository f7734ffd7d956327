"""Evaluation, TFMA style: metrics overall and per slice, the baseline beside them, and the blessing decision.

Reads ``metrics.json`` (and ``baseline_metrics.json``) of a ModelEvaluation;
the blessing is the ModelBlessing the same Evaluator execution wrote, found
through the store. Blessings, infra blessings and pushes have small views of
their own.
"""

from __future__ import annotations

import math

from beam_ml.metadata.store import ArtifactRecord, MetadataStore
from beam_ml.views.base import View, chart, render

#: Metrics charted per slice, when the evaluation has them (the first found is charted).
_CHARTED = ("accuracy", "auc_roc", "rmse", "mae", "log_loss")


def _sibling_blessing(artifact: ArtifactRecord, store: MetadataStore | None) -> ArtifactRecord | None:
    if store is None:
        return None
    producer = store.producer_of(artifact.id)
    if producer is None:
        return None
    return next((a for a in store.outputs_of(producer.id).values() if a.type_name == "ModelBlessing"), None)


def _slice_chart(candidate: dict, baseline: dict, metric: str):
    import plotly.graph_objects as go

    slices = [s for s in candidate if metric in candidate[s]]
    figure = go.Figure()
    figure.add_bar(x=slices, y=[_finite(candidate[s][metric]) for s in slices], name="candidate")
    if baseline:
        figure.add_bar(x=slices, y=[_finite(baseline.get(s, {}).get(metric)) for s in slices], name="baseline")
    figure.update_layout(title=f"{metric} per slice", barmode="group", showlegend=bool(baseline))
    return figure


def _finite(value: float | None) -> float | None:
    return None if value is None or (isinstance(value, float) and math.isnan(value)) else value


def evaluation_view(artifact: ArtifactRecord, store: MetadataStore | None = None) -> View:
    from beam_ml.components.evaluator import load_metrics

    candidate = load_metrics(artifact.uri)
    baseline = load_metrics(artifact.uri, baseline=True)
    metric_names = list(dict.fromkeys(m for values in candidate.values() for m in values))
    charted = next((m for m in _CHARTED if m in metric_names), None)
    figure = _slice_chart(candidate, baseline, charted) if charted and candidate else None
    blessing = _sibling_blessing(artifact, store)
    html = render(
        "evaluation.html", props=artifact.properties, candidate=candidate, baseline=baseline,
        metric_names=metric_names, chart=chart(figure, height=260) if figure is not None else None,
        blessing=blessing.properties if blessing is not None else None,
    )
    return View(f"ModelEvaluation {artifact.id}", html)


def compare_evaluations(artifacts: list[ArtifactRecord]) -> View:
    """Two or more evaluations: each metric per slice, one column per evaluation, the differences highlighted."""
    from beam_ml.components.evaluator import load_metrics

    runs = [(a, load_metrics(a.uri)) for a in artifacts]
    slices = list(dict.fromkeys(s for _, m in runs for s in m))
    metric_names = list(dict.fromkeys(name for _, m in runs for values in m.values() for name in values))
    charted = next((m for m in _CHARTED if m in metric_names), None)
    figure = None
    if charted:
        import plotly.graph_objects as go

        figure = go.Figure()
        for a, metrics in runs:
            figure.add_bar(x=slices, y=[_finite(metrics.get(s, {}).get(charted)) for s in slices], name=f"#{a.id}")
        figure.update_layout(title=f"{charted} per slice", barmode="group")
    html = render("evaluation_compare.html", runs=runs, slices=slices, metric_names=metric_names,
                  chart=chart(figure, height=260) if figure is not None else None)
    return View("ModelEvaluation " + " vs ".join(str(a.id) for a, _ in runs), html)


def blessing_view(artifact: ArtifactRecord) -> View:
    return View(f"{artifact.type_name} {artifact.id}", render("blessing.html", kind=artifact.type_name, props=artifact.properties))
