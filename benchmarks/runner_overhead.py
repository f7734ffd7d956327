"""The runner's own overhead: wall time of a fully cached rerun, interpreter start included.

    python -m benchmarks.runner_overhead [--repeat 5]

Runs the five-component test pipeline (tests/pipelines/numbers.py, LONG=1)
once to fill the cache, then times ``python -m beam_ml.run run`` on it as a
fresh process, and reports median, min and max, and whether TensorFlow or
Beam were imported (neither may be: a data-only cached rerun must stay fast).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIPELINE = Path(__file__).resolve().parent.parent / "tests" / "pipelines" / "numbers.py"
PROBE = (
    "import sys; from beam_ml.run import main; rc = main(['run', sys.argv[1]]); "
    "print('heavy-imports', [m for m in ('tensorflow', 'apache_beam') if m in sys.modules]); sys.exit(rc)"
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as root:
        env = {**os.environ, "ROOT": root, "LONG": "1"}
        subprocess.run([sys.executable, "-m", "beam_ml.run", "run", str(PIPELINE)], env=env, check=True, capture_output=True)
        times, last = [], ""
        for _ in range(args.repeat):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-c", PROBE, str(PIPELINE)], env=env, check=True, capture_output=True, text=True)
            times.append(time.perf_counter() - started)
            last = done.stdout
    assert "(0 ran, 5 from cache)" in last, last
    heavy = last.split("heavy-imports", 1)[1].strip()
    print(
        f"cached rerun of a 5-component pipeline, interpreter start included: "
        f"median {statistics.median(times):.2f}s (min {min(times):.2f}s, max {max(times):.2f}s, n={len(times)}); "
        f"heavy imports: {heavy}"
    )


if __name__ == "__main__":
    main()
