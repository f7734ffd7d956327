"""A Beam worker pool on this machine: what ``--environment_type EXTERNAL`` sends Python work to.

On a Flink cluster each TaskManager has a Beam worker pool beside it
(``python -m apache_beam.runners.worker.worker_pool_main --service_port=50000``):
the runner asks the pool over the Fn API to start SDK workers, which then
fetch their work from the runner. That is the portable path with the Python
work in processes that are neither the launcher nor the runner, and this
module starts such a pool here so the path can be run on Prism::

    with worker_pool() as pool:
        LocalDagRunner(beam_args=["--runner", "PrismRunner", *pool.beam_args()]).run(pipeline)

    python -m beam_ml.runners.worker_pool --port 50000   # in the foreground, until Ctrl-C

It is Beam's own pool (``worker_pool_main.BeamFnExternalWorkerPoolServicer``
in process mode), served on 127.0.0.1 only: Beam's ``worker_pool_main`` listens
on every interface, right beside a TaskManager and wrong on a laptop. Each
worker it starts is ``python`` as found on the PATH, so the pool's PATH starts
with this interpreter's directory (the project's venv): the workers import the
same beam-ml and Beam as the launcher. The pool and its workers form one
process group, stopped together by the pool's pid; their output goes to a log
file, not the console.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 15.0


class WorkerPoolError(RuntimeError):
    """The worker pool did not come up; the message has the end of its log."""


@dataclass(frozen=True)
class WorkerPool:
    """A running pool: its process id, the port it serves on and its log file."""

    pid: int
    port: int
    log_path: Path

    @property
    def address(self) -> str:
        """What ``--environment_config`` takes."""
        return f"localhost:{self.port}"

    def beam_args(self) -> list[str]:
        """The Beam flags that send a pipeline's Python work to this pool."""
        return ["--environment_type", "EXTERNAL", "--environment_config", self.address]

    def stop(self) -> None:
        stop_worker_pool(self.pid)


def start_worker_pool(port: int | None = None, *, log_dir: str | Path | None = None) -> WorkerPool:
    """Start a pool on ``port`` (a free one if None) with this interpreter; return once it accepts connections."""
    port = port or free_port()
    log_dir = Path(log_dir or tempfile.mkdtemp(prefix="beam-ml-worker-pool-"))
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"worker-pool-{port}.log"
    env = dict(os.environ)
    bin_dir = os.path.dirname(sys.executable)
    env["PATH"] = os.pathsep.join([bin_dir, env.get("PATH", "")])
    env["PYTHONUNBUFFERED"] = "1"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "beam_ml.runners.worker_pool", "--port", str(port)],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
        )  # fmt: skip
    pool = WorkerPool(process.pid, port, log_path)
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise WorkerPoolError(f"the worker pool exited with {process.returncode} on start: {_tail(log_path)}")
        if _accepts(port):
            return pool
        time.sleep(0.2)
    stop_worker_pool(process.pid)
    raise WorkerPoolError(f"the worker pool did not listen on port {port} within {_READY_TIMEOUT_S:.0f}s: {_tail(log_path)}")


def stop_worker_pool(pid: int, timeout: float = _STOP_TIMEOUT_S) -> None:
    """Stop the pool started as ``pid`` and the workers it started (its process group): SIGTERM, then SIGKILL."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _group_alive(pid):
            break
        time.sleep(0.1)
    else:
        with suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    with suppress(ChildProcessError):
        os.waitpid(pid, 0)  # reap it when it is our child


@contextmanager
def worker_pool(port: int | None = None, *, log_dir: str | Path | None = None) -> Iterator[WorkerPool]:
    """A pool for the duration of a ``with`` block."""
    pool = start_worker_pool(port, log_dir=log_dir)
    try:
        yield pool
    finally:
        pool.stop()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie leader still counts as the group; reap it if it is our child.
    try:
        done, _ = os.waitpid(pgid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _tail(path: Path, lines: int = 20) -> str:
    text = path.read_text(errors="replace").strip().splitlines() if path.exists() else []
    return "\n".join(text[-lines:]) or "(empty log)"


def serve(port: int, host: str = "127.0.0.1") -> None:
    """Serve Beam's worker pool (process mode: one ``python`` per worker) on ``host:port`` until interrupted."""
    import grpc
    from apache_beam.portability.api import beam_fn_api_pb2_grpc
    from apache_beam.runners.worker.worker_pool_main import BeamFnExternalWorkerPoolServicer
    from apache_beam.utils import thread_pool_executor

    server = grpc.server(
        thread_pool_executor.shared_unbounded_instance(),
        options=[("grpc.http2.max_pings_without_data", 0), ("grpc.http2.max_ping_strikes", 0)],
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    servicer = BeamFnExternalWorkerPoolServicer(use_process=True, data_buffer_time_limit_ms=-1)
    beam_fn_api_pb2_grpc.add_BeamFnExternalWorkerPoolServicer_to_server(servicer, server)
    server.start()
    print(f"Beam worker pool listening on {host}:{bound} (pid {os.getpid()})", flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        server.wait_for_termination()
    except (KeyboardInterrupt, SystemExit):
        server.stop(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_ml.runners.worker_pool", description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=50000, help="port to serve on (default 50000)")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    args = parser.parse_args(argv)
    serve(args.port, args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
