"""How runs fail, log and stop, through the command line: every failure ends with ``FAILED:``.

User-code errors, a full disk, SIGTERM, kill -9; ``logs``, ``check`` and ``-v``.
The numbers pipeline (tests/pipelines/numbers.py) runs as a real ``beam-ml``
process on a real store.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root

PIPELINE_FILE = str(Path(__file__).resolve().parent.parent / "pipelines" / "numbers.py")
REPO = Path(__file__).resolve().parents[2]
ENV_NAMES = ("POWER", "FAIL", "SLEEP", "LONG", "COUNT", "CHATTER", "ROOT")


def _env(root: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return {**env, "ROOT": str(root), **extra}


def cli(root: Path, *args: str, **extra: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "beam_ml.run", *args], env=_env(root, **extra),
        capture_output=True, text=True, cwd=REPO, check=False, timeout=300,
    )


def run_numbers(root: Path, *flags: str, **extra: str) -> subprocess.CompletedProcess:
    return cli(root, "run", PIPELINE_FILE, *flags, **extra)


def start_numbers(root: Path, **extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "beam_ml.run", "run", PIPELINE_FILE], env=_env(root, **extra), cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_for_total(proc: subprocess.Popen, root: Path) -> None:
    marker = root / "total-started"
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the run never reached Total"
        time.sleep(0.05)


def last_line(text: str) -> str:
    return text.strip().splitlines()[-1]


def runs_table(root: Path) -> str:
    result = cli(root, "runs", "--pipeline-root", str(root))
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_user_code_error_ends_with_failed_and_logs_shows_the_traceback(tmp_path):
    root = tmp_path / "root"
    result = run_numbers(root, FAIL="1")
    assert result.returncode == 1
    assert last_line(result.stderr) == "FAILED: Total: RuntimeError: Total was told to fail"
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        [run] = store.list_runs("numbers")
        total = next(e for e in store.executions_of_run(run.id) if e.component_id == "Total")
    assert f"beam-ml logs {total.id}" in result.stderr  # the failure says where the details are

    logs = cli(root, "logs", str(total.id), "--pipeline-root", str(root))
    assert logs.returncode == 0, logs.stderr
    assert "Total" in logs.stdout and "FAILED" in logs.stdout
    assert "Traceback (most recent call last)" in logs.stdout
    assert 'raise RuntimeError("Total was told to fail")' in logs.stdout  # the user's line, from the traceback
    assert "--- log:" in logs.stdout

    missing = cli(root, "logs", "9999", "--pipeline-root", str(root))
    assert missing.returncode == 2 and "no execution with id 9999" in missing.stderr


def test_third_party_output_goes_to_the_log_file_unless_verbose(tmp_path):
    root = tmp_path / "root"
    quiet = run_numbers(root, CHATTER="1")
    assert quiet.returncode == 0, quiet.stderr
    console = quiet.stdout + quiet.stderr
    for noise in ("absl says", "tensorflow says", "UserWarning", "native code writes straight to fd 2"):
        assert noise not in console
    assert "beam-ml says: a warning meant for the user" in quiet.stderr  # our own warnings still show

    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        [run] = store.list_runs("numbers")
        chatter = next(e for e in store.executions_of_run(run.id) if e.component_id == "Chatter")
    log_file = Path(chatter.properties["log_file"])
    assert log_file.is_relative_to(root) and log_file.is_file()
    logged = log_file.read_text()
    for noise in ("absl says", "tensorflow says", "a library's UserWarning", "native code writes straight to fd 2"):
        assert noise in logged
    shown = cli(root, "logs", str(chatter.id), "--pipeline-root", str(root))
    assert "native code writes straight to fd 2" in shown.stdout and "absl says" in shown.stdout

    shutil.rmtree(root)
    verbose = run_numbers(root, "-v", CHATTER="1")
    assert verbose.returncode == 0, verbose.stderr
    for noise in ("absl says", "tensorflow says", "a library's UserWarning", "native code writes straight to fd 2"):
        assert noise in verbose.stderr


@pytest.mark.parametrize(("signum", "reason"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "Ctrl-C (SIGINT)")])
def test_sigterm_or_ctrl_c_mid_component_marks_the_run_cancelled(tmp_path, signum, reason):
    root = tmp_path / "root"
    proc = start_numbers(root, SLEEP="60")
    wait_for_total(proc, root)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signum, out + err
    assert last_line(err) == f"FAILED: Total: cancelled by {reason}"
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        [run] = store.list_runs("numbers")
        assert run.state == "CANCELLED"
        states = {e.component_id: e.state for e in store.executions_of_run(run.id)}
        assert states == {"Produce": "COMPLETE", "Square": "COMPLETE", "Total": "CANCELLED"}
        assert store.integrity_check() == []
    assert "CANCELLED" in runs_table(root)
    assert not list((root / "Total").rglob("numbers.json")), "the partial output must be deleted"


def test_an_error_of_beam_ml_itself_ends_with_failed_too(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "metadata.sqlite").write_bytes(b"this is not a SQLite database " * 100)
    result = run_numbers(root)
    assert result.returncode == 1
    assert last_line(result.stderr).startswith("FAILED: beam-ml: DatabaseError: (sqlite3.DatabaseError) file is not a database")
    saved = next(line for line in result.stderr.splitlines() if line.startswith("traceback in "))
    assert "Traceback (most recent call last)" in Path(saved.removeprefix("traceback in ")).read_text()
    assert "Traceback" not in result.stderr  # on the console, the one line


def test_a_killed_run_is_listed_abandoned_as_soon_as_its_process_is_gone(tmp_path):
    root = tmp_path / "root"
    proc = start_numbers(root, SLEEP="60")
    wait_for_total(proc, root)
    assert "RUNNING" in runs_table(root)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    table = runs_table(root)  # no run in between recovered anything
    assert "ABANDONED" in table and "RUNNING" not in table


def test_check_finds_a_deleted_and_a_modified_artifact_file(tmp_path):
    root = tmp_path / "root"
    assert run_numbers(root, LONG="1").returncode == 0
    healthy = cli(root, "check", "--pipeline-root", str(root))
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert "ok:" in healthy.stdout and "5 LIVE artifacts" in healthy.stdout

    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        [run] = store.list_runs("numbers")
        outputs = {e.component_id: store.outputs_of(e.id) for e in store.executions_of_run(run.id)}
    squares = Path(outputs["Square"]["squares"].uri)
    report = Path(outputs["Report"]["report"].uri)
    (squares / "numbers.json").write_text("[0, 1, 4, 9]")  # same shape, other content
    shutil.rmtree(report)
    stray = root / "Total" / "total" / "999"
    stray.mkdir()

    broken = cli(root, "check", "--pipeline-root", str(root))
    assert broken.returncode == 1
    lines = broken.stdout.splitlines()
    assert any(line.startswith(f"changed: {squares}") for line in lines), broken.stdout
    assert any(line.startswith(f"missing: {report}") for line in lines), broken.stdout
    assert any(line.startswith(f"extra: {stray}") for line in lines), broken.stdout
    assert len(lines) == 3, broken.stdout


@pytest.fixture
def small_disk(tmp_path):
    """A 12 MiB tmpfs, mounted for the test (needs root and CAP_SYS_ADMIN)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill the disk needs root; run the suite as root to test a full disk")
    mount = tmp_path / f"disk-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}): the full-disk test needs CAP_SYS_ADMIN")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_full_disk_fails_cleanly_and_the_rerun_after_freeing_space_uses_the_cache(small_disk):
    root = small_disk / "root"
    # Produce writes ~2.3 MB of JSON, Square ~3.7 MB; the ballast leaves room for the first only.
    ballast = small_disk / "ballast"
    ballast.write_bytes(b"\0" * (7 * 1024 * 1024 + 512 * 1024))
    full = run_numbers(root, COUNT="300000")
    assert full.returncode == 1, full.stdout + full.stderr
    assert last_line(full.stderr).startswith("FAILED: Square: OSError: [Errno 28] No space left on device")
    assert len(full.stderr.splitlines()) <= 3, full.stderr  # no traceback on the console
    table = runs_table(root)
    assert "FAILED" in table and "Square" in table
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        [run] = store.list_runs("numbers")
        assert run.state == "FAILED"
        states = {e.component_id: e.state for e in store.executions_of_run(run.id)}
        assert states == {"Produce": "COMPLETE", "Square": "FAILED"}
        assert store.integrity_check() == []

    ballast.unlink()
    rerun = run_numbers(root, COUNT="300000")
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "(2 ran, 1 from cache)" in rerun.stdout  # Produce from cache, Square and Total ran
    assert cli(root, "check", "--pipeline-root", str(root)).returncode == 0


def test_tensorflow_stages_on_column_names_with_spaces_print_nothing_on_stderr(tmp_path):
    """ExampleGen → StatisticsGen → SchemaGen → Transform on "mean radius"-style columns: a quiet console.

    TensorFlow's own start-up lines (fd 2) and any TensorFlow logger warning
    (such as "`mean radius` is not a valid node name", logged where TensorFlow
    names a placeholder after a feature) go to the execution's log file.
    """
    pytest.importorskip("tensorflow_transform")
    import numpy as np

    rng = np.random.default_rng(0)
    csv = tmp_path / "cancer.csv"
    lines = ["mean radius,mean texture,worst area,target"]
    lines += [f"{r:.3f},{t:.3f},{a:.1f},{int(r > 14)}" for r, t, a in
              zip(rng.normal(14, 3, 300), rng.normal(19, 4, 300), rng.normal(880, 500, 300), strict=True)]
    csv.write_text("\n".join(lines) + "\n")
    root = tmp_path / "root"
    spaced = str(REPO / "tests" / "pipelines" / "spaced_columns.py")
    result = cli(root, "run", spaced, CSV=str(csv))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "is not a valid node name" not in result.stdout + result.stderr
    assert result.stderr.strip() == "", result.stderr  # nothing at all on the console's error stream
    logged = "".join(p.read_text() for p in (root / ".logs").glob("Transform-*.log"))
    assert "oneDNN custom operations" in logged  # TensorFlow's C++ start-up output: routed, not lost
