"""Where log output goes: the console is for people, everything else goes to a per-execution file.

While a component runs, ``execution_log`` sends

- every Python ``logging`` record (TensorFlow, absl, Beam, the component's own)
  and every Python warning (``logging.captureWarnings``) to the file, and
- file descriptor 2 to the file too, unless the console asked for everything
  (``-v``): TensorFlow's C++ runtime writes its start-up chatter ("oneDNN
  custom operations are on", "Could not find cuda drivers") straight to fd 2,
  below Python, so only redirecting the descriptor keeps it off the console.

The console itself is configured by ``configure_console``: the command line
calls it once, before any component runs, with a stream on a duplicate of the
original fd 2, so beam-ml's own warnings still reach the terminal while fd 2
points at a log file. Third-party records reach the console only with ``-v``.

The file lives under the pipeline root (``.logs/<component>-<id>.log``) and its
path is recorded with the execution; ``beam-ml logs EXECUTION_ID`` prints it.
A pipeline root on object storage keeps its logs in the local temporary
directory instead: a log is for the machine that ran the step.

Both the console and the file format records through
``redaction.ScrubbingFormatter``: the run's secrets (S3 keys, the store's
password) never reach either, whoever logged them.
"""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from beam_ml import fs
from beam_ml.redaction import ScrubbingFormatter

LOG_DIR = ".logs"
_OWN_LOGGERS = ("beam_ml", "__main__")
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: The console handler ``configure_console`` installed (one per process), under "handler".
_console: dict[str, logging.Handler] = {}


def log_path(pipeline_root: str, pipeline_name: str, component_id: str, token: str) -> str:
    """Where a component execution's log goes (a local path)."""
    if fs.is_local(pipeline_root):
        base = os.path.join(fs.local_path(pipeline_root), LOG_DIR)
    else:
        base = os.path.join(tempfile.gettempdir(), "beam-ml-logs", pipeline_name)
    return os.path.join(base, f"{component_id}-{token}.log")


class _OwnRecords(logging.Filter):
    """beam-ml's own records (and the user's pipeline file's); third-party ones only when verbose."""

    def __init__(self, verbose: bool) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if self.verbose:
            return True
        return record.name.split(".")[0] in _OWN_LOGGERS


def configure_console(verbose: bool = False, stream: TextIO | None = None) -> None:
    """Console logging for the command line: beam-ml's warnings always, third-party ones with ``-v``.

    ``stream`` defaults to a duplicate of the current fd 2, so the console
    keeps working while ``execution_log`` points fd 2 at a file. A
    ``sys.stderr`` that has no file descriptor (a notebook's, pytest's
    ``capsys``) is used as it is: redirecting fd 2 does not reach it.
    """
    root = logging.getLogger()
    if "handler" in _console:
        root.removeHandler(_console.pop("handler"))
    if stream is None:
        stream = _console_stream()
    handler = logging.StreamHandler(stream)
    handler.setLevel(logging.WARNING)
    handler.setFormatter(ScrubbingFormatter("%(levelname)s %(name)s: %(message)s" if verbose else "%(message)s"))
    handler.addFilter(_OwnRecords(verbose))
    root.addHandler(handler)
    _console["handler"] = handler


def _console_stream() -> TextIO:
    """A stream on a duplicate of fd 2 when ``sys.stderr`` is fd 2's, else ``sys.stderr`` itself."""
    sys.stderr.flush()
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # io.UnsupportedOperation is an OSError and a ValueError
        return sys.stderr
    return os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace")


def console_verbose() -> bool:
    """Whether the console asked for third-party output (``-v``); False when no console is configured."""
    handler = _console.get("handler")
    return handler is not None and any(isinstance(f, _OwnRecords) and f.verbose for f in handler.filters)


@contextmanager
def execution_log(path: str, *, redirect_fd2: bool = True) -> Iterator[None]:
    """Send logging records, Python warnings and (``redirect_fd2``) fd 2 to ``path`` while active."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    root = logging.getLogger()
    handler = logging.FileHandler(path, encoding="utf-8", delay=False)
    handler.setLevel(logging.INFO)
    handler.setFormatter(ScrubbingFormatter(_FORMAT))
    previous_level = root.level
    root.addHandler(handler)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        root.setLevel(logging.INFO)
    was_capturing = getattr(logging, "_warnings_showwarning", None) is not None
    logging.captureWarnings(True)
    saved_fd = None
    try:
        with warnings.catch_warnings():
            if redirect_fd2:
                sys.stderr.flush()
                saved_fd = os.dup(2)
                os.dup2(handler.stream.fileno(), 2)
            yield
    finally:
        if saved_fd is not None:
            sys.stderr.flush()
            os.dup2(saved_fd, 2)
            os.close(saved_fd)
        if not was_capturing:
            logging.captureWarnings(False)
        root.removeHandler(handler)
        root.setLevel(previous_level)
        handler.close()
