"""The metadata store: every artifact, execution, run and edge between them.

SQLite (a file under the pipeline root) by default, PostgreSQL when given a
URL. The store is the only thing the runner trusts about what exists: an
artifact is usable only when it is LIVE here, and it becomes LIVE in the same
transaction that marks its execution COMPLETE, after its files were moved
into place. Anything a crashed process left behind stays PENDING until the
next run marks it ABANDONED.

Two runs may share one store at once: SQLite runs in WAL mode and every
transaction takes the write lock up front (``BEGIN IMMEDIATE``), so writers
queue instead of failing with "database is locked" half-way through.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, create_engine, delete, event, func, insert, select, text, update
from sqlalchemy.engine import Engine, make_url

from beam_ml.metadata import tables as t

PENDING, LIVE, ABANDONED = "PENDING", "LIVE", "ABANDONED"
RUNNING, COMPLETE, CACHED, FAILED = "RUNNING", "COMPLETE", "CACHED", "FAILED"
#: A run or execution stopped on purpose (SIGTERM, Ctrl-C): not a defect of its inputs or code.
CANCELLED = "CANCELLED"
#: Property of a PENDING artifact: the final URI its staging files are being copied to (object stores).
PUBLISHING_TO = "publishing_to"
INPUT, OUTPUT = "INPUT", "OUTPUT"


class MetadataSchemaError(RuntimeError):
    """The store was written by a newer beam-ml, or is not a beam-ml store."""


class IdenticalExecution(Exception):
    """Another execution with the same cache key is running or has just completed.

    Raised by ``start_execution`` instead of starting a second, identical
    computation: the caller waits for ``execution`` and reuses its outputs.
    """

    def __init__(self, execution: ExecutionRecord) -> None:
        super().__init__(f"execution {execution.id} ({execution.component_id}) has the same cache key; it is {execution.state}")
        self.execution = execution


@dataclass(frozen=True)
class ArtifactRecord:
    id: int
    type_name: str
    uri: str
    state: str
    properties: dict[str, Any]
    fingerprint: str | None
    created_at: float
    updated_at: float


@dataclass(frozen=True)
class ExecutionRecord:
    id: int
    run_id: int
    component_id: str
    component_type: str
    state: str
    started_at: float
    ended_at: float | None
    error: str | None
    cache_key: str
    parameters: dict[str, Any]
    properties: dict[str, Any]
    host: str
    pid: int

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.started_at


@dataclass(frozen=True)
class RunRecord:
    """A run. ``id`` is the store-wide key executions refer to; ``number`` counts the runs of
    ``pipeline`` from 1, and is what the command line and the views show and take."""

    id: int
    pipeline: str
    name: str
    state: str
    created_at: float
    ended_at: float | None
    properties: dict[str, Any]
    number: int

    @property
    def label(self) -> str:
        """How people name it: "run 3 of penguin"."""
        return f"run {self.number} of {self.pipeline}"

    @property
    def duration(self) -> float | None:
        return None if self.ended_at is None else self.ended_at - self.created_at


@dataclass(frozen=True)
class LockHolder:
    """The process holding a pipeline's run lock (``MetadataStore.acquire_pipeline_lock``)."""

    pipeline: str
    host: str
    pid: int
    acquired_at: float
    heartbeat_at: float

    @property
    def label(self) -> str:
        return f"pid {self.pid} on {self.host}"


def sqlite_url_for_root(pipeline_root: str) -> str:
    """The default store: ``<pipeline root>/metadata.sqlite``."""
    return "sqlite:///" + os.path.abspath(os.path.join(pipeline_root, "metadata.sqlite"))


class MetadataStore:
    """Typed access to the store; one instance per process and URL."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = _make_engine(url)
        self._host = socket.gethostname()
        self._pid = os.getpid()
        self._open()

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> MetadataStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- schema ------------------------------------------------------------------------

    def _open(self) -> None:
        """Create the tables in an empty database, migrate an older one, refuse a newer one."""
        with self.engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(7262131)"))  # one creator at a time
            if not conn.dialect.has_table(conn, "schema_info"):
                existing = conn.dialect.get_table_names(conn)
                if any(name in existing for name in ("contexts", "artifacts", "executions", "events")):
                    raise MetadataSchemaError(f"{_safe(self.url)}: has beam-ml tables but no schema_info; not opening it")
                t.metadata.create_all(conn)
                conn.execute(insert(t.schema_info).values(id=1, version=t.SCHEMA_VERSION))
                return
            version = conn.execute(select(t.schema_info.c.version)).scalar_one()
            if version > t.SCHEMA_VERSION:
                raise MetadataSchemaError(
                    f"metadata store {_safe(self.url)} has schema version {version}, but this beam-ml "
                    f"understands versions up to {t.SCHEMA_VERSION}: upgrade beam-ml to use it "
                    "(it was left unchanged)"
                )
            for step in range(version + 1, t.SCHEMA_VERSION + 1):
                for statement in t.MIGRATIONS[step]:
                    conn.execute(text(statement))
            if version < t.SCHEMA_VERSION:
                conn.execute(update(t.schema_info).values(version=t.SCHEMA_VERSION))

    def schema_version(self) -> int:
        with self.engine.begin() as conn:
            return conn.execute(select(t.schema_info.c.version)).scalar_one()

    # --- contexts ----------------------------------------------------------------------

    def begin_run(self, pipeline: str, properties: Mapping[str, Any] | None = None) -> RunRecord:
        pipeline_id = self._pipeline_context(pipeline)
        now = time.time()
        name = time.strftime("%Y%m%dT%H%M%S", time.gmtime(now)) + f"-{self._pid}-{int(now * 1e6) % 1000000:06d}"
        props = {"host": self._host, "pid": self._pid, "proc_start": _process_start(self._pid), **(properties or {})}
        with self.engine.begin() as conn:
            _serialize(conn, f"run-number:{pipeline_id}")
            run_id = _insert_run(conn, pipeline_id, name=name, properties=props, now=now)
        return self.get_run(run_id)

    def join_run(self, pipeline: str, key: str, properties: Mapping[str, Any] | None = None) -> RunRecord:
        """The run an orchestrator names ``key`` (its own run id): created by the first task, found by the others.

        Every task of one Airflow or Kubeflow run is a separate process; the key
        groups their executions into one run. The key is the run's name (unique
        per pipeline), looked up and inserted in one transaction under the same
        lock that numbers runs, so tasks starting together create it once. No
        process owns such a run: it records no host or pid, and is never taken
        for ABANDONED when the task that created it exits.
        """
        pipeline_id = self._pipeline_context(pipeline)
        now = time.time()
        with self.engine.begin() as conn:
            _serialize(conn, f"run-number:{pipeline_id}")
            found = conn.execute(
                select(t.contexts.c.id).where(
                    t.contexts.c.kind == "run", t.contexts.c.parent_id == pipeline_id, t.contexts.c.name == key
                )
            ).scalar()
            if found is None:
                found = _insert_run(
                    conn, pipeline_id, name=key, properties={"run_key": key, **(properties or {})}, now=now
                )
        return self.get_run(found)

    def end_run(self, run_id: int, state: str) -> list[str]:
        """Record how a run ended; returns the staging URIs of executions it leaves unfinished, to delete.

        A run that ends (FAILED, CANCELLED) while one of its executions in this
        process is still RUNNING - the signal or error arrived before that
        execution's own end could be recorded - ends that execution in the same
        transaction, with the run's state, so a finished run never shows a
        RUNNING step.
        """
        now = time.time()
        with self.engine.begin() as conn:
            conn.execute(update(t.contexts).where(t.contexts.c.id == run_id).values(state=state, ended_at=now))
            unfinished = conn.execute(
                select(t.executions.c.id).where(
                    t.executions.c.run_id == run_id,
                    t.executions.c.state == RUNNING,
                    t.executions.c.host == self._host,
                    t.executions.c.pid == self._pid,
                )
            ).scalars().all()
            if not unfinished:
                return []
            conn.execute(
                update(t.executions)
                .where(t.executions.c.id.in_(unfinished))
                .values(state=state, ended_at=now, error=f"the run ended {state} before this step finished")
            )
            return self._abandon_outputs(conn, list(unfinished), now)

    def _pipeline_context(self, pipeline: str) -> int:
        """The pipeline's context id, created by the first caller.

        A pipeline context has no parent, and PostgreSQL's unique constraint
        treats NULL parents as distinct: without the advisory lock, tasks
        starting together each created a pipeline context of the same name,
        and so each a run of its own.
        """
        query = select(t.contexts.c.id).where(t.contexts.c.kind == "pipeline", t.contexts.c.name == pipeline)
        with self.engine.begin() as conn:
            _serialize(conn, f"pipeline:{pipeline}")
            found = conn.execute(query).scalar()
            if found is not None:
                return found
            return conn.execute(
                insert(t.contexts).values(kind="pipeline", name=pipeline, created_at=time.time(), properties={})
            ).inserted_primary_key[0]

    # --- pipeline run locks (beam-ml watch) ----------------------------------------------

    def acquire_pipeline_lock(self, pipeline: str, *, stale_after: float) -> LockHolder | None:
        """Take the pipeline's run lock for this process; None when it is now ours, else its live holder.

        ``beam-ml watch`` runs a pipeline only under it, so two watchers - in
        one host or several sharing the store - never run one pipeline at once.
        The look and the take are one transaction (SQLite's write lock, or a
        PostgreSQL advisory lock on the name), so two processes cannot both
        take it. A holder that died is taken over: on this host its pid says
        so (as in ``recover_abandoned``); on another host, a heartbeat older
        than ``stale_after`` seconds (the holder renews it with
        ``renew_pipeline_lock`` while it runs). Taking it again renews it.
        """
        now = time.time()
        with self.engine.begin() as conn:
            _serialize(conn, f"pipeline-lock:{pipeline}")
            row = conn.execute(select(t.pipeline_locks).where(t.pipeline_locks.c.pipeline == pipeline)).first()
            if row is not None:
                ours = row.host == self._host and row.pid == self._pid
                alive = (
                    _process_alive(row.pid, row.proc_start) if row.host == self._host
                    else now - row.heartbeat_at < stale_after
                )
                if alive and not ours:
                    return LockHolder(row.pipeline, row.host, row.pid, row.acquired_at, row.heartbeat_at)
                conn.execute(delete(t.pipeline_locks).where(t.pipeline_locks.c.pipeline == pipeline))
            conn.execute(
                insert(t.pipeline_locks).values(
                    pipeline=pipeline, host=self._host, pid=self._pid, proc_start=_process_start(self._pid),
                    acquired_at=now, heartbeat_at=now,
                )
            )
        return None

    def renew_pipeline_lock(self, pipeline: str) -> bool:
        """Record that this process, holding the lock, is alive; False when the lock is no longer ours."""
        with self.engine.begin() as conn:
            renewed = conn.execute(
                update(t.pipeline_locks)
                .where(t.pipeline_locks.c.pipeline == pipeline, t.pipeline_locks.c.host == self._host,
                       t.pipeline_locks.c.pid == self._pid)
                .values(heartbeat_at=time.time())
            ).rowcount
        return renewed == 1

    def release_pipeline_lock(self, pipeline: str) -> None:
        """Give the lock back, if this process holds it."""
        with self.engine.begin() as conn:
            conn.execute(
                delete(t.pipeline_locks).where(
                    t.pipeline_locks.c.pipeline == pipeline, t.pipeline_locks.c.host == self._host,
                    t.pipeline_locks.c.pid == self._pid,
                )
            )

    def pipeline_lock_holder(self, pipeline: str) -> LockHolder | None:
        """Who holds the pipeline's run lock (alive or not), or None."""
        with self.engine.begin() as conn:
            row = conn.execute(select(t.pipeline_locks).where(t.pipeline_locks.c.pipeline == pipeline)).first()
        return None if row is None else LockHolder(row.pipeline, row.host, row.pid, row.acquired_at, row.heartbeat_at)

    def get_run(self, run_id: int) -> RunRecord:
        runs = self.list_runs(run_id=run_id)
        if not runs:
            raise KeyError(f"no run with id {run_id}")
        return runs[0]

    def pipelines(self) -> list[str]:
        """The names of the pipelines that have runs in this store, in the order they first ran."""
        query = select(t.contexts.c.name).where(t.contexts.c.kind == "pipeline").order_by(t.contexts.c.id)
        with self.engine.begin() as conn:
            return list(conn.execute(query).scalars())

    def find_run(self, number: int, pipeline: str | None = None) -> RunRecord:
        """Run ``number`` of ``pipeline``; the pipeline may be left out when the store holds only one.

        Raises ``KeyError`` with the next step to take: which pipelines there are, or which numbers.
        """
        names = self.pipelines()
        if pipeline is None:
            if len(names) > 1:
                raise KeyError(f"this store holds several pipelines ({', '.join(names)}): say which with --pipeline NAME")
            if not names:
                raise KeyError("this store holds no runs yet")
            pipeline = names[0]
        elif pipeline not in names:
            raise KeyError(f"no pipeline {pipeline!r} in this store; it has {', '.join(names) or 'none'}")
        runs, parent = t.contexts.alias("runs"), t.contexts.alias("pipelines")
        query = (
            select(runs.c.id)
            .join(parent, runs.c.parent_id == parent.c.id)
            .where(runs.c.kind == "run", runs.c.number == number, parent.c.name == pipeline)
        )
        with self.engine.begin() as conn:
            run_id = conn.execute(query).scalar()
        if run_id is None:
            raise KeyError(f"pipeline {pipeline} has no run {number}; `beam-ml runs` lists its runs")
        return self.get_run(run_id)

    def list_runs(
        self, pipeline: str | None = None, *, run_id: int | None = None, limit: int | None = None, state: str | None = None
    ) -> list[RunRecord]:
        """Runs, newest first; ``state`` keeps those recorded in that state (COMPLETE, FAILED, ...)."""
        runs, parent = t.contexts.alias("runs"), t.contexts.alias("pipelines")
        query = (
            select(runs, parent.c.name.label("pipeline"))
            .join(parent, runs.c.parent_id == parent.c.id)
            .where(runs.c.kind == "run")
            .order_by(runs.c.id.desc())
        )
        if pipeline is not None:
            query = query.where(parent.c.name == pipeline)
        if run_id is not None:
            query = query.where(runs.c.id == run_id)
        if state is not None:
            query = query.where(runs.c.state == state)
        if limit is not None:
            query = query.limit(limit)
        with self.engine.begin() as conn:
            return [
                RunRecord(
                    r.id, r.pipeline, r.name, self._run_state(r), r.created_at, r.ended_at, r.properties or {}, r.number
                )
                for r in conn.execute(query)
            ]

    def _run_state(self, row: Any) -> str:
        """A RUNNING run whose process on this host is gone is ABANDONED, whether or not a later run recorded it yet."""
        props = row.properties or {}
        if (
            row.state == RUNNING
            and props.get("host") == socket.gethostname()
            and not _process_alive(props.get("pid", -1), props.get("proc_start"))
        ):
            return ABANDONED
        return row.state

    # --- executions --------------------------------------------------------------------

    def start_execution(
        self,
        run_id: int,
        component_id: str,
        component_type: str,
        cache_key: str,
        parameters: Mapping[str, Any],
        inputs: Mapping[str, ArtifactRecord],
        outputs: Mapping[str, tuple[str, str]],
        *,
        properties: Mapping[str, Any] | None = None,
        known_complete: frozenset[int] = frozenset(),
    ) -> tuple[ExecutionRecord, dict[str, ArtifactRecord]]:
        """Record a RUNNING execution, its input edges, and its outputs as PENDING artifacts.

        ``outputs`` maps each output name to (type name, staging URI).

        Raises ``IdenticalExecution`` instead when another execution with this
        cache key is RUNNING in a live process, or COMPLETE with LIVE outputs
        and not among ``known_complete`` (those the caller already looked at
        and could not use): two identical runs started together then compute
        each step once. The look and the insert are one transaction, under
        SQLite's write lock or a PostgreSQL advisory lock on the key, so two
        processes cannot both decide that nobody is running it.
        """
        now = time.time()
        with self.engine.begin() as conn:
            _serialize(conn, cache_key)
            identical = self._identical_execution(conn, cache_key, known_complete)
            if identical is not None:
                raise IdenticalExecution(identical)
            execution_id = conn.execute(
                insert(t.executions).values(
                    run_id=run_id,
                    component_id=component_id,
                    component_type=component_type,
                    state=RUNNING,
                    started_at=now,
                    cache_key=cache_key,
                    parameters=dict(parameters),
                    properties={**(properties or {}), "proc_start": _process_start(self._pid)},
                    host=self._host,
                    pid=self._pid,
                )
            ).inserted_primary_key[0]
            self._add_events(conn, execution_id, INPUT, inputs)
            created: dict[str, int] = {}
            for name, (type_name, uri) in outputs.items():
                created[name] = conn.execute(
                    insert(t.artifacts).values(
                        type_name=type_name, uri=uri, state=PENDING, properties={}, created_at=now, updated_at=now
                    )
                ).inserted_primary_key[0]
                conn.execute(insert(t.events).values(execution_id=execution_id, artifact_id=created[name], kind=OUTPUT, name=name))
        return self.get_execution(execution_id), {name: self.get_artifact(aid) for name, aid in created.items()}

    def _identical_execution(self, conn: Connection, cache_key: str, known_complete: frozenset[int]) -> ExecutionRecord | None:
        rows = conn.execute(
            select(t.executions)
            .where(t.executions.c.cache_key == cache_key, t.executions.c.state.in_([RUNNING, COMPLETE]))
            .order_by(t.executions.c.id.desc())
        ).all()
        for row in rows:
            execution = _execution(row)
            if execution.state == RUNNING:
                ours = execution.host == self._host and execution.pid == self._pid
                # This process runs one node at a time: a RUNNING row of its own is a leftover
                # whose failure could not be recorded, not work to wait for.
                if not ours and self.process_alive(execution):
                    return execution
                continue
            if execution.state == COMPLETE and execution.id not in known_complete:
                states = conn.execute(
                    select(t.artifacts.c.state)
                    .join(t.events, t.events.c.artifact_id == t.artifacts.c.id)
                    .where(t.events.c.execution_id == execution.id, t.events.c.kind == OUTPUT)
                ).scalars().all()
                if all(state == LIVE for state in states):
                    return execution
        return None

    def process_alive(self, execution: ExecutionRecord) -> bool:
        """Whether the process running an execution still exists (always True for another host: we cannot see it)."""
        if execution.host != self._host:
            return True
        return _process_alive(execution.pid, execution.properties.get("proc_start"))

    def complete_execution(
        self,
        execution_id: int,
        outputs: Mapping[int, tuple[str, Mapping[str, Any], str]],
        properties: Mapping[str, Any] | None = None,
    ) -> None:
        """In one transaction: each output (artifact id -> final URI, properties, fingerprint) LIVE, the execution COMPLETE."""
        now = time.time()
        with self.engine.begin() as conn:
            for artifact_id, (uri, props, fingerprint) in outputs.items():
                conn.execute(
                    update(t.artifacts)
                    .where(t.artifacts.c.id == artifact_id, t.artifacts.c.state == PENDING)
                    .values(uri=uri, state=LIVE, properties=dict(props), fingerprint=fingerprint, updated_at=now)
                )
            values: dict[str, Any] = {"state": COMPLETE, "ended_at": now}
            if properties:
                current = conn.execute(select(t.executions.c.properties).where(t.executions.c.id == execution_id)).scalar_one()
                values["properties"] = {**(current or {}), **properties}
            conn.execute(update(t.executions).where(t.executions.c.id == execution_id).values(**values))

    def mark_publishing(self, targets: Mapping[int, str]) -> None:
        """Record where each PENDING artifact (id -> final URI) is about to be copied.

        On an object store publishing is a copy, not a rename; if the process
        dies during it, the artifact stays PENDING and whoever abandons it
        (``recover_abandoned``) gets this target back to delete as well.
        """
        now = time.time()
        with self.engine.begin() as conn:
            for artifact_id, uri in targets.items():
                current = conn.execute(select(t.artifacts.c.properties).where(t.artifacts.c.id == artifact_id)).scalar_one()
                conn.execute(
                    update(t.artifacts)
                    .where(t.artifacts.c.id == artifact_id, t.artifacts.c.state == PENDING)
                    .values(properties={**(current or {}), PUBLISHING_TO: uri}, updated_at=now)
                )

    def fail_execution(
        self,
        execution_id: int,
        error: str,
        *,
        published: bool = False,
        properties: Mapping[str, Any] | None = None,
        state: str = FAILED,
    ) -> list[str]:
        """Mark an execution FAILED (or ``state``: CANCELLED) and its PENDING outputs ABANDONED; returns their URIs.

        ``published=True`` also withdraws outputs it already made LIVE: for a
        step that finished but whose results a later check refused.
        ``properties`` (what the component noted before failing, such as the id
        of the Dataflow job that failed) are kept with the execution.
        """
        now = time.time()
        with self.engine.begin() as conn:
            values: dict[str, Any] = {"state": state, "error": error, "ended_at": now}
            if properties:
                current = conn.execute(select(t.executions.c.properties).where(t.executions.c.id == execution_id)).scalar_one()
                values["properties"] = {**(current or {}), **properties}
            conn.execute(update(t.executions).where(t.executions.c.id == execution_id).values(**values))
            return self._abandon_outputs(conn, [execution_id], now, states=(PENDING, LIVE) if published else (PENDING,))

    def record_cached_execution(
        self,
        run_id: int,
        component_id: str,
        component_type: str,
        cache_key: str,
        parameters: Mapping[str, Any],
        inputs: Mapping[str, ArtifactRecord],
        outputs: Mapping[str, ArtifactRecord],
        source: ExecutionRecord,
    ) -> ExecutionRecord:
        """A CACHED execution in this run, wired to the earlier execution's LIVE outputs."""
        now = time.time()
        with self.engine.begin() as conn:
            execution_id = conn.execute(
                insert(t.executions).values(
                    run_id=run_id,
                    component_id=component_id,
                    component_type=component_type,
                    state=CACHED,
                    started_at=now,
                    ended_at=now,
                    cache_key=cache_key,
                    parameters=dict(parameters),
                    properties={"cached_from": source.id},
                    host=self._host,
                    pid=self._pid,
                )
            ).inserted_primary_key[0]
            self._add_events(conn, execution_id, INPUT, inputs)
            self._add_events(conn, execution_id, OUTPUT, outputs)
        return self.get_execution(execution_id)

    def cached_candidates(self, cache_key: str) -> Iterator[tuple[ExecutionRecord, dict[str, ArtifactRecord]]]:
        """Earlier COMPLETE executions with this cache key whose outputs are all LIVE, newest first."""
        query = (
            select(t.executions)
            .where(t.executions.c.cache_key == cache_key, t.executions.c.state == COMPLETE)
            .order_by(t.executions.c.id.desc())
        )
        with self.engine.begin() as conn:
            candidates = [_execution(row) for row in conn.execute(query)]
        for execution in candidates:
            outputs = self.outputs_of(execution.id)
            if all(a.state == LIVE for a in outputs.values()):
                yield execution, outputs

    def recover_abandoned(self) -> list[str]:
        """Mark what dead processes on this host left RUNNING as ABANDONED; returns URIs to delete.

        A run killed with SIGKILL cannot clean up after itself; the next run
        does it here. Executions of live processes (a concurrent run) are left alone.
        """
        now = time.time()
        with self.engine.begin() as conn:
            running = conn.execute(
                select(t.executions.c.id, t.executions.c.pid, t.executions.c.properties).where(
                    t.executions.c.state == RUNNING, t.executions.c.host == self._host
                )
            ).all()
            dead = [row.id for row in running if not _process_alive(row.pid, (row.properties or {}).get("proc_start"))]
            uris: list[str] = []
            if dead:
                conn.execute(
                    update(t.executions)
                    .where(t.executions.c.id.in_(dead))
                    .values(state=ABANDONED, ended_at=now, error="the process running it died before it finished")
                )
                uris = self._abandon_outputs(conn, dead, now)
            runs = conn.execute(
                select(t.contexts.c.id, t.contexts.c.properties).where(t.contexts.c.kind == "run", t.contexts.c.state == RUNNING)
            ).all()
            dead_runs = [
                row.id
                for row in runs
                if (row.properties or {}).get("host") == self._host
                and not _process_alive(row.properties.get("pid", -1), row.properties.get("proc_start"))
            ]
            if dead_runs:
                conn.execute(update(t.contexts).where(t.contexts.c.id.in_(dead_runs)).values(state=ABANDONED, ended_at=now))
        return uris

    def _abandon_outputs(
        self, conn: Connection, execution_ids: list[int], now: float, states: tuple[str, ...] = (PENDING,)
    ) -> list[str]:
        pending = conn.execute(
            select(t.artifacts.c.id, t.artifacts.c.uri, t.artifacts.c.properties)
            .join(t.events, t.events.c.artifact_id == t.artifacts.c.id)
            .where(t.events.c.execution_id.in_(execution_ids), t.events.c.kind == OUTPUT, t.artifacts.c.state.in_(states))
        ).all()
        if pending:
            conn.execute(
                update(t.artifacts)
                .where(t.artifacts.c.id.in_([row.id for row in pending]))
                .values(state=ABANDONED, updated_at=now)
            )
        uris = [row.uri for row in pending]
        # A copy to the final prefix that a dead process had begun (``mark_publishing``); never a LIVE output's.
        uris += [row.properties[PUBLISHING_TO] for row in pending if PUBLISHING_TO in (row.properties or {}) and row.uri != row.properties[PUBLISHING_TO]]
        return uris

    @staticmethod
    def _add_events(conn: Connection, execution_id: int, kind: str, artifacts: Mapping[str, ArtifactRecord]) -> None:
        for name, artifact in artifacts.items():
            conn.execute(insert(t.events).values(execution_id=execution_id, artifact_id=artifact.id, kind=kind, name=name))

    # --- reading -----------------------------------------------------------------------

    def get_artifact(self, artifact_id: int) -> ArtifactRecord:
        with self.engine.begin() as conn:
            row = conn.execute(select(t.artifacts).where(t.artifacts.c.id == artifact_id)).first()
        if row is None:
            raise KeyError(f"no artifact with id {artifact_id}")
        return _artifact(row)

    def get_execution(self, execution_id: int) -> ExecutionRecord:
        with self.engine.begin() as conn:
            row = conn.execute(select(t.executions).where(t.executions.c.id == execution_id)).first()
        if row is None:
            raise KeyError(f"no execution with id {execution_id}")
        return _execution(row)

    def executions_of_run(self, run_id: int) -> list[ExecutionRecord]:
        query = select(t.executions).where(t.executions.c.run_id == run_id).order_by(t.executions.c.id)
        with self.engine.begin() as conn:
            return [_execution(row) for row in conn.execute(query)]

    def _edges(self, execution_id: int, kind: str) -> dict[str, ArtifactRecord]:
        query = (
            select(t.events.c.name, t.artifacts)
            .join(t.artifacts, t.events.c.artifact_id == t.artifacts.c.id)
            .where(t.events.c.execution_id == execution_id, t.events.c.kind == kind)
            .order_by(t.events.c.id)
        )
        with self.engine.begin() as conn:
            return {row.name: _artifact(row) for row in conn.execute(query)}

    def inputs_of(self, execution_id: int) -> dict[str, ArtifactRecord]:
        return self._edges(execution_id, INPUT)

    def outputs_of(self, execution_id: int) -> dict[str, ArtifactRecord]:
        return self._edges(execution_id, OUTPUT)

    def producer_of(self, artifact_id: int) -> ExecutionRecord | None:
        """The execution that wrote the artifact (not the cached executions that reused it)."""
        query = (
            select(t.executions)
            .join(t.events, t.events.c.execution_id == t.executions.c.id)
            .where(t.events.c.artifact_id == artifact_id, t.events.c.kind == OUTPUT, t.executions.c.state != CACHED)
            .order_by(t.executions.c.id)
            .limit(1)
        )
        with self.engine.begin() as conn:
            row = conn.execute(query).first()
        return None if row is None else _execution(row)

    def consumers_of(self, artifact_id: int) -> list[ExecutionRecord]:
        """Executions that read the artifact and finished (ran or were served from cache)."""
        query = (
            select(t.executions)
            .join(t.events, t.events.c.execution_id == t.executions.c.id)
            .where(
                t.events.c.artifact_id == artifact_id,
                t.events.c.kind == INPUT,
                t.executions.c.state.in_([COMPLETE, CACHED]),
            )
            .order_by(t.executions.c.id)
        )
        with self.engine.begin() as conn:
            return [_execution(row) for row in conn.execute(query)]

    def latest_artifact(
        self, type_name: str, *, pipeline: str | None = None, where: Mapping[str, Any] | None = None
    ) -> ArtifactRecord | None:
        """The newest LIVE artifact of a type, optionally in one pipeline and with given property values."""
        return next(self.live_artifacts(type_name, pipeline=pipeline, where=where), None)

    def live_artifacts(
        self, type_name: str, *, pipeline: str | None = None, where: Mapping[str, Any] | None = None
    ) -> Iterator[ArtifactRecord]:
        """LIVE artifacts of a type, newest first, optionally in one pipeline and with given property values.

        What resolvers choose from (``beam_ml.resolvers``): the latest blessed model, the previous span.
        """
        query = select(t.artifacts).where(t.artifacts.c.type_name == type_name, t.artifacts.c.state == LIVE)
        if pipeline is not None:
            runs, pipelines = t.contexts.alias("runs"), t.contexts.alias("pipelines")
            query = query.where(
                t.artifacts.c.id.in_(
                    select(t.events.c.artifact_id)
                    .join(t.executions, t.events.c.execution_id == t.executions.c.id)
                    .join(runs, t.executions.c.run_id == runs.c.id)
                    .join(pipelines, runs.c.parent_id == pipelines.c.id)
                    .where(t.events.c.kind == OUTPUT, pipelines.c.name == pipeline)
                )
            )
        query = query.order_by(t.artifacts.c.id.desc())
        with self.engine.begin() as conn:
            rows = conn.execute(query).all()
        for row in rows:
            artifact = _artifact(row)
            if all(artifact.properties.get(k) == v for k, v in (where or {}).items()):
                yield artifact

    def artifacts_in_state(self, *states: str) -> list[ArtifactRecord]:
        """Every artifact in one of ``states`` (LIVE, PENDING, ABANDONED), oldest first."""
        query = select(t.artifacts).where(t.artifacts.c.state.in_(states)).order_by(t.artifacts.c.id)
        with self.engine.begin() as conn:
            return [_artifact(row) for row in conn.execute(query)]

    def integrity_check(self) -> list[str]:
        """Problems found in the store (empty when healthy): SQLite's own check plus our invariants."""
        problems: list[str] = []
        with self.engine.begin() as conn:
            if conn.dialect.name == "sqlite":
                result = [row[0] for row in conn.exec_driver_sql("PRAGMA integrity_check")]
                if result != ["ok"]:
                    problems.extend(result)
                problems.extend(f"foreign key violation: {tuple(row)}" for row in conn.exec_driver_sql("PRAGMA foreign_key_check"))
            live_without_complete = conn.execute(
                select(t.artifacts.c.id).where(
                    t.artifacts.c.state == LIVE,
                    ~t.artifacts.c.id.in_(
                        select(t.events.c.artifact_id)
                        .join(t.executions, t.events.c.execution_id == t.executions.c.id)
                        .where(t.events.c.kind == OUTPUT, t.executions.c.state == COMPLETE)
                    ),
                )
            ).scalars().all()
            problems.extend(f"artifact {a} is LIVE but no COMPLETE execution wrote it" for a in live_without_complete)
        return problems


def _artifact(row: Any) -> ArtifactRecord:
    return ArtifactRecord(
        row.id, row.type_name, row.uri, row.state, row.properties or {}, row.fingerprint, row.created_at, row.updated_at
    )


def _execution(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        row.id,
        row.run_id,
        row.component_id,
        row.component_type,
        row.state,
        row.started_at,
        row.ended_at,
        row.error,
        row.cache_key,
        row.parameters or {},
        row.properties or {},
        row.host,
        row.pid,
    )


def _make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        os.makedirs(os.path.dirname(os.path.abspath(parsed.database)), exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 60})

    @event.listens_for(engine, "connect")
    def _configure(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control from pysqlite so "begin" below can say IMMEDIATE.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA busy_timeout = 60000")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin_immediate(connection: Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process: with the pid, it names the process even after pid reuse."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def _process_alive(pid: int, proc_start: str | None) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    current = _process_start(pid)
    if current is not None and _is_zombie(pid):
        return False
    return proc_start is None or current is None or current == proc_start


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False


def _serialize(conn: Connection, name: str) -> None:
    """Make the transactions that pass the same ``name`` run one after another.

    On PostgreSQL a transaction-scoped advisory lock on the name; SQLite needs
    nothing, as every transaction there takes the write lock when it begins
    (``BEGIN IMMEDIATE``).
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_id(name)})


def _insert_run(conn: Connection, pipeline_id: int, *, name: str, properties: dict, now: float) -> int:
    """A RUNNING run context numbered after the pipeline's last run, in a transaction serialized on "run-number:<id>"."""
    number = conn.execute(
        select(func.coalesce(func.max(t.contexts.c.number), 0) + 1).where(
            t.contexts.c.kind == "run", t.contexts.c.parent_id == pipeline_id
        )
    ).scalar_one()
    return conn.execute(
        insert(t.contexts).values(
            kind="run", name=name, parent_id=pipeline_id, state=RUNNING, created_at=now, properties=properties,
            number=number,
        )
    ).inserted_primary_key[0]


def _lock_id(cache_key: str) -> int:
    """A PostgreSQL advisory lock id (signed 64 bits) for a cache key."""
    return int.from_bytes(hashlib.sha256(cache_key.encode()).digest()[:8], "big", signed=True)


def _safe(url: str) -> str:
    """The URL without its password, for error messages."""
    return make_url(url).render_as_string(hide_password=True)
