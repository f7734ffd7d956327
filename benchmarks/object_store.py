"""The pipeline root on S3: the launcher's peak memory, and the penguin pipeline's wall time against a local root.

    python -m benchmarks.object_store [--copies 100] [--beam-arg=--direct_num_workers=2 ...]
    python -m benchmarks.object_store --penguin [--rounds 2]

Builds the taxi data replicated ``--copies`` times (as ``benchmarks.data_stages``
does), starts a local S3 server (SeaweedFS, ``beam_ml.testing.seaweedfs``) and
runs ExampleGen → StatisticsGen with ``--pipeline-root s3://…`` in a fresh
process, whose peak RSS is the launcher's: the components' Beam work plus what
the runner adds around them (cache checks, publishing, fingerprints). Since
fingerprints come from the sizes and checksums the store recorded, the
runner's share must not grow with the data.

``--penguin`` runs the whole penguin pipeline (without the Tuner) through the
CLI, alternating a fresh local root and a fresh ``s3://`` root on the same
server, ``--rounds`` times each, and prints each run's wall time (the CLI
process, imports included) and the time the runner reports.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.data import SHARED_TAXI, write_csv_copies


def run_pipeline(data: str, root: str, store: str, beam_args: list[str]) -> None:
    """In this process: ExampleGen → StatisticsGen on ``root``; print JSON figures."""
    from beam_ml import Pipeline
    from beam_ml.components.example_gen import ExampleGen
    from beam_ml.components.statistics_gen import StatisticsGen
    from beam_ml.orchestration.runner import LocalDagRunner

    gen = ExampleGen(input_path=data)
    nodes = [gen, StatisticsGen(examples=gen.outputs.examples)]
    started = time.perf_counter()
    result = LocalDagRunner(beam_args=beam_args, metadata_url=store).run(Pipeline("bench", root, nodes))
    assert result.state == "COMPLETE", result.failed and result.failed.error
    rows = sum(result.outputs("ExampleGen")["examples"].properties["split_rows"].values())
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": rows, "seconds": time.perf_counter() - started, "peak_rss_mib": peak_mib}))


def time_penguin(server, rounds: int, work: str) -> None:
    """Alternate local and S3 roots, a fresh one each run; print the wall time of each."""
    pipeline = str(Path(__file__).resolve().parents[1] / "examples" / "penguin" / "pipeline.py")
    bucket = server.create_bucket("penguin")
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "BEAM_ML_PENGUIN_TUNER": "0"}
    times: dict[str, list[float]] = {"local": [], "s3": []}
    for round_ in range(1, rounds + 1):
        for where in ("local", "s3"):
            if where == "local":
                args = ["--pipeline-root", f"{work}/local-{round_}"]
            else:
                store = f"sqlite:///{work}/s3-{round_}/metadata.sqlite"
                args = ["--pipeline-root", f"{bucket}/root-{round_}", "--metadata-url", store, "--", *server.beam_flags()]
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "beam_ml.run", "run", pipeline, *args],
                                  check=False, capture_output=True, text=True, env=env)  # fmt: skip
            seconds = time.perf_counter() - started
            if done.returncode != 0:
                sys.exit(f"the penguin pipeline failed on {where}:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
            reported = re.search(r"COMPLETE in ([0-9.]+)s \((\d+) ran", done.stdout)
            times[where].append(seconds)
            print(f"round {round_} {where:>5}: {seconds:5.1f}s wall ({reported.group(1)}s in the runner, {reported.group(2)} ran)", flush=True)
    for where, values in times.items():
        print(f"{where:>5}: mean {sum(values) / len(values):.1f}s over {len(values)} runs")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--copies", type=int, default=100)
    parser.add_argument("--beam-arg", action="append", default=[], help="a Beam flag, e.g. --beam-arg=--direct_num_workers=2")
    parser.add_argument("--penguin", action="store_true", help="time the penguin pipeline, local root vs S3 root")
    parser.add_argument("--rounds", type=int, default=2, help="with --penguin: runs on each root, alternating")
    parser.add_argument("--run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    parser.add_argument("--store", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:
        run_pipeline(args.data, args.root, args.store, args.beam_arg)
        return
    from beam_ml.testing import seaweedfs

    server = seaweedfs.start()
    try:
        with tempfile.TemporaryDirectory() as work:
            if args.penguin:
                time_penguin(server, args.rounds, work)
                return
            if SHARED_TAXI.is_file():
                data = Path(work, f"taxi_x{args.copies}.csv")
                rows = write_csv_copies(SHARED_TAXI, args.copies, data)
            else:
                from benchmarks.data import prepare

                made = prepare(Path(work, "data"), args.copies, source="synthetic")
                data, rows = made.csv, made.rows
            print(f"{'taxi' if SHARED_TAXI.is_file() else 'synthetic'} x{args.copies}: {rows} rows, {data.stat().st_size / 2**20:.0f} MiB")
            root = server.create_bucket("bench") + "/root"
            command = [sys.executable, "-m", "benchmarks.object_store", "--run", "--data", str(data), "--root", root,
                       "--store", f"sqlite:///{work}/metadata.sqlite",
                       *(f"--beam-arg={a}" for a in [*server.beam_flags(), *args.beam_arg])]  # fmt: skip
            done = subprocess.run(command, check=False, capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
            if done.returncode != 0:
                sys.exit(f"the pipeline failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            print(
                f"ExampleGen → StatisticsGen on S3: {figures['rows']} rows in {figures['seconds']:.1f}s, "
                f"launcher peak RSS {figures['peak_rss_mib']:,.0f} MiB"
            )
    finally:
        server.stop()


if __name__ == "__main__":
    main()
