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
- ``updated_analyzer_cache``: tf.Transform's analyzer cache of this analysis
  (``TransformCache``), one dataset per span of the analyzed split.

Analyzer cache (TFX's ``analyzer_cache`` input): give the previous Transform's
cache through a resolver, and the spans a rolling window shares with the
previous window are not analyzed again:

    cache = LatestArtifact(TransformCache)
    transform = Transform(examples=gen.outputs.examples, schema=..., module_file=...,
                          analyzer_cache=cache.outputs.artifact)

Each span of the Examples (``Examples.span_files``) is its own tf.Transform
dataset, keyed by the span's fingerprint (its files and how ExampleGen read
them) and the Schema; Examples not read as spans are one dataset keyed by
their fingerprint. tf.Transform keys every cache entry by the analyzer's part
of the graph, so a cache from another ``preprocessing_fn`` is not used. The
outputs are the same with or without a cache. The resolved cache is an input
of the execution like any other: the first run after the cache appears runs
Transform again (from cache, quickly), later unchanged runs are served whole
from the metadata store.

TensorFlow is imported only when the component runs.
"""

from __future__ import annotations

import hashlib

from beam_ml import fs
from beam_ml.artifacts import Examples, Schema, TransformCache, TransformGraph
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, UserModule, component


@component
def Transform(
    examples: Input[Examples],
    schema: Input[Schema],
    transform_graph: Output[TransformGraph],
    transformed_examples: Output[Examples],
    updated_analyzer_cache: Output[TransformCache],
    analyzer_cache: Input[TransformCache] | None = None,
    *,
    module_file: UserModule,
    preprocessing_fn: str = "preprocessing_fn",
    analyze_split: str = "train",
    ctx: ExecutionContext,
) -> None:
    """Analyze ``analyze_split`` with the module's ``preprocessing_fn``; transform every split."""
    from beam_ml.local_copies import local_copy, local_output, local_scratch
    from beam_ml.transforms import tf_transform

    splits = examples.splits
    if analyze_split not in splits:
        raise ValueError(f"split to analyze {analyze_split!r} is not among the examples' splits {splits}")
    examples.require_rows(analyze_split, "Transform")
    fn = module_file.get(preprocessing_fn)
    schema_proto = schema.load()
    arrow_schema = examples.arrow_schema(analyze_split)
    config = tf_transform.tensor_adapter_config(arrow_schema, schema_proto)
    datasets = analysis_datasets(examples, analyze_split, tensor_bytes(config))
    # tf.Transform writes with TensorFlow's file layer: a local directory where it cannot open the URI.
    with (
        local_output(transform_graph.uri) as transform_dir,
        local_output(updated_analyzer_cache.uri) as cache_dir,
        local_scratch(fs.join(ctx.tmp_dir, "tft")) as tft_tmp,
        ctx.beam_pipeline() as pipeline,
    ):
        plan = tf_transform.transform_examples(
            pipeline,
            split_uris={name: examples.split_uri(name) for name in splits},
            arrow_schema=arrow_schema,
            schema=schema_proto,
            preprocessing_fn=fn,
            transform_output_dir=transform_dir,
            transformed_examples_uri=transformed_examples.uri,
            temp_dir=tft_tmp,
            analyze_split=analyze_split,
            analysis_datasets=datasets,
            cache_input_dir=local_copy(analyzer_cache.uri) if analyzer_cache is not None else None,
            cache_output_dir=cache_dir,
        )
    updated_analyzer_cache.write_index(plan.index)
    updated_analyzer_cache.properties.update(dataset_keys=sorted(plan.index), from_cache=plan.from_cache,
                                             analyzed=plan.analyzed)
    ctx.notes.update(analyzer_cache_used=plan.from_cache, analyzed=plan.analyzed)
    transformed_examples.fill_empty_splits(splits)
    split_rows = {name: transformed_examples.count_rows(name) for name in splits}
    rows_in = {name: examples.count_rows(name) for name in splits}
    if split_rows != rows_in:
        raise RuntimeError(f"Transform wrote {split_rows} rows per split for {rows_in} rows read")
    transformed_examples.properties.update(splits=list(splits), split_rows=split_rows, format="parquet")
    transform_graph.properties["analyze_split"] = analyze_split
    ctx.notes.update(rows_in=sum(rows_in.values()), rows_out=sum(split_rows.values()), rows_rejected=0)


def analysis_datasets(examples: Examples, split: str, tensors: bytes) -> dict[str, str]:
    """{tf.Transform dataset key: file glob in ``split``}: one dataset per span when every file of
    the split belongs to a span, else the whole split.

    A key names the data as tf.Transform will see it: the rows (a span's fingerprint, or the
    Examples') and how the Schema turns them into tensors (``tensors``: the TFXIO columns and
    tensor representations; a default value filled in is data the analyzers see, not part
    of their graph). Other parts of the Schema (domains, presence) do not change the key.
    """
    def key(*parts: str) -> str:
        return hashlib.sha256("\0".join(parts).encode() + b"\0" + tensors).hexdigest()[:24]

    spans = examples.span_fingerprints
    if spans:
        groups = {span: examples.span_files(split, span) for span in sorted(spans)}
        grouped = {path for paths in groups.values() for path in paths}
        if grouped == set(examples.files(split)):
            return {f"{split}-span-{span}-{key(spans[span], split)}": f"{Examples.span_stem(span)}-*.parquet"
                    for span, paths in groups.items() if paths}
    rows = examples.fingerprint or fs.fingerprint(examples.split_uri(split))
    return {f"{split}-{key(rows, split)}": "*.parquet"}


def tensor_bytes(config) -> bytes:
    """How a ``tfx_bsl`` TensorAdapterConfig turns columns into tensors, as bytes for a key."""
    return config.arrow_schema.to_string().encode() + b"".join(
        name.encode() + b"\0" + representation.SerializeToString(deterministic=True)
        for name, representation in sorted(config.tensor_representations.items()))
