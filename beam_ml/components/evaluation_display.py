"""``beam-ml show`` renderers for the model components' artifacts.

ModelEvaluation: one table of metrics per slice (candidate, and the baseline
beside it when there was one); ModelBlessing, InfraBlessing and PushedModel:
the verdict and why. Registered on import (``beam_ml/display.py`` imports this module).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from beam_ml.artifacts import ModelEvaluation
from beam_ml.display import renderer
from beam_ml.metadata.store import ArtifactRecord


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.6g}" if isinstance(value, float) else str(value)


@renderer("ModelEvaluation")
def _evaluation(artifact: ArtifactRecord) -> Iterable[Any]:
    from rich.table import Table

    candidate = ModelEvaluation(artifact.uri).load_metrics()
    baseline = ModelEvaluation(artifact.uri).load_metrics(baseline=True)
    metric_names = list(dict.fromkeys(m for values in candidate.values() for m in values))
    title = f"metrics on split {artifact.properties.get('split', '?')} (model {artifact.properties.get('model_id')})"
    if baseline:
        title += f", baseline model {artifact.properties.get('baseline_model_id')} in brackets"
    table = Table(title=title, title_justify="left")
    table.add_column("slice")
    for name in metric_names:
        table.add_column(name, justify="right")
    for slice_name, values in candidate.items():
        cells = []
        for name in metric_names:
            cell = _fmt(values.get(name))
            if baseline:
                cell += f" ({_fmt(baseline.get(slice_name, {}).get(name))})"
            cells.append(cell)
        table.add_row(slice_name, *cells)
    yield table


@renderer("ModelBlessing")
def _blessing(artifact: ArtifactRecord) -> Iterable[Any]:
    props = artifact.properties
    verdict = "[green]BLESSED[/]" if props.get("blessed") else "[red]NOT BLESSED[/]"
    yield f"{verdict}: model {props.get('model_id')} ({props.get('model_uri')})"
    if props.get("baseline_model_id") is not None:
        yield f"baseline: model {props['baseline_model_id']} ({props.get('baseline_model_uri')})"
    else:
        yield "baseline: none"
    for reason in props.get("reasons") or []:
        yield f"  - {reason}"


@renderer("InfraBlessing")
def _infra_blessing(artifact: ArtifactRecord) -> Iterable[Any]:
    props = artifact.properties
    verdict = "[green]INFRA BLESSED[/]" if props.get("blessed") else "[red]INFRA NOT BLESSED[/]"
    yield f"{verdict}: model {props.get('model_id')}: {props.get('reason', '')}"


@renderer("PushedModel")
def _pushed(artifact: ArtifactRecord) -> Iterable[Any]:
    props = artifact.properties
    if props.get("pushed"):
        yield f"[green]pushed[/] model {props.get('model_id')} as version {props.get('version')} to {props.get('destination')}"
        if props.get("tflite_ops"):
            yield f"with model.tflite ({props['tflite_ops']}; max abs diff {_fmt(props.get('tflite_max_abs_diff'))})"
    else:
        yield f"[red]not pushed[/] model {props.get('model_id')}: {props.get('reason')}"
