"""File formats for ingestion: how a file is planned into work items, what column types
it holds, and how one work item is read into Arrow record batches.

Every format follows the same contract (`FileFormat`): `plan()` looks at the head of a
file once and returns its columns and work items; `read()` turns one work item into
record batches that match the unified schema, plus `RejectedRow`s for rows that do not
parse or do not fit a declared type. CSV, whose text carries no types, is first read
with `read_values()`, whose value counts decide the schema (`FileFormat`). The Beam
transforms and the in-memory path in `ingestion.py` only call these methods, so both
paths read identically.

Column kinds form a lattice, null < int64 < float64 < string. A CSV column's kind is
decided from every value of the whole input, never from a file's head, so where a value
sits cannot change a type: the column is numeric when all but `max_mixed_fraction` of
its non-empty values parse as numbers (the others are then rejected rows), else string,
and the schema's metadata names the columns typed string because their values were mixed.
Formats whose files carry types (Parquet, Avro, TFRecord, JSON Lines) join them: an int
column that is float in another file becomes float64, but text in one file and numbers
in another is a conflict that fails the read, naming both files. List-valued columns
(Parquet and Arrow lists, JSON arrays, multi-valued tf.Example features) and struct
columns (Parquet structs, JSON objects) have a composite kind: their Arrow type with
every leaf one of the kinds above, e.g. list<list<float64>>; a list joins a list
element-wise, a struct joins a struct field by field, and a single value joins a list as
a one-value list (a tf.Example feature is a list in a file where some example has other
than one value, else single); a list and a struct do not join, and the read fails naming
the file. A column with no value anywhere is declared string. Give a tensorflow_metadata
Schema to declare types instead; values that do not fit a declared type are rejected,
never coerced.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
from collections.abc import Iterator, Mapping
from typing import NamedTuple

import fastavro
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.json as pajson
import pyarrow.parquet as pq
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.io.tfrecordio import _TFRecordUtil
from tfx_bsl.coders.example_coder import ExamplesToRecordBatchDecoder

from beam_ml.transforms.options import FORMATS, ReadOptions

# The kinds a column can have, in lattice order, and the Arrow type each one is read as.
KIND_TYPES = {"null": pa.null(), "int": pa.int64(), "float": pa.float64(), "string": pa.string()}
_KIND_RANK = {kind: rank for rank, kind in enumerate(KIND_TYPES)}
#: A column's kind: a name of KIND_TYPES, or for list and struct columns their Arrow type
#: with normalised leaves (`kind_of`).
Kind = str | pa.DataType
_CHUNK = 16 << 20
#: Read past a CSV work item's byte range to reach the end of its last line.
_TAIL_BYTES = 1 << 16


class IngestionError(ValueError):
    """A file cannot be ingested at all: missing, matched by nothing, or not the stated format."""


class RejectedRow(NamedTuple):
    """A row that was not ingested, and why.

    `line` is the 1-based physical line where the row starts in a text file (CSV, JSON
    Lines; None when it cannot be known, e.g. a CSV whose quoted values hold newlines and
    the row failed type conversion), or the 1-based record number in a binary file
    (Parquet row, Avro record, TFRecord record). `raw` is the row's text when the file is
    text, else a rendering of its decoded values.
    """

    path: str
    line: int | None
    raw: str | None
    reason: str


class WorkItem(NamedTuple):
    """One unit of reading: a byte range or a row-group range of one file.

    tag routes the rows to an output (a split name, or the single examples output).
    start/stop are bytes for CSV and JSON Lines, row groups for Parquet, and 0/-1 (the
    whole file) otherwise. columns are a CSV file's column names, read from its header.
    """

    tag: str
    path: str
    start: int
    stop: int
    columns: tuple[str, ...] | None = None
    newlines_in_values: bool = False


class FileColumns(NamedTuple):
    """One file's columns in order and the kind sampled for each.

    counts (CSV, whose text carries no types) holds, per column, how many values are
    non-empty and how many are not numbers, and 1 if some number is not an integer: in
    the file's head when planning (the types an item is first read with), in one work
    item after `read_values` (`values_columns`); typing sums them over every file, or
    item, of the read. tag is the output the file's rows go to.
    """

    path: str
    names: tuple[str, ...]
    kinds: tuple[Kind, ...]
    counts: tuple[tuple[int, int, int], ...] | None = None
    tag: str = ""


def _is_list_type(arrow_type: pa.DataType) -> bool:
    return pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type) or pa.types.is_fixed_size_list(arrow_type)


def kind_type(kind: Kind) -> pa.DataType:
    """The Arrow type a column of this kind is read as."""
    return KIND_TYPES[kind] if isinstance(kind, str) else kind


def join_kinds(a: Kind, b: Kind) -> Kind:
    """The least kind both fit: the lattice join, element-wise for lists, field-wise for structs."""
    if a == "null" or a == b:
        return b
    if b == "null":
        return a
    if isinstance(a, str) and isinstance(b, str):
        return a if _KIND_RANK[a] > _KIND_RANK[b] else b
    a_list, b_list = not isinstance(a, str) and _is_list_type(a), not isinstance(b, str) and _is_list_type(b)
    if a_list or b_list:
        a_item = _kind_of_type(a.value_type) if a_list else a
        b_item = _kind_of_type(b.value_type) if b_list else b
        return pa.list_(kind_type(join_kinds(a_item, b_item)))
    if pa.types.is_struct(kind_type(a)) and pa.types.is_struct(kind_type(b)):
        fields: dict[str, Kind] = {}
        for field in [*a, *b]:
            fields[field.name] = join_kinds(fields.get(field.name, "null"), _kind_of_type(field.type))
        return pa.struct([pa.field(name, kind_type(kind)) for name, kind in fields.items()])
    raise ValueError(f"a column is {kind_type(a)} in one place and {kind_type(b)} in another")


def _resolve_nulls(kind: Kind) -> pa.DataType:
    """The final type of a kind: a leaf never seen with a value is string (it can hold any)."""
    if kind == "null":
        return pa.string()
    if isinstance(kind, str):
        return KIND_TYPES[kind]
    if _is_list_type(kind):
        return pa.list_(_resolve_nulls(_kind_of_type(kind.value_type)))
    return pa.struct([pa.field(f.name, _resolve_nulls(_kind_of_type(f.type))) for f in kind])


#: Schema metadata key: the columns typed string because their values mixed numbers and text.
MIXED_COLUMNS_KEY = b"beam_ml.mixed_string_columns"


def unify_columns(files: list[FileColumns], declared: Mapping[str, str], max_mixed_fraction: float = 0.01) -> pa.Schema:
    """The schema of a whole read: columns in the order of the first file (by path) that
    has them, each typed from all files, declared kinds overriding.

    A column with value counts (CSV) is typed by the counts summed over every file: int
    or float when at most `max_mixed_fraction` of its non-empty values are not numbers,
    else string (named in the schema's MIXED_COLUMNS_KEY metadata when some values were
    numbers). Kinds read from typed files join in the lattice, but text in one file and
    numbers in another is an IngestionError naming both files, unless declared. Sorting
    by path makes the result independent of the order files were sampled in.
    """
    order: dict[str, Kind] = {}
    seen: dict[str, tuple[str, str]] = {}  # single-valued column → (a file, its non-null kind)
    totals: dict[str, np.ndarray] = {}
    for file in sorted(files, key=lambda file: file.path):
        for index, (name, kind) in enumerate(zip(file.names, file.kinds, strict=True)):
            if file.counts is not None:
                totals[name] = totals.get(name, np.zeros(3, np.int64)) + np.asarray(file.counts[index], np.int64)
                order.setdefault(name, "null")
                continue
            if isinstance(kind, str) and kind != "null" and name not in declared:
                first = seen.setdefault(name, (file.path, kind))
                if (kind == "string") != (first[1] == "string"):
                    raise IngestionError(
                        f"column {name!r} is {KIND_TYPES[first[1]]} in {first[0]} but {KIND_TYPES[kind]} in "
                        f"{file.path}: declare its type in a schema, or make the files agree")
            try:
                order[name] = join_kinds(order.get(name, "null"), kind)
            except ValueError as error:
                raise IngestionError(f"{file.path}: column {name!r}: {error}") from error
    mixed = []
    for name, counts in totals.items():
        order[name] = _counted_kind(counts, max_mixed_fraction)
        if order[name] == "string" and counts[1] < counts[0] and name not in declared:
            mixed.append(name)
    order.update((name, _declared_kind(kind, order[name])) for name, kind in declared.items() if name in order)
    metadata = {MIXED_COLUMNS_KEY: json.dumps(sorted(mixed)).encode()} if mixed else None
    return pa.schema([pa.field(name, _resolve_nulls(kind)) for name, kind in order.items()], metadata=metadata)


def _counted_kind(counts, max_mixed_fraction: float) -> str:
    """The kind of a column from its (non-empty, not numbers, some non-integer) counts."""
    non_empty, not_number, fractional = (int(c) for c in counts)
    if non_empty == 0:
        return "null"
    if not_number <= max_mixed_fraction * non_empty:
        return "float" if fractional else "int"
    return "string"


def mixed_string_columns(schema: pa.Schema) -> list[str]:
    """The columns `unify_columns` typed string because their values mixed numbers and text."""
    return json.loads((schema.metadata or {}).get(MIXED_COLUMNS_KEY, b"[]"))


def _declared_kind(declared: str, found: Kind) -> Kind:
    """A schema's type names the values' kind: a list column stays a list of that kind."""
    if not isinstance(found, str) and _is_list_type(found):
        return pa.list_(kind_type(_declared_kind(declared, _kind_of_type(found.value_type))))
    return declared


def kind_of(arrow_type: pa.DataType, path: str, column: str) -> Kind:
    """The kind an Arrow type is read as: a leaf kind, or a list/struct type of leaf kinds."""
    try:
        return _kind_of_type(arrow_type)
    except TypeError as error:
        raise IngestionError(f"{path}: column {column!r} has type {arrow_type}, which ingestion does not read") from error


def _kind_of_type(arrow_type: pa.DataType) -> Kind:
    if _is_list_type(arrow_type):
        return pa.list_(kind_type(_kind_of_type(arrow_type.value_type)))
    if pa.types.is_struct(arrow_type):
        return pa.struct([pa.field(f.name, kind_type(_kind_of_type(f.type))) for f in arrow_type])
    if pa.types.is_null(arrow_type):
        return "null"
    if pa.types.is_integer(arrow_type) or pa.types.is_boolean(arrow_type):
        return "int"
    if pa.types.is_floating(arrow_type) or pa.types.is_decimal(arrow_type):
        return "float"
    if pa.types.is_nested(arrow_type) or pa.types.is_dictionary(arrow_type):
        raise TypeError(arrow_type)
    return "string"


def match_files(pattern: str) -> list[str]:
    """The files a pattern matches, sorted; an IngestionError naming the pattern if none."""
    try:
        metadata = FileSystems.match([pattern])[0].metadata_list
    except Exception as error:  # Beam raises BeamIOError, or OSError from the filesystem
        raise IngestionError(f"cannot list input files {pattern!r}: {error}") from error
    paths = sorted(m.path for m in metadata if m.size_in_bytes is None or not m.path.endswith("/"))
    if not paths:
        raise IngestionError(f"no input files match {pattern!r}")
    return paths


def _compressed(path: str) -> bool:
    return CompressionTypes.detect_compression_type(path) != CompressionTypes.UNCOMPRESSED


def _size(path: str) -> int:
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def _read_head(path: str, size: int) -> bytes:
    """Up to `size` (uncompressed) bytes from the start of a file."""
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
        return f.read(size)


def _read_whole(path: str) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
        return f.read()


def _read_lines(path: str, start: int, stop: int) -> tuple[int, bytearray]:
    """Where the lines that start in [start, stop) of an uncompressed file begin, and
    their bytes.

    A line belongs to the range holding its first byte, so adjacent ranges tile the file
    with no line read twice or lost. The range and a little past it are read into one
    buffer, cut after the last line's newline: a range is tens of MiB, and joining it to
    its tail would copy it all again.
    """
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        if start > 0:
            f.seek(start - 1)
            _skip_past_newline(f)
        begin = f.tell()
        if begin >= stop:
            return begin, bytearray()
        want = stop - begin
        data = _read_up_to(f, want + _TAIL_BYTES)
        cut = data.find(b"\n", want - 1)
        if cut >= 0:
            del data[cut + 1:]
            return begin, data
        while chunk := f.read(_TAIL_BYTES):  # the last line is longer than the tail
            cut = chunk.find(b"\n")
            if cut >= 0:
                data += chunk[: cut + 1]
                break
            data += chunk
        return begin, data


def _read_up_to(f: io.RawIOBase, size: int) -> bytearray:
    """Up to `size` bytes of `f` (fewer at its end), read straight into one buffer."""
    data = bytearray(size)
    got = 0
    with memoryview(data) as view:
        while got < size and (n := f.readinto(view[got:])):
            got += n
    del data[got:]
    return data


def _skip_past_newline(f: io.RawIOBase) -> None:
    while chunk := f.read(1 << 16):
        cut = chunk.find(b"\n")
        if cut >= 0:
            f.seek(cut + 1 - len(chunk), io.SEEK_CUR)
            return


def _count_newlines(path: str, stop: int) -> int:
    """How many newlines precede byte `stop`: turns a range's lines into file lines."""
    count = 0
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
        while stop > 0 and (chunk := f.read(min(_CHUNK, stop))):
            count += chunk.count(b"\n")
            stop -= len(chunk)
    return count


class _QuoteParity:
    """Detects a newline inside a quoted value: one where the quotes seen so far are odd.

    Escaped quotes come in pairs and keep the parity, so this holds for RFC 4180 files;
    a stray quote inside an unquoted value can fool it (documented limitation).
    """

    def __init__(self, quote: bytes = b'"') -> None:
        self._quote = quote[0]
        self._seen = 0

    def feed(self, data: bytes) -> bool:
        arr = np.frombuffer(data, dtype=np.uint8)
        quotes = np.flatnonzero(arr == self._quote)
        if len(quotes) == 0:
            return False
        newlines = np.flatnonzero(arr == 10)
        before = np.searchsorted(quotes, newlines) + self._seen
        self._seen += len(quotes)
        return bool(np.any(before % 2 == 1))


def _has_newlines_in_values(path: str) -> bool:
    parity = _QuoteParity()
    with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
        while chunk := f.read(_CHUNK):
            if parity.feed(chunk):
                return True
    return False


class _Rejector:
    """Collects the rows of one batch that do not fit the schema, by row index."""

    def __init__(self) -> None:
        self.reasons: dict[int, str] = {}

    def add(self, row: int, reason: str) -> None:
        self.reasons.setdefault(row, reason)


def _failing_rows(column: pa.Array, target: pa.DataType, offset: int = 0) -> list[int]:
    """Indices of the values that do not cast, by bisection: O(k log n) vectorised casts."""
    try:
        pc.cast(column, target)
        return []
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        if len(column) == 1:
            return [offset]
    half = len(column) // 2
    return _failing_rows(column.slice(0, half), target, offset) + _failing_rows(
        column.slice(half), target, offset + half
    )


def _single_values(column: pa.Array, name: str, rejector: _Rejector) -> pa.Array:
    """A list column (tf.Example's features) as one value per row, for a column whose kind
    is single-valued; a row with other than one value is rejected, not truncated or nulled."""
    lengths = pc.list_value_length(column).to_numpy(zero_copy_only=False)
    valid = column.is_valid().to_numpy(zero_copy_only=False)
    for row in np.flatnonzero(valid & (np.nan_to_num(lengths, nan=1) != 1)):
        rejector.add(int(row), f"column {name!r} has {int(lengths[row])} values where the files' other rows have one")
    one = pc.fill_null(pc.equal(pc.list_value_length(column), 1), False)
    kept = pc.if_else(one, column, pa.scalar(None, column.type))
    return pc.list_element(kept, 0) if len(kept) else pa.array([], column.type.value_type)


def _as_lists(column: pa.Array) -> pa.Array:
    """Single values as one-value lists (a null stays null): the column joined a list column."""
    offsets = np.arange(len(column) + 1, dtype=np.int32)
    return pa.ListArray.from_arrays(pa.array(offsets), column, mask=column.is_null())


def _fit(column: pa.Array, field: pa.Field, rejector: _Rejector) -> pa.Array:
    """A column cast to its field's type; values that do not fit are rejected (and nulled)."""
    if column.type == field.type:
        return column
    if pa.types.is_string(column.type) and field.type != pa.string():
        column = pc.utf8_trim_whitespace(column)  # as Arrow's CSV converter does
    bad = _failing_rows(column, field.type)
    if bad:
        for row in bad:
            rejector.add(row, f"column {field.name!r}: value {column[row].as_py()!r} does not fit {field.type}")
        mask = np.zeros(len(column), dtype=bool)
        mask[bad] = True
        column = pc.if_else(pa.array(mask), pa.scalar(None, column.type), column)
    return pc.cast(column, field.type)


def conform(batch: pa.RecordBatch, schema: pa.Schema) -> tuple[pa.RecordBatch, dict[int, str]]:
    """A batch with exactly `schema`'s columns and types, and the rows it had to reject.

    Columns the batch lacks are all-null; a value in a column the schema lacks rejects
    its row, since dropping the column would lose it silently.
    """
    rejector = _Rejector()
    columns = []
    for field in schema:
        index = batch.schema.get_field_index(field.name)
        if index < 0:
            columns.append(pa.nulls(batch.num_rows, field.type))
            continue
        column = batch.column(index)
        if _is_list_type(column.type) and not _is_list_type(field.type):
            column = _single_values(column, field.name, rejector)
        elif _is_list_type(field.type) and not _is_list_type(column.type) and not pa.types.is_null(column.type):
            column = _as_lists(column)
        columns.append(_fit(column, field, rejector))
    for name in set(batch.schema.names) - set(schema.names):
        for row in np.flatnonzero(batch.column(name).is_valid().to_numpy(zero_copy_only=False)):
            rejector.add(int(row), f"column {name!r} is not in the schema inferred from the files' heads")
    out = pa.RecordBatch.from_arrays(columns, schema=schema)
    if rejector.reasons:
        keep = np.ones(batch.num_rows, dtype=bool)
        keep[list(rejector.reasons)] = False
        out = out.filter(pa.array(keep))
    return out, rejector.reasons


def _sampled_columns(path: str, schemas: list[pa.Schema]) -> FileColumns:
    """A file's columns from the schemas of its sampled batches, each the join of its kinds."""
    kinds: dict[str, Kind] = {}
    for schema in schemas:
        for field in schema:
            try:
                kinds[field.name] = join_kinds(kinds.get(field.name, "null"), kind_of(field.type, path, field.name))
            except ValueError as error:
                raise IngestionError(f"{path}: column {field.name!r}: {error}") from error
    return FileColumns(path, tuple(kinds), tuple(kinds.values()))


def _row_text(batch: pa.RecordBatch, row: int) -> str:
    return json.dumps(batch.slice(row, 1).to_pylist()[0], default=repr)


class FileFormat:
    """A file format: `plan` samples a file's head, `read` reads one work item.

    A format whose text carries no types (CSV) sets `types_from_values`: its columns are
    typed from every value of the read, so it is read in two steps. `read_values` reads
    each item with the types its files' heads suggest and keeps text where a value does
    not fit them; `values_columns` counts the values of what it read; the counts of every
    item decide the schema (`unify_columns`), and an item read with other types than
    those is read again with `read`.
    """

    name: str
    types_from_values = False

    def plan(self, tag: str, path: str, options: ReadOptions) -> tuple[FileColumns, list[WorkItem]]:
        """The file's sampled columns and its work items."""
        raise NotImplementedError

    def read(self, item: WorkItem, schema: pa.Schema, options: ReadOptions) -> Iterator[pa.RecordBatch | RejectedRow]:
        """Record batches of `schema` for the item's rows, and the rows it rejects."""
        raise NotImplementedError

    def read_values(self, item: WorkItem, schema: pa.Schema, options: ReadOptions) -> Iterator[pa.RecordBatch | RejectedRow]:
        """For `types_from_values`: the item's columns as `schema` types them where all
        their values fit, else as read; rows rejected only where they cannot be read."""
        raise NotImplementedError

    def not_this_format(self, path: str, error: Exception) -> IngestionError:
        return IngestionError(f"{path} is not a readable {self.name} file: {error}")


class _RecordFormat(FileFormat):
    """Formats read as whole-file runs of records (Avro, TFRecord): decode, conform, emit."""

    def _batches(self, path: str, options: ReadOptions, limit: int | None = None) -> Iterator[pa.RecordBatch]:
        raise NotImplementedError

    def plan(self, tag, path, options):
        try:
            head = list(self._batches(path, options, limit=options.batch_rows))
        except (OSError, ValueError, EOFError, pa.ArrowException) as error:
            raise self.not_this_format(path, error) from error
        return _sampled_columns(path, [batch.schema for batch in head]), [WorkItem(tag, path, 0, -1)]

    def read(self, item, schema, options):
        record = 0
        for batch in self._batches(item.path, options):
            out, rejected = conform(batch, schema)
            for row, reason in sorted(rejected.items()):
                yield RejectedRow(item.path, record + row + 1, _row_text(batch, row), reason)
            if out.num_rows:
                yield out
            record += batch.num_rows


class TFRecordFormat(_RecordFormat):
    """TFRecord files of serialized tf.Example (TFX ExampleGen's output), parsed by
    tfx_bsl's C++ decoder without TensorFlow; gzip is detected from the file name.

    Every tf.Example feature is a list. A feature that every example having it holds with
    exactly one value is read as a single-valued column (as a CSV column would be); any
    other (several values, or an empty list, which is present and not missing) is a list
    column. That is decided from the whole file, not its head, so where a multi-valued
    example sits in the file never changes how the feature is stored.
    """

    name = "tfrecord"

    def plan(self, tag, path, options):
        kinds: dict[str, Kind] = {}
        multi: set[str] = set()
        try:
            for batch in self._batches(path, options):
                for field, column in zip(batch.schema, batch.columns, strict=True):
                    kinds[field.name] = join_kinds(kinds.get(field.name, "null"), kind_of(field.type, path, field.name))
                    if pa.types.is_null(column.type):  # no example of this batch has the feature
                        continue
                    if pc.any(pc.not_equal(pc.list_value_length(column), 1)).as_py():
                        multi.add(field.name)
        except (OSError, ValueError, EOFError, pa.ArrowException) as error:
            raise self.not_this_format(path, error) from error
        singles = {name: _kind_of_type(kind.value_type) for name, kind in kinds.items()
                   if name not in multi and not isinstance(kind, str)}
        kinds.update(singles)
        return FileColumns(path, tuple(kinds), tuple(kinds.values())), [WorkItem(tag, path, 0, -1)]

    def _batches(self, path, options, limit=None):
        decoder = ExamplesToRecordBatchDecoder()
        with FileSystems.open(path, compression_type=CompressionTypes.AUTO) as f:
            records: list[bytes] = []
            while (record := _TFRecordUtil.read_record(f)) is not None:
                records.append(record)
                if len(records) == options.batch_rows:
                    yield decoder.DecodeBatch(records)
                    records = []
                    if limit is not None:
                        return
            if records:
                yield decoder.DecodeBatch(records)


_AVRO_KINDS = {"null": "null", "boolean": "int", "int": "int", "long": "int", "float": "float",
               "double": "float", "bytes": "string", "string": "string", "enum": "string"}


class AvroFormat(_RecordFormat):
    """Avro container files of flat records (primitive fields, optionally nullable)."""

    name = "avro"

    def _arrow_schema(self, path: str, avro_schema: dict) -> pa.Schema:
        fields = []
        for field in avro_schema["fields"]:
            types = field["type"] if isinstance(field["type"], list) else [field["type"]]
            kinds = {_AVRO_KINDS.get(t if isinstance(t, str) else t.get("type"), "") for t in types} - {"null"}
            if len(kinds) > 1 or "" in kinds:
                raise IngestionError(f"{path}: Avro field {field['name']!r} has type {field['type']}, which ingestion does not read")
            fields.append(pa.field(field["name"], KIND_TYPES[kinds.pop() if kinds else "null"]))
        return pa.schema(fields)

    def _batches(self, path, options, limit=None):
        with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as f:
            reader = fastavro.reader(f)
            schema = self._arrow_schema(path, reader.writer_schema)
            rows: list[dict] = []
            for row in reader:
                rows.append(row)
                if len(rows) == options.batch_rows:
                    yield pa.RecordBatch.from_pylist(rows, schema=schema)
                    rows = []
                    if limit is not None:
                        return
            if rows or limit is not None:
                yield pa.RecordBatch.from_pylist(rows, schema=schema)


class ParquetFormat(FileFormat):
    """Parquet files, split into runs of row groups of about split_bytes each."""

    name = "parquet"

    def _open(self, path: str) -> pq.ParquetFile:
        try:
            return pq.ParquetFile(FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED))
        except (OSError, pa.ArrowException) as error:
            raise self.not_this_format(path, error) from error

    def plan(self, tag, path, options):
        parquet = self._open(path)
        schema = parquet.schema_arrow
        columns = FileColumns(path, tuple(schema.names), tuple(kind_of(f.type, path, f.name) for f in schema))
        items, start, size = [], 0, 0
        for group in range(parquet.metadata.num_row_groups):
            size += parquet.metadata.row_group(group).total_byte_size
            if size >= options.split_bytes:
                items.append(WorkItem(tag, path, start, group + 1))
                start, size = group + 1, 0
        if start < parquet.metadata.num_row_groups or not items:
            items.append(WorkItem(tag, path, start, parquet.metadata.num_row_groups))
        return columns, items

    def read(self, item, schema, options):
        parquet = self._open(item.path)
        record = sum(parquet.metadata.row_group(g).num_rows for g in range(item.start))
        for batch in parquet.iter_batches(batch_size=options.batch_rows, row_groups=range(item.start, item.stop)):
            out, rejected = conform(batch, schema)
            for row, reason in sorted(rejected.items()):
                yield RejectedRow(item.path, record + row + 1, _row_text(batch, row), reason)
            if out.num_rows:
                yield out
            record += batch.num_rows


def _line_ranges(path: str, options: ReadOptions) -> list[tuple[int, int]]:
    size = _size(path)
    if _compressed(path) or size <= options.split_bytes:
        return [(0, -1)]
    return [(start, min(start + options.split_bytes, size)) for start in range(0, size, options.split_bytes)]


def _item_bytes(item: WorkItem) -> tuple[int, bytes | bytearray]:
    """Where the item's lines begin in the file, and their (uncompressed) bytes."""
    return (0, _read_whole(item.path)) if item.stop < 0 else _read_lines(item.path, item.start, item.stop)


def _first_line(path: str, begin: int) -> int:
    """The 1-based line number of the line starting at byte `begin`; counted only when
    needed (a rejected row), since it reads the file up to there."""
    return 1 if begin == 0 else _count_newlines(path, begin) + 1


def _last_full_line(data: bytes) -> bytes:
    return data[: data.rfind(b"\n") + 1] or data


def _line_starts(data: bytes) -> np.ndarray:
    """Byte offsets where each line of `data` starts."""
    newlines = np.flatnonzero(np.frombuffer(data, dtype=np.uint8) == 10)
    starts = np.concatenate([[0], newlines + 1])
    return starts[starts < len(data)]


#: What Arrow's casts take as a number (surrounding whitespace is trimmed before a
#: cast, as _fit does); used to count the values that are not numbers.
_UNTERMINATED = "unterminated quoted value: a quote opened in this row is never closed"
_NUMBER = r"^\s*[+-]?(((\d+\.?\d*|\.\d+)([eE][+-]?\d+)?)|(?i:inf|infinity|nan))\s*$"


def _header(head: bytes, options: ReadOptions) -> tuple[str, ...]:
    """A CSV file's column names: given, or its first record."""
    if options.column_names is not None:
        return options.column_names
    text = head.decode("utf-8", "replace")
    return tuple(next(csv.reader(io.StringIO(text), delimiter=options.delimiter), []))


def _read_typed(open_source, types: Mapping[str, pa.DataType], options: ReadOptions,
                newlines_in_values: bool) -> pa.Table:
    """Every value of a CSV source as `types` (nulls for null_values), its block size
    grown for records longer than a block; `open_source()` gives a fresh source per
    attempt. Text is not checked for UTF-8 here: reading rejects such rows."""
    skip = 0 if options.column_names is not None else 1
    return _growing_blocks(options.block_bytes, lambda block: pacsv.read_csv(
        open_source(),
        read_options=pacsv.ReadOptions(column_names=list(types), skip_rows=skip, block_size=block, use_threads=True),
        parse_options=pacsv.ParseOptions(delimiter=options.delimiter, newlines_in_values=newlines_in_values,
                                         invalid_row_handler=lambda row: "skip"),
        convert_options=pacsv.ConvertOptions(column_types=types, null_values=list(options.null_values),
                                             strings_can_be_null=True, check_utf8=False),
    ))


def _growing_blocks(block: int, read):
    """read(block size), retried with 4× larger blocks while a record straddles blocks
    (Arrow's CSV reader needs a whole record in one block: a 10 MB field needs > 10 MB)."""
    while True:
        try:
            return read(block)
        except pa.ArrowInvalid as error:
            if "straddling" not in str(error) or block >= 1 << 31:
                raise
            block *= 4


def _value_counts(column: pa.ChunkedArray | pa.Array) -> tuple[int, int, int]:
    """(non-empty values, values that are not numbers, 1 if some number is not an integer).

    Text is judged by its distinct values, each weighted by how often it occurs: a text
    column repeats its values (categories), and a column that casts whole costs one
    vectorised cast; only a column with a misfit is matched against the number pattern.
    """
    present = len(column) - column.null_count
    if present == 0:
        return 0, 0, 0
    if pa.types.is_integer(column.type):
        return present, 0, 0
    if pa.types.is_floating(column.type):
        return present, 0, 1
    values = column.drop_null()
    distinct = pc.value_counts(values)
    values, weights = distinct.field("values"), distinct.field("counts")
    total = pc.sum(weights).as_py()
    if _casts(values, pa.float64()):
        return total, 0, int(not _casts(values, pa.int64()))
    matched = pc.match_substring_regex(values, _NUMBER)
    numbers = values.filter(matched)
    not_numbers = pc.sum(weights.filter(pc.invert(matched))).as_py() or 0
    return total, not_numbers, int(len(numbers) > 0 and not _casts(numbers, pa.int64()))


def values_columns(item: WorkItem, batches: list[pa.RecordBatch]) -> FileColumns:
    """The value counts of what `read_values` read of a CSV item, for `unify_columns`."""
    table = pa.Table.from_batches(batches) if batches else None
    counts = tuple(_value_counts(table[name]) if table is not None else (0, 0, 0) for name in item.columns)
    return FileColumns(item.path, item.columns, tuple(_counted_kind(c, 0.0) for c in counts), counts, item.tag)


def _casts(values: pa.ChunkedArray, target: pa.DataType) -> bool:
    """Whether every value casts to `target` (surrounding whitespace trimmed, as _fit does)."""
    for attempt in (values, None):
        try:
            pc.cast(values if attempt is not None else pc.utf8_trim_whitespace(values), target)
            return True
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    return False


def typed_where_all_fit(batches: list[pa.RecordBatch], schema: pa.Schema) -> list[pa.RecordBatch]:
    """Batches with each text column cast to the schema's type where all its values cast
    (whitespace trimmed, as `_fit` casts), else left as text; other columns as they are."""
    if not batches:
        return batches
    table = pa.Table.from_batches(batches)
    columns = []
    for field, column in zip(table.schema, table.columns, strict=True):
        index = schema.get_field_index(field.name)
        target = schema.field(index).type if index >= 0 else pa.string()
        if pa.types.is_string(field.type) and target != pa.string():
            with contextlib.suppress(pa.ArrowInvalid, pa.ArrowNotImplementedError):
                column = pc.cast(pc.utf8_trim_whitespace(column), target)
        columns.append(column)
    return pa.table(columns, names=table.column_names).to_batches()


class CsvFormat(FileFormat):
    """CSV files, read by Arrow's streaming CSV reader from each work item's bytes.

    An uncompressed file larger than split_bytes is split into byte ranges aligned to
    line starts, unless its quoted values hold newlines (then it is one work item). Rows
    with the wrong number of fields come from Arrow's invalid_row_handler; their line is
    found by locating their text in the item's bytes.
    """

    name = "csv"
    types_from_values = True


    def plan(self, tag, path, options):
        head = _read_head(path, options.infer_bytes)
        if b"\x00" in head:
            raise self.not_this_format(path, "it holds NUL bytes")
        if not head.strip():  # an empty file: no rows, and columns only if they are given
            names = options.column_names or ()
            return (FileColumns(path, names, ("null",) * len(names), ((0, 0, 0),) * len(names)),
                    [WorkItem(tag, path, 0, -1, names)])
        names = _header(head, options)
        if len(set(names)) != len(names):
            raise IngestionError(f"{path}: the header names a column twice: {names}")
        whole = len(head) < options.infer_bytes  # the head is the whole file
        newlines = options.newlines_in_values
        if newlines is None:
            newlines = _QuoteParity().feed(head) if whole else _has_newlines_in_values(path)
        text = dict.fromkeys(names, pa.string())
        sample = head if whole else _last_full_line(head)
        try:
            table = _read_typed(lambda: pa.BufferReader(sample), text, options, newlines or not whole)
            counts = tuple(_value_counts(table[name]) for name in names)
        except pa.ArrowInvalid as error:
            if whole:
                raise self.not_this_format(path, error) from error
            counts = ((0, 0, 0),) * len(names)  # a head cut inside a long row: guess nothing
        kinds = tuple(_counted_kind(c, options.max_mixed_fraction) for c in counts)
        columns = FileColumns(path, names, kinds, counts)
        ranges = [(0, -1)] if newlines else _line_ranges(path, options)
        return columns, [WorkItem(tag, path, start, stop, names, newlines) for start, stop in ranges]

    def read(self, item, schema, options):
        return self._read(item, schema, options, exact=True)

    def read_values(self, item, schema, options):
        """The item's rows with the schema's types where every value of a column fits its
        type, else as text (no value is rejected for its type here), the file's columns in
        its order; rows that cannot be split into fields are rejected as in `read`. One
        parse where every value fits, as for clean data; the text path parses once more."""
        return self._read(item, schema, options, exact=False)

    def _read(self, item, schema, options, exact):
        begin, data = _item_bytes(item)
        if not data or data.isspace():  # isspace stops at the first other byte; strip would copy it all
            return
        skip = 1 if begin == 0 and options.column_names is None else 0
        unterminated = None
        if item.newlines_in_values and data.count(b'"') % 2:
            # Arrow would end the value at the end of the file: the last quote opens a
            # value never closed (the quotes before it pair up), so its row is rejected.
            start = data.rfind(b"\n", 0, data.rfind(b'"')) + 1
            unterminated = (data.count(b"\n", 0, start), bytes(data[start:]).decode("utf-8", "replace").rstrip("\r\n"))
            data = data[:start]
        undecodable: list[tuple[int, str, str]] = []
        try:
            try:
                invalid, typed, rejected = self._parse(data, item, schema, options, skip, exact)
            except pa.ArrowInvalid as error:
                if "UTF8" not in str(error):
                    raise
                data, undecodable = _blank_undecodable_lines(data)
                invalid, typed, rejected = self._parse(data, item, schema, options, skip, exact)
        except pa.ArrowInvalid as error:
            raise self.not_this_format(item.path, error) from error
        if invalid or rejected or undecodable or unterminated:
            first_line = _first_line(item.path, begin)
            if unterminated:
                yield RejectedRow(item.path, first_line + unterminated[0], unterminated[1], _UNTERMINATED)
            for index, raw, reason in undecodable:
                yield RejectedRow(item.path, first_line + index, raw, reason)
            yield from self._rejections(item, data, first_line, skip, invalid, rejected)
        for batch in typed:
            if batch.num_rows:
                yield conform(batch, schema)[0] if exact else batch

    def _parse(self, data, item, schema, options, skip, exact):
        """The item's rows that Arrow cannot split, its batches, and the rows that do not
        fit their column's type (by row index). Unless `exact`, no row is rejected for
        its type: a column holding a value that does not fit stays text."""
        invalid: list[pacsv.InvalidRow] = []

        def handler(row: pacsv.InvalidRow) -> str:
            invalid.append(row)
            return "skip"

        def batches(types: Mapping[str, pa.DataType]) -> list[pa.RecordBatch]:
            # Blocks are parsed on every core; rows Arrow cannot split then come back in no
            # particular order, so an item that has any is parsed again on one thread, which
            # reports them in file order for _rejections to find their lines.
            for use_threads in (True, False):
                invalid.clear()
                table = _growing_blocks(options.block_bytes, lambda block, use_threads=use_threads: pacsv.read_csv(
                    pa.BufferReader(data),
                    read_options=pacsv.ReadOptions(column_names=item.columns, skip_rows=skip,
                                                   block_size=block, use_threads=use_threads),
                    parse_options=pacsv.ParseOptions(delimiter=options.delimiter, invalid_row_handler=handler,
                                                     newlines_in_values=item.newlines_in_values),
                    convert_options=pacsv.ConvertOptions(column_types=types, null_values=list(options.null_values),
                                                         strings_can_be_null=True),
                ))
                if not invalid:
                    break
            return table.to_batches()

        try:
            typed, rejected = batches({f.name: f.type for f in schema if f.name in item.columns}), {}
        except pa.ArrowInvalid as error:
            if "conversion error" not in str(error) or "UTF8" in str(error):
                raise
            text = batches(dict.fromkeys(item.columns, pa.string()))
            typed, rejected = self._conform_strings(text, schema) if exact else (typed_where_all_fit(text, schema), {})
        return invalid, typed, rejected

    def _conform_strings(self, batches: list[pa.RecordBatch], schema: pa.Schema):
        """The slow path, for an item with a value that does not fit its column's type:
        every column read as text, cast column by column, misfits rejected by row index."""
        out, rejected, row = [], {}, 0
        for batch in batches:
            fitted, bad = conform(batch, schema)
            rejected.update((row + r, reason) for r, reason in bad.items())
            out.append(fitted)
            row += batch.num_rows
        return out, rejected

    def _rejections(self, item, data, first_line, skip, invalid, rejected) -> Iterator[RejectedRow]:
        starts = _line_starts(data)
        invalid_lines: list[int] = []
        position = int(starts[skip]) if len(starts) > skip else len(data)
        for row in invalid:
            found = _find_line(data, row.text.encode(), position, starts)
            line = None if found is None else first_line + found
            if found is not None:
                position = int(starts[found]) + 1
                invalid_lines.append(found)
            if row.text.count('"') % 2:
                reason = _UNTERMINATED
            else:
                reason = f"expected {row.expected_columns} fields, got {row.actual_columns}"
            yield RejectedRow(item.path, line, row.text, reason)
        if not rejected:
            return
        if item.newlines_in_values:
            row_lines = None
        else:
            lengths = np.diff(np.append(starts, len(data)))
            first = np.frombuffer(data, dtype=np.uint8)[starts]
            blank = np.flatnonzero((lengths <= 1) | ((lengths == 2) & (first == 13)))  # "\n" or "\r\n"
            skipped = np.union1d(np.union1d(np.arange(skip), blank), invalid_lines)
            row_lines = np.setdiff1d(np.arange(len(starts)), skipped)
        for row, reason in sorted(rejected.items()):
            if row_lines is None:
                yield RejectedRow(item.path, None, None, reason)
                continue
            index = int(row_lines[row])
            end = starts[index + 1] - 1 if index + 1 < len(starts) else len(data)
            raw = data[starts[index]:end].decode("utf-8", "replace").rstrip("\r\n")
            yield RejectedRow(item.path, first_line + index, raw, reason)


def _blank_undecodable_lines(data: bytes | bytearray) -> tuple[bytearray, list[tuple[int, str, str]]]:
    """`data` with every line that is not valid UTF-8 emptied (its newline kept, so line
    numbers hold and Arrow skips it), and (line index, text, reason) for each."""
    out, bad, position = bytearray(), [], 0
    view = memoryview(data)
    while True:
        try:
            str(view[position:], "utf-8")
            break
        except UnicodeDecodeError as error:
            at = position + error.start
            start = data.rfind(b"\n", 0, at) + 1
            end = data.find(b"\n", at)
            end = len(data) if end < 0 else end
            out += view[position:start]
            line = bytes(view[start:end])
            bad.append((data.count(b"\n", 0, start), line.decode("utf-8", "replace").rstrip("\r"),
                        f"invalid UTF-8: byte 0x{data[at]:02x} at byte {at - start + 1} of the line"))
            position = end
    out += view[position:]
    return out, bad


def _find_line(data: bytes, text: bytes, position: int, starts: np.ndarray) -> int | None:
    """The index of the line at or after `position` whose text is `text`, if any."""
    while (at := data.find(text, position)) >= 0:
        index = int(np.searchsorted(starts, at))
        if index < len(starts) and starts[index] == at:
            end = at + len(text)
            if end == len(data) or data[end:end + 1] in (b"\n", b"\r"):
                return index
        position = at + 1
    return None


class JsonLinesFormat(FileFormat):
    """JSON Lines files, one object per line, read by Arrow's JSON reader; a block that
    does not parse is bisected by lines so only the offending lines are rejected."""

    name = "jsonl"

    def plan(self, tag, path, options):
        lines = [line for line in _last_full_line(_read_head(path, options.infer_bytes)).splitlines() if line.strip()]
        if lines:  # a file whose first line is not JSON is not JSON Lines
            try:
                pajson.read_json(pa.BufferReader(lines[0]))
            except pa.ArrowInvalid as error:
                raise self.not_this_format(path, error) from error
        tables = list(self._parseable(lines))
        columns = _sampled_columns(path, [table.schema for table in tables])
        return columns, [WorkItem(tag, path, start, stop) for start, stop in _line_ranges(path, options)]

    def _parseable(self, lines: list[bytes]) -> Iterator[pa.Table]:
        """Tables of the lines that parse, skipping the others by bisection (sampling only)."""
        if not lines:
            return
        try:
            yield pajson.read_json(pa.BufferReader(b"\n".join(lines)))
        except pa.ArrowInvalid:
            if len(lines) > 1:
                yield from self._parseable(lines[: len(lines) // 2])
                yield from self._parseable(lines[len(lines) // 2:])

    def read(self, item, schema, options):
        begin, data = _item_bytes(item)
        numbered = [(n, line) for n, line in enumerate(data.splitlines()) if line.strip()]
        parse = pajson.ParseOptions(explicit_schema=schema, unexpected_field_behavior="infer")
        first_line = None
        for start in range(0, len(numbered), options.batch_rows):
            for out in self._parse(item.path, numbered[start:start + options.batch_rows], schema, parse):
                if isinstance(out, RejectedRow):
                    first_line = first_line or _first_line(item.path, begin)
                    out = out._replace(line=first_line + out.line)
                yield out

    def _parse(self, path, numbered, schema, parse) -> Iterator[pa.RecordBatch | RejectedRow]:
        """Batches of the (line index, text) lines, and rejections numbered by line index."""
        try:
            table = pajson.read_json(pa.BufferReader(b"\n".join(line for _, line in numbered)), parse_options=parse)
        except pa.ArrowInvalid as error:
            if len(numbered) == 1:
                yield from self._parse_alone(path, numbered[0], schema, error)
                return
            half = len(numbered) // 2
            yield from self._parse(path, numbered[:half], schema, parse)
            yield from self._parse(path, numbered[half:], schema, parse)
            return
        yield from self._conformed(path, numbered, table, schema)

    def _parse_alone(self, path, numbered_line, schema, error) -> Iterator[pa.RecordBatch | RejectedRow]:
        """A line that does not parse with the schema's types. Where that is only because it
        has a single value where the column holds lists, it is read with that value as a
        one-value list; otherwise it is rejected."""
        index, line = numbered_line
        try:
            table = pajson.read_json(pa.BufferReader(line))
        except pa.ArrowInvalid:
            table = None
        if table is None or not all(_single_for_list(field, schema) for field in table.schema):
            yield RejectedRow(path, index, line.decode("utf-8", "replace"), f"does not parse as a row of the schema: {error}")
            return
        yield from self._conformed(path, [numbered_line], table, schema)

    def _conformed(self, path, numbered, table, schema) -> Iterator[pa.RecordBatch | RejectedRow]:
        row = 0
        for batch in table.to_batches():
            out, rejected = conform(batch, schema)
            for r, reason in sorted(rejected.items()):
                index, line = numbered[row + r]
                yield RejectedRow(path, index, line.decode("utf-8", "replace"), reason)
            if out.num_rows:
                yield out
            row += batch.num_rows


def _single_for_list(field: pa.Field, schema: pa.Schema) -> bool:
    """Whether a column parsed on its own is the schema's, or its single value where the
    schema has a list of that kind."""
    index = schema.get_field_index(field.name)
    if index < 0 or pa.types.is_null(field.type):
        return index >= 0
    expected = schema.field(index).type
    found = _kind_of_type(field.type)
    if found == _kind_of_type(expected):
        return True
    if _is_list_type(expected) and not _is_list_type(field.type):
        wanted = _kind_of_type(expected.value_type)
        return found == wanted or (found, wanted) == ("int", "float")  # as Arrow reads an int as a float
    return False


FILE_FORMATS: dict[str, FileFormat] = {
    f.name: f for f in (CsvFormat(), ParquetFormat(), TFRecordFormat(), AvroFormat(), JsonLinesFormat())
}

__all__ = ["FILE_FORMATS", "FORMATS", "FileColumns", "FileFormat", "IngestionError", "ReadOptions",
           "RejectedRow", "WorkItem", "conform", "match_files", "mixed_string_columns", "typed_where_all_fit",
           "unify_columns", "values_columns"]
