"""The metadata store's contract, on SQLite and on PostgreSQL."""

import os
import subprocess
import sys
import time

import pytest
from sqlalchemy import update

from beam_ml.metadata import tables
from beam_ml.metadata.lineage import downstream, upstream
from beam_ml.metadata.store import MetadataSchemaError, MetadataStore, _process_start


def _run_step(store, run_id, component, inputs, outputs=("out",), props=None):
    execution, pending = store.start_execution(
        run_id, component, f"tests.{component}", f"key-{component}", {"p": 1}, inputs,
        {name: ("Artifact", f"/tmp/staging/{component}/{name}") for name in outputs},
    )
    store.complete_execution(
        execution.id,
        {a.id: (f"/data/{component}/{name}", props or {"n": 1}, f"fp-{component}-{name}") for name, a in pending.items()},
    )
    return execution, store.outputs_of(execution.id)


def test_schema_is_created_versioned_and_reopened(store_url):
    with MetadataStore(store_url) as store:
        assert store.schema_version() == tables.SCHEMA_VERSION
    with MetadataStore(store_url) as store:  # a second open neither recreates nor fails
        assert store.schema_version() == tables.SCHEMA_VERSION


def test_a_newer_schema_is_refused_and_left_unchanged(store_url):
    with MetadataStore(store_url) as store:
        run = store.begin_run("p")
        with store.engine.begin() as conn:
            conn.execute(update(tables.schema_info).values(version=tables.SCHEMA_VERSION + 1))
    newer, ours = tables.SCHEMA_VERSION + 1, tables.SCHEMA_VERSION
    with pytest.raises(MetadataSchemaError, match=rf"schema version {newer}, but this beam-ml understands versions up to {ours}"):
        MetadataStore(store_url)
    probe = MetadataStore.__new__(MetadataStore)
    from beam_ml.metadata.store import _make_engine

    probe.engine = _make_engine(store_url)
    assert probe.schema_version() == tables.SCHEMA_VERSION + 1
    assert probe.get_run(run.id).pipeline == "p"
    probe.close()


def test_runs_are_numbered_from_1_per_pipeline(store_url):
    with MetadataStore(store_url) as store:
        first_a, first_b, second_a = store.begin_run("a"), store.begin_run("b"), store.begin_run("a")
        assert (first_a.number, first_b.number, second_a.number) == (1, 1, 2)
        assert second_a.label == "run 2 of a" and second_a.id != 2  # the store-wide id is another number
        assert store.find_run(2, "a").id == second_a.id
        assert store.find_run(1, "b").id == first_b.id
        with pytest.raises(KeyError, match="several pipelines \\(a, b\\): say which with --pipeline NAME"):
            store.find_run(1)
        with pytest.raises(KeyError, match="pipeline b has no run 2"):
            store.find_run(2, "b")
        assert [r.number for r in store.list_runs("a")] == [2, 1]


def test_a_version_1_store_gets_its_runs_numbered_per_pipeline(store_url):
    with MetadataStore(store_url) as store:
        ids = [store.begin_run(name).id for name in ("a", "a", "b", "a")]
        with store.engine.begin() as conn:  # back to the version 1 tables: no run numbers
            conn.exec_driver_sql("DROP INDEX uq_run_number")
            conn.exec_driver_sql("ALTER TABLE contexts DROP COLUMN number")
            conn.execute(update(tables.schema_info).values(version=1))
    with MetadataStore(store_url) as store:
        assert store.schema_version() == tables.SCHEMA_VERSION
        assert [store.get_run(i).label for i in ids] == ["run 1 of a", "run 2 of a", "run 1 of b", "run 3 of a"]
        assert store.begin_run("b").number == 2 and store.begin_run("a").number == 4


def test_execution_lifecycle_pending_to_live(store_url):
    with MetadataStore(store_url) as store:
        run = store.begin_run("p", {"beam_args": ["--runner", "DirectRunner"]})
        execution, pending = store.start_execution(
            run.id, "Gen", "tests.Gen", "k1", {"count": 3}, {}, {"examples": ("Examples", "/tmp/s/1")}
        )
        assert execution.state == "RUNNING"
        assert pending["examples"].state == "PENDING"
        assert list(store.cached_candidates("k1")) == []  # not trusted before it completes
        store.complete_execution(execution.id, {pending["examples"].id: ("/tmp/final/1", {"rows": 3}, "abc")}, {"rows_in": 3})
        artifact = store.get_artifact(pending["examples"].id)
        assert (artifact.state, artifact.uri, artifact.properties, artifact.fingerprint) == ("LIVE", "/tmp/final/1", {"rows": 3}, "abc")
        done = store.get_execution(execution.id)
        assert done.state == "COMPLETE" and done.properties["rows_in"] == 3 and done.duration >= 0
        [(hit, outputs)] = store.cached_candidates("k1")
        assert hit.id == execution.id and outputs["examples"].id == artifact.id
        store.end_run(run.id, "COMPLETE")
        [listed] = store.list_runs("p")
        assert listed.state == "COMPLETE" and listed.properties["beam_args"] == ["--runner", "DirectRunner"]
        assert store.integrity_check() == []


def test_failure_abandons_pending_outputs(store_url):
    with MetadataStore(store_url) as store:
        run = store.begin_run("p")
        execution, pending = store.start_execution(run.id, "Gen", "tests.Gen", "k2", {}, {}, {"out": ("Artifact", "/tmp/s/2")})
        uris = store.fail_execution(execution.id, "ValueError: boom\ntraceback...")
        assert uris == ["/tmp/s/2"]
        assert store.get_artifact(pending["out"].id).state == "ABANDONED"
        failed = store.get_execution(execution.id)
        assert failed.state == "FAILED" and failed.error.startswith("ValueError: boom")
        assert list(store.cached_candidates("k2")) == []


def test_recover_abandoned_marks_dead_processes_only(store_url):
    with MetadataStore(store_url) as store:
        run = store.begin_run("p")
        ours, ours_pending = store.start_execution(run.id, "A", "t.A", "ka", {}, {}, {"out": ("Artifact", "/tmp/s/a")})
        theirs, theirs_pending = store.start_execution(run.id, "B", "t.B", "kb", {}, {}, {"out": ("Artifact", "/tmp/s/b")})
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        with store.engine.begin() as conn:
            conn.execute(update(tables.executions).where(tables.executions.c.id == theirs.id).values(pid=dead.pid))
        assert store.recover_abandoned() == ["/tmp/s/b"]
        assert store.get_execution(theirs.id).state == "ABANDONED"
        assert store.get_artifact(theirs_pending["out"].id).state == "ABANDONED"
        assert store.get_execution(ours.id).state == "RUNNING"  # this process is alive
        assert store.get_artifact(ours_pending["out"].id).state == "PENDING"


def test_lineage_up_and_down_through_cached_executions(store_url):
    with MetadataStore(store_url) as store:
        run = store.begin_run("p")
        _, gen_out = _run_step(store, run.id, "Gen", {})
        _, stats_out = _run_step(store, run.id, "Stats", {"examples": gen_out["out"]})
        _, schema_out = _run_step(store, run.id, "Schema", {"statistics": stats_out["out"]})
        _, valid_out = _run_step(store, run.id, "Validate", {"statistics": stats_out["out"], "schema": schema_out["out"]})
        # A second run reuses Stats from cache: the cached execution adds edges, not a second producer.
        run2 = store.begin_run("p")
        stats_exec = store.producer_of(stats_out["out"].id)
        store.record_cached_execution(run2.id, "Stats", "tests.Stats", stats_exec.cache_key, {}, {"examples": gen_out["out"]}, stats_out, stats_exec)

        tree = upstream(store, valid_out["out"].id)
        assert tree.producer.component_id == "Validate"
        assert set(tree.inputs) == {"statistics", "schema"}
        assert tree.inputs["schema"].inputs["statistics"].inputs["examples"].producer.component_id == "Gen"
        assert {a.id for a, _ in tree.walk()} == {gen_out["out"].id, stats_out["out"].id, schema_out["out"].id, valid_out["out"].id}

        down = downstream(store, gen_out["out"].id)
        reached = {a.id for a in down.walk()}
        assert reached == {gen_out["out"].id, stats_out["out"].id, schema_out["out"].id, valid_out["out"].id}
        assert sorted(e.state for e, _ in down.consumers) == ["CACHED", "COMPLETE"]


def test_latest_artifact_by_type_pipeline_and_property(store_url):
    with MetadataStore(store_url) as store:
        run_a, run_b = store.begin_run("a"), store.begin_run("b")
        _, first = _run_step(store, run_a.id, "Eval1", {}, props={"blessed": True})
        _, second = _run_step(store, run_a.id, "Eval2", {}, props={"blessed": False})
        _, other = _run_step(store, run_b.id, "Eval3", {}, props={"blessed": True})
        assert store.latest_artifact("Artifact", pipeline="a", where={"blessed": True}).id == first["out"].id
        assert store.latest_artifact("Artifact", pipeline="a").id == second["out"].id
        assert store.latest_artifact("Artifact", where={"blessed": True}).id == other["out"].id
        assert store.latest_artifact("Model") is None


def test_an_identical_execution_is_refused_while_another_live_process_runs_it(store_url):
    from beam_ml.metadata.store import IdenticalExecution

    outputs = {"out": ("Artifact", "/tmp/s/same")}
    with MetadataStore(store_url) as store:
        run = store.begin_run("p")
        other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            theirs, _ = store.start_execution(run.id, "A", "t.A", "same-key", {}, {}, outputs)
            with store.engine.begin() as conn:  # as if another process on this host had started it
                conn.execute(
                    update(tables.executions)
                    .where(tables.executions.c.id == theirs.id)
                    .values(pid=other.pid, properties={"proc_start": _process_start(other.pid)})
                )
            with pytest.raises(IdenticalExecution) as refused:
                store.start_execution(run.id, "A", "t.A", "same-key", {}, {}, outputs)
            assert refused.value.execution.id == theirs.id
            store.start_execution(run.id, "B", "t.B", "other-key", {}, {}, outputs)  # other keys are not held up
        finally:
            other.kill()
            other.wait()
        # Its process is gone: nobody is computing it any more, so this one may.
        mine, pending = store.start_execution(run.id, "A", "t.A", "same-key", {}, {}, outputs)
        store.complete_execution(mine.id, {pending["out"].id: ("/tmp/final/same", {}, "fp")})
        with pytest.raises(IdenticalExecution) as done:  # completed and LIVE: serve it, do not recompute
            store.start_execution(run.id, "A", "t.A", "same-key", {}, {}, outputs)
        assert done.value.execution.id == mine.id
        # ... unless the caller found its files gone and says so.
        store.start_execution(run.id, "A", "t.A", "same-key", {}, {}, outputs, known_complete=frozenset({mine.id}))


def test_a_run_of_a_dead_process_is_listed_abandoned(store_url):
    with MetadataStore(store_url) as store:
        run = store.begin_run("p")
        assert store.get_run(run.id).state == "RUNNING"  # this process is alive
        dead = subprocess.Popen([sys.executable, "-c", "pass"])
        dead.wait()
        with store.engine.begin() as conn:
            conn.execute(
                update(tables.contexts)
                .where(tables.contexts.c.id == run.id)
                .values(properties={**run.properties, "pid": dead.pid})
            )
        assert store.get_run(run.id).state == "ABANDONED"


def test_ending_a_run_ends_its_unfinished_executions_with_it(store_url):
    with MetadataStore(store_url) as store:
        run = store.begin_run("p")
        execution, pending = store.start_execution(run.id, "A", "t.A", "k-end", {}, {}, {"out": ("Artifact", "/tmp/s/end")})
        assert store.end_run(run.id, "CANCELLED") == ["/tmp/s/end"]
        assert store.get_run(run.id).state == "CANCELLED"
        ended = store.get_execution(execution.id)
        assert ended.state == "CANCELLED" and "before this step finished" in ended.error
        assert store.get_artifact(pending["out"].id).state == "ABANDONED"
        assert store.integrity_check() == []


def test_a_pipeline_lock_has_one_holder_and_a_dead_holder_is_taken_over(store_url):
    def hand_to(**owner):
        with store.engine.begin() as conn:
            conn.execute(update(tables.pipeline_locks).where(tables.pipeline_locks.c.pipeline == "p").values(**owner))

    with MetadataStore(store_url) as store:
        assert store.acquire_pipeline_lock("p", stale_after=60) is None
        assert store.acquire_pipeline_lock("p", stale_after=60) is None  # ours already: renewed
        assert store.acquire_pipeline_lock("q", stale_after=60) is None  # one lock per pipeline
        alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        try:
            hand_to(pid=alive.pid, proc_start=_process_start(alive.pid))
            holder = store.acquire_pipeline_lock("p", stale_after=60)
            assert holder is not None and holder.pid == alive.pid and holder.label.startswith(f"pid {alive.pid} on ")
            assert store.renew_pipeline_lock("p") is False  # not ours to renew
            store.release_pipeline_lock("p")  # nor to release
            assert store.pipeline_lock_holder("p").pid == alive.pid
        finally:
            alive.kill()
            alive.wait()
        assert store.acquire_pipeline_lock("p", stale_after=60) is None  # its process is gone
        assert store.renew_pipeline_lock("p") is True
        # Another host's holder is judged by its heartbeat: alive while it renews, dead once it stopped.
        now = time.time()
        hand_to(host="elsewhere", pid=1, heartbeat_at=now - 10)
        assert store.acquire_pipeline_lock("p", stale_after=60).label == "pid 1 on elsewhere"
        hand_to(heartbeat_at=now - 61)
        assert store.acquire_pipeline_lock("p", stale_after=60) is None
        store.release_pipeline_lock("p")
        assert store.pipeline_lock_holder("p") is None


def test_a_version_2_store_gets_the_pipeline_locks_table(store_url):
    with MetadataStore(store_url) as store, store.engine.begin() as conn:
        conn.exec_driver_sql("DROP TABLE pipeline_locks")
        conn.execute(update(tables.schema_info).values(version=2))
    with MetadataStore(store_url) as store:
        assert store.schema_version() == tables.SCHEMA_VERSION
        assert store.acquire_pipeline_lock("p", stale_after=60) is None
        assert store.pipeline_lock_holder("p").pid == os.getpid()
