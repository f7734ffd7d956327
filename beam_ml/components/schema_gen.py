"""SchemaGen (infer a Schema from statistics) and ImportSchema (take a user's edited schema).

Both write ``schema.pbtxt``, the tensorflow_metadata text format TFX and TFDV read.
``beam_ml.transforms.schema`` (which imports Beam) is imported only when a
component runs: a fully cached rerun must not pay for Beam.
"""

from __future__ import annotations

from beam_ml import fs
from beam_ml.artifacts import Schema, Statistics, load_schema_file
from beam_ml.dsl import FilePattern, Input, Output, component


@component
def SchemaGen(
    statistics: Input[Statistics],
    schema: Output[Schema],
    *,
    split: str = "train",
    infer_feature_shape: bool = True,
    max_string_domain_size: int = 100,
) -> None:
    """Infer a schema from one split's statistics (the training split, as TFX does)."""
    from beam_ml.transforms.schema import infer_schema

    if split not in statistics.splits:
        raise ValueError(f"Statistics has no split {split!r}; it has {statistics.splits}")
    statistics.require_rows(split, "SchemaGen")
    inferred = infer_schema(
        statistics.load(split),
        infer_feature_shape=infer_feature_shape,
        max_string_domain_size=max_string_domain_size,
    )
    schema.write(inferred)
    schema.properties.update(features=len(inferred.feature), inferred_from=split)


@component
def ImportSchema(schema: Output[Schema], *, schema_file: FilePattern) -> None:
    """Use a schema a person wrote or edited; it is parsed, so a broken file fails here."""
    if not fs.exists(schema_file):
        raise FileNotFoundError(f"schema file not found: {schema_file}")
    imported = load_schema_file(schema_file)
    schema.write(imported)
    schema.properties.update(features=len(imported.feature), imported_from=str(schema_file))
