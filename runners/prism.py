"""Beam's portable reference runner, Prism, built from the Go module proxy and cached.

    python -m beam_ml.runners.prism install    # build (or find) the binary; prints its path
    python -m beam_ml.run run examples/penguin/pipeline.py -- --runner PrismRunner

**Why Prism.** Flink and Dataflow run a Python pipeline through Beam's
portability layer: the pipeline becomes a proto sent over the Job API, and
its Python work runs in SDK harness processes over the Fn API. The
DirectRunner (in-process FnApiRunner) takes none of that route. Prism is
Beam's own runner for that route, small enough to run here, so it is where
beam-ml proves its stages are portable before they meet a cluster.

**Where Prism comes from.** Beam's ``PrismRunner`` downloads a zipped binary
from GitHub at run time when ``--prism_location`` is not given; beam-ml never
lets it. Instead ``go install github.com/apache/beam/sdks/v2/go/cmd/prism@v<beam>``
builds it from the Go module proxy at exactly the installed Beam's version
(about 90 s and 0.5 GB of Go module cache the first time), into
``~/.cache/beam-ml/prism/v<beam>/prism`` (``$BEAM_ML_CACHE/prism`` if set).
``beam_ml.runners.options`` passes that path as ``--prism_location`` whenever
``--runner PrismRunner`` comes without one. ``$BEAM_ML_PRISM`` names a binary
built elsewhere. Without Go on the PATH the run stops with the command to
build it by hand.

**Workers.** ``--environment_type LOOPBACK`` (Beam's default for Prism) runs the
Python work in this process's own worker; ``EXTERNAL`` sends it to a worker
pool, as on a Flink TaskManager: see ``beam_ml.runners.worker_pool``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from beam_ml import tool_cache

PRISM_PACKAGE = "github.com/apache/beam/sdks/v2/go/cmd/prism"
ENV_PRISM = "BEAM_ML_PRISM"
#: Longest a build may take (module download on a slow proxy plus compile on 2 busy cores).
BUILD_TIMEOUT_S = 1800


class PrismUnavailable(RuntimeError):
    """Prism could not be found or built; the message says what to do."""


class GoUnavailable(PrismUnavailable):
    """No Go toolchain on the PATH to build Prism with."""


class ModuleProxyUnreachable(PrismUnavailable):
    """``go install`` could not download Prism's sources from the Go module proxy."""


#: What ``go`` prints when it cannot reach the module proxy (as opposed to a failing compile).
_NETWORK_ERRORS = ("dial tcp", "no such host", "i/o timeout", "connection refused", "connection reset",
                   "proxyconnect", "TLS handshake", "network is unreachable", "Client.Timeout")  # fmt: skip


def prism_version() -> str:
    """The Beam release tag Prism is built at: the installed apache-beam's, ``v2.77.0``."""
    from apache_beam.version import __version__

    return f"v{__version__}"


def cache_dir() -> Path:
    return tool_cache.cache_dir("prism")


def prism_path(version: str | None = None, cache: Path | None = None) -> Path:
    """Where the binary for ``version`` lives in the cache (it may not be there yet)."""
    return (cache or cache_dir()) / (version or prism_version()) / "prism"


def install_command(version: str | None = None, target: Path | None = None) -> str:
    """The shell command that builds Prism into the cache by hand."""
    target = target or prism_path(version)
    return f"GOBIN={target.parent} go install {PRISM_PACKAGE}@{version or prism_version()}"


def find_prism(version: str | None = None) -> Path | None:
    """``$BEAM_ML_PRISM`` if set, else the cached binary, else None."""
    override = os.environ.get(ENV_PRISM)
    if override:
        if not os.access(override, os.X_OK):
            raise PrismUnavailable(f"${ENV_PRISM} names {override}, which is not an executable file")
        return Path(override)
    cached = prism_path(version)
    return cached if os.access(cached, os.X_OK) else None


def ensure_prism(version: str | None = None, cache: Path | None = None) -> Path:
    """The Prism binary: found (see :func:`find_prism`) or built with ``go install`` into the cache.

    Concurrent callers (two test sessions, two runs) build it once: the build
    holds a lock file next to the binary and moves the result into place only
    when it is complete.
    """
    version = version or prism_version()
    found = find_prism(version) if cache is None else None
    if found is not None:
        return found
    target = prism_path(version, cache)
    if os.access(target, os.X_OK):
        return target
    go = shutil.which("go")
    if go is None:
        raise GoUnavailable(
            f"--runner PrismRunner needs Beam's Prism binary ({version}), which beam-ml builds with Go, and `go` is "
            f"not on the PATH: install Go (https://go.dev/doc/install) and run `{install_command(version, target)}` "
            f"(or pass --prism_location PATH to a Prism binary built elsewhere, or set ${ENV_PRISM}=PATH)"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    with tool_cache.install_lock(target.parent / ".build.lock"):
        if os.access(target, os.X_OK):  # built by whoever held the lock before us
            return target
        _build(go, version, target)
    return target


def _build(go: str, version: str, target: Path) -> None:
    staging = target.parent / ".staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    env = {**os.environ, "GOBIN": str(staging)}
    command = [go, "install", f"{PRISM_PACKAGE}@{version}"]
    try:
        done = subprocess.run(
            command, env=env, cwd=staging, capture_output=True, text=True, check=False, timeout=BUILD_TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise PrismUnavailable(f"`go install {PRISM_PACKAGE}@{version}` took over {BUILD_TIMEOUT_S}s; run `{install_command(version, target)}` by hand") from error
    built = staging / "prism"
    if done.returncode != 0 or not built.is_file():
        shutil.rmtree(staging, ignore_errors=True)
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("go: downloading")]
        unreachable = any(marker in done.stderr for marker in _NETWORK_ERRORS)
        raise (ModuleProxyUnreachable if unreachable else PrismUnavailable)(
            f"`go install {PRISM_PACKAGE}@{version}` failed (exit {done.returncode}): "
            f"{' | '.join(lines[-6:])[-800:] or 'no output'}; fix that (the Go module proxy must be reachable: "
            f"GOPROXY={os.environ.get('GOPROXY') or _go_env(go, 'GOPROXY')}) and run `{install_command(version, target)}`"
        )
    built.rename(target)
    shutil.rmtree(staging, ignore_errors=True)


def _go_env(go: str, name: str) -> str:
    done = subprocess.run([go, "env", name], capture_output=True, text=True, check=False)
    return done.stdout.strip() or "unset"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_ml.runners.prism", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="build Prism with `go install` into the cache (once per Beam version)")
    commands.add_parser("path", help="print the cached binary's path; exit 1 if it is not built yet")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            found = find_prism()
            print(found if found else f"not built yet: {prism_path()}")
            return 0 if found else 1
        began = time.monotonic()
        path = ensure_prism()
        print(f"Prism {prism_version()} at {path} ({time.monotonic() - began:.1f}s)")
        return 0
    except PrismUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
