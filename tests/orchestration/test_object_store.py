"""Pipelines whose root is on an object store, against a real S3 server (SeaweedFS, tests/conftest.py).

The data stages run with ``--pipeline-root s3://...`` and must give what a
local root gives, rerun fully from cache in a fresh process (the S3 options
must reach the first cache check), be shown by ``show``/``lineage``, survive
``kill -9`` (no LIVE artifact on an incomplete prefix), never re-read their
outputs in the launcher, and never record or print a credential.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import create_engine, inspect, select
from sqlalchemy import text as sql_text

from beam_ml import fs
from beam_ml.metadata.store import LIVE, MetadataStore

REPO = Path(__file__).resolve().parents[2]
PIPELINES = REPO / "tests" / "pipelines"
PENGUIN_DATA = PIPELINES / "penguin_data.py"
STEPS = PIPELINES / "object_store_steps.py"
DATA_STAGES = ["ExampleGen", "StatisticsGen", "SchemaGen", "ExampleValidator"]


def cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "beam_ml.run", *args], cwd=cwd, capture_output=True, text=True, check=False,
        timeout=timeout, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})},
    )  # fmt: skip


def start_cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "beam_ml.run", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, **env},
    )  # fmt: skip


def penguins_csv() -> str:
    import importlib.util

    spec = importlib.util.find_spec("palmerpenguins")
    return os.path.join(spec.submodule_search_locations[0], "data", "penguins.csv")


def objects(server, bucket_url: str) -> dict[str, bytes]:
    """Every object in a bucket: key -> bytes (read with boto3, beside Beam)."""
    client = server.client()
    bucket = bucket_url[len("s3://") :]
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        for entry in page.get("Contents", []):
            found[entry["Key"]] = client.get_object(Bucket=bucket, Key=entry["Key"])["Body"].read()
    return found


def outputs_by_component(store_url: str) -> dict[str, dict[str, str]]:
    """component -> output name -> URI of the LIVE artifacts of the store's latest run."""
    with MetadataStore(store_url) as store:
        run = store.list_runs(limit=1)[0]
        found = {}
        for execution in store.executions_of_run(run.id):
            found[execution.component_id] = {name: a.uri for name, a in store.outputs_of(execution.id).items()}
        return found


def files_under(uri: str) -> dict[str, bytes]:
    """Relative name -> bytes of every file under an artifact URI, local or remote."""
    found = {}
    for path in fs.list_files(uri):
        with fs.open_read(path) as handle:
            found[path[len(uri) :].lstrip("/")] = handle.read()
    return found


# --- a remote root needs a named store; an unreachable store fails fast ----------------------


def test_a_remote_root_without_metadata_url_stops_at_once_with_the_next_step(tmp_path):
    done = cli("run", str(PENGUIN_DATA), "--pipeline-root", "s3://bucket/penguin", cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "--metadata-url" in done.stderr and "s3://bucket/penguin" in done.stderr, done.stderr
    assert list(tmp_path.iterdir()) == [], "nothing may be written locally (the store used to land in ./s3:)"


def test_inspecting_a_remote_root_without_metadata_url_says_which_flag_is_missing(tmp_path):
    done = cli("runs", "--pipeline-root", "s3://bucket/penguin", cwd=tmp_path, timeout=300)
    assert done.returncode == 2
    assert "--metadata-url" in done.stderr, done.stderr


def test_an_unreachable_endpoint_fails_the_run_naming_the_endpoint(tmp_path):
    with __import__("socket").socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{probe.getsockname()[1]}"  # nothing listens once the probe is closed
    store = f"sqlite:///{tmp_path}/store/metadata.sqlite"
    done = cli(
        "run", str(PENGUIN_DATA), "--pipeline-root", "s3://bucket/penguin", "--metadata-url", store, "--",
        f"--s3_endpoint_url={dead}", "--s3_access_key_id=x", "--s3_secret_access_key=y", "--s3_region_name=us-east-1",
        cwd=tmp_path, timeout=600,
    )  # fmt: skip
    assert done.returncode == 1, done.stdout + done.stderr
    assert dead in done.stderr, done.stderr
    assert "FAILED" in done.stderr.splitlines()[-1]


# --- the data stages on S3 --------------------------------------------------------------------


def test_data_stages_on_s3_equal_a_local_root_rerun_from_cache_and_show_lineage(s3_server, s3_bucket, tmp_path):
    client = s3_server.client()
    bucket = s3_bucket[len("s3://") :]
    client.upload_file(penguins_csv(), bucket, "input/penguins.csv")
    flags = s3_server.beam_flags()
    remote_store = f"sqlite:///{tmp_path}/remote-store/metadata.sqlite"
    remote = ["--pipeline-root", f"{s3_bucket}/penguin", "--metadata-url", remote_store]
    env = {"PENGUIN_DATA": f"{s3_bucket}/input/penguins.csv"}

    first = cli("run", str(PENGUIN_DATA), *remote, "--", *flags, cwd=tmp_path, env=env)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "(4 ran, 0 from cache)" in first.stdout, first.stdout
    # A fresh process: the S3 options must reach the very first cache check.
    again = cli("run", str(PENGUIN_DATA), *remote, "--", *flags, cwd=tmp_path, env=env)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert "(0 ran, 4 from cache)" in again.stdout, again.stdout
    assert not (tmp_path / "s3:").exists()

    local = cli("run", str(PENGUIN_DATA), "--pipeline-root", str(tmp_path / "local"), cwd=tmp_path)
    assert local.returncode == 0, local.stdout[-3000:] + local.stderr[-3000:]

    fs.configure(flags)
    on_s3 = outputs_by_component(remote_store)
    on_disk = outputs_by_component(f"sqlite:///{tmp_path}/local/metadata.sqlite")
    assert all(uri.startswith(f"{s3_bucket}/penguin/") for out in on_s3.values() for uri in out.values())
    with MetadataStore(remote_store) as store:
        published = store.artifacts_in_state(LIVE)
    assert published and all(a.uri == f"{s3_bucket}/penguin/{a.uri.split('/')[-3]}/{a.uri.split('/')[-2]}/{a.id}" for a in published), \
        [a.uri for a in published]  # each output's prefix is named by its artifact id
    for component, output in (("StatisticsGen", "statistics"), ("SchemaGen", "schema"), ("ExampleValidator", "anomalies")):
        remote_files = files_under(on_s3[component][output])
        assert remote_files, f"{component}.{output} is empty on S3"
        assert remote_files == files_under(on_disk[component][output]), f"{component}.{output} differs from a local root"
    # Same rows in the examples (Parquet bytes may carry the writer's metadata, so compare the tables).
    import io

    import pyarrow.parquet as pq

    def rows(uri: str) -> int:
        return sum(pq.read_table(io.BytesIO(data)).num_rows for name, data in files_under(uri).items() if name.endswith(".parquet"))

    assert rows(on_s3["ExampleGen"]["examples"]) == rows(on_disk["ExampleGen"]["examples"]) == 344
    # No staging prefix is left over.
    assert not [key for key in objects(s3_server, s3_bucket) if ".staging-" in key]

    with MetadataStore(remote_store) as store:
        stats = next(a for a in store.artifacts_in_state(LIVE) if a.type_name == "Statistics")
    shown = cli("show", str(stats.id), "--metadata-url", remote_store, "--", *flags, cwd=tmp_path)
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert stats.uri in shown.stdout and "body_mass_g" in shown.stdout, shown.stdout
    lineage = cli("lineage", str(stats.id), "--metadata-url", remote_store, cwd=tmp_path)
    assert lineage.returncode == 0, lineage.stdout + lineage.stderr
    assert "ExampleGen" in lineage.stdout and "SchemaGen" in lineage.stdout, lineage.stdout
    checked = cli("check", "--metadata-url", remote_store, "--", *flags, cwd=tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    # The UI reads the remote artifacts too: the same walk and pages as for a local root.
    from views.test_ui import check_data_pages, walk

    with MetadataStore(remote_store) as store:
        [first_run, _] = sorted(store.list_runs(), key=lambda r: r.id)
        check_data_pages(walk(store, first_run.id), store, first_run.id)


# --- crashes on S3 ---------------------------------------------------------------------------


def _assert_no_live_artifact_on_an_incomplete_prefix(server, bucket_url: str, store_url: str, expected: dict[str, set[str]]) -> None:
    keys = set(objects(server, bucket_url))
    with MetadataStore(store_url) as store:
        for artifact in store.artifacts_in_state(LIVE):
            prefix = artifact.uri[len(bucket_url) + 1 :] + "/"
            names = {key[len(prefix) :] for key in keys if key.startswith(prefix)}
            component = artifact.uri.split("/")[-3]
            assert names == expected[component], f"LIVE artifact {artifact.id} at {artifact.uri} holds {sorted(names)}"
    assert not [key for key in keys if ".staging-" in key], sorted(keys)
    published = {key.rsplit("/", 1)[0] for key in keys if "/Slow/" in key}
    with MetadataStore(store_url) as store:
        live = {a.uri[len(bucket_url) + 1 :] for a in store.artifacts_in_state(LIVE)}
    assert published <= live, f"prefixes no LIVE artifact owns: {sorted(published - live)}"


STEP_FILES = {"Write": {"part-0.txt", "part-1.txt", "part-2.txt"}, "Slow": {"first.txt", "second.txt", "third.txt"}}


def test_kill_9_during_a_component_on_s3_then_the_rerun_completes(s3_server, s3_bucket, tmp_path):
    flags = s3_server.beam_flags()
    store_url = f"sqlite:///{tmp_path}/metadata.sqlite"
    args = ["run", str(STEPS), "--pipeline-root", f"{s3_bucket}/steps", "--metadata-url", store_url, "--", *flags]
    marker = tmp_path / "slow-started"
    proc = start_cli(*args, cwd=tmp_path, env={"SLOW_MARKER": str(marker), "SLOW_SLEEP": "600"})
    deadline = time.monotonic() + 600
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "Slow never started"
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)

    rerun = cli(*args, cwd=tmp_path, env={"SLOW_SLEEP": "0"})
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "(1 ran, 1 from cache)" in rerun.stdout, rerun.stdout
    _assert_no_live_artifact_on_an_incomplete_prefix(s3_server, s3_bucket, store_url, STEP_FILES)


def test_kill_9_in_the_middle_of_publishing_on_s3_leaves_no_partial_output(s3_server, s3_bucket, tmp_path):
    flags = s3_server.beam_flags()
    store_url = f"sqlite:///{tmp_path}/metadata.sqlite"
    args = ["run", str(STEPS), "--pipeline-root", f"{s3_bucket}/steps", "--metadata-url", store_url, "--", *flags]
    crashed = cli(*args, cwd=tmp_path, env={"CRASH_IN_PUBLISH": "1"})
    assert crashed.returncode == -signal.SIGKILL, crashed.stdout + crashed.stderr
    keys = set(objects(s3_server, s3_bucket))
    assert [key for key in keys if "/Slow/result/" in key and ".staging-" not in key], "the crash came mid-copy"

    rerun = cli(*args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "(1 ran, 1 from cache)" in rerun.stdout, rerun.stdout
    _assert_no_live_artifact_on_an_incomplete_prefix(s3_server, s3_bucket, store_url, STEP_FILES)


# --- fingerprints from what the store recorded ---------------------------------------------


def test_the_runner_never_opens_an_output_for_reading_after_a_component(s3_server, s3_bucket, tmp_path, monkeypatch):
    """Fingerprints come from the sizes and checksums the store recorded while the files were written."""
    from apache_beam.io.aws.s3filesystem import S3FileSystem

    from beam_ml.orchestration import runner as runner_module
    from beam_ml.orchestration.runner import LocalDagRunner

    sys.path.insert(0, str(REPO / "examples" / "penguin"))
    try:
        import pipeline as penguin
    finally:
        sys.path.pop(0)
    phase = {"in_component": False}
    reads_after: list[str] = []
    real_call, real_open = runner_module._call, S3FileSystem.open

    def spy_call(*args, **kwargs):
        phase["in_component"] = True
        try:
            return real_call(*args, **kwargs)
        finally:
            phase["in_component"] = False

    def spy_open(self, path, *args, **kwargs):
        if not phase["in_component"]:
            reads_after.append(path)
        return real_open(self, path, *args, **kwargs)

    monkeypatch.setattr(runner_module, "_call", spy_call)
    monkeypatch.setattr(S3FileSystem, "open", spy_open)
    root = f"{s3_bucket}/spy"
    data = penguin.create_data_pipeline(root=root)
    result = LocalDagRunner(beam_args=s3_server.beam_flags(), metadata_url=f"sqlite:///{tmp_path}/m.sqlite").run(data)
    assert result.state == "COMPLETE", result.failed
    assert result.ran() == DATA_STAGES
    assert reads_after == [], f"the runner read outputs after their component: {reads_after}"
    assert all(a.fingerprint for node in result.nodes.values() for a in node.outputs.values())


def test_a_changed_file_on_s3_changes_the_fingerprint_and_the_same_bytes_keep_it(s3_server, s3_bucket):
    fs.configure(s3_server.beam_flags())
    client = s3_server.client()
    bucket = s3_bucket[len("s3://") :]
    for prefix in ("a", "b"):
        client.put_object(Bucket=bucket, Key=f"{prefix}/x.txt", Body=b"same bytes")
        client.put_object(Bucket=bucket, Key=f"{prefix}/sub/y.txt", Body=b"more")
    assert fs.fingerprint(f"{s3_bucket}/a") == fs.fingerprint(f"{s3_bucket}/b")
    client.put_object(Bucket=bucket, Key="b/x.txt", Body=b"same bytez")
    assert fs.fingerprint(f"{s3_bucket}/a") != fs.fingerprint(f"{s3_bucket}/b")


# --- credentials ----------------------------------------------------------------------------


def test_secrets_appear_nowhere_in_the_store_logs_or_cli_output(s3_server, s3_bucket, postgres, tmp_path):
    password = "pw" + secrets.token_hex(12)
    database = postgres.create_database(f"secrets_{os.getpid()}")
    # Trust authentication accepts any password: the URL carries one as a real deployment's would.
    store_url = database.replace("postgres@", f"postgres:{password}@")
    secret = s3_server.secret_key
    flags = s3_server.beam_flags()
    assert f"--s3_secret_access_key={secret}" in flags
    log_dir = tmp_path / "tmp"
    log_dir.mkdir()
    env = {"TMPDIR": str(log_dir)}
    args = ["--pipeline-root", f"{s3_bucket}/secret", "--metadata-url", store_url]
    outputs = []
    # LOG_OPTIONS: the Write step logs the run's Beam flags, as a careless component might.
    run = cli("run", str(STEPS), *args, "-v", "--", *flags, cwd=tmp_path, env={**env, "LOG_OPTIONS": "1"})
    outputs.append(run.stdout + run.stderr)
    assert run.returncode == 0, outputs[0]
    for command in (["runs"], ["show", "1"], ["lineage", "1"], ["logs", "1"], ["check"]):
        done = cli(*command, "--metadata-url", store_url, "--", *flags, cwd=tmp_path, env=env)
        outputs.append(done.stdout + done.stderr)
    for text in outputs:
        assert secret not in text and password not in text, text
    logs = [p for p in log_dir.rglob("*") if p.is_file()]
    assert logs, "the run wrote no log files where expected"
    for path in logs:
        content = path.read_text(errors="replace")
        assert secret not in content and password not in content, path
    assert any("--s3_secret_access_key=***" in p.read_text(errors="replace") for p in logs), "the logged flags, redacted"
    engine = create_engine(database)
    with engine.connect() as conn:
        dumped = []
        for table in inspect(conn).get_table_names():
            dumped.extend(str(row) for row in conn.execute(select(sql_text("*")).select_from(sql_text(table))))
    engine.dispose()
    everything = "\n".join(dumped)
    assert "--s3_secret_access_key=***" in everything, "the run's flags are recorded, redacted"
    assert secret not in everything and password not in everything


def test_s3_calls_share_one_boto3_client_per_settings(s3_server, s3_bucket, monkeypatch):
    """Beam makes a boto3 client per S3 operation (0.3-0.8 s each); the framework's calls reuse one."""
    import botocore.session

    fs.configure(s3_server.beam_flags())
    s3_server.client().put_object(Bucket=s3_bucket[len("s3://") :], Key="p/x.txt", Body=b"x")
    assert fs.exists(f"{s3_bucket}/p")
    made = []
    real = botocore.session.Session.create_client
    monkeypatch.setattr(botocore.session.Session, "create_client", lambda self, *a, **k: made.append(a) or real(self, *a, **k))
    for _ in range(5):
        assert fs.exists(f"{s3_bucket}/p/x.txt")
        assert fs.fingerprint(f"{s3_bucket}/p")
        assert list(fs.list_files(f"{s3_bucket}/p")) == [f"{s3_bucket}/p/x.txt"]
    assert made == []
