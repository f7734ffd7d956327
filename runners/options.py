"""Turning a run's Beam arguments into ``PipelineOptions``.

The CLI passes Beam's own flags through unchanged (``--runner``,
``--direct_num_workers``, ``--flink_master``, ``--project`` ...), so a Beam user
learns nothing new; this module only adds what each component run needs on
top (a job name that says which component of which run it is).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from apache_beam.options.pipeline_options import GoogleCloudOptions, PipelineOptions


def pipeline_options(beam_args: Sequence[str], *, job_name: str | None = None, **overrides: Any) -> PipelineOptions:
    """Options for one component's Beam pipeline; ``overrides`` win over ``beam_args``."""
    options = PipelineOptions(list(beam_args), **overrides)
    if job_name and not options.view_as(GoogleCloudOptions).job_name:
        options.view_as(GoogleCloudOptions).job_name = job_name
    return options
