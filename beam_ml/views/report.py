"""``beam-ml report``: one self-contained HTML file with everything a run produced.

The run's graph and timeline, then each execution (parameters, cache key,
error) followed by the views of its outputs. Links inside the file are
anchors; Plotly's JavaScript is inlined, so the file opens anywhere, offline,
and can be attached to a review.
"""

from __future__ import annotations

from beam_ml.metadata.store import MetadataStore
from beam_ml.views.artifacts import artifact_view
from beam_ml.views.base import View, page
from beam_ml.views.execution import execution_view
from beam_ml.views.run import run_view


def run_report(store: MetadataStore, run_id: int) -> str:
    """The report page of run ``run_id`` as one HTML string."""
    run = store.get_run(run_id)
    views: list[View] = [run_view(store, run_id)]
    shown: set[int] = set()
    for execution in store.executions_of_run(run_id):
        views.append(execution_view(store, execution.id, with_log=execution.state not in ("COMPLETE", "CACHED")))
        for artifact in store.outputs_of(execution.id).values():
            if artifact.id in shown:
                continue
            shown.add(artifact.id)
            view = artifact_view(artifact, store)
            views.append(View(view.title, view.html, anchor=f"artifact-{artifact.id}"))
    return page(f"beam-ml report: {run.label}", views)
