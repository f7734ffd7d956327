"""A throwaway PostgreSQL server for the store tests: installed if missing, started, stopped.

Debian's ``postgresql`` package provides the binaries (installed with
apt-get when running as root and they are absent). The server runs from a
fresh data directory on a free loopback port with trust authentication and
is stopped when the test session ends. ``start()`` returns None, with the
reason in ``PostgresUnavailable``, only when the binaries cannot be had.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass


class PostgresUnavailable(RuntimeError):
    """PostgreSQL cannot be installed or started here; the message says why."""


@dataclass
class PostgresServer:
    bin_dir: str
    data_dir: str
    port: int
    run_as: str | None

    @property
    def url(self) -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"

    def create_database(self, name: str) -> str:
        """A new empty database on this server; returns its URL."""
        self._run([os.path.join(self.bin_dir, "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", name])
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self._run([os.path.join(self.bin_dir, "pg_ctl"), "-D", self.data_dir, "-m", "fast", "-w", "stop"], check=False)
        shutil.rmtree(os.path.dirname(self.data_dir), ignore_errors=True)

    def _run(self, command: list[str], check: bool = True) -> subprocess.CompletedProcess:
        if self.run_as:
            command = ["runuser", "-u", self.run_as, "--", *command]
        return subprocess.run(command, check=check, capture_output=True, text=True, timeout=120)


def _find_bin_dir() -> str | None:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return os.path.dirname(candidates[0])
    initdb = shutil.which("initdb")
    return os.path.dirname(initdb) if initdb else None


def _install() -> None:
    if os.geteuid() != 0:
        raise PostgresUnavailable("PostgreSQL is not installed and installing it needs root (apt-get install postgresql)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "postgresql"]):
        result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900, check=False)
        if result.returncode != 0:
            raise PostgresUnavailable(f"{' '.join(command)} failed: {result.stderr.strip()[-500:]}")


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start() -> PostgresServer:
    """Install (if needed) and start a private server; raises PostgresUnavailable if impossible."""
    bin_dir = _find_bin_dir()
    if bin_dir is None:
        _install()
        bin_dir = _find_bin_dir()
        if bin_dir is None:
            raise PostgresUnavailable("apt-get installed postgresql but no initdb was found")
    # The server refuses to run as root; Debian's package creates the postgres user.
    run_as = "postgres" if os.geteuid() == 0 else None
    base = tempfile.mkdtemp(prefix="beam-ml-pg-")
    data_dir = os.path.join(base, "data")
    if run_as:
        shutil.chown(base, run_as)
    server = PostgresServer(bin_dir, data_dir, _free_port(), run_as)
    server._run([os.path.join(bin_dir, "initdb"), "-D", data_dir, "-U", "postgres", "--auth=trust", "-E", "UTF8"])
    options = f"-p {server.port} -k {base} -c listen_addresses=127.0.0.1 -c fsync=off"
    started = server._run(
        [os.path.join(bin_dir, "pg_ctl"), "-D", data_dir, "-o", options, "-l", os.path.join(base, "log"), "-w", "start"],
        check=False,
    )
    if started.returncode != 0:
        log_path = os.path.join(base, "log")
        log = ""
        if os.path.exists(log_path):
            with open(log_path) as handle:
                log = handle.read()
        raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()} {log[-500:]}")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                return server
        except OSError:
            time.sleep(0.2)
    raise PostgresUnavailable(f"PostgreSQL did not accept connections on port {server.port}")
