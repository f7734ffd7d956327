"""The penguin pipeline under Airflow (``airflow dags test``) against a local ``beam-ml run``: first and cached.

    python -m benchmarks.airflow_penguin [--rounds 2]

Each round takes fresh roots and runs, in this order: ``beam-ml run`` twice
(first, then fully cached), then the pipeline exported with ``beam-ml export
airflow`` run twice with ``airflow dags test`` in a fresh Airflow home (first,
then cached). Airflow is installed on first use (``beam_ml.testing.airflow``).
Prints each wall time (the whole command: imports, Airflow's own start) and,
for Airflow, the DAG run's duration as Airflow recorded it.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from beam_ml.testing.airflow import airflow_home

REPO = Path(__file__).resolve().parents[1]
PIPELINE = str(REPO / "examples" / "penguin" / "pipeline.py")


def _timed(command: list[str], **kwargs) -> float:
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, check=False, **kwargs)
    took = time.monotonic() - started
    if done.returncode != 0:
        raise SystemExit(f"`{' '.join(command)}` failed (exit {done.returncode}): {(done.stdout + done.stderr)[-2000:]}")
    return took


def _dag_run_seconds(home: Path) -> float:
    """The newest DAG run's duration as Airflow recorded it (its start to its end)."""
    with sqlite3.connect(home / "airflow.db") as db:
        (seconds,) = db.execute(
            "SELECT (julianday(end_date) - julianday(start_date)) * 86400 FROM dag_run ORDER BY start_date DESC LIMIT 1"
        ).fetchone()
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.airflow_penguin", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args(argv)
    os.environ["BEAM_ML_PENGUIN_TUNER"] = "0"  # both ways run the same pipeline; Airflow's tasks inherit it
    cli = [sys.executable, "-m", "beam_ml.run"]
    with tempfile.TemporaryDirectory(prefix="beam-ml-bench-airflow-") as work:
        for round_ in range(1, args.rounds + 1):
            base = Path(work) / str(round_)
            local, dags = base / "local", base / "dags"
            for what in ("first", "cached"):
                took = _timed([*cli, "run", PIPELINE, "--pipeline-root", str(local)], cwd=REPO)
                print(f"round {round_}: local run       {what:6} {took:7.1f} s", flush=True)
            _timed([*cli, "export", "airflow", PIPELINE, "--out", str(dags), "--pipeline-root", str(base / "airflow"),
                    "--retries", "0"], cwd=REPO)  # fmt: skip
            home = airflow_home(dags, home=base / "airflow-home")
            for what in ("first", "cached"):
                started = time.monotonic()
                done = home.run("dags", "test", "penguin")
                took = time.monotonic() - started
                if done.returncode != 0:
                    raise SystemExit(f"airflow dags test failed: {(done.stdout + done.stderr)[-2000:]}")
                print(f"round {round_}: airflow dags test {what:6} {took:7.1f} s (DAG run {_dag_run_seconds(home.home):.1f} s)",
                      flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
