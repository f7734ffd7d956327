"""The continuous-training example end to end: three spans delivered one at a time.

Span 1 is trained from scratch, blessed and pushed; span 2 warm starts from span 1's
model, is compared with it and blessed as no worse; span 3 (flipper lengths x1.1)
is stopped by ExampleValidator's drift check against span 2 (the example's policy
is on_anomalies="fail"), so nothing is trained and span 2's model stays pushed.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from beam_ml.display import summarize
from beam_ml.orchestration.runner import LocalDagRunner

pytest.importorskip("tensorflow")
pytest.importorskip("palmerpenguins", reason="the example's data is the palmerpenguins package's CSV")

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "continuous"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(f"continuous_example_{name}", EXAMPLE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def test_three_spans_blessed_warm_started_then_stopped_by_drift(tmp_path):
    from beam_ml.metadata.lineage import upstream
    from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root

    make_spans, example = _load("make_spans"), _load("pipeline")
    data, root = tmp_path / "data", tmp_path / "root"

    def run_span(span: int | None = None):
        if span is not None:
            make_spans.write_span(str(data), span)
        return LocalDagRunner().run(example.create_pipeline(str(root), str(data)))

    first = run_span(1)
    assert first.state == "COMPLETE", first.failed and first.failed.error
    assert first.outputs("ExampleGen")["examples"].properties["span"] == 1
    assert first.outputs("ExampleValidator")["anomalies"].properties["previous_statistics_id"] is None  # no span before
    model_1 = first.outputs("Trainer")["model"]
    assert model_1.properties["base_model_id"] is None  # nothing blessed yet: trained from scratch
    blessing_1 = first.outputs("Evaluator")["blessing"].properties
    assert blessing_1["blessed"] is True and blessing_1["baseline_model_id"] is None
    assert first.outputs("Pusher")["pushed_model"].properties["pushed"] is True
    statistics_1 = first.outputs("StatisticsGen")["statistics"]

    second = run_span(2)
    assert second.state == "COMPLETE", second.failed and second.failed.error
    assert second.nodes["ExampleValidator"].inputs["previous_statistics"].id == statistics_1.id
    assert second.outputs("ExampleValidator")["anomalies"].properties["anomalies"] == {"train": 0, "eval": 0}
    model_2 = second.outputs("Trainer")["model"]
    assert second.nodes["Trainer"].inputs["base_model"].id == model_1.id  # warm started from span 1's model
    assert model_2.properties["base_model_id"] == model_1.id
    assert summarize(model_2) == f"warm started from Model {model_1.id}"  # the run summary's line
    evaluation_2 = second.outputs("Evaluator")["evaluation"].properties
    assert evaluation_2["baseline_model_id"] == model_1.id  # compared with span 1's model on span 2's eval split
    assert evaluation_2["overall"]["accuracy"] >= evaluation_2["baseline_overall"]["accuracy"]
    assert second.outputs("Evaluator")["blessing"].properties["blessed"] is True
    assert summarize(second.outputs("Evaluator")["blessing"]) == f"blessed (baseline Model {model_1.id})"
    pushed_2 = second.outputs("Pusher")["pushed_model"]
    assert pushed_2.properties["pushed"] is True

    # span 2 again: its own blessed model is neither its base model nor its baseline, so all is cached
    assert run_span().ran() == []

    third = run_span(3)
    assert third.state == "FAILED" and third.failed.node_id == "ExampleValidator"
    assert third.nodes["ExampleValidator"].inputs["previous_statistics"].id == second.outputs("StatisticsGen")["statistics"].id
    error = third.failed.error
    assert "train: flipper_length_mm: The approximate Jensen-Shannon divergence between current and previous is" in error
    assert "above the threshold 0.3 of the schema's drift_comparator.jensen_shannon_divergence" in error
    assert "bill_length_mm" not in error and "body_mass_g" not in error  # only the shifted measurement drifted
    assert {third.nodes[n].state for n in ("Trainer", "Evaluator", "Pusher")} == {"SKIPPED"}
    serving = sorted(p.name for p in (root / "serving_model").iterdir() if not p.name.startswith("."))
    assert len(serving) == 2  # spans 1 and 2 pushed; span 3 was not trained

    # lineage of the pushed model: the resolvers' picks are recorded inputs of its producers
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        tree = upstream(store, pushed_2.id)
        trained = tree.inputs["model"]
        assert trained.inputs["base_model"].artifact.id == model_1.id
        assert tree.inputs["model_blessing"].inputs["baseline_model"].artifact.id == model_1.id
        validated = trained.inputs["anomalies"]
        assert validated.inputs["previous_statistics"].artifact.id == statistics_1.id
