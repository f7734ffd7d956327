"""Wall time of each component of an example pipeline: first run, then the fully cached rerun.

    python -m benchmarks.pipeline_times examples/penguin/pipeline.py
    python -m benchmarks.pipeline_times examples/chicago_taxi/pipeline.py

Each run is a fresh ``python -m beam_ml.run run`` process on a new pipeline
root; the per-component times come from the metadata store's execution records.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline_file")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        walls = []
        for _ in range(2):
            started = time.perf_counter()
            subprocess.run([sys.executable, "-m", "beam_ml.run", "run", args.pipeline_file, "--pipeline-root", root],
                           check=True, capture_output=True)
            walls.append(time.perf_counter() - started)
        with MetadataStore(sqlite_url_for_root(root)) as store:
            first, cached = sorted(store.list_runs(), key=lambda r: r.id)
            rows = {}
            for label, run in (("first", first), ("cached", cached)):
                for execution in store.executions_of_run(run.id):
                    rows.setdefault(execution.component_id, {})[label] = (execution.state, execution.duration)
    print("| component | first run (s) | cached rerun (s) |\n|---|---:|---:|")
    for component, runs in rows.items():
        cells = [f"{runs[k][1]:.2f}" + ("" if runs[k][0] in ("COMPLETE",) else f" ({runs[k][0].lower()})") for k in ("first", "cached")]
        print(f"| {component} | {cells[0]} | {cells[1]} |")
    print(f"| whole run, process wall time | {walls[0]:.1f} | {walls[1]:.1f} |")


if __name__ == "__main__":
    main()
