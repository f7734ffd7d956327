"""Transform: a user's tf.Transform ``preprocessing_fn`` analyzed on the train split, applied to every split.

    transform = Transform(examples=gen.outputs.examples, schema=schema_gen.outputs.schema,
                          module_file="penguin_transform.py")

The module defines ``preprocessing_fn(inputs) -> outputs`` (tf.Transform's
contract). Features with a ``shape`` in the Schema arrive as dense
``[batch, 1]`` tensors; features that may be missing arrive as
``SparseTensor``s of dense shape ``[batch, 1]`` (densify them with a default,
as TFX's taxi example does).

Outputs:
- ``transform_graph``: the tf.Transform output directory, readable with
  ``tft.TFTransformOutput(uri)``: ``transform_fn/`` (a SavedModel with the
  vocabularies under ``assets/``) and ``transformed_metadata/schema.pbtxt``.
- ``transformed_examples``: ``Split-<name>/*.parquet`` for every input split;
  outputs with one value per row are flat columns, others list columns.

TensorFlow is imported only when the component runs.
"""

from __future__ import annotations

from beam_ml import fs
from beam_ml.artifacts import Examples, Schema, TransformGraph
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, UserModule, component


def examples_arrow_schema(examples: Examples, split: str):
    """The Arrow schema of one split's Parquet files (the first file's; all share it)."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    from beam_ml.training import split_files

    files = split_files(examples.split_uri(split))
    if not files:
        raise FileNotFoundError(f"no Parquet files in split {split!r} of {examples.uri}")
    with FileSystems.open(files[0]) as handle:
        return pq.read_schema(handle)


@component
def Transform(
    examples: Input[Examples],
    schema: Input[Schema],
    transform_graph: Output[TransformGraph],
    transformed_examples: Output[Examples],
    *,
    module_file: UserModule,
    preprocessing_fn: str = "preprocessing_fn",
    analyze_split: str = "train",
    ctx: ExecutionContext,
) -> None:
    """Analyze ``analyze_split`` with the module's ``preprocessing_fn``; transform every split."""
    from beam_ml.components.examples_io import count_rows
    from beam_ml.transforms import tf_transform
    from beam_ml.transforms.schema import load_schema

    splits = examples.splits
    if analyze_split not in splits:
        raise ValueError(f"split to analyze {analyze_split!r} is not among the examples' splits {splits}")
    examples.require_rows(analyze_split, "Transform")
    fn = module_file.get(preprocessing_fn)
    schema_proto = load_schema(fs.join(schema.uri, Schema.FILE_NAME))
    with ctx.beam_pipeline() as pipeline:
        tf_transform.transform_examples(
            pipeline,
            split_uris={name: examples.split_uri(name) for name in splits},
            arrow_schema=examples_arrow_schema(examples, analyze_split),
            schema=schema_proto,
            preprocessing_fn=fn,
            transform_output_dir=transform_graph.uri,
            transformed_examples_uri=transformed_examples.uri,
            temp_dir=fs.join(ctx.tmp_dir, "tft"),
            analyze_split=analyze_split,
        )
    _fill_empty_splits(transformed_examples, splits)
    split_rows = {name: count_rows(transformed_examples.uri, name) for name in splits}
    rows_in = {name: count_rows(examples.uri, name) for name in splits}
    if split_rows != rows_in:
        raise RuntimeError(f"Transform wrote {split_rows} rows per split for {rows_in} rows read")
    transformed_examples.properties.update(splits=list(splits), split_rows=split_rows, format="parquet")
    transform_graph.properties["analyze_split"] = analyze_split
    ctx.notes.update(rows_in=sum(rows_in.values()), rows_out=sum(split_rows.values()), rows_rejected=0)


def _fill_empty_splits(examples: Examples, splits: list[str]) -> None:
    """A split with no rows still gets one (empty) Parquet file, with the other splits' columns."""
    import pyarrow.parquet as pq
    from apache_beam.io.filesystems import FileSystems

    from beam_ml.training import split_files

    files = {name: split_files(examples.split_uri(name)) for name in splits}
    written = next((paths[0] for paths in files.values() if paths), None)
    if written is None:
        return
    with FileSystems.open(written) as handle:
        arrow_schema = pq.read_schema(handle)
    for name, paths in files.items():
        if not paths:
            with FileSystems.create(fs.join(examples.split_uri(name), "data-00000-of-00001.parquet")) as handle:
                pq.write_table(arrow_schema.empty_table(), handle)
