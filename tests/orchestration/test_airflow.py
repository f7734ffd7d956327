"""``beam-ml export airflow``: the DAG file parsed by Airflow 3, and run for real with ``airflow dags test``.

Airflow lives in a venv of its own (``beam_ml.testing.airflow``, fixture ``airflow_cli``); each test
has an Airflow home in a temporary directory. The data stages run under Airflow twice (first, then
served from cache); the whole penguin pipeline runs once, with its store on PostgreSQL.
"""

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from beam_ml.metadata.lineage import upstream
from beam_ml.metadata.store import CACHED, COMPLETE, MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.node_task import task_upstreams
from beam_ml.run import load_pipeline
from beam_ml.testing.airflow import airflow_home

REPO = Path(__file__).resolve().parents[2]
PENGUIN = str(REPO / "examples" / "penguin" / "pipeline.py")
PENGUIN_DATA = str(REPO / "tests" / "pipelines" / "penguin_data.py")

#: Run in Airflow's venv: the DAG file loaded with Airflow's SDK, each task as Airflow renders it.
PARSE_DAG = """
import json, runpy, sys
dag = runpy.run_path(sys.argv[1])["dag"]
env = dag.get_template_env()
render = lambda text: env.from_string(text).render(run_id=sys.argv[2])
print(json.dumps({
    "dag_id": dag.dag_id, "schedule": dag.schedule, "catchup": dag.catchup,
    "tasks": {t.task_id: {
        "type": type(t).__name__, "upstream": sorted(t.upstream_task_ids), "retries": t.retries,
        "retry_delay": t.retry_delay.total_seconds(), "execution_timeout": t.execution_timeout.total_seconds(),
        "command": render(t.bash_command), "env": {k: render(v) for k, v in t.env.items()},
        "append_env": t.append_env, "cwd": render(t.cwd),
    } for t in dag.tasks},
}))
"""


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "beam_ml.run", *args], capture_output=True, text=True, cwd=cwd, check=False)


def export(pipeline_file, dags, *args, cwd=REPO):
    done = cli("export", "airflow", pipeline_file, "--out", str(dags), "--retries", "0", *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    (dag_file,) = dags.glob("*.py")
    return dag_file


def dags_test(home, *, check=True):
    """``airflow dags test penguin``; returns {run_id: {task_id: state}} of every DAG run in the home."""
    done = home.run("dags", "test", "penguin")
    assert done.returncode == 0 or not check, (done.stdout + done.stderr)[-4000:]
    with sqlite3.connect(home.home / "airflow.db") as db:
        found: dict[str, dict[str, str]] = {}
        for run_id, task_id, state in db.execute("SELECT run_id, task_id, state FROM task_instance"):
            found.setdefault(run_id, {})[task_id] = state
    return found


def artifacts_by_output(store, run_id):
    """node.output -> (fingerprint, properties) of what each finished execution of the run wrote."""
    found = {}
    for execution in store.executions_of_run(run_id):
        if execution.state in (COMPLETE, CACHED):
            for name, artifact in store.outputs_of(execution.id).items():
                found[f"{execution.component_id}.{name}"] = (artifact.fingerprint, artifact.properties)
    return found


def test_the_dag_has_one_task_per_component_wired_as_the_pipeline_and_quotes_everything(tmp_path, airflow_cli):
    """Parsed by Airflow's SDK in its own venv; every task's command, rendered by Airflow and run by bash,
    gives run-node exactly the arguments exported, however odd the paths and flags."""
    printer = tmp_path / "my tools" / "python"  # stands in for the venv's python: prints the arguments it gets
    printer.parent.mkdir()
    printer.write_text(f"#!{sys.executable}\nimport json, sys\nprint(json.dumps(sys.argv[1:]))\n")
    printer.chmod(0o755)
    root = tmp_path / "root {{ ds }} $HOME"
    beam_flags = ["--direct_num_workers=2", "--labels=team=ml ops; rm -rf /", "--job_name={% if x %}y{% endif %}"]
    dag_file = export(
        PENGUIN, tmp_path / "dags", "--schedule", "0 3 * * *", "--retries", "2", "--retry-delay", "60",
        "--execution-timeout", "3600", "--pipeline-root", str(root), "--python", str(printer), "--", *beam_flags,
    )  # fmt: skip
    run_id = "manual__2026-12-03T16:44:08+00:00 $(touch nope) 'x'"
    done = subprocess.run(
        [str(airflow_cli.parent / "python"), "-c", PARSE_DAG, str(dag_file), run_id],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    dag = json.loads(done.stdout.strip().splitlines()[-1])

    pipeline = load_pipeline(PENGUIN)
    assert dag["dag_id"] == "penguin" and dag["schedule"] == "0 3 * * *" and dag["catchup"] is False
    # Each component but the resolver (LatestBlessedModel) is a task; the Evaluator waits for what the resolver reads.
    expected = task_upstreams(pipeline)
    assert {task_id: task["upstream"] for task_id, task in dag["tasks"].items()} == expected
    assert set(pipeline.order) - set(expected) == {"LatestBlessedModel"}
    assert expected["Evaluator"] == ["ExampleGen", "Trainer"]
    for task_id, task in dag["tasks"].items():
        assert (task["type"], task["retries"], task["retry_delay"], task["execution_timeout"]) == ("BashOperator", 2, 60, 3600)
        assert task["env"] == {"BEAM_ML_RUN_ID": run_id} and task["append_env"] and task["cwd"] == str(REPO)
        ran = subprocess.run(
            ["bash", "-c", task["command"]], capture_output=True, text=True, check=True, cwd=tmp_path,
            env={**os.environ, **task["env"]},
        )  # fmt: skip
        assert json.loads(ran.stdout) == [
            "-m", "beam_ml.run", "run-node", PENGUIN, task_id, "--pipeline-root", str(root),
            "--run-id", run_id, "--", *beam_flags,
        ]  # fmt: skip
    assert not (tmp_path / "nope").exists()


def test_export_refuses_secrets_in_the_dag_file_and_an_object_store_root_without_a_store(tmp_path):
    done = cli("export", "airflow", PENGUIN_DATA, "--out", str(tmp_path), "--metadata-url", "postgresql://ml:hunter22@db/ml")
    assert done.returncode == 2 and "BEAM_ML_METADATA_URL" in done.stderr and "hunter22" not in done.stderr
    done = cli("export", "airflow", PENGUIN_DATA, "--out", str(tmp_path), "--", "--s3_secret_access_key=abcd1234")
    assert done.returncode == 2 and "credentials" in done.stderr and "abcd1234" not in done.stderr
    done = cli("export", "airflow", PENGUIN_DATA, "--out", str(tmp_path), "--pipeline-root", "s3://bucket/penguin")
    assert done.returncode == 2 and "--metadata-url" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_the_data_stages_under_airflow_equal_a_local_run_rerun_from_cache_and_fail_as_a_run(tmp_path, airflow_cli, monkeypatch):
    local_root, airflow_root = tmp_path / "local", tmp_path / "airflow-root"
    done = cli("run", PENGUIN_DATA, "--pipeline-root", str(local_root))
    assert done.returncode == 0, done.stderr
    # Exported from another directory: the root is written as an absolute path, the file too.
    dag_file = export(os.path.relpath(PENGUIN_DATA, tmp_path), tmp_path / "dags", "--pipeline-root", "airflow-root", cwd=tmp_path)
    assert dag_file.name == "beam_ml_penguin.py"
    home = airflow_home(tmp_path / "dags", home=tmp_path / "airflow-home", airflow=airflow_cli)

    tasks = list(task_upstreams(load_pipeline(PENGUIN_DATA)))
    ((run_id, first_states),) = dags_test(home).items()
    assert first_states == dict.fromkeys(tasks, "success")
    with MetadataStore(sqlite_url_for_root(str(local_root))) as local, MetadataStore(sqlite_url_for_root(str(airflow_root))) as store:
        (local_run,) = local.list_runs()
        (first,) = store.list_runs()
        assert (first.name, first.state) == (run_id, COMPLETE)
        assert [(e.component_id, e.state) for e in store.executions_of_run(first.id)] == [(t, COMPLETE) for t in tasks]
        expected = artifacts_by_output(local, local_run.id)
        assert set(expected) >= {"ExampleGen.examples", "StatisticsGen.statistics", "SchemaGen.schema", "ExampleValidator.anomalies"}
        assert artifacts_by_output(store, first.id) == expected
        assert sum(expected["ExampleGen.examples"][1]["split_rows"].values()) == 344

    states = dags_test(home)
    assert len(states) == 2 and all(run == dict.fromkeys(tasks, "success") for run in states.values())
    with MetadataStore(sqlite_url_for_root(str(airflow_root))) as store:
        second, first = store.list_runs()
        assert {first.name, second.name} == set(states) and second.state == COMPLETE
        assert [(e.component_id, e.state) for e in store.executions_of_run(second.id)] == [(t, CACHED) for t in tasks]
        assert artifacts_by_output(store, second.id) == artifacts_by_output(store, first.id)

    # A component that fails fails its task (no retry: exported with --retries 0), its downstream tasks and the run.
    monkeypatch.setenv("PENGUIN_DATA", str(tmp_path / "no-such.csv"))  # the tasks inherit the environment
    (third_id,) = set(dags_test(home, check=False)) - set(states)
    with sqlite3.connect(home.home / "airflow.db") as db:
        third_states = dict(db.execute("SELECT task_id, state FROM task_instance WHERE run_id = ?", (third_id,)))
    assert third_states == {"ExampleGen": "failed", "StatisticsGen": "upstream_failed", "SchemaGen": "upstream_failed",
                            "ExampleValidator": "upstream_failed"}  # fmt: skip
    with MetadataStore(sqlite_url_for_root(str(airflow_root))) as store:
        third = store.list_runs()[0]
        assert (third.name, third.state) == (third_id, "FAILED")
        (execution,) = store.executions_of_run(third.id)
        assert (execution.component_id, execution.state) == ("ExampleGen", "FAILED") and "no-such.csv" in execution.error


def producers_upstream(store, artifact_id):
    """The components whose executions an artifact came from, walking its lineage up."""
    found, todo = set(), [upstream(store, artifact_id)]
    while todo:
        node = todo.pop()
        if node.producer is not None:
            found.add(node.producer.component_id)
            todo.extend(node.inputs.values())
    return found


def test_the_penguin_pipeline_under_airflow_with_a_postgresql_store(tmp_path, airflow_cli, postgres):
    """The whole example once (the model stages too, the resolver resolved by the Evaluator's task).

    Its data stages are compared with a local run of the data stages (the same components, files and
    fingerprints); the model stages' judgement with what a local run gives (tests/examples/test_penguin.py).
    """
    url = postgres.create_database("airflow_penguin")
    local_root = tmp_path / "local"
    done = cli("run", PENGUIN_DATA, "--pipeline-root", str(local_root))
    assert done.returncode == 0, done.stderr
    export(PENGUIN, tmp_path / "dags", "--pipeline-root", str(tmp_path / "airflow-root"), "--metadata-url", url)
    home = airflow_home(tmp_path / "dags", home=tmp_path / "airflow-home", airflow=airflow_cli)

    tasks = list(task_upstreams(load_pipeline(PENGUIN)))
    ((run_id, states),) = dags_test(home).items()
    assert states == dict.fromkeys(tasks, "success")
    with MetadataStore(sqlite_url_for_root(str(local_root))) as local, MetadataStore(url) as store:
        (local_run,) = local.list_runs()
        (run,) = store.list_runs()
        assert (run.name, run.state) == (run_id, COMPLETE)
        executions = {e.component_id: e for e in store.executions_of_run(run.id)}
        assert sorted(executions) == sorted(tasks) and {e.state for e in executions.values()} == {COMPLETE}
        ours, theirs = artifacts_by_output(store, run.id), artifacts_by_output(local, local_run.id)
        for output in ("ExampleGen.examples", "StatisticsGen.statistics", "SchemaGen.schema", "ExampleValidator.anomalies"):
            assert ours[output] == theirs[output], output
        assert sum(ours["ExampleGen.examples"][1]["split_rows"].values()) == 344
        assert ours["Evaluator.blessing"][1]["blessed"] is True and ours["InfraValidator.blessing"][1]["blessed"] is True
        assert "baseline_model" not in store.inputs_of(executions["Evaluator"].id)  # nothing was blessed before
        pushed = store.outputs_of(executions["Pusher"].id)["pushed_model"]
        assert {"ExampleGen", "Transform", "Trainer", "Evaluator"} <= producers_upstream(store, pushed.id)
