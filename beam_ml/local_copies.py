"""Local directories for the libraries that only open local paths: TensorFlow, tf.Transform, Keras, TFLite.

The framework reads and writes artifacts through Beam's FileSystems
(``beam_ml.fs``), so any Beam filesystem can be the pipeline root, configured
by the run's Beam options. TensorFlow has a file layer of its own: it opens
local paths and gs:// itself, but s3:// only with tensorflow-io installed, and
never with the endpoint and keys of the run's Beam options. So where
TensorFlow opens a SavedModel or a tf.Transform output (Trainer, Tuner,
Evaluator, BulkInferrer, InfraValidator, Pusher, the model handlers) it gets
``local_copy(uri)``: the artifact downloaded once per process through
FileSystems; and where it writes one (Transform, Trainer) it writes into
``local_output(uri)``, a scratch directory uploaded through FileSystems when
the block succeeds. URIs TensorFlow opens natively (local paths, gs://) are
used as they are: a local root copies nothing.

Note: Transform's transform_fn is written by the Beam workers; a scratch
directory only reaches the artifact when the workers share this machine's
disk (DirectRunner, Prism). On Flink or Dataflow with an s3:// root, install
tensorflow-io so TensorFlow writes s3:// itself.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator

from beam_ml import fs

#: Schemes TensorFlow's own file layer opens without tensorflow-io.
_TENSORFLOW_SCHEMES = ("gs://",)
_COPY_CHUNK = 8 << 20

_copies: dict[str, str] = {}
_copies_lock = threading.Lock()


def tensorflow_opens(uri: str) -> bool:
    """Whether TensorFlow opens ``uri`` itself (a local path, gs://)."""
    return fs.is_local(uri) or uri.startswith(_TENSORFLOW_SCHEMES)


def _as_tensorflow_path(uri: str) -> str:
    return fs.local_path(uri) if fs.is_local(uri) else uri


def local_copy(uri: str) -> str:
    """A path TensorFlow can open holding the files under ``uri``: ``uri`` itself when TensorFlow
    opens it, else a local copy made once per process (published artifacts never change)
    and removed when the process exits."""
    if tensorflow_opens(uri):
        return _as_tensorflow_path(uri)
    with _copies_lock:
        if uri not in _copies:
            target = tempfile.mkdtemp(prefix="beam_ml_copy_")
            atexit.register(shutil.rmtree, target, True)
            download(uri, target)
            _copies[uri] = target
        return _copies[uri]


@contextlib.contextmanager
def local_output(uri: str) -> Iterator[str]:
    """A directory for TensorFlow to write into whose files end up under ``uri``: ``uri`` itself
    when TensorFlow opens it, else a scratch directory uploaded when the block succeeds."""
    if tensorflow_opens(uri):
        fs.makedirs(uri)
        yield _as_tensorflow_path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="beam_ml_output_") as scratch:
        yield scratch
        upload(scratch, uri)


@contextlib.contextmanager
def local_scratch(uri: str) -> Iterator[str]:
    """A temporary directory for TensorFlow: ``uri`` when TensorFlow opens it, else a local one
    (removed after the block)."""
    if tensorflow_opens(uri):
        fs.makedirs(uri)
        yield _as_tensorflow_path(uri)
        return
    with tempfile.TemporaryDirectory(prefix="beam_ml_scratch_") as scratch:
        yield scratch


def download(uri: str, local_dir: str) -> None:
    """Copy every file under ``uri`` (any Beam filesystem) into ``local_dir``, keeping relative paths."""
    prefix = uri.rstrip("/") + "/"
    files = [path for path in fs.list_files(uri) if path.startswith(prefix)]
    if not files:
        raise FileNotFoundError(f"no files under {uri}")
    for source in files:
        target = os.path.join(local_dir, *source[len(prefix) :].split("/"))
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with fs.open_read(source) as reader, open(target, "wb") as writer:
            shutil.copyfileobj(reader, writer, _COPY_CHUNK)


def upload(local_dir: str, uri: str) -> None:
    """Copy every file under ``local_dir`` to the same relative path under ``uri`` (any Beam filesystem)."""
    from apache_beam.io.filesystems import FileSystems

    for directory, _, names in os.walk(local_dir):
        for name in sorted(names):
            source = os.path.join(directory, name)
            relative = os.path.relpath(source, local_dir).split(os.sep)
            target = fs.join(uri, *relative)
            fs.makedirs(target.rsplit("/", 1)[0])
            with open(source, "rb") as reader, FileSystems.create(target) as writer:
                shutil.copyfileobj(reader, writer, _COPY_CHUNK)
