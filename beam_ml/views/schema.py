"""Schema and Anomalies.

Schema: each feature's type, presence, valency and domain. Anomalies: each
one with the figure measured in the statistics the validator read and the
expectation the schema states, found through the validator's recorded inputs.
"""

from __future__ import annotations

from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2

from beam_ml import fs
from beam_ml.metadata.store import ArtifactRecord, MetadataStore
from beam_ml.views.base import View, render
from beam_ml.views.statistics import FeatureStats, load_datasets


def load_schema(artifact: ArtifactRecord) -> schema_pb2.Schema:
    from beam_ml.artifacts import Schema

    return Schema(artifact.uri).load()


def expectations(schema: schema_pb2.Schema) -> dict[str, dict[str, str]]:
    """Per feature: what the schema expects of it, in words (type, presence, valency, domain)."""
    domains = {d.name: list(d.value) for d in schema.string_domain}
    out = {}
    for feature in schema.feature:
        if feature.HasField("presence"):
            p = feature.presence
            presence = "required" if p.min_fraction == 1.0 else f"in at least {100 * p.min_fraction:.0f}% of rows"
            if p.min_count:
                presence += f", at least {p.min_count} rows"
        else:
            presence = "optional"
        if feature.HasField("shape"):
            valency = "shape [" + ", ".join(str(d.size) for d in feature.shape.dim) + "]"
        elif feature.HasField("value_count"):
            vc = feature.value_count
            valency = f"{vc.min}..{vc.max or '∞'} values"
        else:
            valency = "any number of values"
        domain = ""
        values = domains.get(feature.domain) if feature.HasField("domain") else None
        if values is None and feature.HasField("string_domain"):
            values = list(feature.string_domain.value)
        if values is not None:
            domain = ", ".join(values[:12]) + (f" (+{len(values) - 12} more)" if len(values) > 12 else "")
        elif feature.HasField("int_domain"):
            d = feature.int_domain
            domain = f"integers in [{d.min if d.HasField('min') else '-∞'}, {d.max if d.HasField('max') else '∞'}]"
        elif feature.HasField("float_domain"):
            d = feature.float_domain
            domain = f"floats in [{d.min if d.HasField('min') else '-∞'}, {d.max if d.HasField('max') else '∞'}]"
        elif feature.HasField("bool_domain"):
            domain = "true / false"
        out[feature.name] = {
            "type": schema_pb2.FeatureType.Name(feature.type), "presence": presence,
            "valency": valency, "domain": domain,
        }
    return out


def schema_view(artifact: ArtifactRecord) -> View:
    schema = load_schema(artifact)
    return View(f"Schema {artifact.id}", render("schema.html", features=expectations(schema)))


def _measured(feature: FeatureStats | None, num_examples: int) -> str:
    if feature is None:
        return "absent from the statistics"
    parts = [f"present in {feature.count:,.0f} of {num_examples:,} rows"]
    if feature.missing_share:
        parts[0] += f" ({100 * (1 - feature.missing_share):.1f}%)"
    if feature.kind == "numeric":
        parts.append(f"range [{feature.figures['min']:.4g}, {feature.figures['max']:.4g}]")
    if feature.kind == "categorical":
        parts.append(f"{feature.figures['unique']:,.0f} distinct values")
    if feature.is_list:
        parts.append(f"{feature.values['min']:.0f}..{feature.values['max']:.0f} values per row")
    return "; ".join(parts)


def anomalies_view(artifact: ArtifactRecord, store: MetadataStore | None = None) -> View:
    """Each anomaly of each split: kind, description, measured figure and expectation."""
    from beam_ml.artifacts import Anomalies

    inputs = {}
    if store is not None:
        producer = store.producer_of(artifact.id)
        inputs = store.inputs_of(producer.id) if producer is not None else {}
    schema = expectations(load_schema(inputs["schema"])) if "schema" in inputs and fs.exists(inputs["schema"].uri) else {}
    stats = {}
    if "statistics" in inputs and fs.exists(inputs["statistics"].uri):
        stats = {d.label: d for d in load_datasets(inputs["statistics"])}
    splits = []
    for split in artifact.properties.get("splits", []):
        if not fs.exists(Anomalies(artifact.uri).anomalies_uri(split)):
            continue
        anomalies = Anomalies(artifact.uri).load(split)
        dataset = stats.get(split)
        rows = []
        for name, info in sorted(anomalies.anomaly_info.items()):
            measured = _measured(dataset.features.get(name), dataset.num_examples) if dataset else ""
            expected = schema.get(name)
            expectation = "; ".join(v for v in (expected or {}).values() if v) if expected else "not in the schema"
            for reason in info.reason:
                rows.append({
                    "feature": name, "kind": anomalies_pb2.AnomalyInfo.Type.Name(reason.type),
                    "severity": anomalies_pb2.AnomalyInfo.Severity.Name(info.severity),
                    "short": reason.short_description, "description": reason.description,
                    "measured": measured, "expected": expectation if schema else "",
                })
        drift = [
            {"feature": ".".join(info.path.step), "value": m.value, "threshold": m.threshold}
            for info in anomalies.drift_skew_info for m in [*info.drift_measurements, *info.skew_measurements]
        ]
        splits.append({"name": split, "rows": rows, "drift": drift})
    return View(f"Anomalies {artifact.id}", render("anomalies.html", splits=splits))
