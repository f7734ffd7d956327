"""Evaluator, InfraValidator, Pusher and BulkInferrer through the real runner.

Two runs of one pipeline share a store (module-scoped, to load TensorFlow and
the models once):

1. a good model (fixture Gaussian classifier, ~95% accurate): evaluated with
   slices and thresholds (no baseline yet, it is the first), infra-validated,
   pushed twice (with TFLite, then without) and a broken model dir
   infra-validated beside it;
2. a much worse model: the Evaluator's baseline is run 1's blessed model (a
   LatestBlessedModel resolver picks it), it does not bless it, and the Pusher
   does not push it; a BulkInferrer predicts with the latest blessed model
   (another LatestBlessedModel resolver).
"""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from model_fixtures import ISLANDS, NUMERIC, SPECIES, BrokenModel, PenguinData, PenguinModel

from beam_ml import Pipeline
from beam_ml.orchestration.runner import LocalDagRunner

pytest.importorskip("tensorflow")

THRESHOLDS_ACCURACY_FLOOR = 0.7


def _pipelines(root: Path, destination: Path) -> tuple[Pipeline, Pipeline]:
    from beam_ml.components.bulk_inferrer import BulkInferrer
    from beam_ml.components.evaluator import Evaluator
    from beam_ml.components.infra_validator import InfraValidator
    from beam_ml.components.pusher import Pusher
    from beam_ml.resolvers import LatestBlessedModel
    from beam_ml.transforms.thresholds import ChangeThreshold, ValueThreshold

    data = PenguinData()
    good = PenguinModel(quality="good")
    baseline = LatestBlessedModel(candidate=good.outputs.model)
    evaluator = Evaluator(
        examples=data.outputs.examples,
        model=good.outputs.model,
        baseline_model=baseline.outputs.model,
        label="species",
        task="multiclass",
        slice_features=["island"],
        thresholds=[
            ValueThreshold("accuracy", lower_bound=THRESHOLDS_ACCURACY_FLOOR),
            ChangeThreshold("accuracy", "higher_is_better", absolute=0.05),
            ChangeThreshold("log_loss", "lower_is_better", relative=0.5),
        ],
    )
    infra = InfraValidator(model=good.outputs.model, examples=data.outputs.examples, canary_rows=8)
    broken = BrokenModel()
    infra_broken = InfraValidator(model=broken.outputs.model, examples=data.outputs.examples).with_id("InfraBroken")
    pusher = Pusher(
        model=good.outputs.model,
        model_blessing=evaluator.outputs.blessing,
        infra_blessing=infra.outputs.blessing,
        examples=data.outputs.examples,
        destination=str(destination),
        tflite=True,
    )
    pusher_again = pusher.with_params(tflite=False).with_id("PusherAgain")
    first = Pipeline(
        "penguin_models", str(root),
        [data, good, baseline, evaluator, infra, broken, infra_broken, pusher, pusher_again],
    )

    bad = good.with_params(quality="bad")
    blessed = LatestBlessedModel().with_id("LatestBlessed")
    bulk = BulkInferrer(examples=data.outputs.examples, model=blessed.outputs.model)
    good_again = good.with_id("GoodModel")
    explicit = evaluator.with_inputs(model=bad.outputs.model, baseline_model=good_again.outputs.model).with_id(
        "EvaluatorExplicit"
    )
    second = Pipeline(
        "penguin_models",
        str(root),
        [data, bad, baseline, evaluator, pusher.with_inputs(infra_blessing=None), blessed, bulk, good_again, explicit],
    )
    return first, second


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("models")
    destination = tmp / "serving"
    first, second = _pipelines(tmp / "root", destination)
    runner = LocalDagRunner()
    result_1 = runner.run(first)
    assert result_1.state == "COMPLETE", result_1.failed and result_1.failed.error
    result_2 = runner.run(second)
    assert result_2.state == "COMPLETE", result_2.failed and result_2.failed.error
    return result_1, result_2, destination


def _sklearn_metrics(eval_table: pa.Table, probabilities: np.ndarray, rows: np.ndarray) -> dict[str, float]:
    from sklearn.metrics import accuracy_score, log_loss

    labels = np.array([SPECIES.index(s) for s in eval_table.column("species").to_pylist()])[rows]
    p = probabilities[rows].astype(np.float64)
    return {
        "accuracy": accuracy_score(labels, p.argmax(axis=1)),
        "log_loss": log_loss(labels, p, labels=[0, 1, 2]),
        "example_count": float(len(rows)),
    }


def test_evaluator_metrics_equal_sklearn_overall_and_per_slice(runs):
    from beam_ml.components._serving import predict_in_process
    from beam_ml.components.evaluator import load_metrics
    from beam_ml.training import serving_path

    result_1, _, _ = runs
    examples = result_1.outputs("PenguinData")["examples"]
    model = result_1.outputs("PenguinModel")["model"]
    evaluation = result_1.outputs("Evaluator")["evaluation"]
    eval_table = pq.read_table(Path(examples.uri) / "Split-eval")
    scored = predict_in_process(serving_path(model.uri), eval_table)
    probabilities = np.asarray(scored.column("prediction").combine_chunks().flatten()).reshape(-1, 3)

    metrics = load_metrics(evaluation.uri)
    islands = np.array(eval_table.column("island").to_pylist())
    expected = {"Overall": np.arange(eval_table.num_rows)}
    expected.update({f"island={name}": np.flatnonzero(islands == name) for name in ISLANDS})
    assert set(metrics) == set(expected)
    for slice_name, rows in expected.items():
        want = _sklearn_metrics(eval_table, probabilities, rows)
        got = metrics[slice_name]
        assert got["accuracy"] == want["accuracy"], slice_name
        assert got["example_count"] == want["example_count"], slice_name
        assert math.isclose(got["log_loss"], want["log_loss"], rel_tol=1e-6, abs_tol=1e-6), slice_name
    assert evaluation.properties["overall"]["accuracy"] == metrics["Overall"]["accuracy"]
    assert metrics["Overall"]["accuracy"] > 0.9


def test_good_model_is_blessed_and_pushed_to_new_versions(runs):
    result_1, _, destination = runs
    model = result_1.outputs("PenguinModel")["model"]
    blessing = result_1.outputs("Evaluator")["blessing"]
    assert blessing.properties["blessed"] is True, blessing.properties["reasons"]
    assert blessing.properties["model_id"] == model.id
    assert blessing.properties["baseline_model_id"] is None  # the first model of the pipeline
    assert (Path(blessing.uri) / "BLESSED").is_file()

    pushed = result_1.outputs("Pusher")["pushed_model"].properties
    again = result_1.outputs("PusherAgain")["pushed_model"].properties
    assert pushed["pushed"] is True and again["pushed"] is True
    assert again["version"] > pushed["version"]  # same second or not: never the same version
    for props in (pushed, again):
        assert props["destination"] == str(destination / str(props["version"]))
        assert (Path(props["destination"]) / "saved_model.pb").is_file()
        assert (Path(props["destination"]) / "variables").is_dir()
    assert (Path(pushed["destination"]) / "model.tflite").is_file()
    assert not (Path(again["destination"]) / "model.tflite").exists()
    assert sorted(p.name for p in destination.iterdir()) == sorted([str(pushed["version"]), str(again["version"])])


def test_worse_model_is_not_blessed_and_not_pushed(runs):
    result_1, result_2, destination = runs
    good = result_1.outputs("PenguinModel")["model"]
    bad = result_2.outputs("PenguinModel")["model"]
    assert bad.id != good.id
    blessing = result_2.outputs("Evaluator")["blessing"]
    assert blessing.properties["blessed"] is False
    assert blessing.properties["baseline_model_id"] == good.id  # picked by the resolver
    assert (Path(blessing.uri) / "NOT_BLESSED").is_file()
    reasons = " ".join(blessing.properties["reasons"])
    assert "accuracy on slice 'Overall'" in reasons and "baseline" in reasons
    evaluation = result_2.outputs("Evaluator")["evaluation"]
    assert evaluation.properties["baseline_overall"]["accuracy"] > evaluation.properties["overall"]["accuracy"] + 0.05
    assert (Path(evaluation.uri) / "baseline_metrics.json").is_file()

    explicit = result_2.outputs("EvaluatorExplicit")["blessing"].properties
    assert explicit["blessed"] is False
    assert explicit["baseline_model_id"] == result_2.outputs("GoodModel")["model"].id  # the wired baseline

    pushed = result_2.outputs("Pusher")["pushed_model"].properties
    assert pushed["pushed"] is False
    assert "not blessed by the Evaluator" in pushed["reason"] and "accuracy" in pushed["reason"]
    assert len(list(destination.iterdir())) == 2  # only run 1's two pushes


def test_infra_validator_blesses_the_good_model_not_the_broken_one(runs):
    result_1, _, _ = runs
    good = result_1.outputs("InfraValidator")["blessing"]
    assert good.properties["blessed"] is True, good.properties["reason"]
    assert good.properties["outputs"] == {"prediction": [8, 3]}
    assert (Path(good.uri) / "INFRA_BLESSED").is_file()
    broken = result_1.outputs("InfraBroken")["blessing"]
    assert broken.properties["blessed"] is False
    assert "failed in a fresh process" in broken.properties["reason"]
    assert (Path(broken.uri) / "INFRA_NOT_BLESSED").is_file()


def test_tflite_predictions_match_the_saved_model(runs):
    import tensorflow as tf

    from beam_ml.components._serving import predict_in_process
    from beam_ml.training import serving_path

    result_1, _, _ = runs
    props = result_1.outputs("Pusher")["pushed_model"].properties
    assert props["tflite_ops"] == "TFLITE_BUILTINS"
    assert props["tflite_max_abs_diff"] <= 1e-4
    # independently: all eval rows through the pushed model.tflite
    examples = result_1.outputs("PenguinData")["examples"]
    table = pq.read_table(Path(examples.uri) / "Split-eval")
    expected = predict_in_process(serving_path(result_1.outputs("PenguinModel")["model"].uri), table)
    expected = np.asarray(expected.column("prediction").combine_chunks().flatten()).reshape(-1, 3)
    interpreter = tf.lite.Interpreter(model_path=str(Path(props["destination"]) / "model.tflite"))
    features = {name: table.column(name).to_numpy().astype(np.float32) for name in NUMERIC}
    features["island"] = np.array([s.encode() for s in table.column("island").to_pylist()], dtype=object)
    got = interpreter.get_signature_runner("serving_default")(**features)["probabilities"]
    np.testing.assert_allclose(got, expected, atol=1e-4)


def test_bulk_inferrer_predicts_every_row_with_the_latest_blessed_model(runs):
    result_1, result_2, _ = runs
    examples = result_1.outputs("PenguinData")["examples"]
    inference = result_2.outputs("BulkInferrer")["inference_result"]
    props = inference.properties
    assert props["model_id"] == result_1.outputs("PenguinModel")["model"].id  # the blessed one, not run 2's
    assert props["rows_in"] == props["split_rows"] == {"train": 200, "eval": 300}
    execution = result_2.nodes["BulkInferrer"].execution
    assert execution.properties["rows_in"] == execution.properties["rows_out"] == 500
    for split in ("train", "eval"):
        inputs = pq.read_table(Path(examples.uri) / f"Split-{split}")
        outputs = pq.read_table(Path(inference.uri) / f"Split-{split}")
        # The Model names its classes (label_vocabulary): each row's class name and score beside the raw output.
        assert outputs.column_names == [*inputs.column_names, "prediction", "predicted_class", "predicted_score"]
        assert outputs.num_rows == inputs.num_rows
        key = ["culmen_length_mm", "body_mass_g"]
        assert outputs.select(inputs.column_names).sort_by([(k, "ascending") for k in key]).equals(
            inputs.sort_by([(k, "ascending") for k in key])
        )
        probabilities = np.asarray(outputs.column("prediction").combine_chunks().flatten()).reshape(-1, 3)
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-5)
        assert outputs.column("predicted_class").to_pylist() == [SPECIES[i] for i in probabilities.argmax(axis=1)]
        np.testing.assert_allclose(outputs.column("predicted_score").to_numpy(), probabilities.max(axis=1), rtol=1e-6)
    assert props["label_vocabulary"] == SPECIES


def test_models_fed_serialized_examples_predict_like_raw_feature_models(tmp_path):
    """Our Trainer exports ``serving_default(examples)``: the same rows give the same predictions."""
    import tensorflow as tf
    from model_fixtures import export_penguin_model, penguin_table

    from beam_ml.components._serving import predict_in_process
    from beam_ml.training import export_serving_model

    raw_path = export_penguin_model(tmp_path / "raw")
    raw_model = tf.saved_model.load(raw_path)

    class FromParsed(tf.Module):
        def __init__(self) -> None:
            super().__init__()
            self.inner = raw_model  # tracked, so its variables are saved with this module

        def __call__(self, features):
            return self.inner.signatures["serving_default"](
                **{name: features[name] for name in NUMERIC}, island=features["island"]
            )

    spec = {name: tf.io.FixedLenFeature([], tf.float32) for name in NUMERIC}
    spec["island"] = tf.io.FixedLenFeature([], tf.string, default_value="")
    spec["species"] = tf.io.FixedLenFeature([], tf.string, default_value="")
    examples_path = str(tmp_path / "examples_model")
    export_serving_model(FromParsed(), None, examples_path, raw_feature_spec=spec, label_key="species")

    table = penguin_table(40, seed=5)
    raw = predict_in_process(raw_path, table)
    fed = predict_in_process(examples_path, table, exclude_columns=["species"])
    assert fed.column_names == [*table.column_names, "prediction"]  # the "examples" column is dropped again
    np.testing.assert_allclose(
        np.asarray(fed.column("prediction").combine_chunks().flatten()),
        np.asarray(raw.column("prediction").combine_chunks().flatten()),
        rtol=1e-6,
    )


def test_show_renders_evaluation_and_verdicts(runs):
    from rich.console import Console

    import beam_ml.components.evaluation_display  # noqa: F401  (registers the renderers)
    from beam_ml.display import render_artifact

    result_1, result_2, _ = runs
    console = Console(width=200, record=True, file=io.StringIO())
    for node, output in [("Evaluator", "evaluation"), ("Evaluator", "blessing"), ("InfraBroken", "blessing")]:
        for renderable in render_artifact(result_2.outputs(node)[output] if node == "Evaluator" else result_1.outputs(node)[output]):
            console.print(renderable)
    console.print(*render_artifact(result_2.outputs("Pusher")["pushed_model"]))
    text = console.export_text()
    assert "island=Dream" in text and "accuracy" in text
    assert "NOT BLESSED" in text and "INFRA NOT BLESSED" in text and "not pushed" in text


def test_class_names_from_logits_and_from_one_binary_score():
    """Logits go through softmax (sigmoid for one score) before the score is read; a null output stays null."""
    from beam_ml.components._model_io import with_predicted_class

    logits = np.array([[2.0, 0.5, -1.0], [-3.0, 0.0, 4.0]])
    batch = pa.RecordBatch.from_arrays(
        [pa.array([list(logits[0]), list(logits[1]), None], pa.list_(pa.float32()))], ["prediction"]
    )
    named = with_predicted_class(batch, SPECIES, "logits")
    assert named.column("predicted_class").to_pylist() == ["Adelie", "Gentoo", None]
    softmax = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(named.column("predicted_score").to_pylist()[:2], softmax.max(axis=1), rtol=1e-6)
    assert named.column("predicted_score")[2].as_py() is None

    binary = pa.RecordBatch.from_arrays([pa.array([0.2, 0.9], pa.float32())], ["prediction"])
    named = with_predicted_class(binary, ["no", "yes"], "probabilities")
    assert named.column("predicted_class").to_pylist() == ["no", "yes"]
    np.testing.assert_allclose(named.column("predicted_score").to_pylist(), [0.8, 0.9], rtol=1e-6)
    with pytest.raises(ValueError, match="holds \\[3\\] scores per row but label_vocabulary names 2 classes"):
        with_predicted_class(batch, ["no", "yes"], None)
