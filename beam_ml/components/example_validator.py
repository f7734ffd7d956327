"""ExampleValidator: statistics checked against a schema → ``Split-<name>/SchemaDiff.pb`` (Anomalies).

Optional baselines add TFDV's two comparisons: drift against a previous
span's statistics (``beam_ml.resolvers.PreviousSpanStatistics`` finds them in
the store) and skew against serving statistics, with the thresholds the
schema sets per feature (``drift_comparator``/``skew_comparator``). ``on_anomalies="fail"`` stops the pipeline;
``"warn"`` (TFX's behaviour) records and logs them.

The validation transforms (which import Beam) are imported only when the
component runs: a pipeline file imports this module, and a fully cached rerun
must not pay for Beam.
"""

from __future__ import annotations

import logging
from typing import Literal

from beam_ml.artifacts import Anomalies, Schema, Statistics
from beam_ml.context import ExecutionContext
from beam_ml.dsl import Input, Output, component

_log = logging.getLogger(__name__)


class AnomaliesFound(ValueError):
    """The data does not match the schema and the validator was told to fail."""


@component
def ExampleValidator(
    statistics: Input[Statistics],
    schema: Input[Schema],
    anomalies: Output[Anomalies],
    ctx: ExecutionContext,
    previous_statistics: Input[Statistics] | None = None,
    serving_statistics: Input[Statistics] | None = None,
    *,
    splits: list[str] | None = None,
    environment: str | None = None,
    on_anomalies: Literal["warn", "fail"] = "warn",
) -> None:
    """Validate each split; drift compares a split with the same split of ``previous_statistics``,
    skew compares it with the first split of ``serving_statistics``."""
    from beam_ml.transforms.validation import validate_statistics

    names = splits or statistics.splits
    expected = schema.load()
    found: dict[str, dict[str, str]] = {}
    for split in names:
        previous = None
        if previous_statistics is not None and split in previous_statistics.splits:
            previous = previous_statistics.load(split)
        serving = serving_statistics.load(serving_statistics.splits[0]) if serving_statistics else None
        result = validate_statistics(
            statistics.load(split),
            expected,
            previous_statistics=previous,
            serving_statistics=serving,
            environment=environment,
        )
        anomalies.write(split, result)
        found[split] = {
            # The descriptions carry the figures ("present in 126 of 128 rows (98.4%); ..."), not the titles.
            name: "; ".join(reason.description or reason.short_description for reason in info.reason)
            or info.description
            for name, info in sorted(result.anomaly_info.items())
        }
    anomalies.properties.update(splits=names, anomalies={split: len(f) for split, f in found.items()})
    # Which statistics drift was measured against (None: no previous span, so no drift check).
    anomalies.properties["previous_statistics_id"] = previous_statistics.id if previous_statistics else None
    counted = statistics.properties.get("num_examples", {})
    ctx.notes.update(rows_in=sum(counted.get(split, 0) for split in names), rows_rejected=0)
    problems = [f"{split}: {name}: {what}" for split, per in found.items() for name, what in per.items()]
    if problems and on_anomalies == "fail":
        raise AnomaliesFound(f"{len(problems)} anomalies: " + "; ".join(problems))
    for problem in problems:
        _log.warning("ExampleValidator: %s", problem)
