"""The whole penguin pipeline with its root on an object store (SeaweedFS's S3 gateway, tests/conftest.py).

One run on S3 and one on a local root are shared by the module's tests: every
component completes on S3, the artifacts equal the local run's, a second run is
fully cached, ``show``/``lineage`` read the remote artifacts and the pushed model
(Pusher's destination is under the S3 root) loads from the store. Then ``kill -9``
during the Trainer on S3 (after training, and in the middle of writing the model):
the rerun completes and no LIVE artifact points at an incomplete prefix.
"""

from __future__ import annotations

import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from beam_ml import fs
from beam_ml.metadata.store import LIVE, MetadataStore

REPO = Path(__file__).resolve().parents[2]
PENGUIN = REPO / "examples" / "penguin" / "pipeline.py"
TRAINER_STEPS = REPO / "tests" / "pipelines" / "penguin_trainer_steps.py"
ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "BEAM_ML_PENGUIN_TUNER": "0"}
COMPONENTS = 11  # the penguin pipeline without the Tuner

pytestmark = pytest.mark.slow


def cli(
    *args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 1500
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "beam_ml.run", *args], cwd=cwd, capture_output=True, text=True, check=False,
        timeout=timeout, env={**os.environ, **ENV, **(env or {})},
    )  # fmt: skip


def objects(server, bucket_url: str) -> list[str]:
    """Every key in a bucket (listed with boto3, beside Beam)."""
    bucket = bucket_url[len("s3://") :]
    pages = server.client().get_paginator("list_objects_v2").paginate(Bucket=bucket)
    return [entry["Key"] for page in pages for entry in page.get("Contents", [])]


def latest_outputs(store_url: str) -> dict[str, dict[str, str]]:
    """component -> output name -> URI, for the LIVE outputs of the store's latest run."""
    with MetadataStore(store_url) as store:
        run = store.list_runs(limit=1)[0]
        return {
            execution.component_id: {
                name: a.uri for name, a in store.outputs_of(execution.id).items()
            }
            for execution in store.executions_of_run(run.id)
        }


def files_under(uri: str) -> dict[str, bytes]:
    """Relative name -> bytes of every file under an artifact URI, local or remote."""
    found = {}
    for path in fs.list_files(uri):
        with fs.open_read(path) as handle:
            found[path[len(uri) :].lstrip("/")] = handle.read()
    return found


def split_rows(uri: str) -> dict[str, int]:
    """Split directory -> rows of its Parquet files."""
    rows: dict[str, int] = {}
    for name, data in files_under(uri).items():
        if name.endswith(".parquet"):
            split = name.split("/")[0]
            rows[split] = rows.get(split, 0) + pq.read_table(io.BytesIO(data)).num_rows
    return rows


def accuracy(stdout: str) -> float:
    return float(re.search(r"Evaluator\.evaluation: on eval: accuracy ([0-9.]+)", stdout).group(1))


@pytest.fixture(scope="module")
def penguin_runs(s3_server, tmp_path_factory):
    """The penguin pipeline on S3 twice (the second from cache), then on a local root."""
    work = tmp_path_factory.mktemp("penguin-on-s3")
    bucket = s3_server.create_bucket(f"penguin-{os.getpid()}")
    flags = s3_server.beam_flags()
    store = f"sqlite:///{work}/remote-store/metadata.sqlite"
    remote = [
        "run",
        str(PENGUIN),
        "--pipeline-root",
        f"{bucket}/penguin",
        "--metadata-url",
        store,
        "--",
        *flags,
    ]
    first = cli(*remote, cwd=work)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-5000:]
    again = cli(*remote, cwd=work)
    local = cli("run", str(PENGUIN), "--pipeline-root", str(work / "local"), cwd=work)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-5000:]
    fs.configure(flags)
    return {
        "work": work, "bucket": bucket, "flags": flags, "store": store, "first": first, "again": again, "local": local,
        "local_store": f"sqlite:///{work}/local/metadata.sqlite",
    }  # fmt: skip


def test_every_component_completes_on_s3_and_writes_only_to_the_store(penguin_runs, s3_server):
    run = penguin_runs
    assert f"({COMPONENTS} ran, 0 from cache)" in run["first"].stdout, run["first"].stdout
    outputs = latest_outputs(run["store"])
    assert len(outputs) == COMPONENTS
    uris = [uri for produced in outputs.values() for uri in produced.values()]
    assert uris and all(uri.startswith(f"{run['bucket']}/penguin/") for uri in uris), uris
    keys = objects(s3_server, run["bucket"])
    for uri in uris:
        prefix = uri[len(run["bucket"]) + 1 :] + "/"
        assert any(key.startswith(prefix) for key in keys), f"nothing on the store under {uri}"
    assert not [key for key in keys if ".staging-" in key]
    assert not (run["work"] / "s3:").exists() and not (run["work"] / "pipelines").exists()


def test_artifacts_on_s3_equal_a_local_root(penguin_runs):
    on_s3, on_disk = (
        latest_outputs(penguin_runs["store"]),
        latest_outputs(penguin_runs["local_store"]),
    )
    for component, output in (
        ("StatisticsGen", "statistics"),
        ("SchemaGen", "schema"),
        ("ExampleValidator", "anomalies"),
    ):
        remote = files_under(on_s3[component][output])
        assert remote, f"{component}.{output} is empty on S3"
        assert remote == files_under(on_disk[component][output]), (
            f"{component}.{output} differs from a local root"
        )
    for component, output in (("ExampleGen", "examples"), ("Transform", "transformed_examples"),
                              ("BulkInferrer", "inference_result")):  # fmt: skip
        rows = split_rows(on_s3[component][output])
        assert rows and rows == split_rows(on_disk[component][output]), (
            f"{component}.{output}: {rows}"
        )
    assert split_rows(on_s3["Transform"]["transformed_examples"]) == {
        "Split-train": 216,
        "Split-eval": 128,
    }
    # Training is seeded but not bit-reproducible across processes: within training noise.
    remote_accuracy, local_accuracy = (
        accuracy(penguin_runs["first"].stdout),
        accuracy(penguin_runs["local"].stdout),
    )
    assert remote_accuracy > 0.9 and abs(remote_accuracy - local_accuracy) <= 0.05, (
        remote_accuracy,
        local_accuracy,
    )
    for line in (
        "Evaluator.blessing: blessed",
        "InfraValidator.blessing: blessed",
        "BulkInferrer.inference_result: rows: unlabelled 5",
    ):
        assert line in penguin_runs["first"].stdout and line in penguin_runs["local"].stdout, line


def test_a_second_run_on_s3_is_fully_cached(penguin_runs):
    again = penguin_runs["again"]
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert f"(0 ran, {COMPONENTS} from cache)" in again.stdout, again.stdout


def test_show_and_lineage_read_the_remote_artifacts(penguin_runs):
    run = penguin_runs
    with MetadataStore(run["store"]) as store:
        live = {a.type_name: a for a in store.artifacts_in_state(LIVE)}
    evaluation, pushed = live["ModelEvaluation"], live["PushedModel"]
    shown = cli(
        "show",
        str(evaluation.id),
        "--metadata-url",
        run["store"],
        "--",
        *run["flags"],
        cwd=run["work"],
    )
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert evaluation.uri in shown.stdout and "accuracy" in shown.stdout, shown.stdout
    lineage = cli("lineage", str(pushed.id), "--metadata-url", run["store"], cwd=run["work"])
    assert lineage.returncode == 0, lineage.stdout + lineage.stderr
    for step in ("ExampleGen", "Transform", "Trainer", "Evaluator", "InfraValidator", "Pusher"):
        assert step in lineage.stdout, lineage.stdout


def test_the_pushed_model_loads_from_the_store_and_predicts(penguin_runs, tmp_path):
    import tensorflow as tf

    from beam_ml import local_copies

    run = penguin_runs
    pushed = re.search(r"Pusher\.pushed_model: pushed version (\d+) to (\S+)", run["first"].stdout)
    assert pushed, run["first"].stdout
    destination = pushed.group(2)
    assert destination == f"{run['bucket']}/penguin/serving_model/{pushed.group(1)}"
    local_copies.download(
        destination, str(tmp_path)
    )  # through Beam's FileSystems, with the run's S3 options
    model = tf.saved_model.load(str(tmp_path))
    # The eval split's rows, as serialized tf.Examples (what serving_default parses).
    eval_split = latest_outputs(run["store"])["ExampleGen"]["examples"] + "/Split-eval"
    table = pq.read_table(
        io.BytesIO(
            next(
                data for name, data in files_under(eval_split).items() if name.endswith(".parquet")
            )
        )
    )
    serialized = [_example(row, table.schema) for row in table.to_pylist()]
    labels = [row["species"] for row in table.to_pylist()]
    probabilities = model.signatures["serving_default"](examples=tf.constant(serialized))
    scores = next(iter(probabilities.values())).numpy()
    assert scores.shape == (len(labels), 3)
    species = ["Adelie", "Chinstrap", "Gentoo"]
    correct = sum(
        species[int(score.argmax())] == label for score, label in zip(scores, labels, strict=True)
    )
    assert correct / len(labels) > 0.9, (correct, len(labels))


def _example(row: dict, schema) -> bytes:
    import pyarrow as pa
    import tensorflow as tf

    features = {}
    for name, value in row.items():
        if value is None:
            continue
        kind = schema.field(name).type
        if pa.types.is_integer(kind):
            features[name] = tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))
        elif pa.types.is_floating(kind):
            features[name] = tf.train.Feature(float_list=tf.train.FloatList(value=[value]))
        else:
            features[name] = tf.train.Feature(
                bytes_list=tf.train.BytesList(value=[str(value).encode()])
            )
    return tf.train.Example(features=tf.train.Features(feature=features)).SerializeToString()


# --- kill -9 during the Trainer --------------------------------------------------------------


def _assert_live_artifacts_complete(server, bucket_url: str, store_url: str) -> None:
    """Every LIVE artifact's prefix holds what its component finished writing; nothing else is published."""
    keys = objects(server, bucket_url)
    assert not [key for key in keys if ".staging-" in key], sorted(keys)
    with MetadataStore(store_url) as store:
        live = {a.uri[len(bucket_url) + 1 :]: a for a in store.artifacts_in_state(LIVE)}
    for prefix, artifact in live.items():
        assert [key for key in keys if key.startswith(prefix + "/")], (
            f"LIVE artifact {artifact.id} at {artifact.uri} is empty"
        )
    model = next(prefix for prefix, a in live.items() if a.type_name == "Model")
    model_files = {key[len(model) + 1 :] for key in keys if key.startswith(model + "/")}
    assert any(name.endswith("saved_model.pb") for name in model_files), sorted(model_files)
    assert any("/variables/variables.index" in "/" + name for name in model_files), sorted(
        model_files
    )
    published = set()
    for key in keys:
        if "/Trainer/" in key:
            before, after = key.split("/Trainer/", 1)
            published.add(before + "/Trainer/" + "/".join(after.split("/")[:2]))
    assert published <= set(live), (
        f"prefixes no LIVE artifact owns: {sorted(published - set(live))}"
    )
    fs.configure(server.beam_flags())
    import tensorflow as tf

    from beam_ml import local_copies

    with __import__("tempfile").TemporaryDirectory(prefix="beam-ml-test-model-") as copy:
        local_copies.download(
            f"{bucket_url}/{model}/{live[model].properties.get('serving_dir', 'serving_model')}",
            copy,
        )
        assert "serving_default" in tf.saved_model.load(copy).signatures


@pytest.mark.parametrize("fault", ["kill-after-training", "kill-mid-upload"])
def test_kill_9_during_the_trainer_on_s3_then_the_rerun_completes(
    fault, s3_server, s3_bucket, tmp_path
):
    s3_server.client().upload_file(
        str(_penguins_csv()), s3_bucket[len("s3://") :], "input/penguins.csv"
    )
    flags = s3_server.beam_flags()
    store_url = f"sqlite:///{tmp_path}/metadata.sqlite"
    args = [
        "run",
        str(TRAINER_STEPS),
        "--pipeline-root",
        f"{s3_bucket}/penguin",
        "--metadata-url",
        store_url,
        "--",
        *flags,
    ]
    data = {"PENGUIN_DATA": f"{s3_bucket}/input/penguins.csv"}
    if fault == "kill-after-training":
        marker = tmp_path / "trained"
        proc = subprocess.Popen(
            [sys.executable, "-m", "beam_ml.run", *args], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env={**os.environ, **ENV, **data, "TRAINER_MARKER": str(marker), "TRAINER_SLEEP": "600"},
        )  # fmt: skip
        deadline = time.monotonic() + 900
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the Trainer never finished training"
            time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
    else:
        crashed = cli(*args, cwd=tmp_path, env={**data, "CRASH_IN_UPLOAD": "1"})
        assert crashed.returncode == -signal.SIGKILL, (
            crashed.stdout[-3000:] + crashed.stderr[-3000:]
        )
        assert [
            key
            for key in objects(s3_server, s3_bucket)
            if "/Trainer/" in key and key.endswith("saved_model.pb")
        ], "the crash came after the first file of the model reached the store"
    with MetadataStore(store_url) as store:
        assert not [a for a in store.artifacts_in_state(LIVE) if a.type_name == "Model"]

    rerun = cli(*args, cwd=tmp_path, env=data)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "(1 ran, 4 from cache)" in rerun.stdout, rerun.stdout
    _assert_live_artifacts_complete(s3_server, s3_bucket, store_url)


def _penguins_csv() -> Path:
    import importlib.util

    spec = importlib.util.find_spec("palmerpenguins")
    return Path(spec.submodule_search_locations[0], "data", "penguins.csv")
