"""The few file-system operations the framework itself needs (publish, check, fingerprint).

Paths with a scheme (gs://, s3://, ...) go through Beam's ``FileSystems`` so a
pipeline root on object storage works unchanged. Local paths take a direct
``os`` route instead: importing Beam costs about two seconds, and a fully
cached rerun, which only checks that outputs exist, must not pay it.

**Options.** Beam's object-store file systems take their settings (S3
endpoint, keys, region; GCS project) from pipeline options. Beam hands them
over only when a Beam pipeline is built, which is too late for the launcher's
own calls (the cache check, publishing). :func:`configure` records the run's
Beam flags; the first call that touches a remote path applies them to
``FileSystems``, so every call the framework makes sees them, from the first
cache check on.

**Fingerprints.** On an object store a file's checksum is kept by the store as
the file is written (S3's ETag, GCS's CRC32C), so :func:`fingerprint` combines
each file's name, size and that checksum and never downloads a byte. A local
disk keeps no checksum; there the bytes are hashed (a local read, no network).
"""

from __future__ import annotations

import glob
import hashlib
import os
import shutil
import threading
from collections.abc import Iterator, Sequence

_CHUNK = 1 << 20
#: How long the launcher waits for a remote pipeline root to answer before failing the run.
REACH_TIMEOUT_S = 30.0

_options: dict[str, object] = {"args": (), "applied": False}
_options_lock = threading.Lock()


class StoreUnreachable(RuntimeError):
    """A remote path's store did not answer in time; the message names the path and the endpoint."""


def configure(beam_args: Sequence[str]) -> None:
    """Use these Beam flags (``--s3_endpoint_url``, keys, ...) for every later remote file-system call."""
    with _options_lock:
        _options["args"] = tuple(beam_args)
        _options["applied"] = False


def endpoint_of(uri: str) -> str:
    """Where a remote path's store is reached, for messages: the S3 endpoint flag, or the scheme's default."""
    scheme = uri.split("://", 1)[0]
    if scheme == "s3":
        for arg in _options["args"]:
            if arg.startswith("--s3_endpoint_url="):
                return arg.split("=", 1)[1]
        return os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or "AWS S3 (default endpoint)"
    return f"the {scheme}:// service"


def is_local(uri: str) -> bool:
    """True for plain paths and file:// URIs; False for any other scheme."""
    return "://" not in uri or uri.startswith("file://")


def local_path(uri: str) -> str:
    """The file-system path of a local URI (file:// stripped)."""
    return uri[len("file://") :] if uri.startswith("file://") else uri


def _beam_fs():
    from apache_beam.io.filesystems import FileSystems

    if not _options["applied"]:
        from apache_beam.options.pipeline_options import PipelineOptions

        with _options_lock:
            FileSystems.set_options(PipelineOptions(list(_options["args"])))
            _share_s3_clients()
            _options["applied"] = True
    return FileSystems


class _SharedS3Clients:
    """Stands in for the ``boto3`` module inside Beam's S3 client: one boto3 client per settings, with limits.

    Beam makes a new boto3 session and client for every S3 operation, and
    each loads botocore's service model again (0.3 to 0.8 s here): measured
    on the penguin data stages, 74 clients took 63 of the run's 91 seconds.
    boto3 clients are thread-safe, so one per distinct settings serves every
    call. Each is made with bounded retries and timeouts, so a store that
    stops answering fails the step instead of hanging for minutes.
    """

    def __init__(self, boto3_module) -> None:
        self._boto3 = boto3_module
        self._clients: dict[tuple, object] = {}
        self._lock = threading.Lock()
        self.session = self  # Beam calls ``boto3.session.Session()``

    def Session(self) -> _SharedS3Clients:  # boto3's name
        return self

    def client(self, **settings):
        from botocore.config import Config

        key = tuple(sorted((name, repr(value)) for name, value in settings.items()))
        with self._lock:
            if key not in self._clients:
                limits = Config(connect_timeout=10, read_timeout=120, retries={"max_attempts": 4, "mode": "standard"})
                self._clients[key] = self._boto3.session.Session().client(**settings, config=limits)
            return self._clients[key]


def _share_s3_clients() -> None:
    try:
        from apache_beam.io.aws.clients.s3 import boto3_client
    except ImportError:  # Beam without its aws extra: S3 paths fail in Beam with its own message
        return
    if boto3_client.boto3 is not None and not isinstance(boto3_client.boto3, _SharedS3Clients):
        boto3_client.boto3 = _SharedS3Clients(boto3_client.boto3)


def check_reachable(uri: str, timeout: float | None = None) -> None:
    """Fail within ``timeout`` seconds, naming the endpoint, when a remote path's store does not answer.

    Beam's object-store clients retry for many minutes on a dead endpoint;
    a run must instead stop early with a message that says where it looked.
    """
    if is_local(uri):
        return
    timeout = REACH_TIMEOUT_S if timeout is None else timeout
    outcome: dict[str, BaseException | None] = {}

    def probe() -> None:
        try:
            _beam_fs().exists(uri)
            outcome["error"] = None
        except BaseException as error:  # reported below, in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=probe, name="beam-ml-reach", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" not in outcome:
        raise StoreUnreachable(
            f"{uri}: {endpoint_of(uri)} did not answer within {timeout:.0f}s; check the endpoint "
            "(--s3_endpoint_url for S3) and the network, then run again"
        )
    error = outcome["error"]
    if error is not None:
        raise StoreUnreachable(f"{uri}: {endpoint_of(uri)} failed: {type(error).__name__}: {error}") from error


def join(base: str, *parts: str) -> str:
    if is_local(base):
        return os.path.join(base, *parts)
    return _beam_fs().join(base, *parts)


def exists(uri: str) -> bool:
    """Whether a file or a directory exists; on an object store a "directory" is a prefix with a file under it."""
    if is_local(uri):
        return os.path.exists(local_path(uri))
    fs = _beam_fs()
    if fs.exists(uri):
        return True
    found = fs.match([uri.rstrip("/") + "/**"], limits=[1])
    return bool(found and found[0].metadata_list)


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
    copy_tree(src, dst)
    remove_tree(src)


def copy_tree(src: str, dst: str) -> None:
    """Copy every file under ``src`` to the same relative name under ``dst`` (an object store's "rename" half)."""
    sources = list(list_files(src))
    if sources:
        _beam_fs().copy(sources, [dst + s[len(src) :] for s in sources])


def remove_tree(uri: str) -> None:
    """Delete a directory and everything under it; missing is not an error."""
    if is_local(uri):
        shutil.rmtree(local_path(uri), ignore_errors=True)
        return
    files = list(list_files(uri))
    if _beam_fs().exists(uri):
        files.append(uri)
    if files:
        _beam_fs().delete(files)


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


def stored_checksum(uri: str) -> str:
    """The checksum an object store recorded when the file was written (S3 ETag, GCS CRC32C); no data is read."""
    return _beam_fs().checksum(uri)


def fingerprint(uri: str) -> str:
    """A content fingerprint of a file or a directory tree: relative names, sizes and checksums.

    It keys the cache of everything downstream, so it must change when any
    byte changes and must not change when the same content is written again
    under another directory name. On an object store each file counts with
    the size and checksum the store recorded as it was written (no byte is
    downloaded); on a local disk its bytes are hashed.
    """
    digest = hashlib.sha256()
    for rel, path, size in _files_with_sizes(uri):
        digest.update(rel.encode() + b"\0")
        update_with_file(digest, path, size)
        digest.update(b"\0")
    return digest.hexdigest()


def _files_with_sizes(uri: str) -> list[tuple[str, str, int]]:
    """(name relative to ``uri``, full path, size) of a file or of every file under a directory, sorted."""
    if is_local(uri):
        if os.path.isfile(local_path(uri)):
            return [(os.path.basename(local_path(uri)), uri, os.path.getsize(local_path(uri)))]
        base = local_path(uri)
        return [(os.path.relpath(p, base), p, os.path.getsize(p)) for p in list_files(uri)]
    found = [(path[len(uri) :], path, size) for path, size, _ in match(uri.rstrip("/") + "/**")]
    if not found:
        found = [(uri.rsplit("/", 1)[-1], path, size) for path, size, _ in match(uri) if path == uri]
    return found


def update_with_file(digest, path: str, size: int | None = None) -> None:
    """Feed one file's content identity to ``digest``: its bytes on a local disk, size and stored checksum elsewhere."""
    if is_local(path):
        with open_read(path) as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        return
    if size is None:
        size = _beam_fs().match([path])[0].metadata_list[0].size_in_bytes
    digest.update(f"size={size};checksum={stored_checksum(path)}".encode())
