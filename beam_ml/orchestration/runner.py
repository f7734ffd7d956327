"""The local DAG runner: components in dependency order, from cache when nothing changed.

For each component the runner
1. resolves its inputs to the LIVE artifacts its upstream components gave in this run,
   or that a resolver node picked from the store (``beam_ml.resolvers``);
2. computes the cache key: component identity and code version, parameters,
   user-module file contents and the content fingerprints of the inputs;
3. serves the outputs of an earlier COMPLETE execution with that key when they
   are still LIVE and on disk (recorded as a CACHED execution of this run);
4. otherwise runs the function with outputs under staging URIs, and only when
   it returns moves them into place and marks them LIVE together with the
   execution COMPLETE. A failure marks the execution FAILED and deletes the
   staging directories; a killed process leaves PENDING rows that the next
   run marks ABANDONED (``MetadataStore.recover_abandoned``).

On an object store, which has no rename, publishing copies the staging
prefix to the final one (the target is recorded with the PENDING artifact
first), marks the outputs LIVE in the store's transaction, then deletes the
staging prefix: a crash during the copy leaves a PENDING artifact, never a
LIVE one, and the next run deletes both prefixes. A remote root needs a
named store (``--metadata-url``): there is no local directory to keep a
SQLite file in. The run's Beam flags reach every file-system call the runner
makes (``fs.configure``), and a root whose store does not answer stops the
run within ``fs.REACH_TIMEOUT_S``. Secret flags are redacted before the
run's flags are recorded (``beam_ml.redaction``).

Two identical runs started together compute each step once: when another
process is already running an execution with the same cache key, the runner
waits for it and then serves its outputs from cache (if that process dies,
its execution is marked ABANDONED and this run takes over). A component's
log output goes to its execution's log file (``orchestration.logs``).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import traceback
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from beam_ml import fs, redaction
from beam_ml.artifacts import Artifact, artifact_type
from beam_ml.context import ExecutionContext, ResolverContext
from beam_ml.dsl import Node, Pipeline, canonical_json, encode_param, external_fingerprints
from beam_ml.metadata.store import (
    CACHED,
    CANCELLED,
    COMPLETE,
    FAILED,
    LIVE,
    RUNNING,
    ArtifactRecord,
    ExecutionRecord,
    IdenticalExecution,
    MetadataStore,
    sqlite_url_for_root,
)
from beam_ml.orchestration.books import check_row_conservation
from beam_ml.orchestration.failures import (
    RunAborted,
    RunCancelled,
    StopRequest,
    cancel_reason,
    error_summary,
)
from beam_ml.orchestration.logs import console_verbose, execution_log, log_path
from beam_ml.orchestration.progress import NullProgress, Progress

SKIPPED = "SKIPPED"
RESOLVED = "RESOLVED"  # a resolver's pick (beam_ml.resolvers): no execution of its own

#: A check the runner applies after each component: it gets the run's results
#: so far and returns problems (empty when the books balance).
RunCheck = Callable[["NodeResult", Mapping[str, "NodeResult"], Pipeline], list[str]]


@dataclass
class NodeResult:
    node_id: str
    state: str  # COMPLETE, CACHED, FAILED, SKIPPED, RESOLVED
    execution: ExecutionRecord | None = None
    outputs: dict[str, ArtifactRecord] = field(default_factory=dict)
    inputs: dict[str, ArtifactRecord] = field(default_factory=dict)
    elapsed: float = 0.0
    error: str | None = None


@dataclass
class RunResult:
    pipeline: str
    run_id: int  # the store's key for the run
    state: str  # COMPLETE or FAILED
    nodes: dict[str, NodeResult]
    elapsed: float
    run_number: int  # counts the pipeline's runs from 1: what the CLI and the views show

    @property
    def failed(self) -> NodeResult | None:
        return next((n for n in self.nodes.values() if n.state == FAILED), None)

    def outputs(self, node_id: str) -> dict[str, ArtifactRecord]:
        return self.nodes[node_id].outputs

    def ran(self) -> list[str]:
        """Ids of the components that executed (not served from cache), in order."""
        return [n.node_id for n in self.nodes.values() if n.state == COMPLETE]


class ComponentFailed(RuntimeError):
    """Raised inside the runner to stop a run; carries the failing node's id."""


class StoreNotNamed(ValueError):
    """A pipeline root on an object store without ``--metadata-url``: where would the store live?"""


def store_url_for(pipeline: Pipeline, metadata_url: str | None = None) -> str:
    """The store a run of ``pipeline`` records in: the URL given, else SQLite under a local root.

    A root on an object store cannot hold a SQLite file; such a run must name
    its store (PostgreSQL, or an explicit SQLite path), or it stops here.
    """
    url = metadata_url or pipeline.metadata_url
    if url:
        return url
    if not fs.is_local(pipeline.root):
        raise StoreNotNamed(
            f"the pipeline root {pipeline.root} is on an object store, which cannot hold the metadata store: "
            "name one with --metadata-url (postgresql+psycopg://USER@HOST/DB, or sqlite:////an/explicit/path.sqlite)"
        )
    return sqlite_url_for_root(pipeline.root)


class LocalDagRunner:
    """Runs a pipeline on this machine; Beam components use the run's Beam options."""

    def __init__(
        self,
        *,
        beam_args: Sequence[str] = (),
        metadata_url: str | None = None,
        progress: Progress | None = None,
        checks: Sequence[RunCheck] = (check_row_conservation,),
        verbose: bool | None = None,
        wait_interval: float = 0.5,
        stop: StopRequest | None = None,
    ) -> None:
        """``verbose``: let third-party output (fd 2) through to the console instead of only the
        execution's log file; None follows the command line's ``-v`` (``logs.configure_console``).
        ``wait_interval``: seconds between looks at an identical execution another run is computing.
        ``stop``: a signal recorded there stops the run before its next component (``beam-ml watch``).
        """
        self.stop = stop
        self.beam_args = tuple(beam_args)
        self.verbose = verbose
        self.wait_interval = wait_interval
        self.metadata_url = metadata_url
        self.progress = progress or NullProgress()
        self.checks = tuple(checks)

    def store_for(self, pipeline: Pipeline) -> MetadataStore:
        return MetadataStore(store_url_for(pipeline, self.metadata_url))

    def run(self, pipeline: Pipeline) -> RunResult:
        """Run every component in order; returns the run's result, or raises when the run could not go on.

        A component that fails is a FAILED result (the run stops there). A
        signal (Ctrl-C, SIGTERM as ``failures.Terminated``) marks the running
        execution and the run CANCELLED and raises ``RunCancelled``; an error
        outside the component's code (a full disk under the store, a bug in
        beam-ml) marks the run FAILED, as far as the store can still be
        written, and raises ``RunAborted``. Both name the component.
        """
        started = time.monotonic()
        url = store_url_for(pipeline, self.metadata_url)
        redaction.register_args(self.beam_args)
        redaction.register_url(url)
        fs.configure(self.beam_args)
        fs.check_reachable(pipeline.root)
        with MetadataStore(url) as store:
            for uri in store.recover_abandoned():
                fs.remove_tree(uri)
            run = store.begin_run(
                pipeline.name, {"beam_args": redaction.redact_args(self.beam_args), "root": redaction.redact_url(pipeline.root)}
            )
            results = {node_id: NodeResult(node_id, SKIPPED) for node_id in pipeline.order}
            self.progress.start(pipeline)
            state = COMPLETE
            current: str | None = None
            try:
                for node_id in pipeline.order:
                    if self.stop is not None and self.stop.requested:
                        current = None  # stopped between components: none was cut short
                        raise self.stop.interrupt()
                    current = node_id
                    node = pipeline.node(node_id)
                    self.progress.node_started(node_id)
                    result = results[node_id] = self.run_node(store, pipeline, run.id, node, results)
                    self.progress.node_finished(node_id, result.state, result.elapsed, result.error)
                    if result.state == FAILED:
                        state = FAILED
                        break
                current = None
                store.end_run(run.id, state)
            except KeyboardInterrupt as interrupt:
                _end_run_if_possible(store, run.id, CANCELLED)
                raise RunCancelled(run.id, current, cancel_reason(interrupt), run.number) from interrupt
            except Exception as error:
                _end_run_if_possible(store, run.id, FAILED)
                raise RunAborted(run.id, current, error, run.number) from error
            finally:
                self.progress.stop()
        return RunResult(pipeline.name, run.id, state, results, time.monotonic() - started, run.number)

    def run_node(
        self, store: MetadataStore, pipeline: Pipeline, run_id: int, node: Node, results: Mapping[str, NodeResult]
    ) -> NodeResult:
        """Run one component in run ``run_id`` of an open store, then the run's checks.

        The one implementation of "run a node": the loop of ``run`` and a single
        orchestrator task (``orchestration.node_task``) both call it; ``results``
        holds at least the upstream nodes' results in this run (their outputs are the inputs).
        """
        result = self._run_node(store, pipeline, run_id, node, results)
        # A resolver's pick was written by another execution, from other inputs (the previous span's
        # statistics): its books were checked when that execution ran.
        if result.state not in (FAILED, RESOLVED):
            problems = [p for check in self.checks for p in check(result, results, pipeline)]
            if problems:
                result.error = "; ".join(problems)
                if result.state == COMPLETE and result.execution is not None:
                    store.fail_execution(result.execution.id, result.error, published=True)
                result.state = FAILED
        return result

    def _run_node(
        self, store: MetadataStore, pipeline: Pipeline, run_id: int, node: Node, results: Mapping[str, NodeResult]
    ) -> NodeResult:
        started = time.monotonic()
        inputs: dict[str, ArtifactRecord] = {}
        for name, channel in node.inputs.items():
            if channel is None:
                continue
            record = results[channel.producer_id].outputs.get(channel.output)
            if record is not None:
                inputs[name] = record
            elif not node.spec.inputs[name].optional:  # an empty resolution feeding a required input
                return NodeResult(
                    node.id, FAILED, None, {}, inputs, time.monotonic() - started,
                    f"input {name!r} is required, but {channel.producer_id} resolved no "
                    f"{channel.type.__name__} (e.g. no blessed model yet): run the pipeline that makes one first",
                )
        if node.spec.resolver:
            return self._resolve(store, pipeline, run_id, node, inputs, started)
        parameters = {name: encode_param(value) for name, value in node.params.items()}
        cache_key = _cache_key(node, parameters, inputs)
        unusable: set[int] = set()  # COMPLETE executions with this key whose outputs are gone from disk
        while True:
            for source, outputs in store.cached_candidates(cache_key):
                if all(fs.exists(a.uri) for a in outputs.values()):
                    execution = store.record_cached_execution(
                        run_id, node.id, node.spec.type_id, cache_key, parameters, inputs, outputs, source
                    )
                    return NodeResult(node.id, CACHED, execution, outputs, inputs, time.monotonic() - started)
                unusable.add(source.id)
            staging = {
                name: (cls.TYPE_NAME, fs.join(pipeline.root, node.id, name, f".staging-{uuid.uuid4().hex}"))
                for name, cls in node.spec.outputs.items()
            }
            log_file = log_path(pipeline.root, pipeline.name, node.id, uuid.uuid4().hex[:12])
            try:
                execution, pending = store.start_execution(
                    run_id, node.id, node.spec.type_id, cache_key, parameters, inputs, staging,
                    properties={"log_file": log_file}, known_complete=frozenset(unusable),
                )
                break
            except IdenticalExecution as identical:
                self._wait_for(store, identical.execution)

        outputs = {name: node.spec.outputs[name](rec.uri, id=rec.id, state=rec.state) for name, rec in pending.items()}
        tmp_dir = fs.join(pipeline.root, ".tmp", str(execution.id))
        context = ExecutionContext(
            pipeline.name, pipeline.root, run_id, execution.id, node.id, self.beam_args, store, tmp_dir
        )
        verbose = self.verbose if self.verbose is not None else console_verbose()
        try:
            with execution_log(log_file, redirect_fd2=not verbose):
                for artifact in outputs.values():
                    fs.makedirs(artifact.uri)
                fs.makedirs(tmp_dir)
                _call(node, inputs, outputs, context)
            # Named by the artifact id: the number the run summary, show, lineage and the UI print.
            finals = {name: fs.join(pipeline.root, node.id, name, str(artifact.id)) for name, artifact in outputs.items()}
            remote = not fs.is_local(pipeline.root)
            if remote:  # no rename: copy, and say where first, so a crash's partial copy is found and deleted
                store.mark_publishing({outputs[name].id: final for name, final in finals.items()})
            published = {}
            for name, artifact in outputs.items():
                if remote:
                    fs.copy_tree(artifact.uri, finals[name])
                else:
                    fs.rename(artifact.uri, finals[name])
                published[artifact.id] = (
                    finals[name], _json_properties(node, name, artifact), type(artifact).content_fingerprint(finals[name])
                )
            store.complete_execution(execution.id, published, context.notes)
        except BaseException as error:
            # Free the space first: on a full disk the store can record the failure only once they are gone.
            for artifact in outputs.values():
                fs.remove_tree(artifact.uri)
            if not fs.is_local(pipeline.root):
                for name, artifact in outputs.items():
                    fs.remove_tree(fs.join(pipeline.root, node.id, name, str(artifact.id)))
            fs.remove_tree(tmp_dir)
            trace = redaction.scrub("".join(traceback.format_exception(error)).strip())
            cancelled = isinstance(error, KeyboardInterrupt)
            for uri in store.fail_execution(
                execution.id,
                f"{cancel_reason(error)}\n\n{trace}" if cancelled else trace,
                properties=_json_safe_notes(context.notes),
                state=CANCELLED if cancelled else FAILED,
            ):
                fs.remove_tree(uri)
            if not isinstance(error, Exception):
                raise  # KeyboardInterrupt, SystemExit: recorded, then let through
            return NodeResult(
                node.id, FAILED, store.get_execution(execution.id), {}, inputs, time.monotonic() - started,
                error_summary(error),
            )
        finally:
            fs.remove_tree(tmp_dir)
        if remote:  # the copies are LIVE; the staging prefixes are now only garbage
            for artifact in outputs.values():
                fs.remove_tree(artifact.uri)
        return NodeResult(
            node.id, COMPLETE, store.get_execution(execution.id), store.outputs_of(execution.id), inputs,
            time.monotonic() - started,
        )

    def _resolve(
        self, store: MetadataStore, pipeline: Pipeline, run_id: int, node: Node,
        inputs: Mapping[str, ArtifactRecord], started: float,
    ) -> NodeResult:
        """A resolver's pick: its outputs are existing artifacts (or none), recorded as its consumers' inputs."""
        kwargs: dict[str, Any] = dict(node.params)
        kwargs.update(_input_artifacts(node, inputs))
        if node.spec.context_arg:
            kwargs[node.spec.context_arg] = ResolverContext(pipeline.name, run_id, store)
        try:
            picked = node.spec.fn(**kwargs)
            unknown = set(picked) - set(node.spec.outputs)
            if unknown:
                raise TypeError(f"resolver {node.id} returned outputs it does not declare: {sorted(unknown)}")
        except Exception as error:
            return NodeResult(node.id, FAILED, None, {}, dict(inputs), time.monotonic() - started, error_summary(error))
        outputs = {name: record for name, record in picked.items() if record is not None}
        return NodeResult(node.id, RESOLVED, None, outputs, dict(inputs), time.monotonic() - started)

    def _wait_for(self, store: MetadataStore, execution: ExecutionRecord) -> None:
        """Until an identical execution finished (or its process died: it is then marked ABANDONED)."""
        while True:
            current = store.get_execution(execution.id)
            if current.state != RUNNING:
                return
            if not store.process_alive(current):
                for uri in store.recover_abandoned():
                    fs.remove_tree(uri)
                return
            time.sleep(self.wait_interval)


def _end_run_if_possible(store: MetadataStore, run_id: int, state: str) -> None:
    """Record a run's end unless the store cannot be written (a full disk): the error being raised says why."""
    with contextlib.suppress(Exception):
        for uri in store.end_run(run_id, state):
            fs.remove_tree(uri)


def _call(node: Node, inputs: Mapping[str, ArtifactRecord], outputs: Mapping[str, Artifact], context: ExecutionContext) -> None:
    kwargs: dict[str, Any] = dict(node.params)
    kwargs.update(_input_artifacts(node, inputs))
    kwargs.update(outputs)
    if node.spec.context_arg:
        kwargs[node.spec.context_arg] = context
    node.spec.fn(**kwargs)


def _input_artifacts(node: Node, inputs: Mapping[str, ArtifactRecord]) -> dict[str, Artifact | None]:
    """Each declared input as an artifact of its type (None when unwired or resolved empty)."""
    artifacts: dict[str, Artifact | None] = {}
    for name, input_spec in node.spec.inputs.items():
        record = inputs.get(name)
        if record is None:
            artifacts[name] = None
            continue
        cls = artifact_type(record.type_name)
        if not issubclass(cls, input_spec.type):
            cls = input_spec.type
        artifacts[name] = cls(record.uri, record.properties, id=record.id, fingerprint=record.fingerprint, state=LIVE)
    return artifacts


def _json_safe_notes(notes: Mapping[str, Any]) -> dict[str, Any]:
    """A failing component's notes as JSON, dropping what cannot be stored rather than failing again."""
    return {key: value for key, value in notes.items() if _is_json(value)}


def _is_json(value: Any) -> bool:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True


def _json_properties(node: Node, output: str, artifact: Artifact) -> dict[str, Any]:
    try:
        return json.loads(json.dumps(artifact.properties, allow_nan=False))
    except (TypeError, ValueError) as error:
        raise TypeError(f"{node.id}: properties of output {output!r} must be JSON values: {error}") from error


def _cache_key(node: Node, parameters: Mapping[str, Any], inputs: Mapping[str, ArtifactRecord]) -> str:
    key = {
        "component": node.spec.type_id,
        "code": node.spec.code_version,
        "parameters": parameters,
        "external": external_fingerprints(node.params),
        "inputs": {name: artifact.fingerprint for name, artifact in sorted(inputs.items())},
    }
    return hashlib.sha256(canonical_json(key).encode()).hexdigest()
