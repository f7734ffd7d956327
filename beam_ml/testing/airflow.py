"""Apache Airflow in a venv of its own, installed from PyPI and cached: for tests and local trials.

    python -m beam_ml.testing.airflow install   # create (or find) the venv; prints the `airflow` path
    python -m beam_ml.testing.airflow path      # print it; exit 1 if not installed yet

**Why a venv of its own.** Airflow pins a large tree (SQLAlchemy, FastAPI,
protobuf, ...) that cannot share a venv with TensorFlow and Beam. It needs
nothing of beam-ml either: an exported DAG file imports only Airflow, and each
task runs ``beam-ml run-node`` with the project's own Python
(``beam_ml.orchestration.airflow_export``).

**Where it comes from.** ``pip install apache-airflow==AIRFLOW_VERSION`` with
the resolved tree pinned by ``airflow-<version>-constraints.txt`` beside this
module (so every machine gets the same versions), into
``~/.cache/beam-ml/airflow/<version>/venv`` (``$BEAM_ML_CACHE/airflow`` if
set): a few minutes the first time. ``$BEAM_ML_AIRFLOW`` names an ``airflow``
executable installed elsewhere. Concurrent callers install once (a lock file
beside the venv); the venv counts only once pip succeeded (it is built under a
staging name and renamed).

**An Airflow home per use.** :func:`airflow_home` prepares a temporary
``AIRFLOW_HOME`` with its SQLite database migrated (``airflow db migrate``) and
the example DAGs off; :meth:`AirflowHome.run` runs the ``airflow`` CLI there
(``dags list``, ``dags test DAG_ID``) on a DAGs folder of the caller's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from beam_ml import tool_cache

AIRFLOW_VERSION = "3.3.2"
#: The whole tree pip resolved for AIRFLOW_VERSION on Python 3.11 (``pip freeze`` of the venv).
CONSTRAINTS = Path(__file__).resolve().parent / f"airflow-{AIRFLOW_VERSION}-constraints.txt"
ENV_AIRFLOW = "BEAM_ML_AIRFLOW"
#: Longest the venv may take to install (a large tree on 2 busy cores).
INSTALL_TIMEOUT_S = 1800
#: Longest one Airflow CLI command may take (``dags test`` of a whole pipeline included).
COMMAND_TIMEOUT_S = 1800


class AirflowUnavailable(RuntimeError):
    """Airflow could not be found or installed; the message says what to do."""


def cache_dir() -> Path:
    return tool_cache.cache_dir("airflow")


def venv_path(version: str = AIRFLOW_VERSION, cache: Path | None = None) -> Path:
    """Where the venv for ``version`` lives in the cache (it may not be there yet)."""
    return (cache or cache_dir()) / version / "venv"


def install_commands(version: str = AIRFLOW_VERSION) -> str:
    """The shell commands that install the venv by hand."""
    venv = venv_path(version)
    return (
        f"{sys.executable} -m venv {venv} && {venv}/bin/python -m pip install "
        f"apache-airflow=={version} -c {CONSTRAINTS}"
    )


def find_airflow(version: str = AIRFLOW_VERSION) -> Path | None:
    """``$BEAM_ML_AIRFLOW`` if set, else the cached venv's ``airflow``, else None."""
    override = os.environ.get(ENV_AIRFLOW)
    if override:
        if not os.access(override, os.X_OK):
            raise AirflowUnavailable(f"${ENV_AIRFLOW} names {override}, which is not an executable file")
        return Path(override)
    cached = venv_path(version) / "bin" / "airflow"
    return cached if os.access(cached, os.X_OK) else None


def ensure_airflow(version: str = AIRFLOW_VERSION, cache: Path | None = None) -> Path:
    """The ``airflow`` executable: found (see :func:`find_airflow`) or installed from PyPI into the cache."""
    found = find_airflow(version) if cache is None else None
    if found is not None:
        return found
    venv = venv_path(version, cache)
    target = venv / "bin" / "airflow"
    if os.access(target, os.X_OK):
        return target
    venv.parent.mkdir(parents=True, exist_ok=True)
    with tool_cache.install_lock(venv.parent / ".install.lock"):
        if os.access(target, os.X_OK):  # installed by whoever held the lock before us
            return target
        _install(version, venv)
    return target


def _install(version: str, venv: Path) -> None:
    # The venv is built where it will live (its scripts' shebangs name their interpreter's path);
    # until pip succeeds it has no bin/airflow, and a failed attempt is removed.
    shutil.rmtree(venv, ignore_errors=True)
    deadline = time.monotonic() + INSTALL_TIMEOUT_S
    constraints = ["-c", str(CONSTRAINTS)] if version == AIRFLOW_VERSION and CONSTRAINTS.is_file() else []
    python = str(venv / "bin" / "python")
    try:
        _step([sys.executable, "-m", "venv", str(venv)], deadline)
        _step([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
               f"apache-airflow=={version}", *constraints], deadline)  # fmt: skip
    except BaseException:
        shutil.rmtree(venv, ignore_errors=True)
        raise


def _step(command: list[str], deadline: float) -> None:
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
            timeout=max(1.0, deadline - time.monotonic()),
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise AirflowUnavailable(f"`{' '.join(command)}` took over {INSTALL_TIMEOUT_S}s; run `{install_commands()}` by hand") from error
    if done.returncode != 0:
        lines = [line for line in (done.stderr or done.stdout).splitlines() if line.strip()]
        raise AirflowUnavailable(
            f"`{' '.join(command)}` failed (exit {done.returncode}): {' | '.join(lines[-6:])[-800:] or 'no output'}; "
            f"PyPI must be reachable; fix that and run `{install_commands()}`"
        )


@dataclass(frozen=True)
class AirflowHome:
    """An ``AIRFLOW_HOME`` with a migrated database, reading DAG files from ``dags_folder``."""

    airflow: Path
    home: Path
    dags_folder: Path

    def env(self) -> dict[str, str]:
        """The environment the ``airflow`` CLI runs with: this home, its DAGs folder, no example DAGs."""
        return {
            **os.environ,
            "AIRFLOW_HOME": str(self.home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(self.dags_folder),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__UNIT_TEST_MODE": "False",
        }

    def run(self, *args: str, timeout: float = COMMAND_TIMEOUT_S) -> subprocess.CompletedProcess:
        """``airflow ARGS...`` in this home; the completed process (output captured, never raises on exit status)."""
        return subprocess.run(
            [str(self.airflow), *args], env=self.env(), capture_output=True, text=True, check=False,
            stdin=subprocess.DEVNULL, cwd=self.home, timeout=timeout,
        )  # fmt: skip


def airflow_home(dags_folder: Path, home: Path | None = None, airflow: Path | None = None) -> AirflowHome:
    """A fresh Airflow home (a new temporary directory unless ``home``) whose database is migrated."""
    airflow = airflow or ensure_airflow()
    home = home or Path(tempfile.mkdtemp(prefix="beam-ml-airflow-"))
    home.mkdir(parents=True, exist_ok=True)
    prepared = AirflowHome(airflow, home, dags_folder)
    done = prepared.run("db", "migrate")
    if done.returncode != 0:
        tail = (done.stderr or done.stdout)[-800:]
        raise AirflowUnavailable(f"`airflow db migrate` in {home} failed (exit {done.returncode}): {tail}")
    return prepared


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_ml.testing.airflow", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help=f"install apache-airflow=={AIRFLOW_VERSION} into the cache (once per version)")
    commands.add_parser("path", help="print the cached `airflow` path; exit 1 if it is not installed yet")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            found = find_airflow()
            print(found if found else f"not installed yet: {venv_path() / 'bin' / 'airflow'}")
            return 0 if found else 1
        began = time.monotonic()
        path = ensure_airflow()
        print(f"Airflow {AIRFLOW_VERSION} at {path} ({time.monotonic() - began:.1f}s)")
        return 0
    except AirflowUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
