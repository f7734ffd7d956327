"""``beam-ml export kubeflow``: kfp compiles it, it loads back with the pipeline's graph, and kfp's local runner runs it.

kfp.local (``SubprocessRunner(use_venv=False)``) runs each task as a process
on this machine, through the compiled YAML's own command lines: the same
``run_beam_ml_node`` body a Kubeflow pod runs in the image, against a local
root and SQLite store (``--allow-local``). The last test runs the same file locally and
under Airflow against that store too: one store, one cache and one lineage for all three.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kfp import dsl
from kfp.components import load_component_from_file

from beam_ml.metadata.store import CACHED, COMPLETE, MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.kubeflow_export import NotShareable, check_shareable
from beam_ml.run import load_pipeline
from beam_ml.testing.airflow import airflow_home

REPO = Path(__file__).resolve().parents[2]
PENGUIN = str(REPO / "examples" / "penguin" / "pipeline.py")
PENGUIN_DATA = str(REPO / "tests" / "pipelines" / "penguin_data.py")
PENGUIN_EVALUATED = str(REPO / "tests" / "pipelines" / "penguin_evaluated.py")
IMAGE = "registry.example/beam-ml:0.1.0"

# Runs a compiled pipeline YAML with kfp's local runner: argv = YAML, kfp's own output directory.
KFP_LOCAL = """
import sys
from kfp import local
from kfp.components import load_component_from_file

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[2])
load_component_from_file(sys.argv[1])()
"""


def cli(*args, cwd=REPO):
    return subprocess.run(
        [sys.executable, "-m", "beam_ml.run", *args], capture_output=True, text=True, cwd=cwd, check=False
    )


def run_kfp_local(pipeline_yaml, kfp_outputs, env=None):
    return subprocess.run(
        [sys.executable, "-c", KFP_LOCAL, str(pipeline_yaml), str(kfp_outputs)],
        capture_output=True, text=True, cwd=REPO, check=False, env={**os.environ, **(env or {})},
    )  # fmt: skip


def dag_of(pipeline_yaml):
    """beam-ml component id -> (its upstream component ids, its task spec), from the compiled YAML."""
    spec = yaml.safe_load(Path(pipeline_yaml).read_text())
    tasks = spec["root"]["dag"]["tasks"]
    node_of = {key: task["taskInfo"]["name"] for key, task in tasks.items()}
    return spec, {
        node_of[key]: ({node_of[d] for d in task.get("dependentTasks", [])}, task) for key, task in tasks.items()
    }


def test_the_exported_penguin_pipeline_loads_back_with_the_pipeline_graph(tmp_path):
    out = tmp_path / "pipeline.yaml"
    root, url = "s3://models/penguin", "postgresql+psycopg://beam@metadata.internal/beam"
    done = cli(
        "export", "kubeflow", "examples/penguin/pipeline.py", "--out", str(out), "--image", IMAGE,
        "--pipeline-root", root, "--metadata-url", url, "--", "--s3_endpoint_url=http://s3.internal:8333",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "from their working directory (/app" in done.stdout

    loaded = load_component_from_file(str(out))  # kfp reads it back as a pipeline
    assert loaded.name == "penguin"
    pipeline = load_pipeline(PENGUIN)
    spec, dag = dag_of(out)
    resolvers = {node_id for node_id in pipeline.order if pipeline.node(node_id).spec.resolver}
    assert resolvers and set(dag) == set(pipeline.order) - resolvers  # a resolver is no task: its reader resolves it
    for node_id, (upstream, task) in dag.items():
        direct = set(pipeline.node(node_id).upstream_ids)
        through = {up for r in direct & resolvers for up in pipeline.node(r).upstream_ids}
        assert upstream == (direct - resolvers) | through, node_id
        arguments = {name: value["runtimeValue"]["constant"] for name, value in task["inputs"]["parameters"].items()}
        assert arguments == {
            "pipeline_file": "examples/penguin/pipeline.py",
            "node_id": node_id,
            "run_id": dsl.PIPELINE_JOB_ID_PLACEHOLDER,
            "pipeline_root": root,
            "metadata_url": url,
            "beam_args": ["--s3_endpoint_url=http://s3.internal:8333"],
        }
        assert not task["cachingOptions"].get("enableCache"), "beam-ml's cache decides, not kfp's"
        executor = spec["deploymentSpec"]["executors"][spec["components"][task["componentRef"]["name"]]["executorLabel"]]
        assert executor["container"]["image"] == IMAGE
        assert "pip install" not in " ".join(executor["container"]["command"])  # kfp comes with the image
    assert dag["Trainer"][0] == {"Transform"} and dag["ExampleGen"][0] == set()


@pytest.mark.parametrize(
    ("root", "url", "beam_args", "says"),
    [
        ("/data/penguin", "postgresql+psycopg://beam@db/beam", [], "give --pipeline-root on an object store"),
        ("s3://models/penguin", None, [], "give --metadata-url of a PostgreSQL server"),
        ("s3://models/penguin", "sqlite:////data/metadata.sqlite", [], "a SQLite file cannot be shared"),
        ("s3://models/penguin", "postgresql+psycopg://beam:hunter2@db/beam", [], "PGPASSWORD from a Kubernetes secret"),
        ("s3://m/p", "postgresql+psycopg://beam@db/beam", ["--s3_secret_access_key=abc"], "standard chains"),
    ],
)
def test_export_refuses_what_kubeflow_tasks_cannot_share_or_must_not_see(root, url, beam_args, says):
    with pytest.raises(NotShareable, match=says) as refused:
        check_shareable(root, url, beam_args, allow_local=False)
    assert "hunter2" not in str(refused.value) and "abc" not in str(refused.value)


def test_a_local_root_is_refused_on_the_command_line_with_the_next_step(tmp_path):
    out = tmp_path / "pipeline.yaml"
    refused = cli("export", "kubeflow", PENGUIN_DATA, "--out", str(out), "--image", IMAGE, "--pipeline-root", str(tmp_path))
    assert refused.returncode == 2 and not out.exists()
    assert "is a local path" in refused.stderr and "give --pipeline-root on an object store" in refused.stderr
    assert "--allow-local is only for kfp's local runner" in refused.stderr


def test_a_failing_component_fails_its_kfp_task_and_the_run(tmp_path):
    root, out = tmp_path / "root", tmp_path / "pipeline.yaml"
    done = cli(
        "export", "kubeflow", PENGUIN_DATA, "--out", str(out), "--image", IMAGE, "--pipeline-root", str(root),
        "--allow-local",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    failed = run_kfp_local(out, tmp_path / "kfp-outputs", env={"PENGUIN_DATA": str(tmp_path / "no-such.csv")})
    output = _plain(failed.stdout + failed.stderr)
    assert failed.returncode != 0
    assert "FAILED: ExampleGen:" in output and "Task 'examplegen' finished with status FAILURE" in output
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        (run,) = store.list_runs()
        assert run.state == "FAILED" and run.name.isdigit()  # kfp.local's job id
        assert [(e.component_id, e.state) for e in store.executions_of_run(run.id)] == [("ExampleGen", "FAILED")]


@pytest.fixture(scope="module")
def kfp_local_runs(tmp_path_factory):
    """Penguin to the Evaluator, exported and run twice with kfp.local against one local root and store."""
    work = tmp_path_factory.mktemp("kubeflow")
    root, out = work / "root", work / "pipeline.yaml"
    done = cli(
        "export", "kubeflow", PENGUIN_EVALUATED, "--out", str(out), "--image", IMAGE, "--pipeline-root", str(root),
        "--allow-local",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    runs = [run_kfp_local(out, work / "kfp-outputs") for _ in range(2)]
    return {"root": root, "yaml": out, "runs": runs}


def test_kfp_local_runs_the_pipeline_then_serves_it_from_cache(kfp_local_runs):
    first, second = kfp_local_runs["runs"]
    assert first.returncode == 0, first.stdout[-5000:] + first.stderr[-5000:]
    assert second.returncode == 0, second.stdout[-5000:] + second.stderr[-5000:]
    order = load_pipeline(PENGUIN_EVALUATED).order
    assert "Pipeline 'penguin-evaluated' finished with status SUCCESS" in _plain(first.stderr + first.stdout)
    # The tasks' console is run-node's: kfp's executor says what it runs, then no third-party INFO lines.
    executor_says = {line.split("]: ", 1)[1].split()[0] for line in first.stdout.splitlines() if "[KFP Executor" in line}
    assert executor_says == {"Looking", "Loading", "Got"}, executor_says
    assert first.stdout.count("Evaluator in run 1 of penguin_evaluated") == 1
    with MetadataStore(sqlite_url_for_root(str(kfp_local_runs["root"]))) as store:
        later, earlier = store.list_runs()
        assert (earlier.number, earlier.state, later.number, later.state) == (1, COMPLETE, 2, COMPLETE)
        assert earlier.name != later.name  # each kfp run's own id
        first_executions = store.executions_of_run(earlier.id)
        assert sorted(e.component_id for e in first_executions) == sorted(order)
        assert {e.state for e in first_executions} == {COMPLETE}
        assert {e.state for e in store.executions_of_run(later.id)} == {CACHED}
        assert _outputs(store, later.id) == _outputs(store, earlier.id)
        evaluator = next(e for e in first_executions if e.component_id == "Evaluator")
        blessing = store.outputs_of(evaluator.id)["blessing"]
        assert os.path.isdir(blessing.uri) and blessing.state == "LIVE"
        assert sum(store.outputs_of(first_executions[0].id)["examples"].properties["split_rows"].values()) == 344


def test_the_same_file_run_locally_under_kfp_local_and_under_airflow_shares_one_store_and_lineage(
    kfp_local_runs, airflow_cli, tmp_path
):
    """After the two kfp.local runs: `beam-ml run`, then `airflow dags test` of the exported DAG, on the same root."""
    root = str(kfp_local_runs["root"])
    local = cli("run", PENGUIN_EVALUATED, "--pipeline-root", root)
    assert local.returncode == 0, local.stderr
    exported = cli("export", "airflow", PENGUIN_EVALUATED, "--out", str(tmp_path / "dags"), "--pipeline-root", root)
    assert exported.returncode == 0, exported.stderr
    home = airflow_home(tmp_path / "dags", home=tmp_path / "airflow-home", airflow=airflow_cli)
    under_airflow = home.run("dags", "test", "penguin_evaluated")
    assert under_airflow.returncode == 0, (under_airflow.stdout + under_airflow.stderr)[-4000:]
    runs = cli("runs", "--pipeline-root", root)
    assert runs.returncode == 0, runs.stderr
    rows = [line.split() for line in runs.stdout.splitlines() if line.split()[:1] in (["1"], ["2"], ["3"], ["4"])]
    assert [(row[0], row[2]) for row in rows] == [("4", COMPLETE), ("3", COMPLETE), ("2", COMPLETE), ("1", COMPLETE)]
    with MetadataStore(sqlite_url_for_root(root)) as store:
        assert store.list_runs()[0].name.startswith("manual__")  # Airflow's run id
        for run in store.list_runs():
            executions = {e.component_id: e for e in store.executions_of_run(run.id)}
            model = store.outputs_of(executions["Trainer"].id)["model"]
            examples = store.outputs_of(executions["ExampleGen"].id)["examples"]
            assert examples.id in _upstream_artifacts(store, model.id), run.label


def _upstream_artifacts(store, artifact_id):
    """Every artifact ``artifact_id`` was made from, through the executions that produced them."""
    found, pending = set(), [artifact_id]
    while pending:
        producer = store.producer_of(pending.pop())
        for artifact in store.inputs_of(producer.id).values() if producer else ():
            if artifact.id not in found:
                found.add(artifact.id)
                pending.append(artifact.id)
    return found


def _outputs(store, run_id):
    return {
        (e.component_id, name): artifact.id
        for e in store.executions_of_run(run_id)
        for name, artifact in store.outputs_of(e.id).items()
    }


def _plain(text):
    """kfp's log lines without their colour codes."""
    import re

    return re.sub(r"\x1b\[[0-9;]*m", "", text)
