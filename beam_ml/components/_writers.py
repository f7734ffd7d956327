"""DoFns that write a component pipeline's combined result (one element) to one file.

StatisticsGen writes each split's statistics proto this way and the Evaluator
each model's metrics dict, from inside their Beam pipelines, so the file is
written by the worker that computed the value, on any runner.

This module imports Beam, so components import it inside their function
bodies, never at module level: a pipeline file imports every component
module, and a fully cached rerun must not pay Beam's import (seconds).
"""

from __future__ import annotations

from typing import Any

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_ml.components._model_io import write_json


class WriteProto(beam.DoFn):
    """Writes the protobuf message it gets to ``path``, serialized deterministically."""

    def __init__(self, path: str) -> None:
        self._path = path

    def process(self, message: Any) -> None:
        with FileSystems.create(self._path) as handle:
            handle.write(message.SerializeToString(deterministic=True))


class WriteJson(beam.DoFn):
    """Writes the JSON-able value it gets to ``path`` (NaN and infinities as null, see ``write_json``)."""

    def __init__(self, path: str) -> None:
        self._path = path

    def process(self, value: Any) -> None:
        write_json(self._path, value)
