"""Deliver the penguin data as three spans, one at a time, as new data would arrive.

    python examples/continuous/make_spans.py pipelines/continuous-data --span 1   # writes pipelines/continuous-data/span-1/penguins.csv
    python examples/continuous/make_spans.py pipelines/continuous-data --all      # spans 1, 2 and 3

The 344 rows of the raw penguins table (the palmerpenguins package's CSV, 'NA'
for a missing value) are shuffled with a fixed seed and cut into three spans of
about 115 rows. Spans 1 and 2 are samples of the same population; in span 3
every flipper length is scaled by 1.1 (rounded to whole millimetres, as the
table records them), a shift that ExampleValidator's drift comparator reports
against span 2.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import os
import random
import sys

SPANS = 3
SEED = 0
SHIFTED_SPAN = 3
SHIFTED_FEATURE = "flipper_length_mm"
SHIFT = 1.1


def penguins_csv() -> str:
    """The raw penguins table shipped in the palmerpenguins package (found without importing pandas)."""
    spec = importlib.util.find_spec("palmerpenguins")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError("the continuous example needs the palmerpenguins package (its data): "
                                  "pip install palmerpenguins")
    return os.path.join(spec.submodule_search_locations[0], "data", "penguins.csv")


def span_rows(span: int) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the rows of ``span`` (1..3), span 3 with its shifted measurement."""
    if not 1 <= span <= SPANS:
        raise ValueError(f"span must be 1..{SPANS}, got {span}")
    with open(penguins_csv(), newline="") as handle:
        reader = csv.DictReader(handle)
        header, rows = list(reader.fieldnames or []), list(reader)
    random.Random(SEED).shuffle(rows)
    size = -(-len(rows) // SPANS)
    chosen = rows[(span - 1) * size: span * size]
    if span == SHIFTED_SPAN:
        for row in chosen:
            if row[SHIFTED_FEATURE] not in ("", "NA"):
                row[SHIFTED_FEATURE] = str(round(float(row[SHIFTED_FEATURE]) * SHIFT))
    return header, chosen


def write_span(directory: str, span: int) -> str:
    """Write ``<directory>/span-<span>/penguins.csv``; returns its path."""
    header, rows = span_rows(span)
    target = os.path.join(directory, f"span-{span}")
    os.makedirs(target, exist_ok=True)
    path = os.path.join(target, "penguins.csv")
    with open(path, "w", newline="") as handle:
        writer = csv.DictWriter(handle, header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", help="where the span directories go (the pipeline's data directory)")
    which = parser.add_mutually_exclusive_group(required=True)
    which.add_argument("--span", type=int, choices=range(1, SPANS + 1), help="deliver this span")
    which.add_argument("--all", action="store_true", help="deliver every span")
    args = parser.parse_args(argv)
    for span in range(1, SPANS + 1) if args.all else [args.span]:
        path = write_span(args.directory, span)
        shifted = f" ({SHIFTED_FEATURE} x{SHIFT})" if span == SHIFTED_SPAN else ""
        print(f"span {span}: {len(span_rows(span)[1])} rows -> {path}{shifted}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
