"""The data stages on a real local Flink session cluster, compared artifact by artifact with the DirectRunner.

Run with ``pytest -m flink tests/runners``. The cluster (JobManager and
TaskManager as separate JVMs) is installed from PyPI and started by
``beam_ml.runners.flink.cluster``; Beam's Flink job server jar must be in its
cache (``python -m beam_ml.runners.flink.cluster install``). Anything missing
fails the test with the reason.
"""

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from google.protobuf import json_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, statistics_pb2

from beam_ml import Pipeline
from beam_ml.components.example_gen import ExampleGen
from beam_ml.components.example_validator import ExampleValidator
from beam_ml.components.schema_gen import SchemaGen
from beam_ml.components.statistics_gen import StatisticsGen
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.runners.flink.cluster import (
    FLINK_VERSION,
    JobServerJarUnavailable,
    fetch_job_server_jar,
)

pytestmark = pytest.mark.flink

BEAM_COMPONENTS = ("ExampleGen", "StatisticsGen")


def penguin_data_pipeline(root: Path) -> Pipeline:
    from importlib import resources

    data = str(resources.files("palmerpenguins") / "data" / "penguins.csv")
    gen = ExampleGen(input_path=data, null_values=["", "NA"])
    stats = StatisticsGen(examples=gen.outputs.examples)
    schema = SchemaGen(statistics=stats.outputs.statistics)
    validator = ExampleValidator(statistics=stats.outputs.statistics, schema=schema.outputs.schema)
    return Pipeline("penguin-data", str(root), [gen, stats, schema, validator])


def test_cluster_is_a_jobmanager_and_a_taskmanager_in_separate_processes(flink_cluster):
    overview = flink_cluster.overview()
    assert overview["flink-version"] == FLINK_VERSION
    assert overview["taskmanagers"] >= 1
    pids = {}
    for pid_file in (flink_cluster.run_dir / "pid").glob("*.pid"):
        pids[pid_file.name] = [int(p) for p in pid_file.read_text().split()]
    [jobmanager] = [p for name, p in pids.items() if "standalonesession" in name]
    [taskmanager] = [p for name, p in pids.items() if "taskexecutor" in name]
    assert set(jobmanager).isdisjoint(taskmanager)
    for pid in jobmanager + taskmanager:
        os.kill(pid, 0)  # alive


@pytest.mark.flink_job_server
def test_penguin_data_stages_on_flink_equal_the_direct_runner(flink_cluster, tmp_path):
    try:
        fetch_job_server_jar()  # from the cache, else Maven Central
    except JobServerJarUnavailable as error:
        pytest.fail(f"cannot run Beam on Flink without its job server: {error}", pytrace=False)
    direct = LocalDagRunner().run(penguin_data_pipeline(tmp_path / "direct"))
    assert direct.state == "COMPLETE", direct.failed and direct.failed.error
    before = {job["jid"] for job in flink_cluster.jobs()}

    beam_args = ["--runner", "FlinkRunner", "--flink_master", flink_cluster.address, "--environment_type", "LOOPBACK"]
    flink = LocalDagRunner(beam_args=beam_args).run(penguin_data_pipeline(tmp_path / "flink"))
    assert flink.state == "COMPLETE", f"{flink.failed.node_id} failed on Flink: {flink.failed.error}"

    # Every Beam stage ran on the cluster, and finished there.
    jobs = [job for job in flink_cluster.jobs() if job["jid"] not in before]
    for component in BEAM_COMPONENTS:
        name = f"penguin-data-{component.lower()}-{flink.nodes[component].execution.id}"
        mine = [job for job in jobs if name in job["name"]]
        assert [job["state"] for job in mine] == ["FINISHED"], (name, jobs)

    # Same artifacts as the DirectRunner.
    for split in ("train", "eval"):
        tables = []
        for result in (direct, flink):
            table = pq.read_table(Path(result.outputs("ExampleGen")["examples"].uri) / f"Split-{split}")
            tables.append(table.sort_by([(name, "ascending") for name in table.column_names]))
        assert tables[0].equals(tables[1]), split
        stats = [_stats(result, split) for result in (direct, flink)]
        assert stats[0] == stats[1], split
        anomalies = [_anomalies(result, split) for result in (direct, flink)]
        assert anomalies[0] == anomalies[1], split
    schemas = [(Path(r.outputs("SchemaGen")["schema"].uri) / "schema.pbtxt").read_text() for r in (direct, flink)]
    assert schemas[0] == schemas[1]


def _stats(result, split):
    path = Path(result.outputs("StatisticsGen")["statistics"].uri) / f"Split-{split}" / "FeatureStats.pb"
    return _rounded(json_format.MessageToDict(statistics_pb2.DatasetFeatureStatisticsList.FromString(path.read_bytes())))


def _anomalies(result, split):
    path = Path(result.outputs("ExampleValidator")["anomalies"].uri) / f"Split-{split}" / "SchemaDiff.pb"
    return json_format.MessageToDict(anomalies_pb2.Anomalies.FromString(path.read_bytes()))


def _rounded(value):
    """Floats to 9 significant digits: sums merged in another order may differ in the last bits."""
    if isinstance(value, float):
        return float(f"{value:.9g}")
    if isinstance(value, dict):
        return {key: _rounded(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_rounded(item) for item in value]
    return value
