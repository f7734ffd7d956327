"""The command line: ``python -m beam_ml.run`` (also installed as ``beam-ml``).

    beam-ml run PIPELINE_FILE [--pipeline-root DIR] [--metadata-url URL] [-v] [-- BEAM ARGS]
    beam-ml watch    PIPELINE_FILE [--every 10m | --cron "0 * * * *"] [--on-new-span] [--once] [--pipeline-root DIR] [--metadata-url URL] [-v] [-- BEAM ARGS]
    beam-ml run-node PIPELINE_FILE NODE_ID --run-id RUN [--pipeline-root DIR] [--metadata-url URL] [-v] [-- BEAM ARGS]
    beam-ml export airflow PIPELINE_FILE --out DAGS_DIR [--schedule CRON] [--pipeline-root DIR] [--metadata-url URL]
                   [--python PATH] [--retries N] [--retry-delay S] [--execution-timeout S] [-- BEAM ARGS]
    beam-ml export kubeflow PIPELINE_FILE --out pipeline.yaml --image IMAGE [--pipeline-root ROOT] [--metadata-url URL] [--allow-local] [-- BEAM ARGS]
    beam-ml runs     (--pipeline-root DIR | --metadata-url URL) [--pipeline NAME]
    beam-ml logs     EXECUTION_ID (--pipeline-root DIR | --metadata-url URL)
    beam-ml check    (--pipeline-root DIR | --metadata-url URL)
    beam-ml show     (ARTIFACT_ID | --run N [--pipeline NAME]) (--pipeline-root DIR | --metadata-url URL) [-- BEAM ARGS]
    beam-ml lineage  ARTIFACT_ID (--pipeline-root DIR | --metadata-url URL) [--direction up|down|both] [--format text|dot]
    beam-ml report   N [--pipeline NAME] --out report.html (--pipeline-root DIR | --metadata-url URL) [-- BEAM ARGS]
    beam-ml ui       (--pipeline-root DIR | --metadata-url URL) [--host 127.0.0.1] [--port 8080] [-- BEAM ARGS]
    beam-ml status   JOB_ID --project P --region R [--endpoint HOST:PORT]
    beam-ml status   --run N [--pipeline NAME] (--pipeline-root DIR | --metadata-url URL) [--endpoint HOST:PORT]
    beam-ml cancel   JOB_ID --project P --region R [--endpoint HOST:PORT]

Runs are numbered from 1 per pipeline ("run 3 of penguin"); a command that
takes a run (``show --run N``, ``report N``, ``status --run N``) takes that
number, with ``--pipeline NAME`` when the store holds several pipelines (it
says so, and names them, when the flag is missing). Artifact and execution
ids are store-wide.

A run that fails, for whatever reason, ends with ``FAILED: <component>:
<first line>`` on stderr and a non-zero exit status (1; 130 for Ctrl-C, 143
for SIGTERM, which mark the run CANCELLED). ``logs`` prints an execution's
stored traceback and its log file, where third-party output (TensorFlow, absl,
Beam, Python warnings) goes unless ``run -v`` lets it through to the console.
``check`` compares the store with the files on disk.

``status`` and ``cancel`` ask the Dataflow service about the jobs a run
submitted (their ids are recorded with each execution); see
``beam_ml.runners.dataflow_jobs``.

Everything after ``--``, and any flag ``run`` does not know, goes to Beam's
PipelineOptions unchanged (``--runner``, ``--direct_num_workers``,
``--flink_master``, ``--project`` ...). The inspecting commands (``show``,
``check``, ``lineage``) take Beam flags after ``--`` too, for artifacts on an
object store (``-- --s3_endpoint_url=...``).

A pipeline root on an object store (``--pipeline-root s3://bucket/path``)
needs ``--metadata-url``. Secret flags (``--s3_secret_access_key`` ...) and
the store URL's password are never printed or recorded
(``beam_ml.redaction``); better still, pass credentials through the standard
chains (AWS environment or profile, Google application-default credentials).

``watch`` runs a pipeline on a schedule and/or when new input data arrives,
never twice at once, each run as ``run`` runs it (``beam_ml.watch``). Ctrl-C or
SIGTERM stops it after the current component.

``run-node`` runs one component of the run an orchestrator (Airflow,
Kubeflow) names ``--run-id``: all tasks given the same id make one run in
``runs``, ``show`` and lineage; each reads what its upstream components
published in that run (``beam_ml.orchestration.node_task``). ``export``
writes a pipeline as an orchestrator's whose tasks call ``run-node``:
``export airflow`` a DAG file (``beam_ml.orchestration.airflow_export``),
``export kubeflow`` a compiled kfp pipeline (``beam_ml.orchestration.kubeflow_export``).

A pipeline file defines ``pipeline`` (a ``beam_ml.Pipeline``) or
``create_pipeline()`` returning one.

This module imports only what the command needs: a fully cached run must
start fast and never import TensorFlow or Beam.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import importlib.util
import os
import sys
import tempfile
import time
import traceback
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beam_ml.dsl import Pipeline
    from beam_ml.metadata.store import MetadataStore, RunRecord
    from beam_ml.orchestration.runner import LocalDagRunner

ENV_METADATA_URL = "BEAM_ML_METADATA_URL"


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    beam_args: list[str] = []
    if "--" in argv:
        split = argv.index("--")
        argv, beam_args = argv[:split], argv[split + 1 :]
    parser = _parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown and args.command not in ("run", "run-node", "watch"):
        from beam_ml.redaction import redact_args

        parser.error(f"unrecognized arguments: {' '.join(redact_args(unknown))}")
    try:
        return args.handler(args, [*unknown, *beam_args])
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


class CliError(Exception):
    """A mistake in how the command was called; printed without a traceback."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="beam-ml", description="Run and inspect beam-ml pipelines.")
    commands = parser.add_subparsers(dest="command", required=True)

    def pipeline_flag(p: argparse.ArgumentParser) -> None:
        p.add_argument("--pipeline", help="whose run N (runs are numbered per pipeline); needed when the store holds several")

    def store_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("--pipeline-root", help="the pipeline root; its store is <root>/metadata.sqlite")
        p.add_argument("--metadata-url", help=f"SQLAlchemy URL of the store (or ${ENV_METADATA_URL})")

    run = commands.add_parser("run", help="run a pipeline", description="Run a pipeline; unknown flags and everything after -- go to Beam.")
    run.add_argument("pipeline_file")
    store_flags(run)
    run.add_argument("-v", "--verbose", action="store_true",
                     help="show third-party output (TensorFlow, absl, Beam, warnings) on the console too")
    run.set_defaults(handler=_cmd_run)

    watch = commands.add_parser(
        "watch", help="run a pipeline on a schedule and/or when a new span arrives",
        description="Run a pipeline at the times given (--every, --cron) and/or when what its ExampleGen "
        "patterns match differs from what its last complete run read (--on-new-span); one run at a time across "
        "every process sharing the store. Each run is what `run` does; unknown flags and everything after -- go "
        "to Beam. Ctrl-C or SIGTERM stops after the current component.",
    )
    watch.add_argument("pipeline_file")
    when = watch.add_mutually_exclusive_group()
    when.add_argument("--every", metavar="INTERVAL", help="look at start and then every INTERVAL: 30s, 10m, 2h, 1d")
    when.add_argument("--cron", metavar="EXPR", help='look at the times of a cron expression, local time: "0 * * * *"')
    watch.add_argument("--on-new-span", action="store_true",
                       help="run only when the inputs differ from what the last complete run read; local inputs are "
                       "also watched for file events (without --every/--cron: polled every minute)")
    watch.add_argument("--once", action="store_true", help="look once now, run if due, and exit")
    store_flags(watch)
    watch.add_argument("-v", "--verbose", action="store_true",
                       help="show third-party output (TensorFlow, absl, Beam, warnings) on the console too")
    watch.set_defaults(handler=_cmd_watch)

    run_node = commands.add_parser(
        "run-node", help="run one component of one orchestrator run",
        description="Run one component in the run named --run-id (an orchestrator's run id), reading the "
        "outputs its upstream components published in that run; unknown flags and everything after -- go to Beam.",
    )
    run_node.add_argument("pipeline_file")
    run_node.add_argument("node_id")
    run_node.add_argument("--run-id", required=True, help="the orchestrator's run id; the same for every task of one run")
    store_flags(run_node)
    run_node.add_argument("-v", "--verbose", action="store_true",
                          help="show third-party output (TensorFlow, absl, Beam, warnings) on the console too")
    run_node.set_defaults(handler=_cmd_run_node)

    export = commands.add_parser("export", help="write a pipeline as an orchestrator's pipeline (Airflow DAG, ...)")
    exporters = export.add_subparsers(dest="exporter", required=True)
    _export_airflow_parser(exporters, store_flags)
    _export_kubeflow_parser(exporters, store_flags)

    runs = commands.add_parser("runs", help="list runs with status and durations")
    store_flags(runs)
    runs.add_argument("--pipeline", help="only runs of this pipeline")
    runs.add_argument("--limit", type=int, default=20)
    runs.set_defaults(handler=_cmd_runs)

    logs = commands.add_parser("logs", help="an execution's stored traceback and its log file")
    logs.add_argument("execution_id", type=int)
    store_flags(logs)
    logs.set_defaults(handler=_cmd_logs)

    check = commands.add_parser(
        "check", help="check the store and compare its LIVE artifacts with the files on disk",
        description="The store's integrity check, then every LIVE artifact against its files: missing, "
        "changed (content fingerprint differs from the recorded one) and extra (output directories no "
        "LIVE artifact owns). Exit status 1 when anything is wrong.",
    )
    store_flags(check)
    check.set_defaults(handler=_cmd_check)

    show = commands.add_parser("show", help="show one artifact, or a run's executions and artifacts (--run)")
    show.add_argument("artifact_id", type=int, nargs="?")
    show.add_argument("--run", type=int, metavar="N",
                      help="list run N's executions and the artifacts they read and wrote, with ids")
    pipeline_flag(show)
    store_flags(show)
    show.set_defaults(handler=_cmd_show)

    lineage = commands.add_parser("lineage", help="what an artifact came from and what came from it")
    lineage.add_argument("artifact_id", type=int)
    lineage.add_argument("--direction", choices=["up", "down", "both"], default="both")
    lineage.add_argument("--format", choices=["text", "dot"], default="text",
                         help="text: each step and artifact once; dot: the graph for Graphviz (dot -Tsvg)")
    store_flags(lineage)
    lineage.set_defaults(handler=_cmd_lineage)

    report = commands.add_parser(
        "report", help="write one self-contained HTML file of a run's results",
        description="The run's graph and timeline, each execution, and the views of every artifact it "
        "produced (statistics, schema, anomalies, evaluation, ...), in one HTML file that needs no network.",
    )
    report.add_argument("run_number", type=int, metavar="N", help="the run's number in its pipeline (`beam-ml runs`)")
    pipeline_flag(report)
    report.add_argument("--out", required=True, help="the HTML file to write")
    store_flags(report)
    report.set_defaults(handler=_cmd_report)

    ui = commands.add_parser("ui", help="browse the store in a local, read-only web app")
    store_flags(ui)
    ui.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, default=8080)
    ui.set_defaults(handler=_cmd_ui)

    def dataflow_flags(p: argparse.ArgumentParser, *, required: bool) -> None:
        p.add_argument("--project", required=required, help="the job's Google Cloud project")
        p.add_argument("--region", required=required, help="the job's Dataflow region (e.g. europe-west1)")
        p.add_argument("--endpoint", help="HOST:PORT of a Dataflow API emulator: plain gRPC, no credentials")

    status = commands.add_parser(
        "status", help="state of a Dataflow job, or of every Dataflow job a run submitted",
        description="State of one Dataflow job (JOB_ID --project P --region R), "
        "or of every Dataflow job recorded for a run (--run RUN_ID and its store).",
    )
    status.add_argument("job_id", nargs="?")
    status.add_argument("--run", type=int, metavar="N", help="list the Dataflow jobs recorded for run N's executions")
    pipeline_flag(status)
    dataflow_flags(status, required=False)
    store_flags(status)
    status.set_defaults(handler=_cmd_status)

    cancel = commands.add_parser("cancel", help="cancel a Dataflow job")
    cancel.add_argument("job_id")
    dataflow_flags(cancel, required=True)
    cancel.set_defaults(handler=_cmd_cancel)
    return parser


# --- run ---------------------------------------------------------------------------------


def load_pipeline(path: str) -> Pipeline:
    """Import a pipeline file and return the pipeline it defines."""
    from beam_ml.dsl import Pipeline

    path = os.path.abspath(path)
    if not os.path.isfile(path):
        raise CliError(f"pipeline file not found: {path}")
    name = "beam_ml_pipeline_" + hashlib.sha256(path.encode()).hexdigest()[:12]
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CliError(f"cannot import pipeline file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    sys.path.insert(0, os.path.dirname(path))
    spec.loader.exec_module(module)
    found = getattr(module, "pipeline", None)
    if found is None and callable(getattr(module, "create_pipeline", None)):
        found = module.create_pipeline()
    if not isinstance(found, Pipeline):
        raise CliError(f"{path} must define `pipeline` (a beam_ml.Pipeline) or `create_pipeline()` returning one")
    return found


def _load_cli_pipeline(args: argparse.Namespace) -> Pipeline | int:
    """The pipeline file ``args`` names, ``--pipeline-root`` applied; or, when the file's own code
    failed, the exit status of its FAILED line (its traceback printed). A file that defines no
    pipeline is a usage error."""
    from beam_ml.dsl import PipelineDefinitionError

    try:
        pipeline = load_pipeline(args.pipeline_file)
    except PipelineDefinitionError as error:
        raise CliError(str(error)) from error
    except CliError:
        raise
    except Exception as error:
        traceback.print_exc()
        return _failed(args.pipeline_file, error)
    return pipeline.with_root(args.pipeline_root) if args.pipeline_root else pipeline


def _pipeline_to_run(args: argparse.Namespace) -> tuple[Pipeline, str | None, str] | int:
    """The pipeline ``run`` or ``watch`` names (``--pipeline-root`` applied), the store URL given and the one
    used; or the exit status of a pipeline file that failed to load (its traceback printed)."""
    from beam_ml.orchestration.runner import StoreNotNamed, store_url_for

    pipeline = _load_cli_pipeline(args)
    if isinstance(pipeline, int):
        return pipeline
    metadata_url = args.metadata_url or os.environ.get(ENV_METADATA_URL) or None
    try:
        return pipeline, metadata_url, store_url_for(pipeline, metadata_url)
    except StoreNotNamed as error:
        raise CliError(str(error)) from error


def _cmd_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    # Imported before the pipeline file's directory joins sys.path.
    from beam_ml.orchestration.failures import sigterm_as_interrupt
    from beam_ml.orchestration.logs import configure_console
    from beam_ml.orchestration.progress import NullProgress, RichProgress
    from beam_ml.orchestration.runner import LocalDagRunner

    configure_console(verbose=args.verbose)
    loaded = _pipeline_to_run(args)
    if isinstance(loaded, int):
        return loaded
    pipeline, metadata_url, _ = loaded
    progress = RichProgress() if sys.stdout.isatty() else NullProgress()
    runner = LocalDagRunner(beam_args=beam_args, metadata_url=metadata_url, progress=progress)
    with sigterm_as_interrupt():
        return _run_pipeline(runner, pipeline, metadata_url)


def _cmd_watch(args: argparse.Namespace, beam_args: list[str]) -> int:
    # Imported before the pipeline file's directory joins sys.path.
    from beam_ml import fs, redaction
    from beam_ml.orchestration.failures import EXIT_SIGINT, EXIT_SIGTERM, StopRequest, Terminated
    from beam_ml.orchestration.logs import configure_console
    from beam_ml.orchestration.progress import NullProgress, RichProgress
    from beam_ml.orchestration.runner import LocalDagRunner
    from beam_ml.watch import NothingToWatch, ScheduleError, Watcher, parse_cron, parse_every

    if not (args.every or args.cron or args.on_new_span or args.once):
        raise CliError("say when to run: --every INTERVAL, --cron EXPR and/or --on-new-span (or --once: one look now)")
    try:
        schedule = parse_every(args.every) if args.every else parse_cron(args.cron) if args.cron else None
    except ScheduleError as error:
        raise CliError(str(error)) from error
    configure_console(verbose=args.verbose)
    loaded = _pipeline_to_run(args)
    if isinstance(loaded, int):
        return loaded
    pipeline, metadata_url, store_url = loaded
    redaction.register_args(beam_args)
    redaction.register_url(store_url)
    fs.configure(beam_args)  # the watcher lists input patterns on object stores with the run's flags
    stop = StopRequest()
    progress = RichProgress() if sys.stdout.isatty() else NullProgress()
    runner = LocalDagRunner(beam_args=beam_args, metadata_url=metadata_url, progress=progress, stop=stop)
    try:
        watcher = Watcher(
            pipeline, store_url, lambda: _run_pipeline(runner, pipeline, metadata_url),
            stop=stop, schedule=schedule, on_new_span=args.on_new_span,
        )
    except NothingToWatch as error:
        raise CliError(str(error)) from error
    try:
        with stop.installed():
            return watcher.look() if args.once else watcher.watch()
    except KeyboardInterrupt as interrupt:  # a second signal, outside a run
        _failed(None, "cancelled")
        return EXIT_SIGTERM if isinstance(interrupt, Terminated) else EXIT_SIGINT


def _cmd_run_node(args: argparse.Namespace, beam_args: list[str]) -> int:
    from beam_ml.fs import StoreUnreachable
    from beam_ml.orchestration.failures import (
        EXIT_SIGINT,
        EXIT_SIGTERM,
        RunAborted,
        RunCancelled,
        Terminated,
        sigterm_as_interrupt,
    )
    from beam_ml.orchestration.logs import configure_console
    from beam_ml.orchestration.node_task import UnknownComponent, UpstreamNotFinished, run_node
    from beam_ml.orchestration.runner import StoreNotNamed

    configure_console(verbose=args.verbose)
    pipeline = _load_cli_pipeline(args)
    if isinstance(pipeline, int):
        return pipeline
    metadata_url = args.metadata_url or os.environ.get(ENV_METADATA_URL) or None
    try:
        with sigterm_as_interrupt():
            run, result = run_node(
                pipeline, args.node_id, args.run_id, beam_args=beam_args, metadata_url=metadata_url, verbose=args.verbose
            )
    except (StoreNotNamed, UnknownComponent) as error:
        raise CliError(str(error)) from error
    except (StoreUnreachable, UpstreamNotFinished) as error:
        return _failed(args.node_id, str(error))
    except RunCancelled as cancelled:
        _failed(cancelled.component, cancelled.reason)
        return EXIT_SIGTERM if isinstance(cancelled.__cause__, Terminated) else EXIT_SIGINT
    except KeyboardInterrupt as interrupt:
        _failed(args.node_id, "cancelled")
        return EXIT_SIGTERM if isinstance(interrupt, Terminated) else EXIT_SIGINT
    except RunAborted as aborted:
        saved = _save_traceback(pipeline.root, aborted)
        print(f"traceback in {saved}", file=sys.stderr)
        return _failed(aborted.component, str(aborted))
    print(f"{args.node_id} in {run.label} ({args.run_id}): {result.state} in {result.elapsed:.1f}s; run {run.state}")
    for name, artifact in result.outputs.items():
        print(f"  {args.node_id}.{name}: [{artifact.type_name} {artifact.id}]")
    if result.state == "FAILED":
        if result.execution is not None:
            print(f"  traceback and log: beam-ml logs {result.execution.id}", file=sys.stderr)
        return _failed(args.node_id, result.error)
    return 0


# --- export airflow ---------------------------------------------------------------------


def _export_airflow_parser(exporters, store_flags) -> None:
    airflow = exporters.add_parser(
        "airflow", help="write an Airflow 3 DAG file: one task per component, each running run-node",
        description="Write an Airflow DAG file whose tasks run `beam-ml run-node` (the Airflow run id is the "
        "beam-ml run id); everything after -- goes to Beam in every task.",
    )
    airflow.add_argument("pipeline_file")
    airflow.add_argument("--out", required=True, metavar="DAGS_DIR", help="the folder to write the DAG file into (Airflow's dags folder)")
    airflow.add_argument("--schedule", metavar="CRON", help="the DAG's schedule (a cron expression or preset); default: none, triggered only")
    store_flags(airflow)
    airflow.add_argument("--python", metavar="PATH",
                         help="the Python the tasks run beam-ml with (default: this one, an absolute path)")
    airflow.add_argument("--retries", type=int, default=1, help="Airflow retries of a failed task (default 1)")
    airflow.add_argument("--retry-delay", type=float, default=300, metavar="S", help="seconds between retries (default 300)")
    airflow.add_argument("--execution-timeout", type=float, default=6 * 3600, metavar="S",
                         help="seconds after which Airflow stops a task (default 21600)")
    airflow.set_defaults(handler=_cmd_export_airflow)


def _cmd_export_airflow(args: argparse.Namespace, beam_args: list[str]) -> int:
    from beam_ml.orchestration.airflow_export import AirflowSettings, ExportRefused, export
    from beam_ml.orchestration.runner import StoreNotNamed, store_url_for

    pipeline = load_pipeline(args.pipeline_file)
    if args.pipeline_root:
        pipeline = pipeline.with_root(args.pipeline_root)
    try:
        # $BEAM_ML_METADATA_URL names a store, but is not written into the file: the tasks read it from their environment.
        store_url_for(pipeline, args.metadata_url or os.environ.get(ENV_METADATA_URL) or None)
        settings = AirflowSettings(
            schedule=args.schedule, retries=args.retries,
            retry_delay=datetime.timedelta(seconds=args.retry_delay),
            execution_timeout=datetime.timedelta(seconds=args.execution_timeout),
        )  # fmt: skip
        path = export(
            pipeline, args.pipeline_file, args.out, settings=settings, metadata_url=args.metadata_url,
            beam_args=beam_args, python=args.python,
        )  # fmt: skip
    except (StoreNotNamed, ExportRefused) as error:
        raise CliError(str(error)) from error
    print(f"wrote {path}: DAG {pipeline.name!r}, schedule {args.schedule or 'none (triggered only)'}")
# --- export kubeflow --------------------------------------------------------------------


def _export_kubeflow_parser(exporters, store_flags) -> None:
    kubeflow = exporters.add_parser(
        "kubeflow", help="compile a Kubeflow Pipelines v2 pipeline YAML (kfp): one task per component",
        description="Compile the pipeline with kfp into a Kubeflow Pipelines v2 YAML: one task per component "
        "(beam-ml run-node in IMAGE, the Dockerfile's image), the kfp run id as the run id; Beam flags after --.",
    )
    kubeflow.add_argument("pipeline_file", help="the pipeline file, as the tasks find it in the image (relative: "
                          "from the image's working directory)")
    kubeflow.add_argument("--out", required=True, help="the pipeline YAML to write")
    kubeflow.add_argument("--image", required=True, help="the container image the tasks run in (built from the Dockerfile)")
    store_flags(kubeflow)
    kubeflow.add_argument("--allow-local", action="store_true",
                          help="accept a local root and a SQLite store: only for kfp's local runner (kfp.local) on this machine")
    kubeflow.set_defaults(handler=_cmd_export_kubeflow)


def _cmd_export_kubeflow(args: argparse.Namespace, beam_args: list[str]) -> int:
    from beam_ml.dsl import PipelineDefinitionError

    try:  # kfp before the pipeline file's directory joins sys.path
        from beam_ml.orchestration.kubeflow_export import NotShareable, export_kubeflow
    except ModuleNotFoundError as error:
        raise CliError(f"export kubeflow needs kfp ({error}): pip install -c constraints.txt '.[kubeflow]'") from error
    try:
        pipeline = load_pipeline(args.pipeline_file)
    except PipelineDefinitionError as error:
        raise CliError(str(error)) from error
    if args.pipeline_root:
        pipeline = pipeline.with_root(args.pipeline_root)
    metadata_url = args.metadata_url or pipeline.metadata_url
    try:
        export_kubeflow(pipeline, args.pipeline_file, args.out, image=args.image, metadata_url=metadata_url,
                        beam_args=beam_args, allow_local=args.allow_local)
    except NotShareable as error:
        raise CliError(str(error)) from error
    print(f"wrote {args.out}: {pipeline.name}, {len(pipeline.order)} tasks on {args.image}, root {pipeline.root}")
    if not os.path.isabs(args.pipeline_file):
        print(f"the tasks load {args.pipeline_file} from their working directory (/app in the Dockerfile's image)")
    return 0


def _run_pipeline(runner: LocalDagRunner, pipeline: Pipeline, metadata_url: str | None) -> int:
    from beam_ml.fs import StoreUnreachable
    from beam_ml.orchestration.failures import (
        EXIT_SIGINT,
        EXIT_SIGTERM,
        RunAborted,
        RunCancelled,
        Terminated,
    )
    from beam_ml.redaction import redact_url

    store_flag = f"--metadata-url {redact_url(metadata_url)}" if metadata_url else f"--pipeline-root {pipeline.root}"
    try:
        result = runner.run(pipeline)
    except StoreUnreachable as error:
        return _failed(None, str(error))
    except RunCancelled as cancelled:
        print(f"run {cancelled.run_number} of {pipeline.name}: CANCELLED", flush=True)
        _failed(cancelled.component, cancelled.reason)
        return EXIT_SIGTERM if isinstance(cancelled.__cause__, Terminated) else EXIT_SIGINT
    except KeyboardInterrupt as interrupt:  # before the run was recorded
        _failed(None, "cancelled")
        return EXIT_SIGTERM if isinstance(interrupt, Terminated) else EXIT_SIGINT
    except RunAborted as aborted:
        saved = _save_traceback(pipeline.root, aborted)
        print(f"run {aborted.run_number} of {pipeline.name}: FAILED; traceback in {saved}", file=sys.stderr)
        return _failed(aborted.component, str(aborted))
    except Exception as error:  # the store could not even be opened
        saved = _save_traceback(pipeline.root, error)
        print(f"traceback in {saved}", file=sys.stderr)
        return _failed(None, f"{type(error).__name__}: {error}")
    cached = sum(1 for n in result.nodes.values() if n.state == "CACHED")
    ran = len(result.ran())
    print(
        f"run {result.run_number} of {pipeline.name}: {result.state} in {result.elapsed:.1f}s "
        f"({ran} ran, {cached} from cache); root {pipeline.root}"
    )
    _print_summaries(result)
    if result.state == "COMPLETE":
        print(f"  see them: beam-ml show ARTIFACT_ID {store_flag}; "
              f"beam-ml report {result.run_number} --pipeline {pipeline.name} --out report.html {store_flag}; "
              f"beam-ml ui {store_flag}")
    failed = result.failed
    if failed is not None:
        if failed.execution is not None:
            print(f"  traceback and log: beam-ml logs {failed.execution.id} {store_flag}", file=sys.stderr)
        return _failed(failed.node_id, failed.error)
    return 0


def _failed(component: str | None, error: object) -> int:
    """Print the last line of every failed run (``failures.failure_line``) and return the exit status."""
    from beam_ml.orchestration.failures import EXIT_FAILED, error_summary, failure_line

    text = error_summary(error) if isinstance(error, BaseException) else str(error or "")
    sys.stdout.flush()
    print(failure_line(component, text), file=sys.stderr, flush=True)
    return EXIT_FAILED


def _save_traceback(root: str, error: BaseException) -> str:
    """Write a traceback that the store could not keep; under the root if the disk allows, else in /tmp."""
    from beam_ml import fs

    text = "".join(traceback.format_exception(error))
    name = f"error-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}.log"
    places = [os.path.join(fs.local_path(root), ".logs")] if fs.is_local(root) else []
    for directory in [*places, tempfile.gettempdir()]:
        path = os.path.join(directory, name)
        try:
            os.makedirs(directory, exist_ok=True)
            with open(path, "w") as handle:
                handle.write(text)
            return path
        except OSError:
            continue
    return "(nowhere: no disk space)"


def _print_summaries(result) -> None:
    """A line per output, in run order: its artifact id (what show, lineage and ui take) and, when worth a
    word, what it holds (rows, anomalies, accuracy, blessing, push)."""
    from beam_ml.display import summarize

    for node in result.nodes.values():
        for name, artifact in node.outputs.items():
            line = summarize(artifact)
            ref = f"{artifact.type_name} {artifact.id}"
            print(f"  {node.node_id}.{name}: {line} [{ref}]" if line else f"  {node.node_id}.{name}: [{ref}]")


# --- inspecting the store ------------------------------------------------------------------


def _open_store(args: argparse.Namespace, beam_args: Sequence[str] = ()) -> MetadataStore:
    """The store the command names; ``beam_args`` (after ``--``) configure the file systems its artifacts are on."""
    from beam_ml import fs
    from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
    from beam_ml.redaction import register_args, register_url

    fs.configure(beam_args)
    register_args(beam_args)
    url = args.metadata_url or os.environ.get(ENV_METADATA_URL)
    register_url(url)
    if not url and args.pipeline_root and not fs.is_local(args.pipeline_root):
        raise CliError(f"{args.pipeline_root} is on an object store and keeps no store: say which one with --metadata-url URL")
    if not url and args.pipeline_root:
        path = os.path.join(args.pipeline_root, "metadata.sqlite")
        if not os.path.isfile(path):
            raise CliError(f"no metadata store at {path}: has this pipeline root been run?")
        url = sqlite_url_for_root(args.pipeline_root)
    if not url:
        raise CliError(f"say which store to read: --pipeline-root DIR or --metadata-url URL (or ${ENV_METADATA_URL})")
    return MetadataStore(url)


def _find_run(store: MetadataStore, number: int, pipeline: str | None) -> RunRecord:
    """Run ``number`` of ``--pipeline`` (or of the store's only pipeline), or a CliError saying what to type."""
    try:
        return store.find_run(number, pipeline)
    except KeyError as error:
        raise CliError(str(error.args[0])) from error


def _console():
    """A console for tables: the terminal's width, or a wide page when piped (no truncated names)."""
    from rich.console import Console

    return Console() if sys.stdout.isatty() else Console(width=160)


def _when(seconds: float | None) -> str:
    return "" if seconds is None else time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(seconds))


def _took(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds:.1f}s"


def _cmd_runs(args: argparse.Namespace, _: list[str]) -> int:
    from rich.table import Table

    with _open_store(args) as store:
        table = Table(box=None)
        for column in ("run", "pipeline", "state", "started", "took", "ran", "cached", "failed at"):
            table.add_column(column)
        for run in store.list_runs(args.pipeline, limit=args.limit):
            executions = store.executions_of_run(run.id)
            failed = [e.component_id for e in executions if e.state in ("FAILED", "CANCELLED")]
            table.add_row(
                str(run.number),
                run.pipeline,
                run.state,
                _when(run.created_at),
                _took(run.duration),
                str(sum(e.state == "COMPLETE" for e in executions)),
                str(sum(e.state == "CACHED" for e in executions)),
                ", ".join(failed),
            )
    _console().print(table)
    return 0


def _cmd_logs(args: argparse.Namespace, _: list[str]) -> int:
    with _open_store(args) as store:
        try:
            execution = store.get_execution(args.execution_id)
        except KeyError as error:
            raise CliError(str(error.args[0])) from error
        run = store.get_run(execution.run_id)
    print(f"execution {execution.id}: {execution.component_id} in {run.label}: {execution.state}")
    print(f"started {_when(execution.started_at)}, took {_took(execution.duration) or '-'}, "
          f"on {execution.host} (pid {execution.pid})")
    if "cached_from" in execution.properties:
        print(f"served from cache: the outputs of execution {execution.properties['cached_from']}")
    if execution.error:
        print("\n--- error ---")
        print(execution.error)
    log_file = execution.properties.get("log_file")
    if log_file:
        print(f"\n--- log: {log_file} ---")
        try:
            with open(log_file, encoding="utf-8", errors="replace") as handle:
                text = handle.read()
        except OSError as error:
            print(f"(cannot read it: {error.strerror})")
        else:
            print(text.rstrip() if text.strip() else "(empty)")
    return 0


def _cmd_check(args: argparse.Namespace, beam_args: list[str]) -> int:
    from beam_ml.orchestration.disk_check import check_store_and_disk

    with _open_store(args, beam_args) as store:
        live = len(store.artifacts_in_state("LIVE"))
        problems = check_store_and_disk(store)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in the store or on disk ({live} LIVE artifacts)", file=sys.stderr)
        return 1
    print(f"ok: the store is consistent and its {live} LIVE artifacts match their files")
    return 0


def _cmd_show(args: argparse.Namespace, beam_args: list[str]) -> int:
    from rich.table import Table

    from beam_ml.display import render_artifact

    if (args.artifact_id is None) == (args.run is None):
        raise CliError("say what to show: ARTIFACT_ID, or --run N (`beam-ml runs` lists the runs)")
    if args.run is not None:
        return _show_run(args, beam_args)
    console = _console()
    with _open_store(args, beam_args) as store:
        try:
            artifact = store.get_artifact(args.artifact_id)
        except KeyError as error:
            raise CliError(str(error.args[0])) from error
        producer = store.producer_of(artifact.id)
        produced_in = None if producer is None else store.get_run(producer.run_id)
    summary = Table(box=None, show_header=False)
    summary.add_row("artifact", f"{artifact.id} ({artifact.type_name})")
    summary.add_row("state", artifact.state)
    summary.add_row("uri", artifact.uri)
    summary.add_row("fingerprint", artifact.fingerprint or "")
    if producer is not None:
        summary.add_row("produced by", f"{producer.component_id} (execution {producer.id}, {produced_in.label})")
    for key, value in sorted(artifact.properties.items()):
        summary.add_row(f"  {key}", str(value))
    console.print(summary)
    for renderable in render_artifact(artifact):
        console.print(renderable)
    return 0


def _show_run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """A run's executions in order, each with the artifacts it read and wrote (ids first: what show takes)."""
    from rich.table import Table

    with _open_store(args, beam_args) as store:
        run = _find_run(store, args.run, args.pipeline)
        rows = [(e, store.inputs_of(e.id), store.outputs_of(e.id)) for e in store.executions_of_run(run.id)]
    console = _console()
    console.print(f"{run.label}: {run.state}, started {_when(run.created_at)}, took {_took(run.duration) or '-'}")
    table = Table(box=None)
    for column in ("execution", "component", "state", "took", "read", "wrote"):
        table.add_column(column)
    for execution, inputs, outputs in rows:
        table.add_row(
            str(execution.id), execution.component_id, execution.state, _took(execution.duration),
            "\n".join(f"{a.id} {name} ({a.type_name})" for name, a in inputs.items()),
            "\n".join(f"{a.id} {name} ({a.type_name})" for name, a in outputs.items()),
        )
    console.print(table)
    return 0


def _cmd_lineage(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Each step and each artifact once: a graph (``--format dot`` for Graphviz), not a tree that repeats ancestors."""
    from beam_ml.metadata.lineage import lineage_graph

    with _open_store(args, beam_args) as store:
        try:
            graph = lineage_graph(store, args.artifact_id, args.direction)
        except KeyError as error:
            raise CliError(str(error.args[0])) from error
    if args.format == "dot":
        print(graph.to_dot())
        return 0
    console = _console()

    def ref(name: str, artifact) -> str:
        return f"{name}: [bold]{artifact.type_name} {artifact.id}[/]"

    def steps(title: str, arrow: str, ids: list[int]) -> None:
        if not ids:
            return
        console.print(title)
        for execution_id in ids:
            e = graph.executions[execution_id]
            reads = ", ".join(ref(n, a) for n, a in graph.reads(e.id)) or "-"
            writes = ", ".join(ref(n, a) for n, a in graph.writes(e.id)) or "-"
            cached = " cached" if e.state == "CACHED" else ""
            console.print(f"  {arrow} {e.component_id} [dim](execution {e.id}, {graph.runs[e.run_id]}{cached})[/]: "
                          f"reads {reads}; writes {writes}", soft_wrap=True)  # one line per step, for grep

    up = sorted(graph.upstream_executions)
    steps(f"made from (upstream of artifact {args.artifact_id}):", "←", up)
    steps(f"made from it (downstream of artifact {args.artifact_id}):", "→",
          sorted(set(graph.executions) - set(up)))
    console.print("artifacts:")
    for artifact in sorted(graph.artifacts.values(), key=lambda a: a.id):
        mark = " [bold](this one)[/]" if artifact.id == args.artifact_id else ""
        console.print(f"  [bold]{artifact.type_name} {artifact.id}[/]{mark} [dim]{artifact.state} {artifact.uri}[/]", soft_wrap=True)
    return 0


def _cmd_report(args: argparse.Namespace, beam_args: list[str]) -> int:
    from beam_ml.views.report import run_report

    started = time.perf_counter()
    with _open_store(args, beam_args) as store:
        run = _find_run(store, args.run_number, args.pipeline)
        html = run_report(store, run.id)
    with open(args.out, "w", encoding="utf-8") as handle:
        handle.write(html)
    size = os.path.getsize(args.out)
    print(f"wrote {args.out} ({size / 1e6:.1f} MB) in {time.perf_counter() - started:.1f}s")
    return 0


def _cmd_ui(args: argparse.Namespace, beam_args: list[str]) -> int:
    from beam_ml.ui import serve

    with _open_store(args, beam_args) as store:
        serve(store, host=args.host, port=args.port)
    return 0


# --- Dataflow jobs -----------------------------------------------------------------------------


def _dataflow_jobs(args: argparse.Namespace):
    from beam_ml.runners.dataflow_jobs import DataflowJobError, DataflowJobs

    try:
        return DataflowJobs(args.endpoint)
    except DataflowJobError as error:
        raise CliError(str(error)) from error


def _utc(value) -> str:
    return "" if value is None else value.astimezone(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _cmd_status(args: argparse.Namespace, _: list[str]) -> int:
    from beam_ml.runners.dataflow_jobs import DataflowJobError, JobRef

    if (args.job_id is None) == (args.run is None):
        raise CliError("say which job: JOB_ID --project P --region R, or --run N with its store")
    if args.run is not None:
        return _status_of_run(args)
    if not args.project or not args.region:
        raise CliError(f"status of job {args.job_id} needs --project and --region")
    with _dataflow_jobs(args) as jobs:
        try:
            status = jobs.status(JobRef(args.job_id, args.project, args.region))
        except DataflowJobError as error:
            raise CliError(str(error)) from error
    for label, value in (
        ("job", status.job_id),
        ("name", status.name),
        ("state", status.state),
        ("requested", status.requested_state if status.requested_state != "JOB_STATE_UNKNOWN" else ""),
        ("created", _utc(status.create_time)),
        ("state since", _utc(status.state_time)),
    ):
        if value:
            print(f"{label:<12} {value}")
    return 0


def _status_of_run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from beam_ml.runners.dataflow_jobs import DataflowJobError, jobs_of

    with _open_store(args) as store:
        run = _find_run(store, args.run, args.pipeline)
        recorded = jobs_of(store.executions_of_run(run.id))
    if not recorded:
        print(f"{run.label} recorded no Dataflow jobs")
        return 0
    table = Table(box=None)
    for column in ("component", "execution", "job", "project", "region", "state", "state since"):
        table.add_column(column)
    failed = False
    with _dataflow_jobs(args) as jobs:
        for execution, ref in recorded:
            try:
                status = jobs.status(ref)
                state, since = status.state, _utc(status.state_time)
            except DataflowJobError as error:
                failed, state, since = True, f"error: {error}", ""
            table.add_row(execution.component_id, str(execution.id), ref.job_id, ref.project, ref.region, state, since)
    _console().print(table)
    return 1 if failed else 0


def _cmd_cancel(args: argparse.Namespace, _: list[str]) -> int:
    from beam_ml.runners.dataflow_jobs import DataflowJobError, JobRef

    with _dataflow_jobs(args) as jobs:
        try:
            status = jobs.cancel(JobRef(args.job_id, args.project, args.region))
        except DataflowJobError as error:
            raise CliError(str(error)) from error
    print(f"job {status.job_id}: cancellation requested; state {status.state}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
