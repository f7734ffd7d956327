"""The benchmark suite: every speed claim measured side by side with its peer and the machine's limit.

    python -m benchmarks [--quick] [--results-dir DIR] [--install-peers] [--sizes 1,10,100,1000]
                         [--only statistics,transform] [--repeat 3] [--synthetic]

Writes ``<results-dir>/<date>.json`` and ``<date>.md`` (``<date>-quick.*`` for
``--quick``), with every target of issue 16 and its verdict (met, missed, not measured;
`targets`); a full run into benchmarks/results also regenerates README's table
(benchmarks/readme.py). A later run on the same day with ``--only`` or ``--sizes`` replaces the
figures it measured and keeps the others, so a day's results can be built in parts.

Data: the Chicago taxi sample (../shared/data) replicated ×1, ×10, ×100 (1.5 M rows), and
×1000 (15 M rows, 1.8 GB of CSV) for ingestion and statistics,
or, when that is absent or with ``--synthetic``, taxi-like synthetic rows of the same
sizes (benchmarks/data.py; made once, cached in the work directory). ``--quick`` never
goes past ×10. Every measured stage runs in a fresh process
(benchmarks/workers.py) whose VmHWM is its peak RSS; one whose processes pass
``MEMORY_SHARE`` of the available memory is stopped, and one whose peak, extrapolated
from the smaller sizes, would pass it is not started: both are recorded as "out of
memory" (TFDV at ×1000, which also runs one round only there). Each figure is the median
of ``--repeat`` runs (default 3) with min and max, after one untimed warm-up run of
each stage on the smallest size; ``--quick`` runs once (one pair), no warm-up, smaller sizes.

Peers: TFDV 1.16.1 (``generate_statistics_from_csv`` and the ``GenerateStatistics``
PTransform) in a venv of its own (benchmarks/peers/venvs.py), installed by the
full run when missing (or by ``--install-peers``), never by ``--quick``, which marks it
"not installed"; tf.Transform fed instance dicts, Beam's ``MLTransform`` with the same
operations as our Transform (and, as the limit, the saved transform graph applied to the
same record batches in a plain loop, no Beam), Keras ``model.predict`` (and, as the
limit, a plain SavedModel signature call), in the project's venv. The systems of a
benchmark run in interleaved rounds (ours, peer, limit, ours, peer, limit, ...;
``--repeat`` rounds, 3 by default), and a ratio is the median of the per-round pair
ratios with their min and max, flagged when they spread by more than 30%: a busy
machine moves both runs of a pair together.

Scaling: our statistics on DirectRunner's multi-process mode, 2 workers against 1, at ×100
(``statistics_workers``; not part of ``--quick``).

Wall clock: the penguin and Chicago taxi pipelines end to end in fresh processes, first run
and fully cached rerun (taxi on the ×1 dataset's CSV; not part of ``--quick`` unless named
with ``--only``), the penguin first run in rounds paired with a plain script doing the same
work (benchmarks/penguin_plain.py), and start-up.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from beam_ml.metadata.store import MetadataStore, sqlite_url_for_root
from benchmarks import data as bench_data
from benchmarks import readme
from benchmarks.peers.venvs import TFDV, TFDV_SCRIPT

REPO = Path(__file__).resolve().parent.parent
DEFAULT_RESULTS = REPO / "benchmarks" / "results"
DEFAULT_WORK = Path(os.environ.get("BEAM_ML_BENCH_DATA", Path.home() / ".cache" / "beam-ml" / "bench-data"))
PIPELINES = REPO / "benchmarks" / "pipelines"
STAGE_TIMEOUT_S = 3600

#: benchmark → [(system, worker stage, or TFDV_STAGE + a path of benchmarks/peers/tfdv_stats.py in the TFDV venv)]
TFDV_STAGE = "tfdv:"
THROUGHPUT = {
    "ingestion": [("beam-ml", "ours_ingestion"), ("pyarrow read+write", "limit_ingestion")],
    "statistics": [("beam-ml", "ours_statistics"), ("tfdv-1.16.1", TFDV_STAGE + "generate_statistics_from_csv"),
                   ("tfdv-1.16.1 GenerateStatistics", TFDV_STAGE + "GenerateStatistics"),
                   ("pyarrow alone", "limit_statistics")],
    "validation": [("beam-ml", "ours_validation")],
    "transform": [("beam-ml", "ours_transform"), ("tf.Transform instance dicts", "peer_transform"),
                  ("Beam MLTransform", "peer_mltransform"), ("transform graph without Beam", "limit_transform")],
    "inference": [("beam-ml", "ours_inference"), ("Keras model.predict", "peer_inference"),
                  ("plain SavedModel call", "limit_inference")],
    # beam-ml's statistics on DirectRunner's multi-process mode: how it scales from one worker to two
    "statistics_workers": [("2 workers", "ours_statistics_2_workers"), ("1 worker", "ours_statistics_1_worker")],
}
WALL = ("penguin", "taxi", "startup")
ALL = (*THROUGHPUT, *WALL)
#: left out of ``--quick`` unless named with ``--only`` (the taxi pipeline alone takes minutes; the
#: workers benchmark only means something at ×100)
NOT_IN_QUICK = ("taxi", "statistics_workers")
#: ×1000 (15 M rows, ~1.8 GB of CSV) for the data stages whose claims must hold where fixed costs hide nothing
FULL_SIZES = {"ingestion": (1, 10, 100, 1000), "statistics": (1, 10, 100, 1000), "validation": (1, 10, 100),
              "transform": (1, 10, 100), "inference": (1, 10, 100), "statistics_workers": (100,)}
QUICK_SIZES = {"ingestion": (1, 10), "statistics": (1, 10), "validation": (1, 10), "transform": (1,), "inference": (1,),
               "statistics_workers": (1,)}
#: From this size on, a system in ``FEW_ROUNDS`` runs that many rounds only (TFDV: ~25 min a run at ×1000).
LARGE_SIZE = 1000
FEW_ROUNDS = {"tfdv-1.16.1": 1, "tfdv-1.16.1 GenerateStatistics": 1}
#: A stage stops (status "out of memory") when its process tree's RSS passes this share of the
#: memory available when it started, or is not started when its peak, extrapolated in rows from the
#: smaller sizes, would: the suite records why instead of taking the machine down.
MEMORY_SHARE = 0.9

#: Keys every measurement has in the JSON.
MEASUREMENT_KEYS = ("benchmark", "system", "size", "rows", "status", "reason", "n", "seconds", "rows_per_s", "peak_rss_mib")
WALL_KEYS = ("benchmark", "system", "size", "status", "reason", "n", "wall_s")


class StageFailed(RuntimeError):
    pass


class OutOfMemory(StageFailed):
    """The stage's processes passed the memory cap and were stopped; ``peak_mib`` is the RSS they reached."""

    def __init__(self, message: str, peak_mib: float):
        super().__init__(message)
        self.peak_mib = peak_mib


# --------------------------------------------------------------------------- figures


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def available_mib() -> float:
    """MemAvailable (Linux), else the physical memory."""
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20


def _tree_rss_mib(pid: int) -> float:
    """RSS of ``pid`` and its descendants (Beam's multi-process workers, TFDV's), from /proc."""
    total, pending = 0.0, [pid]
    while pending:
        current = pending.pop()
        try:
            with open(f"/proc/{current}/status") as status:
                total += next((int(line.split()[1]) for line in status if line.startswith("VmRSS:")), 0) / 1024
            for task in os.listdir(f"/proc/{current}/task"):
                with open(f"/proc/{current}/task/{task}/children") as children:
                    pending += [int(child) for child in children.read().split()]
        except (OSError, ValueError):
            continue
    return total


def _communicate_capped(process: subprocess.Popen, timeout: float, cap_mib: float) -> tuple[str, str]:
    """``process.communicate`` that stops the process (raising `OutOfMemory`) once its tree's RSS passes ``cap_mib``."""
    import threading

    peak, stopped = [0.0], threading.Event()

    def watch() -> None:
        while process.poll() is None and not stopped.is_set():
            peak[0] = max(peak[0], _tree_rss_mib(process.pid))
            if peak[0] > cap_mib:
                stopped.set()
                process.kill()
                return
            time.sleep(0.5)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise
    finally:
        watcher.join(timeout=5)
    if stopped.is_set():
        raise OutOfMemory(f"out of memory: stopped at {peak[0]:,.0f} MiB RSS, past the cap of {cap_mib:,.0f} MiB "
                          f"({MEMORY_SHARE:.0%} of the memory available when it started)", peak[0])
    return stdout, stderr


def _run_json(command: list[str], env: dict | None = None, timeout: float = STAGE_TIMEOUT_S,
              memory_cap_mib: float | None = None) -> dict:
    if memory_cap_mib is None:
        done = subprocess.run(command, check=False, capture_output=True, text=True, env=env, timeout=timeout, cwd=REPO)
    else:
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO)
        stdout, stderr = _communicate_capped(process, timeout, memory_cap_mib)
        done = subprocess.CompletedProcess(command, process.returncode, stdout, stderr)
    lines = [line for line in done.stdout.splitlines() if line.startswith("BENCH-RESULT ")]
    if done.returncode != 0 or not lines:
        tail = [line for line in (done.stderr or done.stdout).strip().splitlines() if line.strip()][-15:]
        error = StageFailed(f"{Path(command[0]).name} {' '.join(command[1:4])} … exited {done.returncode}: "
                            f"{tail[-1] if tail else 'no output'}")
        error.tail = "\n".join(tail)
        raise error
    return json.loads(lines[-1].removeprefix("BENCH-RESULT "))


@dataclass
class Context:
    quick: bool
    repeat: int
    warmup: bool
    work: Path
    install_peers: bool
    datasets: dict[float, bench_data.Dataset] = field(default_factory=dict)
    source: str | None = None
    model_dir: Path | None = None
    transform_graph: Path | None = None
    systems: tuple[str, ...] = ()
    log: Callable[[str], None] = print
    installs: dict[str, tuple[str, str]] = field(default_factory=dict)  # venv name → _peer_status

    def dataset(self, size: float) -> bench_data.Dataset:
        if size not in self.datasets:
            started = time.perf_counter()
            self.datasets[size] = bench_data.prepare(self.work / "data", size, source=self.source)
            made = self.datasets[size]
            self.log(f"  data {made.name}: {made.rows:,} rows, {made.csv_mib:.0f} MiB CSV ({time.perf_counter() - started:.1f}s)")
        return self.datasets[size]


def _stage_command(ctx: Context, stage: str, dataset: bench_data.Dataset, scratch: Path) -> list[str]:
    if stage.startswith(TFDV_STAGE):  # TFDV, in its own venv
        return [str(TFDV.interpreter), str(TFDV_SCRIPT), str(dataset.csv), str(scratch), stage.removeprefix(TFDV_STAGE)]
    command = [sys.executable, "-m", "benchmarks.workers", stage, str(dataset.directory), str(scratch)]
    artifact = ctx.transform_graph if stage.endswith("_transform") else ctx.model_dir
    if artifact is not None:
        command.append(str(artifact))
    return command


def _measure(ctx: Context, stage: str, dataset: bench_data.Dataset, runs: int) -> list[dict]:
    results = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(dir=ctx.work) as scratch:
            results.append(_run_json(_stage_command(ctx, stage, dataset, Path(scratch)),
                                     memory_cap_mib=MEMORY_SHARE * available_mib()))
    return results


def predicted_peak_mib(records: list[dict], system: str, rows: int) -> tuple[float, str] | None:
    """``system``'s peak RSS at ``rows``, extrapolated linearly in rows from its two largest smaller
    measured sizes (with what it came from), or None without two of them."""
    known = sorted((m["rows"], m["peak_rss_mib"]["median"], m["size"]) for m in records
                   if m["system"] == system and m["status"] == "ok" and m["rows"] and m["rows"] < rows)
    if len(known) < 2:
        return None
    (rows_a, peak_a, size_a), (rows_b, peak_b, size_b) = known[-2:]
    slope = max(peak_b - peak_a, 0.0) / (rows_b - rows_a)
    return peak_b + slope * (rows - rows_b), f"{peak_a:,.0f} MiB at {size_a}, {peak_b:,.0f} MiB at {size_b}"


def _rounds(ctx: Context, system: str, size: float) -> int:
    return min(ctx.repeat, FEW_ROUNDS.get(system, ctx.repeat)) if size >= LARGE_SIZE else ctx.repeat


def _peer_status(ctx: Context, system: str) -> tuple[str, str]:
    """("ok", "") when the peer can run, else ("not installed" | "unavailable", why)."""
    if not system.startswith(TFDV.name):
        return "ok", ""
    if TFDV.installed():
        return "ok", ""
    if TFDV.name in ctx.installs:  # both TFDV paths share the venv: one install attempt
        return ctx.installs[TFDV.name]
    if not ctx.install_peers:
        return "not installed", f"no venv at {TFDV.directory} (the quick run never installs; use --install-peers)"
    log = ctx.work / "tfdv-install.log"
    ctx.log(f"  installing TFDV 1.16.1 into {TFDV.directory} (log: {log}) …")
    ok, why = TFDV.install(log)
    ctx.installs[TFDV.name] = ("ok", "") if ok else ("unavailable", why)
    return ctx.installs[TFDV.name]


def throughput(ctx: Context, benchmark: str, sizes: tuple[float, ...]) -> list[dict]:
    """Each size's systems measured in interleaved rounds (ours, peer, limit, ours, peer, limit, ...),
    so the i-th runs of two systems form a pair that saw the same machine load (see `paired_ratio`)."""
    out = []
    if benchmark == "inference" and ctx.model_dir is None:
        ctx.model_dir = ctx.work / "model"
        shutil.rmtree(ctx.model_dir, ignore_errors=True)
        _run_json([sys.executable, "-m", "benchmarks.workers", "export_model", str(ctx.dataset(min(sizes)).directory),
                   str(ctx.work / "export-scratch"), str(ctx.model_dir)])
    systems = [(system, stage) for system, stage in THROUGHPUT[benchmark] if not ctx.systems or system in ctx.systems]
    stages = [stage for _system, stage in systems]
    if "limit_transform" in stages and ctx.transform_graph is None:
        # Our Transform, first in each round, leaves its graph there for the limit to apply.
        ctx.transform_graph = ctx.work / "transform_graph"
        shutil.rmtree(ctx.transform_graph, ignore_errors=True)
        if "ours_transform" not in stages:
            _run_json([sys.executable, "-m", "benchmarks.workers", "export_transform_graph",
                       str(ctx.dataset(min(sizes)).directory), str(ctx.work / "export-scratch"), str(ctx.transform_graph)])
    statuses = {system: _peer_status(ctx, system) for system, _stage in systems}
    warmed: set[str] = set() if ctx.warmup else {system for system, _stage in systems}
    for size in sizes:
        records, runs = {}, {}
        for system, _stage in systems:
            status, reason = statuses[system]
            records[system] = {"benchmark": benchmark, "system": system, "size": f"x{size:g}", "rows": None,
                               "status": status, "reason": reason, "n": 0, "seconds": None, "rows_per_s": None,
                               "peak_rss_mib": None}
            if status == "ok":
                runs[system] = []
            else:
                ctx.log(f"  {benchmark:<10} {system:<28} x{size:g}: {status} ({reason})")
        if runs:
            dataset = ctx.dataset(size)
            _skip_what_cannot_fit(ctx, out, records, runs, dataset)
            # The rounds of one size share this id: only runs with the same one are paired.
            session = f"{benchmark}/{dataset.name}/{time.time_ns()}"
            for round_ in range(ctx.repeat):
                for system, stage in systems:
                    if system not in runs or records[system]["status"] != "ok" or round_ >= _rounds(ctx, system, size):
                        continue
                    try:
                        if system not in warmed:  # on the smallest data: warms the page cache, .pyc files, model files
                            _measure(ctx, stage, ctx.dataset(min((*sizes, 1))), 1)
                            warmed.add(system)
                        runs[system] += [{**run, "round": round_} for run in _measure(ctx, stage, dataset, 1)]
                    except OutOfMemory as error:
                        records[system].update(status="out of memory", reason=str(error), size=dataset.name,
                                               rows=dataset.rows, peak_rss_mib=spread([error.peak_mib]))
                        ctx.log(f"  {benchmark:<10} {system:<28} {dataset.name:<14} {error}")
                    except (StageFailed, subprocess.TimeoutExpired) as error:
                        records[system].update(status="failed", reason=str(error), log_tail=getattr(error, "tail", ""),
                                               size=dataset.name)
                        ctx.log(f"  {benchmark:<10} {system:<28} {dataset.name:<14} FAILED: {error}")
            for system, done in runs.items():
                if records[system]["status"] == "ok":
                    _fill_throughput(ctx, records[system], dataset, done, session)
        out += records.values()
    order = [system for system, _stage in systems]
    return sorted(out, key=lambda m: order.index(m["system"]))  # stable: each system's sizes stay in order


def _skip_what_cannot_fit(ctx: Context, earlier: list[dict], records: dict, runs: dict, dataset: bench_data.Dataset) -> None:
    """Marks "out of memory" (and does not run) each system whose predicted peak RSS on ``dataset``
    passes the cap: TFDV keeps the whole ×1000 in memory, which would take the machine down."""
    cap = MEMORY_SHARE * available_mib()
    for system in runs:
        predicted = predicted_peak_mib(earlier, system, dataset.rows)
        if predicted is not None and predicted[0] > cap:
            records[system].update(
                status="out of memory", size=dataset.name, rows=dataset.rows,
                reason=f"not run: its peak RSS would be ~{predicted[0]:,.0f} MiB (linear in rows from {predicted[1]}), "
                       f"past the cap of {cap:,.0f} MiB ({MEMORY_SHARE:.0%} of the memory available)")
            ctx.log(f"  {records[system]['benchmark']:<10} {system:<28} {dataset.name:<14} {records[system]['reason']}")


def _fill_throughput(ctx: Context, record: dict, dataset: bench_data.Dataset, runs: list[dict], session: str) -> None:
    record.update(
        size=dataset.name,
        rows=runs[0]["rows"],
        n=len(runs),
        seconds=spread([r["seconds"] for r in runs]),
        rows_per_s=spread([r["rows"] / r["seconds"] for r in runs]),
        peak_rss_mib=spread([r["peak_rss_mib"] for r in runs]),
        runs=runs,
        session=session,
    )
    if runs[0].get("notes"):  # how a peer's operations correspond to ours
        record["notes"] = runs[0]["notes"]
    if record["rows"] != dataset.rows:
        record.update(status="failed", reason=f"processed {record['rows']} rows of {dataset.rows}")
    ctx.log(f"  {record['benchmark']:<10} {record['system']:<28} {dataset.name:<14} "
            f"{record['rows_per_s']['median']:>12,.0f} rows/s peak {record['peak_rss_mib']['median']:>6,.0f} MiB "
            f"(n={len(runs)})")


# --------------------------------------------------------------------------- wall-clock benchmarks

CACHED_PROBE = (
    "import sys; from beam_ml.run import main; rc = main(['run', sys.argv[1]]); "
    "print('BENCH-RESULT', __import__('json').dumps({'tensorflow_imported': 'tensorflow' in sys.modules})); sys.exit(rc)"
)
IMPORT_PROBE = (
    "import json, runpy, sys, time; t = time.perf_counter(); import beam_ml.run; "
    "runpy.run_path(sys.argv[1])['create_pipeline'](); "
    "print('BENCH-RESULT', json.dumps({'import_s': time.perf_counter() - t, 'tensorflow_imported': 'tensorflow' in sys.modules}))"
)


def _timed(command: list[str], env: dict) -> tuple[float, dict]:
    started = time.perf_counter()
    figures = _run_json(command, env=env)
    return time.perf_counter() - started, figures


def _wall_record(benchmark: str, size: str, walls: list[float], system: str = "beam-ml", **extra) -> dict:
    return {"benchmark": benchmark, "system": system, "size": size, "status": "ok", "reason": "",
            "n": len(walls), "wall_s": spread(walls), "walls": walls, **extra}


def _end_to_end(ctx: Context, name: str, pipeline: Path, setting: str, env: dict[str, str],
                peer: list[str] | None = None) -> list[dict]:
    """A pipeline end to end in fresh processes: first runs, then fully cached reruns of the first.
    ``peer`` (a command, given a scratch directory as its last argument) runs after each first run,
    in the same rounds, as ``<name>_plain_script``."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **env}
    first, cached, imported, components = [], [], False, {}
    plain, plain_figures = [], []
    session = f"{name}/{time.time_ns()}"
    first_runs = 1 if ctx.quick else max(ctx.repeat, 1)
    cached_runs = 3 if ctx.quick else max(ctx.repeat, 5)
    command = [sys.executable, "-c", CACHED_PROBE, str(pipeline)]
    try:
        for attempt in range(first_runs):
            root = tempfile.mkdtemp(dir=ctx.work, prefix=f"{name}-")
            run_env = {**env, "BEAM_ML_BENCH_ROOT": root}
            try:
                first.append(_timed(command, run_env)[0])
                for component, seconds in _first_run_components(root).items():
                    components.setdefault(component, []).append(seconds)
                if peer is not None:
                    seconds, figures = _timed([*peer, str(Path(root) / "plain")], env)
                    plain.append(seconds)
                    plain_figures.append(figures)
                if attempt == 0:
                    _timed(command, run_env)  # warm-up of the cached rerun
                    for _ in range(cached_runs):
                        seconds, figures = _timed(command, run_env)
                        cached.append(seconds)
                        imported = imported or figures["tensorflow_imported"]
            finally:
                shutil.rmtree(root, ignore_errors=True)
    except (StageFailed, subprocess.TimeoutExpired) as error:
        ctx.log(f"  {name:<10} FAILED: {error}")
        return [{"benchmark": f"{name}_{kind}", "system": "beam-ml", "size": setting, "status": "failed",
                 "reason": str(error), "log_tail": getattr(error, "tail", ""), "n": 0, "wall_s": None}
                for kind in ("first_run", "cached_rerun")]
    ctx.log(f"  {name:<10} first run {statistics.median(first):.1f}s, cached rerun {statistics.median(cached):.2f}s"
            + (f", plain script {statistics.median(plain):.1f}s" if plain else ""))
    records = [
        _wall_record(f"{name}_first_run", setting, first, session=session,
                     components={component: spread(seconds) for component, seconds in components.items()}),
        _wall_record(f"{name}_cached_rerun", setting, cached, tensorflow_imported=imported),
    ]
    if plain:
        records.append(_wall_record(f"{name}_plain_script", setting, plain, system="plain script", session=session,
                                    accuracy=spread([f["accuracy"] for f in plain_figures])))
    return records


def _first_run_components(root: str) -> dict[str, float]:
    """Seconds each component took in the first run on ``root`` (the metadata store's execution
    records), and what the process spent outside them is the wall time minus their sum."""
    with MetadataStore(sqlite_url_for_root(root)) as store:
        first = min(store.list_runs(), key=lambda run: run.id)
        return {execution.component_id: execution.duration for execution in store.executions_of_run(first.id)}


def penguin(ctx: Context) -> list[dict]:
    """The penguin pipeline end to end in fresh processes: first run, then fully cached reruns."""
    steps = 30 if ctx.quick else 300
    return _end_to_end(ctx, "penguin", PIPELINES / "penguin.py", f"train_steps={steps}",
                       {"BEAM_ML_BENCH_TRAIN_STEPS": str(steps)},
                       peer=[sys.executable, "-m", "benchmarks.penguin_plain", "--train-steps", str(steps)])


def taxi(ctx: Context) -> list[dict]:
    """The Chicago taxi pipeline (examples/chicago_taxi: ExampleGen … Transform, Trainer, Evaluator,
    InfraValidator, Pusher) end to end on the ×1 dataset's CSV, 300 train steps (the example's default
    is 1000): first run, then fully cached reruns, as for penguin."""
    dataset = ctx.dataset(1)
    steps = 50 if ctx.quick else 300
    return _end_to_end(ctx, "taxi", PIPELINES / "chicago_taxi.py", f"{dataset.name}, train_steps={steps}",
                       {"BEAM_ML_BENCH_TRAIN_STEPS": str(steps), "BEAM_ML_BENCH_CSV": str(dataset.csv)})


def startup(ctx: Context) -> list[dict]:
    """Interpreter start + imports: ``beam_ml.run --help``; a data-only pipeline (imports, and a whole first run)."""
    env = {**os.environ, "BEAM_ML_BENCH_CSV": str(ctx.dataset(1).csv)}
    runs = 3 if ctx.quick else max(ctx.repeat, 5)
    help_walls = []
    for _ in range(runs + 1):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "beam_ml.run", "--help"], check=True, capture_output=True, cwd=REPO)
        help_walls.append(time.perf_counter() - started)
    pipeline = str(PIPELINES / "data_only.py")
    imports, import_walls, tf_imported = [], [], False
    for _ in range(runs + 1):
        wall, figures = _timed([sys.executable, "-c", IMPORT_PROBE, pipeline], env)
        imports.append(figures["import_s"])
        import_walls.append(wall)
        tf_imported = tf_imported or figures["tensorflow_imported"]
    run_walls = []
    for _ in range(1 if ctx.quick else ctx.repeat):
        root = tempfile.mkdtemp(dir=ctx.work, prefix="data-only-")
        try:
            wall, figures = _timed([sys.executable, "-c", CACHED_PROBE, pipeline], {**env, "ROOT": root})
        finally:
            shutil.rmtree(root, ignore_errors=True)
        run_walls.append(wall)
        tf_imported = tf_imported or figures["tensorflow_imported"]
    ctx.log(f"  startup    --help {statistics.median(help_walls[1:]):.2f}s, data-only imports "
            f"{statistics.median(imports[1:]):.2f}s (process {statistics.median(import_walls[1:]):.2f}s), "
            f"first run {statistics.median(run_walls):.1f}s, TensorFlow imported: {tf_imported}")
    return [
        _wall_record("startup_help", "-", help_walls[1:]),
        _wall_record("startup_data_only_imports", "-", import_walls[1:], import_s=spread(imports[1:]),
                     tensorflow_imported=tf_imported),
        _wall_record("data_only_pipeline_first_run", ctx.dataset(1).name, run_walls, tensorflow_imported=tf_imported),
    ]


# --------------------------------------------------------------------------- targets


#: The verdict of a target whose figures are missing (a quick run, a part of the suite, a failed stage).
NOT_MEASURED = "not measured"


def _target(name: str, goal: str, goal_ratio: float | None, source: str = "issue 16") -> dict:
    return {"target": name, "goal": goal, "goal_ratio": goal_ratio, "ratio": None, "met": None, "verdict": NOT_MEASURED,
            "size": None, "detail": NOT_MEASURED, "source": source}


def _judge(record: dict, met: bool) -> None:
    record.update(met=met, verdict="met" if met else "missed")


def _copies(name: str) -> float:
    """The copies of a size as the results name it: "taxi_x100" (a dataset), "x100" (a peer that did not run)."""
    return float(name.rsplit("x", 1)[-1])


def _size_name_matches(name: str, size: float | None) -> bool:
    return size is None or _copies(name) == size


def _find(measurements: list[dict], benchmark: str, system: str, size: str | None = None) -> dict | None:
    for m in measurements:
        if m["benchmark"] == benchmark and m["system"] == system and m["status"] == "ok" and (size is None or m["size"] == size):
            return m
    return None


def _largest_common(measurements: list[dict], benchmark: str, a: str, b: str, size: float | None = None) -> tuple[dict, dict] | None:
    """The figures of ``a`` and ``b`` at the largest size both have (at ``size`` copies only, when given)."""
    pairs = []
    for m in measurements:
        if m["benchmark"] == benchmark and m["system"] == a and m["status"] == "ok" and _size_name_matches(m["size"], size):
            other = _find(measurements, benchmark, b, m["size"])
            if other is not None:
                pairs.append((m["rows"], m, other))
    if not pairs:
        return None
    _, mine, theirs = max(pairs, key=lambda p: p[0])
    return mine, theirs


def _why_not_measured(measurements: list[dict], benchmark: str, systems: tuple[str, ...], size: float | None) -> str:
    """What the results hold instead: a system's failure or absence, or the sizes that were measured."""
    for system in systems:
        found = [m for m in measurements if m["benchmark"] == benchmark and m["system"] == system]
        at_size = [m for m in found if _size_name_matches(m["size"], size)]
        failed = next((m for m in at_size if m["status"] != "ok"), None)
        if failed is not None:
            return f"{system}: {failed['status']} ({failed['reason'].splitlines()[0] if failed['reason'] else ''})"
        if not found:
            return f"{system} not measured"
    sizes = sorted({m["size"] for m in measurements if m["benchmark"] == benchmark and m["status"] == "ok"}, key=_copies)
    return f"no ×{size:g} figures (measured: {', '.join(sizes)})" if size is not None else NOT_MEASURED


def _throughput_target(measurements: list[dict], name: str, benchmark: str, peer: str, goal: float, *,
                       mine: str = "beam-ml", size: float | None = None, source: str = "issue 16") -> dict:
    """``mine``'s throughput over ``peer``'s ≥ ``goal``, at ``size`` copies (else the largest size both have)."""
    at = f" at ×{size:g}" if size is not None else ""
    record = _target(name, f"≥ {goal:g}× {peer}{at}", goal, source)
    found = _largest_common(measurements, benchmark, mine, peer, size)
    if found is None:
        record["detail"] = _why_not_measured(measurements, benchmark, (mine, peer), size).replace("|", "/")
        return record
    ours, theirs = found
    paired = paired_ratio(ours, theirs)
    record.update(ratio=paired["median"], ratio_min=paired["min"], ratio_max=paired["max"], pairs=paired["pairs"],
                  pair_spread=paired["spread"], unstable=paired["unstable"], size=ours["size"],
                  detail=f"{ours['rows_per_s']['median']:,.0f} vs {theirs['rows_per_s']['median']:,.0f} rows/s")
    _judge(record, paired["median"] >= goal)
    return record


#: A ratio whose per-pair ratios spread by more than this (max − min, relative to their median) is flagged.
PAIR_SPREAD_LIMIT = 0.30


def paired_ratio(mine: dict, theirs: dict) -> dict:
    """Our throughput over theirs: the median of the per-pair ratios, with min and max.

    Runs of the two systems made in the same interleaved rounds (same ``session``) pair up
    by round (in order where runs carry no round), so each ratio compares two runs that saw
    the same machine load; a system that ran fewer rounds (TFDV at ×1000) pairs with ours of
    the same rounds. Figures of different sessions (a day's results built in parts with
    ``--systems``) cannot be paired: their ratio is the ratio of the medians, with ``pairs`` 0
    and no spread.
    """
    pairs = _pairs(mine, theirs)
    if pairs:
        ratios = [(a["rows"] / a["seconds"]) / (b["rows"] / b["seconds"]) for a, b in pairs]
        middle = statistics.median(ratios)
        spread_ = (max(ratios) - min(ratios)) / middle
        return {"median": middle, "min": min(ratios), "max": max(ratios), "pairs": len(ratios), "spread": spread_,
                "unstable": spread_ > PAIR_SPREAD_LIMIT}
    ratio = mine["rows_per_s"]["median"] / theirs["rows_per_s"]["median"]
    return {"median": ratio, "min": ratio, "max": ratio, "pairs": 0, "spread": None, "unstable": None}


def _pairs(mine: dict, theirs: dict) -> list[tuple[dict, dict]]:
    ours, peers = mine.get("runs") or [], theirs.get("runs") or []
    if not (ours and peers and mine.get("session") and mine.get("session") == theirs.get("session")):
        return []
    if all("round" in run for run in (*ours, *peers)):
        by_round = {run["round"]: run for run in peers}
        return [(run, by_round[run["round"]]) for run in ours if run["round"] in by_round]
    return list(zip(ours, peers, strict=True)) if len(ours) == len(peers) else []


def _faster_peer_target(measurements: list[dict], name: str, benchmark: str, peers: tuple[str, ...], goal: float) -> dict:
    """``_throughput_target`` against the faster of ``peers`` at the largest size beam-ml shares with any of them."""
    found = [(peer, pair) for peer in peers if (pair := _largest_common(measurements, benchmark, "beam-ml", peer))]
    if not found:
        return _throughput_target(measurements, name, benchmark, peers[0], goal)  # says why not
    largest = max(pair[0]["rows"] for _, pair in found)
    at_largest = sorted(((pair[1]["rows_per_s"]["median"], peer) for peer, pair in found if pair[0]["rows"] == largest), reverse=True)
    peer = at_largest[0][1]
    record = _throughput_target(measurements, name, benchmark, peer, goal)
    record["goal"] = f"≥ {goal:g}× the faster of {' / '.join(peers)}"
    others = "; ".join(f"{other} {rate:,.0f} rows/s" for rate, other in at_largest[1:])
    record["detail"] += f" ({peer}, the faster TFDV path" + (f"; {others})" if others else "; the other not measured)")
    return record


def _peak_rss_target(measurements: list[dict], benchmark: str, large: float = 1000, small: float = 10,
                     goal: float = 1.5) -> dict:
    """beam-ml's peak RSS at ``large`` copies over its peak at ``small`` copies ≤ ``goal``."""
    record = _target(f"{benchmark} peak RSS", f"×{large:g} ≤ {goal:g}× the ×{small:g} figure", goal)
    ours = [m for m in measurements if m["benchmark"] == benchmark and m["system"] == "beam-ml"]
    big = next((m for m in ours if _size_name_matches(m["size"], large) and m.get("peak_rss_mib")), None)
    base = next((m for m in ours if _size_name_matches(m["size"], small) and m["status"] == "ok"), None)
    if big is None or base is None:
        record["detail"] = _why_not_measured(measurements, benchmark, ("beam-ml",), large if big is None else small)
        return record
    ratio = big["peak_rss_mib"]["median"] / base["peak_rss_mib"]["median"]
    record.update(ratio=ratio, size=f"{big['size']} / {base['size']}",
                  detail=f"{big['peak_rss_mib']['median']:,.0f} vs {base['peak_rss_mib']['median']:,.0f} MiB"
                         + ("" if big["status"] == "ok" else f" ({big['status']})"))
    _judge(record, big["status"] == "ok" and ratio <= goal)
    return record


def _wall_ratio_target(measurements: list[dict], name: str, benchmark: str, peer_benchmark: str, goal: float) -> dict:
    """``benchmark``'s wall time over ``peer_benchmark``'s ≤ ``goal``: the median of the per-round ratios
    where both ran in the same rounds (same ``session``), else the ratio of the medians."""
    record = _target(name, f"≤ {goal:g}× {peer_benchmark.replace('_', ' ')}", goal)
    ours = next((m for m in measurements if m["benchmark"] == benchmark and m["status"] == "ok"), None)
    theirs = next((m for m in measurements if m["benchmark"] == peer_benchmark and m["status"] == "ok"), None)
    if ours is None or theirs is None:
        failed = next((m for m in measurements if m["benchmark"] in (benchmark, peer_benchmark) and m["status"] != "ok"), None)
        if failed is not None:
            record["detail"] = f"{failed['benchmark']}: {failed['status']} ({failed['reason'].splitlines()[0] if failed['reason'] else ''})"
        return record
    walls, peer_walls = ours.get("walls") or [], theirs.get("walls") or []
    if ours.get("session") and ours.get("session") == theirs.get("session") and len(walls) == len(peer_walls) and walls:
        ratios = [a / b for a, b in zip(walls, peer_walls, strict=True)]
        middle = statistics.median(ratios)
        spread_ = (max(ratios) - min(ratios)) / middle
        record.update(ratio=middle, ratio_min=min(ratios), ratio_max=max(ratios), pairs=len(ratios), pair_spread=spread_,
                      unstable=spread_ > PAIR_SPREAD_LIMIT)
    else:
        record.update(ratio=ours["wall_s"]["median"] / theirs["wall_s"]["median"], pairs=0)
    record.update(size=ours["size"], detail=f"{ours['wall_s']['median']:.1f} vs {theirs['wall_s']['median']:.1f} s")
    if "accuracy" in theirs:
        record["detail"] += f" (its accuracy {theirs['accuracy']['median']:.2f})"
    _judge(record, record["ratio"] <= goal)
    return record


CACHED_RERUN_GOAL_S = 1.0


def targets(measurements: list[dict]) -> list[dict]:
    """Every target of issue 16's table (then the earlier ones still tracked), each with its verdict:
    met, missed or not measured, and the figures it comes from."""
    result = []
    for benchmark, peer in (("statistics", "pyarrow alone"), ("ingestion", "pyarrow read+write")):
        for size in (100, 1000):
            result.append(_throughput_target(measurements, f"{benchmark} vs {peer} (×{size:g})", benchmark, peer, 0.8, size=size))
    result += [
        _peak_rss_target(measurements, "statistics"),
        _peak_rss_target(measurements, "ingestion"),
        _throughput_target(measurements, "Transform vs its limit (graph applied without Beam)", "transform",
                           "transform graph without Beam", 0.5, size=100),
        _throughput_target(measurements, "Transform vs tf.Transform instance dicts", "transform", "tf.Transform instance dicts", 10),
        _throughput_target(measurements, "BulkInferrer vs plain SavedModel call", "inference", "plain SavedModel call", 0.9, size=100),
        _wall_ratio_target(measurements, "penguin first run vs a plain script doing the same work", "penguin_first_run",
                           "penguin_plain_script", 2.0),
    ]
    cached = next((m for m in measurements if m["benchmark"] == "penguin_cached_rerun" and m["status"] == "ok"), None)
    rerun = _target("penguin fully cached rerun", f"< {CACHED_RERUN_GOAL_S:g} s wall", CACHED_RERUN_GOAL_S)
    if cached is not None:
        wall = cached["wall_s"]["median"]
        rerun.update(ratio=wall / CACHED_RERUN_GOAL_S, size=cached["size"], detail=f"{wall:.2f} s median")
        _judge(rerun, wall < CACHED_RERUN_GOAL_S)
    result.append(rerun)
    result.append(_throughput_target(measurements, "DirectRunner statistics, 2 workers vs 1 (multi-process)", "statistics_workers",
                                     "1 worker", 1.6, mine="2 workers", size=100))
    # earlier targets, still tracked
    result += [
        _faster_peer_target(measurements, "statistics vs TFDV", "statistics", ("tfdv-1.16.1", "tfdv-1.16.1 GenerateStatistics"), 20),
        _throughput_target(measurements, "BulkInferrer vs Keras model.predict", "inference", "Keras model.predict", 0.5, source="earlier"),
    ]
    result[-2]["source"] = "earlier"
    data_only = next((m for m in measurements if m["benchmark"] == "startup_data_only_imports" and m["status"] == "ok"), None)
    no_tf = _target("data-only pipeline imports no TensorFlow", "tensorflow not in sys.modules", None, "earlier")
    if data_only is not None:
        no_tf["detail"] = f"imports {data_only['import_s']['median']:.2f} s, process {data_only['wall_s']['median']:.2f} s"
        _judge(no_tf, not data_only["tensorflow_imported"])
    result.append(no_tf)
    return result


# --------------------------------------------------------------------------- report


def _fmt_spread(value: dict | None, fmt: str) -> str:
    if not value:
        return "—"
    return f"{value['median']:{fmt}} ({value['min']:{fmt}}–{value['max']:{fmt}})"


def _pairs_note(target: dict) -> str:
    if target.get("pairs"):
        note = f"{target['pairs']}, spread {target['pair_spread']:.0%}"
        return f"**unstable**: {note}" if target["unstable"] else note
    return "unpaired" if target.get("pairs") == 0 else "—"


def targets_table(rows: list[dict]) -> list[str]:
    """The Markdown table of ``rows`` (targets): the results file's and README's."""
    lines = ["| target | goal | measured | ratio | pairs | verdict |", "|---|---|---|---|---|---|"]
    for t in rows:
        verdict = t.get("verdict") or (NOT_MEASURED if t["met"] is None else ("met" if t["met"] else "missed"))
        verdict = f"**{verdict}**" if verdict == "missed" else verdict
        ratio = "—" if t["ratio"] is None else f"{t['ratio']:.2f}"
        if t.get("pairs"):
            ratio += f" ({t['ratio_min']:.2f}–{t['ratio_max']:.2f})"
        where = f" on {t['size']}" if t["size"] else ""
        lines.append(f"| {t['target']} | {t['goal']} | {t['detail']}{where} | {ratio} | {_pairs_note(t)} | {verdict} |")
    return lines


def markdown(results: dict) -> str:
    lines = [
        f"# beam-ml benchmarks, {results['date']} ({results['mode']})",
        "",
        f"Commits measured: {', '.join(results.get('commits') or [results.get('commit', 'unknown')])} (each figure's is in the JSON). "
        f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['platform']}, Python {results['machine']['python']}. "
        f"Figures: median (min–max) of n runs, each stage in a fresh process (peak RSS: its VmHWM); "
        f"warm-up: {'one untimed run per stage' if results['settings']['warmup'] else 'none'}. "
        "Throughput ratios: the systems run in interleaved rounds (ours, peer, ..., ours, peer, ...); a ratio is the "
        f"median (min–max) of the per-round pair ratios, flagged when the pairs spread by more than {PAIR_SPREAD_LIMIT:.0%} "
        "of it (max − min); 'unpaired' ratios compare medians of different sessions.",
        "",
        "## Targets (issue 16)",
        "",
        *targets_table([t for t in results["targets"] if t.get("source", "issue 16") == "issue 16"]),
        "",
        "Earlier targets, still tracked:",
        "",
        *targets_table([t for t in results["targets"] if t.get("source", "issue 16") != "issue 16"]),
    ]
    lines += [
        "",
        "## Throughput and peak memory",
        "",
        "| stage | system | data | rows | rows/s | peak RSS MiB | n | status |",
        "|---|---|---|---:|---|---|---:|---|",
    ]
    for m in results["measurements"]:
        if "wall_s" in m:
            continue
        status = m["status"] if m["status"] == "ok" else f"{m['status']}: {m['reason'].splitlines()[0] if m['reason'] else ''}"
        rows = f"{m['rows']:,}" if m["rows"] else "—"
        lines.append(f"| {m['benchmark']} | {m['system']} | {m['size']} | {rows} | {_fmt_spread(m['rows_per_s'], ',.0f')} | "
                     f"{_fmt_spread(m['peak_rss_mib'], ',.0f')} | {m['n']} | {status} |")
    notes = {m["system"]: m["notes"] for m in results["measurements"] if m.get("notes")}
    if notes:
        lines += ["", *(f"Note, {system}: {text}." for system, text in notes.items())]
    lines += ["", "## Wall clock (fresh processes, interpreter start included)", "",
              "| benchmark | setting | seconds | n | notes |", "|---|---|---|---:|---|"]
    for m in results["measurements"]:
        if "wall_s" not in m:
            continue
        notes = []
        if "import_s" in m:
            notes.append(f"imports {_fmt_spread(m['import_s'], '.2f')} s")
        if "tensorflow_imported" in m:
            notes.append(f"TensorFlow imported: {'yes' if m['tensorflow_imported'] else 'no'}")
        if "accuracy" in m:
            notes.append(f"eval accuracy {_fmt_spread(m['accuracy'], '.2f')}")
        lines.append(f"| {m['benchmark']} | {m['size']} | {_fmt_spread(m['wall_s'], '.2f')} | {m['n']} | {'; '.join(notes)} |")
    for m in results["measurements"]:
        if not m.get("components"):
            continue
        lines += ["", f"### {m['benchmark']} by component ({m['size']})", "",
                  "| component | seconds |", "|---|---|"]
        lines += [f"| {component} | {_fmt_spread(seconds, '.2f')} |" for component, seconds in m["components"].items()]
        outside = m["wall_s"]["median"] - sum(seconds["median"] for seconds in m["components"].values())
        lines.append(f"| outside components (interpreter, imports, DAG, metadata; wall − sum of medians) | {outside:.2f} |")
    if results.get("profiles"):
        lines += ["", "## Profiles of missed targets", ""]
        for name, text in results["profiles"].items():
            lines += [f"### {name}", "", "```", text.rstrip(), "```", ""]
    return "\n".join(lines) + "\n"


PROFILE_TOP_LINES = 45
#: A throughput target's benchmark and the system of ours it profiles.
_TARGET_STAGES = {
    **{f"{b} vs {peer} (×{size})": (b, "beam-ml") for b, peer in (("statistics", "pyarrow alone"), ("ingestion", "pyarrow read+write"))
       for size in (100, 1000)},
    "Transform vs its limit (graph applied without Beam)": ("transform", "beam-ml"),
    "Transform vs tf.Transform instance dicts": ("transform", "beam-ml"),
    "BulkInferrer vs plain SavedModel call": ("inference", "beam-ml"),
    "DirectRunner statistics, 2 workers vs 1 (multi-process)": ("statistics_workers", "2 workers"),
    "statistics vs TFDV": ("statistics", "beam-ml"),
    "BulkInferrer vs Keras model.predict": ("inference", "beam-ml"),
}


def profile_missed(ctx: Context, measurements: list[dict]) -> dict[str, str]:
    """pyinstrument profiles of beam-ml's stage for each missed throughput target, at the target's size."""
    try:
        import pyinstrument  # noqa: F401
    except ImportError:
        return {"(none)": "pyinstrument is not installed in this venv: pip install pyinstrument"}
    profiles = {}
    for target in targets(measurements):
        benchmark, system = _TARGET_STAGES.get(target["target"], (None, None))
        if target["met"] is not False or benchmark is None or target["size"] is None:
            continue
        key = f"{benchmark} on {target['size']}"
        if key in profiles:
            continue
        stage = dict(THROUGHPUT[benchmark])[system]
        dataset = next(d for d in ctx.datasets.values() if d.name == target["size"])
        with tempfile.TemporaryDirectory(dir=ctx.work) as scratch:
            out = Path(scratch) / "profile.txt"
            env = {**os.environ, "BEAM_ML_BENCH_PROFILE": str(out)}
            try:
                figures = _run_json(_stage_command(ctx, stage, dataset, Path(scratch) / "work"), env=env)
            except StageFailed as error:
                profiles[key] = f"profiling failed: {error}"
                continue
            lines = out.read_text().splitlines()
        start = next((i for i, line in enumerate(lines) if line.startswith("Profile at")), 0)
        header = f"{target['target']}: ratio {target['ratio']:.2f}, goal {target['goal']}; profiled run {figures['rows'] / figures['seconds']:,.0f} rows/s"
        profiles[key] = "\n".join([header, *lines[start + 1:start + 1 + PROFILE_TOP_LINES]])
        ctx.log(f"  profiled {key}")
    return profiles


def _key(m: dict) -> tuple:
    return m["benchmark"], m["system"], m["size"]


def write_results(results_dir: Path, stem: str, results: dict) -> tuple[Path, Path]:
    results_dir.mkdir(parents=True, exist_ok=True)
    json_path, md_path = results_dir / f"{stem}.json", results_dir / f"{stem}.md"
    if json_path.is_file():  # same day, same mode: keep what this run did not measure
        try:
            earlier = json.loads(json_path.read_text())
        except json.JSONDecodeError:
            earlier = {}
        fresh = {_key(m) for m in results["measurements"]}
        measured = {m["benchmark"] for m in results["measurements"]}
        kept = [m for m in earlier.get("measurements", [])
                if _key(m) not in fresh and not (m["benchmark"] in measured and m["status"] != "ok")]
        for m in kept:  # figures of a file written before measurements carried their commit
            m.setdefault("commit", earlier.get("commit"))
        results["measurements"] = kept + results["measurements"]
        results["measurements"].sort(key=lambda m: (_order(m["benchmark"]), m["system"] != "beam-ml", m["system"], m.get("rows") or 0))
        results["profiles"] = {**earlier.get("profiles", {}), **results.get("profiles", {})}
    results["targets"] = targets(results["measurements"])
    results["commits"] = sorted({m["commit"] for m in results["measurements"] if m.get("commit")})
    json_path.write_text(json.dumps(results, indent=2) + "\n")
    md_path.write_text(markdown(results))
    return json_path, md_path


def commit_measured() -> str:
    """The checkout's commit, "+ changes" when its tracked files differ from it (the suite's own
    outputs, README and benchmarks/results, aside); "unknown" outside git."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "diff", "--quiet", "HEAD", "--", ".", ":(exclude)README.md", ":(exclude)benchmarks/results"],
                               cwd=REPO, check=False).returncode != 0
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} + changes" if dirty else head


def _order(benchmark: str) -> int:
    names = [*THROUGHPUT, "penguin_first_run", "penguin_plain_script", "penguin_cached_rerun", "taxi_first_run", "taxi_cached_rerun", "startup_help", "startup_data_only_imports",
             "data_only_pipeline_first_run"]
    return names.index(benchmark) if benchmark in names else len(names)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, one run each, no peer install, no taxi pipeline (< 5 min)")
    parser.add_argument("--results-dir", type=Path, default=DEFAULT_RESULTS)
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK, help="datasets and scratch (default %(default)s)")
    parser.add_argument("--install-peers", action="store_true", help="install missing peer venvs (the full run does anyway)")
    parser.add_argument("--no-install-peers", action="store_true", help="never install; a missing peer is 'not installed'")
    parser.add_argument("--sizes", help="copies of the taxi sample, e.g. 1,10,100 (default: 1,10,100; quick: 1,10)")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(ALL)}")
    parser.add_argument("--systems", help="comma-separated subset of systems (e.g. 'beam-ml,pyarrow alone'); the day's other figures are kept")
    parser.add_argument("--repeat", type=int, help="interleaved rounds: timed runs per system and figure, pairs per ratio (default 3; quick 1)")
    parser.add_argument("--profile", action="store_true", help="profile (pyinstrument) beam-ml's stage for each missed throughput target")
    parser.add_argument("--synthetic", action="store_true", help="synthetic taxi-like data even where ../shared has the taxi data")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    only = [b.strip() for b in args.only.split(",")] if args.only else [b for b in ALL if not (args.quick and b in NOT_IN_QUICK)]
    unknown = sorted(set(only) - set(ALL))
    if unknown:
        sys.exit(f"unknown benchmarks {unknown}; choose from {list(ALL)}")
    repeat = args.repeat or (1 if args.quick else 3)
    install = args.install_peers or (not args.quick and not args.no_install_peers)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(quick=args.quick, repeat=repeat, warmup=not args.quick, work=args.work_dir, install_peers=install,
                  source="synthetic" if args.synthetic else None,
                  systems=tuple(s.strip() for s in args.systems.split(",")) if args.systems else ())
    sizes_given = tuple(float(s) for s in args.sizes.split(",")) if args.sizes else None
    today = datetime.date.today().isoformat()
    print(f"beam-ml benchmark suite ({'quick' if args.quick else 'full'}), {today}, {os.cpu_count()} CPUs")
    measurements: list[dict] = []
    commit = commit_measured()  # before the run: the code it measures
    started = time.perf_counter()
    for benchmark in only:
        print(f"{benchmark}:", flush=True)
        if benchmark in THROUGHPUT:
            sizes = sizes_given or (QUICK_SIZES if args.quick else FULL_SIZES)[benchmark]
            measurements += throughput(ctx, benchmark, tuple(sorted(sizes)))
        elif benchmark == "penguin":
            measurements += penguin(ctx)
        elif benchmark == "taxi":
            measurements += taxi(ctx)
        else:
            measurements += startup(ctx)
    for m in measurements:  # a day's results can be built in parts, of different commits
        m["commit"] = commit
    profiles = {}
    if args.profile:
        print("profiles:", flush=True)
        profiles = profile_missed(ctx, measurements)
    results = {
        "date": today,
        "mode": "quick" if args.quick else "full",
        "commit": commit,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "settings": {"repeat": repeat, "warmup": ctx.warmup, "data_source": next(iter(ctx.datasets.values())).source if ctx.datasets else None},
        "data": [{"name": d.name, "rows": d.rows, "csv_mib": round(d.csv_mib, 1)} for d in ctx.datasets.values()],
        "measurements": measurements,
        "profiles": profiles,
        "elapsed_s": time.perf_counter() - started,
    }
    json_path, md_path = write_results(args.results_dir, f"{today}-quick" if args.quick else today, results)
    print(f"\nwrote {json_path} and {md_path} in {time.perf_counter() - started:.0f}s\n")
    if not args.quick and args.results_dir.resolve() == DEFAULT_RESULTS.resolve():
        readme.update(readme.README, json_path)
        print(f"regenerated the Performance figures of {readme.README} from {json_path.name}\n")
    print(md_path.read_text())
    return 0 if all(m["status"] in ("ok", "not installed", "unavailable", "out of memory") for m in measurements) else 1
