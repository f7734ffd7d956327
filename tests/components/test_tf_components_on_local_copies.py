"""The TensorFlow components through local copies (``beam_ml.local_copies``), the route an
object-store root takes: forced here on a local root, the artifacts equal a direct run's."""

from __future__ import annotations

import pytest
from model_fixtures import PenguinData, PenguinModel
from test_transform import PENGUIN_TRANSFORM, PenguinExamples

from beam_ml import InferenceResult, Pipeline, TransformGraph, local_copies
from beam_ml.orchestration.runner import LocalDagRunner


def test_tensorflow_components_through_local_copies_give_the_same_artifacts(tmp_path, monkeypatch):
    """Transform writes its graph into a scratch directory that is uploaded; the model
    components load models from downloaded copies; the artifacts equal a direct run's."""
    pytest.importorskip("tensorflow")
    from beam_ml.components.bulk_inferrer import BulkInferrer
    from beam_ml.components.infra_validator import InfraValidator
    from beam_ml.components.transform import Transform

    def pipeline(root):
        gen = PenguinExamples()
        transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
        data, model = PenguinData(), PenguinModel()
        inferrer = BulkInferrer(examples=data.outputs.examples, model=model.outputs.model)
        infra = InfraValidator(model=model.outputs.model, examples=data.outputs.examples)
        return Pipeline("copies", str(root), [gen, transform, data, model, inferrer, infra])

    direct = LocalDagRunner().run(pipeline(tmp_path / "direct"))
    assert direct.state == "COMPLETE", direct.failed and direct.failed.error
    monkeypatch.setattr(local_copies, "tensorflow_opens", lambda uri: False)
    monkeypatch.setattr(local_copies, "_copies", {})
    copied = LocalDagRunner().run(pipeline(tmp_path / "copied"))
    assert copied.state == "COMPLETE", copied.failed and copied.failed.error
    assert len(local_copies._copies) >= 1  # the model was downloaded, not opened in place

    graphs = [run.outputs("Transform")["transform_graph"] for run in (direct, copied)]
    assert graphs[0].fingerprint == graphs[1].fingerprint == TransformGraph.content_fingerprint(graphs[1].uri)
    import tensorflow_transform as tft

    assert tft.TFTransformOutput(graphs[1].uri).transformed_feature_spec()
    results = [run.outputs("BulkInferrer")["inference_result"] for run in (direct, copied)]
    tables = [InferenceResult(r.uri, r.properties).head("eval", 10**6) for r in results]
    assert tables[0].num_rows > 0 and tables[0].equals(tables[1])
    assert copied.outputs("InfraValidator")["blessing"].properties["blessed"] is True
