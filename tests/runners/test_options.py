"""beam_ml.runners: PipelineOptions per engine, code shipped to workers, Dataflow offline mode."""

import json
import logging
import os
import tarfile
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import (
    DirectOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PortableOptions,
    SetupOptions,
    StandardOptions,
)

from beam_ml.runners import packaging
from beam_ml.runners.flink import cluster
from beam_ml.runners.options import (
    dataflow_job_name,
    needs_shipped_code,
    pipeline_options,
    runner_name,
)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty beam-ml cache, so no jar or package from the machine leaks in."""
    monkeypatch.setenv("BEAM_ML_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv(cluster.ENV_JOB_SERVER_JAR, raising=False)
    return tmp_path / "cache"


@pytest.fixture
def job_server_jar(cache):
    jar = cluster.job_server_jar_path()
    jar.parent.mkdir(parents=True)
    jar.write_bytes(b"PK")
    return jar


def test_direct_runner_stays_in_process_by_default():
    options = pipeline_options([], job_name="penguin-examplegen-1")
    assert options.view_as(StandardOptions).runner == "beam_ml.runners.direct.SwitchingDirectRunner"
    assert options.view_as(DirectOptions).direct_running_mode == "in_memory"
    assert options.view_as(GoogleCloudOptions).job_name == "penguin-examplegen-1"
    assert not needs_shipped_code(options)


@pytest.mark.parametrize("beam_args", [[], ["--runner=DirectRunner"], ["--runner", "direct"]])
def test_the_direct_runner_never_tries_to_download_prism(beam_args, caplog, tmp_path):
    """Beam's own DirectRunner first fetches Prism from GitHub; ours runs in this process at once."""
    out = tmp_path / "out.txt"
    caplog.set_level(logging.INFO)
    with beam.Pipeline(options=pipeline_options(beam_args)) as pipeline:
        _ = (pipeline | beam.Create([1, 2, 3]) | beam.combiners.Count.Globally()
             | beam.Map(lambda n: out.write_text(str(n))))
    assert out.read_text() == "3"
    assert not [r for r in caplog.records if "prism" in r.getMessage().lower()]


def test_an_explicit_prism_or_fnapi_runner_is_left_alone():
    # (with its own binary: without one, beam-ml builds Prism; tests/runners/test_prism.py)
    assert runner_name(pipeline_options(["--runner=PrismRunner", "--prism_location=/opt/prism"])) == "PrismRunner"
    assert runner_name(pipeline_options(["--runner=FnApiRunner"])) == "FnApiRunner"


def test_multi_processing_uses_every_core_unless_told():
    options = pipeline_options(["--direct_running_mode=multi_processing"])
    assert options.view_as(DirectOptions).direct_num_workers == (os.cpu_count() or 1)
    told = pipeline_options(["--direct_running_mode", "multi_processing", "--direct_num_workers", "2"])
    assert told.view_as(DirectOptions).direct_num_workers == 2


def test_beam_flags_pass_unchanged_and_overrides_win():
    options = pipeline_options(["--job_name=mine", "--direct_num_workers=3"], job_name="ours", direct_num_workers=5)
    assert options.view_as(GoogleCloudOptions).job_name == "mine"
    assert options.view_as(DirectOptions).direct_num_workers == 5


def test_flink_without_a_cached_job_server_jar_says_how_to_get_one(cache):
    with pytest.raises(cluster.JobServerJarUnavailable, match=r"beam-runners-flink-2\.2-job-server:.*cluster install"):
        pipeline_options(["--runner=FlinkRunner", "--flink_master=localhost:8081"])


def test_flink_on_this_machine_uses_the_cached_jar_and_loopback(job_server_jar):
    options = pipeline_options(["--runner", "FlinkRunner", "--flink_master", "localhost:8081"])
    assert options.view_as(FlinkRunnerOptions).flink_job_server_jar == str(job_server_jar)
    assert options.view_as(FlinkRunnerOptions).flink_version == cluster.flink_minor()
    assert options.view_as(PortableOptions).environment_type == "LOOPBACK"
    assert not needs_shipped_code(options)
    told = pipeline_options(["--runner=FlinkRunner", "--flink_master=localhost:8081", "--environment_type=PROCESS", "--no_ship_code"])
    assert told.view_as(PortableOptions).environment_type == "PROCESS"


def test_flink_with_a_job_endpoint_needs_no_jar(cache):
    options = pipeline_options(["--runner=FlinkRunner", "--job_endpoint=localhost:8099", "--environment_type=LOOPBACK"])
    assert options.view_as(FlinkRunnerOptions).flink_job_server_jar is None


def test_remote_workers_get_beam_ml_and_user_modules_shipped(job_server_jar, monkeypatch, tmp_path):
    module = tmp_path / "my_module.py"
    module.write_text("def preprocessing_fn(inputs):\n    return inputs\n")
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location("beam_ml_user_0123456789ab", module)
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    monkeypatch.setitem(sys.modules, "beam_ml_user_0123456789ab", loaded)

    options = pipeline_options(["--runner=FlinkRunner", "--flink_master=flink.example.com:8081", "--environment_type=EXTERNAL", "--environment_config=localhost:50000"])
    [package] = options.view_as(SetupOptions).extra_packages
    with tarfile.open(package) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"beam_ml/runners/options.py", "beam_ml/transforms/statistics.py", "beam_ml/components/example_gen.py",
            "beam_ml_user_0123456789ab.py", "setup.py"} <= names
    assert packaging.build_package() == package  # cached by content
    setup_file = pipeline_options(["--runner=DataflowRunner", "--setup_file=./setup.py"])
    assert setup_file.view_as(SetupOptions).extra_packages is None


def test_dataflow_job_names_are_valid():
    assert dataflow_job_name("My_Pipeline-ExampleGen-12") == "my-pipeline-examplegen-12"
    assert dataflow_job_name("1st run") == "beam-ml-1st-run"
    assert len(dataflow_job_name("x" * 100)) == 63
    options = pipeline_options(["--runner=DataflowRunner", "--no_ship_code"], job_name="penguin_data-StatisticsGen-3")
    assert options.view_as(GoogleCloudOptions).job_name == "penguin-data-statisticsgen-3"


def test_dataflow_offline_writes_the_job_and_runs_locally(cache, tmp_path, caplog):
    caplog.set_level(logging.INFO)
    args = ["--runner=DataflowRunner", "--project=my-project", "--region=europe-west1", f"--dataflow_job_spec_dir={tmp_path / 'specs'}"]
    options = pipeline_options(args, job_name="penguin-examplegen-1")
    out = tmp_path / "out" / "numbers"
    with beam.Pipeline(options=options) as pipeline:
        _ = pipeline | beam.Create([1, 2, 3]) | beam.Map(lambda x: x * 2) | beam.io.WriteToText(str(out))
    assert sorted(int(line) for path in out.parent.glob("numbers*") for line in path.read_text().split()) == [2, 4, 6]
    folder = tmp_path / "specs" / "penguin-examplegen-1"
    job = json.loads((folder / "job.json").read_text())
    assert job["name"] == "penguin-examplegen-1" and job["type"] == "JOB_TYPE_BATCH"
    [pool] = job["environment"]["workerPools"]
    assert pool["sdkHarnessContainerImages"][0]["containerImage"].endswith(f"beam_python3.11_sdk:{beam.__version__}")
    sdk_options = job["environment"]["sdkPipelineOptions"]["options"]
    assert sdk_options["project"] == "my-project" and sdk_options["region"] == "europe-west1"
    staged = {p.name for p in (folder / "staging").iterdir()}
    assert any(name.startswith("beam_ml_job-") for name in staged)
    assert (folder / "pipeline.pb").stat().st_size > 0 and "WriteToText" in (folder / "pipeline.pbtxt").read_text()
    assert options.view_as(StandardOptions).runner.endswith("OfflineDataflowRunner")
    # Run locally in this process, never on a Prism that Beam's DirectRunner would try first
    # (downloading it, or submitting to one already running in this process).
    tried = [r for r in caplog.records if ".portability." in r.name or "-prism-" in r.getMessage()]
    assert not tried, [r.getMessage()[:200] for r in tried]


def test_dataflow_offline_needs_project_and_region(cache, tmp_path):
    options = pipeline_options(["--runner=DataflowRunner", f"--dataflow_job_spec_dir={tmp_path}"], job_name="j")
    with pytest.raises(ValueError, match="--project and --region"), beam.Pipeline(options=options) as pipeline:
        _ = pipeline | beam.Create([1])


def test_cluster_paths_follow_the_installed_beam(cache):
    assert cluster.flink_minor("2.2.1") == "2.2"
    assert cluster.flink_minor() in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS
    assert cluster.job_server_artifact() == f"org.apache.beam:beam-runners-flink-2.2-job-server:{beam.__version__}:jar"
    assert cluster.find_job_server_jar() is None
    assert Path(cluster.flink_home()).is_relative_to(cache)
