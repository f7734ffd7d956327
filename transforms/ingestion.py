"""Ingestion: files (CSV, Parquet, TFRecord of tf.Example, Avro, JSON Lines) into Arrow
record batches, split deterministically, and written as Parquet.

The read is splittable: each file is planned into work items (byte ranges aligned to
line starts, runs of Parquet row groups, whole compressed or record files), a Reshuffle
spreads the items over workers, and each item is read in large chunks by pyarrow. The
column types of the whole read are unified from every file (`formats.unify_columns`), so
every batch of every file has one schema; a split given its own files has only their
columns. Files that carry types are unified before any row is read. CSV columns are typed
from all their values, and each CSV byte is parsed once where the values fit the types
the files' heads suggest: every item is read with those types (text where a value does
not fit) and held in a temporary file while the value counts of all items decide the schema;
then an item whose columns have the decided types is kept, and only an item read with
other types is parsed again with the decided ones.

Rows that do not parse or do not fit their column's type are never dropped or coerced:
they come out as `RejectedRow`s. Counts go to Beam metrics (namespace `NAMESPACE`; read
them with `ingestion_counts`).

    with beam.Pipeline() as p:
        result = p | IngestExamples("data/*.csv", ReadOptions(format="csv"))
        result.splits | WriteExamples("out/examples")
"""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import hashlib
import json
import tempfile
import uuid
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import NamedTuple

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from apache_beam.io.filesystem import BeamIOError, CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions
from apache_beam.pvalue import PBegin, PCollection, TaggedOutput
from apache_beam.runners.runner import PipelineResult
from apache_beam.transforms.window import GlobalWindows

from beam_ml import fs
from beam_ml.artifacts import SPLIT_PREFIX, split_uri
from beam_ml.transforms.formats import (
    FILE_FORMATS,
    FileColumns,
    IngestionError,
    ReadOptions,
    RejectedRow,
    WorkItem,
    conform,
    match_files,
    mixed_string_columns,
    typed_where_all_fit,
    unify_columns,
    values_columns,
)
from beam_ml.transforms.record_batch_coder import batch_output_types
from beam_ml.transforms.threads import map_in_threads

NAMESPACE = "beam_ml.ingestion"
EXAMPLES = "examples"
REJECTED = "rejected"
#: One glob, or a list of globs read together (the files of several spans).
Files = str | Sequence[str]
_COLUMNS = "columns"
#: Batches a Parquet writer thread may hold before process() waits for it.
_WRITES_AHEAD = 2

beam.coders.registry.register_coder(RejectedRow, beam.coders.RowCoder)

__all__ = [
    "NAMESPACE",
    "GroupedIngestResult",
    "InMemoryResult",
    "IngestExamples",
    "IngestFileGroups",
    "IngestResult",
    "IngestionError",
    "ReadExamples",
    "ReadOptions",
    "ReadResult",
    "RejectedRow",
    "SplitConfig",
    "SplitExamples",
    "WriteExamples",
    "WriteRejectedRows",
    "assign_splits",
    "ingestion_counts",
    "mixed_string_columns",
    "read_examples_in_memory",
    "write_examples_in_memory",
]


@dataclasses.dataclass(frozen=True)
class SplitConfig:
    """Hash buckets per split, e.g. {"train": 2, "eval": 1}: a row goes to the split whose
    bucket range holds hash(row) mod total buckets, splits taking ranges in the given
    order (as TFX's ExampleGen). The hash is over the whole row, or over
    `partition_feature` alone so that all rows sharing its value land in one split."""

    buckets: tuple[tuple[str, int], ...] = (("train", 2), ("eval", 1))
    partition_feature: str | None = None

    def __post_init__(self) -> None:
        buckets = tuple(dict(self.buckets).items()) if isinstance(self.buckets, Mapping) else tuple(self.buckets)
        names = [name for name, _ in buckets]
        if not buckets or len(set(names)) != len(names) or any(n < 1 for _, n in buckets):
            raise ValueError(f"split buckets need unique names and positive counts, got {self.buckets!r}")
        object.__setattr__(self, "buckets", buckets)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.buckets)


class ReadResult(NamedTuple):
    """What ReadExamples gives: the record batches and the rows it rejected."""

    examples: PCollection[pa.RecordBatch]
    rejected: PCollection[RejectedRow]


class IngestResult(NamedTuple):
    """What IngestExamples gives: record batches per split name and the rejected rows."""

    splits: dict[str, PCollection[pa.RecordBatch]]
    rejected: PCollection[RejectedRow]


class GroupedIngestResult(NamedTuple):
    """What IngestFileGroups gives: record batches per group, then per split name, and the rejected rows."""

    groups: dict[str, dict[str, PCollection[pa.RecordBatch]]]
    rejected: PCollection[RejectedRow]


class InMemoryResult(NamedTuple):
    """What read_examples_in_memory gives: a table per split, rejected rows, counts."""

    splits: dict[str, pa.Table]
    rejected: list[RejectedRow]
    counts: dict[str, int]


# ---------------------------------------------------------------------------- splitting

_NULL_HASH = np.uint64(0x5BD1E9955BD1E995)


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser: a fixed, well-spread 64-bit mix, identical everywhere."""
    with np.errstate(over="ignore"):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def _bytes_hash(value: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(value, digest_size=8).digest(), "little")


def _column_hash(column: pa.Array) -> np.ndarray:
    """A stable 64-bit hash per value: numbers by their bits, text by blake2b of each
    distinct value (dictionary-encoded, so a repeated value is hashed once); a list by its
    values and their positions, a struct by its fields' hashes."""
    if pa.types.is_list(column.type) or pa.types.is_large_list(column.type):
        return _list_hash(column)
    if pa.types.is_struct(column.type):
        hashes = np.zeros(len(column), dtype=np.uint64)
        for index, field in enumerate(column.type):
            salt = np.uint64(_bytes_hash(field.name.encode()))
            hashes = _mix(hashes ^ _mix(_column_hash(column.field(index)) ^ salt))
        return np.where(column.is_null().to_numpy(zero_copy_only=False), _NULL_HASH, hashes)
    if pa.types.is_integer(column.type) or pa.types.is_floating(column.type):
        values = pc.fill_null(column, 0).to_numpy(zero_copy_only=False)
        if values.dtype.kind == "f":
            values = np.where(values == 0, 0.0, values).astype(np.float64)  # -0.0 == 0.0
        hashes = _mix(values.view(np.uint64))
    else:
        encoded = pc.dictionary_encode(column.cast(pa.string()))
        distinct = np.array([_bytes_hash(v.encode()) for v in encoded.dictionary.to_pylist()] or [0], np.uint64)
        hashes = distinct[pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)]
    return np.where(column.is_null().to_numpy(zero_copy_only=False), _NULL_HASH, hashes)


def _list_hash(column: pa.Array) -> np.ndarray:
    """Per row, a hash of its values in order: each value's hash mixed with its position,
    summed per row (wrapping), then mixed with the row's length."""
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False).astype(np.int64)
    values = pc.list_flatten(column)
    parents = pc.list_parent_indices(column).to_numpy(zero_copy_only=False)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
    positions = (np.arange(len(values), dtype=np.int64) - starts[parents]).astype(np.uint64)
    sums = np.zeros(len(column), dtype=np.uint64)
    with np.errstate(over="ignore"):
        np.add.at(sums, parents, _mix(_column_hash(values) ^ _mix(positions)))
    hashes = _mix(sums ^ lengths.astype(np.uint64))
    return np.where(column.is_null().to_numpy(zero_copy_only=False), _NULL_HASH, hashes)


def assign_splits(batch: pa.RecordBatch, config: SplitConfig) -> np.ndarray:
    """The index into config.buckets of each row's split, vectorised over the batch.

    Columns are combined in name order, so the result depends only on the row's values.
    """
    if config.partition_feature is not None:
        if config.partition_feature not in batch.schema.names:
            raise IngestionError(f"partition feature {config.partition_feature!r} is not a column: {batch.schema.names}")
        names = [config.partition_feature]
    else:
        names = sorted(batch.schema.names)
    def salted(name: str) -> np.ndarray:
        return _mix(_column_hash(batch.column(name)) ^ np.uint64(_bytes_hash(name.encode())))

    row = np.zeros(batch.num_rows, dtype=np.uint64)
    for column in map_in_threads(salted, names):  # columns hash independently: in threads
        row = _mix(row ^ column)
    bounds = np.cumsum([n for _, n in config.buckets])
    return np.searchsorted(bounds, row % np.uint64(bounds[-1]), side="right")


# ---------------------------------------------------------------------------- DoFns


class _PlanFiles(beam.DoFn):
    """(tag, path) → the file's work items, and its sampled columns (tagged)."""

    def __init__(self, options: ReadOptions) -> None:
        self._options = options

    def process(self, source: tuple[str, str]) -> Iterator[WorkItem | TaggedOutput]:
        tag, path = source
        columns, items = FILE_FORMATS[self._options.format].plan(tag, path, self._options)
        yield TaggedOutput(_COLUMNS, columns._replace(tag=tag))
        yield from items


class _UnifyColumns(beam.CombineFn):
    """Every file's sampled columns → the schema of each output tag: the one schema of
    the read (`unify_columns`), less the columns no file of that tag has, so a column
    missing from one split's files stays missing from that split."""

    def __init__(self, options: ReadOptions) -> None:
        self._declared = options.declared_kinds()
        self._max_mixed_fraction = options.max_mixed_fraction

    def create_accumulator(self) -> list[FileColumns]:
        return []

    def add_input(self, accumulator: list[FileColumns], columns: FileColumns) -> list[FileColumns]:
        accumulator.append(columns)
        return accumulator

    def merge_accumulators(self, accumulators):
        first, *rest = accumulators
        for other in rest:
            first.extend(other)
        return first

    def extract_output(self, accumulator: list[FileColumns]) -> dict[str, pa.Schema]:
        schema = unify_columns(accumulator, self._declared, self._max_mixed_fraction)
        names: dict[str, set[str]] = {}
        for columns in accumulator:
            names.setdefault(columns.tag, set()).update(columns.names)
        return {tag: pa.schema([f for f in schema if f.name in held], metadata=schema.metadata)
                for tag, held in names.items()}


class _ValuesRead(NamedTuple):
    """A work item as `_ReadValues` read it: where its batches are held (an Arrow IPC
    file; "" when it has no rows) while the types are decided, and the rows it rejected."""

    item: WorkItem
    held: str
    rejected: tuple[RejectedRow, ...]


def _held_dir(pipeline_options: PipelineOptions) -> str:
    """Where read items wait for the types: the pipeline's --temp_location (give one that
    every worker reaches on a cluster), else this machine's temporary directory."""
    return pipeline_options.view_as(GoogleCloudOptions).temp_location or tempfile.gettempdir()


def _hold(batches: list[pa.RecordBatch], directory: str) -> str:
    """Write the batches to a new file under `directory`; its path. A local file is
    written by Arrow itself (no Python call per buffer)."""
    if not batches:
        return ""
    path = FileSystems.join(directory, f"beam-ml-ingest-{uuid.uuid4().hex}.arrow")
    if fs.is_local(path):
        fs.makedirs(directory)
        sink = contextlib.closing(pa.OSFile(fs.local_path(path), "wb"))
    else:
        sink = FileSystems.create(path)
    with sink as f, pa.ipc.new_stream(f, batches[0].schema) as out:
        for batch in batches:
            out.write_batch(batch)
    return path


def _take_held(path: str) -> list[pa.RecordBatch] | None:
    """The batches `_hold` wrote, removing the file; None when it is not there (a retried
    bundle took it, or this worker cannot reach the directory). A local file is mapped,
    not copied: the batches are views of it, valid after it is unlinked."""
    if not path:
        return []
    try:
        if fs.is_local(path):
            source = pa.memory_map(fs.local_path(path))
        else:
            with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
                source = f.read()
    except (OSError, BeamIOError):
        return None
    FileSystems.delete([path])
    return list(pa.ipc.open_stream(source))


class _ReadValues(beam.DoFn):
    """For formats whose values decide the types (CSV): a work item → the item read with
    the types the files' heads suggest, held in a file under `held_dir` (`_ValuesRead`),
    and the value counts of what it read (tagged), from which the schema is decided
    after every item is read. Held on disk, not in the pipeline: a runner keeps several
    copies of a collection that waits for a side input (taxi ×100: 1.5 GB in memory for
    250 MB of batches)."""

    def __init__(self, options: ReadOptions, held_dir: str) -> None:
        self._options = options
        self._held_dir = held_dir

    def process(self, item: WorkItem, schemas: Mapping[str, pa.Schema]) -> Iterator[_ValuesRead | TaggedOutput]:
        batches, rejected = [], []
        for out in FILE_FORMATS[self._options.format].read_values(item, schemas[item.tag], self._options):
            (rejected if isinstance(out, RejectedRow) else batches).append(out)
        yield TaggedOutput(_COLUMNS, values_columns(item, batches))
        yield _ValuesRead(item, _hold(batches, self._held_dir), tuple(rejected))


class _ReadWorkItems(beam.DoFn):
    """A work item → record batches (tagged with the item's tag) and rejected rows.

    An item `_ReadValues` read already is kept where every column has its schema type,
    as for clean data; otherwise it is read again with the schema's types, which rejects
    the values that do not fit. An item with no rows gives one empty batch, so a read of
    empty files still carries its columns downstream.
    """

    def __init__(self, options: ReadOptions) -> None:
        self._options = options
        self._read = Metrics.counter(NAMESPACE, "rows_read")
        self._rejected = Metrics.counter(NAMESPACE, "rows_rejected")

    def process(self, part: WorkItem | _ValuesRead, schemas: Mapping[str, pa.Schema]) -> Iterator[TaggedOutput]:
        item = part.item if isinstance(part, _ValuesRead) else part
        schema = schemas[item.tag]
        outs = _kept(part, schema) if isinstance(part, _ValuesRead) else None
        if outs is None:
            outs = FILE_FORMATS[self._options.format].read(item, schema, self._options)
        empty = True
        for out in outs:
            if isinstance(out, RejectedRow):
                self._rejected.inc()
                yield TaggedOutput(REJECTED, out)
            else:
                self._read.inc(out.num_rows)
                empty = False
                yield TaggedOutput(item.tag, out)
        if empty:
            yield TaggedOutput(item.tag, pa.RecordBatch.from_pylist([], schema=schema))


def _kept(part: _ValuesRead, schema: pa.Schema) -> list[pa.RecordBatch | RejectedRow] | None:
    """The rows of an item read with the types it turned out to have, as `schema`; None
    where a column was read with another type than the schema's and cannot be cast
    exactly: text holding a value that does not fit (a rejected row, whose line only the
    file's text gives), or numbers of a column that became float or text (their text
    is needed), and where the held batches are gone. Text whose values all fit is cast: a column empty in the heads is read
    as text, and numbers anywhere else make it numeric."""
    batches = _take_held(part.held)
    if batches is None:
        return None

    def fits() -> bool:
        return not batches or all(schema.field(f.name).type == f.type for f in batches[0].schema)

    if not fits():
        batches = typed_where_all_fit(batches, schema)
        if not fits():
            return None
    return [*part.rejected, *(conform(batch, schema)[0] for batch in batches)]


class _SplitBatches(beam.DoFn):
    """A batch → one filtered batch per split that receives rows (an empty batch goes
    to every split, so each split knows the columns)."""

    def __init__(self, config: SplitConfig) -> None:
        self._config = config
        self._counts = {name: Metrics.counter(NAMESPACE, f"rows_split_{name}") for name in config.names}

    def process(self, batch: pa.RecordBatch) -> Iterator[TaggedOutput]:
        if batch.num_rows == 0:
            for name in self._config.names:
                yield TaggedOutput(name, batch)
            return
        assigned = assign_splits(batch, self._config)
        for index, name in enumerate(self._config.names):
            mask = assigned == index
            if mask.any():
                self._counts[name].inc(int(mask.sum()))
                yield TaggedOutput(name, batch.filter(pa.array(mask)))


class _WriteParquetBundles(beam.DoFn):
    """Record batches → one temporary Parquet file per bundle; yields its path when the
    bundle finishes, so only files of bundles that succeeded are published.

    Batches are encoded on a writer thread of the bundle, at most _WRITES_AHEAD behind,
    so encoding one batch overlaps reading and splitting the next (Arrow's Parquet
    writer runs without the GIL); local files are opened by Arrow itself for the same
    reason.
    """

    def __init__(self, temp_dir: str, split: str) -> None:
        self._temp_dir = temp_dir
        self._written = Metrics.counter(NAMESPACE, f"rows_written_{split}")

    def start_bundle(self) -> None:
        self._path = self._file = self._writer = self._thread = None
        self._pending: collections.deque[Future] = collections.deque()

    def process(self, batch: pa.RecordBatch) -> None:
        if self._writer is None:
            self._path = FileSystems.join(self._temp_dir, f"{uuid.uuid4().hex}.parquet")
            if fs.is_local(self._path):
                fs.makedirs(self._temp_dir)
                self._writer = pq.ParquetWriter(fs.local_path(self._path), batch.schema)
            else:
                self._file = FileSystems.create(self._path)
                self._writer = pq.ParquetWriter(self._file, batch.schema)
            self._thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="beam-ml-parquet")
        self._pending.append(self._thread.submit(self._writer.write_batch, batch))
        while len(self._pending) > _WRITES_AHEAD:
            self._pending.popleft().result()
        self._written.inc(batch.num_rows)

    def finish_bundle(self):
        if self._writer is None:
            return
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._thread.shutdown()
        self._writer.close()
        if self._file is not None:
            self._file.close()
        yield GlobalWindows.windowed_value(self._path)

    def teardown(self) -> None:
        if self._thread is not None:
            self._thread.shutdown(cancel_futures=True)


class _WriteJsonLinesBundles(beam.DoFn):
    """Rejected rows → one temporary JSON Lines file per bundle that has any; yields its
    path when the bundle finishes (the same publishing as _WriteParquetBundles)."""

    def __init__(self, temp_dir: str) -> None:
        self._temp_dir = temp_dir

    def start_bundle(self) -> None:
        self._path = self._file = None

    def process(self, row: RejectedRow) -> None:
        if self._file is None:
            self._path = FileSystems.join(self._temp_dir, f"{uuid.uuid4().hex}.jsonl")
            self._file = FileSystems.create(self._path)
        self._file.write(json.dumps(row._asdict(), sort_keys=True).encode() + b"\n")

    def finish_bundle(self):
        if self._file is not None:
            self._file.close()
            yield GlobalWindows.windowed_value(self._path)


class _PublishFiles(beam.DoFn):
    """All temporary files of one output → renamed into its directory as
    ``<stem>-NNNNN-of-NNNNN<suffix>``, temp removed."""

    def __init__(self, temp_dir: str, split_dir: str, stem: str = "data", suffix: str = ".parquet") -> None:
        self._temp_dir = temp_dir
        self._split_dir = split_dir
        self._stem = stem
        self._suffix = suffix

    def process(self, temp_paths: list[str]) -> Iterator[str]:
        if not FileSystems.exists(self._split_dir):
            FileSystems.mkdirs(self._split_dir)
        sources = sorted(temp_paths)
        targets = [FileSystems.join(self._split_dir, f"{self._stem}-{i:05d}-of-{len(sources):05d}{self._suffix}")
                   for i in range(len(sources))]
        if sources:
            FileSystems.rename(sources, targets)
        if FileSystems.exists(self._temp_dir):
            FileSystems.delete([self._temp_dir])
        yield from targets


# ---------------------------------------------------------------------------- transforms


def _sources(input_files: Files | Mapping[str, Files], tag: str) -> list[tuple[str, str]]:
    """(tag, path) for every file, matched now so a missing input fails at construction."""
    patterns = dict(input_files) if isinstance(input_files, Mapping) else {tag: input_files}
    if REJECTED in patterns:
        raise ValueError(f"{REJECTED!r} names the rejected rows' output; choose another split name")
    return [
        (name, path)
        for name, files in patterns.items()
        for pattern in ([files] if isinstance(files, str) else files)
        for path in match_files(pattern)
    ]


class _ReadSources(beam.PTransform):
    """Files → batches tagged by source tag, and rejected rows; the shared read."""

    def __init__(self, sources: list[tuple[str, str]], options: ReadOptions) -> None:
        super().__init__()
        self._sources = sources
        self._options = options

    def expand(self, pbegin: PBegin):
        tags = sorted({tag for tag, _ in self._sources})
        planned = (
            pbegin
            | "ListFiles" >> beam.Create(self._sources)
            | "PlanFiles" >> beam.ParDo(_PlanFiles(self._options)).with_outputs(_COLUMNS, main="items")
        )
        schema = planned[_COLUMNS] | "UnifyColumns" >> beam.CombineGlobally(_UnifyColumns(self._options))
        items = planned.items | "SpreadWorkItems" >> beam.Reshuffle()
        if FILE_FORMATS[self._options.format].types_from_values:
            held_dir = _held_dir(pbegin.pipeline.options)
            values = items | "ReadValues" >> beam.ParDo(
                _ReadValues(self._options, held_dir), beam.pvalue.AsSingleton(schema)).with_outputs(_COLUMNS, main="parts")
            schema = values[_COLUMNS] | "TypeFromValues" >> beam.CombineGlobally(_UnifyColumns(self._options))
            items = values.parts
        return items | "ReadWorkItems" >> beam.ParDo(
            _ReadWorkItems(self._options), beam.pvalue.AsSingleton(schema)).with_output_types(
                pa.RecordBatch, **batch_output_types(tags), **{REJECTED: RejectedRow}).with_outputs(REJECTED, *tags)


class ReadExamples(beam.PTransform[PBegin, ReadResult]):
    """One file or a glob → record batches of one schema, and the rows rejected.

    Input files are matched when the pipeline is built: a missing file or an empty glob
    raises IngestionError then, naming the pattern.
    """

    def __init__(self, file_pattern: Files, options: ReadOptions) -> None:
        super().__init__()
        self._file_pattern = file_pattern
        self._options = options

    def expand(self, pbegin: PBegin) -> ReadResult:
        read = pbegin | "Read" >> _ReadSources(_sources(self._file_pattern, EXAMPLES), self._options)
        return ReadResult(read[EXAMPLES], read[REJECTED])


class SplitExamples(beam.PTransform[PCollection[pa.RecordBatch], dict[str, PCollection[pa.RecordBatch]]]):
    """Record batches → record batches per split, by deterministic hash buckets."""

    def __init__(self, config: SplitConfig = SplitConfig()) -> None:
        super().__init__()
        self._config = config

    def expand(self, batches: PCollection[pa.RecordBatch]) -> dict[str, PCollection[pa.RecordBatch]]:
        split = batches | "AssignSplits" >> beam.ParDo(_SplitBatches(self._config)).with_output_types(
            pa.RecordBatch, **batch_output_types(self._config.names)).with_outputs(*self._config.names)
        return {name: split[name] for name in self._config.names}


class IngestExamples(beam.PTransform[PBegin, IngestResult]):
    """Input files → record batches per split, and rejected rows.

    input_files is a pattern (or a list of them: the files of several spans), hash-split
    by `split` (default SplitConfig()), or a mapping of split name → pattern(s), whose
    files are the splits as given (then `split` must be None). All files of all splits
    share one schema.
    """

    def __init__(self, input_files: Files | Mapping[str, Files], options: ReadOptions,
                 split: SplitConfig | None = None) -> None:
        super().__init__()
        if isinstance(input_files, Mapping) and split is not None:
            raise ValueError("a split config applies to one input pattern; per-split patterns are the splits")
        self._input_files = input_files
        self._options = options
        self._split = split or SplitConfig()

    def expand(self, pbegin: PBegin) -> IngestResult:
        if not isinstance(self._input_files, Mapping):
            read = pbegin | "ReadExamples" >> ReadExamples(self._input_files, self._options)
            return IngestResult(read.examples | "Split" >> SplitExamples(self._split), read.rejected)
        read = pbegin | "ReadSplits" >> _ReadSources(_sources(self._input_files, EXAMPLES), self._options)
        return IngestResult({name: read[name] for name in self._input_files}, read[REJECTED])


class IngestFileGroups(beam.PTransform[PBegin, GroupedIngestResult]):
    """Groups of input files (the spans of a rolling window) → record batches per group,
    each group hash-split by `split`.

    The groups are read together, so every batch of every group has the one schema
    unified from all their files, as IngestExamples gives; kept apart, each group can
    be written as its own files (``WriteExamples(uri, stem=group)``), so a reader
    downstream can take one span of the window without the others.
    """

    def __init__(self, groups: Mapping[str, Files], options: ReadOptions, split: SplitConfig | None = None) -> None:
        super().__init__()
        if not groups:
            raise ValueError("IngestFileGroups needs at least one group of files")
        if REJECTED in groups:
            raise ValueError(f"{REJECTED!r} names the rejected rows' output; choose another group name")
        self._groups = dict(groups)
        self._options = options
        self._split = split or SplitConfig()

    def expand(self, pbegin: PBegin) -> GroupedIngestResult:
        read = pbegin | "ReadGroups" >> _ReadSources(_sources(self._groups, EXAMPLES), self._options)
        return GroupedIngestResult(
            {group: read[group] | f"Split[{group}]" >> SplitExamples(self._split) for group in self._groups},
            read[REJECTED],
        )


class WriteExamples(beam.PTransform[dict[str, PCollection[pa.RecordBatch]], PCollection[str]]):
    """Record batches per split → `<uri>/Split-<name>/<stem>-NNNNN-of-NNNNN.parquet` (stem `data`).

    Files are written to a temporary directory per split and renamed into place once
    every bundle is done; gives the paths of the published files. Writers with
    different stems may share the splits' directories (one per span of a window).
    """

    def __init__(self, uri: str, stem: str = "data") -> None:
        super().__init__()
        self._uri = uri
        self._stem = stem

    def expand(self, splits: dict[str, PCollection[pa.RecordBatch]]) -> PCollection[str]:
        run = uuid.uuid4().hex
        written = []
        for name, batches in splits.items():
            temp_dir = FileSystems.join(self._uri, f".tmp-{run}-{SPLIT_PREFIX}{name}")
            split_dir = split_uri(self._uri, name)
            written.append(
                batches
                | f"Write[{name}]" >> beam.ParDo(_WriteParquetBundles(temp_dir, name))
                | f"Collect[{name}]" >> beam.combiners.ToList()
                | f"Publish[{name}]" >> beam.ParDo(_PublishFiles(temp_dir, split_dir, stem=self._stem))
            )
        return tuple(written) | "Flatten" >> beam.Flatten()


class WriteRejectedRows(beam.PTransform[PCollection[RejectedRow], PCollection[str]]):
    """Rejected rows → ``<directory>/rows-NNNNN-of-NNNNN.jsonl``, one JSON object per row;
    no file at all when no row was rejected.

    Published like WriteExamples (a temporary file per bundle, renamed once every
    bundle is done), which costs a pipeline two small stages where Beam's
    WriteToText adds its whole sink machinery even when there is nothing to write.
    """

    def __init__(self, directory: str) -> None:
        super().__init__()
        self._directory = directory

    def expand(self, rows: PCollection[RejectedRow]) -> PCollection[str]:
        temp_dir = FileSystems.join(self._directory, f".tmp-{uuid.uuid4().hex}")
        return (
            rows
            | "WriteBundles" >> beam.ParDo(_WriteJsonLinesBundles(temp_dir))
            | "Collect" >> beam.combiners.ToList()
            | "Publish" >> beam.ParDo(_PublishFiles(temp_dir, self._directory, stem="rows", suffix=".jsonl"))
        )


def ingestion_counts(result: PipelineResult) -> dict[str, int]:
    """The ingestion counters of a finished pipeline: rows_read, rows_rejected,
    rows_split_<name>, rows_written_<name> (committed values where the runner has them)."""
    counters = result.metrics().query(MetricsFilter().with_namespace(NAMESPACE))["counters"]
    counts: dict[str, int] = {}
    for c in counters:  # a counter of several steps (a split per file group) counts them all
        counts[c.key.metric.name] = counts.get(c.key.metric.name, 0) + (c.committed if c.committed is not None else c.attempted)
    return counts


# ---------------------------------------------------------------------------- in memory


def read_examples_in_memory(input_files: str | Mapping[str, str], options: ReadOptions,
                            split: SplitConfig | None = None) -> InMemoryResult:
    """IngestExamples without Beam, through the same DoFns: for tests and small data."""
    if not isinstance(input_files, str) and split is not None:
        raise ValueError("a split config applies to one input pattern; per-split patterns are the splits")
    columns, items = [], []
    plan, read = _PlanFiles(options), _ReadWorkItems(options)
    for source in _sources(input_files, EXAMPLES):
        for out in plan.process(source):
            if isinstance(out, TaggedOutput):
                columns.append(out.value)
            else:
                items.append(out)
    schemas = _UnifyColumns(options).extract_output(columns)
    batches: dict[str, list[pa.RecordBatch]] = {}
    rejected: list[RejectedRow] = []
    with tempfile.TemporaryDirectory(prefix="beam-ml-ingest-") as held:  # gone even when a read fails
        if FILE_FORMATS[options.format].types_from_values:
            values, columns, parts = _ReadValues(options, held), [], []
            for item in items:
                for out in values.process(item, schemas):
                    if isinstance(out, TaggedOutput):
                        columns.append(out.value)
                    else:
                        parts.append(out)
            schemas, items = _UnifyColumns(options).extract_output(columns), parts
        for item in items:
            for out in read.process(item, schemas):
                if out.tag == REJECTED:
                    rejected.append(out.value)
                else:
                    batches.setdefault(out.tag, []).append(out.value)
    if isinstance(input_files, str):
        config = split or SplitConfig()
        splitter = _SplitBatches(config)
        unsplit, batches = batches.get(EXAMPLES, []), {name: [] for name in config.names}
        for batch in unsplit:
            for out in splitter.process(batch):
                batches[out.tag].append(out.value)
    tag_schema = (lambda name: schemas[EXAMPLES]) if isinstance(input_files, str) else schemas.__getitem__
    tables = {name: pa.Table.from_batches(parts, schema=tag_schema(name)) for name, parts in batches.items()}
    counts = {"rows_read": sum(t.num_rows for t in tables.values()), "rows_rejected": len(rejected)}
    counts.update((f"rows_split_{name}", table.num_rows) for name, table in tables.items())
    return InMemoryResult(tables, rejected, counts)


def write_examples_in_memory(splits: Mapping[str, pa.Table], uri: str) -> list[str]:
    """WriteExamples without Beam: one Parquet file per split; gives the paths."""
    paths = []
    for name, table in splits.items():
        path = FileSystems.join(split_uri(uri, name), "data-00000-of-00001.parquet")
        with FileSystems.create(path) as f:
            pq.write_table(table, f)
        paths.append(path)
    return paths
