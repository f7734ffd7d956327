"""Transform's outputs have the same fingerprint for the same inputs, so the cache downstream holds.

TensorFlow writes a different ``saved_model.pb`` for the same graph in every
process and every trace (function counters, node order, temporary paths);
``TransformGraph.content_fingerprint`` (beam_ml.fingerprints) covers only
what the graph computes.
"""

from __future__ import annotations

import filecmp
from pathlib import Path

import pytest
from test_transform import PENGUIN_TRANSFORM, PenguinExamples

from beam_ml import Pipeline
from beam_ml.orchestration.runner import LocalDagRunner

pytest.importorskip("tensorflow_transform")


def _transform(root: Path, eval_every: int = 3):
    from beam_ml.components.transform import Transform

    gen = PenguinExamples(eval_every=eval_every)
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
    result = LocalDagRunner().run(Pipeline("fingerprint", root=str(root), components=[gen, transform]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return result.outputs("Transform")


def test_identical_inputs_give_identical_transform_fingerprints_and_other_data_does_not(tmp_path):
    first, second = _transform(tmp_path / "a"), _transform(tmp_path / "b")
    graph_a, graph_b = Path(first["transform_graph"].uri), Path(second["transform_graph"].uri)
    # The files really differ (so this test would catch a byte fingerprint) ...
    assert not filecmp.cmp(graph_a / "transform_fn" / "saved_model.pb", graph_b / "transform_fn" / "saved_model.pb",
                           shallow=False)
    # ... yet they compute the same thing, and say so.
    assert first["transform_graph"].fingerprint == second["transform_graph"].fingerprint
    assert first["transformed_examples"].fingerprint == second["transformed_examples"].fingerprint

    other = _transform(tmp_path / "c", eval_every=4)  # other training rows: other means and deviations
    assert other["transform_graph"].fingerprint != first["transform_graph"].fingerprint
