"""Statistics, Facets-Overview style: one row per feature with its figures and a chart; splits side by side.

Numeric features: count, missing, mean, std, zeros, min, median, max and the
histogram. Categorical (string/bytes) features: unique values, top values and
a bar chart. Features holding lists: the values-per-row figures (min, mean,
max values). Two or more datasets (train vs eval, one span vs another, one
run vs another) are shown feature by feature, their histograms overlaid, and
a figure is highlighted when it differs from the first dataset's beyond
``DIFFERENCE`` (see ``_differs``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tensorflow_metadata.proto.v0 import statistics_pb2

from beam_ml import fs
from beam_ml.metadata.store import ArtifactRecord
from beam_ml.views.base import View, chart, render

#: A change worth a highlight: of the mean, median or std in units of the larger std (min and max: five
#: times that); of a category's share of its dataset as a fraction; of the missing share, a tenth of it.
DIFFERENCE = 0.1
_TOP = 10


@dataclass
class FeatureStats:
    """The figures of one feature in one dataset, as the templates show them."""

    name: str
    kind: str  # numeric, categorical, other
    type_name: str
    count: float
    missing: float
    missing_share: float | None
    figures: dict[str, float | None] = field(default_factory=dict)
    top_values: list[tuple[str, float]] = field(default_factory=list)
    histogram: list[tuple[float, float, float]] = field(default_factory=list)  # (low, high, count)
    is_list: bool = False
    values: dict[str, float] = field(default_factory=dict)  # values per row: min, mean, max


@dataclass
class Dataset:
    """One named set of feature statistics (a split of a Statistics artifact)."""

    label: str
    num_examples: int
    features: dict[str, FeatureStats]


def load_datasets(artifact: ArtifactRecord, label_prefix: str = "") -> list[Dataset]:
    """Every split (and slice) of a Statistics artifact, labelled by split name."""
    from beam_ml.artifacts import Statistics

    datasets = []
    for split in artifact.properties.get("splits", []):
        if not fs.exists(Statistics(artifact.uri).stats_uri(split)):
            continue
        stats = Statistics(artifact.uri).load(split)
        for dataset in stats.datasets:
            label = label_prefix + split + (f" / {dataset.name}" if dataset.name else "")
            features = [_feature(f) for f in dataset.features]
            datasets.append(Dataset(label, int(dataset.num_examples), {f.name: f for f in features}))
    return datasets


def _feature(feature: statistics_pb2.FeatureNameStatistics) -> FeatureStats:
    name = ".".join(feature.path.step) if feature.path.step else feature.name
    type_name = statistics_pb2.FeatureNameStatistics.Type.Name(feature.type)
    which = feature.WhichOneof("stats")
    common = getattr(feature, which).common_stats if which in ("num_stats", "string_stats", "bytes_stats") else None
    count = common.num_non_missing if common else 0.0
    missing = common.num_missing if common else 0.0
    total = count + missing
    out = FeatureStats(name, "other", type_name, count, missing, (missing / total) if total else None)
    if common is not None:
        out.is_list = common.max_num_values > 1 or common.min_num_values != common.max_num_values
        out.values = {"min": common.min_num_values, "mean": common.avg_num_values, "max": common.max_num_values}
    if which == "num_stats":
        n = feature.num_stats
        out.kind = "numeric"
        out.figures = {"mean": n.mean, "std": n.std_dev, "zeros": n.num_zeros, "min": n.min, "median": n.median, "max": n.max}
        standard = [h for h in n.histograms if h.type == statistics_pb2.Histogram.STANDARD]
        if standard:
            out.histogram = [(b.low_value, b.high_value, b.sample_count) for b in standard[0].buckets]
    elif which == "string_stats":
        s = feature.string_stats
        out.kind = "categorical"
        out.figures = {"unique": s.unique, "avg length": s.avg_length}
        values = s.rank_histogram.buckets or []
        if values:
            out.top_values = [(b.label, b.sample_count) for b in values[:_TOP]]
        else:
            out.top_values = [(v.value, v.frequency) for v in s.top_values[:_TOP]]
    return out


def _histogram_figure(features: list[tuple[str, FeatureStats]]):
    import plotly.graph_objects as go

    figure = go.Figure()
    for label, feature in features:
        if feature.kind == "numeric" and feature.histogram:
            total = sum(c for _, _, c in feature.histogram) or 1.0
            figure.add_bar(
                x=[(lo + hi) / 2 for lo, hi, _ in feature.histogram],
                y=[c / total for _, _, c in feature.histogram],
                width=[max(hi - lo, 1e-12) for lo, hi, _ in feature.histogram],
                name=label, opacity=0.6 if len(features) > 1 else 0.9,
                hovertemplate="%{x:.4g}: %{y:.1%}<extra>" + label + "</extra>",
            )
        elif feature.kind == "categorical" and feature.top_values:
            total = feature.count or 1.0
            figure.add_bar(
                x=[str(v) for v, _ in feature.top_values], y=[c / total for _, c in feature.top_values],
                name=label, hovertemplate="%{x}: %{y:.1%}<extra>" + label + "</extra>",
            )
    if not figure.data:
        return None
    figure.update_layout(barmode="overlay" if features[0][1].kind == "numeric" else "group",
                         showlegend=len(features) > 1, yaxis_tickformat=".0%",
                         legend={"orientation": "h", "y": 1.15})
    return figure


def _differs(feature: FeatureStats, base: FeatureStats) -> set[str]:
    """The figures of ``feature`` that differ from ``base``'s by more than ``DIFFERENCE``."""
    out = set()
    if (feature.missing_share is not None and base.missing_share is not None
            and abs(feature.missing_share - base.missing_share) > DIFFERENCE / 10):
        out.add("missing")  # a tenth of DIFFERENCE: one percentage point more rows missing
    if feature.kind == "numeric" and base.kind == "numeric":
        scale = max(feature.figures["std"] or 0.0, base.figures["std"] or 0.0) or 1.0
        for key in ("mean", "median", "std", "min", "max"):
            # the ends of the range move with every sample: they count from five times as far
            allowed = DIFFERENCE * scale * (5 if key in ("min", "max") else 1)
            if abs((feature.figures[key] or 0.0) - (base.figures[key] or 0.0)) > allowed:
                out.add(key)
    if feature.kind == "categorical" and base.kind == "categorical":
        if feature.figures["unique"] != base.figures["unique"]:
            out.add("unique")
        if [v for v, _ in feature.top_values[:1]] != [v for v, _ in base.top_values[:1]]:
            out.add("top")
        if _linf(feature, base) > DIFFERENCE:
            out.add("distribution")
    return out


def _linf(feature: FeatureStats, base: FeatureStats) -> float:
    """The largest difference in any top value's share of its dataset (TFDV's L-infinity distance)."""
    a = {v: c / (feature.count or 1.0) for v, c in feature.top_values}
    b = {v: c / (base.count or 1.0) for v, c in base.top_values}
    return max((abs(a.get(v, 0.0) - b.get(v, 0.0)) for v in set(a) | set(b)), default=0.0)


def datasets_view(title: str, datasets: list[Dataset]) -> View:
    """The Facets-Overview table of one or more datasets; with several, differences are highlighted."""
    names = list(dict.fromkeys(name for d in datasets for name in d.features))
    rows = []
    for name in names:
        present = [(d.label, d.features[name]) for d in datasets if name in d.features]
        base = present[0][1]
        entries = [
            {"label": label, "feature": feature, "differs": _differs(feature, base) if i else set()}
            for i, (label, feature) in enumerate(present)
        ]
        figure = _histogram_figure(present)
        rows.append({
            "name": name, "kind": base.kind, "type_name": base.type_name, "entries": entries,
            "missing_in": [d.label for d in datasets if name not in d.features],
            "chart": chart(figure, height=160, width=360) if figure is not None else None,
        })
    kinds = {kind: [r for r in rows if r["kind"] == kind] for kind in ("numeric", "categorical", "other")}
    html = render("statistics.html", datasets=datasets, kinds=kinds, compare=len(datasets) > 1, threshold=DIFFERENCE)
    return View(title, html)


def statistics_view(artifact: ArtifactRecord) -> View:
    """All splits of one Statistics artifact, side by side."""
    datasets = load_datasets(artifact)
    return datasets_view(f"Statistics {artifact.id}", datasets)


def compare_statistics(artifacts: list[ArtifactRecord]) -> View:
    """Several Statistics artifacts (run vs run, span vs span) side by side, every split of each."""
    datasets = [d for a in artifacts for d in load_datasets(a, label_prefix=f"#{a.id} ")]
    return datasets_view("Statistics " + " vs ".join(str(a.id) for a in artifacts), datasets)
