"""TFX module files: their ``tfx`` imports resolve to beam-ml's implementations when TFX is absent
(never over a real TFX), and a module written against TFX's API tunes and trains end to end."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from test_transform import PENGUIN_TRANSFORM, PenguinExamples, penguin_splits

from beam_ml import Pipeline
from beam_ml.orchestration.runner import LocalDagRunner

MODULES = Path(__file__).resolve().parent / "modules"
TFX_STYLE_PENGUIN = str(MODULES / "tfx_style_penguin.py")

TFX_IMPORTS = """
from tfx import v1 as tfx
from tfx.components.trainer.fn_args_utils import DataAccessor, FnArgs
from tfx.components.tuner.component import TunerFnResult
import tfx as tfx_package
"""


def _run_python(code: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=cwd, check=False, capture_output=True, text=True)


def test_tfx_imports_of_a_user_module_resolve_to_beam_ml_when_tfx_is_absent(tmp_path):
    (tmp_path / "tfx_user.py").write_text(TFX_IMPORTS)
    result = _run_python(
        f"""
        import importlib.util, sys
        assert importlib.util.find_spec("tfx") is None, "this test needs TFX absent"
        from beam_ml.dsl import UserModule
        from beam_ml import training
        from beam_ml.components import tuner
        module = UserModule({str(tmp_path / "tfx_user.py")!r}).load()
        assert module.tfx.components.FnArgs is training.FnArgs
        assert module.tfx.components.DataAccessor is training.DataAccessor
        assert module.tfx.components.TunerFnResult is tuner.TunerFnResult
        assert module.FnArgs is training.FnArgs and module.DataAccessor is training.DataAccessor
        assert module.TunerFnResult is tuner.TunerFnResult
        assert not hasattr(module.tfx_package, "__file__"), "no tfx package on disk"
        print("ok")
        """,
        tmp_path,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


def test_a_tfx_name_beam_ml_does_not_provide_fails_saying_what_exists(tmp_path):
    (tmp_path / "tfx_orchestration.py").write_text("from tfx.orchestration import pipeline\n")
    (tmp_path / "tfx_attribute.py").write_text("from tfx import v1 as tfx\nX = tfx.components.Trainer\n")
    result = _run_python(
        f"""
        from beam_ml.dsl import UserModule
        for name in ("tfx_orchestration", "tfx_attribute"):
            try:
                UserModule({str(tmp_path)!r} + "/" + name + ".py").load()
            except (ImportError, AttributeError) as error:
                print(type(error).__name__, error)
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2, result.stdout
    assert lines[0].startswith("ModuleNotFoundError") and "tfx.orchestration" in lines[0]
    assert lines[1].startswith("AttributeError") and "tfx.v1.components.Trainer" in lines[1]
    for line in lines:
        assert "tfx.v1.components.FnArgs" in line and "Coming from TFX" in line


def test_an_importable_tfx_is_used_and_beam_ml_installs_none_of_its_names(tmp_path):
    fake = tmp_path / "site" / "tfx"
    (fake / "v1" / "components").mkdir(parents=True)
    (fake / "__init__.py").write_text("WHO = 'fake tfx'\n")
    (fake / "v1" / "__init__.py").write_text("from tfx.v1 import components\n")
    (fake / "v1" / "components" / "__init__.py").write_text("class FnArgs:\n    pass\n")
    (tmp_path / "tfx_user.py").write_text("from tfx import v1 as tfx\nimport tfx as tfx_package\n")
    result = _run_python(
        f"""
        import sys
        sys.path.insert(0, {str(tmp_path / "site")!r})
        from beam_ml import tfx_compat, training
        from beam_ml.dsl import UserModule
        module = UserModule({str(tmp_path / "tfx_user.py")!r}).load()
        assert module.tfx_package.WHO == "fake tfx", module.tfx_package
        assert module.tfx.components.FnArgs is not training.FnArgs
        assert module.tfx.components.FnArgs.__module__ == "tfx.v1.components"
        assert not tfx_compat.installed(), sys.meta_path
        assert tfx_compat.install() is False and not tfx_compat.installed()
        print("ok")
        """,
        tmp_path,
    )
    assert result.returncode == 0 and "ok" in result.stdout, result.stderr[-3000:]


TFX_TRANSFORM_MODULE = """
import tensorflow as tf
import tensorflow_transform as tft
from tfx import v1 as tfx
from tfx.components.trainer.fn_args_utils import FnArgs

NUMERIC = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]


def _dense(tensor, default):
    if isinstance(tensor, tf.sparse.SparseTensor):
        tensor = tf.sparse.to_dense(tf.SparseTensor(tensor.indices, tensor.values, [tensor.dense_shape[0], 1]), default)
    return tf.squeeze(tensor, axis=1)


def preprocessing_fn(inputs):
    outputs = {name + "_xf": tft.scale_to_z_score(tf.cast(_dense(inputs[name], 0), tf.float32)) for name in NUMERIC}
    outputs["species_xf"] = tft.compute_and_apply_vocabulary(_dense(inputs["species"], ""), vocab_filename="species")
    return outputs


def fn_args_type_name():
    return tfx.components.FnArgs.__name__ + " " + FnArgs.__module__
"""


def test_functions_of_a_tfx_user_module_unpickle_in_a_process_that_never_loaded_it(tmp_path):
    """Beam ships a user module's functions to worker processes by pickling them; there the module's
    name (``beam_ml_user_<hash>``) is not importable and nothing installed the ``tfx`` hook."""
    from apache_beam.internal import pickler

    from beam_ml.dsl import UserModule

    module_path = tmp_path / "tfx_transform.py"
    module_path.write_text(TFX_TRANSFORM_MODULE)
    (tmp_path / "fn.pickle").write_bytes(pickler.dumps(UserModule(str(module_path)).get("fn_args_type_name")))
    result = _run_python(
        f"""
        from apache_beam.internal import pickler
        from pathlib import Path
        fn = pickler.loads(Path({str(tmp_path / "fn.pickle")!r}).read_bytes())
        print(fn())
        """,
        tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.strip() == "FnArgs beam_ml.training"


def test_a_tfx_transform_module_runs_on_multi_process_beam_workers(tmp_path):
    """DirectRunner's multi_processing mode runs tf.Transform's DoFns, which hold the module's
    preprocessing_fn, in other processes."""
    from beam_ml.components.transform import Transform

    module_path = tmp_path / "tfx_transform.py"
    module_path.write_text(TFX_TRANSFORM_MODULE)
    gen = PenguinExamples()
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=str(module_path))
    runner = LocalDagRunner(beam_args=["--direct_num_workers=2", "--direct_running_mode=multi_processing"])
    result = runner.run(Pipeline("multi", str(tmp_path / "root"), [gen, transform]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    assert result.outputs("Transform")["transformed_examples"].properties["split_rows"] == {"train": 229, "eval": 115}


def test_fn_args_have_tfx_names_and_defaults_and_a_data_accessor_over_parquet(tmp_path):
    import tensorflow as tf
    from test_transform import write_examples, write_schema_for
    from tfx_bsl.public import tfxio

    from beam_ml.artifacts import Examples, Schema
    from beam_ml.training import build_fn_args

    splits = penguin_splits()
    examples = Examples(uri=str(tmp_path / "examples"))
    schema = Schema(uri=str(tmp_path / "schema"))
    Path(schema.uri).mkdir()
    write_examples(examples, splits)
    write_schema_for(schema, splits["train"])
    fn_args = build_fn_args("Trainer", examples, None, schema, train_split="train", eval_split="eval",
                            serving_model_dir=str(tmp_path / "serving"), model_run_dir=str(tmp_path / "run"))
    assert fn_args.custom_config is None and fn_args.hyperparameters is None
    assert fn_args.working_dir == str(tmp_path / "run")
    assert fn_args.transform_graph_path is None
    assert fn_args.schema_path == fn_args.schema_file == str(tmp_path / "schema" / "schema.pbtxt")

    options = tfxio.TensorFlowDatasetOptions(batch_size=16, label_key="species", num_epochs=1, shuffle=False)
    dataset = fn_args.data_accessor.tf_dataset_factory(fn_args.eval_files, options, fn_args.schema)
    labels, bill_lengths = [], 0
    for features, label in dataset:
        assert "species" not in features and int(tf.shape(label)[0]) <= 16
        labels.extend(label.numpy().reshape(-1).tolist())
        bill_lengths += int(tf.sparse.to_dense(features["bill_length_mm"]).shape[0]) \
            if isinstance(features["bill_length_mm"], tf.SparseTensor) else int(features["bill_length_mm"].shape[0])
    expected = splits["eval"].column("species").to_pylist()
    assert sorted(value.decode() for value in labels) == sorted(expected)
    assert bill_lengths == len(expected)
    repeated = fn_args.data_accessor.tf_dataset_factory(
        [str(Path(examples.split_uri("eval")) / "*.parquet")],
        tfxio.TensorFlowDatasetOptions(batch_size=16, label_key="species", num_epochs=2, shuffle_seed=1),
        None,
    )
    assert sum(int(tf.shape(label)[0]) for _, label in repeated) == 2 * len(expected)
    with pytest.raises(ValueError, match="drop_final_batch"):
        fn_args.data_accessor.tf_dataset_factory(
            fn_args.eval_files, tfxio.TensorFlowDatasetOptions(batch_size=4, drop_final_batch=True), None)


def test_a_module_written_against_tfx_tunes_and_trains_a_penguin_classifier(tmp_path):
    import keras_tuner
    import tensorflow as tf

    from beam_ml.components.evaluator import Evaluator, load_metrics
    from beam_ml.components.trainer import Trainer
    from beam_ml.components.transform import Transform
    from beam_ml.components.tuner import Tuner
    from beam_ml.training import load_serving_model, serialize_examples

    gen = PenguinExamples()
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
    training = {"examples": transform.outputs.transformed_examples,
                "transform_graph": transform.outputs.transform_graph,
                "module_file": TFX_STYLE_PENGUIN, "label_key": "species_xf", "eval_steps": 4}
    tuner = Tuner(**training, train_steps=30)
    trainer = Trainer(**training, hyperparameters=tuner.outputs.best_hyperparameters, train_steps=200)
    evaluator = Evaluator(examples=gen.outputs.examples, model=trainer.outputs.model, label="species_xf",
                          label_from_transform=True, task="multiclass")
    result = LocalDagRunner().run(
        Pipeline("tfx_style", str(tmp_path / "root"), [gen, transform, tuner, trainer, evaluator]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    assert result.outputs("Trainer")["model"].properties["output_kind"] == "logits"
    overall = load_metrics(result.outputs("Evaluator")["evaluation"])["Overall"]
    assert overall["accuracy"] >= 0.9 and overall["log_loss"] < 0.5, overall

    best = result.outputs("Tuner")["best_hyperparameters"]
    config = json.loads(Path(best.uri, "hyperparameters_config.json").read_text())
    restored = keras_tuner.HyperParameters.from_config(config)
    assert restored.values == json.loads(Path(best.uri, "hyperparameters.json").read_text())
    assert restored.get("units") in (8, 16) and restored.get("learning_rate") in (0.01, 0.03)

    eval_rows = penguin_splits()["eval"]
    model = load_serving_model(result.outputs("Trainer")["model"].uri)
    examples = tf.constant(serialize_examples(eval_rows))
    logits = model.signatures["serving_default"](examples=examples)["outputs"].numpy()
    labels = model.signatures["transform_features"](examples=examples)["species_xf"].numpy()
    accuracy = float(np.mean(np.argmax(logits, axis=1) == labels))
    assert accuracy == pytest.approx(overall["accuracy"], abs=1e-9)


def test_a_tf_keras_module_that_saves_its_model_as_tfx_does_is_evaluated_validated_inferred_and_pushed(tmp_path):
    """TFX 1.x module files build Keras 2 models with ``tf.keras`` (tf_keras once tensorflow_transform
    sets TF_USE_LEGACY_KERAS); the Tuner searches them with keras-tuner on tf_keras. Their run_fn
    saves the model itself (``model.save(..., signatures=...)``, a serving signature that parses
    serialized tf.Examples): the Trainer reads from the saved graph that it outputs logits, and the
    Evaluator, InfraValidator, BulkInferrer and Pusher feed it tf.Examples serialized from the rows."""
    import pyarrow.parquet as pq
    import tensorflow as tf

    from beam_ml.components.bulk_inferrer import BulkInferrer
    from beam_ml.components.evaluator import Evaluator, load_metrics
    from beam_ml.components.infra_validator import InfraValidator
    from beam_ml.components.pusher import Pusher
    from beam_ml.components.trainer import Trainer
    from beam_ml.components.transform import Transform
    from beam_ml.components.tuner import Tuner
    from beam_ml.training import serialize_examples
    from beam_ml.transforms.thresholds import ValueThreshold

    gen = PenguinExamples()
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
    training = {"examples": transform.outputs.transformed_examples,
                "transform_graph": transform.outputs.transform_graph,
                "module_file": str(MODULES / "tfx_style_penguin_keras2.py"), "label_key": "species_xf",
                "eval_steps": 4}
    tuner = Tuner(**training, train_steps=30)
    trainer = Trainer(**training, hyperparameters=tuner.outputs.best_hyperparameters, train_steps=200)
    model = trainer.outputs.model
    evaluator = Evaluator(examples=gen.outputs.examples, model=model, label="species_xf",
                          label_from_transform=True, task="multiclass", signature_name="serving_default",
                          thresholds=[ValueThreshold("accuracy", lower_bound=0.9)])
    infra = InfraValidator(model=model, examples=gen.outputs.examples)
    bulk = BulkInferrer(examples=gen.outputs.examples, model=model)
    pusher = Pusher(model=model, model_blessing=evaluator.outputs.blessing, infra_blessing=infra.outputs.blessing,
                    destination=str(tmp_path / "serving"))
    result = LocalDagRunner().run(Pipeline(
        "keras2", str(tmp_path / "root"), [gen, transform, tuner, trainer, evaluator, infra, bulk, pusher]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    best = result.outputs("Tuner")["best_hyperparameters"]
    trials = json.loads(Path(best.uri, "trials.json").read_text())
    assert len(trials) == 2 and all(t["score"] is not None for t in trials)
    keras_module = Path(result.outputs("Trainer")["model_run"].uri, "keras_module.txt").read_text()
    assert keras_module.startswith("tf_keras"), keras_module
    model_uri = result.outputs("Trainer")["model"].uri
    assert (Path(model_uri) / "Format-Serving" / "keras_metadata.pb").is_file()  # saved by tf_keras, not by us
    assert result.outputs("Trainer")["model"].properties["output_kind"] == "logits"
    overall = load_metrics(result.outputs("Evaluator")["evaluation"])["Overall"]
    assert overall["accuracy"] >= 0.9 and overall["log_loss"] < 0.5, overall
    assert result.outputs("Evaluator")["blessing"].properties["blessed"] is True

    infra_blessing = result.outputs("InfraValidator")["blessing"]
    assert infra_blessing.properties["blessed"] is True, infra_blessing.properties["reason"]
    assert infra_blessing.properties["outputs"] == {"prediction": [16, 3]}

    eval_rows = penguin_splits()["eval"]
    saved = tf.saved_model.load(str(Path(model_uri) / "Format-Serving"))
    inferred = pq.read_table(Path(result.outputs("BulkInferrer")["inference_result"].uri) / "Split-eval")
    assert inferred.num_rows == eval_rows.num_rows
    assert sorted(inferred.column("species").to_pylist()) == sorted(eval_rows.column("species").to_pylist())
    rows = inferred.select(eval_rows.column_names)
    expected = saved.signatures["serving_default"](examples=tf.constant(serialize_examples(rows)))["output_0"].numpy()
    got = np.array(inferred.column("prediction").to_pylist(), dtype=np.float32)
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)

    pushed = result.outputs("Pusher")["pushed_model"].properties
    assert pushed["pushed"] is True, pushed["reason"]
    reloaded = tf.saved_model.load(pushed["destination"])
    again = reloaded.signatures["serving_default"](examples=tf.constant(serialize_examples(rows)))["output_0"]
    np.testing.assert_allclose(again.numpy(), expected, rtol=1e-6)


def test_a_seeded_tf_keras_tuner_fn_gives_the_same_trials_in_every_run(tmp_path):
    """The tf.keras search runs in a child process; a seed the tuner_fn sets there fixes each trial's
    initial weights, so identical runs pick the same best values (unseeded, scores differed by 0.1)."""
    from beam_ml.components.transform import Transform
    from beam_ml.components.tuner import Tuner

    gen = PenguinExamples()
    transform = Transform(examples=gen.outputs.examples, schema=gen.outputs.schema, module_file=PENGUIN_TRANSFORM)
    tuners = [
        Tuner(examples=transform.outputs.transformed_examples, transform_graph=transform.outputs.transform_graph,
              module_file=str(MODULES / "tfx_style_penguin_keras2.py"), label_key="species_xf", train_steps=30,
              eval_steps=4, custom_config={"run": run}).with_id(f"Tuner{run}")  # custom_config: not cached
        for run in range(2)
    ]
    result = LocalDagRunner().run(Pipeline("seeded", str(tmp_path / "root"), [gen, transform, *tuners]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    trials = [json.loads(Path(result.outputs(tuner.id)["best_hyperparameters"].uri, "trials.json").read_text())
              for tuner in tuners]
    assert [(t["values"], t["score"]) for t in trials[0]] == [(t["values"], t["score"]) for t in trials[1]]
    assert all(t["score"] is not None for t in trials[0])


@pytest.mark.slow
def test_a_tfx_style_keras3_taxi_module_tunes_trains_and_predicts_big_tippers(shared_data, tmp_path):
    """TFX's taxi task (is the tip over 20% of the fare?) from a module file written against TFX's API:
    its preprocessing_fn derives the label, its tuner_fn and run_fn read fn_args in TFX's names, and
    its run_fn saves a Keras 3 model with ``tf.saved_model.save`` and its own tf.Example signature,
    which InfraValidator, BulkInferrer and Pusher serve."""
    import pyarrow.parquet as pq

    from beam_ml.components.bulk_inferrer import BulkInferrer
    from beam_ml.components.evaluator import Evaluator, load_metrics
    from beam_ml.components.example_gen import ExampleGen
    from beam_ml.components.infra_validator import InfraValidator
    from beam_ml.components.pusher import Pusher
    from beam_ml.components.schema_gen import SchemaGen
    from beam_ml.components.statistics_gen import StatisticsGen
    from beam_ml.components.trainer import Trainer
    from beam_ml.components.transform import Transform
    from beam_ml.components.tuner import Tuner

    module = str(MODULES / "tfx_style_taxi.py")
    gen = ExampleGen(input_path=str(shared_data / "chicago_taxi" / "data.csv"))
    statistics = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=statistics.outputs.statistics, infer_feature_shape=False)
    transform = Transform(examples=gen.outputs.examples, schema=schema.outputs.schema, module_file=module)
    training = {"examples": transform.outputs.transformed_examples,
                "transform_graph": transform.outputs.transform_graph,
                "module_file": module, "label_key": "tipped_over_20pct", "eval_steps": 10}
    tuner = Tuner(**training, train_steps=40)
    trainer = Trainer(**training, hyperparameters=tuner.outputs.best_hyperparameters, train_steps=400)
    evaluator = Evaluator(examples=gen.outputs.examples, model=trainer.outputs.model, label="tipped_over_20pct",
                          label_from_transform=True, task="binary")
    infra = InfraValidator(model=trainer.outputs.model, examples=gen.outputs.examples)
    bulk = BulkInferrer(examples=gen.outputs.examples, model=trainer.outputs.model, splits=["eval"])
    pusher = Pusher(model=trainer.outputs.model, model_blessing=evaluator.outputs.blessing,
                    infra_blessing=infra.outputs.blessing, destination=str(tmp_path / "serving"))
    result = LocalDagRunner().run(Pipeline(
        "tfx_style_taxi", str(tmp_path / "root"),
        [gen, statistics, schema, transform, tuner, trainer, evaluator, infra, bulk, pusher]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    assert result.outputs("Trainer")["model"].properties["output_kind"] == "probabilities"
    trials = json.loads(Path(result.outputs("Tuner")["best_hyperparameters"].uri, "trials.json").read_text())
    assert len(trials) == 2 and all(t["score"] is not None for t in trials)
    overall = load_metrics(result.outputs("Evaluator")["evaluation"])["Overall"]
    eval_rows = result.outputs("ExampleGen")["examples"].properties["split_rows"]["eval"]
    assert overall["example_count"] == eval_rows
    assert overall["accuracy"] >= 0.7, overall
    # About 77% of trips are not big tippers: the model must beat always answering "no".
    assert overall["accuracy"] >= (1 - overall["mean_label"]) + 0.05 and overall["auc_roc"] >= 0.85, overall
    assert result.outputs("InfraValidator")["blessing"].properties["outputs"] == {"prediction": [16]}
    inferred = pq.read_table(Path(result.outputs("BulkInferrer")["inference_result"].uri) / "Split-eval")
    assert inferred.num_rows == eval_rows
    predictions = inferred.column("prediction").to_numpy()
    assert np.all((predictions >= 0) & (predictions <= 1))
    assert abs(float(np.mean(predictions)) - overall["mean_prediction"]) < 1e-4
    assert result.outputs("Pusher")["pushed_model"].properties["pushed"] is True
