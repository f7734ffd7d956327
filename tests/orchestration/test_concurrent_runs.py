"""Identical runs at the same time compute each step once; a model is trained and pushed once.

Real ``beam-ml run`` processes on one pipeline root, with the store on SQLite
and on PostgreSQL: the second run finds the first one's RUNNING execution
with the same cache key, waits for it, and serves its outputs from cache; if
the first process dies meanwhile, the second takes over.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root

REPO = Path(__file__).resolve().parents[2]
NUMBERS = str(REPO / "tests" / "pipelines" / "numbers.py")
PENGUIN = str(REPO / "examples" / "penguin" / "pipeline.py")
ENV_NAMES = ("POWER", "FAIL", "SLEEP", "LONG", "COUNT", "CHATTER", "ROOT", "BEAM_ML_METADATA_URL")


def start(pipeline_file: str, *args: str, **env: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if k not in ENV_NAMES}
    return subprocess.Popen(
        [sys.executable, "-m", "beam_ml.run", "run", pipeline_file, *args], env={**clean, **env}, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_until(condition, what: str, procs=(), timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def executions_by_component(store: MetadataStore) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for run in store.list_runs():
        for execution in store.executions_of_run(run.id):
            found.setdefault(execution.component_id, []).append(execution.state)
    return {name: sorted(states) for name, states in found.items()}


def _store_url(request, tmp_path) -> str:
    if request.param == "sqlite":
        return sqlite_url_for_root(str(tmp_path / "root"))
    return request.getfixturevalue("postgres").create_database(f"concurrent_{os.getpid()}_{time.monotonic_ns()}")


@pytest.fixture(params=["sqlite", "postgresql"])
def store_url(request, tmp_path):
    return _store_url(request, tmp_path)


def test_a_second_identical_run_waits_for_the_first_and_reuses_its_outputs(tmp_path, store_url):
    root = tmp_path / "root"
    env = {"ROOT": str(root), "SLEEP": "3", "BEAM_ML_METADATA_URL": store_url}
    first = start(NUMBERS, **env)
    wait_until((root / "total-started").exists, "the first run is in Total", [first])
    second = start(NUMBERS, **env)
    with MetadataStore(store_url) as store:
        wait_until(lambda: len(store.list_runs()) == 2, "the second run started", [first, second])
    outputs = [p.communicate(timeout=120) for p in (first, second)]
    assert [p.returncode for p in (first, second)] == [0, 0], outputs
    assert "(3 ran, 0 from cache)" in outputs[0][0]
    assert "(0 ran, 3 from cache)" in outputs[1][0]  # Total too: it waited rather than computing it again
    with MetadataStore(store_url) as store:
        assert executions_by_component(store)["Total"] == ["CACHED", "COMPLETE"]
        assert [r.state for r in store.list_runs()] == ["COMPLETE", "COMPLETE"]
        assert store.integrity_check() == []


def test_a_waiting_run_takes_over_when_the_run_it_waits_for_dies(tmp_path, store_url):
    root = tmp_path / "root"
    env = {"ROOT": str(root), "SLEEP": "60", "BEAM_ML_METADATA_URL": store_url}
    first = start(NUMBERS, **env)
    wait_until((root / "total-started").exists, "the first run is in Total", [first])
    (root / "total-started").unlink()
    second = start(NUMBERS, **env)
    with MetadataStore(store_url) as store:
        wait_until(lambda: len(store.list_runs()) == 2, "the second run started", [first, second])
        time.sleep(2)  # the second run is now waiting on the first one's Total
        assert second.poll() is None and not (root / "total-started").exists()
        first.send_signal(signal.SIGKILL)
        first.communicate()
        wait_until((root / "total-started").exists, "the second run took Total over", [second])
        second.send_signal(signal.SIGTERM)  # no need to sleep out the minute
        second.communicate(timeout=60)
        states = executions_by_component(store)
    assert states["Total"] == ["ABANDONED", "CANCELLED"], states


@pytest.mark.slow
def test_two_identical_penguin_runs_together_train_once_and_push_once(tmp_path):
    """`make demo` twice at the same time on one root: one training, one push; and a quiet console."""
    root = tmp_path / "penguin"
    procs = [start(PENGUIN, "--pipeline-root", str(root), BEAM_ML_PENGUIN_TUNER="0") for _ in range(2)]
    outputs = [p.communicate(timeout=900) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err[-3000:] for _, err in outputs]
    with MetadataStore(sqlite_url_for_root(str(root))) as store:
        states = executions_by_component(store)
        for component in ("ExampleGen", "Transform", "Trainer", "Evaluator", "Pusher"):
            assert states[component] == ["CACHED", "COMPLETE"], (component, states)
        assert store.integrity_check() == []
    versions = sorted(p.name for p in (root / "serving_model").iterdir())
    assert len(versions) == 1, versions
    pushed = {re.search(r"pushed version (\d+)", out).group(1) for out, _ in outputs}
    assert pushed == set(versions)  # both runs report the one push

    for _, err in outputs:  # TensorFlow, absl and Keras talk to the log files, not to the console
        for noise in ("tensorflow", "absl", "I0000", "oneDNN", "UserWarning", "ran out of data"):
            assert noise not in err, err
