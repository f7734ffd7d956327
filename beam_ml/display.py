"""Turning an artifact into something a person can read in a terminal (``beam-ml show``).

One renderer per artifact type, registered by type name; types without one
get a listing of their files.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from beam_ml import fs
from beam_ml.metadata.store import ArtifactRecord

Renderer = Callable[[ArtifactRecord], Iterable[Any]]
_RENDERERS: dict[str, Renderer] = {}

_MAX_FILES = 50


def renderer(type_name: str) -> Callable[[Renderer], Renderer]:
    """Register the function that renders artifacts of ``type_name``."""

    def register(fn: Renderer) -> Renderer:
        _RENDERERS[type_name] = fn
        return fn

    return register


def render_artifact(artifact: ArtifactRecord) -> list[Any]:
    """Rich renderables for an artifact: its type's view, or its files."""
    if not fs.exists(artifact.uri):
        return [f"[red]the artifact's files are gone: {artifact.uri}[/]"]
    fn = _RENDERERS.get(artifact.type_name, _list_files)
    return list(fn(artifact))


def _list_files(artifact: ArtifactRecord) -> Iterable[Any]:
    from rich.table import Table

    table = Table(title="files", title_justify="left", box=None)
    table.add_column("path")
    table.add_column("bytes", justify="right")
    files = list(fs.list_files(artifact.uri))
    for path in files[:_MAX_FILES]:
        size = os.path.getsize(path) if fs.is_local(path) else ""
        table.add_row(path[len(artifact.uri) :].lstrip("/"), str(size))
    if len(files) > _MAX_FILES:
        table.add_row(f"... and {len(files) - _MAX_FILES} more", "")
    yield table
