"""ExampleGen: input files (CSV, Parquet, TFRecord of tf.Example, Avro, JSON Lines) → Examples.

Reads with ``beam_ml.transforms.ingestion.IngestExamples``, hash-splits (or
takes per-split patterns), writes ``Split-<name>/*.parquet``, and writes the
rows it could not parse, with file, line and reason, to
``rejected/rows-*.jsonl`` beside them. It fails when the rejected fraction
exceeds ``max_rejected_fraction`` (default 0: any bad row fails the run and
says where), and when an input pattern has no rows (unless ``allow_empty``).

Spans and versions (TFX's): a pattern with ``{SPAN}`` (or ``{YYYY}``/``{MM}``/``{DD}``)
and optionally ``{VERSION}`` reads the latest span at its latest version; ``span=``
one span, ``rolling=N`` the latest N spans, ``span_range=(first, last)`` a static
range (``beam_ml.spans``). The Examples then carry ``span`` (the newest read),
``spans``, ``version`` and ``input_pattern``; a new span file changes the cache
key, and a pattern that matches no span fails naming it. Every Examples records
``input_fingerprint``, a hash of all the files its pattern(s) matched (every span and
version): ``beam-ml watch --on-new-span`` compares it with what matches now. With
one pattern, each span's rows are files of their own in every split
(``Examples.span_files``), read in one pass with one schema, and
``span_fingerprints`` says what made them, so Transform can reuse the analysis of
a span an earlier window had.

Beam and the ingestion transforms are imported only when the component runs:
a pipeline file imports this module, and a fully cached rerun must not pay for
Beam.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from typing import TYPE_CHECKING, Literal

from beam_ml.artifacts import Examples, Schema
from beam_ml.context import ExecutionContext
from beam_ml.dsl import FilePattern, Input, Output, component
from beam_ml.spans import (
    SpanFiles,
    SpanSelection,
    has_placeholders,
    input_fingerprint,
    select_spans,
)
from beam_ml.transforms.options import ReadOptions

if TYPE_CHECKING:
    import pyarrow as pa

    from beam_ml.transforms.ingestion import SplitConfig

Format = Literal["csv", "parquet", "tfrecord", "avro", "jsonl"]
DEFAULT_SPLITS = {"train": 2, "eval": 1}
_EXTENSIONS = {".csv": "csv", ".parquet": "parquet", ".avro": "avro", ".jsonl": "jsonl", ".tfrecord": "tfrecord"}
_SHOWN_REJECTS = 5


class RejectedRowsError(ValueError):
    """More input rows failed to parse than the component allows."""


class EmptyInputError(ValueError):
    """An input pattern's files hold no rows."""


def guess_format(pattern: str) -> str:
    """The format a file name implies (``data.csv.gz`` → csv); an error when it implies none."""
    name = os.path.basename(pattern)
    for suffix in (".gz", ".gzip"):
        name = name.removesuffix(suffix)
    extension = os.path.splitext(name)[1].lower()
    if extension not in _EXTENSIONS:
        raise ValueError(f"cannot tell the format of {pattern!r} from its name: pass format=...")
    return _EXTENSIONS[extension]


@component
def ExampleGen(
    examples: Output[Examples],
    ctx: ExecutionContext,
    schema: Input[Schema] | None = None,
    *,
    input_path: FilePattern | dict[str, FilePattern],
    format: Format | None = None,
    splits: dict[str, int] | None = None,
    partition_feature: str | None = None,
    column_names: list[str] | None = None,
    null_values: list[str] | None = None,
    delimiter: str | None = None,
    max_rejected_fraction: float = 0.0,
    max_mixed_fraction: float | None = None,
    allow_empty: bool = False,
    read_options: ReadOptions | None = None,
    span: int | None = None,
    rolling: int | None = None,
    span_range: tuple[int, int] | None = None,
) -> None:
    """Ingest files into Examples.

    input_path: a file or glob, hash-split by ``splits`` (default train:2, eval:1) on the
      whole row or on ``partition_feature``; or a mapping split name → pattern.
    format: stated, or taken from the file extension.
    schema: optional Schema artifact declaring column types; others are inferred.
    null_values: CSV field texts that mean missing (default: only the empty field).
    delimiter: CSV field separator (default ","; "\t" reads TSV).
    max_mixed_fraction: CSV columns without a declared type are numeric when at most this
      fraction of their non-empty values are not numbers (those rows are rejected), else
      string (default 0.01); the columns typed string for mixed values are in the
      ``mixed_string_columns`` property and the run's notes.
    read_options: every setting of the reader (``beam_ml.transforms.options.ReadOptions``:
      work-item and batch sizes, newlines in values, ...), handed to it whole; the
      parameters above, when given, replace the fields of the same name, and the
      ``schema`` input replaces its schema.
    allow_empty: succeed when an input pattern has no rows (downstream components then
      fail on the empty split, naming it).
    span, rolling, span_range: which spans a pattern with ``{SPAN}`` or a date reads (at
      most one; default the latest span): that span, the latest ``rolling`` spans, or
      the spans ``first..last``. Each span is read at its latest ``{VERSION}``.
    """

    from beam_ml.transforms.ingestion import (
        IngestExamples,
        IngestFileGroups,
        SplitConfig,
        WriteExamples,
        WriteRejectedRows,
        ingestion_counts,
        mixed_string_columns,
    )
    per_split = isinstance(input_path, dict)
    first = next(iter(input_path.values())) if per_split else input_path
    matched = input_fingerprint(input_path)  # listed before the spans are chosen: what this run saw
    selection = _select_spans(input_path, span, rolling, span_range)
    files = (
        input_path if selection is None
        else {name: chosen.paths for name, chosen in selection.items()} if per_split
        else selection[None].paths
    )
    given = {
        "format": format,
        "column_names": tuple(column_names) if column_names else None,
        "null_values": tuple(null_values) if null_values is not None else None,
        "delimiter": delimiter,
        "max_mixed_fraction": max_mixed_fraction,
        "schema": schema.load() if schema is not None else None,
    }
    base = read_options if read_options is not None else ReadOptions(format=format or guess_format(first))
    options = dataclasses.replace(base, **{name: value for name, value in given.items() if value is not None})
    split = None if per_split else SplitConfig(buckets=splits or DEFAULT_SPLITS, partition_feature=partition_feature)
    if per_split and (splits or partition_feature):
        raise ValueError("per-split input patterns are the splits: do not also pass splits or partition_feature")
    split_names = list(input_path) if per_split else list(split.names)

    # The spans of one pattern are written as file groups of their own (``Examples.span_files``),
    # so Transform can reuse tf.Transform's analysis of a span it saw in an earlier window.
    grouped = selection is not None and not per_split
    with ctx.beam_pipeline() as pipeline:
        if grouped:
            groups = {Examples.span_stem(s.span): s.paths for s in selection[None].spans}
            ingested = pipeline | "Ingest" >> IngestFileGroups(groups, options, split)
            for stem, span_splits in ingested.groups.items():
                _ = span_splits | f"Write[{stem}]" >> WriteExamples(examples.uri, stem=stem)
        else:
            ingested = pipeline | "Ingest" >> IngestExamples(dict(files) if per_split else files, options, split)
            _ = ingested.splits | "Write" >> WriteExamples(examples.uri)
        _ = ingested.rejected | "WriteRejected" >> WriteRejectedRows(examples.rejected_uri)
    counts = ingestion_counts(pipeline.result)

    schema_written = examples.fill_empty_splits(split_names)
    mixed = mixed_string_columns(schema_written) if schema_written is not None else []
    split_rows = {name: examples.count_rows(name) for name in split_names}
    rejected = examples.rejected_rows()
    rows_read = counts.get("rows_read", 0) + len(rejected)
    examples.properties.update(
        splits=split_names,
        split_rows=split_rows,
        rows_read=rows_read,
        rows_rejected=len(rejected),
        format=options.format,
        mixed_string_columns=mixed,
        input_fingerprint=matched,
    )
    if selection is not None:
        chosen = next(iter(selection.values()))
        examples.properties.update(
            span=chosen.span,
            spans=[s.span for s in chosen.spans],
            version=chosen.version,
            input_pattern=str(first) if not per_split else {name: str(p) for name, p in input_path.items()},
        )
        if grouped:
            examples.properties["span_fingerprints"] = {
                str(s.span): _span_fingerprint(s, options, split, schema_written) for s in chosen.spans
            }
        ctx.notes["spans"] = [s.span for s in chosen.spans]
    ctx.notes.update(rows_in=rows_read, rows_out=sum(split_rows.values()), rows_rejected=len(rejected))
    if mixed:
        ctx.notes["string_columns_mixed"] = mixed
    if rejected and len(rejected) > max_rejected_fraction * rows_read:
        shown = "; ".join(f"{r['path']}:{r['line']}: {r['reason']}" for r in rejected[:_SHOWN_REJECTS])
        raise RejectedRowsError(
            f"{len(rejected)} of {rows_read} input rows could not be parsed "
            f"(max_rejected_fraction={max_rejected_fraction}): {shown}"
        )
    if not allow_empty:
        patterns = dict(input_path) if per_split else dict.fromkeys(split_names, input_path)
        empty = [str(patterns[name]) for name in split_names if split_rows[name] == 0 and (per_split or rows_read == 0)]
        if empty:
            raise EmptyInputError(f"no rows in {', '.join(dict.fromkeys(empty))}: give input files with rows, "
                                  "or pass allow_empty=True")



def _span_fingerprint(span: SpanFiles, options: ReadOptions, split: SplitConfig, written: pa.Schema | None) -> str:
    """What makes one span's rows what they are: its files (path, size, modification time, as the
    cache key sees input files), the read and split settings, and the columns the whole window
    was written with (a type widened by another span changes this span's rows too).

    Transform keys tf.Transform's analyzer cache by it: the same span read the same way in
    another window has the same rows in every split.
    """
    from beam_ml import fs

    digest = hashlib.sha256()
    for path in span.paths:
        for matched, size, mtime in fs.match(path):
            digest.update(f"{matched}\0{size}\0{mtime}\0".encode())
    digest.update(repr(options).encode() + b"\0" + repr(split).encode() + b"\0")
    digest.update(written.to_string(show_schema_metadata=True).encode() if written is not None else b"")
    return digest.hexdigest()


def _select_spans(
    input_path: str | dict[str, str], span: int | None, rolling: int | None, span_range: tuple[int, int] | None
) -> dict[str | None, SpanSelection] | None:
    """The spans each pattern reads (key None for a single pattern); None when no pattern has spans."""
    patterns = dict(input_path) if isinstance(input_path, dict) else {None: input_path}
    with_spans = {name: str(p) for name, p in patterns.items() if has_placeholders(str(p))}
    if not with_spans:
        if (span, rolling, span_range) != (None, None, None):
            raise ValueError("span=, rolling= and span_range= select spans of an input_path with {SPAN} "
                             f"or {{YYYY}}/{{MM}}/{{DD}}; {input_path!r} has none")
        return None
    if len(with_spans) != len(patterns):
        raise ValueError(f"every split's pattern needs the same span placeholders, or none: {input_path!r}")
    selection = {name: select_spans(p, span=span, rolling=rolling, span_range=span_range)
                 for name, p in with_spans.items()}
    chosen = {name: [s.span for s in picked.spans] for name, picked in selection.items()}
    if len({tuple(spans) for spans in chosen.values()}) > 1:
        raise ValueError(f"the splits' patterns have different spans: {chosen}; deliver every split of a span")
    return selection
