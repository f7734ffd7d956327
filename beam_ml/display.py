"""Turning an artifact into something a person can read in a terminal (``beam-ml show``).

One renderer per artifact type, registered by type name; types without one
get a listing of their files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from beam_ml import fs
from beam_ml.artifacts import Anomalies, Schema, Statistics
from beam_ml.metadata.store import ArtifactRecord

Renderer = Callable[[ArtifactRecord], Iterable[Any]]
_RENDERERS: dict[str, Renderer] = {}

_MAX_FILES = 50


def renderer(type_name: str) -> Callable[[Renderer], Renderer]:
    """Register the function that renders artifacts of ``type_name``."""

    def register(fn: Renderer) -> Renderer:
        _RENDERERS[type_name] = fn
        return fn

    return register


def summarize(artifact: ArtifactRecord) -> str | None:
    """One line on what an artifact holds, from its properties alone (no file is read).

    The CLI prints it after a run for each component's outputs, so a run says
    what it produced (rows per split, accuracy, whether a model was pushed).
    """
    props = artifact.properties
    kind = artifact.type_name
    if "split_rows" in props:
        rows = ", ".join(f"{split} {n}" for split, n in props["split_rows"].items())
        rejected = f", {props['rows_rejected']} rejected" if props.get("rows_rejected") else ""
        return f"{_span_words(props)}rows: {rows}{rejected}"
    if kind == "Anomalies":
        found = {split: n for split, n in props.get("anomalies", {}).items() if n}
        line = "no anomalies" if not found else "features with anomalies: " + ", ".join(f"{s} {n}" for s, n in found.items())
        against = props.get("previous_statistics_id")
        return line if against is None else f"{line} (drift against Statistics {against})"
    if kind == "ModelEvaluation" and props.get("overall"):
        shown = {k: v for k, v in props["overall"].items() if k in ("accuracy", "auc_roc", "rmse", "log_loss") and v is not None}
        return f"on {props.get('split', 'eval')}: " + ", ".join(f"{k} {v:.4f}" for k, v in shown.items())
    if kind == "Model" and props.get("base_model_id") is not None:
        return f"warm started from Model {props['base_model_id']}"
    if kind in ("ModelBlessing", "InfraBlessing"):
        verdict = "blessed" if props.get("blessed") else "NOT blessed"
        if props.get("baseline_model_id") is not None:
            verdict += f" (baseline Model {props['baseline_model_id']})"
        why = props.get("reasons") or ([props["reason"]] if props.get("reason") and not props.get("blessed") else [])
        return verdict + (": " + "; ".join(why) if why else "")
    if kind == "PushedModel":
        if props.get("pushed"):
            return f"pushed version {props.get('version')} to {props.get('destination')}"
        return f"NOT pushed: {props.get('reason')}"
    return None


def _span_words(props: dict) -> str:
    """``span 3: `` (``spans 2-3 (v1): ``) for Examples read from span patterns, else nothing."""
    if props.get("span") is None:
        return ""
    spans = props.get("spans") or [props["span"]]
    if len(spans) == 1:
        words = f"span {spans[0]}"
    elif spans == list(range(spans[0], spans[-1] + 1)):
        words = f"spans {spans[0]}-{spans[-1]}"
    else:
        words = "spans " + ", ".join(map(str, spans))
    return words + (f" (v{props['version']})" if props.get("version") is not None else "") + ": "


def render_artifact(artifact: ArtifactRecord) -> list[Any]:
    """Rich renderables for an artifact: its type's view, or its files."""
    if not fs.exists(artifact.uri):
        return [f"[red]the artifact's files are gone: {artifact.uri}[/]"]
    fn = _RENDERERS.get(artifact.type_name, _list_files)
    return list(fn(artifact))


def _list_files(artifact: ArtifactRecord) -> Iterable[Any]:
    from rich.table import Table

    table = Table(title="files", title_justify="left", box=None)
    table.add_column("path")
    table.add_column("bytes", justify="right")
    files = list(fs.list_files(artifact.uri))
    for path in files[:_MAX_FILES]:
        size = os.path.getsize(path) if fs.is_local(path) else ""
        table.add_row(path[len(artifact.uri) :].lstrip("/"), str(size))
    if len(files) > _MAX_FILES:
        table.add_row(f"... and {len(files) - _MAX_FILES} more", "")
    yield table


def _pct(part: float, whole: float) -> str:
    return f"{100.0 * part / whole:.1f}%" if whole else ""


def _num(value: float) -> str:
    return f"{value:.6g}"


@renderer("Statistics")
def _statistics(artifact: ArtifactRecord) -> Iterable[Any]:
    from rich.table import Table
    from tensorflow_metadata.proto.v0 import statistics_pb2

    for split in artifact.properties.get("splits", []):
        stats = Statistics(artifact.uri).load(split)
        for dataset in stats.datasets:
            title = f"split {split}" + (f", slice {dataset.name}" if dataset.name else "") + f": {dataset.num_examples} examples"
            table = Table(title=title, title_justify="left")
            for column in ("feature", "type", "missing", "mean", "std", "min", "median", "max", "unique", "top values"):
                table.add_column(column, justify="left" if column in ("feature", "type", "top values") else "right")
            for feature in dataset.features:
                name = ".".join(feature.path.step) if feature.path.step else feature.name  # a struct member: c.f1
                kind = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
                if feature.HasField("num_stats"):
                    n = feature.num_stats
                    common = n.common_stats
                    table.add_row(
                        name, kind, _pct(common.num_missing, common.num_missing + common.num_non_missing),
                        _num(n.mean), _num(n.std_dev), _num(n.min), _num(n.median), _num(n.max), "", "",
                    )
                elif feature.HasField("string_stats"):
                    s = feature.string_stats
                    top = ", ".join(f"{v.value} ({int(v.frequency)})" for v in s.top_values[:3])
                    table.add_row(
                        name, kind, _pct(s.common_stats.num_missing,
                                         s.common_stats.num_missing + s.common_stats.num_non_missing),
                        "", "", "", "", "", str(s.unique), top,
                    )
                else:
                    table.add_row(name, kind, "", "", "", "", "", "", "", "")
            yield table


@renderer("Schema")
def _schema(artifact: ArtifactRecord) -> Iterable[Any]:
    from rich.table import Table
    from tensorflow_metadata.proto.v0 import schema_pb2

    schema = Schema(artifact.uri).load()
    domains = {d.name: d for d in schema.string_domain}
    table = Table(title=f"schema: {len(schema.feature)} features", title_justify="left")
    for column in ("feature", "type", "presence", "valency", "domain"):
        table.add_column(column)
    for feature in schema.feature:
        presence = "required" if feature.presence.min_fraction == 1.0 else "optional"
        if feature.HasField("shape"):
            valency = "shape [" + ", ".join(str(d.size) for d in feature.shape.dim) + "]"
        elif feature.HasField("value_count"):
            valency = f"{feature.value_count.min}..{feature.value_count.max or '∞'} values"
        else:
            valency = ""
        domain = ""
        if feature.HasField("domain") and feature.domain in domains:
            values = list(domains[feature.domain].value)
            domain = ", ".join(values[:5]) + (f" (+{len(values) - 5})" if len(values) > 5 else "")
        elif feature.HasField("string_domain"):
            domain = ", ".join(list(feature.string_domain.value)[:5])
        elif feature.HasField("int_domain"):
            d = feature.int_domain
            domain = f"int [{d.min if d.HasField('min') else ''}, {d.max if d.HasField('max') else ''}]"
        table.add_row(feature.name, schema_pb2.FeatureType.Name(feature.type), presence, valency, domain)
    yield table


@renderer("Anomalies")
def _anomalies(artifact: ArtifactRecord) -> Iterable[Any]:
    from rich.table import Table
    from tensorflow_metadata.proto.v0 import anomalies_pb2

    for split in artifact.properties.get("splits", []):
        anomalies = Anomalies(artifact.uri).load(split)
        if not anomalies.anomaly_info:
            yield f"split {split}: no anomalies"
            continue
        table = Table(title=f"split {split}: {len(anomalies.anomaly_info)} features with anomalies", title_justify="left")
        for column in ("feature", "kind", "description"):
            table.add_column(column)
        for name, info in sorted(anomalies.anomaly_info.items()):
            for reason in info.reason:
                kind = anomalies_pb2.AnomalyInfo.Type.Name(reason.type)
                table.add_row(name, kind, reason.description)
        yield table


# Renderers that live beside their components; imported last, since they use the decorator above.
import beam_ml.components.evaluation_display  # noqa: E402, F401
