"""Artifact types: what flows between components, and where it lives on disk.

An artifact is a directory (``uri``) plus a small JSON-serialisable
``properties`` dict. The type says how the directory is laid out; the layout
follows TFX wherever TFX's files are a standard of the ecosystem, so TFX and
TFDV users can read our outputs (see ARCHITECTURE.md, "Components and
artifacts").

New artifact types are plain subclasses; the class name is the type name
recorded in the metadata store, and ``artifact_type(name)`` finds the class
again when the CLI shows an artifact.

Each type is the one place that knows its layout and how to read and write
it (``Split-<name>/``, a split's Parquet files, ``FeatureStats.pb``,
``schema.pbtxt``, ``Format-Serving``, ...): components, views and transforms
ask the artifact instead of spelling paths. Every file goes through
``beam_ml.fs`` (Beam's FileSystems for gs://, s3://, ...), so a pipeline root
on object storage works unchanged. This module imports neither Beam nor
TensorFlow at module level; the readers import pyarrow and the
tensorflow_metadata protos only when called.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from beam_ml import fs

if TYPE_CHECKING:
    import pyarrow as pa
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

_REGISTRY: dict[str, type[Artifact]] = {}

#: A split's directory is ``<artifact uri>/Split-<name>`` (TFX's layout).
SPLIT_PREFIX = "Split-"


def split_uri(uri: str, split: str) -> str:
    """The directory of split ``split`` under the artifact directory ``uri``."""
    return fs.join(uri, f"{SPLIT_PREFIX}{split}")


def read_bytes(uri: str) -> bytes:
    with fs.open_read(uri) as handle:
        return handle.read()


def write_bytes(uri: str, data: bytes) -> None:
    """Write one file; on a local disk without importing Beam (a small file needs no Beam)."""
    if fs.is_local(uri):
        import os

        path = fs.local_path(uri)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)
        return
    from apache_beam.io.filesystems import FileSystems

    with FileSystems.create(uri) as handle:
        handle.write(data)


def read_json(uri: str) -> Any:
    return json.loads(read_bytes(uri).decode("utf-8"))


def write_json(uri: str, value: Any, **dumps: Any) -> None:
    write_bytes(uri, json.dumps(value, **dumps).encode("utf-8"))


class Artifact:
    """A typed directory produced by one execution and consumed by others."""

    TYPE_NAME: ClassVar[str] = "Artifact"

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        cls.TYPE_NAME = cls.__name__
        _REGISTRY[cls.TYPE_NAME] = cls

    def __init__(
        self,
        uri: str,
        properties: dict[str, Any] | None = None,
        *,
        id: int | None = None,
        fingerprint: str | None = None,
        state: str | None = None,
    ) -> None:
        self.uri = uri
        self.properties: dict[str, Any] = dict(properties or {})
        self.id = id
        self.fingerprint = fingerprint
        self.state = state

    def __repr__(self) -> str:
        return f"{type(self).__name__}(id={self.id}, uri={self.uri!r}, state={self.state})"

    @classmethod
    def content_fingerprint(cls, uri: str) -> str:
        """The fingerprint recorded when an artifact of this type is published (and checked by ``check``).

        The bytes of every file by default; a type whose writer is not
        byte-for-byte deterministic says here what content counts.
        """
        from beam_ml import fs

        return fs.fingerprint(uri)


_REGISTRY[Artifact.TYPE_NAME] = Artifact


def artifact_type(type_name: str) -> type[Artifact]:
    """The class registered under ``type_name``; plain ``Artifact`` if unknown here."""
    return _REGISTRY.get(type_name, Artifact)


class EmptySplitError(ValueError):
    """A component was given a split with no rows, which it cannot work on."""


class _SplitArtifact(Artifact):
    """An artifact laid out as ``Split-<name>/`` directories, as TFX lays them out."""

    #: The property holding rows per split, written by the producing component.
    ROWS_PROPERTY: ClassVar[str] = ""

    def require_rows(self, splits: str | list[str], component: str, each: bool = True) -> None:
        """Fail naming the split when one of `splits` holds no rows (or, with each=False,
        when all of them are empty: statistics of one empty split are still statistics).

        An empty split otherwise surfaces deep inside a library (TensorFlow's TypeError
        in Transform, a Keras fit that never starts), saying nothing of 0 rows.
        """
        rows = self.properties.get(self.ROWS_PROPERTY) or {}
        names = [splits] if isinstance(splits, str) else list(splits)
        if not each and any(rows.get(split) != 0 for split in names):
            return
        for split in names:
            if rows.get(split) == 0:
                raise EmptySplitError(
                    f"{component}: split {split!r} of {type(self).__name__} {self.uri} has no rows; "
                    "give ExampleGen input with rows for it (it ran with allow_empty=True)")

    def split_uri(self, split: str) -> str:
        return split_uri(self.uri, split)

    @property
    def splits(self) -> list[str]:
        return list(self.properties.get("splits", []))


class _ParquetSplits(_SplitArtifact):
    """Rows laid out as ``Split-<name>/*.parquet``."""

    ROWS_PROPERTY = "split_rows"
    #: The file a writer gives a split that received no rows (an empty table with the columns).
    EMPTY_SPLIT_FILE: ClassVar[str] = "data-00000-of-00001.parquet"

    def file_pattern(self, split: str) -> str:
        """The glob of one split's Parquet files."""
        return fs.join(self.split_uri(split), "*.parquet")

    def files(self, split: str) -> tuple[str, ...]:
        """The Parquet files of one split, sorted by name."""
        return tuple(path for path, _, _ in fs.match(self.file_pattern(split)))

    def count_rows(self, split: str) -> int:
        """Rows in a split, from the Parquet footers: what was really written, whatever a runner reported."""
        import pyarrow.parquet as pq

        total = 0
        for path in self.files(split):
            with fs.open_read(path) as handle:
                total += pq.ParquetFile(handle).metadata.num_rows
        return total

    def arrow_schema(self, split: str) -> pa.Schema:
        """The Arrow schema of one split's Parquet files (the first file's; all share it)."""
        import pyarrow.parquet as pq

        files = self.files(split)
        if not files:
            raise FileNotFoundError(f"no Parquet files in split {split!r} of {self.uri}")
        with fs.open_read(files[0]) as handle:
            return pq.read_schema(handle)

    def head(self, split: str, rows: int) -> pa.Table:
        """The first ``rows`` rows of a split (files in name order), e.g. canary requests."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        if split not in self.splits:
            raise ValueError(f"Examples has no split {split!r}; it has {self.splits}")
        tables: list[pa.Table] = []
        taken = 0
        for path in self.files(split):
            with fs.open_read(path) as handle:
                table = pq.read_table(handle)
            tables.append(table.slice(0, rows - taken))
            taken += tables[-1].num_rows
            if taken >= rows:
                break
        if not tables:
            raise ValueError(f"split {split!r} of {self.uri} has no Parquet files")
        return pa.concat_tables(tables, promote_options="default")

    def fill_empty_splits(self, splits: list[str]) -> pa.Schema | None:
        """Give each of ``splits`` that received no rows one empty Parquet file with the other
        splits' columns, and return those columns (None when no split has a file).

        Readers downstream then see every declared split, with its schema, instead
        of a missing directory (a small input can hash every row into one split).
        """
        import io

        import pyarrow.parquet as pq

        files = {name: self.files(name) for name in splits}
        written = next((paths[0] for paths in files.values() if paths), None)
        if written is None:
            return None
        with fs.open_read(written) as handle:
            schema = pq.read_schema(handle)
        for name, paths in files.items():
            if not paths:
                buffer = io.BytesIO()
                pq.write_table(schema.empty_table(), buffer)
                write_bytes(fs.join(self.split_uri(name), self.EMPTY_SPLIT_FILE), buffer.getvalue())
        return schema


class Examples(_ParquetSplits):
    """Rows of data: ``Split-<name>/*.parquet``, and the rows ExampleGen could not parse in
    ``rejected/rows-*.jsonl``.

    Read from span patterns, each span's rows of a split are files of their own,
    ``Split-<name>/span-<N>-NNNNN-of-NNNNN.parquet`` (``span_files``), and the
    ``span_fingerprints`` property ({span: hex}) says what made them: the same span read
    the same way in another window of spans has the same fingerprint and the same rows.
    """

    REJECTED_DIR: ClassVar[str] = "rejected"

    @staticmethod
    def span_stem(span: int) -> str:
        """The file name stem of one span's files in every split."""
        return f"span-{span}"

    def span_files(self, split: str, span: int) -> tuple[str, ...]:
        """The Parquet files of one span in one split (none when the span has no rows there)."""
        return tuple(path for path, _, _ in fs.match(fs.join(self.split_uri(split), f"{self.span_stem(span)}-*.parquet")))

    @property
    def span_fingerprints(self) -> dict[int, str]:
        """{span: fingerprint of what made its rows}; empty when the Examples were not read as spans."""
        return {int(span): value for span, value in (self.properties.get("span_fingerprints") or {}).items()}

    @property
    def rejected_uri(self) -> str:
        return fs.join(self.uri, self.REJECTED_DIR)

    def rejected_rows(self) -> list[dict[str, Any]]:
        """The rejected rows (path, line, reason, ...) in input order."""
        rows = []
        for path, _, _ in fs.match(fs.join(self.rejected_uri, "rows-*.jsonl")):
            rows.extend(json.loads(line) for line in read_bytes(path).decode("utf-8").splitlines() if line.strip())
        rows.sort(key=lambda r: (r["path"], r["line"] if r["line"] is not None else -1))
        return rows


class Statistics(_SplitArtifact):
    """``Split-<name>/FeatureStats.pb``: a tensorflow_metadata DatasetFeatureStatisticsList."""

    ROWS_PROPERTY = "num_examples"
    FILE_NAME: ClassVar[str] = "FeatureStats.pb"

    def stats_uri(self, split: str) -> str:
        return fs.join(self.split_uri(split), self.FILE_NAME)

    def load(self, split: str) -> statistics_pb2.DatasetFeatureStatisticsList:
        """One split's statistics."""
        from tensorflow_metadata.proto.v0 import statistics_pb2

        return statistics_pb2.DatasetFeatureStatisticsList.FromString(read_bytes(self.stats_uri(split)))


class Schema(Artifact):
    """``schema.pbtxt``: a tensorflow_metadata Schema in text format."""

    FILE_NAME: ClassVar[str] = "schema.pbtxt"

    @property
    def schema_uri(self) -> str:
        return fs.join(self.uri, self.FILE_NAME)

    def load(self) -> schema_pb2.Schema:
        return load_schema_file(self.schema_uri)

    def write(self, schema: schema_pb2.Schema) -> None:
        from google.protobuf import text_format

        write_bytes(self.schema_uri, text_format.MessageToString(schema).encode("utf-8"))


def load_schema_file(uri: str) -> schema_pb2.Schema:
    """A text-format Schema (``schema.pbtxt``) from any file system."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(read_bytes(uri).decode("utf-8"), schema_pb2.Schema())


class Anomalies(_SplitArtifact):
    """``Split-<name>/SchemaDiff.pb``: tensorflow_metadata Anomalies."""

    FILE_NAME: ClassVar[str] = "SchemaDiff.pb"

    def anomalies_uri(self, split: str) -> str:
        return fs.join(self.split_uri(split), self.FILE_NAME)

    def load(self, split: str) -> anomalies_pb2.Anomalies:
        from tensorflow_metadata.proto.v0 import anomalies_pb2

        return anomalies_pb2.Anomalies.FromString(read_bytes(self.anomalies_uri(split)))

    def write(self, split: str, anomalies: anomalies_pb2.Anomalies) -> None:
        write_bytes(self.anomalies_uri(split), anomalies.SerializeToString(deterministic=True))


class TransformGraph(Artifact):
    """A tf.Transform output directory (transform_fn/ and transformed_metadata/)."""

    @classmethod
    def content_fingerprint(cls, uri: str) -> str:
        """Identical for identical inputs although TensorFlow's SavedModel bytes are not (``beam_ml.fingerprints``)."""
        from beam_ml.fingerprints import saved_model_fingerprint

        return saved_model_fingerprint(uri)


class TransformCache(Artifact):
    """tf.Transform's analyzer cache (``tft_beam.analyzer_cache``): a directory per dataset key
    (one span of the analyzed split) holding the accumulators of that dataset's analyzers and
    tf.Transform's ``MANIFEST``, and ``dataset_keys.json``, {dataset key: [cache entry names]}.

    An artifact of its own rather than a directory of the TransformGraph: the graph is
    identical whether or not a cache was used (so the Trainer downstream stays cached),
    while the cache holds what each run computed or carried forward. Its fingerprint is
    the index alone: a cache entry's name is tf.Transform's key of the analyzer graph and
    the dataset's key names the data, so two caches with one index hold the same analyses
    however their files were written, and are one input to the Transform that takes them.
    """

    INDEX_FILE: ClassVar[str] = "dataset_keys.json"

    @classmethod
    def content_fingerprint(cls, uri: str) -> str:
        return fs.fingerprint(fs.join(uri, cls.INDEX_FILE))

    def index(self) -> dict[str, list[str]]:
        """{dataset key: cache entry names}; {} for an empty cache."""
        path = fs.join(self.uri, self.INDEX_FILE)
        return read_json(path) if fs.exists(path) else {}

    def write_index(self, index: dict[str, list[str]]) -> None:
        write_json(fs.join(self.uri, self.INDEX_FILE), {key: sorted(entries) for key, entries in sorted(index.items())},
                   indent=1)


class Model(Artifact):
    """A SavedModel whose serving signature takes raw features, in ``Format-Serving/`` (TFX's layout)."""

    SERVING_DIR: ClassVar[str] = "Format-Serving"

    @property
    def serving_uri(self) -> str:
        """The SavedModel directory: ``<uri>/Format-Serving``, or the uri itself for a model put there directly."""
        return serving_uri(self.uri)


def serving_uri(model_uri: str) -> str:
    """The SavedModel directory of the Model artifact at ``model_uri`` (see ``Model.serving_uri``)."""
    serving = fs.join(model_uri, Model.SERVING_DIR)
    return serving if fs.exists(serving) else model_uri


class ModelRun(Artifact):
    """Training logs (TensorBoard) of the run that produced a Model."""


class HyperParameters(Artifact):
    """The best hyperparameters a Tuner found: ``hyperparameters.json`` ({name: value}),
    ``hyperparameters_config.json`` (keras-tuner's config of them) and ``trials.json``."""

    VALUES_FILE: ClassVar[str] = "hyperparameters.json"
    CONFIG_FILE: ClassVar[str] = "hyperparameters_config.json"
    TRIALS_FILE: ClassVar[str] = "trials.json"

    def values(self) -> dict[str, Any]:
        """The JSON object in ``hyperparameters.json``."""
        values = read_json(fs.join(self.uri, self.VALUES_FILE))
        if not isinstance(values, dict):
            raise ValueError(f"{self.VALUES_FILE} in {self.uri} must hold a JSON object")
        return values

    def config(self) -> dict[str, Any] | None:
        """keras-tuner's config of the values, or None when there is none (not a Tuner's)."""
        path = fs.join(self.uri, self.CONFIG_FILE)
        return read_json(path) if fs.exists(path) else None

    def write(self, values: dict[str, Any], config: dict[str, Any], trials: list[dict[str, Any]]) -> None:
        write_json(fs.join(self.uri, self.VALUES_FILE), values, indent=2, sort_keys=True)
        write_json(fs.join(self.uri, self.CONFIG_FILE), config, indent=2)
        write_json(fs.join(self.uri, self.TRIALS_FILE), trials, indent=2, default=str)


class ModelEvaluation(Artifact):
    """Metrics per slice: ``metrics.json`` {slice: {metric: value}} (NaN written as null), and
    ``baseline_metrics.json`` in the same shape when there was a baseline; ``plots.json``
    {slice: curves and confusion matrix} of the candidate (``transforms.metrics.PlotData``)."""

    METRICS_FILE: ClassVar[str] = "metrics.json"
    BASELINE_METRICS_FILE: ClassVar[str] = "baseline_metrics.json"
    PLOTS_FILE: ClassVar[str] = "plots.json"

    def plots_uri(self) -> str:
        return fs.join(self.uri, self.PLOTS_FILE)

    def load_plots(self) -> dict:
        """{slice: plot data}; {} when there is none (a regression, or written before plots existed)."""
        path = self.plots_uri()
        return read_json(path) if fs.exists(path) else {}

    def metrics_uri(self, *, baseline: bool = False) -> str:
        return fs.join(self.uri, self.BASELINE_METRICS_FILE if baseline else self.METRICS_FILE)

    def load_metrics(self, *, baseline: bool = False) -> dict[str, dict[str, float]]:
        """{slice: {metric: value}} (NaN for metrics that had none; {} when there is no such file)."""
        path = self.metrics_uri(baseline=baseline)
        if not fs.exists(path):
            return {}
        return {
            s: {m: (float("nan") if v is None else float(v)) for m, v in values.items()}
            for s, values in read_json(path).items()
        }


class ModelBlessing(Artifact):
    """Whether a model passed evaluation: BLESSED or NOT_BLESSED, and why."""


class InfraBlessing(Artifact):
    """Whether a model loads and serves in a fresh process."""


class PushedModel(Artifact):
    """Where a blessed model was pushed to."""


class InferenceResult(_ParquetSplits):
    """Input rows plus prediction columns: ``Split-<name>/*.parquet``."""
