"""``beam-ml run-node``: one component per process, grouped into one run by the orchestrator's run id."""

import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from beam_ml.metadata.store import CACHED, COMPLETE, MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.node_task import task_upstreams
from beam_ml.run import load_pipeline

REPO = Path(__file__).resolve().parents[2]
PENGUIN_DATA = str(REPO / "tests" / "pipelines" / "penguin_data.py")
PENGUIN_DRIFT = str(REPO / "tests" / "pipelines" / "penguin_data_drift.py")


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "beam_ml.run", *args],
        capture_output=True, text=True, cwd=REPO, check=False, env={**os.environ, **(env or {})},
    )


def artifacts_by_output(store, run_id):
    """node.output -> (fingerprint, properties) of what each finished execution of the run wrote."""
    found = {}
    for execution in store.executions_of_run(run_id):
        if execution.state in (COMPLETE, CACHED):
            for name, artifact in store.outputs_of(execution.id).items():
                found[f"{execution.component_id}.{name}"] = (artifact.fingerprint, artifact.properties)
    return found


def test_penguin_data_stages_node_by_node_in_separate_processes_equal_a_run_and_rerun_from_cache(tmp_path):
    local_root, task_root = tmp_path / "local", tmp_path / "tasks"
    done = cli("run", PENGUIN_DATA, "--pipeline-root", str(local_root))
    assert done.returncode == 0, done.stderr
    order = list(load_pipeline(PENGUIN_DATA).order)
    assert len(order) == 4

    for node_id in order:
        done = cli("run-node", PENGUIN_DATA, node_id, "--run-id", "orchestrator-run-1", "--pipeline-root", str(task_root))
        assert done.returncode == 0, done.stderr
        assert f"{node_id} in run 1 of penguin (orchestrator-run-1): COMPLETE" in done.stdout

    with MetadataStore(sqlite_url_for_root(str(local_root))) as local, MetadataStore(sqlite_url_for_root(str(task_root))) as tasks:
        (local_run,) = local.list_runs()
        (task_run,) = tasks.list_runs()
        assert task_run.state == COMPLETE and task_run.name == "orchestrator-run-1" and task_run.number == 1
        assert [e.component_id for e in tasks.executions_of_run(task_run.id)] == order
        assert {e.state for e in tasks.executions_of_run(task_run.id)} == {COMPLETE}
        expected = artifacts_by_output(local, local_run.id)
        assert set(expected) >= {"ExampleGen.examples", "StatisticsGen.statistics", "SchemaGen.schema"}
        assert artifacts_by_output(tasks, task_run.id) == expected
        # Lineage within the run: the validator read the statistics and schema its upstream tasks published.
        executions = {e.component_id: e for e in tasks.executions_of_run(task_run.id)}
        validator_inputs = tasks.inputs_of(executions["ExampleValidator"].id)
        assert validator_inputs["schema"].id == tasks.outputs_of(executions["SchemaGen"].id)["schema"].id

    for node_id in order:
        done = cli("run-node", PENGUIN_DATA, node_id, "--run-id", "orchestrator-run-2", "--pipeline-root", str(task_root))
        assert done.returncode == 0, done.stderr
        assert f"{node_id} in run 2 of penguin (orchestrator-run-2): CACHED" in done.stdout
    with MetadataStore(sqlite_url_for_root(str(task_root))) as tasks:
        second, first = tasks.list_runs()
        assert (second.number, second.state) == (2, COMPLETE)
        assert {e.state for e in tasks.executions_of_run(second.id)} == {CACHED}
        assert artifacts_by_output(tasks, second.id) == artifacts_by_output(tasks, first.id)


def test_the_task_reading_from_a_resolver_resolves_it_in_the_run(tmp_path):
    """A resolver records nothing, so it is no task: ExampleValidator's task resolves EarlierStatistics."""
    root = tmp_path / "root"
    csv = Path(load_pipeline(PENGUIN_DATA).node("ExampleGen").params["input_path"])
    earlier = tmp_path / "earlier.csv"
    earlier.write_text("".join(csv.read_text().splitlines(keepends=True)[:150]))
    done = cli("run", PENGUIN_DRIFT, "--pipeline-root", str(root), env={"PENGUIN_DATA": str(earlier)})
    assert done.returncode == 0, done.stderr

    tasks = task_upstreams(load_pipeline(PENGUIN_DRIFT))
    assert tasks == {
        "ExampleGen": [], "StatisticsGen": ["ExampleGen"], "SchemaGen": ["StatisticsGen"],
        "ExampleValidator": ["SchemaGen", "StatisticsGen"],
    }  # fmt: skip
    for node_id in tasks:
        done = cli("run-node", PENGUIN_DRIFT, node_id, "--run-id", "drift-1", "--pipeline-root", str(root))
        assert done.returncode == 0, done.stderr
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        tasks_run, local_run = store.list_runs()
        assert (tasks_run.name, tasks_run.state) == ("drift-1", COMPLETE)
        executions = {e.component_id: e for e in store.executions_of_run(tasks_run.id)}
        assert list(executions) == list(tasks) and {e.state for e in executions.values()} == {COMPLETE}
        (local_statistics,) = [
            store.outputs_of(e.id)["statistics"] for e in store.executions_of_run(local_run.id) if e.component_id == "StatisticsGen"
        ]
        read = store.inputs_of(executions["ExampleValidator"].id)
        assert read["previous_statistics"].id == local_statistics.id
        assert read["statistics"].id == store.outputs_of(executions["StatisticsGen"].id)["statistics"].id


def test_a_node_whose_upstream_has_not_run_fails_with_the_next_step(tmp_path):
    done = cli("run-node", PENGUIN_DATA, "SchemaGen", "--run-id", "r1", "--pipeline-root", str(tmp_path / "root"))
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("FAILED: SchemaGen:") and "StatisticsGen" in last and "run them first" in last


def test_an_unknown_component_is_a_usage_error_naming_the_components(tmp_path):
    done = cli("run-node", PENGUIN_DATA, "Nope", "--run-id", "r1", "--pipeline-root", str(tmp_path / "root"))
    assert done.returncode == 2
    assert "no component 'Nope'" in done.stderr and "ExampleGen" in done.stderr


def test_a_failing_node_exits_1_with_the_failed_line_and_fails_the_run(tmp_path):
    root = tmp_path / "root"
    missing = str(tmp_path / "no-such.csv")
    done = cli("run-node", PENGUIN_DATA, "ExampleGen", "--run-id", "r1", "--pipeline-root", str(root), env={"PENGUIN_DATA": missing})
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("FAILED: ExampleGen:")
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        (run,) = store.list_runs()
        assert run.state == "FAILED" and run.name == "r1"


def test_tasks_joining_one_run_key_at_once_create_one_run(store_url):
    def join(_):
        with MetadataStore(store_url) as store:
            return store.join_run("p", "shared-key").id

    with ThreadPoolExecutor(8) as pool:
        ids = set(pool.map(join, range(16)))
    assert len(ids) == 1
    with MetadataStore(store_url) as store:
        (run,) = store.list_runs("p")
        assert run.number == 1 and run.name == "shared-key" and run.state == "RUNNING"
        # No process owns it: the creating task's exit does not make it ABANDONED.
        store.recover_abandoned()
        assert store.get_run(run.id).state == "RUNNING"
        assert store.join_run("p", "another").number == 2


def test_tasks_on_an_object_store_root_and_a_postgresql_store_make_one_complete_run(s3_bucket, s3_server, postgres):
    """What tasks on separate machines share: an S3 root (SeaweedFS) and a PostgreSQL store."""
    url = postgres.create_database("run_node_s3")
    root = f"{s3_bucket}/penguin"
    order = list(load_pipeline(PENGUIN_DATA).order)
    for node_id in order:
        done = cli(
            "run-node", PENGUIN_DATA, node_id, "--run-id", "kfp-run-7", "--pipeline-root", root,
            "--metadata-url", url, "--", *s3_server.beam_flags(),
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
    with MetadataStore(url) as store:
        (run,) = store.list_runs()
        assert (run.name, run.state) == ("kfp-run-7", COMPLETE)
        executions = store.executions_of_run(run.id)
        assert [(e.component_id, e.state) for e in executions] == [(node_id, COMPLETE) for node_id in order]
        for execution in executions:
            for artifact in store.outputs_of(execution.id).values():
                assert artifact.state == "LIVE" and artifact.uri.startswith(f"{root}/{execution.component_id}/")
        examples = store.outputs_of(executions[0].id)["examples"]
        assert sum(examples.properties["split_rows"].values()) == 344  # palmerpenguins: every penguin
