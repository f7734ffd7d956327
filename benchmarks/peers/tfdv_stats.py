"""Run inside the TFDV 1.16.1 venv: ``python tfdv_stats.py CSV OUTPUT_DIR``; prints one JSON line.

``tfdv.generate_statistics_from_csv`` on DirectRunner (TFDV's defaults), timed from the
call to its return (interpreter start and imports excluded, as for our stages).
Imports nothing from beam-ml.
"""

import json
import os
import resource
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow_data_validation as tfdv


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


def main() -> None:
    csv, out = sys.argv[1], sys.argv[2]
    os.makedirs(out, exist_ok=True)
    started = time.perf_counter()
    stats = tfdv.generate_statistics_from_csv(data_location=csv, output_path=os.path.join(out, "stats.tfrecord"))
    seconds = time.perf_counter() - started
    print("BENCH-RESULT " + json.dumps({
        "rows": int(stats.datasets[0].num_examples),
        "seconds": seconds,
        "peak_rss_mib": peak_rss_mib(),
        "tfdv_version": tfdv.__version__,
    }), flush=True)
    sys.stderr.flush()
    os._exit(0)  # skip TensorFlow's interpreter teardown, which can crash after the work is done


if __name__ == "__main__":
    main()
