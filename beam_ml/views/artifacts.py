"""The view of any artifact: its type's renderer, or its properties and files when the type has none."""

from __future__ import annotations

import os

from beam_ml import fs
from beam_ml.metadata.store import ArtifactRecord, MetadataStore
from beam_ml.views.base import View, render

_MAX_FILES = 30


def artifact_view(artifact: ArtifactRecord, store: MetadataStore | None = None) -> View:
    """The view of one artifact (``store`` lets a view find related artifacts: a validator's schema, a blessing)."""
    from beam_ml.views.evaluation import blessing_view, evaluation_view
    from beam_ml.views.schema import anomalies_view, schema_view
    from beam_ml.views.statistics import statistics_view

    if not fs.exists(artifact.uri):
        return View(f"{artifact.type_name} {artifact.id}", render("files.html", artifact=artifact, files=None, gone=True))
    kind = artifact.type_name
    if kind == "Statistics":
        return statistics_view(artifact)
    if kind == "Schema":
        return schema_view(artifact)
    if kind == "Anomalies":
        return anomalies_view(artifact, store)
    if kind == "ModelEvaluation":
        return evaluation_view(artifact, store)
    if kind in ("ModelBlessing", "InfraBlessing", "PushedModel"):
        return blessing_view(artifact)
    files = []
    for path in list(fs.list_files(artifact.uri))[: _MAX_FILES + 1]:
        files.append((path[len(artifact.uri):].lstrip("/"), os.path.getsize(path) if fs.is_local(path) else None))
    return View(f"{kind} {artifact.id}", render("files.html", artifact=artifact, files=files, gone=False, limit=_MAX_FILES))
