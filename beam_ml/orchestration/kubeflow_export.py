"""A pipeline as a Kubeflow Pipelines v2 pipeline: ``beam-ml export kubeflow``.

kfp's own SDK builds it and kfp's own compiler writes the YAML, so what
Kubeflow runs is what kfp validated. One kfp component per beam-ml
component, each a lightweight Python component on the project's image
(the ``Dockerfile`` at the repository root) whose body is ``beam-ml
run-node`` (:func:`run_beam_ml_node`); the edges are the pipeline's wiring
(``.after()``); the kfp run's id is the beam-ml run id, so all the tasks of
one kfp run make one run in ``runs``, ``show`` and lineage.

Kubeflow runs each task in a pod of its own, possibly on another machine:
the tasks share only the pipeline root and the metadata store, so the
export refuses a local root and a SQLite store (``allow_local`` is for
kfp's local runner, ``kfp.local``, whose tasks are processes on this
machine). kfp's own cache is off: beam-ml's cache decides, and records the
cached executions in its store.
"""

# No ``from __future__ import annotations``: kfp reads run_beam_ml_node's annotations as types.
import dataclasses
from collections.abc import Sequence

from kfp import compiler, dsl
from kfp.dsl.python_component import PythonComponent

from beam_ml import fs, redaction
from beam_ml.dsl import Pipeline
from beam_ml.orchestration.node_task import task_upstreams


class NotShareable(ValueError):
    """A setting that Kubeflow's tasks, in separate pods, could not share (or that would leak a secret)."""


def run_beam_ml_node(
    pipeline_file: str, node_id: str, run_id: str, pipeline_root: str, metadata_url: str, beam_args: list
):
    """The body of every task: ``beam-ml run-node`` for one component of the kfp run ``run_id``.

    kfp copies this function's source into the compiled pipeline and runs it
    in the image, so it imports what it needs itself. It goes through the
    command's own entry point, so a task prints what ``run-node`` prints
    (third-party output to log files, ``FAILED: ...`` on failure) and fails
    with its exit status. kfp's executor has sent every INFO record to the
    console by then (Beam's, TensorFlow's, each beam-ml line twice): its
    handler goes, and the console is run-node's.
    """
    import logging
    import sys

    from beam_ml.run import main

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)

    argv = ["run-node", pipeline_file, node_id, "--run-id", run_id, "--pipeline-root", pipeline_root]
    if metadata_url:
        argv += ["--metadata-url", metadata_url]
    status = main([*argv, "--", *beam_args])
    if status:
        sys.exit(status)


def check_shareable(root: str, metadata_url: str | None, beam_args: Sequence[str], *, allow_local: bool) -> None:
    """Refuse what Kubeflow's pods could not share, and secrets that the YAML would carry in clear."""
    if not allow_local:
        if fs.is_local(root):
            raise NotShareable(
                f"the pipeline root {root} is a local path, which Kubeflow's tasks (separate pods) cannot share: "
                "give --pipeline-root on an object store (s3://bucket/path, gs://bucket/path); "
                "--allow-local is only for kfp's local runner (kfp.local) on this machine"
            )
        if not metadata_url or metadata_url.startswith("sqlite"):
            named = f"the metadata store {metadata_url}" if metadata_url else "no --metadata-url (the store would be SQLite under the root)"
            raise NotShareable(
                f"{named}: a SQLite file cannot be shared by Kubeflow's tasks: give --metadata-url of a "
                "PostgreSQL server the pods reach (postgresql+psycopg://USER@HOST/DB); "
                "--allow-local is only for kfp's local runner (kfp.local) on this machine"
            )
    if metadata_url and redaction.redact_url(metadata_url) != metadata_url:
        raise NotShareable(
            "the --metadata-url holds a password, which would be written into the pipeline YAML: leave it out "
            "and give the tasks PGPASSWORD from a Kubernetes secret"
        )
    secret = redaction.secret_flags(beam_args)
    if secret:
        raise NotShareable(
            f"Beam flags with secrets ({', '.join(secret)}) would be written into the pipeline YAML: give the "
            "tasks credentials through the standard chains instead (AWS_* variables from a Kubernetes secret, "
            "workload identity)"
        )


def build_kfp_pipeline(
    pipeline: Pipeline,
    pipeline_file: str,
    *,
    image: str,
    metadata_url: str | None = None,
    beam_args: Sequence[str] = (),
):
    """The kfp pipeline (a ``@dsl.pipeline`` function) that runs ``pipeline`` one component per task.

    ``pipeline_file`` is the path the tasks load it from, in the image (a
    relative path is taken from the image's working directory).
    """
    runner = dsl.component(run_beam_ml_node, base_image=image, install_kfp_package=False)

    def for_node(node_id: str) -> PythonComponent:
        # the same body under the component's own name: readable task names, pods and logs in Kubeflow
        spec = dataclasses.replace(runner.component_spec, name=node_id, description=f"beam-ml component {node_id}")
        return PythonComponent(component_spec=spec, python_func=runner.python_func)

    upstreams = task_upstreams(pipeline)

    @dsl.pipeline(name=pipeline.name, description=f"beam-ml pipeline {pipeline.name}: one task per component")
    def beam_ml_pipeline():
        tasks = {}
        for node_id, after in upstreams.items():
            task = for_node(node_id)(
                pipeline_file=pipeline_file,
                node_id=node_id,
                run_id=dsl.PIPELINE_JOB_ID_PLACEHOLDER,
                pipeline_root=pipeline.root,
                metadata_url=metadata_url or "",
                beam_args=list(beam_args),
            )
            task.set_display_name(node_id)
            task.set_caching_options(False)
            for upstream in after:
                task.after(tasks[upstream])
            tasks[node_id] = task

    return beam_ml_pipeline


def export_kubeflow(
    pipeline: Pipeline,
    pipeline_file: str,
    out: str,
    *,
    image: str,
    metadata_url: str | None = None,
    beam_args: Sequence[str] = (),
    allow_local: bool = False,
) -> None:
    """Compile ``pipeline`` with kfp's compiler into the pipeline YAML ``out`` (see the module docstring)."""
    check_shareable(pipeline.root, metadata_url, beam_args, allow_local=allow_local)
    kfp_pipeline = build_kfp_pipeline(pipeline, pipeline_file, image=image, metadata_url=metadata_url, beam_args=beam_args)
    compiler.Compiler().compile(pipeline_func=kfp_pipeline, package_path=out)
