"""Deciding when ``beam-ml watch`` runs a pipeline: on a schedule, when new input data arrives, never twice at once.

    beam-ml watch PIPELINE [--every 10m | --cron "0 * * * *"] [--on-new-span] [--once]

The watcher looks at the pipeline at times it is told, and each look
("tick") runs the pipeline the way ``beam-ml run`` does (the caller passes
that run in: this module never runs a component itself):

- ``--every 10m`` / ``--cron EXPR`` alone: every look runs the pipeline
  (steps whose inputs did not change come from the cache). ``--every`` looks
  at start and then every interval; ``--cron`` at the expression's times, in
  local time (``croniter``).
- ``--on-new-span``: a look runs the pipeline only when what its ExampleGen
  patterns match differs from what the pipeline's last complete run read (the
  ``input_fingerprint`` its Examples recorded: a new span, a new version, a
  changed file). The store says what was read, not this process's memory, so a
  restarted watcher does not run again for data already read. Local inputs
  are also watched with ``watchdog``: a file event wakes the watcher, which
  looks once the files have been quiet for ``settle`` seconds. Inputs on an
  object store are polled: at the schedule's times, or every minute.
- ``--once``: one look now, then exit (for tests and external schedulers).

Each look first takes the pipeline's run lock in the metadata store
(``MetadataStore.acquire_pipeline_lock``), renews it while it holds it, and
decides whether to run only then, so two watchers - on one host or on
several sharing a PostgreSQL store - never run the pipeline at once nor run
it twice for one span. A look that finds the lock held skips and says who
holds it. A run that fails is reported as ``run`` reports it and the next
look tries again; a failure to reach the store is reported and the watcher
keeps going. Ctrl-C or SIGTERM (``failures.StopRequest``) lets the running
component finish and stops there.
"""

from __future__ import annotations

import datetime
import fnmatch
import os
import re
import sys
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from beam_ml import fs, spans
from beam_ml.dsl import FilePattern, Pipeline
from beam_ml.metadata.store import CACHED, COMPLETE, MetadataStore
from beam_ml.orchestration.failures import (
    EXIT_SIGINT,
    EXIT_SIGTERM,
    StopRequest,
    error_summary,
    failure_line,
)

#: How often a watcher with ``--on-new-span`` and no schedule polls its inputs (object stores; missed file events).
DEFAULT_POLL = 60.0
#: A lock holder on another host whose heartbeat is older than this is taken for dead (hosts' clocks must agree
#: to well within it); the holder renews it every HEARTBEAT seconds.
STALE_AFTER = 60.0
HEARTBEAT = 10.0
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


class ScheduleError(ValueError):
    """An ``--every`` or ``--cron`` value that cannot be read; the message shows the accepted forms."""


class NothingToWatch(ValueError):
    """``--on-new-span`` on a pipeline whose components read no input files."""


class Schedule(Protocol):
    def next_after(self, moment: float) -> float:
        """The first time (UNIX seconds) after ``moment`` to look."""
        ...


@dataclass(frozen=True)
class Every:
    seconds: float
    text: str

    def next_after(self, moment: float) -> float:
        return moment + self.seconds

    def __str__(self) -> str:
        return f"every {self.text}"


@dataclass(frozen=True)
class Cron:
    expression: str

    def next_after(self, moment: float) -> float:
        from croniter import croniter

        local = datetime.datetime.fromtimestamp(moment).astimezone()  # as cron does: the host's local time
        return croniter(self.expression, local).get_next(float)

    def __str__(self) -> str:
        return f"at cron {self.expression!r} (local time)"


def parse_every(text: str) -> Every:
    """``30s``, ``10m``, ``2h``, ``1d`` (or a number of seconds with a unit, e.g. ``1.5h``)."""
    matched = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd])\s*", text)
    if matched is None or float(matched.group(1)) <= 0:
        raise ScheduleError(f"--every {text!r}: give a positive number and a unit: 30s, 10m, 2h or 1d")
    return Every(float(matched.group(1)) * _UNITS[matched.group(2)], text.strip())


def parse_cron(text: str) -> Cron:
    """A five-field cron expression (minute hour day-of-month month day-of-week), read by ``croniter``."""
    from croniter import croniter

    expression = text.strip()
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise ScheduleError(
            f"--cron {text!r}: not a cron expression; give five fields, minute hour day-of-month month "
            "day-of-week, e.g. '0 * * * *' (every hour) or '*/15 * * * *' (every 15 minutes)"
        )
    return Cron(expression)


# --- new input data ------------------------------------------------------------------------


def watched_inputs(pipeline: Pipeline) -> dict[str, dict[str, str]]:
    """Per component id, the input patterns a new span would appear in: its ``input_path`` file patterns.

    A single pattern is keyed ``""``, per-split patterns by split name: the
    form ``spans.input_fingerprint`` hashes and ExampleGen records.
    """
    found: dict[str, dict[str, str]] = {}
    for node_id in pipeline.order:
        value = pipeline.node(node_id).params.get("input_path")
        if isinstance(value, FilePattern):
            found[node_id] = {"": str(value)}
        elif isinstance(value, Mapping) and value and all(isinstance(v, FilePattern) for v in value.values()):
            found[node_id] = {str(k): str(v) for k, v in value.items()}
    return found


def new_inputs(pipeline: Pipeline, store: MetadataStore) -> list[str]:
    """What each input-reading component would read that the pipeline's last complete run did not; empty when nothing.

    Compares what the patterns match now (``spans.input_fingerprint``) with
    the ``input_fingerprint`` of the Examples that component gave in the last
    COMPLETE run. A failed or cancelled run does not count: its data is new
    until a run over it completes.
    """
    watched = watched_inputs(pipeline)
    if not watched:
        raise NothingToWatch(f"pipeline {pipeline.name} has no component with input files (input_path) to watch for new spans")
    [last] = store.list_runs(pipeline.name, state=COMPLETE, limit=1) or [None]
    read = _recorded_reads(store, last.id) if last is not None else {}
    changes = []
    for node_id, patterns in watched.items():
        now = spans.input_fingerprint(patterns)
        before = read.get(node_id)
        if before is not None and before.get("input_fingerprint") == now:
            continue
        changes.append(f"{node_id}: {_what_changed(patterns, before, last.label if last else None)}")
    return changes


def _recorded_reads(store: MetadataStore, run_id: int) -> dict[str, dict[str, Any]]:
    """Per component id, the properties of the output that recorded an ``input_fingerprint`` in a run."""
    found: dict[str, dict[str, Any]] = {}
    for execution in store.executions_of_run(run_id):
        if execution.state in (COMPLETE, CACHED):
            for artifact in store.outputs_of(execution.id).values():
                if "input_fingerprint" in artifact.properties:
                    found[execution.component_id] = artifact.properties
    return found


def _what_changed(patterns: Mapping[str, str], before: Mapping[str, Any] | None, last_run: str | None) -> str:
    if last_run is None:
        return "no complete run has read its input yet"
    if before is None:
        return f"{last_run} recorded no input fingerprint for it"
    pattern = next(iter(patterns.values()))
    if spans.has_placeholders(pattern):
        available = spans.list_spans(pattern)
        if available:
            latest = available[-1]
            if latest.span != before.get("span"):
                return f"span {latest.span} (the last complete run, {last_run}, read span {before.get('span')})"
            if latest.version != before.get("version"):
                return f"span {latest.span} version {latest.version} ({last_run} read version {before.get('version')})"
    return f"its input files changed since {last_run}"


class InputEvents:
    """File-system events under local input patterns (``watchdog``): a hint to look early, never the decision.

    ``settled()`` is true once an event came and the files have been quiet for
    ``settle`` seconds (a delivery of several files is looked at once, whole).
    Only writes count, to files the patterns' wildcards match or to
    directories (a span directory moved in whole), never under ``ignored``
    (the pipeline root, whose store and outputs each look and run write):
    reads (ExampleGen opening the files) and other files do not wake it.
    Without events (object stores; no inotify watch left) the schedule's
    polling still finds new data.
    """

    _WRITES = frozenset({"created", "modified", "moved", "deleted", "closed"})

    def __init__(self, patterns: list[str], settle: float, ignored: list[str], say: Callable[[str], None]) -> None:
        local = [fs.local_path(p) for p in patterns if fs.is_local(p)]
        self.globs = [spans.wildcard(p) for p in local]
        self.directories = sorted({base for base in map(_existing_base, local) if base != "/"})
        self.ignored = [os.path.abspath(fs.local_path(p)) for p in ignored if fs.is_local(p)]
        self.settle = settle
        self.say = say
        self._last_event: float | None = None
        self._observer = None

    def __enter__(self) -> InputEvents:
        if not self.directories:
            return self
        from watchdog.events import FileSystemEventHandler
        from watchdog.observers import Observer

        events = self

        class _Handler(FileSystemEventHandler):
            def on_any_event(self, event) -> None:
                if event.event_type in InputEvents._WRITES and any(
                    events.relevant(os.fsdecode(path), event.is_directory)
                    for path in (event.src_path, getattr(event, "dest_path", "")) if path
                ):
                    events._last_event = time.monotonic()

        observer = Observer()
        observer.daemon = True
        try:
            for directory in self.directories:
                observer.schedule(_Handler(), directory, recursive=True)
            observer.start()
        except OSError as error:  # e.g. the host's inotify watches are used up
            self.say(f"warning: no file events under {', '.join(self.directories)} ({error}); polling only")
            self.directories = []
            return self
        self._observer = observer
        return self

    def __exit__(self, *exc: object) -> None:
        if self._observer is not None:
            self._observer.stop()
            self._observer.join(timeout=5)

    def relevant(self, path: str, is_directory: bool) -> bool:
        if any(path == root or path.startswith(root + os.sep) for root in self.ignored):
            return False
        return is_directory or any(fnmatch.fnmatch(path, glob) for glob in self.globs)

    def settled(self) -> bool:
        """True (once per burst of events) when files changed and have been quiet for ``settle`` seconds."""
        last = self._last_event
        if last is None or time.monotonic() - last < self.settle:
            return False
        self._last_event = None
        return True


def _existing_base(pattern: str) -> str:
    """The deepest existing directory above the pattern's first wildcard or placeholder."""
    path = fs.local_path(pattern)
    cut = min((i for i in (path.find(c) for c in "*?[{") if i >= 0), default=len(path))
    base = path[:cut].rsplit("/", 1)[0] or "/"
    while not os.path.isdir(base) and base not in ("", "/"):
        base = base.rsplit("/", 1)[0] or "/"
    return base


# --- the watcher ---------------------------------------------------------------------------


class _Heartbeat:
    """Renews the pipeline's run lock every ``interval`` seconds in a thread while a look holds it."""

    def __init__(self, store: MetadataStore, pipeline: str, interval: float, say: Callable[[str], None]) -> None:
        self.store, self.pipeline, self.interval, self.say = store, pipeline, interval, say
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="beam-ml-watch-heartbeat", daemon=True)

    def __enter__(self) -> _Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        self._thread.join()

    def _beat(self) -> None:
        while not self._done.wait(self.interval):
            try:
                if not self.store.renew_pipeline_lock(self.pipeline):
                    self.say(f"warning: the run lock of {self.pipeline} was taken over (this process was taken for dead)")
            except Exception as error:  # the store did not answer this time; the next beat tries again
                self.say(f"warning: could not renew the run lock of {self.pipeline}: {error_summary(error)}")


class Watcher:
    """Looks at a pipeline when due and runs it through ``run_pipeline`` (``beam-ml run``'s way).

    ``run_pipeline`` runs the pipeline once and returns ``run``'s exit status
    (0, 1 failed, 130/143 cancelled by a signal), having printed what ``run``
    prints; its runner must stop at ``stop`` between components.
    """

    def __init__(
        self,
        pipeline: Pipeline,
        store_url: str,
        run_pipeline: Callable[[], int],
        *,
        stop: StopRequest,
        schedule: Schedule | None = None,
        on_new_span: bool = False,
        settle: float = 2.0,
        stale_after: float = STALE_AFTER,
        heartbeat: float = HEARTBEAT,
        say: Callable[[str], None] | None = None,
    ) -> None:
        if on_new_span and not watched_inputs(pipeline):
            raise NothingToWatch(f"--on-new-span: pipeline {pipeline.name} has no component with input files (input_path) to watch")
        self.pipeline = pipeline
        self.store_url = store_url
        self.run_pipeline = run_pipeline
        self.stop = stop
        self.schedule = schedule
        self.on_new_span = on_new_span
        self.settle = settle
        self.stale_after = stale_after
        self.heartbeat = heartbeat
        self.say = say or _say

    def look(self) -> int:
        """One look: take the lock, decide, run. Returns the exit status ``--once`` exits with."""
        name = self.pipeline.name
        try:
            with MetadataStore(self.store_url) as store:
                holder = store.acquire_pipeline_lock(name, stale_after=self.stale_after)
                if holder is not None:
                    self.say(f"skipped: {holder.label} holds the run lock of {name} (since {_clock(holder.acquired_at)})")
                    return 0
                try:
                    with _Heartbeat(store, name, self.heartbeat, self.say):
                        if self.on_new_span:
                            changes = new_inputs(self.pipeline, store)
                            if not changes:
                                self.say(f"nothing new: {name}'s inputs are what its last complete run read")
                                return 0
                        if self.stop.requested:
                            return 0
                        self.say(f"running {name}: new input data: " + "; ".join(changes) if self.on_new_span
                                 else f"running {name}")
                        return self.run_pipeline()
                finally:
                    store.release_pipeline_lock(name)
        except Exception as error:  # the store, the file system: report, and the next look tries again
            sys.stdout.flush()
            print(failure_line(None, error_summary(error)), file=sys.stderr, flush=True)
            return 1

    def watch(self) -> int:
        """Look when due until a signal stops the watcher; 0, or a cancelled run's 130/143."""
        schedule = self.schedule or Every(DEFAULT_POLL, f"{DEFAULT_POLL:g}s")
        patterns = [p for found in watched_inputs(self.pipeline).values() for p in found.values()]
        with InputEvents(patterns if self.on_new_span else [], self.settle, [self.pipeline.root], self.say) as events:
            self.say(self._describe(schedule, events))
            now = time.time()
            due = now if isinstance(schedule, Every) else schedule.next_after(now)
            if not isinstance(schedule, Every):
                self.say(f"next look at {_clock(due)}")
            while not self.stop.requested:
                woken = events.settled()
                started = time.time()
                if not woken and started < due:
                    time.sleep(0.2)
                    continue
                if woken:
                    self.say("input files changed: looking now")
                status = self.look()
                if status in (EXIT_SIGINT, EXIT_SIGTERM):
                    return status
                if started >= due:  # times missed during a long run make one look, not one each
                    due = schedule.next_after(started)
                if status != 0:
                    self.say(f"the next look, at {_clock(max(due, time.time()))}, tries again")
                elif not self.stop.requested:
                    self.say(f"next look at {_clock(max(due, time.time()))}")
        self.say("stopped")
        return 0

    def _describe(self, schedule: Schedule, events: InputEvents) -> str:
        when = [str(schedule)]
        if self.on_new_span:
            when = [f"for new spans {schedule}" if self.schedule else f"polling for new spans every {DEFAULT_POLL:g}s"]
            if events.directories:
                when.append(f"and on file events under {', '.join(events.directories)}")
        return f"watching {self.pipeline.name}: {' '.join(when)}; Ctrl-C or SIGTERM stops after the current component"


def _clock(moment: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(moment))


def _say(text: str) -> None:
    print(f"[{time.strftime('%Y-%m-%d %H:%M:%S')}] {text}", flush=True)
