"""One component of one run, as an orchestrator task (Airflow, Kubeflow) runs it: ``beam-ml run-node``.

An orchestrator runs each component in a process of its own; the tasks of one
orchestrator run share only the pipeline root and the metadata store. The
orchestrator's run id (``run_key``) names the store's run
(``MetadataStore.join_run``): the first task creates it, the others find it.
A task takes its inputs from the outputs its upstream components published
in that run (the newest finished execution of each), then runs the component
through ``LocalDagRunner.run_node`` - the same code as a local run: cache,
staging, atomic publishing, the run's checks. The run is marked FAILED when a
component fails, and COMPLETE when the last of its components has finished.

A resolver (``beam_ml.resolvers``) is no task of its own: it records nothing
in the store, so another process could not read its pick. The task of the
component that reads from it resolves it, just before running the component
(:func:`task_upstreams` says what each task waits for).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

from beam_ml import fs, redaction
from beam_ml.dsl import Pipeline
from beam_ml.metadata.store import CACHED, CANCELLED, COMPLETE, FAILED, MetadataStore, RunRecord
from beam_ml.orchestration.failures import RunAborted, RunCancelled, cancel_reason
from beam_ml.orchestration.runner import LocalDagRunner, NodeResult, store_url_for

FINISHED = (COMPLETE, CACHED)


class UnknownComponent(ValueError):
    """The task names a component the pipeline does not have."""


class UpstreamNotFinished(RuntimeError):
    """A task started before a component it reads from finished in the same run."""


def run_node(
    pipeline: Pipeline,
    node_id: str,
    run_key: str,
    *,
    beam_args: Sequence[str] = (),
    metadata_url: str | None = None,
    verbose: bool | None = None,
) -> tuple[RunRecord, NodeResult]:
    """Run component ``node_id`` in the run the orchestrator calls ``run_key``; returns the run and the result.

    A component that fails is a FAILED result (the run is marked FAILED);
    ``RunCancelled`` and ``RunAborted`` as for ``LocalDagRunner.run``.
    """
    if node_id not in pipeline.order:
        raise UnknownComponent(f"pipeline {pipeline.name} has no component {node_id!r}; it has {', '.join(pipeline.order)}")
    url = store_url_for(pipeline, metadata_url)
    redaction.register_args(beam_args)
    redaction.register_url(url)
    fs.configure(beam_args)
    fs.check_reachable(pipeline.root)
    runner = LocalDagRunner(beam_args=beam_args, metadata_url=metadata_url, verbose=verbose)
    node = pipeline.node(node_id)
    tasks = [n for n in pipeline.order if not pipeline.node(n).spec.resolver]
    with MetadataStore(url) as store:
        for uri in store.recover_abandoned():
            fs.remove_tree(uri)
        run = store.join_run(
            pipeline.name, run_key,
            {"beam_args": redaction.redact_args(beam_args), "root": redaction.redact_url(pipeline.root)},
        )
        finished = _finished_results(store, run.id)
        missing = sorted(set(_waits_for(pipeline, node_id)) - finished.keys())
        if missing:
            raise UpstreamNotFinished(
                f"{node_id} reads from {', '.join(missing)}, which have not finished in run {run_key!r} "
                f"of {pipeline.name}: run them first (beam-ml run-node ... --run-id {run_key})"
            )
        try:
            result = _resolve_upstream_resolvers(runner, store, pipeline, run.id, node_id, finished)
            if result is None:
                result = runner.run_node(store, pipeline, run.id, node, finished)
        except KeyboardInterrupt as interrupt:
            _end_run(store, run.id, CANCELLED)
            raise RunCancelled(run.id, node_id, cancel_reason(interrupt), run.number) from interrupt
        except Exception as error:
            _end_run(store, run.id, FAILED)
            raise RunAborted(run.id, node_id, error, run.number) from error
        if result.state == FAILED:
            _end_run(store, run.id, FAILED)
        elif set(tasks) <= _finished_results(store, run.id).keys():
            store.end_run(run.id, COMPLETE)
        return store.get_run(run.id), result


def task_upstreams(pipeline: Pipeline) -> dict[str, list[str]]:
    """The tasks an orchestrator runs for ``pipeline``, in order, each with the tasks it waits for.

    One task per component but the resolvers; a component that reads from a
    resolver waits for the tasks the resolver reads from (its task resolves it).
    """
    return {
        node_id: _waits_for(pipeline, node_id) for node_id in pipeline.order if not pipeline.node(node_id).spec.resolver
    }


def _waits_for(pipeline: Pipeline, node_id: str) -> list[str]:
    """The components (not resolvers) whose outputs ``node_id`` reads, directly or through resolvers."""
    found: set[str] = set()
    for upstream in pipeline.node(node_id).upstream_ids:
        if pipeline.node(upstream).spec.resolver:
            found.update(_waits_for(pipeline, upstream))
        else:
            found.add(upstream)
    return sorted(found)


def _resolve_upstream_resolvers(
    runner: LocalDagRunner, store: MetadataStore, pipeline: Pipeline, run_id: int, node_id: str,
    results: dict[str, NodeResult],
) -> NodeResult | None:
    """Resolve, in order, the resolvers ``node_id`` reads through, adding their picks to ``results``.

    Returns the failed result (named after ``node_id``, saying which resolver failed) or None.
    """
    def through(current: str) -> set[str]:
        found: set[str] = set()
        for upstream in pipeline.node(current).upstream_ids:
            if pipeline.node(upstream).spec.resolver:
                found |= {upstream} | through(upstream)
        return found

    resolvers = through(node_id)
    for resolver_id in (n for n in pipeline.order if n in resolvers):
        resolved = runner.run_node(store, pipeline, run_id, pipeline.node(resolver_id), results)
        if resolved.state == FAILED:
            return NodeResult(
                node_id, FAILED, None, {}, {}, resolved.elapsed, f"its input resolver {resolver_id} failed: {resolved.error}"
            )
        results[resolver_id] = resolved
    return None


def _finished_results(store: MetadataStore, run_id: int) -> dict[str, NodeResult]:
    """Each component's newest COMPLETE or CACHED execution in the run, with what it read and wrote."""
    newest = {e.component_id: e for e in store.executions_of_run(run_id) if e.state in FINISHED}
    return {
        node_id: NodeResult(node_id, e.state, e, store.outputs_of(e.id), store.inputs_of(e.id))
        for node_id, e in newest.items()
    }


def _end_run(store: MetadataStore, run_id: int, state: str) -> None:
    """Record the run's end unless the store cannot be written: the error being raised says why."""
    with contextlib.suppress(Exception):
        for uri in store.end_run(run_id, state):
            fs.remove_tree(uri)
