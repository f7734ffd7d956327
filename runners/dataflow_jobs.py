"""Dataflow jobs of a run: their ids recorded while a component runs, and the service asked about them.

**Recording.** ``ExecutionContext.beam_pipeline()`` returns a
:func:`recording_pipeline`: a ``beam.Pipeline`` whose ``run()`` notes the
Dataflow job it submitted (``result.job_id()``, the project and the region)
in the context's notes, which the runner saves with the execution::

    execution.properties["dataflow_jobs"] == [{"job_id": ..., "project": ..., "region": ...}]

Components need no change: ``with ctx.beam_pipeline() as p: ...`` records the
job when the ``with`` block submits it, before it waits for the job to finish.
On a portable runner (Prism, Flink) each job's end state is recorded
instead, and a failed job is explained by its worker's exception
(``beam_ml.runners.portable_jobs``); on the DirectRunner (and in offline mode,
``--dataflow_job_spec_dir``) nothing is recorded.

**Asking the service.** :class:`DataflowJobs` wraps ``google-cloud-dataflow-client``
(``JobsV1Beta3Client``) for ``beam-ml status`` and ``beam-ml cancel``::

    beam-ml status JOB_ID --project P --region R        # name, state, create time, state time
    beam-ml status --run RUN_ID --pipeline-root DIR      # every job a run recorded, with its state
    beam-ml cancel JOB_ID --project P --region R         # request cancellation, print the new state

Credentials are the client's defaults (Application Default Credentials);
``--endpoint HOST:PORT`` talks plain gRPC to that address without credentials
(an emulator, or the fake server of the tests). Neither Beam nor the client is
imported by this module itself: the client only when a :class:`DataflowJobs`
is made, Beam only when a pipeline is built.
"""

from __future__ import annotations

import datetime
import functools
import logging
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import PipelineResult

    from beam_ml.metadata.store import ExecutionRecord

#: The execution property (``ExecutionContext.notes`` key) that lists a component's Dataflow jobs.
NOTE_KEY = "dataflow_jobs"
JOB_STATE_CANCELLED = "JOB_STATE_CANCELLED"
#: Seconds one call to the Dataflow service may take.
TIMEOUT_S = 60.0

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class JobRef:
    """Where a Dataflow job lives: its id, project and region."""

    job_id: str
    project: str
    region: str

    def to_json(self) -> dict[str, str]:
        return {"job_id": self.job_id, "project": self.project, "region": self.region}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> JobRef:
        return cls(str(value["job_id"]), str(value.get("project") or ""), str(value.get("region") or ""))


# --- recording job ids ---------------------------------------------------------------------


def recording_pipeline(options: PipelineOptions, notes: MutableMapping[str, Any]) -> beam.Pipeline:
    """A Beam pipeline whose ``run()`` appends the Dataflow job it submits to ``notes[NOTE_KEY]``."""
    return _recording_pipeline_class()(options=options, notes=notes)


@functools.cache
def _recording_pipeline_class() -> type:
    # Defined on first use so that importing this module (the CLI's status/cancel) never imports Beam.
    import apache_beam as beam

    from beam_ml.runners.portable_jobs import RecordedResult, is_portable_result

    class JobRecordingPipeline(beam.Pipeline):
        """``beam.Pipeline`` that records the Dataflow job of each ``run()`` (see the module doc)."""

        def __init__(self, *, options: PipelineOptions, notes: MutableMapping[str, Any]) -> None:
            super().__init__(options=options)
            self._job_notes = notes

        def run(self, test_runner_api: bool | str = "AUTO") -> PipelineResult:
            result = super().run(test_runner_api)
            if _is_dataflow(self.runner):
                record_dataflow_job(result, self._options, self._job_notes)
            elif is_portable_result(result):
                # Prism, Flink: the job's end state recorded, a failure named by the worker's exception.
                return RecordedResult(result, type(self.runner).__name__, self._job_notes)
            return result

    return JobRecordingPipeline


def _is_dataflow(runner: object) -> bool:
    """Whether the runner is Beam's DataflowRunner (or a subclass), without importing it for other runners."""
    return any(cls.__name__ == "DataflowRunner" for cls in type(runner).__mro__)


def record_dataflow_job(result: PipelineResult, options: PipelineOptions, notes: MutableMapping[str, Any]) -> JobRef | None:
    """Append the job behind a Dataflow ``result`` to ``notes[NOTE_KEY]``; None when no job was created (templates)."""
    from apache_beam.options.pipeline_options import GoogleCloudOptions

    if not getattr(result, "has_job", True):
        return None
    job_id = result.job_id()
    if not job_id:
        return None
    cloud = options.view_as(GoogleCloudOptions)
    ref = JobRef(str(job_id), cloud.project or "", cloud.region or "")
    notes.setdefault(NOTE_KEY, []).append(ref.to_json())
    _log.info("Dataflow job %s submitted (project %s, region %s)", ref.job_id, ref.project, ref.region)
    return ref


def jobs_of(executions: Iterable[ExecutionRecord]) -> list[tuple[ExecutionRecord, JobRef]]:
    """The Dataflow jobs recorded for these executions, in order."""
    return [
        (execution, JobRef.from_json(job))
        for execution in executions
        for job in (execution.properties or {}).get(NOTE_KEY) or []
    ]


# --- the Dataflow service ------------------------------------------------------------------


class DataflowJobError(Exception):
    """The service refused or could not answer (unknown job, no credentials, no permission); the message says which."""


@dataclass(frozen=True)
class JobStatus:
    job_id: str
    name: str
    state: str
    requested_state: str
    create_time: datetime.datetime | None
    state_time: datetime.datetime | None


class DataflowJobs:
    """The Dataflow jobs API: one job's status, and cancelling it."""

    def __init__(self, endpoint: str | None = None) -> None:
        """Default credentials and endpoint; ``endpoint`` (``HOST:PORT``): plain gRPC there, no credentials."""
        from google.auth import exceptions as auth_exceptions
        from google.cloud import dataflow_v1beta3

        if endpoint:
            import grpc
            from google.cloud.dataflow_v1beta3.services.jobs_v1_beta3.transports import (
                JobsV1Beta3GrpcTransport,
            )

            # With a ready channel the transport ignores credentials: this is the anonymous, insecure path.
            transport = JobsV1Beta3GrpcTransport(channel=grpc.insecure_channel(endpoint))
            self._client = dataflow_v1beta3.JobsV1Beta3Client(transport=transport)
        else:
            try:
                self._client = dataflow_v1beta3.JobsV1Beta3Client()
            except auth_exceptions.DefaultCredentialsError as error:
                raise DataflowJobError(
                    "no Google Cloud credentials: run `gcloud auth application-default login` "
                    f"or set GOOGLE_APPLICATION_CREDENTIALS ({error})"
                ) from error

    def close(self) -> None:
        self._client.transport.close()

    def __enter__(self) -> DataflowJobs:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def status(self, ref: JobRef) -> JobStatus:
        from google.cloud import dataflow_v1beta3

        request = dataflow_v1beta3.GetJobRequest(
            project_id=ref.project, location=ref.region, job_id=ref.job_id, view=dataflow_v1beta3.JobView.JOB_VIEW_SUMMARY
        )
        return self._call("status", ref, self._client.get_job, request)

    def cancel(self, ref: JobRef) -> JobStatus:
        """Request cancellation; the returned status is the service's answer (often still RUNNING, requested CANCELLED)."""
        from google.cloud import dataflow_v1beta3

        request = dataflow_v1beta3.UpdateJobRequest(
            project_id=ref.project,
            location=ref.region,
            job_id=ref.job_id,
            job=dataflow_v1beta3.Job(requested_state=dataflow_v1beta3.JobState.JOB_STATE_CANCELLED),
        )
        return self._call("cancel", ref, self._client.update_job, request)

    @staticmethod
    def _call(what: str, ref: JobRef, method, request) -> JobStatus:
        from google.api_core import exceptions as api_exceptions
        from google.auth import exceptions as auth_exceptions

        try:
            job = method(request=request, timeout=TIMEOUT_S)
        except api_exceptions.NotFound as error:
            raise DataflowJobError(f"no Dataflow job {ref.job_id} in project {ref.project}, region {ref.region}") from error
        except api_exceptions.GoogleAPICallError as error:
            raise DataflowJobError(
                f"Dataflow {what} of job {ref.job_id} (project {ref.project}, region {ref.region}) failed: "
                f"{type(error).__name__}: {error.message}"
            ) from error
        except auth_exceptions.GoogleAuthError as error:
            raise DataflowJobError(f"Google Cloud credentials refused: {error}") from error
        return JobStatus(
            job_id=job.id or ref.job_id,
            name=job.name,
            state=job.current_state.name,
            requested_state=job.requested_state.name,
            create_time=_time(job.create_time),
            state_time=_time(job.current_state_time),
        )


def _time(value: datetime.datetime | None) -> datetime.datetime | None:
    """proto-plus gives an unset Timestamp as the epoch: None for that."""
    if value is None or value.timestamp() == 0:
        return None
    return value
