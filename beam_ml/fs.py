"""The few file-system operations the framework itself needs (publish, check, fingerprint).

Paths with a scheme (gs://, s3://, ...) go through Beam's ``FileSystems`` so a
pipeline root on object storage works unchanged. Local paths take a direct
``os`` route instead: importing Beam costs about two seconds, and a fully
cached rerun, which only checks that outputs exist, must not pay it.
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
from collections.abc import Iterator

_CHUNK = 1 << 20


def is_local(uri: str) -> bool:
    """True for plain paths and file:// URIs; False for any other scheme."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    """The file-system path of a local URI (file:// stripped)."""
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _beam_fs():
    from apache_beam.io.filesystems import FileSystems

    return FileSystems


def join(base: str, *parts: str) -> str:
    if is_local(base):
        return os.path.join(base, *parts)
    return _beam_fs().join(base, *parts)


def exists(uri: str) -> bool:
    if is_local(uri):
        return os.path.exists(local_path(uri))
    return _beam_fs().exists(uri)


def makedirs(uri: str) -> None:
    if is_local(uri):
        os.makedirs(local_path(uri), exist_ok=True)
    # Object stores have no directories: a prefix exists once a file is under it.


def rename(src: str, dst: str) -> None:
    """Move a directory into place; on a local disk this is one atomic rename."""
    if is_local(src):
        os.makedirs(os.path.dirname(local_path(dst)), exist_ok=True)
        os.rename(local_path(src), local_path(dst))
        return
    fs = _beam_fs()
    sources = list(list_files(src))
    fs.rename(sources, [dst + s[len(src) :] for s in sources])


def remove_tree(uri: str) -> None:
    """Delete a directory and everything under it; missing is not an error."""
    if is_local(uri):
        shutil.rmtree(local_path(uri), ignore_errors=True)
        return
    fs = _beam_fs()
    if fs.exists(uri):
        fs.delete([uri])


def list_files(uri: str) -> Iterator[str]:
    """Every file under ``uri`` (recursively), sorted, as full URIs."""
    if is_local(uri):
        root = local_path(uri)
        found = []
        for dirpath, _, filenames in os.walk(root):
            found.extend(os.path.join(dirpath, name) for name in filenames)
        yield from sorted(found)
        return
    fs = _beam_fs()
    pattern = uri.rstrip("/") + "/**"
    for result in fs.match([pattern]):
        yield from sorted(m.path for m in result.metadata_list)


def match(pattern: str) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of every file matching a glob, sorted by path."""
    if is_local(pattern):
        paths = sorted(p for p in glob.glob(local_path(pattern), recursive=True) if os.path.isfile(p))
        return [(p, (st := os.stat(p)).st_size, st.st_mtime_ns) for p in paths]
    found = []
    for result in _beam_fs().match([pattern]):
        found.extend((m.path, m.size_in_bytes, int(m.last_updated_in_seconds * 1e9)) for m in result.metadata_list)
    return sorted(found)


def open_read(uri: str):
    if is_local(uri):
        return open(local_path(uri), "rb")
    return _beam_fs().open(uri)


def fingerprint(uri: str) -> str:
    """A content hash of a file or a directory tree: relative names and bytes.

    It keys the cache of everything downstream, so it must change when any
    byte changes and must not change when the same content is written again
    under another directory name.
    """
    digest = hashlib.sha256()
    if is_local(uri) and os.path.isfile(local_path(uri)):
        files = [uri]
        base = os.path.dirname(local_path(uri))
    else:
        files = list(list_files(uri))
        base = local_path(uri) if is_local(uri) else uri
    for path in files:
        rel = os.path.relpath(path, base) if is_local(uri) else path[len(base) :]
        digest.update(rel.encode() + b"\0")
        with open_read(path) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        digest.update(b"\0")
    return digest.hexdigest()
