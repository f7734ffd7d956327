"""Throughput and peak memory of ingestion (CSV → Parquet Examples) and statistics on DirectRunner.

    python -m benchmarks.data_stages [--copies 100] [--beam-arg=--direct_num_workers=2 ...]

Builds the taxi data replicated ``--copies`` times (from ../shared/data; the
synthetic generator of the benchmark suite replaces it where that is absent),
then runs ExampleGen alone in one process and StatisticsGen (ExampleGen served
from cache) in a second, so each process's peak RSS is its stage's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.data import SHARED_TAXI, write_csv_copies


def run_stage(data: str, root: str, stage: str, beam_args: list[str]) -> None:
    """In this process: run ExampleGen (and StatisticsGen for stage 'statistics'); print JSON."""
    from beam_ml import Pipeline
    from beam_ml.components.example_gen import ExampleGen
    from beam_ml.components.statistics_gen import StatisticsGen
    from beam_ml.orchestration.runner import LocalDagRunner

    gen = ExampleGen(input_path=data)
    nodes = [gen] if stage == "ingestion" else [gen, StatisticsGen(examples=gen.outputs.examples)]
    result = LocalDagRunner(beam_args=beam_args).run(Pipeline("bench", root, nodes))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    node = result.nodes["ExampleGen" if stage == "ingestion" else "StatisticsGen"]
    assert node.state == "COMPLETE", f"{node.node_id} was {node.state}"
    rows = sum(result.outputs("ExampleGen")["examples"].properties["split_rows"].values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"stage": stage, "rows": rows, "seconds": node.elapsed, "peak_rss_mib": peak_mib}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--beam-arg", action="append", default=[], help="a Beam flag, e.g. --beam-arg=--direct_num_workers=2")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        run_stage(args.data, args.root, args.stage, args.beam_arg)
        return
    with tempfile.TemporaryDirectory() as work:
        started = time.perf_counter()
        if SHARED_TAXI.is_file():
            data = Path(work, f"taxi_x{args.copies}.csv")
            rows = write_csv_copies(SHARED_TAXI, args.copies, data)
        else:
            from benchmarks.data import prepare

            made = prepare(Path(work, "data"), args.copies, source="synthetic")
            data, rows = made.csv, made.rows
        print(f"{'taxi' if SHARED_TAXI.is_file() else 'synthetic'} x{args.copies}: {rows} rows, {data.stat().st_size / 2**20:.0f} MiB (made in {time.perf_counter() - started:.1f}s)")
        for stage in ("ingestion", "statistics"):
            command = [sys.executable, "-m", "benchmarks.data_stages", "--stage", stage, "--data", str(data),
                       "--root", os.path.join(work, "root"), *(f"--beam-arg={a}" for a in args.beam_arg)]
            done = subprocess.run(command, check=True, capture_output=True, text=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"{stage:<10} {figures['rows']} rows in {figures['seconds']:.1f}s = "
                f"{figures['rows'] / figures['seconds']:,.0f} rows/s, peak RSS {figures['peak_rss_mib']:,.0f} MiB"
            )


if __name__ == "__main__":
    main()
