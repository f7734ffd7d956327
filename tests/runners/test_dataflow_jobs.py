"""Dataflow jobs: ids recorded while a component runs; `beam-ml status` / `cancel` against a fake Dataflow API.

The fake is a real gRPC server on a free localhost port serving the
``google.dataflow.v1beta3.JobsV1Beta3`` service's GetJob and UpdateJob over a
dict of jobs, with the client library's own (proto-plus) messages; the CLI
reaches it through ``--endpoint``, the same code path as the real service.
"""

import datetime
import types
from concurrent import futures
from pathlib import Path

import grpc
import pytest
from google.cloud import dataflow_v1beta3 as dataflow

from beam_ml import Artifact, Output, Pipeline, component
from beam_ml.context import ExecutionContext
from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.run import main

PROJECT, REGION = "test-project", "europe-west1"
SERVICE = "google.dataflow.v1beta3.JobsV1Beta3"


class FakeJobsService:
    """GetJob and UpdateJob over ``jobs``: (project, region, job id) -> Job."""

    def __init__(self) -> None:
        self.jobs: dict[tuple[str, str, str], dataflow.Job] = {}

    def add(self, job_id: str, name: str, state: str = "JOB_STATE_RUNNING") -> None:
        created = datetime.datetime(2025, 3, 1, 12, 0, tzinfo=datetime.UTC)
        self.jobs[(PROJECT, REGION, job_id)] = dataflow.Job(
            id=job_id, name=name, project_id=PROJECT, location=REGION, current_state=dataflow.JobState[state],
            create_time=created, current_state_time=created + datetime.timedelta(minutes=1),
        )

    def _find(self, request, context) -> dataflow.Job:
        job = self.jobs.get((request.project_id, request.location, request.job_id))
        if job is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"(fake) job {request.job_id} not found")
        return job

    def get_job(self, request: dataflow.GetJobRequest, context) -> dataflow.Job:
        return self._find(request, context)

    def update_job(self, request: dataflow.UpdateJobRequest, context) -> dataflow.Job:
        job = self._find(request, context)
        if request.job.requested_state == dataflow.JobState.JOB_STATE_CANCELLED:
            job.requested_state = dataflow.JobState.JOB_STATE_CANCELLED
            job.current_state = dataflow.JobState.JOB_STATE_CANCELLED
            job.current_state_time = datetime.datetime.now(datetime.UTC)
        return job

    def handler(self) -> grpc.GenericRpcHandler:
        def unary(method, request_type):
            return grpc.unary_unary_rpc_method_handler(
                method, request_deserializer=request_type.deserialize, response_serializer=dataflow.Job.serialize
            )

        return grpc.method_handlers_generic_handler(
            SERVICE,
            {"GetJob": unary(self.get_job, dataflow.GetJobRequest), "UpdateJob": unary(self.update_job, dataflow.UpdateJobRequest)},
        )


@pytest.fixture
def fake_dataflow():
    """(the fake service, its HOST:PORT)."""
    service = FakeJobsService()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((service.handler(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield service, f"127.0.0.1:{port}"
    server.stop(None)


def cli(*args: str) -> int:
    return main([*args])


def test_status_prints_the_jobs_state(fake_dataflow, capsys):
    service, endpoint = fake_dataflow
    service.add("2025-03-01_04_00_00-123", "penguin-statisticsgen-7")
    assert cli("status", "2025-03-01_04_00_00-123", "--project", PROJECT, "--region", REGION, "--endpoint", endpoint) == 0
    out = capsys.readouterr().out
    assert "penguin-statisticsgen-7" in out
    assert "JOB_STATE_RUNNING" in out
    assert "2025-03-01 12:00:00 UTC" in out and "2025-03-01 12:01:00 UTC" in out


def test_cancel_cancels_the_job_and_prints_its_new_state(fake_dataflow, capsys):
    service, endpoint = fake_dataflow
    service.add("job-1", "penguin-examplegen-3")
    assert cli("cancel", "job-1", "--project", PROJECT, "--region", REGION, "--endpoint", endpoint) == 0
    assert "JOB_STATE_CANCELLED" in capsys.readouterr().out
    assert service.jobs[(PROJECT, REGION, "job-1")].current_state == dataflow.JobState.JOB_STATE_CANCELLED


def test_unknown_job_is_a_clear_error_with_exit_status_2(fake_dataflow, capsys):
    _, endpoint = fake_dataflow
    for command in ("status", "cancel"):
        assert cli(command, "nope", "--project", PROJECT, "--region", REGION, "--endpoint", endpoint) == 2
        err = capsys.readouterr().err
        assert f"no Dataflow job nope in project {PROJECT}, region {REGION}" in err
        assert "Traceback" not in err


class FakeDataflowResult:
    """What Beam's DataflowRunner returns once it has submitted a job (the real class, no polling)."""

    @staticmethod
    def make(job_id: str):
        from apache_beam.runners.dataflow.dataflow_runner import DataflowPipelineResult

        class Result(DataflowPipelineResult):
            def wait_until_finish(self, duration=None):
                return "DONE"

        return Result(types.SimpleNamespace(id=job_id), runner=None)


@component
def TwoBeamJobs(out: Output[Artifact], ctx: ExecutionContext) -> None:
    import apache_beam as beam

    for label in ("first", "second"):
        with ctx.beam_pipeline() as pipeline:
            _ = pipeline | f"Create {label}" >> beam.Create([1, 2, 3]) | beam.Map(lambda x: x + 1)
    Path(out.uri, "done").write_text("ok")


def test_dataflow_job_ids_are_recorded_with_the_execution_and_listed_by_status_run(tmp_path, monkeypatch, fake_dataflow, capsys):
    from apache_beam.options.pipeline_options import GoogleCloudOptions
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner

    submitted: list[str] = []

    def run_pipeline(self, pipeline, options):  # the submission, minus the network
        submitted.append(f"2025-03-01_04_00_00-{len(submitted) + 1}")
        return FakeDataflowResult.make(submitted[-1])

    monkeypatch.setattr(DataflowRunner, "run_pipeline", run_pipeline)
    # Beam checks the temp bucket's soft-delete policy on GCS when a Dataflow pipeline is built: no network here.
    monkeypatch.setattr(GoogleCloudOptions, "_warn_if_soft_delete_policy_enabled", lambda self, arg_name: None)
    root = tmp_path / "root"
    beam_args = ["--runner", "DataflowRunner", "--project", PROJECT, "--region", REGION,
                 "--temp_location", "gs://beam-ml-test/tmp", "--no_ship_code"]
    result = LocalDagRunner(beam_args=beam_args).run(Pipeline("jobs", str(root), [TwoBeamJobs()]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    assert len(submitted) == 2

    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        (execution,) = store.executions_of_run(result.run_id)
    assert execution.properties["dataflow_jobs"] == [
        {"job_id": job_id, "project": PROJECT, "region": REGION} for job_id in submitted
    ]

    service, endpoint = fake_dataflow
    service.add(submitted[0], "jobs-twobeamjobs-1", "JOB_STATE_DONE")
    service.add(submitted[1], "jobs-twobeamjobs-1", "JOB_STATE_RUNNING")
    assert cli("status", "--run", str(result.run_number), "--pipeline-root", str(root), "--endpoint", endpoint) == 0
    out = capsys.readouterr().out
    assert "TwoBeamJobs" in out and "JOB_STATE_DONE" in out and "JOB_STATE_RUNNING" in out
    assert all(job_id in out for job_id in submitted)


def test_other_runners_record_nothing(tmp_path):
    root = tmp_path / "root"
    result = LocalDagRunner().run(Pipeline("direct", str(root), [TwoBeamJobs()]))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        (execution,) = store.executions_of_run(result.run_id)
    assert "dataflow_jobs" not in execution.properties
