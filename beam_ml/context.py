"""What a running component may ask of the framework besides its inputs and parameters.

A component declares an argument of type ``ExecutionContext`` to receive one:
it builds Beam pipelines from the run's options, finds earlier artifacts in
the metadata store (a baseline model, the previous span's statistics) and
records row counts that the runner checks across stages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import apache_beam as beam

    from beam_ml.metadata.store import MetadataStore


@dataclass
class ExecutionContext:
    pipeline_name: str
    pipeline_root: str
    run_id: int
    execution_id: int
    component_id: str
    beam_args: tuple[str, ...]
    store: MetadataStore
    tmp_dir: str
    #: Extra facts the component wants kept with its execution (e.g. Dataflow job ids).
    notes: dict[str, Any] = field(default_factory=dict)

    def beam_pipeline(self, **overrides: Any) -> beam.Pipeline:
        """A Beam pipeline built from the run's options (``-- --runner ...`` on the CLI).

        On Dataflow, running it records the job's id, project and region in
        ``notes["dataflow_jobs"]`` (``beam_ml.runners.dataflow_jobs``).
        """
        from beam_ml.runners.dataflow_jobs import recording_pipeline
        from beam_ml.runners.options import pipeline_options

        options = pipeline_options(self.beam_args, job_name=self._job_name(), **overrides)
        return recording_pipeline(options, self.notes)

    def _job_name(self) -> str:
        name = f"{self.pipeline_name}-{self.component_id}-{self.execution_id}"
        return name.lower().replace("_", "-")


@dataclass(frozen=True)
class ResolverContext:
    """What a resolver (``beam_ml.resolvers``) may read: the store, and which pipeline and run asks."""

    pipeline_name: str
    run_id: int
    store: MetadataStore
