"""DataflowRunner, and an offline mode that writes what would be submitted without submitting it.

Online, nothing here is needed: pass Beam's usual flags and every Beam
component becomes one Dataflow job (named ``<pipeline>-<component>-<execution>``)::

    python -m beam_ml.run run PIPELINE --pipeline-root gs://BUCKET/root -- \\
        --runner DataflowRunner --project PROJECT --region REGION \\
        --temp_location gs://BUCKET/tmp

beam-ml's code and the user modules are shipped as a package built on the fly
(``beam_ml.runners.packaging``); the pipeline root must be on GCS so the
workers can read and write the artifacts.

**Offline** (no credentials, no network): add ``--dataflow_job_spec_dir DIR``::

    python -m beam_ml.run run examples/penguin/pipeline.py -- --runner DataflowRunner \\
        --project my-project --region europe-west1 --dataflow_job_spec_dir specs/

For every Beam component, ``DIR/<job name>/`` receives ``job.json`` (the
Dataflow Job message as Beam would send it: name, type, environment with the
SDK container, worker settings and every pipeline option, the packages to
stage), ``pipeline.pb`` (the portable pipeline Dataflow runs, as staged) and
``pipeline.pbtxt`` (the same, readable), and ``staging/`` (the files Beam
would upload: beam-ml's package, the SDK's requirements). This is Beam's own
template path (``DataflowApplicationClient.create_job_description``) with
staging pointed at a local directory; only the request to the service is left
out. The component then runs on the DirectRunner (with the run's Direct
flags), so the next components have real inputs and the whole pipeline is
described. ``--temp_location`` defaults to a placeholder
``gs://beam-ml-offline/tmp`` that nothing touches.
"""

from __future__ import annotations

import os

from apache_beam.options.pipeline_options import (
    GoogleCloudOptions,
    PipelineOptions,
    StandardOptions,
    TestOptions,
)
from apache_beam.runners.runner import PipelineResult, PipelineRunner

OFFLINE_TEMP_LOCATION = "gs://beam-ml-offline/tmp"


class OfflineDataflowRunner(PipelineRunner):
    """Writes the Dataflow job specification of a pipeline, then runs it on the DirectRunner."""

    def run_pipeline(self, pipeline, options: PipelineOptions) -> PipelineResult:
        from beam_ml.runners.direct import SwitchingDirectRunner
        from beam_ml.runners.options import BeamMlOptions

        spec_dir = options.view_as(BeamMlOptions).dataflow_job_spec_dir
        write_job_spec(pipeline, options, spec_dir)
        # beam-ml's DirectRunner: Beam's would first try Prism (a download, or a Prism already running here).
        return SwitchingDirectRunner().run_pipeline(pipeline, options)


def write_job_spec(pipeline, options: PipelineOptions, spec_dir: str) -> str:
    """Translate ``pipeline`` for Dataflow as Beam would and write the job under ``spec_dir``; returns its folder."""
    import apache_beam as beam
    from apache_beam.runners.dataflow.dataflow_runner import DataflowRunner
    from apache_beam.runners.dataflow.internal import apiclient
    from google.protobuf import text_format

    dataflow_options = PipelineOptions.from_dictionary(options.get_all_options(drop_default=True, retain_unknown_options=True))
    dataflow_options.view_as(StandardOptions).runner = "DataflowRunner"
    cloud = dataflow_options.view_as(GoogleCloudOptions)
    missing = [flag for flag, value in (("--project", cloud.project), ("--region", cloud.region)) if not value]
    if missing:
        raise ValueError(f"Dataflow offline mode still needs {' and '.join(missing)}: they are part of the job it writes")
    cloud.temp_location = cloud.temp_location or OFFLINE_TEMP_LOCATION
    cloud.no_auth = True
    folder = os.path.join(spec_dir, cloud.job_name or "job")
    staging = os.path.join(folder, "staging")
    os.makedirs(staging, exist_ok=True)
    cloud.staging_location = staging
    dataflow_options.view_as(TestOptions).dry_run = True

    # A copy, so that the runner's rewrites never touch the pipeline that then runs locally.
    copy = beam.Pipeline.from_runner_api(pipeline.to_runner_api(), DataflowRunner(), dataflow_options)
    job = DataflowRunner().run_pipeline(copy, dataflow_options).job
    client = apiclient.DataflowApplicationClient(dataflow_options, staging)
    client.create_job_description(job)
    with open(os.path.join(folder, "job.json"), "w") as handle:
        handle.write(job.json())
    with open(os.path.join(folder, "pipeline.pbtxt"), "w") as handle:
        handle.write(text_format.MessageToString(job.proto_pipeline))
    staged_pipeline = os.path.join(staging, "pipeline.pb")
    if os.path.exists(staged_pipeline):
        os.replace(staged_pipeline, os.path.join(folder, "pipeline.pb"))
    return folder
