"""Reading and counting the rows of an Examples artifact, for the components that consume one.

Downstream stages read the Parquet files through the same splittable reader
as ExampleGen (runs of row groups per work item), in large batches: the
statistics combiner's cost is mostly per batch, not per row.

This module imports Beam, so components import it inside their function
bodies, never at module level: a pipeline file imports every component
module, and a fully cached rerun must not pay Beam's import (seconds).
"""

from __future__ import annotations

import apache_beam as beam
import pyarrow.parquet as pq
from apache_beam.io.filesystems import FileSystems
from apache_beam.pvalue import PCollection

from beam_ml import fs
from beam_ml.artifacts import Examples
from beam_ml.transforms.ingestion import ReadExamples, ReadOptions

#: Rows per record batch when reading examples back.
BATCH_ROWS = 32768


def split_pattern(examples: Examples, split: str) -> str:
    return fs.join(examples.split_uri(split), "*.parquet")


def read_split(pipeline: beam.Pipeline, examples: Examples, split: str) -> PCollection:
    """The record batches of one split, as a PCollection."""
    options = ReadOptions(format="parquet", batch_rows=BATCH_ROWS)
    return (pipeline | f"Read[{split}]" >> ReadExamples(split_pattern(examples, split), options)).examples


def count_rows(examples_uri: str, split: str) -> int:
    """Rows in a split, from the Parquet footers: what was really written, whatever a runner reported."""
    pattern = fs.join(examples_uri, f"Split-{split}", "*.parquet")
    total = 0
    for result in FileSystems.match([pattern]):
        for metadata in result.metadata_list:
            with FileSystems.open(metadata.path) as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
    return total
