"""Where beam-ml keeps what it installs or builds for itself, and the lock that makes each install happen once.

Prism, SeaweedFS, Airflow's venv, Flink and the packages staged for remote
workers are slow to build or download, so each is cached by version under
``~/.cache/beam-ml/<tool>`` (``$BEAM_ML_CACHE/<tool>`` when that is set: tests
point it at an empty directory). Several processes (pytest workers, two
pipelines) may want the same tool at once: :func:`install_lock` lets the first
install it while the others wait, then find it installed.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ENV_CACHE = "BEAM_ML_CACHE"


def cache_dir(tool: str) -> Path:
    """The cache folder of ``tool`` (it may not exist yet)."""
    base = os.environ.get(ENV_CACHE)
    return (Path(base) if base else Path.home() / ".cache" / "beam-ml") / tool


@contextmanager
def install_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on the file ``path`` (created if missing) across processes."""
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
