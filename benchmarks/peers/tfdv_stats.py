"""Run inside the TFDV 1.16.1 venv: ``python tfdv_stats.py CSV OUTPUT_DIR [PATH]``; prints one JSON line.

PATH is one of TFDV's two documented ways to compute statistics, both on DirectRunner
with TFDV's default ``StatsOptions``:

- ``generate_statistics_from_csv`` (the default): the convenience function
  (``ReadFromText`` → ``DecodeCSV`` → ``GenerateStatistics`` inside).
- ``GenerateStatistics``: the user's own Beam pipeline with the PTransform, as TFDV's
  guide shows it for data in a TFXIO format: tfx_bsl's ``CsvTFXIO`` (header line skipped,
  column names from it, types inferred) ``.BeamSource()`` → ``tfdv.GenerateStatistics()``
  → ``tfdv.WriteStatisticsToTFRecord``.

Each is timed from the call (or the pipeline's construction) to the statistics written
(interpreter start and imports excluded, as for our stages). Imports nothing from beam-ml.
"""

import csv as csv_module
import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import apache_beam as beam
import tensorflow_data_validation as tfdv
from tfx_bsl.tfxio import csv_tfxio

PATHS = ("generate_statistics_from_csv", "GenerateStatistics")


def peak_rss_mib() -> float:
    """VmHWM (this address space's own peak; ru_maxrss can carry a vfork parent's), else ru_maxrss."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def from_csv(csv: str, output: str):
    return tfdv.generate_statistics_from_csv(data_location=csv, output_path=output)


def with_ptransform(csv: str, output: str):
    with open(csv, newline="") as header:
        column_names = next(csv_module.reader(header))
    source = csv_tfxio.CsvTFXIO(file_pattern=csv, column_names=column_names, skip_header_lines=1)
    with beam.Pipeline() as pipeline:
        _ = (
            pipeline
            | "ReadData" >> source.BeamSource()
            | "GenerateStatistics" >> tfdv.GenerateStatistics()
            | "WriteStatsOutput" >> tfdv.WriteStatisticsToTFRecord(output)
        )
    return tfdv.load_statistics(output)


def main() -> None:
    csv, out = sys.argv[1], sys.argv[2]
    path = sys.argv[3] if len(sys.argv) > 3 else PATHS[0]
    if path not in PATHS:
        sys.exit(f"unknown path {path!r}; choose from {PATHS}")
    os.makedirs(out, exist_ok=True)
    output = os.path.join(out, "stats.tfrecord")
    started = time.perf_counter()
    stats = (from_csv if path == PATHS[0] else with_ptransform)(csv, output)
    seconds = time.perf_counter() - started
    print("BENCH-RESULT " + json.dumps({
        "rows": int(stats.datasets[0].num_examples),
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
        "tfdv_version": tfdv.__version__,
        "path": path,
    }), flush=True)
    sys.stderr.flush()
    os._exit(0)  # skip TensorFlow's interpreter teardown, which can crash after the work is done


if __name__ == "__main__":
    main()
