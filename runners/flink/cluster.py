"""A real local Flink session cluster, and Beam's Flink job server jar, from package registries.

    python -m beam_ml.runners.flink.cluster install   # Flink + job server jar into the cache
    python -m beam_ml.runners.flink.cluster start     # JobManager + TaskManager(s), REST on :8081
    python -m beam_ml.runners.flink.cluster status
    python -m beam_ml.runners.flink.cluster stop

then run any pipeline on it, every Beam stage as a Flink job:

    python -m beam_ml.run run examples/penguin/pipeline.py -- \\
        --runner FlinkRunner --flink_master localhost:8081 --environment_type LOOPBACK

**Where Flink comes from.** Flink ``FLINK_VERSION`` (the newest minor that the
installed Beam publishes a runner for, Beam's own default ``--flink_version``)
from PyPI: the ``apache-flink-libraries`` wheel ships the distribution's
``lib/`` (flink-dist and friends), ``opt/`` and ``plugins/``; the
``apache-flink`` wheel ships ``bin/`` (jobmanager.sh, taskmanager.sh,
config.sh ...) and ``conf/``. Both are fetched with ``pip download`` into the
cache and unpacked side by side into a Flink home; nothing is installed into
the project's venv (``apache-flink`` pins its own apache-beam). Maven Central
does not serve ``flink-dist``, so it cannot be the source. Cost measured here
(2 shared cores): 3-7 s to download and unpack 313 MB of wheels into a 315 MB
Flink home (the wheels are deleted afterwards), 8-30 s (machine idle to busy)
from ``start`` to a registered TaskManager, about 3 GB of memory for the two
JVMs.

**Where the job server comes from.** Beam's ``FlinkRunner`` runs a Java job
server that translates the portable pipeline into a Flink job. Its jar,
``org.apache.beam:beam-runners-flink-<minor>-job-server:<beam version>``, is
copied from Maven Central with ``mvn dependency:copy`` into the cache, and
``beam_ml.runners.options`` passes its path as ``--flink_job_server_jar`` so
Beam never downloads anything at run time. Where Maven Central (or the mirror
you reach) does not serve it, ``install`` says so and you supply a jar you
obtained otherwise: ``install --job-server-jar PATH`` copies it into the cache,
or set ``$BEAM_ML_FLINK_JOB_SERVER_JAR``. The cache is ``~/.cache/beam-ml/flink``
(``$BEAM_ML_CACHE/flink`` if set).

**A remote Flink cluster.** The same command, pointed elsewhere:

    python -m beam_ml.run run PIPELINE -- --runner FlinkRunner \\
        --flink_master flink-jm.example.com:8081 --environment_type EXTERNAL \\
        --environment_config localhost:50000

The job server still runs here (it needs only the REST address) and submits
each component's job to the remote JobManager. The Python work then runs on
the TaskManagers' machines, so the SDK workers must be reachable there:
``--environment_type DOCKER`` (Beam's default for a non-local master, needs
Docker on the TaskManagers and the ``apache/beam_python3.11_sdk:<beam>`` image)
or ``EXTERNAL`` with a Beam worker pool beside each TaskManager
(``python -m apache_beam.runners.worker.worker_pool_main --service_port=50000``
in an environment with beam-ml installed). beam-ml ships its own code and the
user's modules to those workers as a package (``beam_ml.runners.packaging``),
and every path an artifact lives at must be one they can reach: give the
pipeline a root on a shared file system (``--pipeline-root gs://...``,
``s3://...``, or an NFS path mounted everywhere). ``LOOPBACK`` works only when
the TaskManagers can call back to this machine, i.e. a local cluster.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from beam_ml import tool_cache

#: The Flink release run locally: the newest minor in Beam 2.77's PUBLISHED_FLINK_VERSIONS
#: (also Beam's default --flink_version), newest patch on PyPI.
FLINK_VERSION = "2.2.1"
ENV_JOB_SERVER_JAR = "BEAM_ML_FLINK_JOB_SERVER_JAR"
DEFAULT_REST_PORT = 8081
_READY_TIMEOUT_S = 120.0


class FlinkClusterError(RuntimeError):
    """Flink could not be installed, started or reached; the message says why."""


class JobServerJarUnavailable(FlinkClusterError):
    """Beam's Flink job server jar is not in the cache and could not be fetched."""


def flink_minor(version: str = FLINK_VERSION) -> str:
    """``2.2.1`` → ``2.2``: the name Beam gives its Flink runner artifacts (``--flink_version``)."""
    return ".".join(version.split(".")[:2])


def beam_version() -> str:
    from apache_beam.version import __version__

    return __version__


def cache_dir() -> Path:
    return tool_cache.cache_dir("flink")


def job_server_artifact(minor: str | None = None) -> str:
    """Maven coordinates of Beam's Flink job server for the installed Beam."""
    return f"org.apache.beam:beam-runners-flink-{minor or flink_minor()}-job-server:{beam_version()}:jar"


def job_server_jar_path(minor: str | None = None, cache: Path | None = None) -> Path:
    """Where the job server jar lives in the cache (it may not be there yet)."""
    name = f"beam-runners-flink-{minor or flink_minor()}-job-server-{beam_version()}.jar"
    return (cache or cache_dir()) / "jars" / name


def find_job_server_jar(minor: str | None = None) -> Path | None:
    """The job server jar to use: ``$BEAM_ML_FLINK_JOB_SERVER_JAR``, else the cached one, else None."""
    override = os.environ.get(ENV_JOB_SERVER_JAR)
    if override:
        if not Path(override).is_file():
            raise JobServerJarUnavailable(f"${ENV_JOB_SERVER_JAR} names {override}, which is not a file")
        return Path(override)
    cached = job_server_jar_path(minor)
    return cached if cached.is_file() else None


def fetch_job_server_jar(minor: str | None = None, cache: Path | None = None) -> Path:
    """The job server jar, copied from Maven Central with ``mvn dependency:copy`` if not cached."""
    found = find_job_server_jar(minor) if cache is None else None
    target = job_server_jar_path(minor, cache)
    if found is not None:
        return found
    if target.is_file():
        return target
    artifact = job_server_artifact(minor)
    mvn = shutil.which("mvn")
    if mvn is None:
        raise JobServerJarUnavailable(f"Maven (mvn) is not on the PATH, so {artifact} cannot be fetched; {_supply_hint()}")
    target.parent.mkdir(parents=True, exist_ok=True)
    command = [mvn, "-q", "-B", "-U", "dependency:copy", f"-Dartifact={artifact}", f"-DoutputDirectory={target.parent}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0 or not target.is_file():
        lines = [line.strip() for line in (done.stdout + done.stderr).splitlines()]
        reason = next((line for line in lines if "Could not" in line or "not found" in line), None)
        reason = reason or next((line for line in lines if "ERROR" in line), f"mvn exited {done.returncode}")
        raise JobServerJarUnavailable(f"Maven could not fetch {artifact}: {reason[:400]}; {_supply_hint()}")
    return target


def _supply_hint() -> str:
    return (
        "obtain that jar elsewhere and run `python -m beam_ml.runners.flink.cluster install "
        f"--job-server-jar PATH` (or set ${ENV_JOB_SERVER_JAR}=PATH)"
    )


# --- the Flink distribution --------------------------------------------------------------


def flink_home(version: str = FLINK_VERSION, cache: Path | None = None) -> Path:
    return (cache or cache_dir()) / f"flink-{version}" / "pyflink"


def install_flink(version: str = FLINK_VERSION, cache: Path | None = None) -> Path:
    """A Flink home (bin/, conf/, lib/, opt/, plugins/) unpacked from PyPI's wheels; cached."""
    cache = cache or cache_dir()
    home = flink_home(version, cache)
    if (home / "lib" / f"flink-dist-{version}.jar").is_file() and (home / "bin" / "jobmanager.sh").is_file():
        return home
    wheels = cache / "wheels"
    wheels.mkdir(parents=True, exist_ok=True)
    # bin/ and conf/ are the same on every platform: ask for the Linux wheel wherever we are.
    command = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--platform", "manylinux2014_x86_64", "--python-version", "3.11", "--implementation", "cp",
        "-d", str(wheels), f"apache-flink=={version}", f"apache-flink-libraries=={version}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise FlinkClusterError(f"pip could not download Flink {version} from PyPI: {done.stderr.strip()[-600:]}")
    libraries = _one(wheels.glob(f"apache_flink_libraries-{version}-*.whl"))
    scripts = _one(wheels.glob(f"apache_flink-{version}-*.whl"))
    staging = home.parent.with_name(home.parent.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    _unzip(libraries, staging, ("pyflink/lib/", "pyflink/opt/", "pyflink/plugins/", "pyflink/licenses/", "pyflink/bin/"))
    _unzip(scripts, staging, ("pyflink/bin/", "pyflink/conf/"))
    for script in (staging / "pyflink" / "bin").iterdir():
        if script.suffix == ".sh" or script.name == "flink":
            script.chmod(0o755)
    shutil.rmtree(home.parent, ignore_errors=True)
    staging.rename(home.parent)
    libraries.unlink()
    scripts.unlink()
    return home


def _one(paths) -> Path:
    found = sorted(paths)
    if len(found) != 1:
        raise FlinkClusterError(f"expected one downloaded wheel, found {[p.name for p in found]}")
    return found[0]


def _unzip(wheel: Path, target: Path, prefixes: tuple[str, ...]) -> None:
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            if member.filename.startswith(prefixes) and not member.is_dir():
                archive.extract(member, target)


# --- the cluster -------------------------------------------------------------------------


@dataclass
class FlinkCluster:
    """A Flink standalone session cluster on this machine: one JobManager, ``taskmanagers`` TaskManagers.

    Each is its own JVM started by Flink's own ``bin/jobmanager.sh`` /
    ``bin/taskmanager.sh``; configuration, logs and pid files live under
    ``<cache>/run/``.
    """

    rest_port: int = DEFAULT_REST_PORT
    taskmanagers: int = 1
    slots: int = field(default_factory=lambda: os.cpu_count() or 1)
    host: str = "localhost"
    bind_host: str = "localhost"
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "1600m"
    version: str = FLINK_VERSION
    cache: Path = field(default_factory=cache_dir)

    @property
    def address(self) -> str:
        """What ``--flink_master`` takes."""
        return f"{self.host}:{self.rest_port}"

    @property
    def rest_url(self) -> str:
        return f"http://{self.host}:{self.rest_port}"

    @property
    def run_dir(self) -> Path:
        return self.cache / "run"

    @property
    def home(self) -> Path:
        return flink_home(self.version, self.cache)

    def install(self) -> Path:
        return install_flink(self.version, self.cache)

    def start(self) -> dict[str, Any]:
        """Start (or find already running) and wait until every TaskManager has registered."""
        if _java() is None:
            raise FlinkClusterError("no Java found (java on the PATH or $JAVA_HOME): Flink needs Java 11 or 17")
        running = self.overview()
        if running is not None:
            if running.get("flink-version") != self.version:
                raise FlinkClusterError(f"port {self.rest_port} already serves Flink {running.get('flink-version')}, not {self.version}")
            if running.get("taskmanagers", 0) >= self.taskmanagers:
                return running
        self.install()
        conf = self._write_conf()
        env = self._env(conf)
        if running is None:
            self._script("jobmanager.sh", "start", env=env)
        # A JobManager left without TaskManagers (its process group was killed) gets them back.
        for _ in range(self.taskmanagers - (running or {}).get("taskmanagers", 0)):
            self._script("taskmanager.sh", "start", env=env)
        return self._wait_ready()

    def stop(self) -> None:
        if not (self.run_dir / "conf").is_dir():
            return
        env = self._env(self.run_dir / "conf")
        self._script("taskmanager.sh", "stop-all", env=env, check=False)
        self._script("jobmanager.sh", "stop-all", env=env, check=False)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and self.overview() is not None:
            time.sleep(0.5)

    def overview(self) -> dict[str, Any] | None:
        """The REST API's /overview (task managers, slots, job counts), or None when nothing answers."""
        try:
            return self._get("/overview")
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError, ValueError):
            return None

    def jobs(self) -> list[dict[str, Any]]:
        """Every job the JobManager knows: ``jid``, ``name``, ``state``, ``duration`` (ms) ..."""
        return self._get("/jobs/overview")["jobs"]

    def _get(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(self.rest_url + path, timeout=5) as response:
            return json.load(response)

    def _write_conf(self) -> Path:
        import yaml

        conf = self.run_dir / "conf"
        shutil.rmtree(conf, ignore_errors=True)
        shutil.copytree(self.home / "conf", conf)
        for name in ("log", "pid", "tmp"):
            (self.run_dir / name).mkdir(parents=True, exist_ok=True)
        settings = yaml.safe_load((conf / "config.yaml").read_text()) or {}
        flat = {
            "jobmanager.rpc.address": self.host,
            "jobmanager.bind-host": self.bind_host,
            "jobmanager.memory.process.size": self.jobmanager_memory,
            "taskmanager.host": self.host,
            "taskmanager.bind-host": self.bind_host,
            "taskmanager.numberOfTaskSlots": self.slots,
            "taskmanager.memory.process.size": self.taskmanager_memory,
            "parallelism.default": self.slots * self.taskmanagers,
            "rest.address": self.host,
            "rest.bind-address": self.bind_host,
            "rest.port": self.rest_port,
            "io.tmp.dirs": str(self.run_dir / "tmp"),
            "env.pid.dir": str(self.run_dir / "pid"),
            "env.log.dir": str(self.run_dir / "log"),
        }
        for key, value in flat.items():
            _set_nested(settings, key, value)
        (conf / "config.yaml").write_text(yaml.safe_dump(settings, sort_keys=True))
        return conf

    def _env(self, conf: Path) -> dict[str, str]:
        env = dict(os.environ)
        env.update(
            FLINK_HOME=str(self.home),
            FLINK_CONF_DIR=str(conf),
            FLINK_LOG_DIR=str(self.run_dir / "log"),
            FLINK_PID_DIR=str(self.run_dir / "pid"),
        )
        java = _java()
        if java and "JAVA_HOME" not in env:
            env["JAVA_HOME"] = str(Path(java).resolve().parent.parent)
        return env

    def _script(self, name: str, action: str, *, env: dict[str, str], check: bool = True) -> None:
        done = subprocess.run(
            ["bash", str(self.home / "bin" / name), action],
            env=env, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL,
        )  # fmt: skip
        if check and done.returncode != 0:
            raise FlinkClusterError(f"{name} {action} failed ({done.returncode}): {(done.stdout + done.stderr).strip()[-800:]}")

    def _wait_ready(self) -> dict[str, Any]:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        last = None
        while time.monotonic() < deadline:
            last = self.overview()
            if last is not None and last.get("taskmanagers", 0) >= self.taskmanagers:
                return last
            if not self._alive():
                break
            time.sleep(0.5)
        self.stop()
        raise FlinkClusterError(f"Flink did not come up on {self.rest_url} (last overview: {last}); logs: {self._log_tail()}")

    def _alive(self) -> bool:
        pids = []
        for pid_file in (self.run_dir / "pid").glob("*.pid"):
            pids += [int(p) for p in pid_file.read_text().split() if p.strip().isdigit()]
        return any(_pid_alive(pid) for pid in pids)

    def _log_tail(self, lines: int = 15) -> str:
        tails = []
        for log in sorted((self.run_dir / "log").glob("*")):
            text = log.read_text(errors="replace").splitlines()
            errors = [line for line in text if "ERROR" in line or "Exception" in line][-lines:]
            tails.append(f"\n--- {log.name}\n" + "\n".join(errors or text[-lines:]))
        return "".join(tails) or "(no logs)"


def _set_nested(settings: dict[str, Any], key: str, value: Any) -> None:
    """Set ``a.b.c`` in a nested mapping, dropping a flat spelling of the same key."""
    settings.pop(key, None)
    parts = key.split(".")
    node = settings
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _java() -> str | None:
    home = os.environ.get("JAVA_HOME")
    if home and (Path(home) / "bin" / "java").is_file():
        return str(Path(home) / "bin" / "java")
    return shutil.which("java")


def _disk_usage(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


# --- command line ------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m beam_ml.runners.flink.cluster", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    install = commands.add_parser("install", help="download Flink and Beam's Flink job server jar into the cache")
    install.add_argument("--job-server-jar", help="a job server jar obtained elsewhere, copied into the cache")
    start = commands.add_parser("start", help="start a JobManager and TaskManager(s); install first if needed")
    start.add_argument("--port", type=int, default=DEFAULT_REST_PORT, help="REST port (default 8081)")
    start.add_argument("--taskmanagers", type=int, default=1)
    start.add_argument("--slots", type=int, default=os.cpu_count() or 1, help="slots per TaskManager (default: cores)")
    start.add_argument("--host", default="localhost", help="the name other machines reach this one by")
    start.add_argument("--bind-host", default="localhost", help="0.0.0.0 to accept connections from other machines")
    for sub in (commands.add_parser("status", help="what the REST API reports"), commands.add_parser("stop", help="stop every Flink process started here")):
        sub.add_argument("--port", type=int, default=DEFAULT_REST_PORT)
    args = parser.parse_args(argv)

    try:
        if args.command == "install":
            return _cmd_install(args)
        if args.command == "start":
            cluster = FlinkCluster(rest_port=args.port, taskmanagers=args.taskmanagers, slots=args.slots, host=args.host, bind_host=args.bind_host)
            began = time.monotonic()
            overview = cluster.start()
            print(f"Flink {overview['flink-version']} up at {cluster.rest_url} in {time.monotonic() - began:.1f}s: "
                  f"{overview['taskmanagers']} TaskManager(s), {overview['slots-total']} slots; logs in {cluster.run_dir / 'log'}")
            jar = find_job_server_jar()
            if jar is None:
                print(f"note: no job server jar cached yet ({job_server_artifact()}); run `install` before --runner FlinkRunner", file=sys.stderr)
            print(f"run on it: python -m beam_ml.run run PIPELINE -- --runner FlinkRunner --flink_master {cluster.address} --environment_type LOOPBACK")
            return 0
        cluster = FlinkCluster(rest_port=args.port)
        if args.command == "status":
            overview = cluster.overview()
            if overview is None:
                print(f"no Flink REST API answers at {cluster.rest_url}")
                return 1
            print(json.dumps(overview, indent=2))
            for job in cluster.jobs():
                print(f"{job['jid']}  {job['state']:<10} {job['duration'] / 1000:7.1f}s  {job['name']}")
            return 0
        cluster.stop()
        print("stopped" if cluster.overview() is None else f"something still answers at {cluster.rest_url}")
        return 0
    except FlinkClusterError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


def _cmd_install(args: argparse.Namespace) -> int:
    began = time.monotonic()
    home = install_flink()
    print(f"Flink {FLINK_VERSION} at {home} ({_disk_usage(home.parent) / 2**20:.0f} MiB) after {time.monotonic() - began:.1f}s")
    if args.job_server_jar:
        target = job_server_jar_path()
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.job_server_jar, target)
    try:
        jar = fetch_job_server_jar()
    except JobServerJarUnavailable as error:
        print(f"error: {error}", file=sys.stderr)
        return 3
    print(f"job server jar: {jar} ({jar.stat().st_size / 2**20:.0f} MiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
