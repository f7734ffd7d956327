"""Resolvers are nodes of the graph: what they pick is a recorded input of its consumer.

A newly blessed model must re-run an Evaluator whose baseline it replaces and a
BulkInferrer that predicts with it; an unchanged resolution is served from cache.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from model_fixtures import PenguinData, PenguinModel

from beam_ml import Pipeline
from beam_ml.orchestration.runner import LocalDagRunner

pytest.importorskip("tensorflow")


def _evaluated(root: Path, quality: str, seed: int) -> Pipeline:
    from beam_ml.components.evaluator import Evaluator
    from beam_ml.components.pusher import Pusher
    from beam_ml.resolvers import LatestBlessedModel
    from beam_ml.transforms.thresholds import ChangeThreshold, ValueThreshold

    data = PenguinData()
    model = PenguinModel(quality=quality, seed=seed)
    baseline = LatestBlessedModel(candidate=model.outputs.model)
    evaluator = Evaluator(
        examples=data.outputs.examples, model=model.outputs.model, baseline_model=baseline.outputs.model,
        label="species", task="multiclass",
        thresholds=[ValueThreshold("accuracy", lower_bound=0.7),
                    ChangeThreshold("accuracy", "higher_is_better", absolute=0.05)],
    )
    pusher = Pusher(model=model.outputs.model, model_blessing=evaluator.outputs.blessing,
                    destination=str(root / "serving"))
    return Pipeline("resolved", str(root), [data, model, baseline, evaluator, pusher])


def _scoring(root: Path) -> Pipeline:
    from beam_ml.components.bulk_inferrer import BulkInferrer
    from beam_ml.resolvers import LatestBlessedModel

    data = PenguinData()
    blessed = LatestBlessedModel()
    inferrer = BulkInferrer(examples=data.outputs.examples, model=blessed.outputs.model)
    return Pipeline("resolved", str(root), [data, blessed, inferrer])


def test_a_new_blessing_reruns_the_evaluator_and_bulk_inferrer_that_used_the_old_one(tmp_path):
    runner = LocalDagRunner()
    empty = runner.run(_scoring(tmp_path))  # nothing blessed yet: the resolver's pick is empty
    assert empty.state == "FAILED" and empty.failed.node_id == "BulkInferrer"
    assert "LatestBlessedModel resolved no Model" in empty.failed.error

    def run(pipeline: Pipeline):
        result = runner.run(pipeline)
        assert result.state == "COMPLETE", result.failed and result.failed.error
        return result

    first = run(_evaluated(tmp_path, "good", 0))
    good_1 = first.outputs("PenguinModel")["model"]
    assert first.outputs("Evaluator")["blessing"].properties["blessed"] is True
    assert first.outputs("Evaluator")["blessing"].properties["baseline_model_id"] is None  # nothing blessed yet

    scored = run(_scoring(tmp_path))
    assert scored.outputs("BulkInferrer")["inference_result"].properties["model_id"] == good_1.id
    assert "BulkInferrer" in run(_scoring(tmp_path)).nodes and "BulkInferrer" not in run(_scoring(tmp_path)).ran()

    bad = run(_evaluated(tmp_path, "bad", 0))
    assert bad.outputs("Evaluator")["blessing"].properties["baseline_model_id"] == good_1.id
    assert bad.outputs("Evaluator")["blessing"].properties["blessed"] is False

    second = run(_evaluated(tmp_path, "good", 1))
    good_2 = second.outputs("PenguinModel")["model"]
    assert good_2.fingerprint != good_1.fingerprint
    blessing_2 = second.outputs("Evaluator")["blessing"].properties
    assert blessing_2["blessed"] is True and blessing_2["baseline_model_id"] == good_1.id

    # the bad model again: its Evaluator used good_1 as baseline; good_2 is the blessed one now
    bad_again = run(_evaluated(tmp_path, "bad", 0))
    assert "Evaluator" in bad_again.ran()
    assert bad_again.outputs("Evaluator")["blessing"].properties["baseline_model_id"] == good_2.id

    rescored = run(_scoring(tmp_path))
    assert "BulkInferrer" in rescored.ran()
    assert rescored.outputs("BulkInferrer")["inference_result"].properties["model_id"] == good_2.id
    assert "BulkInferrer" not in run(_scoring(tmp_path)).ran()  # an unchanged resolution is cached

    # lineage of the pushed model: its Evaluator's inputs hold the resolver's pick, by input name
    from beam_ml.metadata.lineage import upstream
    from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root

    pushed = second.outputs("Pusher")["pushed_model"]
    assert pushed.properties["pushed"] is True
    with MetadataStore(sqlite_url_for_root(str(tmp_path))) as store:
        tree = upstream(store, pushed.id)
        evaluator_inputs = tree.inputs["model_blessing"].inputs
        assert evaluator_inputs["baseline_model"].artifact.id == good_1.id
        assert evaluator_inputs["model"].artifact.id == good_2.id
        consumed = store.inputs_of(second.nodes["Evaluator"].execution.id)
        assert consumed["baseline_model"].id == good_1.id
