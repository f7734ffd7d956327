"""The same work on each local engine: DirectRunner, Prism with LOOPBACK workers, Prism with EXTERNAL workers.

    nice -n 10 python -m benchmarks.engines [--copies 100] [--skip-penguin] [--skip-statistics]

One after the other in one session, so the figures share the machine's load:

- the penguin pipeline end to end (``python -m beam_ml.run run examples/penguin/pipeline.py``
  on a fresh pipeline root, a fresh process each; wall time, interpreter start included);
- StatisticsGen on the taxi data replicated ``--copies`` times (``benchmarks.data_stages``:
  ExampleGen first, then StatisticsGen in a process of its own; the StatisticsGen
  component's own time from the metadata store).

Prism is built into the cache first if needed (``beam_ml.runners.prism``), so no
figure includes its build; each Prism figure includes starting Prism itself (about a
second). EXTERNAL runs against a worker pool (``beam_ml.runners.worker_pool``)
started before the clock; each Beam job then starts its own SDK worker processes,
which import Beam (and TensorFlow for the model stages) every time.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.data import SHARED_TAXI, prepare, write_csv_copies

REPO = Path(__file__).resolve().parent.parent
PENGUIN = REPO / "examples" / "penguin" / "pipeline.py"
ENGINES = ("DirectRunner", "Prism LOOPBACK", "Prism EXTERNAL")


def penguin_wall(beam_args: list[str], root: str) -> float:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "beam_ml.run", "run", str(PENGUIN), "--pipeline-root", root, "--", *beam_args],
        capture_output=True, text=True, check=False, env={**os.environ, "BEAM_ML_PENGUIN_TUNER": "0"},
    )  # fmt: skip
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"penguin on {beam_args or 'DirectRunner'} failed: {done.stderr[-2000:]}")
    return wall


def statistics_figures(data: Path, root: str, beam_args: list[str]) -> dict:
    figures = {}
    for stage in ("ingestion", "statistics"):
        command = [sys.executable, "-m", "benchmarks.data_stages", "--stage", stage, "--data", str(data),
                   "--root", root, *(f"--beam-arg={a}" for a in beam_args)]  # fmt: skip
        done = subprocess.run(command, check=False, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"{stage} on {beam_args or 'DirectRunner'} failed: {done.stderr[-2000:]}")
        figures[stage] = json.loads(done.stdout.strip().splitlines()[-1])
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100, help="taxi sample copies for the StatisticsGen figure (default 100)")
    parser.add_argument("--skip-penguin", action="store_true")
    parser.add_argument("--skip-statistics", action="store_true")
    args = parser.parse_args()

    from beam_ml.runners.prism import ensure_prism
    from beam_ml.runners.worker_pool import worker_pool

    ensure_prism()
    rows: dict[str, dict] = {engine: {} for engine in ENGINES}
    with tempfile.TemporaryDirectory(prefix="bench-engines-") as work, worker_pool(log_dir=Path(work, "pool")) as pool:
        engine_args = {
            "DirectRunner": [],
            "Prism LOOPBACK": ["--runner", "PrismRunner", "--environment_type", "LOOPBACK"],
            "Prism EXTERNAL": ["--runner", "PrismRunner", *pool.beam_args()],
        }
        if not args.skip_penguin:
            for engine, beam_args in engine_args.items():
                rows[engine]["penguin"] = penguin_wall(beam_args, os.path.join(work, "penguin-" + engine.replace(" ", "-")))
                print(f"penguin on {engine}: {rows[engine]['penguin']:.1f}s wall", flush=True)
        if not args.skip_statistics:
            if SHARED_TAXI.is_file():
                data = Path(work, f"taxi_x{args.copies}.csv")
                count = write_csv_copies(SHARED_TAXI, args.copies, data)
                source = "taxi"
            else:
                made = prepare(Path(work, "data"), args.copies, source="synthetic")
                data, count, source = made.csv, made.rows, "synthetic taxi"
            print(f"{source} x{args.copies}: {count} rows", flush=True)
            for engine, beam_args in engine_args.items():
                figures = statistics_figures(data, os.path.join(work, "stats-" + engine.replace(" ", "-")), beam_args)
                rows[engine]["statistics"] = figures["statistics"]["seconds"]
                rows[engine]["ingestion"] = figures["ingestion"]["seconds"]
                print(f"{source} x{args.copies} on {engine}: ExampleGen {rows[engine]['ingestion']:.1f}s, "
                      f"StatisticsGen {rows[engine]['statistics']:.1f}s "
                      f"({figures['statistics']['rows'] / figures['statistics']['seconds']:,.0f} rows/s)", flush=True)  # fmt: skip
    print(f"\n| engine | penguin pipeline wall (s) | ExampleGen ×{args.copies} (s) | StatisticsGen ×{args.copies} (s) |")
    print("|---|---:|---:|---:|")
    for engine, figures in rows.items():
        cells = [f"{figures[key]:.1f}" if key in figures else "—" for key in ("penguin", "ingestion", "statistics")]
        print(f"| {engine} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
