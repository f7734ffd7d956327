"""A real S3 server for tests and local trials: SeaweedFS, built from the Go module proxy and cached.

    python -m beam_ml.testing.seaweedfs install   # build (or find) the `weed` binary; prints its path
    python -m beam_ml.testing.seaweedfs serve     # start one on free ports, print its flags, stop on Ctrl-C

**Why SeaweedFS.** Pipelines that outgrow one machine keep their root on an
object store. SeaweedFS is a real distributed file system (master, volume
servers, filer) with an S3 gateway in front, so the framework's S3 path is
exercised against the same protocol a cloud store speaks (multipart uploads,
copies, listings, ETags), not a mock of it.

**Where it comes from.** ``go install ...@version`` refuses SeaweedFS because
its go.mod has replace directives. So the module is downloaded with
``go mod download`` at :data:`SEAWEEDFS_VERSION` (the version the Go module
proxy serves), copied out of the read-only module cache and built with
``go build ./weed`` inside it: about 5 minutes on two cores the first time.
The binary is cached at ``~/.cache/beam-ml/seaweedfs/<version>/weed``
(``$BEAM_ML_CACHE/seaweedfs`` if set); ``$BEAM_ML_WEED`` names one built
elsewhere. Concurrent callers build once (a lock file beside the binary).

**One process.** ``weed server -s3`` runs master, volume server, filer and
the S3 gateway in one process, on loopback ports picked free here; the data
lives in a temporary directory removed on :meth:`SeaweedS3.stop`.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from beam_ml import tool_cache

SEAWEEDFS_MODULE = "github.com/seaweedfs/seaweedfs"
#: The version the Go module proxy serves (a pseudo-version: SeaweedFS tags are not module versions).
SEAWEEDFS_VERSION = "v0.0.0-20261109003541-7506e5f91cd6"
ENV_WEED = "BEAM_ML_WEED"
#: Longest a build may take (module download plus a compile on 2 busy cores).
BUILD_TIMEOUT_S = 3600
#: Longest the server may take to answer S3 requests after it starts.
START_TIMEOUT_S = 120


class SeaweedUnavailable(RuntimeError):
    """SeaweedFS could not be found, built or started; the message says what to do."""


def cache_dir() -> Path:
    return tool_cache.cache_dir("seaweedfs")


def weed_path(version: str = SEAWEEDFS_VERSION, cache: Path | None = None) -> Path:
    """Where the binary for ``version`` lives in the cache (it may not be there yet)."""
    return (cache or cache_dir()) / version / "weed"


def build_commands(version: str = SEAWEEDFS_VERSION) -> str:
    """The shell commands that build the binary by hand."""
    target = weed_path(version)
    return (
        f"dir=$(go mod download -json {SEAWEEDFS_MODULE}@{version} | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"Dir\"])') "
        f"&& cp -r $dir /tmp/seaweedfs-src && chmod -R u+w /tmp/seaweedfs-src && cd /tmp/seaweedfs-src "
        f"&& mkdir -p {target.parent} && go build -o {target} ./weed"
    )


def find_weed(version: str = SEAWEEDFS_VERSION) -> Path | None:
    """``$BEAM_ML_WEED`` if set, else the cached binary, else None."""
    override = os.environ.get(ENV_WEED)
    if override:
        if not os.access(override, os.X_OK):
            raise SeaweedUnavailable(f"${ENV_WEED} names {override}, which is not an executable file")
        return Path(override)
    cached = weed_path(version)
    return cached if os.access(cached, os.X_OK) else None


def ensure_weed(version: str = SEAWEEDFS_VERSION, cache: Path | None = None) -> Path:
    """The ``weed`` binary: found (see :func:`find_weed`) or built from the Go module proxy into the cache."""
    found = find_weed(version) if cache is None else None
    if found is not None:
        return found
    target = weed_path(version, cache)
    if os.access(target, os.X_OK):
        return target
    go = shutil.which("go")
    if go is None:
        raise SeaweedUnavailable(
            f"the S3 test server (SeaweedFS {version}) is built with Go, and `go` is not on the PATH: install Go "
            f"(https://go.dev/doc/install) and run `{build_commands(version)}`, or set ${ENV_WEED}=PATH"
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
    deadline = time.monotonic() + BUILD_TIMEOUT_S
    try:
        download = _go(go, ["mod", "download", "-json", f"{SEAWEEDFS_MODULE}@{version}"], staging, deadline)
        module_dir = json.loads(download.stdout)["Dir"]
        source = staging / "src"
        # The module cache is read-only; the build writes nothing there, but go refuses a main module it cannot own.
        shutil.copytree(module_dir, source)
        for root, dirs, files in os.walk(source):
            for name in dirs + files:
                path = os.path.join(root, name)
                os.chmod(path, os.stat(path).st_mode | stat.S_IWUSR)
        _go(go, ["build", "-o", str(staging / "weed"), "./weed"], source, deadline)
        (staging / "weed").rename(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _go(go: str, args: list[str], cwd: Path, deadline: float) -> subprocess.CompletedProcess:
    command = [go, *args]
    try:
        done = subprocess.run(
            command, cwd=cwd, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
            timeout=max(1.0, deadline - time.monotonic()),
        )  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise SeaweedUnavailable(f"`go {' '.join(args)}` took over {BUILD_TIMEOUT_S}s; run `{build_commands()}` by hand") from error
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.strip() and not line.startswith("go: downloading")]
        raise SeaweedUnavailable(
            f"`go {' '.join(args)}` failed (exit {done.returncode}): {' | '.join(lines[-6:])[-800:] or 'no output'}; "
            f"the Go module proxy must be reachable; fix that and run `{build_commands()}`"
        )
    return done


def _free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports whose port+10000 is free too (SeaweedFS's gRPC convention)."""
    ports: list[int] = []
    while len(ports) < count:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        if port + 10000 > 65535 or port in ports:
            continue
        try:
            with socket.socket() as grpc_probe:
                grpc_probe.bind(("127.0.0.1", port + 10000))
        except OSError:
            continue
        ports.append(port)
    return ports


@dataclass
class SeaweedS3:
    """A running SeaweedFS with its S3 gateway on loopback; credentials are made up per server."""

    process: subprocess.Popen
    base_dir: str
    s3_port: int
    access_key: str
    secret_key: str
    buckets: list[str] = field(default_factory=list)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.s3_port}"

    def beam_flags(self) -> list[str]:
        """The Beam pipeline flags that point Beam's S3 filesystem at this server."""
        return [
            f"--s3_endpoint_url={self.endpoint}",
            f"--s3_access_key_id={self.access_key}",
            f"--s3_secret_access_key={self.secret_key}",
            "--s3_region_name=us-east-1",
        ]

    def client(self):
        """A boto3 S3 client for this server (for checks a test makes beside Beam)."""
        import boto3

        return boto3.client(
            "s3", endpoint_url=self.endpoint, aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key, region_name="us-east-1",
        )  # fmt: skip

    def create_bucket(self, name: str) -> str:
        """A new empty bucket; returns its ``s3://name`` URL."""
        self.client().create_bucket(Bucket=name)
        self.buckets.append(name)
        return f"s3://{name}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.base_dir, "weed.log")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        shutil.rmtree(self.base_dir, ignore_errors=True)


def start(weed: Path | None = None) -> SeaweedS3:
    """Build (if needed) and start a private SeaweedFS with S3 on free loopback ports."""
    weed = weed or ensure_weed()
    base = tempfile.mkdtemp(prefix="beam-ml-seaweedfs-")
    data = os.path.join(base, "data")
    os.mkdir(data)
    master, volume, filer, s3 = _free_ports(4)
    access_key, secret_key = "beamml" + secrets.token_hex(6), secrets.token_hex(20)
    config = os.path.join(base, "s3.json")
    with open(config, "w") as handle:
        json.dump({"identities": [{"name": "beam-ml", "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                                   "actions": ["Admin", "Read", "List", "Tagging", "Write"]}]}, handle)  # fmt: skip
    command = [
        str(weed), "server", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
        f"-master.port={master}", f"-volume.port={volume}", f"-filer.port={filer}",
        "-s3", f"-s3.port={s3}", f"-s3.config={config}", "-volume.max=0", "-master.volumeSizeLimitMB=64",
    ]  # fmt: skip
    with open(os.path.join(base, "weed.log"), "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=base)
    server = SeaweedS3(process, base, s3, access_key, secret_key)
    try:
        _wait_until_ready(server)
    except BaseException:
        tail = _tail(server.log_path)
        server.stop()
        raise SeaweedUnavailable(f"SeaweedFS S3 did not come up on {server.endpoint} within {START_TIMEOUT_S}s: {tail}") from None
    return server


def _wait_until_ready(server: SeaweedS3) -> None:
    """Until a bucket can be created, written and deleted (the gateway answers before the volumes are ready)."""
    import botocore.exceptions

    deadline = time.monotonic() + START_TIMEOUT_S
    probe = "beam-ml-ready-" + secrets.token_hex(4)
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise SeaweedUnavailable(f"weed exited with {server.process.returncode}")
        try:
            urllib.request.urlopen(server.endpoint, timeout=2).close()
        except urllib.error.HTTPError:
            pass  # it answers: an S3 error for the anonymous request
        except OSError:
            time.sleep(0.3)
            continue
        try:
            client = server.client()
            client.create_bucket(Bucket=probe)
            client.put_object(Bucket=probe, Key="probe", Body=b"ready")
            client.delete_object(Bucket=probe, Key="probe")
            client.delete_bucket(Bucket=probe)
            return
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError):
            time.sleep(0.5)
    raise TimeoutError


def _tail(path: str, chars: int = 800) -> str:
    try:
        with open(path, errors="replace") as handle:
            return handle.read()[-chars:]
    except OSError:
        return "(no log)"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_ml.testing.seaweedfs", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("install", help="build `weed` from the Go module proxy into the cache (once per version)")
    commands.add_parser("path", help="print the cached binary's path; exit 1 if it is not built yet")
    serve = commands.add_parser("serve", help="start a server on free ports, print its Beam flags, stop on Ctrl-C")
    serve.add_argument("--bucket", default="beam-ml", help="bucket to create (default: beam-ml)")
    args = parser.parse_args(argv)
    try:
        if args.command == "path":
            found = find_weed()
            print(found if found else f"not built yet: {weed_path()}")
            return 0 if found else 1
        began = time.monotonic()
        path = ensure_weed()
        if args.command == "install":
            print(f"SeaweedFS {SEAWEEDFS_VERSION} at {path} ({time.monotonic() - began:.1f}s)")
            return 0
        server = start(path)
        try:
            print(f"S3 at {server.endpoint}, bucket {server.create_bucket(args.bucket)}; Beam flags:")
            print(" ".join(server.beam_flags()))
            server.process.wait()
        except KeyboardInterrupt:
            pass
        finally:
            server.stop()
        return 0
    except SeaweedUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
