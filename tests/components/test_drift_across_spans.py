"""Drift against the previous span, with no hand wiring: PreviousSpanStatistics finds the statistics of
the span before in the store (by lineage) and ExampleValidator's drift comparators measure against them."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from beam_ml import Pipeline
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.schema_gen import ImportSchema
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.resolvers import PreviousSpanStatistics

SCHEMA = """
feature { name: "length" type: FLOAT
          drift_comparator { jensen_shannon_divergence { threshold: 0.1 } } }
feature { name: "colour" type: BYTES
          drift_comparator { infinity_norm { threshold: 0.15 } } }
"""


def _deliver(data: Path, span: int, *, scale: float = 1.0, colours=(0.5, 0.3, 0.2)) -> None:
    rng = np.random.default_rng(span)
    lengths = rng.normal(200.0, 14.0, 400) * scale
    picked = rng.choice(["red", "green", "blue"], 400, p=colours)
    directory = data / f"span-{span}"
    directory.mkdir(parents=True)
    lines = ["length,colour", *(f"{x:.1f},{c}" for x, c in zip(lengths, picked, strict=True))]
    (directory / "data.csv").write_text("\n".join(lines) + "\n")


def _pipeline(root: Path, data: Path, schema_file: Path, on_anomalies: str = "warn") -> Pipeline:
    gen = ExampleGen(input_path=str(data / "span-{SPAN}" / "*.csv"))
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = ImportSchema(schema_file=str(schema_file))
    previous = PreviousSpanStatistics(examples=gen.outputs.examples)
    validator = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema,
                                 previous_statistics=previous.outputs.statistics, on_anomalies=on_anomalies)
    return Pipeline("drift", str(root), [gen, stats, schema, previous, validator])


def _run(pipeline: Pipeline):
    result = LocalDagRunner().run(pipeline)
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return result


def test_drift_is_measured_against_the_previous_spans_statistics(tmp_path):
    from beam_ml.artifacts import Anomalies
    from beam_ml.transforms.validation import Measurement

    data, root, schema_file = tmp_path / "data", tmp_path / "root", tmp_path / "schema.pbtxt"
    schema_file.write_text(SCHEMA)

    _deliver(data, 1)
    first = _run(_pipeline(root, data, schema_file))
    assert first.nodes["PreviousSpanStatistics"].state == "RESOLVED"
    assert first.nodes["PreviousSpanStatistics"].outputs == {}  # the first span has no previous one
    anomalies_1 = first.outputs("ExampleValidator")["anomalies"]
    assert anomalies_1.properties["previous_statistics_id"] is None
    assert not Anomalies(anomalies_1.uri).load("train").drift_skew_info  # no drift check, no anomaly
    assert "previous_statistics" not in first.nodes["ExampleValidator"].inputs
    span_1_stats = first.outputs("StatisticsGen")["statistics"]

    _deliver(data, 2)  # the same distributions
    second = _run(_pipeline(root, data, schema_file))
    assert second.nodes["ExampleValidator"].inputs["previous_statistics"].id == span_1_stats.id
    anomalies_2 = second.outputs("ExampleValidator")["anomalies"]
    assert anomalies_2.properties["previous_statistics_id"] == span_1_stats.id
    assert anomalies_2.properties["anomalies"] == {"train": 0, "eval": 0}
    measured = {info.path.step[0]: list(info.drift_measurements)
                for info in Anomalies(anomalies_2.uri).load("train").drift_skew_info}
    assert measured["length"][0].type == Measurement.JENSEN_SHANNON_DIVERGENCE
    assert 0 < measured["length"][0].value < 0.1
    assert measured["colour"][0].type == Measurement.L_INFTY and measured["colour"][0].value < 0.15
    span_2_stats = second.outputs("StatisticsGen")["statistics"]
    with MetadataStore(sqlite_url_for_root(str(root))) as store:  # a recorded input: lineage shows it
        consumed = store.inputs_of(second.nodes["ExampleValidator"].execution.id)
        assert consumed["previous_statistics"].id == span_1_stats.id

    _deliver(data, 3, scale=1.1, colours=(0.2, 0.3, 0.5))  # lengths 10% longer, more blue than red
    third = _run(_pipeline(root, data, schema_file))
    assert third.nodes["ExampleValidator"].inputs["previous_statistics"].id == span_2_stats.id  # span 2, not 1
    anomalies_3 = Anomalies(third.outputs("ExampleValidator")["anomalies"].uri).load("train")
    length = anomalies_3.anomaly_info["length"].reason[0]
    assert "Jensen-Shannon divergence between current and previous is" in length.description
    assert "above the threshold 0.1 of the schema's drift_comparator.jensen_shannon_divergence" in length.description
    colour = anomalies_3.anomaly_info["colour"].reason[0].description
    assert "Linfty distance between current and previous" in colour and "'blue'" in colour

    # the same span with the policy "fail": the run stops at the validator, naming the feature and the figures
    failed = LocalDagRunner().run(_pipeline(root, data, schema_file, on_anomalies="fail"))
    assert failed.state == "FAILED" and failed.failed.node_id == "ExampleValidator"
    assert "train: length: The approximate Jensen-Shannon divergence between current and previous is" in failed.failed.error


def test_previous_span_statistics_only_from_the_named_statistics_gen(tmp_path):
    data, root, schema_file = tmp_path / "data", tmp_path / "root", tmp_path / "schema.pbtxt"
    schema_file.write_text(SCHEMA)
    _deliver(data, 1)
    _deliver(data, 2)
    gen = ExampleGen(input_path=str(data / "span-{SPAN}" / "*.csv"), span=1)
    _run(Pipeline("drift", str(root), [gen, StatisticsGen(examples=gen.outputs.examples)]))
    latest = ExampleGen(input_path=str(data / "span-{SPAN}" / "*.csv"))
    named = PreviousSpanStatistics(examples=latest.outputs.examples, statistics_gen="OtherStatisticsGen")
    result = _run(Pipeline("drift", str(root), [latest, named]))
    assert result.nodes["PreviousSpanStatistics"].outputs == {}  # span 1's statistics came from "StatisticsGen"
    found = _run(Pipeline("drift", str(root), [latest, named.with_params(statistics_gen="StatisticsGen")]))
    assert found.nodes["PreviousSpanStatistics"].outputs["statistics"].type_name == "Statistics"
