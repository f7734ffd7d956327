"""Reading the rows of an Examples artifact in a Beam pipeline, for the components that consume one.

Downstream stages read the Parquet files through the same splittable reader
as ExampleGen (runs of row groups per work item), in large batches: the
statistics combiner's cost is mostly per batch, not per row.

This module imports Beam, so components import it inside their function
bodies, never at module level: a pipeline file imports every component
module, and a fully cached rerun must not pay Beam's import (seconds).
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.pvalue import PCollection

from beam_ml.artifacts import Examples
from beam_ml.transforms.ingestion import ReadExamples, ReadOptions

#: Rows per record batch when reading examples back.
BATCH_ROWS = 32768


def read_split(pipeline: beam.Pipeline, examples: Examples, split: str) -> PCollection:
    """The record batches of one split, as a PCollection."""
    options = ReadOptions(format="parquet", batch_rows=BATCH_ROWS)
    return (pipeline | f"Read[{split}]" >> ReadExamples(examples.file_pattern(split), options)).examples
