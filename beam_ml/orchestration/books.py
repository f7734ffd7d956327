"""Row conservation: the runner checks that every stage's row counts balance.

Beam runners have been seen to lose bundles without an error (TFDV's Beam
path on DirectRunner multi-process reported 1,336,200 of 1,500,200 examples
in 2 of 8 runs). Our stages count what they really wrote (Parquet footers,
the combiner's own count) and record it as artifact properties; these checks
compare the counts across stages and fail the run, naming both numbers, when
they disagree:

- ingestion: rows read = rows written to the splits + rows rejected;
- statistics: ``num_examples`` of each split = the rows the Examples artifact
  says that split holds (when the statistics are not sampled).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beam_ml.dsl import Pipeline
    from beam_ml.orchestration.runner import NodeResult


def check_row_conservation(result: NodeResult, results: Mapping[str, NodeResult], pipeline: Pipeline) -> list[str]:
    problems: list[str] = []
    for name, artifact in result.outputs.items():
        props = artifact.properties
        if {"rows_read", "split_rows", "rows_rejected"} <= props.keys():
            written = sum(props["split_rows"].values())
            if props["rows_read"] != written + props["rows_rejected"]:
                problems.append(
                    f"{result.node_id}.{name}: read {props['rows_read']} rows but wrote {written} "
                    f"({props['split_rows']}) and rejected {props['rows_rejected']}"
                )
        if "num_examples" in props and props.get("sample_rate", 1.0) == 1.0:
            for input_name, source in result.inputs.items():
                split_rows = source.properties.get("split_rows")
                if not split_rows:
                    continue
                for split, counted in props["num_examples"].items():
                    if split in split_rows and counted != split_rows[split]:
                        problems.append(
                            f"{result.node_id}.{name}: split {split!r} has num_examples {counted}, but "
                            f"{input_name} (artifact {source.id}) holds {split_rows[split]} rows"
                        )
    return problems
