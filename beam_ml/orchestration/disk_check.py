"""``beam-ml check``: does the disk still hold what the store says is LIVE?

The cache trusts a LIVE artifact's recorded fingerprint; a file edited or
deleted by hand behind the store's back would otherwise be served as if it
were the output the store remembers. For every LIVE artifact this recomputes
the content fingerprint (the artifact type's ``content_fingerprint``, the
function that recorded it) and reports

- missing: the artifact's directory is gone;
- changed: its content no longer has the recorded fingerprint;
- extra: a directory beside LIVE outputs (``<root>/<component>/<output>/``)
  that no LIVE or in-progress artifact owns, such as a half-published output
  left by a crash.

It reads every byte of every LIVE artifact: a check, not something a run does.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from beam_ml import fs
from beam_ml.artifacts import artifact_type
from beam_ml.metadata.store import LIVE, PENDING, MetadataStore


@dataclass(frozen=True)
class DiskProblem:
    kind: str  # missing, changed, extra, store
    uri: str
    detail: str

    def __str__(self) -> str:
        return f"{self.kind}: {self.uri}: {self.detail}" if self.uri else f"{self.kind}: {self.detail}"


def check_store_and_disk(store: MetadataStore) -> list[DiskProblem]:
    """The store's own integrity problems, then each LIVE artifact compared with its files."""
    problems = [DiskProblem("store", "", text) for text in store.integrity_check()]
    live = store.artifacts_in_state(LIVE)
    for artifact in live:
        if not fs.exists(artifact.uri):
            problems.append(DiskProblem("missing", artifact.uri, f"artifact {artifact.id} ({artifact.type_name}) is LIVE but not on disk"))
            continue
        if artifact.fingerprint is None:
            continue
        found = artifact_type(artifact.type_name).content_fingerprint(artifact.uri)
        if found != artifact.fingerprint:
            problems.append(
                DiskProblem(
                    "changed", artifact.uri,
                    f"artifact {artifact.id} ({artifact.type_name}) has fingerprint {found[:12]}…, "
                    f"recorded {artifact.fingerprint[:12]}…",
                )
            )
    owned = {_norm(a.uri) for a in live} | {_norm(a.uri) for a in store.artifacts_in_state(PENDING)}
    parents = sorted({os.path.dirname(_norm(a.uri)) for a in live if fs.is_local(a.uri)})
    for parent in parents:
        if not os.path.isdir(parent):
            continue
        for name in sorted(os.listdir(parent)):
            path = os.path.join(parent, name)
            if path not in owned:
                problems.append(DiskProblem("extra", path, "no LIVE or running artifact owns it"))
    return problems


def _norm(uri: str) -> str:
    return os.path.normpath(fs.local_path(uri)) if fs.is_local(uri) else uri.rstrip("/")
