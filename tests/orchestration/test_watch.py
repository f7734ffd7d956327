"""``beam-ml watch``: runs on a schedule or a new span, never two at once, stops between components.

The pipeline is the penguin data stages over span directories
(tests/pipelines/penguin_spans.py); spans are cut from the shared penguin
data. The runs are real ``beam-ml`` runs, in this process (``--once``) or in
watcher processes, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import datetime
import itertools
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from beam_ml.metadata.store import MetadataStore
from beam_ml.run import main
from beam_ml.watch import InputEvents, ScheduleError, parse_cron, parse_every

REPO = Path(__file__).resolve().parents[2]
PIPELINE = str(REPO / "tests" / "pipelines" / "penguin_spans.py")
NAME = "penguin_spans"


def deliver(data: Path, shared_data: Path, span: int) -> None:
    """Span ``span`` (1, 2, 3): its third of the penguin rows, in ``data/span-<span>/penguins.csv``."""
    header, *rows = (shared_data / "penguin" / "penguins_processed.csv").read_text().splitlines()
    third = len(rows) // 3
    directory = data / f"span-{span}"
    directory.mkdir(parents=True)
    (directory / "penguins.csv").write_text("\n".join([header, *rows[(span - 1) * third : span * third]]) + "\n")


def watch(capsys, *args: str) -> tuple[int, str, str]:
    status = main(["watch", PIPELINE, *args])
    out, err = capsys.readouterr()
    return status, out, err


def start_watcher(env: dict[str, str], *args: str) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if k not in ("BEAM_ML_METADATA_URL", "SPAN_DATA", "ROOT")}
    return subprocess.Popen(
        [sys.executable, "-m", "beam_ml.run", "watch", PIPELINE, *args], env={**clean, **env}, cwd=REPO,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def wait_until(condition, what: str, procs=(), timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        for proc in procs:
            assert proc.poll() is None, (what, proc.communicate())
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.05)


def test_every_and_cron_are_parsed_or_refused_with_the_forms_to_use(tmp_path, capsys):
    assert [parse_every(t).seconds for t in ("30s", "10m", "2h", "1d", "1.5h")] == [30, 600, 7200, 86400, 5400]
    for bad in ("10", "10x", "0s", "-5m", "m"):
        with pytest.raises(ScheduleError, match="give a positive number and a unit: 30s, 10m, 2h or 1d"):
            parse_every(bad)
    noon = datetime.datetime(2026, 3, 4, 12, 7, 30).timestamp()  # local time, as cron reads it
    hourly, quarterly = parse_cron("0 * * * *"), parse_cron("*/15 9-17 * * 1-5")
    assert datetime.datetime.fromtimestamp(hourly.next_after(noon)) == datetime.datetime(2026, 3, 4, 13, 0)
    assert datetime.datetime.fromtimestamp(quarterly.next_after(noon)) == datetime.datetime(2026, 3, 4, 12, 15)
    friday_evening = datetime.datetime(2026, 3, 6, 17, 50).timestamp()
    assert datetime.datetime.fromtimestamp(quarterly.next_after(friday_evening)) == datetime.datetime(2026, 3, 9, 9, 0)
    for bad in ("61 * * * *", "* * *", "every hour", "* * * * * *"):
        with pytest.raises(ScheduleError, match=r"not a cron expression; give five fields.*'0 \* \* \* \*'"):
            parse_cron(bad)
    status, _, err = watch(capsys, "--every", "10x")
    assert status == 2 and "error: --every '10x': give a positive number and a unit" in err
    status, _, err = watch(capsys, "--cron", "61 * * * *")
    assert status == 2 and "error: --cron '61 * * * *': not a cron expression" in err
    status, _, err = watch(capsys)
    assert status == 2 and "say when to run: --every INTERVAL, --cron EXPR and/or --on-new-span" in err
    with pytest.raises(SystemExit):
        main(["watch", PIPELINE, "--every", "1m", "--cron", "0 * * * *"])
    assert "not allowed with argument --every" in capsys.readouterr().err
    assert main(["watch", str(REPO / "tests" / "pipelines" / "numbers.py"), "--on-new-span", "--once",
                 "--pipeline-root", str(tmp_path)]) == 2
    assert "--on-new-span: pipeline numbers has no component with input files (input_path) to watch" in capsys.readouterr().err


def test_once_runs_for_a_new_span_only_and_retries_a_failed_run(tmp_path, shared_data, capsys, monkeypatch):
    data, root = tmp_path / "data", tmp_path / "root"
    monkeypatch.setenv("SPAN_DATA", str(data))
    monkeypatch.setenv("ROOT", str(root))
    monkeypatch.delenv("BEAM_ML_METADATA_URL", raising=False)
    deliver(data, shared_data, 1)

    status, out, _ = watch(capsys, "--once", "--on-new-span")
    assert status == 0 and "new input data: ExampleGen: no complete run has read its input yet" in out
    assert f"run 1 of {NAME}: COMPLETE" in out and "ExampleGen.examples: span 1:" in out

    # Each --once is a new process's look: what was read comes from the store, not from memory.
    status, out, _ = watch(capsys, "--once", "--on-new-span")
    assert status == 0 and f"nothing new: {NAME}'s inputs are what its last complete run read" in out
    assert "run 2" not in out

    deliver(data, shared_data, 2)
    status, out, _ = watch(capsys, "--once", "--on-new-span")
    assert status == 0
    assert f"ExampleGen: span 2 (the last complete run, run 1 of {NAME}, read span 1)" in out
    assert f"run 2 of {NAME}: COMPLETE in" in out and "(3 ran, 0 from cache)" in out
    assert "ExampleGen.examples: span 2:" in out

    # Span 3 arrives broken: the run fails and says so; every later look tries it again until it is fixed.
    (data / "span-3").mkdir()
    (data / "span-3" / "penguins.csv").write_text("species,culmen_length_mm\n0,0.25\n1,0.3,0.4,0.5\n")
    for attempt in (3, 4):
        status, out, err = watch(capsys, "--once", "--on-new-span")
        assert status == 1 and f"run {attempt} of {NAME}: FAILED" in out, (out, err)
        assert "FAILED: ExampleGen: " in err and "could not be parsed" in err
    (data / "span-3").rename(tmp_path / "broken-span-3")
    deliver(data, shared_data, 3)
    status, out, _ = watch(capsys, "--once", "--on-new-span")
    assert status == 0 and f"span 3 (the last complete run, run 2 of {NAME}, read span 2)" in out
    assert f"run 5 of {NAME}: COMPLETE" in out
    status, out, _ = watch(capsys, "--once", "--on-new-span")
    assert status == 0 and "nothing new" in out
    with MetadataStore(f"sqlite:///{root}/metadata.sqlite") as store:
        runs = store.list_runs(NAME)
        assert [r.state for r in reversed(runs)] == ["COMPLETE", "COMPLETE", "FAILED", "FAILED", "COMPLETE"]
        assert store.pipeline_lock_holder(NAME) is None  # every look gave the lock back


def test_two_watchers_never_run_one_pipeline_at_once(tmp_path, shared_data, store_url):
    data = tmp_path / "data"
    deliver(data, shared_data, 1)
    env = {"SPAN_DATA": str(data), "ROOT": str(tmp_path / "root"), "BEAM_ML_METADATA_URL": store_url}
    # No --on-new-span: every look runs (from cache once the first run is done), so the two keep contending.
    watchers = [start_watcher(env, "--every", "1s") for _ in range(2)]
    try:
        with MetadataStore(store_url) as store:
            wait_until(lambda: len(store.list_runs(NAME, state="COMPLETE")) >= 4, "four runs completed", watchers)
    finally:
        for watcher in watchers:
            watcher.send_signal(signal.SIGTERM)
    outputs = [w.communicate(timeout=120) for w in watchers]
    for watcher, (out, err) in zip(watchers, outputs, strict=True):
        # 0: stopped between looks; 143: its run was stopped after the current component.
        assert watcher.returncode in (0, 143), (out, err)
    with MetadataStore(store_url) as store:
        runs = sorted(store.list_runs(NAME), key=lambda r: r.created_at)
        assert store.pipeline_lock_holder(NAME) is None
    assert all(r.ended_at is not None for r in runs)
    for before, after in itertools.pairwise(runs):
        assert before.ended_at <= after.created_at, f"{before.label} and {after.label} overlap"
    assert sum(r.state == "COMPLETE" for r in runs) >= 4
    said = "".join(out for out, _ in outputs)
    assert re.search(rf"skipped: pid \d+ on \S+ holds the run lock of {NAME} \(since", said), said


def test_sigterm_stops_the_run_after_the_current_component(tmp_path, shared_data):
    data, root = tmp_path / "data", tmp_path / "root"
    deliver(data, shared_data, 1)
    watcher = start_watcher({"SPAN_DATA": str(data), "ROOT": str(root)}, "--on-new-span")
    url = f"sqlite:///{root}/metadata.sqlite"
    wait_until((root / "metadata.sqlite").exists, "the store exists", [watcher])
    with MetadataStore(url) as store:
        def running() -> bool:
            return any(e.state == "RUNNING" for r in store.list_runs(NAME) for e in store.executions_of_run(r.id))

        wait_until(running, "a component is running", [watcher])
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=120)
        assert watcher.returncode == 143, (out, err)
        assert "SIGTERM: stopping after the current component; SIGTERM again stops now" in out
        assert f"run 1 of {NAME}: CANCELLED" in out and "FAILED: beam-ml: cancelled by SIGTERM" in err
        [run] = store.list_runs(NAME)
        executions = store.executions_of_run(run.id)
        assert run.state == "CANCELLED"
        # The component running when the signal came finished; none started after it.
        assert 1 <= len(executions) < 3 and [e.state for e in executions] == ["COMPLETE"] * len(executions)
        assert store.pipeline_lock_holder(NAME) is None


def test_file_events_wake_the_watcher_for_input_files_only(tmp_path):
    data = tmp_path / "data"
    (data / "span-1").mkdir(parents=True)
    root = data / "root"  # a pipeline root among the inputs: its writes must not wake the watcher
    pattern = str(data / "span-{SPAN}" / "*.csv")
    with InputEvents([pattern, "s3://bucket/span-{SPAN}/*.csv"], 0.0, [str(root)], print) as events:
        assert events.directories == [str(data)]  # an object store has no events: it is polled
        assert events.relevant(str(data / "span-2" / "penguins.csv"), False)
        assert events.relevant(str(data / "span-2"), True)  # a span directory moved in whole
        assert not events.relevant(str(data / "span-2" / "notes.txt"), False)
        assert not events.relevant(str(root / "metadata.sqlite"), False)
        assert not events.relevant(str(root / "ExampleGen"), True)
        (data / "span-2").mkdir()
        (data / "span-2" / "penguins.csv").write_text("species\n0\n")
        wait_until(events.settled, "the new span's files woke the watcher", timeout=30)
        assert not events.settled()  # once per burst


def test_spans_on_an_object_store_are_polled(tmp_path, shared_data, s3_server, s3_bucket, capsys, monkeypatch):
    from beam_ml.run import load_pipeline
    from beam_ml.watch import new_inputs

    local = tmp_path / "spans"
    for span in (1, 2):
        deliver(local, shared_data, span)
    client, bucket = s3_server.client(), s3_bucket[len("s3://"):]

    def upload(span: int) -> None:
        client.put_object(Bucket=bucket, Key=f"in/span-{span}/penguins.csv",
                          Body=(local / f"span-{span}" / "penguins.csv").read_bytes())

    monkeypatch.setenv("SPAN_DATA", f"{s3_bucket}/in")
    monkeypatch.setenv("ROOT", str(tmp_path / "root"))
    monkeypatch.delenv("BEAM_ML_METADATA_URL", raising=False)
    upload(1)
    status, out, err = watch(capsys, "--once", "--on-new-span", "--", *s3_server.beam_flags())
    assert status == 0 and f"run 1 of {NAME}: COMPLETE" in out and "span 1:" in out, (out, err)
    status, out, _ = watch(capsys, "--once", "--on-new-span", "--", *s3_server.beam_flags())
    assert status == 0 and "nothing new" in out
    upload(2)  # the next poll lists the bucket and sees it
    with MetadataStore(f"sqlite:///{tmp_path}/root/metadata.sqlite") as store:
        assert new_inputs(load_pipeline(PIPELINE), store) == [
            f"ExampleGen: span 2 (the last complete run, run 1 of {NAME}, read span 1)"
        ]
