"""Turning a run's Beam arguments into ``PipelineOptions``, with defaults that work on each engine.

The CLI passes Beam's own flags through unchanged (``--runner``,
``--direct_num_workers``, ``--flink_master``, ``--project`` ...), so a Beam user
learns nothing new. On top of them each component's pipeline gets a job name
saying which component of which run it is, and per engine:

**DirectRunner** (the default). Without ``--runner``, or with
``--runner=DirectRunner``, pipelines run on ``beam_ml.runners.direct.SwitchingDirectRunner``:
Beam's DirectRunner minus its first try of Prism, which Beam would download at run
time. Beam's in-process mode (FnApiRunner, one
worker) stays the default, on purpose: measured on the penguin pipeline
(ExampleGen → StatisticsGen → SchemaGen → ExampleValidator, 344 rows, on a
shared 2-core machine) the four stages take 3.3-5.0 s in-process and
12.8-25.9 s with ``--direct_running_mode=multi_processing
--direct_num_workers=2``: every Beam pipeline pays seconds to start its worker
processes, which small data never wins back. Ask for multi-processing when the data is large; then
``--direct_num_workers`` defaults to every core (Beam's own default is one
worker, which makes multi-processing pointless).

**FlinkRunner**. Beam runs its Java Flink job server, which Beam would
otherwise download at run time: the jar cached by
``python -m beam_ml.runners.flink.cluster install`` is passed as
``--flink_job_server_jar`` and a missing one is an error that says how to get
it. A Flink master on this machine (``localhost:8081``, ``[local]``,
``[auto]``) defaults to ``--environment_type LOOPBACK`` (the Python workers are
this process; no Docker); for a remote master Beam's default stays (DOCKER),
or pass EXTERNAL / PROCESS. See ``beam_ml.runners.flink.cluster``.

**PrismRunner**. Beam's portable reference runner (the Job API and Fn API route
that Flink and Dataflow take), which Beam would otherwise download at run
time: the binary built once from the Go module proxy by
``beam_ml.runners.prism`` is passed as ``--prism_location``, unless the user
gave one (or a ``--job_endpoint`` of a running Prism); Prism logs warnings
and errors only unless ``--prism_log_level`` says otherwise. Beam's default
environment for it is LOOPBACK (the Python workers are this process);
``--environment_type EXTERNAL --environment_config localhost:PORT`` sends the
work to a worker pool (``beam_ml.runners.worker_pool``).

**DataflowRunner** (and Flink or portable runs whose workers are not this
process). beam-ml's code and the user modules loaded so far are shipped to the
workers as a package built on the fly (``beam_ml.runners.packaging``), unless
``--setup_file`` or ``--extra_package`` says what to ship. The job name is made
a valid Dataflow job name. ``--dataflow_job_spec_dir DIR`` (offline mode, no
credentials, nothing submitted) writes each Beam component's Dataflow job
specification under DIR and runs the component locally so later components get
their inputs: see ``beam_ml.runners.dataflow``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

from apache_beam.options.pipeline_options import (
    DirectOptions,
    FlinkRunnerOptions,
    GoogleCloudOptions,
    PipelineOptions,
    PortableOptions,
    PrismRunnerOptions,
    SetupOptions,
    StandardOptions,
)

DIRECT_RUNNERS = frozenset({None, "DirectRunner", "BundleBasedDirectRunner", "SwitchingDirectRunner", "FnApiRunner"})
#: Flink masters that run on this machine: its TaskManagers can call back into this process.
LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "0.0.0.0"})
FLINK_EMBEDDED = frozenset({"[local]", "[auto]", "[collection]"})
#: Environments whose Python workers run in this process, so they see what it imported.
IN_PROCESS_ENVIRONMENTS = frozenset({"LOOPBACK", "EMBEDDED", "BEAM_PYTHON"})


class BeamMlOptions(PipelineOptions):
    """beam-ml's own Beam flags (accepted after ``--`` like Beam's)."""

    @classmethod
    def _add_argparse_args(cls, parser) -> None:
        parser.add_argument(
            "--dataflow_job_spec_dir",
            default=None,
            help="DataflowRunner offline mode: write each component's Dataflow job specification "
            "under this directory instead of submitting it, and run the component locally.",
        )
        parser.add_argument(
            "--no_ship_code",
            default=False,
            action="store_true",
            help="Do not package beam-ml and the user modules for remote workers "
            "(they already have them installed).",
        )


def pipeline_options(beam_args: Sequence[str], *, job_name: str | None = None, **overrides: Any) -> PipelineOptions:
    """Options for one component's Beam pipeline; ``overrides`` win over ``beam_args``."""
    beam_args = list(beam_args)
    options = PipelineOptions(beam_args, **overrides)
    given = _given_flags(beam_args) | set(overrides)
    runner = runner_name(options)
    cloud = options.view_as(GoogleCloudOptions)
    if job_name and not cloud.job_name:
        cloud.job_name = dataflow_job_name(job_name) if runner == "DataflowRunner" else job_name
    if runner in DIRECT_RUNNERS:
        _direct_defaults(options, given)
    elif runner == "FlinkRunner":
        _flink_defaults(options, given)
    elif runner == "DataflowRunner":
        _dataflow_defaults(options)
    elif runner == "PrismRunner":
        _prism_defaults(options, given)
    if not workers_in_process(options):
        from beam_ml.runners.packaging import pickle_user_modules_by_value

        pickle_user_modules_by_value()
    if needs_shipped_code(options):
        from beam_ml.runners.packaging import ship_code

        ship_code(options)
    return options


def runner_name(options: PipelineOptions) -> str | None:
    """The runner's class name (``--runner flink`` and ``--runner FlinkRunner`` alike), None for the default."""
    runner = options.view_as(StandardOptions).runner
    if runner is None or not isinstance(runner, str):
        return None if runner is None else type(runner).__name__
    name = runner.rsplit(".", 1)[-1]
    if not name.endswith("Runner"):
        name = {"direct": "DirectRunner", "flink": "FlinkRunner", "dataflow": "DataflowRunner", "portable": "PortableRunner", "prism": "PrismRunner"}.get(name.lower(), name)
    return name


def dataflow_job_name(name: str) -> str:
    """A valid Dataflow job name: lower case letters, digits and '-', starting with a letter, at most 63 characters."""
    cleaned = re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-")
    if not cleaned or not cleaned[0].isalpha():
        cleaned = "beam-ml-" + cleaned
    return cleaned[:63].rstrip("-")


def needs_shipped_code(options: PipelineOptions) -> bool:
    """Whether the Python workers run outside this process and so must be sent beam-ml's code."""
    if options.view_as(BeamMlOptions).no_ship_code:
        return False
    setup = options.view_as(SetupOptions)
    if setup.setup_file or setup.extra_packages:
        return False
    return not workers_in_process(options)


def workers_in_process(options: PipelineOptions) -> bool:
    """Whether the pipeline's Python work runs in this process (DirectRunner, LOOPBACK), seeing what it imported."""
    runner = runner_name(options)
    if runner in DIRECT_RUNNERS:
        return True
    if runner == "DataflowRunner":
        return False
    default = "LOOPBACK" if runner == "PrismRunner" else "DOCKER"  # each runner's own default
    environment = (options.view_as(PortableOptions).environment_type or default).upper()
    return environment in IN_PROCESS_ENVIRONMENTS


def is_local_flink_master(master: str | None) -> bool:
    if not master or master in FLINK_EMBEDDED:
        return True
    host = urlparse(master if "://" in master else f"http://{master}").hostname
    return host in LOCAL_HOSTS


def _given_flags(beam_args: Sequence[str]) -> set[str]:
    """Names of the flags the user spelled out (``--direct_num_workers=2`` → ``direct_num_workers``)."""
    return {arg[2:].split("=", 1)[0].replace("-", "_") for arg in beam_args if arg.startswith("--")}


def _direct_defaults(options: PipelineOptions, given: set[str]) -> None:
    standard = options.view_as(StandardOptions)
    if standard.runner is None or runner_name(options) == "DirectRunner":
        from beam_ml.runners.direct import NAME

        standard.runner = NAME  # DirectRunner without its Prism download: see beam_ml.runners.direct
    direct = options.view_as(DirectOptions)
    if direct.direct_running_mode in ("multi_processing", "multi_threading") and "direct_num_workers" not in given:
        direct.direct_num_workers = os.cpu_count() or 1


def _flink_defaults(options: PipelineOptions, given: set[str]) -> None:
    flink = options.view_as(FlinkRunnerOptions)
    portable = options.view_as(PortableOptions)
    if not portable.job_endpoint and not flink.flink_job_server_jar:
        from beam_ml.runners.flink.cluster import (
            JobServerJarUnavailable,
            find_job_server_jar,
            flink_minor,
            job_server_artifact,
        )

        version = flink.flink_version if "flink_version" in given else flink_minor()
        jar = find_job_server_jar(version)
        if jar is None:
            raise JobServerJarUnavailable(
                f"FlinkRunner needs Beam's Flink job server jar ({job_server_artifact(version)}), and beam-ml does not "
                "let Beam download it at run time: run `python -m beam_ml.runners.flink.cluster install` "
                "(or pass --flink_job_server_jar PATH, or --job_endpoint HOST:PORT of a running job server)"
            )
        flink.flink_job_server_jar = str(jar)
        flink.flink_version = version
    if not portable.environment_type and is_local_flink_master(flink.flink_master):
        portable.environment_type = "LOOPBACK"


def _prism_defaults(options: PipelineOptions, given: set[str]) -> None:
    prism = options.view_as(PrismRunnerOptions)
    if "prism_log_level" not in given:
        prism.prism_log_level = "warn"  # Prism's INFO lines (serving, "pipeline done!") are not for the console
    if not prism.prism_location and not options.view_as(PortableOptions).job_endpoint:
        from beam_ml.runners.prism import ensure_prism

        prism.prism_location = str(ensure_prism())


def _dataflow_defaults(options: PipelineOptions) -> None:
    if options.view_as(BeamMlOptions).dataflow_job_spec_dir:
        # Offline: record the job specification, then run locally (beam_ml.runners.dataflow).
        options.view_as(StandardOptions).runner = "beam_ml.runners.dataflow.OfflineDataflowRunner"
