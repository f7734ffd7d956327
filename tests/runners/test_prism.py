"""The penguin pipeline on Beam's portable runner Prism, compared artifact by artifact with the DirectRunner.

Prism is the Job API / Fn API route that Flink and Dataflow take. It is built
on first use by ``beam_ml.runners.prism`` (``go install`` from the Go module
proxy, about 90 s, then cached under ~/.cache/beam-ml/prism); the tests skip
only when Go is absent or the proxy cannot be reached. Each pipeline runs
once per module: on the DirectRunner, on Prism with LOOPBACK workers (this
process) and on Prism with EXTERNAL workers (a Beam worker pool, separate
processes, as beside a Flink TaskManager).

Compared exactly, not approximately: statistics protos, schema, anomalies,
Parquet rows per split, transformed examples, evaluation metrics, blessing and
predictions. Training is seeded and gets the same rows, so the models agree.
What legitimately differs is not compared: artifact URIs and ids, timestamps,
the pushed version (a Unix time), and how rows are laid out in Parquet files
(shards and order within them are the runner's; tables are sorted first).
"""

import json
import os
import signal
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from apache_beam.options.pipeline_options import PortableOptions, PrismRunnerOptions
from google.protobuf import json_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.runners import prism
from beam_ml.runners.options import pipeline_options
from beam_ml.runners.portable_jobs import NOTE_KEY
from beam_ml.runners.worker_pool import start_worker_pool, stop_worker_pool, worker_pool

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
PENGUIN = REPO / "examples" / "penguin" / "pipeline.py"
#: The penguin components that run Beam pipelines: one Prism job each.
BEAM_COMPONENTS = ("ExampleGen", "UnlabelledExampleGen", "StatisticsGen", "Transform", "Evaluator", "BulkInferrer")
TRAIN_STEPS = 100


@pytest.fixture(scope="module", autouse=True)
def no_prism_left_running():
    """Stops the Prism job server that in-process runs of this module leave behind.

    Beam keeps one Prism job server per process (``PrismRunner.shared_handle``),
    and Beam's own DirectRunner, which tests elsewhere use through a plain
    ``beam.Pipeline()``, runs a pipeline on a Prism it finds there: without
    this, tests that run after this module would run on Prism. Beam also
    installs its own SIGINT handler for that server; the previous one comes back.
    """
    sigint = signal.getsignal(signal.SIGINT)
    yield
    from apache_beam.runners.portability.prism_runner import PrismRunner
    from apache_beam.utils import shared

    server = PrismRunner.shared_handle.acquire(lambda: None)
    if server is not None:
        server.stop()
    PrismRunner.shared_handle = shared.Shared()
    signal.signal(signal.SIGINT, sigint)


@pytest.fixture(scope="module")
def prism_binary() -> Path:
    """Prism built (or found in the cache) by beam-ml itself."""
    try:
        return prism.ensure_prism()
    except (prism.GoUnavailable, prism.ModuleProxyUnreachable) as error:
        pytest.skip(f"Prism cannot be built here: {error}")


def penguin_pipeline(root: Path):
    sys.path.insert(0, str(PENGUIN.parent))
    try:
        import pipeline
    finally:
        sys.path.pop(0)
    return pipeline.create_pipeline(str(root), tune=False, train_steps=TRAIN_STEPS)


@pytest.fixture(scope="module")
def direct_run(tmp_path_factory):
    result = LocalDagRunner().run(penguin_pipeline(tmp_path_factory.mktemp("direct")))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    return result


@pytest.fixture(scope="module")
def loopback_run(prism_binary, tmp_path_factory):
    # No --prism_location: beam-ml passes the binary it built. LOOPBACK is Prism's default environment.
    result = LocalDagRunner(beam_args=["--runner", "PrismRunner"]).run(penguin_pipeline(tmp_path_factory.mktemp("loopback")))
    assert result.state == "COMPLETE", f"{result.failed.node_id} failed on Prism: {result.failed.error}"
    return result


@pytest.fixture(scope="module")
def external_run(prism_binary, tmp_path_factory):
    logs = tmp_path_factory.mktemp("worker-pool")
    with worker_pool(log_dir=logs) as pool:
        runner = LocalDagRunner(beam_args=["--runner", "PrismRunner", *pool.beam_args()])
        result = runner.run(penguin_pipeline(tmp_path_factory.mktemp("external")))
    assert result.state == "COMPLETE", f"{result.failed.node_id} failed on Prism EXTERNAL: {result.failed.error}"
    return result, pool


# --- Prism as an engine ------------------------------------------------------------------------


def test_prism_is_built_at_the_installed_beam_version_into_the_cache(prism_binary):
    from apache_beam.version import __version__

    assert prism_binary == prism.prism_path() or os.environ.get(prism.ENV_PRISM)
    assert prism_binary.parent.name == f"v{__version__}"
    assert os.access(prism_binary, os.X_OK)
    options = pipeline_options(["--runner", "PrismRunner"])
    assert options.view_as(PrismRunnerOptions).prism_location == str(prism_binary)
    assert options.view_as(PrismRunnerOptions).prism_log_level == "warn"  # Prism's INFO lines stay off the console
    # The user's own binary wins.
    given = pipeline_options(["--runner", "PrismRunner", "--prism_location", "/opt/prism"])
    assert given.view_as(PrismRunnerOptions).prism_location == "/opt/prism"


def test_without_go_the_error_names_the_command_to_build_prism(tmp_path, monkeypatch):
    monkeypatch.setenv("BEAM_ML_CACHE", str(tmp_path / "empty-cache"))
    monkeypatch.delenv(prism.ENV_PRISM, raising=False)
    monkeypatch.setenv("PATH", str(tmp_path))  # no go here
    with pytest.raises(prism.GoUnavailable) as raised:
        pipeline_options(["--runner", "PrismRunner"])
    message = str(raised.value)
    assert f"go install {prism.PRISM_PACKAGE}@{prism.prism_version()}" in message
    assert str(tmp_path / "empty-cache" / "prism" / prism.prism_version()) in message


def test_worker_pool_serves_on_localhost_and_stops_by_pid(tmp_path):
    import socket

    pool = start_worker_pool(log_dir=tmp_path)
    try:
        os.kill(pool.pid, 0)
        with socket.create_connection(("127.0.0.1", pool.port), timeout=5):
            pass
        assert pool.beam_args() == ["--environment_type", "EXTERNAL", "--environment_config", f"localhost:{pool.port}"]
        options = pipeline_options(["--runner", "PrismRunner", *pool.beam_args()])
        assert options.view_as(PortableOptions).environment_type == "EXTERNAL"
    finally:
        stop_worker_pool(pool.pid)
    with pytest.raises(ProcessLookupError):
        os.kill(pool.pid, 0)
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", pool.port), timeout=2).close()


# --- the same artifacts on every runner ----------------------------------------------------------


def test_penguin_on_prism_loopback_equals_the_direct_runner(direct_run, loopback_run):
    assert_jobs_done(loopback_run)
    assert_same_artifacts(direct_run, loopback_run)


def test_penguin_on_prism_external_workers_equals_the_direct_runner(direct_run, external_run):
    result, pool = external_run
    assert_jobs_done(result)
    assert_same_artifacts(direct_run, result)
    # The Python work ran in workers the pool started, not in this process.
    assert "Starting worker with command" in pool.log_path.read_text()


def assert_jobs_done(result):
    """Beam reported each component's Prism job DONE, and the store has every execution COMPLETE."""
    root = Path(result.outputs("ExampleGen")["examples"].uri).parents[2]
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        executions = store.executions_of_run(result.run_id)
    components = [node_id for node_id, node in result.nodes.items() if node.state != "RESOLVED"]  # resolvers: no execution
    assert {e.component_id: e.state for e in executions} == dict.fromkeys(components, "COMPLETE")
    jobs = {e.component_id: e.properties.get(NOTE_KEY) for e in executions if e.properties.get(NOTE_KEY)}
    assert set(jobs) == set(BEAM_COMPONENTS)
    for component, recorded in jobs.items():
        assert [(job["runner"], job["state"]) for job in recorded] == [("PrismRunner", "DONE")], component


def assert_same_artifacts(expected, actual):
    for split in ("train", "eval"):
        assert _table(expected, "ExampleGen", "examples", split).equals(_table(actual, "ExampleGen", "examples", split)), split
        assert _stats(expected, split) == _stats(actual, split), split
        assert _anomalies(expected, split) == _anomalies(actual, split), split
        transformed = [_table(r, "Transform", "transformed_examples", split) for r in (expected, actual)]
        assert transformed[0].num_rows == transformed[1].num_rows > 0, split
        assert transformed[0].equals(transformed[1]), split
    for node, output in (("ExampleGen", "examples"), ("Transform", "transformed_examples"), ("BulkInferrer", "inference_result")):
        assert expected.outputs(node)[output].properties["split_rows"] == actual.outputs(node)[output].properties["split_rows"], node
    assert _text(expected, "SchemaGen", "schema", "schema.pbtxt") == _text(actual, "SchemaGen", "schema", "schema.pbtxt")
    assert _metrics(expected) == _metrics(actual)
    assert _text(expected, "Evaluator", "blessing", "BLESSED") == _text(actual, "Evaluator", "blessing", "BLESSED")
    predictions = [_table(r, "BulkInferrer", "inference_result", "unlabelled") for r in (expected, actual)]
    assert predictions[0].num_rows == 5
    assert predictions[0].equals(predictions[1])


def _uri(result, node, output) -> Path:
    return Path(result.outputs(node)[output].uri)


def _table(result, node, output, split):
    table = pq.read_table(_uri(result, node, output) / f"Split-{split}")
    sortable = [name for name in table.column_names if not _is_list(table.schema.field(name).type)]
    return table.sort_by([(name, "ascending") for name in sortable])


def _is_list(arrow_type) -> bool:
    import pyarrow as pa

    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def _stats(result, split):
    path = _uri(result, "StatisticsGen", "statistics") / f"Split-{split}" / "FeatureStats.pb"
    return json_format.MessageToDict(statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes()))


def _anomalies(result, split):
    path = _uri(result, "ExampleValidator", "anomalies") / f"Split-{split}" / "SchemaDiff.pb"
    return json_format.MessageToDict(anomalies_pb2.Anomalies.FromString(path.read_bytes()))


def _metrics(result):
    return json.loads((_uri(result, "Evaluator", "evaluation") / "metrics.json").read_text())


def _text(result, node, output, name):
    path = _uri(result, node, output) / name
    return path.read_text() if path.exists() else None


# --- failures --------------------------------------------------------------------------------------

FAILING_PIPELINE = '''\
import apache_beam as beam

from beam_ml import Output, Pipeline, component
from beam_ml.artifacts import Statistics
from beam_ml.context import ExecutionContext


class CheckBeak(beam.DoFn):
    def process(self, penguin):
        if penguin == 3:
            raise ValueError(f"penguin {{penguin}} has no beak")
        yield penguin


@component
def BeakCheck(statistics: Output[Statistics], ctx: ExecutionContext) -> None:
    with ctx.beam_pipeline() as p:
        _ = p | beam.Create([1, 2, 3, 4]) | beam.ParDo(CheckBeak())


pipeline = Pipeline("beaks", root={root!r}, components=[BeakCheck()])
'''


def test_a_worker_error_on_prism_is_the_failed_line_of_the_cli(prism_binary, tmp_path, capsys):
    from beam_ml.run import main

    root = tmp_path / "beaks"
    pipeline_file = tmp_path / "beaks.py"
    pipeline_file.write_text(FAILING_PIPELINE.format(root=str(root)))
    assert main(["run", str(pipeline_file), "--", "--runner", "PrismRunner"]) == 1
    failed = [line for line in capsys.readouterr().err.splitlines() if line.startswith("FAILED:")]
    assert len(failed) == 1
    assert failed[0].startswith("FAILED: BeakCheck: BeamJobFailed: ValueError: penguin 3 has no beak"), failed
    assert "PrismRunner: job " in failed[0]
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        [run] = store.list_runs("beaks")
        [execution] = store.executions_of_run(run.id)
    assert execution.state == "FAILED"
    assert "ValueError: penguin 3 has no beak" in execution.error
    assert [job["state"] for job in execution.properties[NOTE_KEY]] == ["FAILED"]
