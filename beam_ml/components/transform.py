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
    from beam_ml.local_copies import local_output, local_scratch
    from beam_ml.transforms import tf_transform

    splits = examples.splits
    if analyze_split not in splits:
        raise ValueError(f"split to analyze {analyze_split!r} is not among the examples' splits {splits}")
    examples.require_rows(analyze_split, "Transform")
    fn = module_file.get(preprocessing_fn)
    schema_proto = schema.load()
    # tf.Transform writes with TensorFlow's file layer: a local directory where it cannot open the URI.
    with (
        local_output(transform_graph.uri) as transform_dir,
        local_scratch(fs.join(ctx.tmp_dir, "tft")) as tft_tmp,
        ctx.beam_pipeline() as pipeline,
    ):
        tf_transform.transform_examples(
            pipeline,
            split_uris={name: examples.split_uri(name) for name in splits},
            arrow_schema=examples.arrow_schema(analyze_split),
            schema=schema_proto,
            preprocessing_fn=fn,
            transform_output_dir=transform_dir,
            transformed_examples_uri=transformed_examples.uri,
            temp_dir=tft_tmp,
            analyze_split=analyze_split,
        )
    transformed_examples.fill_empty_splits(splits)
    split_rows = {name: transformed_examples.count_rows(name) for name in splits}
    rows_in = {name: examples.count_rows(name) for name in splits}
    if split_rows != rows_in:
        raise RuntimeError(f"Transform wrote {split_rows} rows per split for {rows_in} rows read")
    transformed_examples.properties.update(splits=list(splits), split_rows=split_rows, format="parquet")
    transform_graph.properties["analyze_split"] = analyze_split
    ctx.notes.update(rows_in=sum(rows_in.values()), rows_out=sum(split_rows.values()), rows_rejected=0)
