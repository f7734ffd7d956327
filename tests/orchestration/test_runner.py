"""The local runner on a real store: cache, failure, kill, concurrency, lineage, CLI."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from beam_ml.orchestration.runner import LocalDagRunner
from beam_ml.run import load_pipeline, main

PIPELINE_FILE = str(Path(__file__).resolve().parent.parent / "pipelines" / "numbers.py")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def root(tmp_path, monkeypatch):
    for name in ("POWER", "FAIL", "SLEEP", "LONG"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROOT", str(tmp_path / "root"))
    return tmp_path / "root"


def run_numbers(**env):
    old = {k: os.environ.get(k) for k in env}
    os.environ.update({k: str(v) for k, v in env.items()})
    try:
        return LocalDagRunner().run(load_pipeline(PIPELINE_FILE))
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def read_total(result):
    return Path(result.outputs("Total")["total"].uri, "numbers.json").read_text()


def cli(*args, env=None, **kwargs):
    return subprocess.run(
        [sys.executable, "-m", "beam_ml.run", *args],
        env={**os.environ, **(env or {})}, capture_output=True, text=True, cwd=REPO, check=False, **kwargs,
    )


def test_three_components_then_cache_then_one_parameter_change(root):
    first = run_numbers()
    assert first.state == "COMPLETE" and first.ran() == ["Produce", "Square", "Total"]
    assert read_total(first) == "[285]"

    second = run_numbers()
    assert second.ran() == []
    assert {n.state for n in second.nodes.values()} == {"CACHED"}
    assert second.outputs("Total")["total"].id == first.outputs("Total")["total"].id

    changed = run_numbers(POWER=3)
    assert changed.ran() == ["Square", "Total"]  # Produce unchanged, everything downstream of Square re-runs
    assert changed.nodes["Produce"].state == "CACHED"
    assert read_total(changed) == "[2025]"


def test_an_output_directory_is_named_by_its_artifact_id(root):
    run_numbers()
    result = run_numbers(POWER=3)  # Produce from cache: execution and artifact ids part ways
    assert result.ran() == ["Square", "Total"]
    for node_id in result.ran():
        node = result.nodes[node_id]
        assert node.execution.id not in {a.id for a in node.outputs.values()}
        for name, artifact in node.outputs.items():
            assert artifact.uri == str(root / node_id / name / str(artifact.id))
            assert Path(artifact.uri).is_dir()
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        named = {p.name for p in (root / "Total" / "total").iterdir()}
        assert named == {str(a.id) for a in store.artifacts_in_state("LIVE") if a.type_name == "Numbers" and "Total" in a.uri}


def test_deleted_output_is_not_served_from_cache(root):
    first = run_numbers()
    import shutil

    shutil.rmtree(first.outputs("Square")["squares"].uri)
    again = run_numbers()
    assert again.ran() == ["Square"]  # Total's inputs have the same content, so Total stays cached
    assert again.nodes["Total"].state == "CACHED"


def test_failure_is_recorded_and_fix_reuses_completed_steps(root):
    failed = run_numbers(FAIL=1)
    assert failed.state == "FAILED"
    node = failed.nodes["Total"]
    assert node.state == "FAILED" and "RuntimeError: Total was told to fail" in node.error
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        execution = store.get_execution(node.execution.id)
        assert execution.state == "FAILED" and "Total was told to fail" in execution.error
        assert "Traceback" in execution.error
        assert store.latest_artifact("Numbers", where={"count": 1}) is None  # Total's output never became LIVE
        assert store.integrity_check() == []
    assert not list((root / "Total").rglob("numbers.json")), "the partial output must be deleted"

    fixed = run_numbers()
    assert fixed.ran() == ["Total"]
    assert [fixed.nodes[n].state for n in ("Produce", "Square")] == ["CACHED", "CACHED"]


def test_cli_failure_exit_status_names_component_and_error(root):
    result = cli("run", PIPELINE_FILE, env={"FAIL": "1", "ROOT": str(root)})
    assert result.returncode == 1
    assert "FAILED: Total: RuntimeError: Total was told to fail" in result.stderr


def test_sigkill_mid_component_then_rerun(root):
    marker = root / "total-started"
    proc = subprocess.Popen(
        [sys.executable, "-m", "beam_ml.run", "run", PIPELINE_FILE],
        env={**os.environ, "SLEEP": "60", "ROOT": str(root)}, cwd=REPO,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not marker.exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the run never reached Total"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        [killed_run] = store.list_runs("numbers")
        killed = {e.component_id: e for e in store.executions_of_run(killed_run.id)}
        assert killed["Total"].state == "RUNNING"  # nobody could record the kill yet
        staging = store.outputs_of(killed["Total"].id)["total"]
        assert staging.state == "PENDING" and Path(staging.uri).exists()

    rerun = run_numbers()
    assert rerun.state == "COMPLETE"
    assert rerun.ran() == ["Total"]
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        assert store.get_execution(killed["Total"].id).state == "ABANDONED"
        assert store.get_run(killed_run.id).state == "ABANDONED"
        left = store.get_artifact(staging.id)
        assert left.state == "ABANDONED" and not Path(left.uri).exists()
        assert store.integrity_check() == []


def test_two_concurrent_runs_share_one_sqlite_store(root):
    env = {**os.environ, "ROOT": str(root), "LONG": "1"}
    procs = [
        subprocess.Popen([sys.executable, "-m", "beam_ml.run", "run", PIPELINE_FILE], env=env, cwd=REPO,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        runs = store.list_runs("numbers")
        assert [r.state for r in runs] == ["COMPLETE", "COMPLETE"]
        assert store.integrity_check() == []


def test_lineage_from_last_artifact_to_first_via_api_and_cli(root, capsys):
    result = run_numbers(LONG="1")
    first = result.outputs("Produce")["numbers"]
    last = result.outputs("Archive")["archive"]
    from beam_ml.metadata.lineage import downstream, upstream

    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        tree = upstream(store, last.id)
        assert {a.id for a, _ in tree.walk()} >= {first.id, last.id}
        assert tree.inputs["squares"].inputs["numbers"].artifact.id == first.id
        assert last.id in {a.id for a in downstream(store, first.id).walk()}

    assert main(["lineage", str(last.id), "--pipeline-root", str(root), "--direction", "up"]) == 0
    text = capsys.readouterr().out
    for component in ("Archive", "Report", "Total", "Square", "Produce"):
        assert f"← {component}" in text
    assert main(["lineage", str(first.id), "--pipeline-root", str(root), "--direction", "down"]) == 0
    text = capsys.readouterr().out
    assert "→ Archive" in text and f"Artifact {last.id}" in text


def test_runs_and_show_commands(root, capsys):
    result = run_numbers()
    run_numbers()
    assert main(["runs", "--pipeline-root", str(root)]) == 0
    table = capsys.readouterr().out
    assert table.count("COMPLETE") == 2 and "numbers" in table
    total = result.outputs("Total")["total"]
    assert main(["show", str(total.id), "--pipeline-root", str(root)]) == 0
    shown = capsys.readouterr().out
    assert "Numbers" in shown and "numbers.json" in shown and "produced by" in shown
    assert main(["show", "999", "--pipeline-root", str(root)]) == 2
    assert "no artifact with id 999" in capsys.readouterr().err
    assert main(["runs"]) == 2
    assert "say which store to read" in capsys.readouterr().err


def test_runs_are_numbered_from_1_per_pipeline_in_the_summary_runs_show_and_report(root, capsys, tmp_path):
    flags = ["--pipeline-root", str(root)]
    assert main(["run", PIPELINE_FILE, *flags]) == 0
    assert capsys.readouterr().out.startswith("run 1 of numbers: COMPLETE")
    with MetadataStore(sqlite_url_for_root(str(root))) as store:  # another pipeline's run between them
        other = store.begin_run("other")
        store.end_run(other.id, "COMPLETE")
    assert main(["run", PIPELINE_FILE, *flags]) == 0
    summary = capsys.readouterr().out
    assert summary.startswith("run 2 of numbers: COMPLETE") and "beam-ml report 2 --pipeline numbers" in summary

    assert main(["runs", *flags]) == 0
    rows = [line.split()[:3] for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["2", "numbers", "COMPLETE"], ["1", "other", "COMPLETE"], ["1", "numbers", "COMPLETE"]]

    assert main(["show", "--run", "2", *flags]) == 2  # two pipelines: which one's run 2?
    assert "several pipelines (numbers, other): say which with --pipeline NAME" in capsys.readouterr().err
    assert main(["show", "--run", "2", "--pipeline", "numbers", *flags]) == 0
    listing = capsys.readouterr().out
    assert listing.startswith("run 2 of numbers: COMPLETE") and "CACHED" in listing
    assert main(["show", "--run", "3", "--pipeline", "numbers", *flags]) == 2
    assert "pipeline numbers has no run 3; `beam-ml runs` lists its runs" in capsys.readouterr().err

    out = tmp_path / "report.html"
    assert main(["report", "1", "--pipeline", "numbers", "--out", str(out), *flags]) == 0
    assert "run 1 of numbers" in out.read_text()
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        total = next(e for e in store.executions_of_run(store.find_run(1, "numbers").id) if e.component_id == "Total")
    assert main(["logs", str(total.id), *flags]) == 0
    assert f"execution {total.id}: Total in run 1 of numbers: COMPLETE" in capsys.readouterr().out


def test_user_module_contents_are_part_of_the_cache_key(tmp_path):
    from beam_ml import Artifact, Output, Pipeline, UserModule, component

    module = tmp_path / "user_fn.py"
    module.write_text("def value():\n    return 1\n")

    @component
    def UseModule(out: Output[Artifact], *, module_file: UserModule) -> None:
        Path(out.uri, "v").write_text(str(module_file.get("value")()))

    pipeline = Pipeline("mod", str(tmp_path / "root"), [UseModule(module_file=str(module))])
    assert LocalDagRunner().run(pipeline).ran() == ["UseModule"]
    assert LocalDagRunner().run(pipeline).ran() == []
    module.write_text("def value():\n    return 2\n")
    assert LocalDagRunner().run(pipeline).ran() == ["UseModule"]


def test_cached_rerun_of_five_components_imports_neither_beam_nor_tensorflow(root):
    assert run_numbers(LONG="1").state == "COMPLETE"
    probe = (
        "import sys; from beam_ml.run import main; "
        f"rc = main(['run', {PIPELINE_FILE!r}]); "
        "heavy = [m for m in ('tensorflow', 'apache_beam') if m in sys.modules]; "
        "print('heavy', heavy); sys.exit(rc or bool(heavy))"
    )
    result = subprocess.run([sys.executable, "-c", probe], env={**os.environ, "ROOT": str(root), "LONG": "1"},
                            capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "(0 ran, 5 from cache)" in result.stdout and "heavy []" in result.stdout


def test_runner_on_a_postgresql_store(root, postgres):
    url = postgres.create_database("runner_store")
    pipeline = load_pipeline(PIPELINE_FILE)
    assert LocalDagRunner(metadata_url=url).run(pipeline).ran() == ["Produce", "Square", "Total"]
    assert LocalDagRunner(metadata_url=url).run(pipeline).ran() == []
    result = cli("runs", "--metadata-url", url)
    assert result.returncode == 0 and result.stdout.count("COMPLETE") == 2


def test_rich_progress_draws_one_line_per_component():
    import io

    from rich.console import Console

    from beam_ml.orchestration.progress import RichProgress

    progress = RichProgress()
    progress.console = Console(file=io.StringIO(), force_terminal=True, width=100)
    pipeline = load_pipeline(PIPELINE_FILE)
    progress.start(pipeline)
    progress.node_started("Produce")
    progress.node_finished("Produce", "CACHED", 0.01, None)
    progress.node_started("Square")
    progress.node_finished("Square", "COMPLETE", 1.5, None)
    progress.node_started("Total")
    progress.node_finished("Total", "FAILED", 0.2, "boom")
    progress.stop()
    out = progress.console.file.getvalue()
    for expected in ("Produce", "cached", "Square", "complete", "1.5s", "Total", "failed"):
        assert expected in out


def test_a_failing_component_keeps_what_it_noted(tmp_path):
    from beam_ml import Artifact, ExecutionContext, Output, Pipeline, component

    @component
    def SubmitsThenFails(out: Output[Artifact], ctx: ExecutionContext) -> None:
        ctx.notes["dataflow_jobs"] = [{"job_id": "2026-11-27_01", "project": "p", "region": "r"}]
        raise RuntimeError("the job failed")

    root = tmp_path / "root"
    result = LocalDagRunner().run(Pipeline("notes", str(root), [SubmitsThenFails()]))
    assert result.state == "FAILED"
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        execution = store.get_execution(result.nodes["SubmitsThenFails"].execution.id)
        assert execution.state == "FAILED"
        assert execution.properties["dataflow_jobs"][0]["job_id"] == "2026-11-27_01"
