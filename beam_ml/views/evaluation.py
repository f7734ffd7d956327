"""Evaluation, TFMA style: metrics overall and per slice, the baseline beside them, and the blessing decision.

Reads ``metrics.json`` (and ``baseline_metrics.json``) of a ModelEvaluation,
and ``plots.json`` for the ROC, precision-recall and calibration curves and the
confusion matrix (classification);
the blessing is the ModelBlessing the same Evaluator execution wrote, found
through the store. Blessings, infra blessings and pushes have small views of
their own.
"""

from __future__ import annotations

import math

from beam_ml.artifacts import ModelEvaluation
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


def _class_names(artifact: ArtifactRecord, count: int) -> list[str]:
    vocabulary = artifact.properties.get("label_vocabulary") or []
    if count == 1:  # binary: the curves are the positive class's
        return [str(vocabulary[1]) if len(vocabulary) == 2 else "positive class"]
    return [str(vocabulary[i]) if i < len(vocabulary) else f"class {i}" for i in range(count)]


def _plot_charts(artifact: ArtifactRecord, plots: dict) -> list:
    """ROC, precision-recall and calibration curves per class and the confusion matrix, of the Overall slice."""
    import plotly.graph_objects as go

    overall = plots.get("Overall") or {}
    classes = overall.get("classes") or []
    names = _class_names(artifact, len(classes))
    charts = []
    if classes:
        roc, pr, calibration = go.Figure(), go.Figure(), go.Figure()
        for name, c in zip(names, classes, strict=True):
            if not c["positives"] or not c["negatives"]:
                continue  # no curve for a class with no positives or no negatives
            roc.add_scatter(x=c["fpr"], y=c["tpr"], mode="lines", name=name)
            pr.add_scatter(x=c["tpr"], y=c["precision"], mode="lines", name=name)
            cal = c["calibration"]
            calibration.add_scatter(
                x=[(lo + hi) / 2 for lo, hi in zip(cal["bin_low"], cal["bin_high"], strict=True)], y=cal["observed"],
                mode="lines+markers", name=name, text=[f"{n:g} examples" for n in cal["count"]],
            )
        roc.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="chance")
        calibration.add_scatter(x=[0, 1], y=[0, 1], mode="lines", line={"dash": "dot", "color": "#999"}, name="perfect")
        roc.update_layout(title="ROC (Overall)", xaxis_title="false positive rate", yaxis_title="true positive rate")
        pr.update_layout(title="precision-recall (Overall)", xaxis_title="recall", yaxis_title="precision")
        calibration.update_layout(title="calibration (Overall)", xaxis_title="predicted score (bin)",
                                  yaxis_title="share of positives")
        charts += [chart(f, height=300, width=380) for f in (roc, pr, calibration)]
    matrix = overall.get("confusion_matrix")
    if matrix:
        labels = _class_names(artifact, len(matrix)) if len(matrix) > 2 else ["0", "1"]
        if len(matrix) == 2 and len(artifact.properties.get("label_vocabulary") or []) == 2:
            labels = [str(v) for v in artifact.properties["label_vocabulary"]]
        heat = go.Figure(go.Heatmap(z=matrix, x=labels, y=labels, colorscale="Blues", texttemplate="%{z:.4~g}",
                                    hovertemplate="true %{y}, predicted %{x}: %{z:.4~g}<extra></extra>"))
        heat.update_layout(title="confusion matrix (Overall)", xaxis_title="predicted", yaxis_title="true",
                           yaxis={"autorange": "reversed"})
        charts.append(chart(heat, height=300, width=380))
    return charts


def evaluation_view(artifact: ArtifactRecord, store: MetadataStore | None = None) -> View:

    candidate = ModelEvaluation(artifact.uri).load_metrics()
    baseline = ModelEvaluation(artifact.uri).load_metrics(baseline=True)
    metric_names = list(dict.fromkeys(m for values in candidate.values() for m in values))
    charted = next((m for m in _CHARTED if m in metric_names), None)
    figure = _slice_chart(candidate, baseline, charted) if charted and candidate else None
    blessing = _sibling_blessing(artifact, store)
    html = render(
        "evaluation.html", props=artifact.properties, candidate=candidate, baseline=baseline,
        metric_names=metric_names, chart=chart(figure, height=260) if figure is not None else None,
        plots=_plot_charts(artifact, ModelEvaluation(artifact.uri).load_plots()),
        blessing=blessing.properties if blessing is not None else None,
    )
    return View(f"ModelEvaluation {artifact.id}", html)


def compare_evaluations(artifacts: list[ArtifactRecord]) -> View:
    """Two or more evaluations: each metric per slice, one column per evaluation, the differences highlighted."""

    runs = [(a, ModelEvaluation(a.uri).load_metrics()) for a in artifacts]
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
