"""The penguin pipeline under each orchestrator: local ``beam-ml run``, Airflow, kfp.local; first and cached.

    python -m benchmarks.orchestrators [--rounds 2] [--only local,airflow,kfp]

Each round takes fresh roots and runs, in this order: ``beam-ml run`` twice
(first, then fully cached); the pipeline exported with ``beam-ml export
airflow`` run twice with ``airflow dags test`` in a fresh Airflow home; the
pipeline exported with ``beam-ml export kubeflow --allow-local`` run twice
with kfp's local runner (``SubprocessRunner(use_venv=False)``: one process per
task, as a pod would run it). Airflow is installed on first use
(``beam_ml.testing.airflow``). Prints each wall time (the whole command:
imports, the orchestrator's own start) and, for Airflow, the DAG run's
duration as Airflow recorded it.
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
ORCHESTRATORS = ("local", "airflow", "kfp")
# Runs a compiled pipeline YAML with kfp's local runner: argv = YAML, kfp's own output directory.
KFP_LOCAL = """
import sys
from kfp import local
from kfp.components import load_component_from_file

local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=sys.argv[2])
load_component_from_file(sys.argv[1])()
"""


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
    parser = argparse.ArgumentParser(prog="python -m benchmarks.orchestrators", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default=",".join(ORCHESTRATORS), help="comma-separated: local, airflow, kfp")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    if only - set(ORCHESTRATORS):
        parser.error(f"--only takes {', '.join(ORCHESTRATORS)}")
    os.environ["BEAM_ML_PENGUIN_TUNER"] = "0"  # both ways run the same pipeline; Airflow's tasks inherit it
    cli = [sys.executable, "-m", "beam_ml.run"]
    with tempfile.TemporaryDirectory(prefix="beam-ml-bench-airflow-") as work:
        for round_ in range(1, args.rounds + 1):
            base = Path(work) / str(round_)
            local, dags = base / "local", base / "dags"
            for what in ("first", "cached") if "local" in only else ():
                took = _timed([*cli, "run", PIPELINE, "--pipeline-root", str(local)], cwd=REPO)
                print(f"round {round_}: local run         {what:6} {took:7.1f} s", flush=True)
            if "kfp" in only:
                pipeline_yaml = base / "penguin.yaml"
                _timed([*cli, "export", "kubeflow", PIPELINE, "--out", str(pipeline_yaml), "--image", "beam-ml:bench",
                        "--pipeline-root", str(base / "kfp"), "--allow-local"], cwd=REPO)  # fmt: skip
                for what in ("first", "cached"):
                    took = _timed([sys.executable, "-c", KFP_LOCAL, str(pipeline_yaml), str(base / "kfp-outputs")], cwd=REPO)
                    print(f"round {round_}: kfp.local         {what:6} {took:7.1f} s", flush=True)
            if "airflow" not in only:
                continue
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
