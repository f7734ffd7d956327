"""StatisticsGen: Examples → per-split statistics, ``Split-<name>/FeatureStats.pb`` as TFX writes them.

All splits are summarised in one Beam pipeline, each by one pass of
``GenerateStatistics`` (one CombineFn over record batches).

Beam is imported only when the component runs: a pipeline file imports this
module, and a fully cached rerun must not pay for Beam.
"""

from __future__ import annotations

import dataclasses

from beam_ml import fs
from beam_ml.artifacts import Examples, Schema, Statistics
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, component
from beam_ml.transforms.options import StatsOptions


@component
def StatisticsGen(
    examples: Input[Examples],
    statistics: Output[Statistics],
    ctx: ExecutionContext,
    *,
    splits: list[str] | None = None,
    sample_rate: float | None = None,
    seed: int | None = None,
    num_top_values: int | None = None,
    num_histogram_buckets: int | None = None,
    num_quantiles_histogram_buckets: int | None = None,
    weight_feature: str | None = None,
    slice_features: list[str] | None = None,
    schema: Input[Schema] | None = None,
    stats_options: StatsOptions | None = None,
) -> None:
    """Compute TFDV-compatible statistics for each split (default: every split of the Examples).

    ``stats_options`` holds every setting of the statistics (``epsilon``, thresholds,
    histogram sizes, ...; ``beam_ml.transforms.options.StatsOptions``, TFDV's defaults),
    handed to ``GenerateStatistics`` whole; the parameters above, when given, replace the
    fields of the same name.

    With a schema, its claims are read as TFDV's ``StatsOptions.schema``: an INT or FLOAT
    feature it marks categorical gets string statistics (unique, top values), and one with
    an ``image_domain`` is reported as BYTES.
    """
    import apache_beam as beam

    from beam_ml.components._writers import WriteProto
    from beam_ml.components.examples_io import read_split
    from beam_ml.transforms.statistics import GenerateStatistics

    names = splits or examples.splits
    unknown = sorted(set(names) - set(examples.splits))
    if unknown:
        raise ValueError(f"Examples has no split(s) {unknown}; it has {examples.splits}")
    examples.require_rows(names, "StatisticsGen", each=False)
    given = {
        "sample_rate": sample_rate,
        "seed": seed,
        "num_top_values": num_top_values,
        "num_histogram_buckets": num_histogram_buckets,
        "num_quantiles_histogram_buckets": num_quantiles_histogram_buckets,
        "weight_feature": weight_feature,
        "slice_features": tuple(slice_features) if slice_features is not None else None,
        "schema": schema.load() if schema is not None else None,
    }
    base = stats_options if stats_options is not None else StatsOptions()
    options = dataclasses.replace(base, **{name: value for name, value in given.items() if value is not None})
    with ctx.beam_pipeline() as pipeline:
        for split in names:
            fs.makedirs(statistics.split_uri(split))
            _ = (
                read_split(pipeline, examples, split)
                | f"Stats[{split}]" >> GenerateStatistics(options)
                | f"WriteStats[{split}]" >> beam.ParDo(WriteProto(statistics.stats_uri(split)))
            )
    num_examples = {split: int(statistics.load(split).datasets[0].num_examples) for split in names}
    statistics.properties.update(splits=names, num_examples=num_examples, sample_rate=options.sample_rate)
    ctx.notes.update(rows_in=sum(num_examples.values()) if options.sample_rate == 1.0 else None, rows_rejected=0)
